//! `std::sync::{Mutex, Condvar}` with std's signatures, **poisoning
//! included**, for porting: `lock()` returns a [`LockResult`], so std code
//! (`m.lock().unwrap()`, `cv.wait(guard).unwrap()`) compiles unchanged after
//! `use sylvan::sync::poison::{Mutex, Condvar};`, and a lock that is
//! contended parks the fiber instead of blocking its worker.
//!
//! sylvan's own [`Mutex`](crate::Mutex) and [`Condvar`](crate::Condvar) do
//! not poison (as parking_lot's): their `lock()` returns the guard itself.
//! Prefer them in new code; this module exists so that a port changes only
//! its `use` lines. (Rust is moving std's poisoning locks to
//! `std::sync::poison` as well; the name follows it.)
//!
//! Poisoning works as std's: a guard dropped while its holder unwinds from
//! a panic that began after the lock was taken marks the mutex poisoned,
//! and later `lock`s return `Err(PoisonError)` holding the guard. In sylvan
//! a cancellation ([`JoinHandle::cancel`](sylvan_runtime::JoinHandle::cancel),
//! an expired [`timeout`](sylvan_runtime::timeout)) unwinds too, so a fiber
//! cancelled while holding the lock poisons it as well: the data may be
//! half-updated either way.
//!
//! ```
//! use std::sync::Arc;
//! use sylvan::sync::poison::{Condvar, Mutex}; // was: use std::sync::{Condvar, Mutex};
//!
//! let pair = Arc::new((Mutex::new(false), Condvar::new()));
//! let pair2 = pair.clone();
//! sylvan::spawn(move || {
//!     let (lock, cvar) = &*pair2;
//!     *lock.lock().unwrap() = true;
//!     cvar.notify_one();
//! });
//! let (lock, cvar) = &*pair;
//! let mut started = lock.lock().unwrap();
//! while !*started {
//!     started = cvar.wait(started).unwrap();
//! }
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

/// What [`Condvar::wait_timeout`] reports (sylvan's type: std's cannot be
/// made outside std; it has the same `timed_out()`).
pub use crate::condvar::WaitTimeoutResult;

/// A mutual-exclusion lock that poisons, shaped like [`std::sync::Mutex`].
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::poison::Mutex;
///
/// let m = Arc::new(Mutex::new(0));
/// let m2 = m.clone();
/// let r = sylvan::spawn(move || {
///     let _guard = m2.lock().unwrap();
///     panic!("while holding the lock");
/// })
/// .join();
/// assert!(r.is_err());
/// assert!(m.is_poisoned());
/// let guard = m.lock().unwrap_err().into_inner(); // the data is still there
/// assert_eq!(*guard, 0);
/// ```
pub struct Mutex<T> {
    poisoned: AtomicBool,
    inner: crate::Mutex<T>,
}

/// The guard of a [`Mutex`]: the data, until it is dropped.
///
/// ```
/// let m = sylvan::sync::poison::Mutex::new(String::new());
/// let mut guard = m.lock().unwrap();
/// guard.push_str("std-shaped");
/// drop(guard);
/// assert_eq!(m.into_inner().unwrap(), "std-shaped");
/// ```
pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    /// `None` only while a [`Condvar`] wait has it.
    inner: Option<crate::MutexGuard<'a, T>>,
    /// Whether the holder was already unwinding when it took the lock (then
    /// its drop does not poison, as std's).
    panicking: bool,
}

impl<T> Mutex<T> {
    /// A new, unlocked, unpoisoned mutex holding `value`.
    ///
    /// ```
    /// let m = sylvan::sync::poison::Mutex::new(5);
    /// assert_eq!(*m.lock().unwrap(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            poisoned: AtomicBool::new(false),
            inner: crate::Mutex::new(value),
        }
    }

    fn guard<'a>(&'a self, inner: crate::MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let guard = MutexGuard {
            lock: self,
            inner: Some(inner),
            panicking: std::thread::panicking(),
        };
        if self.is_poisoned() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Waits for the lock (a park point); `Err` holding the guard if a
    /// holder panicked.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::poison::Mutex;
    ///
    /// let m = Arc::new(Mutex::new(0));
    /// let m2 = m.clone();
    /// let _ = sylvan::spawn(move || {
    ///     let _guard = m2.lock().unwrap();
    ///     panic!("while holding the lock");
    /// })
    /// .join();
    /// assert!(m.is_poisoned());
    /// let guard = m.lock().unwrap_err().into_inner(); // the data is still there
    /// assert_eq!(*guard, 0);
    /// ```
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.guard(self.inner.lock())
    }

    /// Takes the lock if it is free now.
    ///
    /// ```
    /// use sylvan::sync::poison::{Mutex, TryLockError};
    /// let m = Mutex::new(1);
    /// let held = m.lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(held);
    /// assert!(m.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            None => Err(TryLockError::WouldBlock),
            Some(inner) => self.guard(inner).map_err(TryLockError::Poisoned),
        }
    }

    /// Whether a holder panicked (and [`clear_poison`](Mutex::clear_poison)
    /// was not called since).
    ///
    /// ```
    /// let m = sylvan::sync::poison::Mutex::new(());
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Marks the mutex as not poisoned.
    ///
    /// ```
    /// let m = sylvan::sync::poison::Mutex::new(0);
    /// m.clear_poison();
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poisoned.store(false, Ordering::Release);
    }

    /// Mutable access without locking.
    ///
    /// ```
    /// let mut m = sylvan::sync::poison::Mutex::new(1);
    /// *m.get_mut().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        let data = self.inner.get_mut();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }

    /// Consumes the mutex, returning the value.
    ///
    /// ```
    /// let m = sylvan::sync::poison::Mutex::new(vec![1]);
    /// assert_eq!(m.into_inner().unwrap(), [1]);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.is_poisoned();
        let data = self.inner.into_inner();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_deref().expect("a guard holds the lock")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_deref_mut().expect("a guard holds the lock")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // `inner` is `None` when a Condvar wait unwound: the lock was not
        // held then, so nothing was half-updated.
        if self.inner.is_some() && !self.panicking && std::thread::panicking() {
            self.lock.poisoned.store(true, Ordering::Release);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A condition variable for [`Mutex`], shaped like [`std::sync::Condvar`].
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::poison::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(0), Condvar::new()));
/// let pair2 = pair.clone();
/// sylvan::spawn(move || {
///     *pair2.0.lock().unwrap() = 1;
///     pair2.1.notify_all();
/// });
/// let n = pair.1.wait_while(pair.0.lock().unwrap(), |n| *n == 0).unwrap();
/// assert_eq!(*n, 1);
/// ```
#[derive(Default)]
pub struct Condvar {
    inner: crate::Condvar,
}

