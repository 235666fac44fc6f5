//! Waiter bookkeeping shared by every primitive in this crate.
//!
//! # Contract
//!
//! * A [`WaitQueue`] lives *inside* the primitive's own `Mutex`, next to the
//!   condition it guards, so "check the condition, else enqueue" is atomic.
//! * A notifier pops waiters in FIFO order, marks each *notified* (under the
//!   lock), optionally handing it a payload (an item, a permit, "closed"),
//!   and wakes it *after* releasing the lock.
//! * The waiter owns what it was handed from the moment it is notified.
//! * A waiter that stops waiting early — timeout, cancellation, a timeout
//!   scope unwinding through it — runs [`wait`]'s cleanup under the lock: if
//!   it is still queued it is removed; if it was notified meanwhile, the
//!   primitive's `pass_on` receives the payload and hands it to the next
//!   waiter (or back to the primitive). Nothing is lost and nothing is
//!   granted twice.
//!
//! * A waiter may belong to a [`select`](crate::select): then it carries a
//!   shared [`SelectToken`] and its case number, and a notifier must win the
//!   token (one compare-and-swap) before handing it anything. A waiter whose
//!   select was already won elsewhere (or gave up) is stale: notifiers drop
//!   it and serve the next one, so a select takes at most one item.
//!
//! Parking follows the runtime's protocol (`sylvan_runtime::park`): the waker
//! is registered before the lock is released, the flag is re-checked after
//! every wake, and spurious wakes are harmless.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sylvan_runtime::park::{self, Waker};

/// Decides which case of one [`select`](crate::select) wins: the first
/// notifier (or the selector itself, for a case found ready while it
/// registers) to move it off `WAITING`.
pub(crate) struct SelectToken {
    state: AtomicUsize,
}

impl SelectToken {
    const WAITING: usize = 0;
    const ABORTED: usize = usize::MAX;

    pub(crate) fn new() -> SelectToken {
        SelectToken {
            state: AtomicUsize::new(Self::WAITING),
        }
    }

