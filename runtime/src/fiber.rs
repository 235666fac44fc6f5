//! The running fiber's identity for user code: [`current`], [`try_current`]
//! and the [`Fiber`] handle.

use std::fmt;

use crate::record::{self, FiberId, TaskRef};

/// A handle to a fiber's identity, returned by [`current`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let h = sylvan::Builder::new()
///     .name("worker-1")
///     .spawn(|| {
///         let me = sylvan::current();
///         (me.name().map(str::to_owned), me.id(), me.is_cancelled())
///     })
///     .unwrap();
/// let id = h.id();
/// let (name, seen_id, cancelled) = h.join().unwrap();
/// assert_eq!(name.as_deref(), Some("worker-1"));
/// assert_eq!((seen_id, cancelled), (id, false));
/// ```
#[derive(Clone)]
pub struct Fiber {
    pub(crate) record: TaskRef,
}

impl Fiber {
    /// The fiber's unique id.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let (a, b) = (sylvan::spawn(|| sylvan::current().id()), sylvan::spawn(|| sylvan::current().id()));
    /// assert_ne!(a.join().unwrap(), b.join().unwrap()); // ids are unique
    /// ```
    pub fn id(&self) -> FiberId {
        self.record.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let anon = sylvan::spawn(|| sylvan::current().name().is_none());
    /// assert!(anon.join().unwrap());
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.record.name()
    }

    /// Whether cancellation has been requested for this fiber.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
    /// let f = h.fiber();
    /// assert!(!f.is_cancelled());
    /// h.cancel();
    /// assert!(f.is_cancelled()); // requested; it unwinds where it parks
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.record.is_cancelled()
    }

    /// Requests cancellation of this fiber, like
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel) (for code that has a
    /// `Fiber` but not the handle, e.g. a group of fibers).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
    /// let f: sylvan::Fiber = h.fiber();
    /// f.cancel(); // as h.cancel()
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.record.cancel();
    }
}

impl fmt::Debug for Fiber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("id", &self.record.id)
            .field("name", &self.record.name())
            .finish()
    }
}

/// The fiber that is running this code.
///
/// # Panics
/// When called outside a fiber; use [`try_current`] to check first.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let name = sylvan::Builder::new()
///     .name("worker-1")
///     .spawn(|| sylvan::current().name().map(String::from))
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(name.as_deref(), Some("worker-1"));
/// ```
pub fn current() -> Fiber {
    try_current().expect(
        "sylvan::current() called outside a fiber; call it from code run by \
         sylvan::spawn / sylvan::run, or use sylvan::try_current()",
    )
}

/// The running fiber, or `None` on a plain thread.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// assert!(sylvan::try_current().is_none()); // a plain thread
/// assert!(sylvan::spawn(|| sylvan::try_current().is_some()).join().unwrap());
/// ```
pub fn try_current() -> Option<Fiber> {
    record::with_current(|ctx| Fiber {
        record: ctx.record.clone(),
    })
}
