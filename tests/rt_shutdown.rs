//! Runtime shutdown: fibers cancelled or dropped, destructors run, worker
//! threads joined. Kept in its own test binary, with its tests serialised,
//! because it counts the process's threads.

mod support;

use support::DropCounter;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn shutdown_cancels_fibers_runs_destructors_and_joins_threads() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = support::worker_thread_count();
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let rt = sylvan::Runtime::builder().workers(3).build().unwrap();
        assert_eq!(support::settle_worker_threads(before + 3), before + 3);
        let d = drops.clone();
        let handles: Vec<_> = rt.block_on(move || {
            (0..200)
                .map(|_| {
                    // Captured, so it is dropped whether or not the fiber started.
                    let g = DropCounter(d.clone());
                    sylvan::spawn(move || {
                        let _g = g;
                        sylvan::sleep(Duration::from_secs(3600));
                    })
                })
                .collect()
        });
        // Plain threads still hold handles to fibers of the runtime.
        let joiner = std::thread::spawn(move || {
            handles
                .into_iter()
                .all(|h| h.join().unwrap_err().is_cancelled())
        });
        drop(rt);
        assert!(joiner.join().unwrap(), "every fiber ends as cancelled");
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        200,
        "destructors of cancelled fibers ran"
    );
    assert_eq!(
        support::settle_worker_threads(before),
        before,
        "worker threads were joined"
    );
}

#[test]
fn run_shuts_down_its_runtime() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = support::worker_thread_count();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let value = sylvan::run(move || {
        for _ in 0..10 {
            let g = DropCounter(d.clone());
            // Detached fibers still running (or not yet started) when `run`'s
            // closure returns.
            sylvan::spawn(move || {
                let _g = g;
                sylvan::sleep(Duration::from_secs(3600));
            });
        }
        sylvan::yield_now();
        "done"
    });
    assert_eq!(value, "done");
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    assert_eq!(support::settle_worker_threads(before), before);
}

#[test]
fn idle_workers_use_no_cpu() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    rt.block_on(|| sylvan::spawn(|| ()).join().unwrap());
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 (1-based) of the full line,
        // i.e. 11 and 12 after the ')' split.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_millis(500));
    let ticks = cpu() - before;
    // 4 spinning workers would burn ~200 ticks (100 Hz) in 0.5 s.
    assert!(ticks <= 5, "idle runtime used {ticks} clock ticks in 0.5 s");
    drop(rt);
}
