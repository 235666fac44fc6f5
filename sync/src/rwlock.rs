//! [`RwLock`]: a fiber-aware reader-writer lock.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::shim::{self, park::Waker};
use crate::waiters::{self, WaitQueue};

/// A reader-writer lock whose blocking calls park the fiber (or block a plain
/// thread). Shaped like parking_lot's: `read()`/`write()` return guards, no
/// poisoning.
///
/// Fairness: writer-preferring — once a writer waits, new readers queue
/// behind it — and when a writer leaves, every reader queued at that moment
/// is admitted as one batch before the next writer. So a stream of readers
/// cannot starve writers, and a stream of writers cannot starve readers.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::RwLock;
///
/// let config = Arc::new(RwLock::new(String::from("v1")));
/// let readers: Vec<_> = (0..5)
///     .map(|_| {
///         let config = config.clone();
///         sylvan::spawn(move || config.read().len())
///     })
///     .collect();
/// config.write().push_str("-patched");
/// for r in readers {
///     let len = r.join().unwrap();
///     assert!(len == 2 || len == 10);
/// }
/// assert_eq!(*config.read(), "v1-patched");
/// ```
pub struct RwLock<T> {
    state: shim::Mutex<State>,
    /// The data; only admitted readers/the admitted writer lock it, so it is
    /// never contended and never blocks a thread.
    data: parking_lot::RwLock<T>,
}

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    read_waiters: WaitQueue,
    write_waiters: WaitQueue,
}

fn read_queue(s: &mut State) -> &mut WaitQueue {
    &mut s.read_waiters
}

fn write_queue(s: &mut State) -> &mut WaitQueue {
    &mut s.write_waiters
}

/// A reader leaves; the last one admits the next writer.
fn read_release(s: &mut State) -> Vec<Waker> {
    s.readers -= 1;
    if s.readers == 0 {
        if let Some(w) = s.write_waiters.wake_one() {
            s.writer = true;
            return vec![w];
        }
    }
    Vec::new()
}

/// The writer leaves; queued readers go first (as a batch), else the next writer.
fn write_release(s: &mut State) -> Vec<Waker> {
    s.writer = false;
    if !s.read_waiters.is_empty() {
        s.readers += s.read_waiters.len();
        return s.read_waiters.wake_every();
    }
    if let Some(w) = s.write_waiters.wake_one() {
        s.writer = true;
        return vec![w];
    }
    Vec::new()
}

