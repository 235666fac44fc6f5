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
    let outcome = within(Duration::from_secs(10), move || h.join().map(|_| ()))
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
/// itself still ends through a timer and through a wake from a plain thread.
/// (Both waits are short: a fiber holds its worker like this for at most
/// `IN_PLACE_LIMIT`, 20 ms.)
#[sylvan::test(workers = 1)]
fn a_fiber_waiting_while_unwinding_lets_no_other_fiber_run() {
    struct WaitsInDrop {
        asked: std::sync::mpsc::Sender<()>,
        release: Arc<Event>,
    }
    impl Drop for WaitsInDrop {
        fn drop(&mut self) {
            // A timer...
            sylvan::sleep(Duration::from_millis(2));
            // ...then a wake from a plain thread, which sets the event as
            // soon as it is asked to.
            self.asked.send(()).unwrap();
            assert!(self.release.wait_timeout(Duration::from_secs(10)));
        }
    }
    let release = Arc::new(Event::new());
    let (asked, ask) = std::sync::mpsc::channel();
    let r = release.clone();
    let panicker = sylvan::spawn(move || {
        let _w = WaitsInDrop { asked, release: r };
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
        ask.recv().unwrap();
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
        // Late enough that the reader is waiting (if it waits past the
        // in-place limit it parks instead; it must get the byte either way).
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

/// Runs `f` on a helper thread and waits at most `limit` for it, so that a
/// hang is a test failure and not a stuck suite.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// A destructor that runs while its fiber unwinds and waits for *another
/// fiber of the same worker* (a lock that sibling holds across a sleep)
/// still completes: the unwinding fiber holds its worker only for a bounded
/// time (`IN_PLACE_LIMIT`), then lets the sibling run.
#[test]
fn an_unwinding_destructor_can_wait_for_a_fiber_of_its_own_worker() {
    let outcome = within(Duration::from_secs(10), || {
        let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let m = Arc::new(sylvan::sync::Mutex::new(0u32));
            let held = Arc::new(Event::new());
            let (m2, h2) = (m.clone(), held.clone());
            let holder = sylvan::spawn_local(move || {
                let mut g = m2.lock();
                h2.set();
                sylvan::sleep(Duration::from_millis(50));
                *g += 1;
            });
            held.wait();
            struct LocksInDrop(Arc<sylvan::sync::Mutex<u32>>);
            impl Drop for LocksInDrop {
                fn drop(&mut self) {
                    *self.0.lock() += 10;
                }
            }
            let m3 = m.clone();
            let panicker = sylvan::spawn_local(move || {
                let _g = LocksInDrop(m3);
                panic!("unwinding while a sibling holds the lock");
            });
            let failed = panicker.join().is_err();
            holder.join().unwrap();
            let total = *m.lock();
            (failed, total)
        })
    });
    assert_eq!(outcome, Some((true, 11)), "the destructor completed");
}

/// The "owned child" pattern: a guard that cancels and joins a child fiber
/// in its destructor, run while the parent unwinds.
#[test]
fn an_unwinding_destructor_can_cancel_and_join_a_child() {
    let outcome = within(Duration::from_secs(10), || {
        let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            struct Owner(Option<sylvan::JoinHandle<()>>);
            impl Drop for Owner {
                fn drop(&mut self) {
                    if let Some(h) = self.0.take() {
                        h.cancel();
                        assert!(h.join().unwrap_err().is_cancelled());
                    }
                }
            }
            let parent = sylvan::spawn(|| {
                let child = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
                sylvan::yield_now(); // the child starts and sleeps
                let _owner = Owner(Some(child));
                panic!("unwinding with an owned child");
            });
            parent.join().unwrap_err().is_panic()
        })
    });
    assert_eq!(outcome, Some(true));
}

/// On two workers, with the fiber that ends the wait placed wherever the
/// runtime puts it (possibly queued, unstarted, behind the waiting fiber on
/// the same worker): every round completes.
#[test]
fn unwinding_waits_end_wherever_the_waker_fiber_runs() {
    struct WaitsInDrop(Arc<Event>);
    impl Drop for WaitsInDrop {
        fn drop(&mut self) {
            self.0.wait();
        }
    }
    let done = within(Duration::from_secs(60), || {
        let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
        for i in 0..300u64 {
            let ev = Arc::new(Event::new());
            let (e1, e2) = (ev.clone(), ev.clone());
            let waiter = rt.spawn(move || {
                let _w = WaitsInDrop(e1);
                panic!("unwinding");
            });
            let setter = rt.spawn(move || {
                let spin = Duration::from_nanos((i * 7919) % 100_000);
                let t = Instant::now();
                while t.elapsed() < spin {
                    std::hint::spin_loop();
                }
                e2.set();
            });
            assert!(waiter.join().unwrap_err().is_panic());
            setter.join().unwrap();
        }
        true
    });
    assert_eq!(done, Some(true), "a round hung");
}

/// A fiber that blocks for ever while unwinding does not make shutdown take
/// longer than about the shutdown grace period, however many other fibers
/// the worker has to cancel. (Once that fiber has let the others run, they
/// share the thread's raised panic count and cannot be interrupted either:
/// they are abandoned with it and reported, not joined.)
#[test]
fn shutdown_with_a_fiber_stuck_while_unwinding_is_bounded() {
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let started = Arc::new(Event::new());
    let sleepers: Vec<_> = (0..5)
        .map(|_| {
            let s = started.clone();
            rt.spawn(move || {
                s.wait();
                sylvan::sleep(Duration::from_secs(3600));
            })
        })
        .collect();
    let never = Arc::new(Event::new());
    let stuck_in_drop = Arc::new(Event::new());
    let (n2, s2, in2) = (never.clone(), started.clone(), stuck_in_drop.clone());
    drop(rt.spawn(move || {
        struct Stuck(Arc<Event>, Arc<Event>);
        impl Drop for Stuck {
            fn drop(&mut self) {
                self.1.set();
                self.0.wait();
            }
        }
        s2.set();
        let _w = Stuck(n2, in2);
        panic!("stuck while unwinding");
    }));
    assert!(stuck_in_drop.wait_timeout(Duration::from_secs(10)));
    let t = Instant::now();
    drop(rt);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    drop(sleepers);
}

/// With stderr a broken pipe, the runtime's report of a contained panic
/// cannot turn into a panic of its own (`eprintln!` would) and unwind into
/// the worker: the worker keeps serving.
#[test]
fn containment_reports_survive_a_broken_stderr() {
    if support::child_role().as_deref() == Some("epipe") {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid two-element array for pipe(2); dup2 and
        // close only take descriptors this process owns.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            libc::dup2(fds[1], 2);
            libc::close(fds[0]);
        }
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("result destructor");
            }
        }
        let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
        let (go, dropped) = (Arc::new(Event::new()), Arc::new(AtomicUsize::new(0)));
        let g = go.clone();
        let h = rt.spawn(move || {
            g.wait();
            PanicsOnDrop
        });
        drop(h); // nobody joins: the result is dropped in the fiber, and panics
        go.set();
        let later = within(Duration::from_secs(10), move || {
            let v = rt.spawn(|| 5).join().unwrap();
            dropped.fetch_add(1, Ordering::SeqCst);
            v
        });
        println!("child: later spawn = {later:?}");
        return;
    }
    let out = support::run_child("containment_reports_survive_a_broken_stderr", "epipe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("child: later spawn = Some(5)"), "{stdout}");
}
