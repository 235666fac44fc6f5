//! Waiter bookkeeping shared by every primitive in this crate.
//!
//! # Contract
//!
//! * A [`WaitQueue`] lives *inside* the primitive's own `Mutex`, next to the
//!   condition it guards, so "check the condition, else enqueue" is atomic.
//! * A notifier pops waiters in FIFO order, marks each *notified* (under the
//!   lock) and wakes it *after* releasing the lock.
//! * A notification may carry ownership (a permit, a slot): the waiter owns
//!   it from the moment it is marked notified.
//! * A waiter that stops waiting early — timeout, cancellation, a timeout
//!   scope unwinding through it — runs [`wait`]'s cleanup under the lock: if
//!   it is still queued it is removed; if it was notified meanwhile, the
//!   primitive's `pass_on` hands what it received to the next waiter. Nothing
//!   is lost and nothing is granted twice.
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

/// One blocked fiber or thread.
pub(crate) struct Waiter {
    waker: Waker,
    /// Set under the primitive's lock when the waiter has been notified.
    notified: AtomicBool,
}

impl Waiter {
    fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }
}

/// FIFO queue of waiters; see the module docs.
#[derive(Default)]
pub(crate) struct WaitQueue {
    waiters: VecDeque<Arc<Waiter>>,
}

impl WaitQueue {
    /// Enqueues the caller (its current waker) at the back.
    pub(crate) fn push(&mut self) -> Arc<Waiter> {
        let w = Arc::new(Waiter {
            waker: park::current_waker(),
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

    /// Marks the longest-waiting waiter notified and returns its waker, to be
    /// woken after the lock is released.
    pub(crate) fn notify_one(&mut self) -> Option<Waker> {
        let w = self.waiters.pop_front()?;
        w.notified.store(true, Ordering::Release);
        Some(w.waker.clone())
    }

    /// Marks every waiter notified; returns their wakers.
    pub(crate) fn notify_all(&mut self) -> Vec<Waker> {
        self.waiters
            .drain(..)
            .map(|w| {
                w.notified.store(true, Ordering::Release);
                w.waker.clone()
            })
            .collect()
    }

    /// Removes `w` if it is still queued (not yet notified).
    fn remove(&mut self, w: &Arc<Waiter>) -> bool {
        match self.waiters.iter().position(|x| Arc::ptr_eq(x, w)) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
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
/// Returns `true` when notified (the waiter then owns what the notification
/// carried), `false` on timeout (the waiter was removed; nothing was lost).
/// If the wait unwinds (cancellation, an enclosing `timeout`), the waiter is
/// removed, or — when it had been notified already — `pass_on` is called
/// under the lock to hand the notification to someone else; it returns the
/// wakers to wake.
pub(crate) fn wait<S>(
    lock: &Mutex<S>,
    waiter: &Arc<Waiter>,
    deadline: Option<Instant>,
    queue: fn(&mut S) -> &mut WaitQueue,
    pass_on: fn(&mut S) -> Vec<Waker>,
) -> bool {
    struct Cleanup<'a, S> {
        lock: &'a Mutex<S>,
        waiter: &'a Arc<Waiter>,
        queue: fn(&mut S) -> &mut WaitQueue,
        pass_on: fn(&mut S) -> Vec<Waker>,
        armed: bool,
    }
    impl<S> Drop for Cleanup<'_, S> {
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
                    (self.pass_on)(&mut s)
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
            return true;
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
                return false;
            }
            // Notified between the deadline and the lock: take it.
            return true;
        }
    }
}