/// A writer left the queue without the lock (timed out, or unwinding from
/// a cancellation): readers queued only behind it (no writer holds the
/// lock and none waits any more) are admitted now, as a batch; else they
/// would wait for a writer that never comes.
fn admit_stranded_readers(s: &mut State) -> Vec<Waker> {
    if s.writer || !s.write_waiters.is_empty() || s.read_waiters.is_empty() {
        return Vec::new();
    }
    s.readers += s.read_waiters.len();
    s.read_waiters.wake_every()
}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    ///
    /// ```
    /// let lock = sylvan::sync::RwLock::new(5);
    /// assert_eq!(*lock.read(), 5);
    /// *lock.write() += 1;
    /// assert_eq!(lock.into_inner(), 6);
    /// ```
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            state: shim::Mutex::new(State::default()),
            data: parking_lot::RwLock::new(value),
        }
    }

    /// Waits for shared access. A cancellation point.
    ///
    /// ```
    /// let lock = sylvan::sync::RwLock::new(String::from("shared"));
    /// let (a, b) = (lock.read(), lock.read()); // readers share
    /// assert_eq!(*a, *b);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.read_deadline(None).expect("no deadline")
    }

    /// Waits at most `timeout` for shared access.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = sylvan::sync::RwLock::new(0);
    /// let w = lock.write();
    /// assert!(lock.read_timeout(Duration::from_millis(2)).is_none());
    /// drop(w);
    /// assert!(lock.read_timeout(Duration::from_millis(2)).is_some());
    /// ```
    pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
        self.read_deadline(Instant::now().checked_add(timeout))
    }

    /// Shared access if available right now (no writer, none waiting).
    ///
    /// ```
    /// let lock = sylvan::sync::RwLock::new(0);
    /// let _r = lock.read();
    /// assert!(lock.try_read().is_some());
    /// assert!(lock.try_write().is_none());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut s = self.state.lock();
        if s.writer || !s.write_waiters.is_empty() {
            return None;
        }
        s.readers += 1;
        drop(s);
        Some(self.reader())
    }

    /// Waits for exclusive access. A cancellation point.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::RwLock;
    ///
    /// let config = Arc::new(RwLock::new(1));
    /// let writer = {
    ///     let config = config.clone();
    ///     sylvan::spawn(move || *config.write() = 2) // waits for readers to leave
    /// };
    /// writer.join().unwrap();
    /// assert_eq!(*config.read(), 2);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.write_deadline(None).expect("no deadline")
    }

    /// Waits at most `timeout` for exclusive access.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = sylvan::sync::RwLock::new(0);
    /// let r = lock.read();
    /// assert!(lock.write_timeout(Duration::from_millis(2)).is_none());
    /// drop(r);
    /// *lock.write_timeout(Duration::from_millis(2)).unwrap() = 1;
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        self.write_deadline(Instant::now().checked_add(timeout))
    }

    /// Exclusive access if available right now.
    ///
    /// ```
    /// let lock = sylvan::sync::RwLock::new(0);
    /// let w = lock.try_write().unwrap();
    /// assert!(lock.try_read().is_none());
    /// drop(w);
    /// assert!(lock.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut s = self.state.lock();
        if s.writer || s.readers > 0 || !s.write_waiters.is_empty() {
            return None;
        }
        s.writer = true;
        drop(s);
        Some(self.writer())
    }

    fn read_deadline(&self, deadline: Option<Instant>) -> Option<RwLockReadGuard<'_, T>> {
        let waiter = {
            let mut s = self.state.lock();
            if !s.writer && s.write_waiters.is_empty() {
                s.readers += 1;
                drop(s);
                return Some(self.reader());
            }
            s.read_waiters.push()
        };
        waiters::wait(
            &crate::shim::park::WaitLabel("RwLock::read"),
            &self.state,
            waiter,
            deadline,
            read_queue,
            |s, ()| read_release(s),
        )
        .map(|()| self.reader())
    }

    fn write_deadline(&self, deadline: Option<Instant>) -> Option<RwLockWriteGuard<'_, T>> {
        let waiter = {
            let mut s = self.state.lock();
            if !s.writer && s.readers == 0 && s.write_waiters.is_empty() {
                s.writer = true;
                drop(s);
                return Some(self.writer());
            }
            s.write_waiters.push()
        };
        // However this writer leaves without the lock (a timeout, or
        // unwinding), the readers behind it are reconsidered.
        struct Withdraw<'a>(&'a shim::Mutex<State>);
        impl Drop for Withdraw<'_> {
            fn drop(&mut self) {
                let wakers = admit_stranded_readers(&mut self.0.lock());
                waiters::wake_all(wakers);
            }
        }
        let withdraw = Withdraw(&self.state);
        let got = waiters::wait(
            &crate::shim::park::WaitLabel("RwLock::write"),
            &self.state,
            waiter,
            deadline,
            write_queue,
            |s, ()| write_release(s),
        );
        if got.is_some() {
            // Admitted: nothing was left behind.
            std::mem::forget(withdraw);
        }
        got.map(|()| self.writer())
    }

    fn reader(&self) -> RwLockReadGuard<'_, T> {
        let data = self
            .data
            .try_read()
            .expect("sylvan RwLock: admitted readers find no writer inside");
        RwLockReadGuard {
            lock: self,
            data: Some(data),
        }
    }

    fn writer(&self) -> RwLockWriteGuard<'_, T> {
        let data = self
            .data
            .try_write()
            .expect("sylvan RwLock: the admitted writer finds the data free");
        RwLockWriteGuard {
            lock: self,
            data: Some(data),
        }
    }

    fn release(&self, f: fn(&mut State) -> Vec<Waker>) {
        let wakers = f(&mut self.state.lock());
        waiters::wake_all(wakers);
    }

    /// Mutable access without locking (the `&mut` proves exclusivity).
    ///
    /// ```
    /// let mut lock = sylvan::sync::RwLock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(*lock.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Consumes the lock, returning the value.
    ///
    /// ```
    /// let lock = sylvan::sync::RwLock::new(vec![1]);
    /// lock.write().push(2);
    /// assert_eq!(lock.into_inner(), [1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_read() {
            Some(g) => f.debug_struct("RwLock").field("data", &*g).finish(),
            None => f.debug_struct("RwLock").field("data", &"<locked>").finish(),
        }
    }
}

/// Shared access to the data of a [`RwLock`]; released when dropped.
///
/// ```
/// let lock = sylvan::sync::RwLock::new(3);
/// let guard = lock.read();
/// assert_eq!(*guard + 1, 4); // Deref to the data
/// assert!(lock.try_write().is_none()); // held until the guard drops
/// drop(guard);
/// assert!(lock.try_write().is_some());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    data: Option<parking_lot::RwLockReadGuard<'a, T>>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_ref().expect("guard holds data until dropped")
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None;
        self.lock.release(read_release);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to the data of a [`RwLock`]; released when dropped.
///
/// ```
/// let lock = sylvan::sync::RwLock::new(vec![1]);
/// let mut guard = lock.write();
/// guard.push(2); // DerefMut to the data
/// assert!(lock.try_read().is_none()); // exclusive until the guard drops
/// drop(guard);
/// assert_eq!(*lock.read(), [1, 2]);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    data: Option<parking_lot::RwLockWriteGuard<'a, T>>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_ref().expect("guard holds data until dropped")
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("guard holds data until dropped")
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None;
        self.lock.release(write_release);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
