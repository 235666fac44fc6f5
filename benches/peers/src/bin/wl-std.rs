//! The comparison workloads on plain OS threads (std), where meaningful.
//! usage: wl-std WORKLOAD WORKERS [N] (WORKERS is ignored: the kernel
//! schedules every thread on every core)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sylvan_peers::{args, ns_per, peak_rss, report, rss};

fn spawn_join(n: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| std::thread::spawn(|| {})).collect();
    for h in handles {
        h.join().unwrap();
    }
    ns_per(start, n)
}

fn main() {
    let a = args();
    let value = match a.workload.as_str() {
        "spawn" => {
            let n = a.n.unwrap_or(10_000);
            spawn_join(n);
            spawn_join(n)
        }
        "pingpong" => {
            let n = a.n.unwrap_or(20_000);
            let (ping_tx, ping_rx) = mpsc::sync_channel::<u64>(1);
            let (pong_tx, pong_rx) = mpsc::sync_channel::<u64>(1);
            let echo = std::thread::spawn(move || {
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
        }
        "yield" => {
            let n = a.n.unwrap_or(1_000);
            let start = Instant::now();
            let tasks: Vec<_> = (0..1_000)
                .map(|_| {
                    std::thread::spawn(move || {
                        for _ in 0..n {
                            std::thread::yield_now();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.join().unwrap();
            }
            ns_per(start, 1_000 * n)
        }
        "idle" => {
            let n = a.n.unwrap_or(10_000);
            let base = rss();
            let started = Arc::new(AtomicU64::new(0));
            let (senders, tasks): (Vec<_>, Vec<_>) = (0..n)
                .map(|_| {
                    let (tx, rx) = mpsc::channel::<()>();
                    let started = started.clone();
                    let t = std::thread::spawn(move || {
                        started.fetch_add(1, Ordering::Relaxed);
                        let _ = rx.recv();
                    });
                    (tx, t)
                })
                .unzip();
            while started.load(Ordering::Relaxed) < n {
                std::thread::sleep(Duration::from_millis(1));
            }
            let per_task = (peak_rss() - base) as f64 / n as f64;
            drop(senders);
            for t in tasks {
                t.join().unwrap();
            }
            per_task
        }
        "sleep" => {
            let n = a.n.unwrap_or(10_000);
            let start = Instant::now();
            let tasks: Vec<_> = (0..n)
                .map(|_| std::thread::spawn(|| std::thread::sleep(Duration::from_millis(10))))
                .collect();
            for t in tasks {
                t.join().unwrap();
            }
            start.elapsed().as_secs_f64() * 1e3
        }
        "park" => {
            // Scale: n threads each wait on one gate (a flag under a mutex
            // and a condvar), then it opens (notify_all) and all are joined.
            // Prints total ms; stderr gets the phases and peak RSS.
            let n = a.n.unwrap_or(10_000);
            let base = rss();
            let gate = Arc::new((Mutex::new(false), Condvar::new()));
            let started = Arc::new(AtomicU64::new(0));
            let (all_tx, all_rx) = mpsc::channel::<()>();
            let start = Instant::now();
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let (gate, started, all) = (gate.clone(), started.clone(), all_tx.clone());
                    std::thread::spawn(move || {
                        if started.fetch_add(1, Ordering::Relaxed) + 1 == n {
                            all.send(()).unwrap();
                        }
                        let (open, cv) = &*gate;
                        let _open = cv.wait_while(open.lock().unwrap(), |o| !*o).unwrap();
                    })
                })
                .collect();
            all_rx.recv().unwrap();
            let parked = start.elapsed();
            let rss_per = (peak_rss() - base) as f64 / n as f64;
            *gate.0.lock().unwrap() = true;
            gate.1.notify_all();
            for t in tasks {
                t.join().unwrap();
            }
            let total = start.elapsed();
            eprintln!(
                "park {n}: spawn+park {:.1} ms, wake+join {:.1} ms, {rss_per:.0} B/thread peak",
                parked.as_secs_f64() * 1e3,
                (total - parked).as_secs_f64() * 1e3
            );
            total.as_secs_f64() * 1e3
        }
        other => panic!("unknown workload {other}"),
    };
    report(value);
}
