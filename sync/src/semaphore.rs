//! [`Semaphore`]: a FIFO-fair counting semaphore.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shim::park::Waker;
use crate::shim::Mutex;
use crate::waiters::{self, WaitQueue};

/// A counting semaphore with FIFO fairness.
///
/// Permits are handed directly to the longest-waiting acquirer, so a stream
/// of new acquirers cannot starve a waiting one. A waiter that is cancelled
/// or times out at the moment a permit is handed to it passes the permit on
/// to the next waiter (or back to the semaphore): permits are never lost.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use sylvan::sync::Semaphore;
///
/// let limit = Arc::new(Semaphore::new(3));
/// let running = Arc::new(AtomicUsize::new(0));
/// let fibers: Vec<_> = (0..20)
///     .map(|_| {
///         let (limit, running) = (limit.clone(), running.clone());
///         sylvan::spawn(move || {
///             let _permit = limit.acquire();
///             assert!(running.fetch_add(1, Ordering::SeqCst) < 3);
///             sylvan::sleep(std::time::Duration::from_millis(1));
///             running.fetch_sub(1, Ordering::SeqCst);
///         })
///     })
///     .collect();
/// for f in fibers {
///     f.join().unwrap();
/// }
/// assert_eq!(limit.available_permits(), 3);
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

struct State {
    permits: usize,
    waiters: WaitQueue,
}

fn queue(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// Hands one permit to the next waiter, or back to the pool.
fn release_one(s: &mut State) -> Vec<Waker> {
    match s.waiters.wake_one() {
        Some(w) => vec![w],
        None => {
            s.permits += 1;
            Vec::new()
        }
    }
}

/// A permit handed to a waiter that left: on to the next one.
fn pass_on(s: &mut State, (): ()) -> Vec<Waker> {
    release_one(s)
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(State {
                permits,
                waiters: WaitQueue::default(),
            }),
        }
    }

    /// Waits for a permit; it is returned when the guard drops. A
    /// cancellation point.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_deadline(None)
            .expect("an acquire without deadline always gets a permit")
    }

    /// Takes a permit if one is free and nobody is queued for one.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut s = self.state.lock();
        if s.permits > 0 && s.waiters.is_empty() {
            s.permits -= 1;
            Some(SemaphorePermit { sem: self })
        } else {
            None
        }
    }

    /// Waits at most `timeout` for a permit.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = sylvan::sync::Semaphore::new(1);
    /// let held = s.acquire();
    /// assert!(s.acquire_timeout(Duration::from_millis(5)).is_none());
    /// drop(held);
    /// assert!(s.acquire_timeout(Duration::from_millis(5)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_deadline(Instant::now().checked_add(timeout))
    }

    fn acquire_deadline(&self, deadline: Option<Instant>) -> Option<SemaphorePermit<'_>> {
        let waiter = {
            let mut s = self.state.lock();
            if s.permits > 0 && s.waiters.is_empty() {
                s.permits -= 1;
                return Some(SemaphorePermit { sem: self });
            }
            s.waiters.push()
        };
        // Build the permit only when granted: a permit built on timeout would
        // release, when dropped, a permit that was never taken.
        waiters::wait(
            &crate::shim::park::WaitLabel("Semaphore::acquire"),
            &self.state,
            waiter,
            deadline,
            queue,
            pass_on,
        )
        .map(|()| SemaphorePermit { sem: self })
    }

    /// Adds `n` permits (waking up to `n` waiters).
    pub fn add_permits(&self, n: usize) {
        let wakers: Vec<Waker> = {
            let mut s = self.state.lock();
            (0..n).flat_map(|_| release_one(&mut s)).collect()
        };
        waiters::wake_all(wakers);
    }

    /// Like [`acquire`](Semaphore::acquire), for a semaphore behind an `Arc`:
    /// the permit owns a reference, so it can move into another fiber.
    pub fn acquire_owned(self: &Arc<Self>) -> OwnedSemaphorePermit {
        std::mem::forget(self.acquire());
        OwnedSemaphorePermit { sem: self.clone() }
    }

    /// Permits free right now.
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    /// Fibers and threads waiting for a permit right now.
    pub fn waiters(&self) -> usize {
        self.state.lock().waiters.len()
    }

    fn release(&self) {
        let wakers = release_one(&mut self.state.lock());
        waiters::wake_all(wakers);
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Semaphore")
            .field("permits", &s.permits)
            .field("waiters", &s.waiters.len())
            .finish()
    }
}

/// A held permit of a [`Semaphore`]; released when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (it is not returned on drop).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl std::fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

/// A held permit that owns a reference to its [`Semaphore`]; released when
/// dropped. Made by [`Semaphore::acquire_owned`].
#[must_use = "the permit is released as soon as it is dropped"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl std::fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnedSemaphorePermit")
    }
}
