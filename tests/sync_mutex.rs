//! sylvan::sync::Mutex: exclusion across workers and threads while the guard
//! is held across blocking calls, FIFO hand-off, and hand-off on cancel.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{spawn_started, Signal};
use sylvan::sync::Mutex;

#[test]
fn exclusion_with_the_guard_held_across_blocking_calls() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    // (value, holders inside right now)
    let m = Arc::new(Mutex::new((0u64, 0u32)));
    let body = {
        let m = m.clone();
        move || {
            for k in 0..50u64 {
                let mut g = m.lock();
                g.1 += 1;
                assert_eq!(g.1, 1, "two holders at once");
                if k % 10 == 0 {
                    sylvan::sleep(Duration::from_micros(100));
                } else {
                    sylvan::yield_now();
                }
                g.0 += 1;
                g.1 -= 1;
            }
        }
    };
    let fibers: Vec<_> = (0..40).map(|_| rt.spawn(body.clone())).collect();
    let threads: Vec<_> = (0..3).map(|_| std::thread::spawn(body.clone())).collect();
    for f in fibers {
        f.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(m.lock().0, 43 * 50);
    assert!(!m.is_locked());
}

#[sylvan::test(workers = 1)]
fn fifo_hand_off_and_no_barging() {
    let m = Arc::new(Mutex::new(Vec::new()));
    let held = m.lock();
    let hs: Vec<_> = (0..8)
        .map(|i| {
            let m2 = m.clone();
            let started = Arc::new(Signal::new());
            let s2 = started.clone();
            let h = sylvan::spawn(move || {
                s2.notify();
                m2.lock().push(i);
            });
            started.wait_for(1);
            sylvan::yield_now(); // it is now queued on the lock
            h
        })
        .collect();
    drop(held);
    assert!(
        m.try_lock().is_none(),
        "try_lock must not barge past waiters"
    );
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), (0..8).collect::<Vec<_>>());
}

#[sylvan::test(workers = 1)]
fn ownership_handed_to_a_cancelled_waiter_passes_on() {
    let m = Arc::new(Mutex::new(0));
    let held = m.lock();
    let (m1, m2) = (m.clone(), m.clone());
    // Each returns once the fiber is parked in lock().
    let first = spawn_started(move || {
        let _g = m1.lock();
        unreachable!("cancelled before it resumes with the lock");
    });
    let second = spawn_started(move || {
        *m2.lock() += 1;
    });
    drop(held); // hands the lock to `first`...
    first.cancel(); // ...which is cancelled before it runs
    assert!(first.join().unwrap_err().is_cancelled());
    second.join().unwrap();
    assert_eq!(*m.lock(), 1);
    assert!(!m.is_locked());
}

#[sylvan::test(workers = 2)]
fn lock_timeout_and_timeout_scopes() {
    let m = Arc::new(Mutex::new(()));
    let g = m.lock();
    let m2 = m.clone();
    let r = sylvan::spawn(move || m2.lock_timeout(Duration::from_millis(5)).is_none())
        .join()
        .unwrap();
    assert!(r);
    let m3 = m.clone();
    let scoped = sylvan::spawn(move || {
        sylvan::timeout(Duration::from_millis(5), || drop(m3.lock())).is_err()
    })
    .join()
    .unwrap();
    assert!(scoped);
    drop(g);
    assert!(m.lock_timeout(Duration::from_millis(5)).is_some());
    assert!(!m.is_locked());
}

#[sylvan::test(workers = 2)]
fn a_panic_while_holding_releases_the_lock() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = sylvan::spawn(move || {
        let _g = m2.lock();
        panic!("while holding");
    })
    .join();
    assert!(r.unwrap_err().is_panic());
    assert_eq!(*m.lock(), 1, "no poisoning");
}
