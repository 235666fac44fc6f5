//! sylvan::sync::Event between fibers on several workers and plain threads.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{on_workers, Signal};
use sylvan::sync::Event;

#[test]
fn set_from_a_plain_thread_wakes_fibers_and_threads() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let event = Arc::new(Event::new());
    let woke = Arc::new(AtomicUsize::new(0));
    let waiting = Arc::new(AtomicUsize::new(0));
    let fibers: Vec<_> = (0..100)
        .map(|_| {
            let (e, w, q) = (event.clone(), woke.clone(), waiting.clone());
            rt.spawn(move || {
                q.fetch_add(1, Ordering::SeqCst);
                e.wait();
                w.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (e, w, q) = (event.clone(), woke.clone(), waiting.clone());
            std::thread::spawn(move || {
                q.fetch_add(1, Ordering::SeqCst);
                e.wait();
                w.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    // Nobody passes an unset event.
    assert!(!event.wait_timeout(Duration::from_millis(20)));
    assert_eq!(woke.load(Ordering::SeqCst), 0);
    event.set();
    for f in fibers {
        f.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(woke.load(Ordering::SeqCst), 104);
    assert_eq!(waiting.load(Ordering::SeqCst), 104);
}

#[test]
fn a_plain_thread_waits_for_a_fiber() {
    let event = Arc::new(Event::new());
    let e2 = event.clone();
    let t = std::thread::spawn(move || e2.wait_timeout(Duration::from_secs(30)));
    on_workers(2, move || {
        sylvan::sleep(Duration::from_millis(5));
        event.set();
    });
    assert!(t.join().unwrap());
}

#[sylvan::test(workers = 1)]
fn waiters_woken_by_a_set_return_even_if_cleared_again() {
    let event = Arc::new(Event::new());
    let started = Arc::new(Signal::new());
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let (e, s) = (event.clone(), started.clone());
            sylvan::spawn(move || {
                s.notify();
                e.wait();
            })
        })
        .collect();
    started.wait_for(10);
    sylvan::yield_now(); // all of them reach wait()
    event.set();
    event.clear();
    for h in hs {
        h.join().unwrap();
    }
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(1)));
}

#[sylvan::test(workers = 2)]
fn cancelled_and_timed_out_waiters_leave_cleanly() {
    let event = Arc::new(Event::new());
    let started = Arc::new(Signal::new());
    let victims: Vec<_> = (0..20)
        .map(|_| {
            let (e, s) = (event.clone(), started.clone());
            sylvan::spawn(move || {
                s.notify();
                e.wait();
            })
        })
        .collect();
    let e2 = event.clone();
    let timed = sylvan::spawn(move || sylvan::timeout(Duration::from_millis(10), || e2.wait()));
    started.wait_for(20);
    for v in &victims {
        v.cancel();
    }
    for v in victims {
        assert!(v.join().unwrap_err().is_cancelled());
    }
    assert!(timed.join().unwrap().is_err());
    // The event still works for new waiters.
    let e3 = event.clone();
    let late = sylvan::spawn(move || e3.wait());
    event.set();
    late.join().unwrap();
}
