//! Where woken fibers are queued: each worker's ready queue, and the
//! [`Inbox`] through which other threads queue fibers on a worker.
//!
//! A started fiber belongs to one worker and is known there by its *slot* in
//! that worker's fiber table. Waking a parked fiber queues its slot exactly
//! once (see [`RunState::unpark`](crate::record::RunState::unpark)):
//!
//! * on the fiber's own worker thread, straight onto that thread's ready
//!   queue (a thread-local here, run by the hub);
//! * from any other thread, into the worker's inbox, waking the worker
//!   through its `mio::Waker` when it sleeps (or waits in place) — and only
//!   then, so waking a busy worker costs no syscall.

use crate::monitor::WorkerWatch;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// The token of each worker's `mio::Waker`.
pub(crate) const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

/// The cross-thread side of one worker's ready queue.
pub(crate) struct Inbox {
    /// The worker's index in its runtime (for messages).
    pub(crate) index: usize,
    /// Slots of this worker's fibers woken from other threads.
    slots: Mutex<Vec<usize>>,
    /// `true` while `slots` may be non-empty (checked without the lock).
    pending: AtomicBool,
    /// `true` while the worker is about to block or blocked in `poll`
    /// (runtimes wake such a worker for new tasks too).
    pub(crate) sleeping: AtomicBool,
    /// `true` while a fiber of the worker waits in place (see
    /// `reactor::park_suspend`): only its own wake-ups interrupt the poll.
    pub(crate) waiting_in_place: AtomicBool,
    /// Which fiber the worker runs, for the monitor (`crate::monitor`).
    pub(crate) watch: WorkerWatch,
    waker: mio::Waker,
}

thread_local! {
    /// The inbox of the worker running on this thread (null elsewhere).
    static HOME: Cell<*const Inbox> = const { Cell::new(std::ptr::null()) };
    /// This worker's ready queue: slots of fibers to resume, in order.
    static READY: RefCell<VecDeque<usize>> = const { RefCell::new(VecDeque::new()) };
}

impl Inbox {
    /// An inbox whose wake-ups interrupt `registry`'s poll.
    pub(crate) fn new(
        index: usize,
        registry: &mio::Registry,
        thread_name: String,
    ) -> io::Result<Inbox> {
        Ok(Inbox {
            index,
            slots: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            waiting_in_place: AtomicBool::new(false),
            watch: WorkerWatch::new(thread_name),
            waker: mio::Waker::new(registry, WAKER_TOKEN)?,
        })
    }

    /// Queues the fiber in `slot` to run on this worker. Called exactly once
    /// per successful `PARKED → RUNNING` transition.
    pub(crate) fn schedule(&self, slot: usize) {
        if std::ptr::eq(HOME.with(Cell::get), self) {
            return push_ready(slot);
        }
        self.slots.lock().push(slot);
        self.pending.store(true, Ordering::SeqCst);
        if !self.wake_if_sleeping() && self.waiting_in_place.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Whether slots may be waiting in the inbox.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// Moves the slots woken from other threads onto this thread's ready
    /// queue (call on the owning worker's thread).
    pub(crate) fn drain(&self) {
        self.pending.store(false, Ordering::SeqCst);
        let woken = std::mem::take(&mut *self.slots.lock());
        READY.with(|r| r.borrow_mut().extend(woken));
    }

    /// Wakes the worker if it sleeps (or is about to). Returns whether it
    /// did.
    pub(crate) fn wake_if_sleeping(&self) -> bool {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.wake();
            true
        } else {
            false
        }
    }

    /// Wakes the worker unconditionally.
    pub(crate) fn wake(&self) {
        // An eventfd write; it can only fail if the counter saturates, in
        // which case the worker is already due to wake.
        let _ = self.waker.wake();
    }
}

/// Makes `inbox` this thread's (the worker's) inbox until the guard drops.
pub(crate) fn make_home(inbox: &Inbox) -> Home<'_> {
    HOME.with(|h| h.set(inbox));
    Home(std::marker::PhantomData)
}

/// Resets this thread's inbox when dropped (see [`make_home`]); borrows the
/// inbox so that it cannot be dropped first.
pub(crate) struct Home<'a>(std::marker::PhantomData<&'a Inbox>);

impl Drop for Home<'_> {
    fn drop(&mut self) {
        HOME.with(|h| h.set(std::ptr::null()));
    }
}

/// Queues `slot` at the back of this thread's ready queue.
#[inline]
pub(crate) fn push_ready(slot: usize) {
    READY.with(|r| r.borrow_mut().push_back(slot));
}

/// Takes every queued slot, leaving `spare` (emptied) as the new queue.
#[inline]
pub(crate) fn take_ready_all(mut spare: VecDeque<usize>) -> VecDeque<usize> {
    spare.clear();
    READY.with(|r| std::mem::replace(&mut *r.borrow_mut(), spare))
}

/// How many slots are queued to run.
#[inline]
pub(crate) fn ready_len() -> usize {
    READY.with(|r| r.borrow().len())
}

/// Removes one queueing of `slot`; `false` if it is not queued.
pub(crate) fn take_ready(slot: usize) -> bool {
    READY.with(|r| {
        let mut r = r.borrow_mut();
        match r.iter().position(|&s| s == slot) {
            Some(i) => {
                r.remove(i);
                true
            }
            None => false,
        }
    })
}
