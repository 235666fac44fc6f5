//! Procedural macros for sylvan, re-exported by the facade as
//! `#[sylvan::main]` and `#[sylvan::test]`.
//!
//! Both turn an ordinary function into one whose body runs as the first fiber
//! of a fresh runtime, and return (or re-raise) what the body returns (or
//! panics with). Arguments: `workers = N`, `stack_size = BYTES`.
//!
//! (Not run here: this crate cannot use itself; the facade's
//! `sylvan::main` runs the same example.)
//!
//! ```ignore
//! #[sylvan::main(workers = 2, stack_size = 1 << 20)]
//! fn main() -> std::io::Result<()> {
//!     let h = sylvan::spawn(|| sylvan::current().id());
//!     assert_ne!(h.join().unwrap(), sylvan::current().id()); // two fibers
//!     Ok(())
//! }
//! ```

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, MetaNameValue, Token};

/// Runs `fn main` as the first fiber of a sylvan runtime and returns its
/// result; the runtime shuts down when `main` returns.
///
/// Arguments: `workers = N` (default: one per CPU), `stack_size = BYTES`.
/// `main` may return a value (e.g. `Result<(), E>`), which must be `Send`.
///
/// ```ignore
/// #[sylvan::main(workers = 2)]
/// fn main() {
///     let h = sylvan::spawn(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args, item.clone(), Kind::Main) {
        Ok(out) => out,
        Err(e) => {
            // Our error alone: a stub `main` keeps rustc from adding "`main`
            // function not found" on top of it.
            let mut out: proc_macro2::TokenStream = e.to_compile_error();
            let is_main = syn::parse::<ItemFn>(item).is_ok_and(|f| f.sig.ident == "main");
            if is_main {
                out.extend(quote!(
                    fn main() {}
                ));
            }
            out.into()
        }
    }
}

/// Runs a `#[test]` function as the first fiber of a fresh runtime (one
/// worker unless `workers = N` is given). A panic in the body fails the test
/// with the original payload, so `#[should_panic(expected = ...)]` works.
///
/// ```ignore
/// #[sylvan::test(workers = 4)]
/// fn sleeps_concurrently() {
///     let hs: Vec<_> = (0..100)
///         .map(|_| sylvan::spawn(|| sylvan::sleep(std::time::Duration::from_millis(10))))
///         .collect();
///     for h in hs {
///         h.join().unwrap();
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, Kind::Test).unwrap_or_else(|e| e.to_compile_error().into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "sylvan::main",
            Kind::Test => "sylvan::test",
        }
    }
}

struct Config {
    workers: Option<Expr>,
    stack_size: Option<Expr>,
}

fn parse_args(args: TokenStream, kind: Kind) -> syn::Result<Config> {
    let parser = Punctuated::<MetaNameValue, Token![,]>::parse_terminated;
    let args = parser.parse(args).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "{}: arguments are `name = value` pairs; allowed: `workers = N`, \
                 `stack_size = BYTES`",
                kind.name()
            ),
        )
    })?;
    let mut cfg = Config {
        workers: None,
        stack_size: None,
    };
    for arg in args {
        let name = arg
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let slot =
            match name.as_str() {
                "workers" => &mut cfg.workers,
                "stack_size" => &mut cfg.stack_size,
                _ => {
                    return Err(syn::Error::new(
                        arg.path.span(),
                        format!(
                        "{}: unknown argument `{}`; allowed: `workers = N`, `stack_size = BYTES`",
                        kind.name(),
                        quote!(#arg).to_string().split('=').next().unwrap_or("").trim()
                    ),
                    ))
                }
            };
        let is_int = matches!(&arg.value, Expr::Lit(l) if matches!(l.lit, Lit::Int(_)));
        if !is_int {
            return Err(syn::Error::new(
                arg.value.span(),
                format!("{}: `{name}` takes an integer literal", kind.name()),
            ));
        }
        if slot.replace(arg.value).is_some() {
            return Err(syn::Error::new(
                arg.path.span(),
                format!("{}: `{name}` given twice", kind.name()),
            ));
        }
    }
    Ok(cfg)
}