    /// Claims the select for `case`; `false` if it is already decided.
    pub(crate) fn try_claim(&self, case: usize) -> bool {
        self.state
            .compare_exchange(Self::WAITING, case + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives up (timeout, cancellation); `false` if a case won first.
    pub(crate) fn try_abort(&self) -> bool {
        self.state
            .compare_exchange(
                Self::WAITING,
                Self::ABORTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The winning case, if one has won.
    pub(crate) fn winner(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            Self::WAITING | Self::ABORTED => None,
            n => Some(n - 1),
        }
    }
}

/// What registering one case of a select in a primitive found.
pub(crate) enum Registered<R, P> {
    /// The case was ready: it claimed the select and its operation is done.
    Won(R),
    /// Another case of the select has already won.
    Lost,
    /// Queued; the waiter is later either claimed and notified, or withdrawn.
    Waiting(Arc<Waiter<P>>),
}

/// A waiter's waker (until notified) and what it was handed.
struct Slot<P> {
    payload: Option<P>,
    waker: Option<Waker>,
}

/// One blocked fiber or thread, and what it was handed.
pub(crate) struct Waiter<P> {
    /// For a select's waiter: its token and case number.
    select: Option<(Arc<SelectToken>, usize)>,
    /// Set under the primitive's lock when the waiter has been notified.
    notified: AtomicBool,
    /// What to wake and what was handed over, under one small lock: the
    /// notifier fills in the payload and takes the waker out (notifying
    /// moves the waker rather than cloning it).
    slot: Mutex<Slot<P>>,
}

impl<P> Waiter<P> {
    fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Whether a notifier may hand this waiter something: always for a plain
    /// waiter; for a select's, only if this claims its token.
    fn claim(&self) -> bool {
        match &self.select {
            None => true,
            Some((token, case)) => token.try_claim(*case),
        }
    }

    /// Hands `payload` over and marks the waiter notified; returns its waker.
    fn hand_over(&self, payload: P) -> Waker {
        let waker = {
            let mut slot = self.slot.lock();
            slot.payload = Some(payload);
            slot.waker.take().expect("a waiter is notified once")
        };
        self.notified.store(true, Ordering::Release);
        waker
    }

    pub(crate) fn take_payload(&self) -> P {
        self.slot
            .lock()
            .payload
            .take()
            .expect("a notified waiter holds its payload")
    }
}

/// FIFO queue of waiters; see the module docs.
pub(crate) struct WaitQueue<P = ()> {
    waiters: VecDeque<Arc<Waiter<P>>>,
}

impl<P> Default for WaitQueue<P> {
    fn default() -> Self {
        WaitQueue {
            waiters: VecDeque::new(),
        }
    }
}

impl<P> WaitQueue<P> {
    /// Enqueues the caller (its current waker) at the back.
    pub(crate) fn push(&mut self) -> Arc<Waiter<P>> {
        self.push_waiter(None)
    }

    /// Enqueues the caller as case `case` of the select that owns `token`.
    pub(crate) fn push_select(&mut self, token: &Arc<SelectToken>, case: usize) -> Arc<Waiter<P>> {
        self.push_waiter(Some((token.clone(), case)))
    }

    fn push_waiter(&mut self, select: Option<(Arc<SelectToken>, usize)>) -> Arc<Waiter<P>> {
        let w = Arc::new(Waiter {
            slot: Mutex::new(Slot {
                payload: None,
                waker: Some(park::current_waker()),
            }),
            select,
            notified: AtomicBool::new(false),
        });
        self.waiters.push_back(w.clone());
        w
    }

    /// Whether nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Number of waiters.
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Hands `payload` to the longest-waiting waiter and returns its waker (to
    /// wake after the lock is released), or gives `payload` back if nobody
    /// waits. Stale select waiters are dropped on the way.
    pub(crate) fn notify_one(&mut self, payload: P) -> Result<Waker, P> {
        while let Some(w) = self.waiters.pop_front() {
            if w.claim() {
                let waker = w.hand_over(payload);
                return Ok(waker);
            }
        }
        Err(payload)
    }

    /// Notifies every waiter, each with a payload from `payload`.
    pub(crate) fn notify_all(&mut self, mut payload: impl FnMut() -> P) -> Vec<Waker> {
        self.waiters
            .drain(..)
            .filter(|w| w.claim())
            .map(|w| w.hand_over(payload()))
            .collect()
    }

    /// Removes `w` if it is still queued (not yet notified).
    pub(crate) fn remove(&mut self, w: &Arc<Waiter<P>>) -> bool {
        match self.waiters.iter().position(|x| Arc::ptr_eq(x, w)) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
    }
}

impl WaitQueue<()> {
    /// [`notify_one`](WaitQueue::notify_one) without a payload.
    pub(crate) fn wake_one(&mut self) -> Option<Waker> {
        self.notify_one(()).ok()
    }

    /// [`notify_all`](WaitQueue::notify_all) without a payload.
    pub(crate) fn wake_every(&mut self) -> Vec<Waker> {
        self.notify_all(|| ())
    }
}

/// Wakes every waker in `wakers` (call after releasing the lock).
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// Waits until `waiter` (already queued in the `WaitQueue` that `queue`
/// selects inside `lock`) is notified, or `deadline` passes.
///
/// Returns the payload when notified, `None` on timeout (the waiter was
/// removed; nothing was lost). If the wait unwinds (cancellation, an
/// enclosing `timeout`), the waiter is removed, or — when it had been
/// notified already — its payload goes to `pass_on` under the lock, which
/// hands it on and returns the wakers to wake.
pub(crate) fn wait<S, P>(
    lock: &Mutex<S>,
    waiter: &Arc<Waiter<P>>,
    deadline: Option<Instant>,
    queue: fn(&mut S) -> &mut WaitQueue<P>,
    pass_on: fn(&mut S, P) -> Vec<Waker>,
) -> Option<P> {
    struct Cleanup<'a, S, P> {
        lock: &'a Mutex<S>,
        waiter: &'a Arc<Waiter<P>>,
        queue: fn(&mut S) -> &mut WaitQueue<P>,
        pass_on: fn(&mut S, P) -> Vec<Waker>,
        armed: bool,
    }
    impl<S, P> Drop for Cleanup<'_, S, P> {
        fn drop(&mut self) {
            if !self.armed {
                return;
            }
            // Unwinding out of the wait: give back anything we were handed.
            let wakers = {
                let mut s = self.lock.lock();
                if (self.queue)(&mut s).remove(self.waiter) {
                    Vec::new()
                } else {
                    let payload = self.waiter.take_payload();
                    (self.pass_on)(&mut s, payload)
                }
            };
            wake_all(wakers);
        }
    }
    let mut cleanup = Cleanup {
        lock,
        waiter,
        queue,
        pass_on,
        armed: true,
    };
    loop {
        if waiter.is_notified() {
            cleanup.armed = false;
            return Some(waiter.take_payload());
        }
        let timed_out = match deadline {
            None => {
                park::park();
                false
            }
            Some(at) => park::park_until(at),
        };
        if timed_out && !waiter.is_notified() {
            cleanup.armed = false;
            let mut s = lock.lock();
            if queue(&mut s).remove(waiter) {
                return None;
            }
            // Notified between the deadline and the lock: take it.
            drop(s);
            return Some(waiter.take_payload());
        }
    }
}
