//! loom model of the readiness protocol of `src/io.rs` (`IoState::on_event`,
//! `IoRegistration::io`, `IoRegistration::wait_since`): no edge is lost.
//!
//! Build and run only with `RUSTFLAGS="--cfg loom"` (`.ci/loom` does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p sylvan-runtime --release --test loom_io
//! ```
//!
//! **This is a model, not the real code.** `IoState` cannot be built under
//! loom without reaching into the hub (its registration list holds
//! `Arc<HubShared>`, `wait_since` registers with the current worker and parks
//! a fiber through `park`, and only fibers use the tick protocol at all), so
//! the protocol is restated below line for line, with loom's atomics, mutex
//! and threads. Keep the two in step: each function names the one of `io.rs`
//! it restates. What it models:
//!
//! * the kernel and the hub: a peer makes the descriptor ready and, when it
//!   went from not ready to ready (the only time an edge-triggered `epoll`
//!   must report it), the hub's poll calls `on_event` for that direction — at
//!   any later point of the schedule;
//! * a fiber: a loom thread, whose waker is its thread handle (wakes are
//!   tokens, like the runtime's) and whose timer is a model clock thread.
//!
//! Every model asserts that each waiter gets what it waits for (or times out
//! with the descriptor's readiness left for the next try), and loom fails any
//! schedule in which all threads block: a waiter asleep on an edge it missed.
//!
//! **It found a lost edge in `io.rs`** as it was until the fix ([`Variant::Old`],
//! kept as a control: `loom_the_old_protocol_loses_an_edge`). The passing
//! models run `io.rs` as it is now ([`Variant::Fixed`]: `wait_since`
//! registers before every re-check). The `control_*` variants move one step
//! of that protocol, and loom must reject them
//! (`loom_controls_lose_an_edge`).

#![cfg(loom)]

mod loom_support;

use std::sync::atomic::Ordering::SeqCst;

use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use loom::sync::{Arc, Mutex};
use loom::thread::{self, Thread};

/// Runs `f` under loom with at most `bound` preemptions (`None`:
/// exhaustive) unless `LOOM_MAX_PREEMPTIONS` sets a bound, logging as
/// `loom::model` does (`LOOM_LOG`, `LOOM_LOCATION`).
fn check(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use tracing_subscriber::util::SubscriberInitExt;
    let _log = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LOOM_LOG"))
        .with_test_writer()
        .without_time()
        .set_default();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = bound;
    }
    builder.check(f);
}

/// The preemption bound of the larger models (their exhaustive runs, the
/// `#[ignore]`d `exhaustive_*` tests, take a minute to well over ten).
const BOUND: Option<usize> = Some(4);

/// `Direction::index`: read 0, write 1.
const READ: usize = 0;
const WRITE: usize = 1;

/// `park::Waker` of a loom thread.
#[derive(Clone)]
struct Waker(Thread);

impl Waker {
    fn current() -> Waker {
        Waker(thread::current())
    }

    fn wake(&self) {
        self.0.unpark();
    }

    fn will_wake(&self, other: &Waker) -> bool {
        self.0.id() == other.0.id()
    }
}

/// The deadline of one waiter: passes when the model's clock says so.
#[derive(Default)]
struct Deadline {
    passed: AtomicBool,
}

impl Deadline {
    /// The timer fires: the deadline has passed, the waiter is woken.
    fn pass(&self, waiter: &Thread) {
        self.passed.store(true, SeqCst);
        waiter.unpark();
    }

    /// `park::park_until`: returns once woken or past the deadline; whether
    /// the deadline has passed.
    fn park_until(&self) -> bool {
        if !self.passed.load(SeqCst) {
            thread::park();
        }
        self.passed.load(SeqCst)
    }
}

