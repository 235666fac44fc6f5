//! Edge cases of the runtime API: nesting, odd durations, dropping a runtime
//! from inside itself, panicking destructors.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{on_workers, DropCounter};

#[sylvan::test(workers = 1)]
fn zero_and_huge_durations() {
    // A zero timeout expires at the first park.
    let r = sylvan::timeout(Duration::ZERO, || sylvan::sleep(Duration::from_secs(5)));
    assert!(r.is_err());
    // ...but code that never parks still completes.
    assert_eq!(sylvan::timeout(Duration::ZERO, || 5), Ok(5));
    // Durations too large for Instant: sleep until cancelled, timeout never fires.
    let started = Arc::new(support::Signal::new());
    let s2 = started.clone();
    let h = sylvan::spawn(move || {
        s2.notify();
        sylvan::sleep(Duration::MAX)
    });
    started.wait_for(1);
    h.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(sylvan::timeout(Duration::MAX, || 7), Ok(7));
}

#[test]
fn nested_run_inside_a_fiber_of_another_runtime() {
    let outer = on_workers(2, || {
        // A whole runtime started and shut down from inside a fiber.
        let inner = sylvan::run(|| sylvan::spawn(|| 20).join().unwrap());
        inner + sylvan::spawn(|| 1).join().unwrap()
    });
    assert_eq!(outer, 21);
}

#[test]
fn block_on_from_a_fiber_of_another_runtime() {
    let a = Arc::new(
        sylvan::Runtime::builder()
            .workers(1)
            .thread_name("rt-a")
            .build()
            .unwrap(),
    );
    let b = sylvan::Runtime::builder()
        .workers(1)
        .thread_name("rt-b")
        .build()
        .unwrap();
    let a2 = a.clone();
    let v = b.block_on(move || {
        let on_a = a2.block_on(|| std::thread::current().name().map(String::from));
        (on_a, std::thread::current().name().map(String::from))
    });
    // The inner closure ran on runtime a; the caller stayed on runtime b.
    assert_eq!(v.0.as_deref(), Some("rt-a-0"));
    assert_eq!(v.1.as_deref(), Some("rt-b-0"));
}

#[test]
fn runtime_dropped_from_one_of_its_own_fibers() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel::<sylvan::Runtime>();
    let d = drops.clone();
    let waiter = rt.spawn(move || {
        let g = DropCounter(d);
        // Take ownership of the runtime we run on, and drop it here.
        let rt = sylvan::unblock(move || rx.recv().unwrap());
        drop(rt);
        drop(g);
    });
    tx.send(rt).unwrap();
    // The fiber itself gets cancelled by the shutdown it started (it parks
    // nowhere after the drop, so it finishes), and the join reports either.
    let _ = waiter.join();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn panicking_destructors_of_fiber_locals_do_not_break_the_worker() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("fiber-local destructor panicked");
        }
    }
    sylvan::fiber_local! {
        static BOMB: std::cell::RefCell<Option<Bomb>> = std::cell::RefCell::new(None);
    }
    on_workers(1, || {
        let h = sylvan::spawn(|| {
            BOMB.with(|b| *b.borrow_mut() = Some(Bomb));
            42
        });
        // The fiber's value survives its local's panicking destructor.
        assert_eq!(h.join().unwrap(), 42);
        assert_eq!(sylvan::spawn(|| 1).join().unwrap(), 1);
    });
}

#[test]
fn timeout_on_a_plain_thread_interrupts_a_join() {
    let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    let start = Instant::now();
    let r = sylvan::timeout(Duration::from_millis(30), || h.join());
    assert!(r.is_err());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn many_runtimes_in_sequence_leave_nothing_behind() {
    for i in 0..20u64 {
        let v = sylvan::Runtime::builder()
            .workers(1 + (i as usize % 3))
            .build()
            .unwrap()
            .block_on(move || {
                let hs: Vec<_> = (0..100u64).map(|k| sylvan::spawn(move || k + i)).collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
        assert_eq!(v, (0..100).sum::<u64>() + 100 * i);
    }
}

/// A fiber-local whose destructor uses its own key: the use panics (as
/// `thread_local!`'s does, reported), and the fiber ends (found by review:
/// the key was made again and dropped again, for ever).
#[test]
fn a_fiber_local_destructor_using_its_own_key_ends() {
    static SEEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    struct TouchesSelf;
    impl Drop for TouchesSelf {
        fn drop(&mut self) {
            SELF_KEY.with(|_| ());
        }
    }
    struct TouchesOther(&'static sylvan::LocalKey<std::cell::Cell<u32>>);
    impl Drop for TouchesOther {
        fn drop(&mut self) {
            // Not dropped yet (made before this one): still usable.
            SEEN.store(self.0.with(|c| c.get() + 1), Ordering::SeqCst);
        }
    }
    sylvan::fiber_local! {
        static SELF_KEY: TouchesSelf = TouchesSelf;
        static COUNT: std::cell::Cell<u32> = std::cell::Cell::new(0);
        static OTHER: TouchesOther = TouchesOther(&COUNT);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = on_workers(1, || {
            sylvan::spawn(|| {
                SELF_KEY.with(|_| ());
                COUNT.with(|c| c.set(1));
                OTHER.with(|_| ());
                7
            })
            .join()
            .unwrap()
        });
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the fiber never ended");
    assert_eq!(r, 7);
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        2,
        "a destructor used a live local"
    );
}
