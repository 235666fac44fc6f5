//! Procedural macros for sylvan, re-exported by the facade as
//! `#[sylvan::main]` and `#[sylvan::test]`.
//!
//! Both turn an ordinary function into one whose body runs as the first fiber
//! of a fresh runtime, and return (or re-raise) what the body returns (or
//! panics with). Arguments: `workers = N`, `stack_size = BYTES`.

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
                .build()
                .unwrap_or_else(|e| ::core::panic!("{}: cannot start the runtime: {}", #what, e));
            __sylvan_rt.block_on(move || -> #ret_ty #body)
        }
    }
    .into())
}
