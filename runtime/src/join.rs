//! Waiting for fibers: [`JoinHandle`] and [`JoinError`], and the one-shot
//! result slot ([`JoinCell`]) a finishing fiber publishes its outcome to.
//!
//! A fiber's closure and its fiber-local values are dropped *before* its
//! result is published (an ordering [`scope`](crate::scope()) relies on).

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::park::{self, Waker};
use crate::record::WaitOn;
use crate::record::{self, panic_message, CancelUnwind, FiberId, Header, TaskRef};

/// Why a fiber did not produce a value.
pub(crate) enum Failure {
    Panic(Box<dyn Any + Send + 'static>),
    Cancelled,
}

impl Failure {
    pub(crate) fn from_payload(p: Box<dyn Any + Send + 'static>) -> Failure {
        if p.is::<CancelUnwind>() {
            Failure::Cancelled
        } else {
            Failure::Panic(p)
        }
    }
}

/// A one-shot slot for a result, with one waiter (a fiber or thread).
pub(crate) struct JoinCell<T> {
    state: Mutex<JoinState<T>>,
    done: AtomicBool,
}

struct JoinState<T> {
    outcome: Option<Result<T, Failure>>,
    waiter: Option<Waker>,
    /// Nobody will ever take the outcome (the handle was dropped unjoined):
    /// it is dropped as soon as it is published.
    detached: bool,
}

impl<T> JoinCell<T> {
    pub(crate) fn new() -> JoinCell<T> {
        JoinCell {
            state: Mutex::new(JoinState {
                outcome: None,
                waiter: None,
                detached: false,
            }),
            done: AtomicBool::new(false),
        }
    }

    /// Publishes the outcome and wakes the waiter. A detached cell drops the
    /// outcome here and now (outside its lock).
    pub(crate) fn complete(&self, outcome: Result<T, Failure>) {
        let (waiter, unwanted) = {
            let mut s = self.state.lock();
            self.done.store(true, Ordering::Release);
            if s.detached {
                (None, Some(outcome))
            } else {
                s.outcome = Some(outcome);
                (s.waiter.take(), None)
            }
        };
        drop(unwanted);
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// The handle is gone without joining: drop an outcome already there,
    /// and any later one as soon as it comes. (The cell itself may live on
    /// for a while, e.g. in a waker, so waiting for its last reference
    /// would keep a result such as a socket open for no one.)
    pub(crate) fn detach(&self) {
        let unwanted = {
            let mut s = self.state.lock();
            s.detached = true;
            s.outcome.take()
        };
        drop(unwanted);
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits for the outcome (register → re-check → park).
    /// Waits for the outcome; `on` is what `sylvan::dump` shows meanwhile.
    pub(crate) fn wait(&self, on: WaitOn) -> Result<T, Failure> {
        loop {
            {
                let mut s = self.state.lock();
                if let Some(o) = s.outcome.take() {
                    return o;
                }
                s.waiter = Some(park::current_waker());
            }
            park::park_with(on);
        }
    }
}

/// An owned permission to join a fiber (and to cancel it).
///
/// Dropping the handle detaches the fiber: it keeps running.
pub struct JoinHandle<T> {
    /// The fiber's record; it holds the result slot, except for
    /// `spawn_local` fibers.
    record: TaskRef,
    /// `spawn_local`'s result slot (its `T` need not be `Send`).
    own_cell: Option<Arc<JoinCell<T>>>,
    /// `join` took the outcome (so dropping the handle need not detach).
    joined: bool,
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn new(record: TaskRef, own_cell: Option<Arc<JoinCell<T>>>) -> JoinHandle<T> {
        JoinHandle {
            record,
            own_cell,
            joined: false,
        }
    }

    fn cell(&self) -> &JoinCell<T> {
        match &self.own_cell {
            Some(cell) => cell,
            None => self
                .record
                .body
                .join_cell()
                .downcast_ref()
                .expect("a spawned fiber's record holds a JoinCell of its result type"),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.joined {
            return;
        }
        match &self.own_cell {
            Some(cell) => cell.detach(),
            None => self.record.body.detach(),
        }
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Waits for the fiber to finish and returns its value, or why it has none.
    /// Works from a fiber (which parks) and from a plain thread (which blocks).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::spawn(|| panic!("boom"));
    /// let err = h.join().unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(err.to_string().contains("boom"));
    /// ```
    ///
    /// # Panics
    /// If a fiber tries to join itself (that could never finish).
    pub fn join(self) -> Result<T, JoinError> {
        let mut this = self;
        if record::with_current(|c| c.record.id) == Some(this.record.id) {
            panic!(
                "sylvan: fiber {} tried to join itself, which would wait forever; \
                 join it from another fiber or thread",
                this.record.describe()
            );
        }
        let outcome = this.cell().wait(WaitOn::join(this.record.id.as_u64()));
        this.joined = true;
        outcome.map_err(|f| JoinError::new(f, &this.record))
    }
}

impl<T> JoinHandle<T> {
    /// Requests cancellation: the fiber unwinds from its current or next park
    /// point (sleep, join, IO, lock, queue...), running its destructors, and
    /// [`join`](Self::join) reports [`JoinError::is_cancelled`]. A fiber that
    /// never parks cannot be cancelled. No-op on a finished fiber.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    /// h.cancel();
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.record.cancel();
    }

    /// Whether the fiber has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        match &self.own_cell {
            Some(cell) => cell.is_done(),
            None => self.record.body.is_done(),
        }
    }

    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.record.id
    }

    /// The fiber's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.record.name.as_deref()
    }

    /// A clonable handle to the fiber's identity (id, name, cancellation).
    pub fn fiber(&self) -> crate::Fiber {
        crate::Fiber {
            record: self.record.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.record.id)
            .field("name", &self.record.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why joining a fiber gave no value: it panicked or was cancelled.
pub struct JoinError {
    failure: Failure,
    fiber: String,
}

impl JoinError {
    pub(crate) fn new(failure: Failure, header: &Header) -> JoinError {
        JoinError {
            failure,
            fiber: header.describe(),
        }
    }

    /// The fiber panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.failure, Failure::Panic(_))
    }

    /// The fiber was cancelled (by [`JoinHandle::cancel`] or runtime shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.failure, Failure::Cancelled)
    }

    /// The panic payload, to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    /// If the fiber was cancelled rather than panicking; check
    /// [`is_panic`](Self::is_panic) or use [`try_into_panic`](Self::try_into_panic).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|e| panic!("JoinError::into_panic on a non-panic error: {e}"))
    }

    /// The panic payload, or the error back if the fiber was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.failure {
            Failure::Panic(p) => Ok(p),
            Failure::Cancelled => Err(self),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Cancelled => write!(f, "fiber {} was cancelled", self.fiber),
            Failure::Panic(p) => match panic_message(&**p) {
                Some(msg) => write!(f, "fiber {} panicked: {msg}", self.fiber),
                None => write!(f, "fiber {} panicked", self.fiber),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        io::Error::other(e.to_string())
    }
}
