//! [`Waker`]: the handle that wakes one parked fiber or plain thread.

use std::fmt;
use std::sync::Arc;

use super::{with_current, TaskRef};

/// A handle that wakes one parked fiber or thread. Cheap to clone, `Send + Sync`.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let flag = Arc::new(AtomicBool::new(false));
/// let (tx, rx) = std::sync::mpsc::channel();
/// let waiter = {
///     let flag = flag.clone();
///     sylvan::spawn(move || {
///         tx.send(sylvan::park::current_waker()).unwrap();
///         // register (above) → re-check → park, in a loop
///         while !flag.load(Ordering::Acquire) {
///             sylvan::park::park();
///         }
///     })
/// };
/// let waker = rx.recv().unwrap();
/// flag.store(true, Ordering::Release);
/// waker.wake();
/// waiter.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Waker {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Fiber(TaskRef),
    Thread(std::thread::Thread),
    /// An async task's waker (a future polled by any executor).
    Task(std::task::Waker),
}

impl Waker {
    /// The waker of the fiber `record`.
    pub(crate) fn of(record: TaskRef) -> Waker {
        Waker {
            inner: Inner::Fiber(record),
        }
    }

    /// A waker that wakes an async task through its `std::task::Waker`,
    /// so waiter lists built on this protocol (IO readiness, a fiber's
    /// result) can also serve futures.
    pub(crate) fn of_task(waker: &std::task::Waker) -> Waker {
        Waker {
            inner: Inner::Task(waker.clone()),
        }
    }

    /// Wakes the fiber or thread this waker belongs to (see the module docs).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::park::current_waker;
    /// let waker = current_waker(); // this thread
    /// std::thread::spawn(move || waker.wake()).join().unwrap();
    /// sylvan::park::park(); // returns: the wake was a token
    /// ```
    pub fn wake(&self) {
        match &self.inner {
            Inner::Fiber(h) => h.unpark(),
            Inner::Thread(t) => t.unpark(),
            Inner::Task(w) => w.wake_by_ref(),
        }
    }

    /// Whether this wakes an async task (made by [`Waker::of_task`]).
    pub(crate) fn is_task(&self) -> bool {
        matches!(self.inner, Inner::Task(_))
    }

    /// Whether both wakers wake the same fiber or thread.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::park::current_waker;
    /// let (a, b) = (current_waker(), current_waker());
    /// assert!(a.will_wake(&b)); // the same thread
    /// let other = sylvan::spawn(current_waker).join().unwrap();
    /// assert!(!a.will_wake(&other)); // a fiber
    /// ```
    pub fn will_wake(&self, other: &Waker) -> bool {
        match (&self.inner, &other.inner) {
            (Inner::Fiber(a), Inner::Fiber(b)) => Arc::ptr_eq(a, b),
            (Inner::Thread(a), Inner::Thread(b)) => a.id() == b.id(),
            (Inner::Task(a), Inner::Task(b)) => a.will_wake(b),
            _ => false,
        }
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Fiber(h) => write!(f, "Waker(fiber {})", h.id),
            Inner::Thread(t) => write!(f, "Waker(thread {:?})", t.id()),
            Inner::Task(_) => write!(f, "Waker(async task)"),
        }
    }
}

/// A waker for the caller: the running fiber, or the current OS thread.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let in_fiber = sylvan::spawn(|| format!("{:?}", sylvan::park::current_waker())).join().unwrap();
/// assert!(in_fiber.starts_with("Waker(fiber"));
/// let on_thread = format!("{:?}", sylvan::park::current_waker());
/// assert!(on_thread.starts_with("Waker(thread"));
/// ```
pub fn current_waker() -> Waker {
    let inner = with_current(|ctx| Inner::Fiber(ctx.record.clone()))
        .unwrap_or_else(|| Inner::Thread(std::thread::current()));
    Waker { inner }
}
