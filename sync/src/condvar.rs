//! [`Condvar`]: wait for a condition protected by a [`Mutex`](crate::Mutex).

use std::time::{Duration, Instant};

use crate::mutex::MutexGuard;
use crate::shim::park::Waker;
use crate::shim::Mutex as RawMutex;
use crate::waiters::{self, WaitQueue};

/// A condition variable for [`Mutex`](crate::Mutex), shaped like
/// `std::sync::Condvar`: `wait` releases the guard while parked and
/// reacquires it before returning. Spurious wake-ups are possible, as with
/// std; use [`wait_while`](Condvar::wait_while).
///
/// A notification that reaches a waiter which is cancelled or times out at
/// that moment is passed to the next waiter, so `notify_one` is never lost.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// let waiter = sylvan::spawn(move || {
///     let (lock, cvar) = &*p2;
///     let ready = cvar.wait_while(lock.lock(), |ready| !*ready);
///     assert!(*ready);
/// });
/// let (lock, cvar) = &*pair;
/// *lock.lock() = true;
/// cvar.notify_one();
/// waiter.join().unwrap();
/// ```
#[derive(Default)]
pub struct Condvar {
    waiters: RawMutex<WaitQueue>,
}

/// Whether a timed wait on a [`Condvar`] ended because time ran out.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sylvan::sync::{Condvar, Mutex};
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p = pair.clone();
/// sylvan::spawn(move || {
///     *p.0.lock() = true;
///     p.1.notify_one();
/// });
/// let (ready, result) = pair.1.wait_timeout_while(pair.0.lock(), Duration::from_secs(5), |r| !*r);
/// assert!(*ready && !result.timed_out()); // notified well before the timeout
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because the timeout passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(1));
    /// assert!(r.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

fn queue(q: &mut WaitQueue) -> &mut WaitQueue {
    q
}

fn pass_on(q: &mut WaitQueue, (): ()) -> Vec<Waker> {
    q.wake_one().into_iter().collect()
}

impl Condvar {
    /// A new condition variable.
    ///
    /// ```
    /// let cv = sylvan::sync::Condvar::new();
    /// cv.notify_all(); // nobody waiting: nothing happens
    /// ```
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Releases the guard, waits for a notification, reacquires the lock.
    /// A cancellation point (if it unwinds, the lock is not held).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let setter = {
    ///     let pair = pair.clone();
    ///     sylvan::spawn(move || {
    ///         *pair.0.lock() = true;
    ///         pair.1.notify_one();
    ///     })
    /// };
    /// let (lock, cv) = &*pair;
    /// let mut ready = lock.lock();
    /// while !*ready {
    ///     ready = cv.wait(ready); // unlocks, parks, locks again
    /// }
    /// drop(ready);
    /// setter.join().unwrap();
    /// ```
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_deadline(guard, None).0
    }

    /// Waits until `condition` is false, re-checking after every wake-up.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let workers: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let pair = pair.clone();
    ///         sylvan::spawn(move || {
    ///             *pair.0.lock() += 1;
    ///             pair.1.notify_all();
    ///         })
    ///     })
    ///     .collect();
    /// let done = pair.1.wait_while(pair.0.lock(), |n| *n < 3);
    /// assert_eq!(*done, 3);
    /// drop(done);
    /// for w in workers {
    ///     w.join().unwrap();
    /// }
    /// ```
    pub fn wait_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Condvar::wait), for at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_guard, result) = cv.wait_timeout(m.lock(), Duration::from_millis(2));
    /// assert!(result.timed_out()); // nobody notified
    /// ```
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_deadline(guard, Instant::now().checked_add(timeout))
    }

    /// Like [`wait_while`](Condvar::wait_while), for at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(1), Condvar::new());
    /// // The condition is already false: returns at once, not timed out.
    /// let (g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(2), |n| *n == 0);
    /// assert!(!r.timed_out());
    /// drop(g);
    /// // It stays true: gives up after the timeout.
    /// let (_g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(2), |n| *n == 1);
    /// assert!(r.timed_out());
    /// ```
    pub fn wait_timeout_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if !condition(&mut guard) {
                return (guard, WaitTimeoutResult(false));
            }
            let (g, r) = self.wait_deadline(guard, deadline);
            guard = g;
            if r.timed_out() {
                let still = condition(&mut guard);
                return (guard, WaitTimeoutResult(still));
            }
        }
    }

    fn wait_deadline<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let mutex = guard.mutex();
        // Register before releasing the lock: a notify issued after the
        // unlock then finds us.
        let waiter = self.waiters.lock().push();
        drop(guard);
        let notified = waiters::wait(
            &crate::shim::park::WaitLabel("Condvar::wait"),
            &self.waiters,
            waiter,
            deadline,
            queue,
            pass_on,
        )
        .is_some();
        // Taking the mutex back is a park too: a notified waiter that is
        // interrupted there (cancelled, or an enclosing timeout) passes its
        // notification on rather than swallow it.
        struct PassOn<'a>(&'a Condvar);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                self.0.notify_one();
            }
        }
        let pass_on = notified.then_some(PassOn(self));
        let guard = mutex.lock();
        std::mem::forget(pass_on);
        (guard, WaitTimeoutResult(!notified))
    }

    /// Wakes one waiter (the longest waiting).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(None), Condvar::new()));
    /// let consumer = {
    ///     let pair = pair.clone();
    ///     sylvan::spawn(move || {
    ///         let mut slot = pair.1.wait_while(pair.0.lock(), |v| v.is_none());
    ///         slot.take().unwrap()
    ///     })
    /// };
    /// *pair.0.lock() = Some(42);
    /// pair.1.notify_one();
    /// assert_eq!(consumer.join().unwrap(), 42);
    /// ```
    pub fn notify_one(&self) {
        let waker = self.waiters.lock().wake_one();
        waiters::wake_all(waker);
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let waiters: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let pair = pair.clone();
    ///         sylvan::spawn(move || drop(pair.1.wait_while(pair.0.lock(), |go| !*go)))
    ///     })
    ///     .collect();
    /// *pair.0.lock() = true;
    /// pair.1.notify_all(); // every waiter re-checks and leaves
    /// for w in waiters {
    ///     w.join().unwrap();
    /// }
    /// ```
    pub fn notify_all(&self) {
        let wakers = self.waiters.lock().wake_every();
        waiters::wake_all(wakers);
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condvar")
            .field("waiters", &self.waiters.lock().len())
            .finish()
    }
}
