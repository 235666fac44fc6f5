//! Regressions from the reliability audit: user code that the runtime runs
//! outside a fiber's closure (destructors of unstarted closures, of results
//! nobody joins, of fiber-locals) never unwinds into a hub, never leaks state
//! into the next fiber, and a fiber that waits while unwinding never lets
//! another fiber run with the thread's panic count raised.

mod support;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use sylvan::sync::Event;

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop dropped");
    }
}

/// A never-started fiber whose closure panics when runtime shutdown drops it:
/// its handle still reports it cancelled, and the worker winds down normally
/// (before, the panic unwound through the hub, which freed its ready queue
/// while fibers' destructors still pushed into it, and the handle never
/// completed).
#[test]
fn a_closure_that_panics_when_dropped_unstarted_is_contained() {
    let rt = Arc::new(StdMutex::new(Some(
        sylvan::Runtime::builder().workers(1).build().unwrap(),
    )));
    let (tx, rx) = std::sync::mpsc::channel();
    let rt2 = rt.clone();
    let root = rt.lock().unwrap().as_ref().unwrap().spawn(move || {
        let bomb = PanicOnDrop;
        let h = sylvan::spawn(move || {
            let _keep = &bomb;
            unreachable!("never starts: the runtime shuts down first");
        });
        tx.send(h).unwrap();
        // Shut the runtime down from its own fiber: the queued task is
        // dropped by the worker once this fiber returns.
        drop(rt2.lock().unwrap().take());
    });
    let h = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    root.join().unwrap();
    // Join from a helper thread so a hang is a failure, not a stuck suite.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || done_tx.send(h.join().map(|_| ())).unwrap());
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the handle of a task dropped at shutdown completes");
    assert!(outcome.unwrap_err().is_cancelled());
}

/// The same for a `spawn_local` closure that shutdown discards: a fiber
/// cancelled at shutdown calls `spawn_local` from a destructor, and the
/// hub, shutting down, drops the new closure unstarted. Run in a child
/// process, whose worker must report the panic as contained and wind down
/// (before, it escaped a destructor during unwinding and aborted).
#[test]
fn a_spawn_local_closure_that_panics_when_dropped_is_contained() {
    if support::child_role().as_deref() == Some("local-bomb") {
        struct SpawnsOnDrop;
        impl Drop for SpawnsOnDrop {
            fn drop(&mut self) {
                let bomb = std::rc::Rc::new(PanicOnDrop);
                drop(sylvan::spawn_local(move || {
                    let _keep = &bomb;
                }));
            }
        }
        let rt = Arc::new(StdMutex::new(Some(
            sylvan::Runtime::builder().workers(1).build().unwrap(),
        )));
        let rt2 = rt.clone();
        let root = rt.lock().unwrap().as_ref().unwrap().spawn(move || {
            let started = Arc::new(Event::new());
            let s2 = started.clone();
            drop(sylvan::spawn(move || {
                let _s = SpawnsOnDrop;
                s2.set();
                sylvan::sleep(Duration::from_secs(3600));
            }));
            started.wait();
            // Shut down from inside: the sleeper is cancelled once we return.
            drop(rt2.lock().unwrap().take());
        });
        root.join().unwrap();
        assert_eq!(support::settle_worker_threads(0), 0);
        eprintln!("child: workers gone");
        return;
    }
    let out = support::run_child(
        "a_spawn_local_closure_that_panics_when_dropped_is_contained",
        "local-bomb",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(
        stderr.contains("the destructor of its unstarted closure panicked (PanicOnDrop dropped)")
            && stderr.contains("the panic was contained"),
        "{stderr}"
    );
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(stderr.contains("child: workers gone"), "{stderr}");
}

/// A fiber whose result nobody joins, and whose result's destructor blocks:
/// cancelling the fiber interrupts that destructor and ends the fiber (before,
/// the cancellation unwound out of the fiber's entry point and the process
/// aborted).
#[sylvan::test(workers = 1)]
fn cancelling_a_fiber_blocked_in_its_unjoined_results_destructor() {
    struct SlowDrop {
        in_drop: Arc<Event>,
        never: Arc<Event>,
        finished: Arc<Event>,
    }
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            struct Finished(Arc<Event>);
            impl Drop for Finished {
                fn drop(&mut self) {
                    self.0.set();
                }
            }
            let _finished = Finished(self.finished.clone());
            self.in_drop.set();
            self.never.wait();
        }
    }
    let (go, in_drop, never, finished) = (
        Arc::new(Event::new()),
        Arc::new(Event::new()),
        Arc::new(Event::new()),
        Arc::new(Event::new()),
    );
    let (g, i, n, f) = (go.clone(), in_drop.clone(), never.clone(), finished.clone());
    let h = sylvan::spawn(move || {
        g.wait();
        SlowDrop {
            in_drop: i,
            never: n,
            finished: f,
        }
    });
    let fiber = h.fiber();
    drop(h); // nobody will take the result
    go.set();
    assert!(in_drop.wait_timeout(Duration::from_secs(10)));
    fiber.cancel();
    assert!(
        finished.wait_timeout(Duration::from_secs(10)),
        "the cancelled destructor unwound"
    );
    assert!(!never.is_set());
    // The worker is alive and well.
    assert_eq!(sylvan::spawn(|| 5).join().unwrap(), 5);
}

