//! Waiting on many fibers at once: `wait_any`, `wait_any_timeout`, `iwait`
//! (completion order) and `JoinHandle::join_timeout`, from fibers and plain
//! threads, on several workers. Order is driven by Events, not sleeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sylvan::sync::Event;

/// `n` fibers, the k-th returning k once its event is set.
fn gated(n: usize) -> (Vec<Arc<Event>>, Vec<sylvan::JoinHandle<usize>>) {
    let events: Vec<Arc<Event>> = (0..n).map(|_| Arc::new(Event::new())).collect();
    let handles = events
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let e = e.clone();
            sylvan::spawn(move || {
                e.wait();
                k
            })
        })
        .collect();
    (events, handles)
}

/// A fixed shuffle of 0..n.
fn order(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn iwait_follows_completion_order() {
    let n = 60;
    let (events, handles) = gated(n);
    let mut done = sylvan::iwait(handles);
    for k in order(n) {
        events[k].set();
        let (index, value) = done.next().unwrap();
        assert_eq!((index, value.unwrap()), (k, k));
    }
    assert!(done.next().is_none());
}

fn wait_any_names_a_finished_fiber() {
    let (events, mut handles) = gated(40);
    assert_eq!(
        sylvan::wait_any_timeout(&handles, Duration::from_millis(5)),
        None
    );
    let mut left: Vec<usize> = (0..40).collect();
    for k in order(40) {
        events[k].set();
        let at = sylvan::wait_any(&handles);
        assert!(handles[at].is_finished());
        assert_eq!(handles.swap_remove(at).join().unwrap(), k);
        left.retain(|&x| x != k);
    }
    assert!(left.is_empty());
}

#[test]
fn iwait_and_wait_any_in_a_fiber_on_two_workers() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        iwait_follows_completion_order();
        wait_any_names_a_finished_fiber();
    });
}

#[test]
fn iwait_and_wait_any_on_a_plain_thread() {
    iwait_follows_completion_order();
    wait_any_names_a_finished_fiber();
}

#[test]
fn join_timeout_hands_the_handle_back() {
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let h = sylvan::spawn(move || {
        g.wait();
        "done"
    });
    let started = Instant::now();
    let h = h.join_timeout(Duration::from_millis(20)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert!(!h.is_finished());
    gate.set();
    assert_eq!(
        h.join_timeout(Duration::from_secs(60))
            .ok()
            .unwrap()
            .unwrap(),
        "done"
    );
    // A panic comes back as the JoinError, as join gives it.
    let h = sylvan::spawn(|| panic!("inside"));
    let err = h
        .join_timeout(Duration::from_secs(60))
        .ok()
        .unwrap()
        .unwrap_err();
    assert!(err.is_panic());
}

#[test]
fn a_cancelled_waiter_leaves_the_handles_joinable() {
    let (events, handles) = gated(3);
    let handles = Arc::new(handles);
    let waiting = Arc::new(Event::new());
    let waiter = {
        let (handles, waiting) = (handles.clone(), waiting.clone());
        sylvan::spawn(move || {
            waiting.set();
            sylvan::wait_any(&handles)
        })
    };
    waiting.wait();
    // Delivered at the waiter's park in wait_any (now or when it gets there).
    waiter.cancel();
    assert!(waiter.join().unwrap_err().is_cancelled());
    // Joined by someone else afterwards: every value arrives.
    let handles = Arc::try_unwrap(handles).ok().unwrap();
    for e in &events {
        e.set();
    }
    let mut got: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
}

#[test]
#[should_panic(expected = "no handles to wait for")]
fn wait_any_on_nothing_says_so() {
    let none: Vec<sylvan::JoinHandle<()>> = Vec::new();
    sylvan::wait_any(&none);
}

/// Several callers of `wait_any` on the same shared handles are all woken
/// (found by review: a handle kept one waiter, so the last caller's
/// registration replaced the others', which then slept forever).
#[test]
fn wait_any_callers_sharing_handles_are_all_woken() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let woken = rt.block_on(|| {
        let gate = Arc::new(Event::new());
        let g = gate.clone();
        let handles = Arc::new(vec![sylvan::spawn(move || g.wait())]);
        let registered = Arc::new(sylvan::sync::WaitGroup::new());
        let watchers: Vec<_> = (0..3)
            .map(|_| {
                let (hs, reg) = (handles.clone(), registered.clone());
                reg.add(1);
                sylvan::spawn(move || {
                    reg.done();
                    sylvan::wait_any(&hs)
                })
            })
            .collect();
        // A plain thread waits on them too.
        let hs = handles.clone();
        let thread = std::thread::spawn(move || sylvan::wait_any(&hs));
        registered.wait();
        sylvan::sleep(Duration::from_millis(20)); // all park in wait_any
        gate.set();
        let mut woken: Vec<bool> = watchers
            .into_iter()
            .map(|w| w.join_timeout(Duration::from_secs(10)).is_ok())
            .collect();
        woken.push(thread.join().unwrap() == 0);
        woken
    });
    assert_eq!(woken, vec![true; 4], "every wait_any caller returns");
}
