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
            add_to_pool(s, 1);
            Vec::new()
        }
    }
}

/// Adds `n` free permits to the pool.
///
/// # Panics
/// If the count would pass `usize::MAX` (permits are never lost silently).
fn add_to_pool(s: &mut State, n: usize) {
    s.permits = s.permits.checked_add(n).unwrap_or_else(|| {
        panic!(
            "sylvan Semaphore: adding {n} permits to {} overflows usize; \
             add fewer permits (or release more acquired ones first)",
            s.permits
        )
    });
}

/// A permit handed to a waiter that left: on to the next one.
fn pass_on(s: &mut State, (): ()) -> Vec<Waker> {
    release_one(s)
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
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
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// use std::sync::Arc;
    /// use sylvan::sync::Semaphore;
    ///
    /// // At most 2 fibers inside at once.
    /// let (sem, inside, most) = (Arc::new(Semaphore::new(2)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let fibers: Vec<_> = (0..6)
    ///     .map(|_| {
    ///         let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
    ///         sylvan::spawn(move || {
    ///             let _permit = sem.acquire(); // parks while both permits are out
    ///             most.fetch_max(inside.fetch_add(1, SeqCst) + 1, SeqCst);
    ///             sylvan::sleep(std::time::Duration::from_millis(1));
    ///             inside.fetch_sub(1, SeqCst);
    ///         })
    ///     })
    ///     .collect();
    /// for f in fibers {
    ///     f.join().unwrap();
    /// }
    /// assert!(most.load(SeqCst) <= 2);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_deadline(None)
            .expect("an acquire without deadline always gets a permit")
    }

    /// Takes a permit if one is free and nobody is queued for one.
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p); // returned on drop
    /// assert!(sem.try_acquire().is_some());
    /// ```
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
    ///
    /// # Panics
    /// If the free permits would pass `usize::MAX`; the semaphore is
    /// unchanged then.
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(0);
    /// assert!(sem.try_acquire().is_none());
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let wakers: Vec<Waker> = {
            let mut s = self.state.lock();
            // Waiters first (only while permits are 0 can any wait), one
            // permit each; the rest go to the pool at once.
            let woken = n.min(s.waiters.len());
            // Checked before anyone is woken, so a panic changes nothing.
            if s.permits.checked_add(n - woken).is_none() {
                panic!(
                    "sylvan Semaphore: adding {} permits to {} overflows usize; \
                     add fewer permits",
                    n - woken,
                    s.permits
                );
            }
            let mut wakers = Vec::with_capacity(woken);
            for _ in 0..woken {
                wakers.extend(release_one(&mut s));
            }
            add_to_pool(&mut s, n - woken);
            wakers
        };
        waiters::wake_all(wakers);
    }

    /// Like [`acquire`](Semaphore::acquire), for a semaphore behind an `Arc`:
    /// the permit owns a reference, so it can move into another fiber.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let permit = sem.acquire_owned();
    /// let holder = sylvan::spawn(move || drop(permit)); // the permit moves into the fiber
    /// holder.join().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_owned(self: &Arc<Self>) -> OwnedSemaphorePermit {
        std::mem::forget(self.acquire());
        OwnedSemaphorePermit { sem: self.clone() }
    }

    /// Permits free right now.
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(3);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    /// Fibers and threads waiting for a permit right now.
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(5);
    /// assert_eq!(sem.waiters(), 0);
    /// ```
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
///
/// ```
/// let sem = sylvan::sync::Semaphore::new(1);
/// {
///     let _permit = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (it is not returned on drop).
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(2);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 1); // for good
    /// ```
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
///
/// ```
/// use std::sync::Arc;
/// let sem = Arc::new(sylvan::sync::Semaphore::new(1));
/// let permit: sylvan::sync::OwnedSemaphorePermit = sem.acquire_owned();
/// assert_eq!(sem.available_permits(), 0);
/// drop(permit);
/// assert_eq!(sem.available_permits(), 1);
/// ```
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
