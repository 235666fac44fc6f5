//! What the server examples share: command-line parsing for `[ADDR]
//! [--workers N]` and the serve-until-Ctrl-C loop (a fiber per connection).

use std::net::SocketAddr;
use std::sync::Arc;

use sylvan::net::{TcpListener, TcpStream};

/// Options every server example takes.
pub struct ServerArgs {
    pub addr: String,
    pub workers: Option<usize>,
    /// Positional arguments after ADDR (e.g. portforward's target).
    pub rest: Vec<String>,
}

/// Parses `[ADDR] [EXTRA...] [--workers N]`; `usage` is printed on `--help`
/// or an error.
pub fn parse_args(name: &str, default_addr: &str, usage: &str) -> ServerArgs {
    let mut out = ServerArgs {
        addr: default_addr.to_string(),
        workers: None,
        rest: Vec::new(),
    };
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    let fail = |msg: &str| -> ! {
        eprintln!("{name}: {msg}\nusage: {usage}");
        std::process::exit(2)
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => out.workers = Some(n),
                _ => fail("--workers needs a positive number"),
            },
            "-h" | "--help" => {
                println!("usage: {usage}");
                std::process::exit(0)
            }
            a if a.starts_with('-') => fail(&format!("unknown option {a}")),
            a => positional.push(a.to_string()),
        }
    }
    if !positional.is_empty() {
        out.addr = positional.remove(0);
    }
    out.rest = positional;
    out
}

/// Binds `args.addr`, serves each connection with `handle` in its own fiber,
/// and returns when the process gets Ctrl-C (SIGINT) or SIGTERM: the accept
/// loop stops, and dropping the runtime afterwards cancels the connection
/// fibers (their sockets close as they unwind).
pub fn serve<H>(name: &'static str, args: &ServerArgs, handle: H)
where
    H: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    let mut builder = sylvan::Runtime::builder();
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let rt = builder.build().unwrap_or_else(|e| {
        eprintln!("{name}: cannot start the runtime: {e}");
        std::process::exit(1)
    });
    let addr = args.addr.clone();
    let handle = Arc::new(handle);
    rt.block_on(move || {
        let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("{name}: cannot listen on {addr}: {e}");
            std::process::exit(1)
        });
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        eprintln!("{name}: listening on {local}");
        let acceptor = sylvan::spawn(move || loop {
            match listener.accept() {
                Ok((conn, peer)) => {
                    let handle = handle.clone();
                    sylvan::spawn(move || handle(conn, peer));
                }
                Err(e) => eprintln!("{name}: accept failed: {e}"),
            }
        });
        match sylvan::signal::ctrl_c() {
            Ok(()) => acceptor.cancel(),
            Err(e) => {
                eprintln!("{name}: cannot wait for Ctrl-C ({e}); serving until killed");
                let _ = acceptor.join();
            }
        }
        eprintln!("{name}: shutting down");
    });
    drop(rt);
    eprintln!("{name}: bye");
}
