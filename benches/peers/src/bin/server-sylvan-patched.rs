//! HTTP hello / TCP echo server written with plain `std::net` inside sylvan
//! fibers: a fiber per connection running the shared blocking handler on a
//! `std::net::TcpStream`. Built with sylvan's `patch` feature (this crate's
//! `patch` feature), so std's blocking `accept`/`read`/`write` park the
//! fiber instead of blocking the worker; compared with `server-sylvan`
//! (the same handler on `sylvan::net`) it shows what going through the
//! libc hooks costs. usage: server-sylvan-patched http|echo ADDR WORKERS

use std::net::TcpListener;
use sylvan_peers::{serve_echo, serve_http, server_args};

fn main() {
    let (kind, addr, workers) = server_args();
    let rt = sylvan::Runtime::builder().workers(workers).build().unwrap();
    // `SYLVAN_PATCH=0` would leave every std call blocking its worker.
    assert!(
        sylvan::patch::is_active(),
        "the patch is off (SYLVAN_PATCH=0?)"
    );
    rt.block_on(move || {
        let listener = TcpListener::bind(&addr).unwrap();
        loop {
            let (conn, _) = listener.accept().unwrap();
            conn.set_nodelay(true).unwrap();
            let http = kind == "http";
            sylvan::spawn(move || {
                let _ = if http {
                    serve_http(conn)
                } else {
                    serve_echo(conn)
                };
            });
        }
    });
}
