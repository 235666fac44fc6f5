//! Same-run comparison of sylvan's sync primitives with std threads + std
//! primitives on two workloads; prints medians of 5 runs.
//!
//! * ping-pong: a token passed back and forth over two channels
//!   (ns per round trip);
//! * contended mutex: 8 parties each increment a shared counter 20,000 times
//!   under a mutex (million lock/unlock pairs per second).
//!
//! Run with `cargo bench --bench sync`. tokio's primitives belong to the
//! comparison harness (a separate crate, so the test command never builds
//! tokio).

use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUND_TRIPS: u32 = 100_000;
const PARTIES: usize = 8;
const INCREMENTS: u64 = 20_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn runs(f: impl Fn() -> Duration) -> Duration {
    f(); // warm-up
    median((0..5).map(|_| f()).collect())
}

fn sylvan_ping_pong(rt: &sylvan::Runtime) -> Duration {
    rt.block_on(|| {
        let (ping_tx, ping_rx) = sylvan::sync::channel::bounded::<u32>(1);
        let (pong_tx, pong_rx) = sylvan::sync::channel::bounded::<u32>(1);
        let echo = sylvan::spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v).unwrap();
            }
        });
        let t = Instant::now();
        for i in 0..ROUND_TRIPS {
            ping_tx.send(i).unwrap();
            pong_rx.recv().unwrap();
        }
        let e = t.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
        e
    })
}

fn std_ping_pong() -> Duration {
    let (ping_tx, ping_rx) = std::sync::mpsc::sync_channel::<u32>(1);
    let (pong_tx, pong_rx) = std::sync::mpsc::sync_channel::<u32>(1);
    let echo = std::thread::spawn(move || {
        for v in ping_rx.iter() {
            pong_tx.send(v).unwrap();
        }
    });
    let t = Instant::now();
    for i in 0..ROUND_TRIPS {
        ping_tx.send(i).unwrap();
        pong_rx.recv().unwrap();
    }
    let e = t.elapsed();
    drop(ping_tx);
    echo.join().unwrap();
    e
}

fn sylvan_mutex(rt: &sylvan::Runtime) -> Duration {
    rt.block_on(|| {
        let m = Arc::new(sylvan::sync::Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..PARTIES)
            .map(|_| {
                let m = m.clone();
                sylvan::spawn(move || {
                    for _ in 0..INCREMENTS {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let e = t.elapsed();
        assert_eq!(*m.lock(), PARTIES as u64 * INCREMENTS);
        e
    })
}

fn std_mutex() -> Duration {
    let m = Arc::new(std::sync::Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..PARTIES)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..INCREMENTS {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let e = t.elapsed();
    assert_eq!(*m.lock().unwrap(), PARTIES as u64 * INCREMENTS);
    e
}

fn main() {
    let one = sylvan::Runtime::builder().workers(1).build().unwrap();
    let two = sylvan::Runtime::builder().workers(2).build().unwrap();
    let per_rt = |d: Duration| d.as_nanos() as f64 / ROUND_TRIPS as f64;
    let mops = |d: Duration| (PARTIES as u64 * INCREMENTS) as f64 / d.as_secs_f64() / 1e6;

    let s1 = per_rt(runs(|| sylvan_ping_pong(&one)));
    let s2 = per_rt(runs(|| sylvan_ping_pong(&two)));
    let st = per_rt(runs(std_ping_pong));
    println!("ping-pong over two channels, ns per round trip (median of 5):");
    println!(
        "  sylvan, 1 worker   {s1:10.0}   ({:.1}x faster than std)",
        st / s1
    );
    println!(
        "  sylvan, 2 workers  {s2:10.0}   ({:.1}x faster than std)",
        st / s2
    );
    println!("  std threads+mpsc   {st:10.0}");

    let m1 = mops(runs(|| sylvan_mutex(&one)));
    let m2 = mops(runs(|| sylvan_mutex(&two)));
    let mt = mops(runs(std_mutex));
    println!("contended mutex, {PARTIES} parties, million lock/unlock per second (median of 5):");
    println!("  sylvan, 1 worker   {m1:10.2}   ({:.2}x std)", m1 / mt);
    println!("  sylvan, 2 workers  {m2:10.2}   ({:.2}x std)", m2 / mt);
    println!("  std threads+Mutex  {mt:10.2}");
}
