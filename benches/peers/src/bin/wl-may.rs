//! The comparison workloads on may (stackful coroutines), written the way
//! may's examples do. usage: wl-may WORKLOAD WORKERS [N]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::coroutine;
use may::sync::{mpmc, mpsc, SyncFlag};
use sylvan_peers::{args, ns_per, peak_rss, report, rss};

/// Spawns a coroutine (may's spawn is unsafe: a coroutine must not block
/// its thread or use thread-locals across yields; these closures do
/// neither).
fn go<F, T>(f: F) -> coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: the closures passed here only use may's own blocking calls.
    unsafe { coroutine::spawn(f) }
}

fn spawn_join(n: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| go(|| {})).collect();
    for h in handles {
        h.join().unwrap();
    }
    ns_per(start, n)
}

fn main() {
    let a = args();
    may::config().set_workers(a.workers);
    let value = match a.workload.as_str() {
        "spawn" => {
            let n = a.n.unwrap_or(100_000);
            go(move || {
                spawn_join(n);
                spawn_join(n)
            })
            .join()
            .unwrap()
        }
        "pingpong" => {
            let n = a.n.unwrap_or(1_000_000);
            go(move || {
                let (ping_tx, ping_rx) = mpsc::channel::<u64>();
                let (pong_tx, pong_rx) = mpsc::channel::<u64>();
                let echo = go(move || {
                    while let Ok(v) = ping_rx.recv() {
                        pong_tx.send(v).unwrap();
                    }
                });
                let start = Instant::now();
                for i in 0..n {
                    ping_tx.send(i).unwrap();
                    assert_eq!(pong_rx.recv().unwrap(), i);
                }
                let ns = ns_per(start, n);
                drop(ping_tx);
                echo.join().unwrap();
                ns
            })
            .join()
            .unwrap()
        }
        "yield" => {
            let n = a.n.unwrap_or(1_000);
            go(move || {
                let start = Instant::now();
                let tasks: Vec<_> = (0..1_000)
                    .map(|_| {
                        go(move || {
                            for _ in 0..n {
                                coroutine::yield_now();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.join().unwrap();
                }
                ns_per(start, 1_000 * n)
            })
            .join()
            .unwrap()
        }
        "idle" => {
            let n = a.n.unwrap_or(100_000);
            let base = rss();
            go(move || {
                let (tx, rx) = mpmc::channel::<()>();
                let started = Arc::new(AtomicU64::new(0));
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let (rx, started) = (rx.clone(), started.clone());
                        go(move || {
                            started.fetch_add(1, Ordering::Relaxed);
                            let _ = rx.recv();
                        })
                    })
                    .collect();
                while started.load(Ordering::Relaxed) < n {
                    coroutine::sleep(Duration::from_millis(1));
                }
                let per_task = (peak_rss() - base) as f64 / n as f64;
                drop(tx);
                for t in tasks {
                    t.join().unwrap();
                }
                per_task
            })
            .join()
            .unwrap()
        }
        "sleep" => {
            let n = a.n.unwrap_or(100_000);
            go(move || {
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| go(|| coroutine::sleep(Duration::from_millis(10))))
                    .collect();
                for t in tasks {
                    t.join().unwrap();
                }
                start.elapsed().as_secs_f64() * 1e3
            })
            .join()
            .unwrap()
        }
        "park" => {
            // Scale: n coroutines each wait on one SyncFlag, then it fires
            // and all are joined. Prints total ms; stderr gets the phases
            // and peak RSS.
            let n = a.n.unwrap_or(1_000_000);
            let base = rss();
            go(move || {
                let gate = Arc::new(SyncFlag::new());
                let started = Arc::new(AtomicU64::new(0));
                let all_started = Arc::new(SyncFlag::new());
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let (gate, started, all) =
                            (gate.clone(), started.clone(), all_started.clone());
                        go(move || {
                            if started.fetch_add(1, Ordering::Relaxed) + 1 == n {
                                all.fire();
                            }
                            gate.wait();
                        })
                    })
                    .collect();
                all_started.wait();
                let parked = start.elapsed();
                let rss_per = (peak_rss() - base) as f64 / n as f64;
                gate.fire();
                for t in tasks {
                    t.join().unwrap();
                }
                let total = start.elapsed();
                eprintln!(
                    "park {n}: spawn+park {:.1} ms, wake+join {:.1} ms, {rss_per:.0} B/coroutine peak",
                    parked.as_secs_f64() * 1e3,
                    (total - parked).as_secs_f64() * 1e3
                );
                total.as_secs_f64() * 1e3
            })
            .join()
            .unwrap()
        }
        other => panic!("unknown workload {other}"),
    };
    report(value);
}
