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
//! Parking follows the runtime's protocol (`sylvan_runtime::park`): the waker
//! is registered before the lock is released, the flag is re-checked after
//! every wake, and spurious wakes are harmless.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sylvan_runtime::park::{self, Waker};

/// One blocked fiber or thread, and what it was handed.
pub(crate) struct Waiter<P> {
    waker: Waker,
    /// Set under the primitive's lock when the waiter has been notified.
    notified: AtomicBool,
    /// What the notifier handed over (set together with `notified`).
    payload: Mutex<Option<P>>,
}

impl<P> Waiter<P> {
    fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    fn take_payload(&self) -> P {
        self.payload
            .lock()
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
        let w = Arc::new(Waiter {
            waker: park::current_waker(),
            notified: AtomicBool::new(false),
            payload: Mutex::new(None),
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
    /// waits.
    pub(crate) fn notify_one(&mut self, payload: P) -> Result<Waker, P> {
        match self.waiters.pop_front() {
            Some(w) => {
                *w.payload.lock() = Some(payload);
                w.notified.store(true, Ordering::Release);
                Ok(w.waker.clone())
            }
            None => Err(payload),
        }
    }

    /// Notifies every waiter, each with a payload from `payload`.
    pub(crate) fn notify_all(&mut self, mut payload: impl FnMut() -> P) -> Vec<Waker> {
        self.waiters
            .drain(..)
            .map(|w| {
                *w.payload.lock() = Some(payload());
                w.notified.store(true, Ordering::Release);
                w.waker.clone()
            })
            .collect()
    }

    /// Removes `w` if it is still queued (not yet notified).
    fn remove(&mut self, w: &Arc<Waiter<P>>) -> bool {
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
