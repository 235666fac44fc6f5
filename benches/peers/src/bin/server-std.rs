//! HTTP hello / TCP echo server on std: a thread per connection running the
//! shared blocking handler. usage: server-std http|echo ADDR WORKERS
//! (WORKERS is ignored: every connection has its own thread)

use std::net::TcpListener;
use sylvan_peers::{serve_echo, serve_http, server_args};

fn main() {
    let (kind, addr, _workers) = server_args();
    let listener = TcpListener::bind(&addr).unwrap();
    for conn in listener.incoming() {
        let conn = conn.unwrap();
        conn.set_nodelay(true).unwrap();
        let http = kind == "http";
        std::thread::spawn(move || {
            let _ = if http {
                serve_http(conn)
            } else {
                serve_echo(conn)
            };
        });
    }
}
