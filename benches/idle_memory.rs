//! Memory per idle fiber: spawns N fibers (default 100,000; pass another count
//! as the first argument, e.g. 1000000) that all block, then reports the growth
//! of the process's resident set per fiber, and the wall time to spawn them.
//!
//! Run with `cargo bench --bench idle_memory [-- N]`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[path = "../tests/support/mod.rs"]
mod support;
use support::Gate;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    // Warm the runtime (threads, pools) before the baseline.
    rt.block_on(|| sylvan::spawn(|| ()).join().unwrap());
    let gate = Arc::new(Gate::new());
    let parked = Arc::new(AtomicUsize::new(0));
    let before = support::rss_bytes();
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let gate = gate.clone();
            let parked = parked.clone();
            rt.spawn(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                gate.wait();
            })
        })
        .collect();
    while parked.load(Ordering::Relaxed) < n {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let spawned_in = start.elapsed();
    let after = support::rss_bytes();
    let per = (after - before) as f64 / n as f64;
    println!(
        "idle fibers: {n}, RSS growth {:.1} MiB, {per:.0} bytes per fiber \
         (includes JoinHandle and waker list), all parked after {spawned_in:?}, \
         guard markers: {:?}",
        (after - before) as f64 / (1 << 20) as f64,
        sylvan::uses_guard_markers()
    );
    gate.open();
    for h in handles {
        h.join().unwrap();
    }
}
