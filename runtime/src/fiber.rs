//! Fibers: identity, the shared header (with the run state of
//! [`run_state`](crate::run_state), the one atomic other threads touch to
//! wake a fiber), and the per-fiber context.
//!
//! Because a hub is single-threaded and only resumes a fiber it finds in its
//! ready queue, a fiber's moving itself to `PARKED` *before* switching away
//! is race-free: the remote unparker's queued slot is only acted on after the
//! switch completed.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use corosensei::Yielder;

use crate::hub::HubShared;
use crate::run_state::RunState;
use crate::task::TaskRef;

/// A fiber's unique id (never reused within a process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiberId(NonZeroU64);

impl FiberId {
    pub(crate) fn next() -> FiberId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        FiberId(NonZeroU64::new(id).expect("fiber id overflow"))
    }

    /// The id as a number (ids start at 1 and grow).
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for FiberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The thread-safe part of a fiber, shared by its hub, its wakers and its
/// `JoinHandle`.
pub(crate) struct Header {
    pub(crate) id: FiberId,
    pub(crate) name: Option<Box<str>>,
    /// Running, parked, holding a wake token, or done.
    pub(crate) state: RunState,
    /// Set by `JoinHandle::cancel` (and at runtime shutdown); sticky.
    pub(crate) cancelled: AtomicBool,
    /// The hub that started the fiber (null before start).
    ///
    /// # Invariant
    /// Written once, by the starting hub before the fiber first runs, and
    /// published to other threads by the fiber's own `RUNNING → PARKED` CAS
    /// (release), which unparkers read with acquire before using it. While
    /// the fiber is `PARKED` the `HubShared` is alive: the hub's thread holds
    /// an `Arc` to it until every fiber of the hub is done, and a hub that
    /// abandons parked fibers at shutdown leaks one `Arc` to it.
    hub: AtomicPtr<HubShared>,
    /// The fiber's slot in its hub's fiber table (valid once `hub` is set).
    slot: AtomicUsize,
    /// Usable bytes of the fiber's stack (for overflow reports).
    pub(crate) stack_size: usize,
}

impl Header {
    pub(crate) fn new(name: Option<String>, stack_size: usize) -> Header {
        Header {
            id: FiberId::next(),
            name: name.map(String::into_boxed_str),
            state: RunState::new(),
            cancelled: AtomicBool::new(false),
            hub: AtomicPtr::new(std::ptr::null_mut()),
            slot: AtomicUsize::new(0),
            stack_size,
        }
    }

    /// Wakes the fiber (see [`RunState::unpark`]). Safe from any thread.
    pub(crate) fn unpark(&self) {
        if self.state.unpark() {
            // We won PARKED → RUNNING: we alone queue the fiber.
            let hub = self.hub.load(Ordering::Relaxed);
            debug_assert!(!hub.is_null(), "a parked fiber was started by a hub");
            // SAFETY: it was PARKED, so `hub` was set and published by its
            // park CAS (acquired by our RMW); see `Header::hub` for why the
            // HubShared is alive while the fiber is parked.
            unsafe { &*hub }.schedule(self.slot());
        }
    }

    /// Records the hub that starts this fiber and the fiber's slot there.
    pub(crate) fn set_owner(&self, hub: &Arc<HubShared>, slot: usize) {
        self.slot.store(slot, Ordering::Relaxed);
        self.hub
            .store(Arc::as_ptr(hub).cast_mut(), Ordering::Relaxed);
    }

    /// The fiber's slot in its hub (meaningful once started).
    pub(crate) fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    /// Marks the fiber cancelled and wakes it so it notices.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.unpark();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// "'name' (#7)" or "#7", for messages.
    pub(crate) fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("'{n}' ({})", self.id),
            None => format!("{}", self.id),
        }
    }
}

/// Why a fiber switched back to its hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// The fiber set its state to `PARKED`; an unparker will queue it.
    Park,
    /// The fiber wants to run again after the others (yield_now).
    Yield,
}

/// One enclosing `sylvan::timeout` scope.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    /// The earliest deadline of this scope and all enclosing ones.
    pub(crate) at: Instant,
    /// The id of the scope that owns `at` (the one that will catch the unwind).
    pub(crate) id: u64,
}

/// Per-fiber data that only the fiber's own thread touches.
///
/// # Invariant
/// `yielder` is null until the coroutine first runs and afterwards points to
/// the coroutine's `Yielder`, which lives as long as the coroutine; it is only
/// dereferenced while this fiber is the one running on the thread.
pub(crate) struct FiberCtx {
    pub(crate) header: TaskRef,
    pub(crate) yielder: Cell<*const Yielder<(), Suspend>>,
    /// Stack of enclosing `timeout` scopes (top = innermost).
    pub(crate) deadlines: RefCell<Vec<Deadline>>,
    /// While > 0, parks do not raise cancellation or timeouts.
    pub(crate) shielded: Cell<u32>,
    /// Fiber-local values (`fiber_local!`), dropped when the fiber ends.
    pub(crate) locals: RefCell<Vec<(usize, Box<dyn Any>)>>,
    /// The stack's guard page range, for the overflow handler.
    pub(crate) guard: (usize, usize),
    /// IO operations that completed without waiting since the fiber last
    /// suspended (see [`FiberCtx::io_budget_spent`]).
    io_streak: Cell<u32>,
}