fn expand(args: TokenStream, item: TokenStream, kind: Kind) -> syn::Result<TokenStream> {
    let cfg = parse_args(args, kind)?;
    let func: ItemFn = syn::parse(item)?;
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span(),
            format!(
                "{}: remove `async`; sylvan runs plain blocking code on fibers, \
                 no async functions",
                kind.name()
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("{}: the function must take no parameters", kind.name()),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("{}: the function must not be generic", kind.name()),
        ));
    }
    if kind == Kind::Main && sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "sylvan::main goes on `fn main`; use #[sylvan::test] for tests, or \
             sylvan::run / Runtime::block_on elsewhere",
        ));
    }
    let workers = match (&cfg.workers, kind) {
        (Some(n), _) => quote!(.workers(#n)),
        (None, Kind::Test) => quote!(.workers(1)),
        (None, Kind::Main) => quote!(),
    };
    // A test that deadlocks fails instead of hanging — when the monitor can
    // tell, which it cannot under libtest's own harness (its threads are ones
    // sylvan cannot see); it can in `harness = false` test binaries.
    let deadlock = match kind {
        Kind::Test => quote!(.panic_on_deadlock(true)),
        Kind::Main => quote!(),
    };
    let stack = cfg
        .stack_size
        .as_ref()
        .map(|s| quote!(.stack_size(#s)))
        .unwrap_or_default();
    let attrs = &func.attrs;
    let vis = &func.vis;
    let ident = &sig.ident;
    let output = &sig.output;
    let body = &func.block;
    let ret_span = match output {
        syn::ReturnType::Type(_, t) => t.span(),
        syn::ReturnType::Default => Span::call_site(),
    };
    let ret_ty = match output {
        syn::ReturnType::Type(_, t) => quote!(#t),
        syn::ReturnType::Default => quote!(()),
    };
    // The body runs on a worker thread, so its result must be Send; say so
    // at the return type rather than deep inside block_on.
    let send_check = quote_spanned! {ret_span=>
        fn __sylvan_return_type_must_be_send<T: ::core::marker::Send>() {}
        __sylvan_return_type_must_be_send::<#ret_ty>();
    };
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    let what = kind.name();
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis fn #ident() #output {
            #send_check
            let __sylvan_rt = ::sylvan::Runtime::builder()
                #workers
                #stack
                #deadlock
                .build()
                .unwrap_or_else(|e| ::core::panic!("{}: cannot start the runtime: {}", #what, e));
            __sylvan_rt.block_on(move || -> #ret_ty #body)
        }
    }
    .into())
}

/// Waits on several channel and queue operations at once and runs the
/// branch of the first that happens; re-exported as `sylvan::select!`.
///
/// Branches (any number of each operation, in any order):
///
/// * `recv(rx) -> msg => body` — receive from a `channel::Receiver`; `msg`
///   is `Result<T, RecvError>` (an error once the channel is empty and every
///   sender is gone).
/// * `send(tx, value) -> res => body` — send on a `channel::Sender`; `res`
///   is `Result<(), SendError<T>>`. `value` is evaluated when the select
///   starts and dropped if another branch runs.
/// * `get(queue) -> item => body` — get from a `Queue`; `item` is
///   `Option<T>` (`None` once it is closed and drained).
/// * `put(queue, item) -> res => body` — put into a `Queue`; `res` is
///   `Result<(), T>`.
/// * `timeout(duration) => body` — at most one; runs if nothing happened
///   within `duration`.
/// * `default => body` — at most one; runs at once if nothing is ready
///   (the select then never waits).
///
/// When several operations are ready, one is picked at random. Only the
/// branch that runs takes an item: the others leave their queues as they
/// were. A body is an expression followed by a comma, or a block. It works
/// in fibers and in plain threads, and is a cancellation point.
///
/// ```ignore
/// use std::time::Duration;
/// use sylvan::sync::channel;
///
/// let (tx, rx) = channel::bounded::<u32>(1);
/// let (done_tx, done_rx) = channel::bounded::<()>(1);
/// sylvan::spawn(move || {
///     tx.send(42).unwrap();
///     done_tx.send(()).unwrap();
/// });
/// let mut got = None;
/// while got.is_none() {
///     sylvan::select! {
///         recv(rx) -> v => got = v.ok(),
///         recv(done_rx) -> _ => {}
///         timeout(Duration::from_secs(5)) => panic!("nothing arrived"),
///     }
/// }
/// assert_eq!(got, Some(42));
/// ```
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    match syn::parse::<select::SelectInput>(input) {
        Ok(s) => s.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

mod select {
    use proc_macro2::{Span, TokenStream};
    use quote::{format_ident, quote, quote_spanned};
    use syn::parse::{Parse, ParseStream};
    use syn::spanned::Spanned;
    use syn::{Expr, Ident, Pat, Token};

    const OPS: &str = "expected `recv(rx) -> v`, `send(tx, value) -> r`, `get(queue) -> item`, \
                       `put(queue, item) -> r`, `timeout(duration)` or `default`";

    enum Op {
        Recv(Expr),
        Send(Expr, Expr),
        Get(Expr),
        Put(Expr, Expr),
    }

    struct Branch {
        op: Op,
        pat: Pat,
        body: Expr,
    }

    pub(crate) struct SelectInput {
        branches: Vec<Branch>,
        timeout: Option<(Expr, Expr)>,
        default: Option<Expr>,
    }

    fn parse_args(input: ParseStream<'_>, name: &Ident, n: usize) -> syn::Result<Vec<Expr>> {
        let content;
        syn::parenthesized!(content in input);
        let args = content.parse_terminated(Expr::parse, Token![,])?;
        if args.len() != n {
            let what = match n {
                1 => "one argument",
                _ => "two arguments",
            };
            return Err(syn::Error::new(
                name.span(),
                format!("select!: `{name}` takes {what}"),
            ));
        }
        Ok(args.into_iter().collect())
    }

    fn parse_body(input: ParseStream<'_>) -> syn::Result<Expr> {
        input.parse::<Token![=>]>()?;
        let body: Expr = input.parse()?;
        let is_block = matches!(
            body,
            Expr::Block(_)
                | Expr::If(_)
                | Expr::Match(_)
                | Expr::Loop(_)
                | Expr::While(_)
                | Expr::ForLoop(_)
                | Expr::Unsafe(_)
        );
        if input.is_empty() {
            return Ok(body);
        }
        if is_block {
            let _ = input.parse::<Option<Token![,]>>()?;
        } else {
            input.parse::<Token![,]>().map_err(|e| {
                syn::Error::new(e.span(), "select!: expected `,` after this branch's body")
            })?;
        }
        Ok(body)
    }

    impl Parse for SelectInput {
        fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
            let mut out = SelectInput {
                branches: Vec::new(),
                timeout: None,
                default: None,
            };
            let mut conflict = None;
            while !input.is_empty() {
                let name: Ident = if input.peek(Token![default]) {
                    let kw: Token![default] = input.parse()?;
                    Ident::new("default", kw.span)
                } else {
                    input
                        .parse()
                        .map_err(|e| syn::Error::new(e.span(), format!("select!: {OPS}")))?
                };
                match name.to_string().as_str() {
                    "default" => {
                        let body = parse_body(input)?;
                        if out.default.is_some() {
                            return Err(syn::Error::new(
                                name.span(),
                                "select!: only one `default` branch is allowed",
                            ));
                        }
                        out.default = Some(body);
                        conflict = conflict.or(out.timeout.as_ref().map(|_| name.span()));
                    }
                    "timeout" => {
                        let mut args = parse_args(input, &name, 1)?;
                        let body = parse_body(input)?;
                        if out.timeout.is_some() {
                            return Err(syn::Error::new(
                                name.span(),
                                "select!: only one `timeout` branch is allowed",
                            ));
                        }
                        out.timeout = Some((args.remove(0), body));
                        conflict = conflict.or(out.default.as_ref().map(|_| name.span()));
                    }
                    op @ ("recv" | "send" | "get" | "put") => {
                        let n = if op == "send" || op == "put" { 2 } else { 1 };
                        let mut args = parse_args(input, &name, n)?;
                        input.parse::<Token![->]>().map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                format!("select!: `{op}` needs `-> pattern` to name its outcome"),
                            )
                        })?;
                        let pat = Pat::parse_single(input)?;
                        let body = parse_body(input)?;
                        let first = args.remove(0);
                        let op = match op {
                            "recv" => Op::Recv(first),
                            "get" => Op::Get(first),
                            "send" => Op::Send(first, args.remove(0)),
                            _ => Op::Put(first, args.remove(0)),
                        };
                        out.branches.push(Branch { op, pat, body });
                    }
                    other => {
                        return Err(syn::Error::new(
                            name.span(),
                            format!("select!: unknown operation `{other}`; {OPS}"),
                        ))
                    }
                }
            }
            if let Some(span) = conflict {
                return Err(syn::Error::new(
                    span,
                    "select!: `default` and `timeout` cannot both be given (with `default` the \
                     select never waits)",
                ));
            }
            Ok(out)
        }
    }

    impl SelectInput {
        pub(crate) fn expand(self) -> TokenStream {
            // Names the user's code cannot see or shadow.
            let site = Span::mixed_site();
            let sel = Ident::new("__sylvan_select", site);
            let done = Ident::new("__sylvan_selected", site);
            let krate = quote!(::sylvan::sync::select);
            let outs: Vec<Ident> = (0..self.branches.len())
                .map(|i| format_ident!("__sylvan_out{}", i, span = site))
                .collect();
            let decls = outs.iter().map(|o| {
                quote_spanned!(site=> let #o = ::core::cell::Cell::new(::core::option::Option::None);)
            });
            let adds = self.branches.iter().zip(&outs).map(|(b, o)| match &b.op {
                Op::Recv(rx) => quote_spanned!(rx.span()=> #sel.recv(&#rx, &#o);),
                Op::Get(q) => quote_spanned!(q.span()=> #sel.get(&#q, &#o);),
                Op::Send(tx, v) => quote_spanned!(tx.span()=> #sel.send(&#tx, #v, &#o);),
                Op::Put(q, v) => quote_spanned!(q.span()=> #sel.put(&#q, #v, &#o);),
            });
            let arms = self.branches.iter().zip(&outs).enumerate().map(|(i, (b, o))| {
                let (pat, body) = (&b.pat, &b.body);
                quote! {
                    #krate::Selected::Case(#i) => {
                        let #pat = #o.take().expect("sylvan::select!: the chosen case left its outcome");
                        #body
                    }
                }
            });
            let timeout_set = self
                .timeout
                .as_ref()
                .map(|(d, _)| quote_spanned!(d.span()=> #sel.timeout(#d);));
            let timeout_arm = self.timeout.as_ref().map(|(_, body)| {
                quote! { #krate::Selected::Timeout => { #body } }
            });
            let default_arm = self.default.as_ref().map(|body| {
                quote! { #krate::Selected::Default => { #body } }
            });
            let run = match self.default {
                Some(_) => quote!(#sel.try_select()),
                None => quote!(#sel.wait()),
            };
            quote! {{
                #(#decls)*
                let #done = {
                    let mut #sel = #krate::Select::new();
                    #(#adds)*
                    #timeout_set
                    #run
                };
                #[allow(unreachable_patterns, clippy::match_single_binding)]
                match #done {
                    #(#arms)*
                    #timeout_arm
                    #default_arm
                    _ => ::core::unreachable!("sylvan::select!: no such case"),
                }
            }}
        }
    }
}