/// Which protocol a model runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `io.rs` before the fix: `wait_since` registered its waker once,
    /// before its loop. It loses an edge (see
    /// [`loom_the_old_protocol_loses_an_edge`]): an
    /// `on_event` whose tick bump the waiter had already counted in `seen`
    /// drains the waker and wakes it; the waiter finds the tick unchanged
    /// and parks again, no longer registered, and sleeps through every later
    /// edge.
    Old,
    /// `io.rs` as it is: register (if not registered) before every
    /// re-check, not only the first.
    Fixed,
    /// Control: `Fixed`, but the tick is read *after* the attempt.
    TickAfterAttempt,
    /// Control: `Fixed`, but the first park comes without a re-check.
    NoRecheck,
}

#[derive(Debug, PartialEq, Eq)]
struct TimedOut;

/// `io::IoState` (less `fd` and the hubs list).
struct IoState {
    /// Per direction: how many readiness edges have been seen.
    ticks: [AtomicU64; 2],
    inner: Mutex<Inner>,
    variant: Variant,
}

struct Inner {
    /// Per direction: who waits for the next edge.
    waiters: [Vec<Waker>; 2],
}

impl IoState {
    fn new(variant: Variant) -> IoState {
        IoState {
            ticks: [AtomicU64::new(0), AtomicU64::new(0)],
            inner: Mutex::new(Inner {
                waiters: [Vec::new(), Vec::new()],
            }),
            variant,
        }
    }

    /// `IoState::on_event`, verbatim.
    fn on_event(&self, read: bool, write: bool) {
        let mut woken = Vec::new();
        for (dir, hit) in [(0, read), (1, write)] {
            if hit {
                self.ticks[dir].fetch_add(1, SeqCst);
            }
        }
        {
            let mut inner = self.inner.lock().unwrap();
            for (dir, hit) in [(0, read), (1, write)] {
                if hit {
                    woken.append(&mut inner.waiters[dir]);
                }
            }
        }
        for w in woken {
            w.wake();
        }
    }

    /// `IoRegistration::io`'s loop (the budget yield left out: it is not a
    /// wait). `op` is the non-blocking syscall: `None` for `WouldBlock`.
    fn io<T>(
        &self,
        d: usize,
        deadline: Option<&Deadline>,
        mut op: impl FnMut() -> Option<T>,
    ) -> Result<T, TimedOut> {
        loop {
            let mut seen = self.ticks[d].load(SeqCst);
            let res = op();
            if self.variant == Variant::TickAfterAttempt {
                seen = self.ticks[d].load(SeqCst);
            }
            if let Some(res) = res {
                return Ok(res);
            }
            self.wait_since(d, seen, deadline)?;
        }
    }

    /// `IoRegistration::wait_since`, fiber path (`register_here` left out:
    /// it adds the descriptor to the worker's `epoll` set, which the model's
    /// hub stands for).
    fn wait_since(&self, d: usize, seen: u64, deadline: Option<&Deadline>) -> Result<(), TimedOut> {
        let waker = Waker::current();
        let register = || {
            let mut inner = self.inner.lock().unwrap();
            let list = &mut inner.waiters[d];
            if !list.iter().any(|w| w.will_wake(&waker)) {
                list.push(waker.clone());
            }
        };
        register();
        // Leaves the waiter list however the wait ends.
        struct Leave<'a>(&'a IoState, usize, Waker);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.inner.lock().unwrap().waiters[self.1].retain(|w| !w.will_wake(&self.2));
            }
        }
        let _leave = Leave(self, d, waker.clone());
        let mut first = true;
        loop {
            if !first && self.variant != Variant::Old {
                register();
            }
            let recheck = !(first && self.variant == Variant::NoRecheck);
            first = false;
            if recheck && self.ticks[d].load(SeqCst) != seen {
                return Ok(());
            }
            match deadline {
                None => thread::park(),
                Some(at) => {
                    if at.park_until() && self.ticks[d].load(SeqCst) == seen {
                        return Err(TimedOut);
                    }
                }
            }
        }
    }

    fn waiting(&self, d: usize) -> usize {
        self.inner.lock().unwrap().waiters[d].len()
    }
}

