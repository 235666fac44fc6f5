//! sylvan::sync::{AsyncResult, WaitGroup} across fibers and plain threads.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sylvan::sync::{AsyncResult, WaitGroup};

#[test]
fn async_result_wakes_fiber_and_thread_readers() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let r = Arc::new(AsyncResult::new());
    let fibers: Vec<_> = (0..50)
        .map(|_| {
            let r = r.clone();
            rt.spawn(move || r.get())
        })
        .collect();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.get())
        })
        .collect();
    assert!(!r.is_ready());
    assert_eq!(r.get_timeout(Duration::from_millis(5)), None);
    let r2 = r.clone();
    rt.spawn(move || r2.set(String::from("done")))
        .join()
        .unwrap();
    for f in fibers {
        assert_eq!(f.join().unwrap(), "done");
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), "done");
    }
    assert_eq!(r.try_get().as_deref(), Some("done"));
}

#[sylvan::test(workers = 1)]
fn async_result_waiter_can_be_cancelled() {
    let r: Arc<AsyncResult<u32>> = Arc::new(AsyncResult::new());
    let r2 = r.clone();
    let started = Arc::new(support::Signal::new());
    let s2 = started.clone();
    let h = sylvan::spawn(move || {
        s2.notify();
        r2.get()
    });
    started.wait_for(1); // it runs on until it parks in get()
    h.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
    r.set(3);
    assert_eq!(r.get(), 3);
}

#[test]
fn wait_group_across_workers_and_threads() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let wg = Arc::new(WaitGroup::new());
    let finished = Arc::new(AtomicUsize::new(0));
    wg.add(200);
    for i in 0..200u64 {
        let (wg, finished) = (wg.clone(), finished.clone());
        rt.spawn(move || {
            sylvan::sleep(Duration::from_micros(i % 50));
            finished.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    // One waiter is a plain thread, one a fiber.
    let (w1, f1) = (wg.clone(), finished.clone());
    let t = std::thread::spawn(move || {
        w1.wait();
        f1.load(Ordering::SeqCst)
    });
    let (w2, f2) = (wg.clone(), finished.clone());
    let f = rt.spawn(move || {
        w2.wait();
        f2.load(Ordering::SeqCst)
    });
    assert_eq!(t.join().unwrap(), 200);
    assert_eq!(f.join().unwrap(), 200);
    assert_eq!(wg.count(), 0);
    assert!(wg.wait_timeout(Duration::from_millis(1)));
    wg.add(1);
    assert!(!wg.wait_timeout(Duration::from_millis(5)));
    wg.done();
}

#[test]
fn wait_group_underflow_panics_with_a_message() {
    let wg = WaitGroup::new();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.done())).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("more times than WaitGroup::add"), "{msg}");
}
