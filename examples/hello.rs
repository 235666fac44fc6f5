//! A first taste of sylvan: ten thousand fibers spawned from a plain `main`,
//! each sleeping without blocking its worker thread.
//!
//! Run with `cargo run --release --example hello`.

use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let fibers: Vec<_> = (0..10_000u64)
        .map(|i| {
            sylvan::spawn(move || {
                sylvan::sleep(Duration::from_millis(100));
                i
            })
        })
        .collect();
    let sum: u64 = fibers.into_iter().map(|f| f.join().unwrap()).sum();
    println!(
        "10000 fibers slept 100 ms each, concurrently, in {:?} (sum of ids {sum})",
        start.elapsed()
    );
    let greeting = sylvan::run(|| {
        let name = sylvan::Builder::new()
            .name("greeter")
            .spawn(|| format!("hello from fiber {}", sylvan::current().name().unwrap()))
            .unwrap();
        name.join().unwrap()
    });
    println!("{greeting}");
}
