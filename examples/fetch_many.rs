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

use std::time::{Duration, Instant};

use clap::Parser;

#[path = "common/slow_http.rs"]
mod slow_http;

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

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let urls = if args.urls.is_empty() {
        let addr = slow_http::start(Duration::from_millis(200), "a slow page\n")?;
        (0..100)
            .map(|i| format!("http://{addr}/page/{i}"))
            .collect()
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
