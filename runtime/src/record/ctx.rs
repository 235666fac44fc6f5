//! The per-fiber context (what only the fiber's own thread touches) and
//! `CURRENT`, the running fiber's context on this thread.

use crate::park::WaitLabel;
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
    /// When the fiber started and when it last suspended, on the monitor's
    /// coarse clock (`monitor::coarse_now`), for `sylvan::dump`.
    pub(crate) born: Cell<u32>,
    pub(crate) since: Cell<u32>,
    /// What the fiber waits on, as its waiting code labelled it
    /// (`park::label_wait`), for `sylvan::dump`.
    pub(crate) waiting_on: Cell<Option<WaitOn>>,
}

/// What a parked fiber waits on: a label and a detail whose meaning the
/// label gives (a descriptor, a fiber id, a deadline). Two words, so that a
/// labelled park costs no more than a plain one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitOn {
    pub(crate) label: &'static WaitLabel,
    pub(crate) detail: u64,
}

/// Labels for the runtime's own waits (`hub::snapshot` decodes their
/// details).
pub(crate) mod labels {
    use super::WaitLabel;
    pub(crate) static SLEEP: WaitLabel = WaitLabel("sleep");
    pub(crate) static JOIN: WaitLabel = WaitLabel("join");
    pub(crate) static WAIT_ANY: WaitLabel = WaitLabel("wait_any");
    pub(crate) static READABLE: WaitLabel = WaitLabel("wait readable");
    pub(crate) static WRITABLE: WaitLabel = WaitLabel("wait writable");
    #[cfg(feature = "patch")]
    pub(crate) static POLL: WaitLabel = WaitLabel("poll");
    pub(crate) static UNBLOCK: WaitLabel = WaitLabel("unblock");
    pub(crate) static DUMP: WaitLabel = WaitLabel("sylvan::dump");
}

impl WaitOn {
    /// A wait with no detail.
    pub(crate) fn what(label: &'static WaitLabel) -> WaitOn {
        WaitOn { label, detail: 0 }
    }

    /// A wait for readiness of descriptor `fd`.
    pub(crate) fn fd(label: &'static WaitLabel, fd: i32) -> WaitOn {
        WaitOn {
            label,
            detail: fd as u32 as u64,
        }
    }

    /// `join` of fiber `id`.
    pub(crate) fn join(id: u64) -> WaitOn {
        WaitOn {
            label: &labels::JOIN,
            detail: id,
        }
    }

    /// A sleep until `at` (kept as nanoseconds after the monitor's epoch).
    pub(crate) fn sleep(at: std::time::Instant) -> WaitOn {
        let ns = at
            .saturating_duration_since(crate::monitor::epoch())
            .as_nanos();
        WaitOn {
            label: &labels::SLEEP,
            detail: ns.min(u64::MAX as u128) as u64,
        }
    }
}

/// How many IO operations in a row may complete without waiting before the
/// fiber yields to the others of its worker (tokio's cooperative budget is
/// also 128 operations).
pub(crate) const IO_BUDGET: u32 = 128;

impl FiberCtx {
    #[inline]
    pub(crate) fn new(record: TaskRef, guard: (usize, usize)) -> FiberCtx {
        FiberCtx {
            record,
            yielder: Cell::new(std::ptr::null()),
            deadlines: RefCell::new(Vec::new()),
            shielded: Cell::new(0),
            locals: RefCell::new(Vec::new()),
            guard,
            io_streak: Cell::new(0),
            born: Cell::new(crate::monitor::coarse_now()),
            since: Cell::new(crate::monitor::coarse_now()),
            waiting_on: Cell::new(None),
        }
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

    /// [`io_budget_spent`](Self::io_budget_spent), starting a new budget
    /// when it was: for a future's poll, which returns `Pending` to yield
    /// and may be polled again at once by an executor that does not
    /// suspend the fiber.
    pub(crate) fn io_budget_spent_renew(&self) -> bool {
        let spent = self.io_budget_spent();
        if spent {
            self.io_streak.set(0);
        }
        spent
    }

    /// Switches back to the hub.
    pub(crate) fn suspend(&self, why: Suspend) {
        self.io_streak.set(0);
        self.since.set(crate::monitor::coarse_now());
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
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// assert!(!sylvan::in_fiber());
/// assert!(sylvan::spawn(sylvan::in_fiber).join().unwrap());
/// ```
pub fn in_fiber() -> bool {
    !current_ptr().is_null()
}

/// The payload a cancelled fiber unwinds with (caught at the fiber's entry).
pub(crate) struct CancelUnwind;

/// The payload an expired `timeout` scope unwinds with (caught by that scope).
pub(crate) struct TimeoutUnwind {
    pub(crate) id: u64,
}