impl Condvar {
    /// A new condition variable.
    ///
    /// ```
    /// let cv = sylvan::sync::poison::Condvar::new();
    /// cv.notify_one(); // nobody waits: nothing happens
    /// ```
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Runs a sylvan wait on the guard's inner guard and rebuilds it.
    fn rewrap<'a, T, R>(
        mut guard: MutexGuard<'a, T>,
        wait: impl FnOnce(crate::MutexGuard<'a, T>) -> (crate::MutexGuard<'a, T>, R),
    ) -> LockResult<(MutexGuard<'a, T>, R)> {
        let inner = guard.inner.take().expect("a guard holds the lock");
        let (inner, r) = wait(inner);
        guard.inner = Some(inner);
        if guard.lock.is_poisoned() {
            Err(PoisonError::new((guard, r)))
        } else {
            Ok((guard, r))
        }
    }

    /// Releases the lock, waits for a notification (a park point), takes the
    /// lock again. Spurious wake-ups are possible, as with std.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::poison::{Condvar, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let pair2 = pair.clone();
    /// sylvan::spawn(move || {
    ///     *pair2.0.lock().unwrap() = true;
    ///     pair2.1.notify_one();
    /// });
    /// let mut ready = pair.0.lock().unwrap();
    /// while !*ready {
    ///     ready = pair.1.wait(ready).unwrap();
    /// }
    /// ```
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        Self::rewrap(guard, |g| (self.inner.wait(g), ()))
            .map(|(g, ())| g)
            .map_err(|e| PoisonError::new(e.into_inner().0))
    }

    /// Waits while `condition` holds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::poison::{Condvar, Mutex};
    ///
    /// let jobs = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    /// let producer = {
    ///     let jobs = jobs.clone();
    ///     sylvan::spawn(move || {
    ///         for job in 1..=3 {
    ///             jobs.0.lock().unwrap().push(job);
    ///             jobs.1.notify_one();
    ///         }
    ///     })
    /// };
    /// let done = jobs.1.wait_while(jobs.0.lock().unwrap(), |q| q.len() < 3).unwrap();
    /// assert_eq!(*done, [1, 2, 3]);
    /// # drop(done);
    /// producer.join().unwrap();
    /// ```
    pub fn wait_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`wait`](Condvar::wait) for at most `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::poison::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(5)).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        Self::rewrap(guard, |g| self.inner.wait_timeout(g, dur))
    }

    /// [`wait_while`](Condvar::wait_while) for at most `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::poison::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (g, r) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_millis(2), |n| *n == 0).unwrap();
    /// assert!(r.timed_out());
    /// assert_eq!(*g, 0);
    /// ```
    pub fn wait_timeout_while<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
        condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        Self::rewrap(guard, |g| self.inner.wait_timeout_while(g, dur, condition))
    }

    /// Wakes one waiter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::poison::{Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(None), Condvar::new()));
    /// let pair2 = pair.clone();
    /// let consumer = sylvan::spawn(move || {
    ///     let mut slot = pair2.1.wait_while(pair2.0.lock().unwrap(), |v| v.is_none()).unwrap();
    ///     slot.take().unwrap()
    /// });
    /// *pair.0.lock().unwrap() = Some("item");
    /// pair.1.notify_one();
    /// assert_eq!(consumer.join().unwrap(), "item");
    /// ```
    pub fn notify_one(&self) {
        self.inner.notify_one();
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::poison::{Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let pair = pair.clone();
    ///         sylvan::spawn(move || drop(pair.1.wait_while(pair.0.lock().unwrap(), |go| !*go)))
    ///     })
    ///     .collect();
    /// *pair.0.lock().unwrap() = true;
    /// pair.1.notify_all();
    /// waiters.into_iter().for_each(|w| w.join().unwrap());
    /// ```
    pub fn notify_all(&self) {
        self.inner.notify_all();
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
