//! sylvan::sync::Semaphore: limits, FIFO fairness, and no permit lost or
//! doubled when waiters are cancelled or time out.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::spawn_started;
use sylvan::sync::Semaphore;

/// Waits (cooperatively) until `n` acquirers are queued.
fn until_waiting(sem: &Semaphore, n: usize) {
    while sem.waiters() < n {
        sylvan::yield_now();
    }
}

#[test]
fn limit_holds_across_workers_and_threads() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let sem = Arc::new(Semaphore::new(4));
    let inside = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let body = {
        let (sem, inside, max_seen, done) =
            (sem.clone(), inside.clone(), max_seen.clone(), done.clone());
        move || {
            for _ in 0..20 {
                let _p = sem.acquire();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                sylvan::yield_now();
                inside.fetch_sub(1, Ordering::SeqCst);
            }
            done.fetch_add(1, Ordering::SeqCst);
        }
    };
    let fibers: Vec<_> = (0..64).map(|_| rt.spawn(body.clone())).collect();
    let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(body.clone())).collect();
    for f in fibers {
        f.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 68);
    assert!(
        max_seen.load(Ordering::SeqCst) <= 4,
        "limit exceeded: {}",
        max_seen.load(Ordering::SeqCst)
    );
    assert_eq!(sem.available_permits(), 4);
    assert_eq!(sem.waiters(), 0);
}

#[sylvan::test(workers = 1)]
fn waiters_are_served_in_fifo_order_and_new_comers_do_not_barge() {
    let sem = Arc::new(Semaphore::new(1));
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = sem.acquire();
    let hs: Vec<_> = (0..10)
        .map(|i| {
            let (s2, order) = (sem.clone(), order.clone());
            let h = sylvan::spawn(move || {
                let _p = s2.acquire();
                order.lock().unwrap().push(i);
            });
            // Each one queues before the next is spawned.
            until_waiting(&sem, i + 1);
            h
        })
        .collect();
    // A permit is free only after `held` drops, and it goes to waiter 0,
    // not to a newcomer trying its luck.
    drop(held);
    assert!(
        sem.try_acquire().is_none(),
        "try_acquire must not barge past waiters"
    );
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(sem.available_permits(), 1);
}

/// Many acquirers on 4 workers; some are cancelled, some time out (with
/// acquire_timeout or an enclosing sylvan::timeout), at random moments that
/// often coincide with a permit being handed to them. Every permit must come
/// back and the limit must hold throughout.
#[test]
fn cancellations_and_timeouts_lose_no_permit() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let permits = 3;
    let sem = Arc::new(Semaphore::new(permits));
    let inside = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..400u64)
        .map(|i| {
            let (sem, inside, max_seen, acquired) = (
                sem.clone(),
                inside.clone(),
                max_seen.clone(),
                acquired.clone(),
            );
            rt.spawn(move || {
                let hold = || {
                    // Leaves `inside` also when unwound mid-sleep by a
                    // cancellation or timeout (the permit guard drops too).
                    struct Inside<'a>(&'a AtomicUsize);
                    impl Drop for Inside<'_> {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    let _inside = Inside(&inside);
                    max_seen.fetch_max(now, Ordering::SeqCst);
                    acquired.fetch_add(1, Ordering::SeqCst);
                    sylvan::sleep(Duration::from_micros(50 + (i % 7) * 30));
                };
                match i % 3 {
                    0 => {
                        let _p = sem.acquire();
                        hold();
                    }
                    1 => {
                        if let Some(_p) =
                            sem.acquire_timeout(Duration::from_micros(100 + (i % 11) * 50))
                        {
                            hold();
                        }
                    }
                    _ => {
                        let _ = sylvan::timeout(Duration::from_micros(100 + (i % 13) * 40), || {
                            let _p = sem.acquire();
                            hold();
                        });
                    }
                }
            })
        })
        .collect();
    // Cancel every fifth fiber at a random-ish moment.
    let mut seed = 0x9e37_79b9_u64;
    for (k, h) in handles.iter().enumerate() {
        if k % 5 == 0 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_micros(seed % 200));
            h.cancel();
        }
    }
    for h in handles {
        // Cancelled, timed out or done: all fine; no panic allowed.
        if let Err(e) = h.join() {
            assert!(e.is_cancelled(), "{e}");
        }
    }
    assert!(max_seen.load(Ordering::SeqCst) <= permits);
    assert!(acquired.load(Ordering::SeqCst) > 0);
    assert_eq!(sem.waiters(), 0);
    assert_eq!(
        sem.available_permits(),
        permits,
        "a permit was lost or doubled"
    );
}

#[sylvan::test(workers = 1)]
fn a_permit_handed_to_a_cancelled_waiter_passes_to_the_next() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    let s1 = sem.clone();
    let first = spawn_started(move || {
        let _p = s1.acquire();
        unreachable!("cancelled before it can run with the permit");
    });
    until_waiting(&sem, 1);
    let s2 = sem.clone();
    let second = sylvan::spawn(move || {
        let _p = s2.acquire();
        7
    });
    until_waiting(&sem, 2);
    // On one worker nothing runs in between: the permit is handed to
    // `first` (marked notified) and then `first` is cancelled before it
    // resumes, so it must pass the permit to `second`.
    drop(held);
    first.cancel();
    assert!(first.join().unwrap_err().is_cancelled());
    assert_eq!(second.join().unwrap(), 7);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn add_permits_and_forget() {
    let sem = Semaphore::new(0);
    assert!(sem.try_acquire().is_none());
    sem.add_permits(2);
    let a = sem.try_acquire().unwrap();
    a.forget();
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.acquire_timeout(Duration::from_millis(1)).is_some());
    assert_eq!(sem.available_permits(), 1);
}

/// `add_permits` of a huge count (the "open the gate" idiom) returns at
/// once (found by review: it looped once per permit under the lock).
#[test]
fn adding_a_huge_number_of_permits_is_immediate() {
    let sem = Arc::new(Semaphore::new(0));
    let waiter = {
        let sem = sem.clone();
        std::thread::spawn(move || drop(sem.acquire()))
    };
    let t = {
        let sem = sem.clone();
        std::thread::spawn(move || sem.add_permits(usize::MAX / 2))
    };
    t.join().unwrap();
    waiter.join().unwrap();
    // The waiter (if it was queued) took one and gave it back.
    assert_eq!(sem.available_permits(), usize::MAX / 2);
}

/// Overflowing the permit count panics with a message naming the
/// semaphore, and changes nothing (it wrapped to 0 in release builds).
#[test]
fn overflowing_the_permits_panics_and_changes_nothing() {
    let sem = Semaphore::new(usize::MAX);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sem.add_permits(1)))
        .expect_err("overflow panics");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains("Semaphore") && msg.contains("overflows"),
        "{msg}"
    );
    assert_eq!(sem.available_permits(), usize::MAX);
}
