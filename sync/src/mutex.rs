//! [`Mutex`]: a fiber-aware, FIFO-fair mutual-exclusion lock.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::shim::{self, park::Waker};
use crate::waiters::{self, WaitQueue};

/// A mutual-exclusion lock whose `lock` parks the calling fiber (or blocks a
/// plain thread) instead of blocking the worker, so holding the guard across
/// blocking calls (sleep, IO, other locks) is fine. Shaped like
/// `std::sync::Mutex` without poisoning (like parking_lot's): a panic while
/// holding the guard simply releases it.
///
/// Ownership is handed to waiters in FIFO order. A waiter that is cancelled or
/// times out just as ownership reaches it passes it on.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::Mutex;
///
/// let total = Arc::new(Mutex::new(0u64));
/// let fibers: Vec<_> = (0..10)
///     .map(|i| {
///         let total = total.clone();
///         sylvan::spawn(move || {
///             let mut t = total.lock();
///             sylvan::yield_now(); // other fibers run; they wait for the lock
///             *t += i;
///         })
///     })
///     .collect();
/// for f in fibers {
///     f.join().unwrap();
/// }
/// assert_eq!(*total.lock(), 45);
/// ```
pub struct Mutex<T> {
    /// Who owns the lock, and who waits for it.
    state: shim::Mutex<LockState>,
    /// The data. Only the owner locks it, so it is never contended and never
    /// blocks a thread.
    data: parking_lot::Mutex<T>,
}

#[derive(Default)]
struct LockState {
    locked: bool,
    waiters: WaitQueue,
}

fn queue(s: &mut LockState) -> &mut WaitQueue {
    &mut s.waiters
}

/// Hands ownership to the next waiter, or unlocks.
fn unlock_one(s: &mut LockState) -> Vec<Waker> {
    match s.waiters.wake_one() {
        Some(w) => vec![w],
        None => {
            s.locked = false;
            Vec::new()
        }
    }
}

/// Ownership handed to a waiter that left: on to the next one.
fn pass_on(s: &mut LockState, (): ()) -> Vec<Waker> {
    unlock_one(s)
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    ///
    /// ```
    /// let m = sylvan::sync::Mutex::new(vec![1]);
    /// m.lock().push(2);
    /// assert_eq!(*m.lock(), [1, 2]);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            state: shim::Mutex::new(LockState::default()),
            data: parking_lot::Mutex::new(value),
        }
    }

    /// Waits for the lock. A cancellation point.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::Mutex;
    ///
    /// let counter = Arc::new(Mutex::new(0));
    /// let fibers: Vec<_> = (0..10)
    ///     .map(|_| {
    ///         let counter = counter.clone();
    ///         sylvan::spawn(move || {
    ///             let mut n = counter.lock(); // parks while another fiber holds it
    ///             sylvan::sleep(std::time::Duration::from_millis(1)); // may park with the lock held
    ///             *n += 1;
    ///         })
    ///     })
    ///     .collect();
    /// for f in fibers {
    ///     f.join().unwrap();
    /// }
    /// assert_eq!(*counter.lock(), 10);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock_deadline(None).expect("no deadline")
    }

    /// Takes the lock if it is free and nobody waits for it.
    ///
    /// ```
    /// let m = sylvan::sync::Mutex::new(());
    /// let held = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(held);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut s = self.state.lock();
        if s.locked || !s.waiters.is_empty() {
            return None;
        }
        s.locked = true;
        drop(s);
        Some(self.owned())
    }

    /// Waits at most `timeout` for the lock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = sylvan::sync::Mutex::new(0);
    /// let _held = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(2)).is_none());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_deadline(Instant::now().checked_add(timeout))
    }

    fn lock_deadline(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
        let waiter = {
            let mut s = self.state.lock();
            if !s.locked && s.waiters.is_empty() {
                s.locked = true;
                drop(s);
                return Some(self.owned());
            }
            s.waiters.push()
        };
        waiters::wait(
            &crate::shim::park::WaitLabel("Mutex::lock"),
            &self.state,
            waiter,
            deadline,
            queue,
            pass_on,
        )
        .map(|()| self.owned())
    }

    /// The guard of the owner (called once ownership is ours).
    fn owned(&self) -> MutexGuard<'_, T> {
        let data = self
            .data
            .try_lock()
            .expect("sylvan Mutex: the owner finds the data unlocked");
        MutexGuard {
            mutex: self,
            data: Some(data),
        }
    }

    /// Whether some fiber or thread holds the lock.
    ///
    /// ```
    /// let m = sylvan::sync::Mutex::new(());
    /// assert!(!m.is_locked());
    /// let _g = m.lock();
    /// assert!(m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.lock().locked
    }

    /// Mutable access without locking (the `&mut` proves exclusivity).
    ///
    /// ```
    /// let mut m = sylvan::sync::Mutex::new(1);
    /// *m.get_mut() += 1;
    /// assert_eq!(m.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Consumes the mutex, returning the value.
    ///
    /// ```
    /// let m = sylvan::sync::Mutex::new(String::from("x"));
    /// m.lock().push('y');
    /// assert_eq!(m.into_inner(), "xy");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    fn unlock(&self) {
        let wakers = unlock_one(&mut self.state.lock());
        waiters::wake_all(wakers);
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("data", &*g).finish(),
            None => f.debug_struct("Mutex").field("data", &"<locked>").finish(),
        }
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped.
///
/// ```
/// let m = sylvan::sync::Mutex::new(vec![1]);
/// {
///     let mut guard = m.lock();
///     guard.push(2); // DerefMut to the data
///     assert!(m.is_locked());
/// } // unlocked here
/// assert!(!m.is_locked());
/// assert_eq!(m.into_inner(), [1, 2]);
/// ```
///
/// The guard borrows its mutex, so it cannot outlive it:
///
/// ```compile_fail,E0597
/// let guard;
/// {
///     let m = sylvan::sync::Mutex::new(0);
///     guard = m.lock(); // error: `m` does not live long enough
/// }
/// assert_eq!(*guard, 0);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    /// Always `Some` until drop, which releases it before handing ownership on.
    data: Option<parking_lot::MutexGuard<'a, T>>,
}

impl<'a, T> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_ref().expect("guard holds data until dropped")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("guard holds data until dropped")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Release the data first, so the next owner finds it free.
        self.data = None;
        self.mutex.unlock();
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
