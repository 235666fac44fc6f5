//! A TCP echo server written as plain blocking code: one fiber per
//! connection, each reading and writing back what it reads.
//!
//! ```text
//! cargo run --release --example echo -- [ADDR] [--workers N]
//! ```
//! ADDR defaults to 127.0.0.1:7000. Try it with `nc 127.0.0.1 7000`.

use std::io::{Read, Write};

use sylvan::net::{TcpListener, TcpStream};

fn serve(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the client closed its side
        }
        conn.write_all(&buf[..n])?;
    }
}

fn main() {
    let mut addr = "127.0.0.1:7000".to_string();
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => {
                let n = args.next().and_then(|n| n.parse().ok());
                workers = Some(n.unwrap_or_else(|| usage("--workers needs a number")));
            }
            "-h" | "--help" => usage(""),
            a if a.starts_with('-') => usage(&format!("unknown option {a}")),
            a => addr = a.to_string(),
        }
    }
    let mut builder = sylvan::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
    rt.block_on(move || {
        let listener =
            TcpListener::bind(&addr).unwrap_or_else(|e| fail(&format!("bind {addr}: {e}")));
        eprintln!("echo: listening on {}", listener.local_addr().unwrap());
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    sylvan::spawn(move || {
                        if let Err(e) = serve(conn) {
                            eprintln!("echo: connection error: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("echo: accept: {e}"),
            }
        }
    });
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("echo: {problem}");
    }
    eprintln!("usage: echo [ADDR] [--workers N]   (ADDR defaults to 127.0.0.1:7000)");
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

fn fail(msg: &str) -> ! {
    eprintln!("echo: {msg}");
    std::process::exit(1)
}
