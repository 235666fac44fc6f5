//! sleep, timers and `timeout` for any block of code.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::on_workers;
use support::DropCounter;

#[test]
fn hundred_thousand_concurrent_sleepers() {
    let elapsed = on_workers(2, || {
        let start = Instant::now();
        let handles: Vec<_> = (0..100_000u32)
            .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_millis(50))))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        start.elapsed()
    });
    // Concurrent, not serial: far below 100,000 × 50 ms. Generous bound for a
    // loaded debug build on 2 cores.
    assert!(elapsed >= Duration::from_millis(50));
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

fn timers_fire_in_order(workers: usize) {
    on_workers(workers, || {
        let order = Arc::new(parking_lot_free::OrderLog::default());
        let handles: Vec<_> = [30u64, 10, 20, 0, 40]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                sylvan::spawn_local(move || {
                    sylvan::sleep(Duration::from_millis(ms));
                    order.push(ms);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(order.take(), vec![0, 10, 20, 30, 40]);
    });
}

mod parking_lot_free {
    #[derive(Default)]
    pub struct OrderLog(std::sync::Mutex<Vec<u64>>);
    impl OrderLog {
        pub fn push(&self, v: u64) {
            self.0.lock().unwrap().push(v);
        }
        pub fn take(&self) -> Vec<u64> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }
}

#[test]
fn timers_fire_in_deadline_order_one_worker() {
    timers_fire_in_order(1);
}

#[test]
fn timers_fire_in_deadline_order_four_workers() {
    timers_fire_in_order(4);
}

#[sylvan::test(workers = 1)]
fn sleep_until_and_zero_sleeps() {
    let t = Instant::now() + Duration::from_millis(15);
    sylvan::sleep_until(t);
    assert!(Instant::now() >= t);
    sylvan::sleep(Duration::ZERO);
    sylvan::sleep_until(Instant::now() - Duration::from_millis(1));
}

fn timeout_interrupts_blocking_calls(workers: usize) {
    on_workers(workers, || {
        let drops = Arc::new(AtomicUsize::new(0));
        // A sleep.
        let d = drops.clone();
        let start = Instant::now();
        let r = sylvan::timeout(Duration::from_millis(30), move || {
            let _guard = DropCounter(d);
            sylvan::sleep(Duration::from_secs(60));
        });
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "destructor ran on timeout");
        // A join of a fiber that takes too long (the fiber itself keeps running).
        let slow = sylvan::spawn(|| {
            sylvan::sleep(Duration::from_millis(200));
            9
        });
        let slow = Arc::new(std::sync::Mutex::new(Some(slow)));
        let s2 = slow.clone();
        let r = sylvan::timeout(Duration::from_millis(20), move || {
            let h = s2.lock().unwrap().take().unwrap();
            h.join()
        });
        assert!(r.is_err());
        // A block that finishes in time returns its value.
        assert_eq!(
            sylvan::timeout(Duration::from_secs(5), || {
                sylvan::sleep(Duration::from_millis(1));
                "ok"
            }),
            Ok("ok")
        );
        // The fiber's deadlines are gone: later parks are not interrupted.
        sylvan::sleep(Duration::from_millis(40));
    });
}

#[test]
fn timeout_interrupts_blocking_calls_one_worker() {
    timeout_interrupts_blocking_calls(1);
}

#[test]
fn timeout_interrupts_blocking_calls_four_workers() {
    timeout_interrupts_blocking_calls(4);
}

#[sylvan::test(workers = 2)]
fn timeout_does_not_swallow_panics_and_nests() {
    let r = std::panic::catch_unwind(|| {
        let _ = sylvan::timeout(Duration::from_secs(5), || panic!("real panic"));
    });
    assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"real panic"));
    // Outer deadline first: the inner timeout does not catch it.
    let start = Instant::now();
    let outer = sylvan::timeout(Duration::from_millis(20), || {
        let inner = sylvan::timeout(Duration::from_secs(60), || {
            sylvan::sleep(Duration::from_secs(60))
        });
        panic!("inner returned {inner:?}; the outer deadline should have unwound it");
    });
    assert!(outer.is_err());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[sylvan::test(workers = 2)]
fn many_fibers_with_timeouts() {
    let handles: Vec<_> = (0..2_000u64)
        .map(|i| {
            sylvan::spawn(move || {
                // Even fibers finish in time, odd ones time out.
                let work = if i % 2 == 0 { 1 } else { 500 };
                sylvan::timeout(Duration::from_millis(50), || {
                    sylvan::sleep(Duration::from_millis(work))
                })
                .is_ok()
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&b| b)
        .count();
    assert_eq!(ok, 1_000);
}
