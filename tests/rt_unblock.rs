//! The blocking pool as a user sizes it, and `unblock_scoped` borrowing
//! from the calling fiber. (Its own test binary: the pool's limit is
//! process-wide.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pool is process-wide: tests that count its threads run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_pool_limit_and_scoped_unblock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = sylvan::Runtime::builder()
        .workers(2)
        .blocking_threads(2)
        .build()
        .unwrap();
    rt.block_on(|| {
        // At most two jobs run at once; all sixteen finish.
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..16u64)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                sylvan::spawn(move || {
                    sylvan::unblock(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
            })
            .collect();
        let sum: u64 = jobs.into_iter().map(|j| j.join().unwrap()).sum();
        assert_eq!(sum, 120);
        assert_eq!(most.load(Ordering::SeqCst), 2);

        // Scoped: the closure borrows (and mutates) the fiber's own data.
        let mut words: Vec<String> = "b a c".split(' ').map(String::from).collect();
        let count = sylvan::unblock_scoped(|| {
            words.sort();
            words.len()
        });
        assert_eq!((count, words.join("")), (3, "abc".to_string()));

        // A panic in the closure is re-raised in the caller.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sylvan::unblock_scoped(|| panic!("on the pool"))
        }));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"on the pool"));

        a_cancellation_waits_for_the_borrow_to_end();
    });
}

/// A fiber cancelled 10 ms into a 150 ms scoped job: the job finishes with
/// its borrow intact, the code after the call runs, and the cancellation
/// lands at the next park point. (Run from the test above: every test here
/// shares the process-wide pool, whose limit that test sets.)
fn a_cancellation_waits_for_the_borrow_to_end() {
    let after = Arc::new(AtomicBool::new(false));
    let a = after.clone();
    let started = Instant::now();
    let h = sylvan::spawn(move || {
        let mut done = false;
        sylvan::unblock_scoped(|| {
            std::thread::sleep(Duration::from_millis(150));
            done = true;
        });
        assert!(done);
        a.store(true, Ordering::SeqCst);
        sylvan::sleep(Duration::from_secs(3600));
    });
    sylvan::sleep(Duration::from_millis(10));
    h.cancel();
    let err = h.join().unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(after.load(Ordering::SeqCst));
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn zero_blocking_threads_is_refused() {
    let err = sylvan::Runtime::builder()
        .blocking_threads(0)
        .build()
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("blocking_threads"), "{err}");
}

/// A job's result dropped on the pool (its caller gave up) whose destructor
/// panics costs no pool thread (found by review: the thread died and its
/// place in the count was never given back, so with every place lost,
/// `unblock` hung). Runs on the same limit as the test above.
#[test]
fn a_panicking_result_dropped_on_the_pool_costs_no_thread() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("PanicsOnDrop dropped");
        }
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .blocking_threads(2)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let v = rt.block_on(|| {
            for _ in 0..3 {
                let (done_tx, done) = std::sync::mpsc::channel();
                let r = sylvan::timeout(Duration::from_millis(10), || {
                    sylvan::unblock(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        let _ = done_tx.send(());
                        PanicsOnDrop
                    })
                });
                assert!(r.is_err());
                // The job has returned (its result is being dropped).
                done.recv_timeout(Duration::from_secs(10)).unwrap();
            }
            sylvan::unblock(|| 42)
        });
        let _ = tx.send(v);
    });
    let v = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("unblock hangs: pool threads were lost");
    assert_eq!(v, 42);
}
