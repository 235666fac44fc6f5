//! HTTP hello / TCP echo server on may: a coroutine per connection running
//! the shared blocking handler. usage: server-may http|echo ADDR WORKERS

use may::net::TcpListener;
use sylvan_peers::{serve_echo, serve_http, server_args};

fn main() {
    let (kind, addr, workers) = server_args();
    may::config().set_workers(workers);
    let listener = TcpListener::bind(&addr).unwrap();
    let acceptor = move || {
        for conn in listener.incoming() {
            let conn = conn.unwrap();
            conn.set_nodelay(true).unwrap();
            let http = kind == "http";
            let handler = move || {
                let _ = if http {
                    serve_http(conn)
                } else {
                    serve_echo(conn)
                };
            };
            // SAFETY: the handler only blocks through may's own sockets.
            unsafe { may::coroutine::spawn(handler) };
        }
    };
    // SAFETY: as above; the acceptor only blocks in may's accept.
    unsafe { may::coroutine::spawn(acceptor) }.join().unwrap();
}