/// How many IO operations in a row may complete without waiting before the
/// fiber yields to the others of its worker (tokio's cooperative budget is
/// also 128 operations).
pub(crate) const IO_BUDGET: u32 = 128;

impl FiberCtx {
    pub(crate) fn new(header: TaskRef, guard: (usize, usize)) -> FiberCtx {
        FiberCtx {
            header,
            yielder: Cell::new(std::ptr::null()),
            deadlines: RefCell::new(Vec::new()),
            shielded: Cell::new(0),
            locals: RefCell::new(Vec::new()),
            guard,
            io_streak: Cell::new(0),
        }
    }

    /// Makes a finished fiber's context ready for a new fiber.
    pub(crate) fn reset(&mut self, header: TaskRef, guard: (usize, usize)) {
        self.header = header;
        self.yielder.set(std::ptr::null());
        self.deadlines.get_mut().clear();
        self.shielded.set(0);
        // A finished fiber's locals were dropped when its closure returned.
        debug_assert!(self.locals.get_mut().is_empty());
        self.guard = guard;
        self.io_streak.set(0);
    }

    /// Counts one IO operation that is about to run; `true` once the fiber
    /// has done [`IO_BUDGET`] of them without suspending, when it should
    /// yield first: a fiber reading a socket that always has data would
    /// otherwise never let the other fibers of its worker run.
    pub(crate) fn io_budget_spent(&self) -> bool {
        let n = self.io_streak.get() + 1;
        self.io_streak.set(n);
        n > IO_BUDGET
    }

    /// Switches back to the hub.
    pub(crate) fn suspend(&self, why: Suspend) {
        self.io_streak.set(0);
        let yielder = self.yielder.get();
        assert!(!yielder.is_null(), "suspend before the fiber started");
        // SAFETY: per the struct invariant the yielder outlives the coroutine
        // and we are running inside that coroutine (only the running fiber's
        // ctx is reachable through `current_ctx`).
        unsafe { (*yielder).suspend(why) };
    }
}

thread_local! {
    /// The fiber running on this thread (null on a plain thread or in the hub).
    static CURRENT: Cell<*const FiberCtx> = const { Cell::new(std::ptr::null()) };
}

/// Installs `ctx` as the running fiber; returns the previous value.
pub(crate) fn set_current(ctx: *const FiberCtx) -> *const FiberCtx {
    CURRENT.with(|c| c.replace(ctx))
}

/// Raw pointer to the running fiber's ctx (null when not in a fiber).
pub(crate) fn current_ptr() -> *const FiberCtx {
    CURRENT.with(|c| c.get())
}

/// Runs `f` with the running fiber's context, or returns `None` off-fiber.
pub(crate) fn with_current<R>(f: impl FnOnce(&FiberCtx) -> R) -> Option<R> {
    let ptr = current_ptr();
    if ptr.is_null() {
        None
    } else {
        // SAFETY: CURRENT is set by the hub to a FiberCtx owned by the fiber
        // being resumed and reset before that fiber can be dropped, so a
        // non-null value points to a live ctx of the fiber running right now.
        Some(f(unsafe { &*ptr }))
    }
}

/// Whether the caller runs inside a fiber.
pub fn in_fiber() -> bool {
    !current_ptr().is_null()
}

/// A handle to a fiber's identity, returned by [`current`].
#[derive(Clone)]
pub struct Fiber {
    pub(crate) header: TaskRef,
}

impl Fiber {
    /// The fiber's unique id.
    pub fn id(&self) -> FiberId {
        self.header.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.header.name.as_deref()
    }

    /// Whether cancellation has been requested for this fiber.
    pub fn is_cancelled(&self) -> bool {
        self.header.is_cancelled()
    }

    /// Requests cancellation of this fiber, like
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel) (for code that has a
    /// `Fiber` but not the handle, e.g. a group of fibers).
    pub fn cancel(&self) {
        self.header.cancel();
    }
}

impl fmt::Debug for Fiber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("id", &self.header.id)
            .field("name", &self.header.name)
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
pub fn try_current() -> Option<Fiber> {
    with_current(|ctx| Fiber {
        header: ctx.header.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpark_before_park_leaves_a_token_and_done_ignores_wakes() {
        let h = Header::new(Some("x".into()), 0);
        h.unpark();
        h.unpark();
        assert!(h.state.has_token(), "tokens do not stack");
        assert!(h.state.take_token());
        h.state.finish();
        h.unpark();
        h.cancel();
        assert!(h.state.is_done());
        assert!(h.is_cancelled());
        assert_eq!(h.describe(), format!("'x' ({})", h.id));
    }

    #[test]
    fn ids_are_unique_and_increasing() {
        let a = FiberId::next();
        let b = FiberId::next();
        assert!(b > a);
    }
}
