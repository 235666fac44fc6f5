//! Wall time for 100,000 fibers that each sleep 10 ms (spawned from a fiber,
//! joined by it), on 2 workers, repeated; prints each run and the median.
//!
//! Run with `cargo bench --bench sleepers [-- FIBERS]`.

use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let mut runs: Vec<Duration> = (0..7)
        .map(|_| {
            rt.block_on(move || {
                let start = Instant::now();
                let hs: Vec<_> = (0..n)
                    .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_millis(10))))
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                start.elapsed()
            })
        })
        .collect();
    println!("{n} fibers × sleep(10 ms), 2 workers: runs {runs:?}");
    runs.sort();
    println!(
        "median {:?} (first run includes growing the stack slabs)",
        runs[runs.len() / 2]
    );
}
