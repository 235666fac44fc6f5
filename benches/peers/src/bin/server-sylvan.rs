//! HTTP hello / TCP echo server on sylvan: a fiber per connection running
//! the shared blocking handler. usage: server-sylvan http|echo ADDR WORKERS

use sylvan::net::TcpListener;
use sylvan_peers::{serve_echo, serve_http, server_args};

fn main() {
    let (kind, addr, workers) = server_args();
    let rt = sylvan::Runtime::builder().workers(workers).build().unwrap();
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
