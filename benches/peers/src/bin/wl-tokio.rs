//! The comparison workloads on tokio's multi-thread runtime, written the
//! way a tokio user would. usage: wl-tokio WORKLOAD WORKERS [N]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sylvan_peers::{args, ns_per, peak_rss, report, rss};
use tokio::sync::{mpsc, watch, Notify};

async fn spawn_join(n: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
    for h in handles {
        h.await.unwrap();
    }
    ns_per(start, n)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.workers)
        .enable_all()
        .build()
        .unwrap();
    let value = match a.workload.as_str() {
        "spawn" => {
            let n = a.n.unwrap_or(100_000);
            // From a worker task, where tokio spawns onto its local queue.
            rt.block_on(async move {
                tokio::spawn(async move {
                    spawn_join(n).await;
                    spawn_join(n).await
                })
                .await
                .unwrap()
            })
        }
        "pingpong" => {
            let n = a.n.unwrap_or(1_000_000);
            rt.block_on(async move {
                let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
                let echo = tokio::spawn(async move {
                    while let Some(v) = ping_rx.recv().await {
                        pong_tx.send(v).await.unwrap();
                    }
                });
                // The driving side is a spawned task too (block_on's future
                // runs off the worker threads).
                let driver = tokio::spawn(async move {
                    let start = Instant::now();
                    for i in 0..n {
                        ping_tx.send(i).await.unwrap();
                        assert_eq!(pong_rx.recv().await.unwrap(), i);
                    }
                    ns_per(start, n)
                });
                let ns = driver.await.unwrap();
                echo.await.unwrap();
                ns
            })
        }
        "yield" => {
            let n = a.n.unwrap_or(1_000);
            rt.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..1_000)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..n {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                ns_per(start, 1_000 * n)
            })
        }
        "idle" => {
            let n = a.n.unwrap_or(100_000);
            let base = rss();
            rt.block_on(async move {
                let (tx, rx) = watch::channel(());
                let started = Arc::new(AtomicU64::new(0));
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let (mut rx, started) = (rx.clone(), started.clone());
                        tokio::spawn(async move {
                            started.fetch_add(1, Ordering::Relaxed);
                            let _ = rx.changed().await;
                        })
                    })
                    .collect();
                while started.load(Ordering::Relaxed) < n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let per_task = (peak_rss() - base) as f64 / n as f64;
                drop(tx);
                for t in tasks {
                    t.await.unwrap();
                }
                per_task
            })
        }
        "sleep" => {
            let n = a.n.unwrap_or(100_000);
            rt.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| tokio::spawn(tokio::time::sleep(Duration::from_millis(10))))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed().as_secs_f64() * 1e3
            })
        }
        "park" => {
            // Scale: n tasks each wait on one Notify, then all are woken
            // (notify_waiters) and joined. Prints total ms; stderr gets the
            // phases and peak RSS. Driven from a spawned task, where tokio
            // spawns onto its local queue.
            let n = a.n.unwrap_or(1_000_000);
            let base = rss();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let gate = Arc::new(Notify::new());
                    let started = Arc::new(AtomicU64::new(0));
                    let all_started = Arc::new(Notify::new());
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..n)
                        .map(|_| {
                            let (gate, started, all) =
                                (gate.clone(), started.clone(), all_started.clone());
                            tokio::spawn(async move {
                                // A Notified receives notify_waiters from
                                // its creation on, before its first poll.
                                let woken = gate.notified();
                                if started.fetch_add(1, Ordering::Relaxed) + 1 == n {
                                    all.notify_one();
                                }
                                woken.await;
                            })
                        })
                        .collect();
                    all_started.notified().await;
                    let parked = start.elapsed();
                    let rss_per = (peak_rss() - base) as f64 / n as f64;
                    gate.notify_waiters();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    let total = start.elapsed();
                    eprintln!(
                        "park {n}: spawn+park {:.1} ms, wake+join {:.1} ms, {rss_per:.0} B/task peak",
                        parked.as_secs_f64() * 1e3,
                        (total - parked).as_secs_f64() * 1e3
                    );
                    total.as_secs_f64() * 1e3
                })
                .await
                .unwrap()
            })
        }
        other => panic!("unknown workload {other}"),
    };
    report(value);
}
