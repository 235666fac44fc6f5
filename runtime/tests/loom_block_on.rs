//! loom model of `future::block_on`'s wake protocol (`src/future.rs`,
//! `Unpark`) and of `IoRegistration::poll_io`'s registration of a task's
//! waker (`src/io.rs`): no wake is lost, whatever the interleaving.
//!
//! Build and run only with `RUSTFLAGS="--cfg loom"` (`.ci/loom` does).
//!
//! **A model, not the real code**: `block_on` parks through the runtime's
//! park (a fiber's or a thread's), which loom cannot drive, so its loop is
//! restated here with loom's atomics and threads, and the park itself as a
//! wake token under a mutex and condvar ([`Parker`]: a wake that comes
//! first makes the next park return, as the runtime promises). Keep the
//! two in step.
//!
//! * `block_on`: poll; then `while !woken.swap(false) { park() }`; poll again.
//!   (The real loop checks the flag once before the first park and, if it
//!   was set during the poll, yields instead of parking: the same swaps.)
//! * The future's waker: `if !woken.swap(true) { waiter.unpark() }`.
//! * `poll_io`: read the edge counter, try the operation (here: a flag set
//!   by the peer), register the task's waker, re-check the counter, return
//!   `Pending` only if it did not move. The task's waker goes in the
//!   direction's one task slot, replacing the last poll's. The "hub" bumps
//!   the counter and wakes what the slot holds, as `IoState::on_event` does.
//!
//! loom fails any schedule in which the polling thread sleeps forever.

#![cfg(loom)]

mod loom_support;

use loom_support::assert_deadlocks;

use std::sync::atomic::Ordering::{AcqRel, Acquire, Release, SeqCst};

use loom::sync::atomic::{AtomicBool, AtomicU64};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// The runtime's park and `Waker::wake`: a token.
#[derive(Default)]
struct Parker {
    token: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    fn park(&self) {
        let mut token = self.token.lock().unwrap();
        while !*token {
            token = self.cv.wait(token).unwrap();
        }
        *token = false;
    }

    fn unpark(&self) {
        *self.token.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

/// `future::Unpark`.
struct Unpark {
    woken: AtomicBool,
    waiter: Parker,
}

impl Unpark {
    fn new() -> Arc<Unpark> {
        Arc::new(Unpark {
            woken: AtomicBool::new(false),
            waiter: Parker::default(),
        })
    }

    /// `Wake::wake_by_ref`.
    fn wake(&self) {
        if !self.woken.swap(true, AcqRel) {
            self.waiter.unpark();
        }
    }

    /// `block_on`'s wait between polls.
    fn wait(&self) {
        while !self.woken.swap(false, AcqRel) {
            self.waiter.park();
        }
    }

    /// The control: the flag read and cleared in two steps; a wake between
    /// them finds it set, sends no token, and is cleared away.
    fn wait_in_two_steps(&self) {
        while !self.woken.load(Acquire) {
            self.waiter.park();
        }
        self.woken.store(false, Release);
    }
}

/// loom with at most `n` preemptions per schedule (the two-waker model is
/// minutes unbounded).
fn model(n: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(n);
    }
    b.check(f);
}

fn block_on_model(two_steps: bool) {
    // Two wakers race the poll loop; the future is ready once both flags
    // are set. A lost wake leaves the poller parked forever.
    model(3, move || {
        let unpark = Unpark::new();
        let ready = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let wakers: Vec<_> = (0..2)
            .map(|i| {
                let (u, r) = (unpark.clone(), ready.clone());
                thread::spawn(move || {
                    r[i].store(true, Release);
                    u.wake();
                })
            })
            .collect();
        // The poll loop.
        while !ready.iter().all(|r| r.load(Acquire)) {
            if two_steps {
                unpark.wait_in_two_steps();
            } else {
                unpark.wait();
            }
        }
        for w in wakers {
            w.join().unwrap();
        }
    });
}

#[test]
fn loom_block_on_loses_no_wake() {
    block_on_model(false);
}

/// The controls: loom must find the lost wake of each broken variant.
#[test]
fn loom_controls_lose_a_wake() {
    assert_deadlocks("control_block_on_clears_in_two_steps");
    assert_deadlocks("control_poll_io_without_the_recheck");
}

#[test]
#[ignore = "fails by design: run by loom_controls_lose_a_wake"]
fn control_block_on_clears_in_two_steps() {
    block_on_model(true);
}

/// `IoState`: the edge counter and the read direction's task slot.
struct Io {
    ticks: AtomicU64,
    task: Mutex<Option<Arc<Unpark>>>,
    /// The descriptor's readiness: kernel state, which every system call
    /// sees linearizably (a mutex here, not an atomic a weak memory model
    /// could show stale).
    data: Mutex<bool>,
}

impl Io {
    /// `IoRegistration::poll_io` for a read; `true` is `Ready`.
    /// `recheck: false` is the control: without the re-check after the
    /// registration, an edge between the try and the registration is lost.
    fn poll_read(&self, waker: &Arc<Unpark>, recheck: bool) -> bool {
        loop {
            let seen = self.ticks.load(SeqCst);
            if std::mem::take(&mut *self.data.lock().unwrap()) {
                return true;
            }
            let replaced = self.task.lock().unwrap().replace(waker.clone());
            drop(replaced);
            if !recheck || self.ticks.load(SeqCst) == seen {
                return false;
            }
        }
    }

    /// The peer writes, and the hub reports the edge (`on_event`).
    fn edge(&self) {
        *self.data.lock().unwrap() = true;
        self.ticks.fetch_add(1, SeqCst);
        let woken = self.task.lock().unwrap().take();
        if let Some(w) = woken {
            w.wake();
        }
    }
}

fn poll_io_model(recheck: bool) {
    model(4, move || {
        let io = Arc::new(Io {
            ticks: AtomicU64::new(0),
            task: Mutex::new(None),
            data: Mutex::new(false),
        });
        let unpark = Unpark::new();
        let peer = {
            let io = io.clone();
            thread::spawn(move || io.edge())
        };
        // block_on(poll_fn(|cx| reg.poll_io(Read, cx, read)))
        while !io.poll_read(&unpark, recheck) {
            unpark.wait();
        }
        peer.join().unwrap();
    });
}

#[test]
fn loom_poll_io_under_block_on_loses_no_edge() {
    poll_io_model(true);
}

#[test]
#[ignore = "fails by design: run by loom_controls_lose_a_wake"]
fn control_poll_io_without_the_recheck() {
    poll_io_model(false);
}
