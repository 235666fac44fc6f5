//! The comparison workloads on sylvan. usage: wl-sylvan WORKLOAD WORKERS [N]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sylvan::sync::channel;
use sylvan_peers::{args, ns_per, peak_rss, report, rss};

fn spawn_join(n: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| sylvan::spawn(|| {})).collect();
    for h in handles {
        h.join().unwrap();
    }
    ns_per(start, n)
}

fn main() {
    let a = args();
    let rt = sylvan::Runtime::builder()
        .workers(a.workers)
        .build()
        .unwrap();
    let value = match a.workload.as_str() {
        "spawn" => {
            let n = a.n.unwrap_or(100_000);
            rt.block_on(move || {
                spawn_join(n); // warm: stacks and fiber records are pooled
                spawn_join(n)
            })
        }
        "pingpong" => {
            let n = a.n.unwrap_or(1_000_000);
            rt.block_on(move || {
                let (ping_tx, ping_rx) = channel::bounded::<u64>(1);
                let (pong_tx, pong_rx) = channel::bounded::<u64>(1);
                let echo = sylvan::spawn(move || {
                    for v in ping_rx {
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
        }
        "yield" => {
            let n = a.n.unwrap_or(1_000);
            rt.block_on(move || {
                let start = Instant::now();
                let tasks: Vec<_> = (0..1_000)
                    .map(|_| {
                        sylvan::spawn(move || {
                            for _ in 0..n {
                                sylvan::yield_now();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.join().unwrap();
                }
                ns_per(start, 1_000 * n)
            })
        }
        "idle" => {
            let n = a.n.unwrap_or(100_000);
            let base = rss();
            let per_task = rt.block_on(move || {
                let (tx, rx) = channel::bounded::<()>(0);
                let started = Arc::new(AtomicU64::new(0));
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let (rx, started) = (rx.clone(), started.clone());
                        sylvan::spawn(move || {
                            started.fetch_add(1, Ordering::Relaxed);
                            let _ = rx.recv();
                        })
                    })
                    .collect();
                while started.load(Ordering::Relaxed) < n {
                    sylvan::sleep(Duration::from_millis(1));
                }
                let per_task = (peak_rss() - base) as f64 / n as f64;
                drop(tx);
                for t in tasks {
                    t.join().unwrap();
                }
                per_task
            });
            per_task
        }
        "sleep" => {
            let n = a.n.unwrap_or(100_000);
            rt.block_on(move || {
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_millis(10))))
                    .collect();
                if std::env::var_os("SYLVAN_PEERS_SPLIT").is_some() {
                    eprintln!("spawned in {:?}", start.elapsed());
                }
                for t in tasks {
                    t.join().unwrap();
                }
                start.elapsed().as_secs_f64() * 1e3
            })
        }
        "park" => {
            // Scale: n fibers each park on one Event, then all are woken and
            // joined. Prints total ms; stderr gets the phases and peak RSS.
            let n = a.n.unwrap_or(1_000_000);
            let base = rss();
            rt.block_on(move || {
                let gate = Arc::new(sylvan::sync::Event::new());
                let started = Arc::new(AtomicU64::new(0));
                let all_started = Arc::new(sylvan::sync::Event::new());
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let (gate, started, all) =
                            (gate.clone(), started.clone(), all_started.clone());
                        sylvan::spawn(move || {
                            if started.fetch_add(1, Ordering::Relaxed) + 1 == n {
                                all.set();
                            }
                            gate.wait();
                        })
                    })
                    .collect();
                all_started.wait();
                let parked = start.elapsed();
                let rss_per = (peak_rss() - base) as f64 / n as f64;
                gate.set();
                for t in tasks {
                    t.join().unwrap();
                }
                let total = start.elapsed();
                eprintln!(
                    "park {n}: spawn+park {:.1} ms, wake+join {:.1} ms, {rss_per:.0} B/fiber peak",
                    parked.as_secs_f64() * 1e3,
                    (total - parked).as_secs_f64() * 1e3
                );
                total.as_secs_f64() * 1e3
            })
        }
        other => panic!("unknown workload {other}"),
    };
    // SYLVAN_PEERS_SPLIT=1: where the fibers ran (started, steals per worker).
    if std::env::var_os("SYLVAN_PEERS_SPLIT").is_some() {
        let m = rt.metrics();
        let w: Vec<(u64, u64)> = m.workers.iter().map(|w| (w.fibers_started, w.steals)).collect();
        eprintln!("(started, steals) per worker: {w:?}");
    }
    report(value);
}
