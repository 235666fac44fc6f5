//! HTTP hello / TCP echo server on sylvan: a fiber per connection running
//! the shared blocking handler. usage: server-sylvan http|echo ADDR WORKERS

use sylvan::net::TcpListener;
use sylvan_peers::{serve_echo, serve_http, server_args};

fn main() {
    let (kind, addr, workers) = server_args();
    let rt = std::sync::Arc::new(sylvan::Runtime::builder().workers(workers).build().unwrap());
    // SYLVAN_PEERS_SPLIT=1: print each worker's live fibers every second on
    // stderr (how the connections split between the workers).
    if std::env::var_os("SYLVAN_PEERS_SPLIT").is_some() {
        let rt = rt.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let live: Vec<u64> = rt.metrics().workers.iter().map(|w| w.fibers_live).collect();
            eprintln!("live per worker: {live:?}");
        });
    }
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
