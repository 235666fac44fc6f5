//! Blocking crates cooperate: fetch many URLs at once with `ureq` — a
//! blocking HTTP client written for threads, not for sylvan — from fibers on
//! ONE worker. With the `patch` feature, ureq's socket calls park the fiber
//! that makes them, so the fetches overlap instead of queueing behind each
//! other.
//!
//! ```sh
//! cargo run --release --features patch --example fetch_many
//! cargo run --release --features patch --example fetch_many -- http://127.0.0.1:8000/ ...
//! SYLVAN_PATCH=0 cargo run --release --features patch --example fetch_many  # the difference
//! ```
//!
//! With no URLs it starts a local server whose every answer takes 200 ms and
//! fetches 100 pages from it: about 0.2 s in all with the patch, 20 s without.
//! (`ureq` is built without TLS here: `http://` URLs only.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
#[command(about = "Fetch URLs concurrently with a blocking HTTP client inside sylvan fibers")]
struct Args {
    /// URLs to fetch (default: 100 pages of a local demo server that answers after 200 ms)
    urls: Vec<String>,
    /// Worker threads (one shows best that no fetch blocks the others)
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Give up on a fetch after this many seconds
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// A plain-thread HTTP server that answers every request after `delay`.
fn demo_server(delay: Duration) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(delay);
                let body = "a slow page\n";
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    Ok(format!("http://{addr}"))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let urls = if args.urls.is_empty() {
        let base = demo_server(Duration::from_millis(200))?;
        (0..100).map(|i| format!("{base}/page/{i}")).collect()
    } else {
        args.urls
    };
    println!(
        "fetching {} URLs with ureq from fibers on {} worker(s); patch active: {}",
        urls.len(),
        args.workers,
        sylvan::patch::is_active()
    );
    let timeout = Duration::from_secs(args.timeout);
    let rt = sylvan::Runtime::builder().workers(args.workers).build()?;
    let start = Instant::now();
    let failed = rt.block_on(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        let fetches: Vec<_> = urls
            .into_iter()
            .map(|url| {
                let agent = agent.clone();
                sylvan::spawn(move || {
                    let began = Instant::now();
                    let result = agent
                        .get(&url)
                        .call()
                        .and_then(|mut r| Ok((r.status(), r.body_mut().read_to_vec()?.len())));
                    (url, result, began.elapsed())
                })
            })
            .collect();
        let mut failed = 0;
        for f in fetches {
            let (url, result, took) = f.join().expect("a fetch fiber panicked");
            match result {
                Ok((status, len)) => println!("{status} {len:>8} B {took:>10.1?} {url}"),
                Err(e) => {
                    failed += 1;
                    println!("ERR {took:>19.1?} {url}: {e}");
                }
            }
        }
        failed
    });
    println!("done in {:.2?}, {failed} failed", start.elapsed());
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
