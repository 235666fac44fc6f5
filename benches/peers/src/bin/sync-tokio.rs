//! The sync workloads of `benches/sync.rs`, written the way a tokio user
//! would: a token over two `tokio::sync::mpsc` channels of capacity 1, and 8
//! tasks incrementing a counter under a `tokio::sync::Mutex`. Prints medians
//! of 5 runs for 1 and 2 worker threads.

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
    f();
    median((0..5).map(|_| f()).collect())
}

async fn ping_pong() -> Duration {
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v).await.unwrap();
        }
    });
    let t = Instant::now();
    for i in 0..ROUND_TRIPS {
        ping_tx.send(i).await.unwrap();
        pong_rx.recv().await.unwrap();
    }
    let e = t.elapsed();
    drop(ping_tx);
    echo.await.unwrap();
    e
}

async fn mutex() -> Duration {
    let m = Arc::new(tokio::sync::Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..PARTIES)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                for _ in 0..INCREMENTS {
                    *m.lock().await += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    let e = t.elapsed();
    assert_eq!(*m.lock().await, PARTIES as u64 * INCREMENTS);
    e
}

fn main() {
    for workers in [1, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap();
        // Run each workload as a task, as sylvan's block_on runs it as a
        // fiber (tokio's block_on would drive it on the calling thread).
        let pp = runs(|| rt.block_on(async { tokio::spawn(ping_pong()).await.unwrap() })).as_nanos()
            as f64
            / ROUND_TRIPS as f64;
        let mx = (PARTIES as u64 * INCREMENTS) as f64
            / runs(|| rt.block_on(async { tokio::spawn(mutex()).await.unwrap() })).as_secs_f64()
            / 1e6;
        println!("tokio, {workers} worker(s): ping-pong {pp:.0} ns/round trip; contended mutex {mx:.2} M lock/unlock per s");
    }
}