sylvan::fiber_local! {
    static MARK: Cell<u32> = Cell::new(0);
}

sylvan::fiber_local! {
    static TRACKED: Tracked = Tracked;
}

static TRACKED_DROPS: AtomicUsize = AtomicUsize::new(0);

struct Tracked;

impl Drop for Tracked {
    fn drop(&mut self) {
        TRACKED_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fiber-locals created by the destructor of a result nobody joins (after
/// the fiber's own locals were dropped) are dropped with that fiber and never
/// seen by the next fiber on the worker (before, the next fiber read 42; in
/// debug builds the worker panicked).
#[sylvan::test(workers = 1)]
fn fiber_locals_made_by_an_unjoined_results_destructor_die_with_the_fiber() {
    struct SetsLocals(Arc<Event>);
    impl Drop for SetsLocals {
        fn drop(&mut self) {
            MARK.with(|m| m.set(42));
            TRACKED.with(|_| {});
            self.0.set();
        }
    }
    let (go, dropped) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (g, d) = (go.clone(), dropped.clone());
    let before = TRACKED_DROPS.load(Ordering::SeqCst);
    let h = sylvan::spawn(move || {
        g.wait();
        SetsLocals(d)
    });
    drop(h);
    go.set();
    assert!(dropped.wait_timeout(Duration::from_secs(10)));
    // On one worker the next fiber reuses the finished fiber's context.
    let seen = sylvan::spawn(|| MARK.with(Cell::get)).join().unwrap();
    assert_eq!(seen, 0, "a fresh fiber sees a fresh value");
    assert_eq!(TRACKED_DROPS.load(Ordering::SeqCst), before + 1);
}

/// Waits in a destructor during a panic: other fibers of the worker must not
/// run meanwhile (they would see `std::thread::panicking()`), and the wait
/// itself still ends through a timer, a wake from another thread or IO.
#[sylvan::test(workers = 1)]
fn a_fiber_waiting_while_unwinding_lets_no_other_fiber_run() {
    struct WaitsInDrop {
        release: Arc<Event>,
    }
    impl Drop for WaitsInDrop {
        fn drop(&mut self) {
            // A timer, then a wake from a plain thread.
            sylvan::sleep(Duration::from_millis(5));
            assert!(self.release.wait_timeout(Duration::from_secs(10)));
        }
    }
    let release = Arc::new(Event::new());
    let r = release.clone();
    let panicker = sylvan::spawn(move || {
        let _w = WaitsInDrop { release: r };
        panic!("unwinding with a waiting destructor");
    });
    let bystander = sylvan::spawn(|| {
        let saw_panicking = std::thread::panicking();
        // A std mutex guard dropped now must not be poisoned.
        let m = StdMutex::new(0);
        drop(m.lock().unwrap());
        // And a timeout must be armed.
        let start = Instant::now();
        let r = sylvan::timeout(Duration::from_millis(10), || {
            sylvan::sleep(Duration::from_secs(5))
        });
        (saw_panicking, m.is_poisoned(), r.is_err(), start.elapsed())
    });
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        release.set();
    });
    let err = panicker.join().unwrap_err();
    assert!(err.is_panic());
    let (saw_panicking, poisoned, timed_out, took) = bystander.join().unwrap();
    assert!(!saw_panicking, "another fiber ran while one was unwinding");
    assert!(!poisoned);
    assert!(timed_out && took < Duration::from_secs(4), "took {took:?}");
    waker.join().unwrap();
}

/// The same wait ending through IO readiness: a destructor that reads from a
/// socket while its fiber unwinds.
#[sylvan::test(workers = 1)]
fn a_fiber_waiting_for_io_while_unwinding_is_woken_by_readiness() {
    use std::io::{Read, Write};
    let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    struct ReadsInDrop(sylvan::net::TcpStream, Arc<AtomicBool>);
    impl Drop for ReadsInDrop {
        fn drop(&mut self) {
            let mut b = [0u8; 1];
            if self.0.read_exact(&mut b).is_ok() && b[0] == 7 {
                self.1.store(true, Ordering::SeqCst);
            }
        }
    }
    let got = Arc::new(AtomicBool::new(false));
    let got2 = got.clone();
    // The reader will hold the worker while it waits: the peer is a plain
    // thread.
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        conn.write_all(&[7]).unwrap();
        conn
    });
    let reader = sylvan::spawn(move || {
        let conn = sylvan::net::TcpStream::connect(addr).unwrap();
        let _r = ReadsInDrop(conn, got2);
        panic!("unwinding while a destructor reads");
    });
    assert!(reader.join().unwrap_err().is_panic());
    assert!(got.load(Ordering::SeqCst));
    drop(peer.join().unwrap());
}
