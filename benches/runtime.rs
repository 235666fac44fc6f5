//! Micro-benchmarks of the runtime's hot paths: a yield round trip through the
//! hub, spawn+join, and park/unpark on the same worker and across workers.
//!
//! Run with `cargo bench --bench runtime`. Each benchmark runs its timed loop
//! inside a fiber (criterion's `iter_custom`), so the measured time contains
//! only the operation under test.

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn runtime(workers: usize) -> sylvan::Runtime {
    sylvan::Runtime::builder().workers(workers).build().unwrap()
}

fn yields(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("yield_now round trip (1 fiber, 1 worker)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    sylvan::yield_now();
                }
                t.elapsed()
            })
        })
    });
    let rt2 = runtime(2);
    c.bench_function("yield_now, 1000 fibers (per yield, 2 workers)", |b| {
        b.iter_custom(|iters| {
            let per_fiber = iters.div_ceil(1000);
            rt2.block_on(move || {
                let t = Instant::now();
                let hs: Vec<_> = (0..1000)
                    .map(|_| {
                        sylvan::spawn(move || {
                            for _ in 0..per_fiber {
                                sylvan::yield_now();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                // Scale to the requested iteration count.
                t.elapsed()
                    .mul_f64(iters as f64 / (per_fiber * 1000) as f64)
            })
        })
    });
}

fn spawns(c: &mut Criterion) {
    for workers in [1, 2] {
        let rt = runtime(workers);
        c.bench_function(
            &format!("spawn+join one at a time ({workers} workers)"),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(move || {
                        let t = Instant::now();
                        for _ in 0..iters {
                            sylvan::spawn(|| ()).join().unwrap();
                        }
                        t.elapsed()
                    })
                })
            },
        );
        c.bench_function(
            &format!("spawn 1000 then join all, per fiber ({workers} workers)"),
            |b| {
                b.iter_custom(|iters| {
                    let rounds = iters.div_ceil(1000);
                    rt.block_on(move || {
                        let t = Instant::now();
                        for _ in 0..rounds {
                            let hs: Vec<_> = (0..1000).map(|_| sylvan::spawn(|| ())).collect();
                            for h in hs {
                                h.join().unwrap();
                            }
                        }
                        t.elapsed().mul_f64(iters as f64 / (rounds * 1000) as f64)
                    })
                })
            },
        );
    }
}

/// Two fibers take turns: each wakes the other and parks. `workers` decides
/// whether they share a worker (local wakeups) or not (remote wakeups).
fn park_unpark(c: &mut Criterion) {
    for (workers, label) in [(1, "same worker"), (2, "across workers")] {
        let rt = runtime(workers);
        c.bench_function(
            &format!("park/unpark ping-pong round trip ({label})"),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(move || {
                        let turn = Arc::new(AtomicBool::new(false));
                        // The partner's waker, handed over without blocking the
                        // worker (std's blocking recv would stall the hub).
                        let slot = Arc::new(std::sync::Mutex::new(None));
                        let (t2, s2) = (turn.clone(), slot.clone());
                        let main = sylvan::park::current_waker();
                        // With two workers the idle one usually steals the
                        // partner, so most wakeups cross threads.
                        let partner = sylvan::spawn(move || {
                            *s2.lock().unwrap() = Some(sylvan::park::current_waker());
                            for _ in 0..iters {
                                while !t2.load(Ordering::Acquire) {
                                    sylvan::park::park();
                                }
                                t2.store(false, Ordering::Release);
                                main.wake();
                            }
                        });
                        // With two workers, busy-wait without yielding so this
                        // worker cannot run the partner: the other one steals it.
                        let other = loop {
                            if let Some(w) = slot.lock().unwrap().take() {
                                break w;
                            }
                            if workers == 1 {
                                sylvan::yield_now();
                            } else {
                                std::hint::spin_loop();
                            }
                        };
                        let t = Instant::now();
                        for _ in 0..iters {
                            turn.store(true, Ordering::Release);
                            other.wake();
                            while turn.load(Ordering::Acquire) {
                                sylvan::park::park();
                            }
                        }
                        let e = t.elapsed();
                        partner.join().unwrap();
                        e
                    })
                })
            },
        );
    }
}

fn timers(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("sleep(0 < d) wakeup, 1000 sleepers, per fiber", |b| {
        b.iter_custom(|iters| {
            let rounds = iters.div_ceil(1000);
            rt.block_on(move || {
                let t = Instant::now();
                for _ in 0..rounds {
                    let hs: Vec<_> = (0..1000)
                        .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_micros(1))))
                        .collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                }
                t.elapsed().mul_f64(iters as f64 / (rounds * 1000) as f64)
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = yields, spawns, park_unpark, timers
}
criterion_main!(benches);
