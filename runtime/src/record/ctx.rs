//! The per-fiber context (what only the fiber's own thread touches) and
//! `CURRENT`, the running fiber's context on this thread.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::time::Instant;

use corosensei::Yielder;

use super::TaskRef;

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
    /// The expiry was already reported to the code inside as an error
    /// instead of an unwind (a patched libc call cannot unwind through its
    /// C callers), so the scope reports `Elapsed` even if that code returns.
    pub(crate) delivered: bool,
}

/// Per-fiber data that only the fiber's own thread touches.
///
/// # Invariant
/// `yielder` is null until the coroutine first runs and afterwards points to
/// the coroutine's `Yielder`, which lives as long as the coroutine; it is only
/// dereferenced while this fiber is the one running on the thread.
pub(crate) struct FiberCtx {
    /// The fiber's record (shared with its wakers and join handle).
    pub(crate) record: TaskRef,
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
    pub(crate) fn new(record: TaskRef, guard: (usize, usize)) -> FiberCtx {
        FiberCtx {
            record,
            yielder: Cell::new(std::ptr::null()),
            deadlines: RefCell::new(Vec::new()),
            shielded: Cell::new(0),
            locals: RefCell::new(Vec::new()),
            guard,
            io_streak: Cell::new(0),
        }
    }

    /// Makes a finished fiber's context ready for a new fiber.
    pub(crate) fn reset(&mut self, record: TaskRef, guard: (usize, usize)) {
        self.record = record;
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
        // ctx is reachable through `with_current`).
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
        // `Hub::resume` sets CURRENT to the ctx it resumes, resets it on return.
        // SAFETY: so a non-null value is the live ctx of the running fiber
        // (the fiber is freed only after that reset).
        Some(f(unsafe { &*ptr }))
    }
}

/// Whether the caller runs inside a fiber.
pub fn in_fiber() -> bool {
    !current_ptr().is_null()
}

/// The payload a cancelled fiber unwinds with (caught at the fiber's entry).
pub(crate) struct CancelUnwind;

/// The payload an expired `timeout` scope unwinds with (caught by that scope).
pub(crate) struct TimeoutUnwind {
    pub(crate) id: u64,
}
