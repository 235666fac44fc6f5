//! Cancellation, scoped fibers and runtime shutdown.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::DropCounter;
use support::{on_workers, Signal};

fn cancel_blocked_fibers(workers: usize) {
    on_workers(workers, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let never = Arc::new(Signal::new());
        let started = Arc::new(Signal::new());
        let mut handles = Vec::new();
        for i in 0..300 {
            let drops = drops.clone();
            let never = never.clone();
            let started = started.clone();
            handles.push(sylvan::spawn(move || {
                let _guard = DropCounter(drops);
                started.notify();
                match i % 3 {
                    0 => sylvan::sleep(Duration::from_secs(3600)),
                    1 => never.wait_for(1),
                    _ => loop {
                        sylvan::yield_now();
                    },
                }
            }));
        }
        // Every fiber is running (and about to block) before we cancel.
        started.wait_for(300);
        let start = Instant::now();
        for h in &handles {
            h.cancel();
        }
        for h in handles {
            let err = h.join().unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert!(err.to_string().contains("cancelled"));
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(drops.load(Ordering::SeqCst), 300, "every destructor ran");
    });
}

#[test]
fn cancel_blocked_fibers_one_worker() {
    cancel_blocked_fibers(1);
}

#[test]
fn cancel_blocked_fibers_four_workers() {
    cancel_blocked_fibers(4);
}

#[sylvan::test(workers = 1)]
fn cancel_before_start_and_after_finish() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    // One worker, and we do not park: the fiber cannot start before cancel.
    let h = sylvan::spawn(move || {
        r2.fetch_add(1, Ordering::SeqCst);
    });
    h.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a fiber cancelled before start never runs"
    );

    let done = sylvan::spawn(|| 5);
    while !done.is_finished() {
        sylvan::yield_now();
    }
    done.cancel(); // no-op on a finished fiber
    assert_eq!(done.join().unwrap(), 5);
}

#[sylvan::test(workers = 2)]
fn cancellation_can_be_observed_and_is_sticky() {
    let started = Arc::new(Signal::new());
    let caught = Arc::new(AtomicUsize::new(0));
    let (s2, c2) = (started.clone(), caught.clone());
    let h = sylvan::spawn(move || {
        s2.notify();
        // A fiber that catches the unwind and tries to block again is
        // cancelled again at its next park.
        let first = std::panic::catch_unwind(|| sylvan::sleep(Duration::from_secs(3600)));
        assert!(first.is_err());
        assert!(sylvan::current().is_cancelled());
        c2.fetch_add(1, Ordering::SeqCst);
        sylvan::sleep(Duration::from_secs(3600));
        unreachable!();
    });
    started.wait_for(1);
    h.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(
        caught.load(Ordering::SeqCst),
        1,
        "the first unwind was caught"
    );
}

#[sylvan::test(workers = 1)]
fn shielded_cleanup_runs_to_completion() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Signal::new());
    let (c2, s2) = (cleaned.clone(), started.clone());
    let h = sylvan::spawn(move || {
        s2.notify();
        struct Cleanup(Arc<AtomicUsize>);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                // Blocking during unwinding parks normally (no re-raise).
                sylvan::sleep(Duration::from_millis(5));
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _c = Cleanup(c2);
        sylvan::sleep(Duration::from_secs(3600));
    });
    started.wait_for(1);
    h.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
}

fn scope_borrows(workers: usize) {
    on_workers(workers, || {
        let words = ["alpha".to_string(), "beta".into(), "gamma".into()];
        let mut lengths = vec![0usize; words.len()];
        sylvan::scope(|s| {
            for (w, slot) in words.iter().zip(lengths.iter_mut()) {
                s.spawn(move || {
                    sylvan::sleep(Duration::from_millis(2));
                    *slot = w.len();
                });
            }
        });
        assert_eq!(lengths, [5, 4, 5]);
        // Joining returns values that borrow.
        let first = sylvan::scope(|s| s.spawn(|| words[0].as_str()).join().unwrap());
        assert_eq!(first, "alpha");
    });
}

#[test]
fn scope_borrows_one_worker() {
    scope_borrows(1);
}

#[test]
fn scope_borrows_four_workers() {
    scope_borrows(4);
}

#[test]
fn scope_from_a_plain_thread() {
    let counter = AtomicUsize::new(0);
    sylvan::scope(|s| {
        for _ in 0..100 {
            s.spawn(|| counter.fetch_add(1, Ordering::Relaxed));
        }
    });
    assert_eq!(counter.load(Ordering::Relaxed), 100);
}

#[sylvan::test(workers = 2)]
fn scope_panics_after_children_finish() {
    let finished = AtomicUsize::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sylvan::scope(|s| {
            s.spawn(|| panic!("child failed"));
            s.spawn(|| {
                sylvan::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::SeqCst);
            });
        })
    }));
    let msg = r.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"a scoped fiber panicked"));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the scope waited for the other child"
    );
    // A joined panic does not make the scope panic.
    sylvan::scope(|s| assert!(s.spawn(|| panic!("handled")).join().unwrap_err().is_panic()));
}

#[sylvan::test(workers = 2)]
fn timeout_around_a_scope_cancels_the_children() {
    let drops = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let r = sylvan::timeout(Duration::from_millis(20), || {
        sylvan::scope(|s| {
            for _ in 0..10 {
                let drops = drops.clone();
                s.spawn(move || {
                    let _g = DropCounter(drops);
                    sylvan::sleep(Duration::from_secs(3600));
                });
            }
            sylvan::sleep(Duration::from_secs(3600));
        })
    });
    assert!(r.is_err());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

/// A scoped fiber that is handed its own handle and joins it panics with a
/// message naming the fix, as `JoinHandle::join` does, instead of waiting
/// forever.
#[test]
fn a_scoped_fiber_joining_itself_panics_with_the_fix() {
    let message = sylvan::run(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        sylvan::scope(|s| {
            let own = Arc::new(std::sync::Mutex::new(None));
            let handed = Arc::new(sylvan::sync::Event::new());
            let h = s.spawn({
                let (own, handed) = (own.clone(), handed.clone());
                move || {
                    handed.wait();
                    let me: sylvan::ScopedJoinHandle<'_, ()> = own.lock().unwrap().take().unwrap();
                    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| me.join()))
                        .unwrap_err();
                    tx.send(err.downcast_ref::<String>().cloned().unwrap_or_default())
                        .unwrap();
                }
            });
            *own.lock().unwrap() = Some(h);
            handed.set();
        });
        rx.recv().unwrap()
    });
    assert!(message.contains("tried to join itself"), "{message}");
}