/// One direction of a descriptor as the kernel sees it: how many units
/// (bytes, pending connections, free buffer slots) are ready.
#[derive(Default)]
struct Readiness {
    ready: AtomicUsize,
}

impl Readiness {
    /// The peer makes `n` units ready; the hub reports the edge when the
    /// direction went from not ready to ready.
    fn add(&self, io: &IoState, d: usize, n: usize) {
        if self.ready.fetch_add(n, SeqCst) == 0 {
            io.on_event(d == READ, d == WRITE);
        }
    }

    /// A read: takes everything ready (`None`: `WouldBlock`).
    fn take_all(&self) -> Option<usize> {
        match self.ready.swap(0, SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    /// An accept: takes one unit (`None`: `WouldBlock`).
    fn take_one(&self) -> Option<usize> {
        self.ready
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| 1)
    }
}

/// A reader waits for two separate writes (two edges, the second possibly
/// while it is between its `WouldBlock` and its wait): it reads both.
/// Exhaustive: cheap enough.
fn reader_sees_every_edge(variant: Variant) {
    check(None, move || {
        let io = Arc::new(IoState::new(variant));
        let sock = Arc::new(Readiness::default());
        let reader = {
            let (io, sock) = (io.clone(), sock.clone());
            thread::spawn(move || {
                let mut got = 0;
                while got < 2 {
                    got += io.io(READ, None, || sock.take_all()).unwrap();
                }
                got
            })
        };
        sock.add(&io, READ, 1);
        sock.add(&io, READ, 1);
        assert_eq!(reader.join().unwrap(), 2);
        assert_eq!(io.waiting(READ), 0);
    });
}

#[test]
fn loom_reader_sees_every_edge() {
    reader_sees_every_edge(Variant::Fixed);
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process (a
/// model that loom fails by deadlock aborts its process: loom panics again
/// while unwinding) and asserts that loom found a deadlock there: a waiter
/// asleep on an edge it missed. Returns the child's output.
fn assert_loses_an_edge(name: &str) -> String {
    loom_support::assert_deadlocks(name)
}

/// **The bug this model found in `io.rs`**, kept as a control: the protocol
/// as it was lost an edge when `on_event` ran on another thread than the
/// waiter (a descriptor in two hubs' `epoll` sets). One schedule:
///
/// 1. hub: `on_event` bumps the read tick to 1 (not yet locked `inner`);
/// 2. reader: `io` reads `seen = 1`, reads the byte of edge 1;
/// 3. reader: next `io`: `seen = 1`, `WouldBlock`; `wait_since` registers,
///    re-checks (tick 1 = seen) and parks;
/// 4. hub: locks `inner`, drains the reader's waker, wakes it;
/// 5. reader: tick 1 = seen: parks again — its waker is no longer listed;
/// 6. peer writes again: edge 2, `on_event` bumps the tick to 2, drains an
///    empty list. The reader sleeps for ever (with a deadline: times out
///    with data waiting).
///
/// `io.rs` now registers before every re-check ([`Variant::Fixed`]).
#[test]
fn loom_the_old_protocol_loses_an_edge() {
    assert_loses_an_edge("control_old_protocol");
}

#[test]
#[ignore = "fails by design: run by loom_the_old_protocol_loses_an_edge"]
fn control_old_protocol() {
    reader_sees_every_edge(Variant::Old);
}

/// The controls: the (fixed) protocol with the tick read after the attempt,
/// or without the first re-check after registering, loses an edge, and loom
/// must say so.
#[test]
fn loom_controls_lose_an_edge() {
    assert_loses_an_edge("control_tick_read_after_the_attempt");
    assert_loses_an_edge("control_no_recheck");
}

#[test]
#[ignore = "fails by design: run by loom_controls_lose_an_edge"]
fn control_tick_read_after_the_attempt() {
    reader_sees_every_edge(Variant::TickAfterAttempt);
}

#[test]
#[ignore = "fails by design: run by loom_controls_lose_an_edge"]
fn control_no_recheck() {
    reader_sees_every_edge(Variant::NoRecheck);
}

/// Two fibers accept on one listener (two waiters of one direction); two
/// connections arrive. Every edge wakes both; the loser of each accept waits
/// again; both get a connection.
fn two_acceptors_share_the_edges(bound: Option<usize>) {
    check(bound, move || {
        let io = Arc::new(IoState::new(Variant::Fixed));
        let sock = Arc::new(Readiness::default());
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let (io, sock) = (io.clone(), sock.clone());
                thread::spawn(move || io.io(READ, None, || sock.take_one()).unwrap())
            })
            .collect();
        sock.add(&io, READ, 1);
        sock.add(&io, READ, 1);
        for a in acceptors {
            assert_eq!(a.join().unwrap(), 1);
        }
        assert_eq!(sock.ready.load(SeqCst), 0);
        assert_eq!(io.waiting(READ), 0);
    });
}

#[test]
fn loom_two_acceptors_share_the_edges() {
    two_acceptors_share_the_edges(BOUND);
}

#[test]
#[ignore = "exhaustive: not finished in 10 min here; .ci/loom --exhaustive"]
fn exhaustive_loom_two_acceptors_share_the_edges() {
    two_acceptors_share_the_edges(None);
}

/// A reader and a writer block on one descriptor at once; the hub reports
/// a read edge and a write edge (one event each): each side gets its own,
/// and an edge of one direction does not satisfy the other.
fn reader_and_writer_wait_apart(bound: Option<usize>) {
    check(bound, || {
        let io = Arc::new(IoState::new(Variant::Fixed));
        let (readable, writable) = (
            Arc::new(Readiness::default()),
            Arc::new(Readiness::default()),
        );
        let reader = {
            let (io, readable) = (io.clone(), readable.clone());
            thread::spawn(move || io.io(READ, None, || readable.take_all()).unwrap())
        };
        let writer = {
            let (io, writable) = (io.clone(), writable.clone());
            thread::spawn(move || io.io(WRITE, None, || writable.take_all()).unwrap())
        };
        writable.add(&io, WRITE, 1);
        readable.add(&io, READ, 1);
        assert_eq!((reader.join().unwrap(), writer.join().unwrap()), (1, 1));
        assert_eq!((io.waiting(READ), io.waiting(WRITE)), (0, 0));
    });
}

#[test]
fn loom_reader_and_writer_wait_apart() {
    reader_and_writer_wait_apart(BOUND);
}

#[test]
#[ignore = "exhaustive: about a minute; .ci/loom --exhaustive"]
fn exhaustive_loom_reader_and_writer_wait_apart() {
    reader_and_writer_wait_apart(None);
}

/// A read with a deadline races one write and its timer: it reads the data,
/// or times out and leaves it for the next read — and leaves the waiter list
/// either way. Exhaustive: cheap enough.
fn timed_read_races_the_edge() {
    check(None, || {
        let io = Arc::new(IoState::new(Variant::Fixed));
        let sock = Arc::new(Readiness::default());
        let deadline = Arc::new(Deadline::default());
        let reader = {
            let (io, sock, deadline) = (io.clone(), sock.clone(), deadline.clone());
            thread::spawn(move || io.io(READ, Some(&deadline), || sock.take_all()))
        };
        let clock = {
            let (deadline, reader) = (deadline.clone(), reader.thread().clone());
            thread::spawn(move || deadline.pass(&reader))
        };
        sock.add(&io, READ, 1);
        clock.join().unwrap();
        match reader.join().unwrap() {
            Ok(n) => assert_eq!(n, 1),
            Err(TimedOut) => assert_eq!(sock.take_all(), Some(1), "the data waits"),
        }
        assert_eq!(io.waiting(READ), 0);
    });
}

#[test]
fn loom_timed_read_races_the_edge() {
    timed_read_races_the_edge();
}
