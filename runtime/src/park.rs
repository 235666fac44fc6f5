//! The parking protocol: how anything in sylvan blocks and is woken.
//!
//! # Contract
//!
//! A caller that must wait for a condition does, in a loop:
//!
//! 1. **register**: put [`current_waker()`] wherever the condition's owner will
//!    look for it (a waiter list under the same lock as the condition);
//! 2. **re-check** the condition (it may have become true meanwhile);
//! 3. **park**: [`park()`] or [`park_until()`], then go back to 2.
//!
//! The owner makes the condition true and then calls [`Waker::wake`].
//!
//! Promises:
//!
//! * **No lost wakeups.** A `wake` that happens at any point after the waker was
//!   obtained makes the next park return (wakes are tokens, like
//!   [`std::thread::park`]).
//! * **No double resumes.** A fiber parked once is resumed at most once, however
//!   many threads wake it concurrently.
//! * **Spurious returns are possible** (a stale token, a deadline): always
//!   re-check the condition.
//! * **Works everywhere.** In a fiber, parking switches to the hub so the worker
//!   runs other fibers; on a plain OS thread it blocks the thread. Wakers are
//!   `Send + Sync` and can be woken from fibers on any worker or plain threads.
//! * **Interruptions.** A park raises [cancellation] and an expired
//!   [`timeout`](crate::timeout) by *unwinding* from the park call with a private
//!   payload, so destructors of the waiter (e.g. a guard that removes it from a
//!   waiter list) run. Waiters must therefore keep their bookkeeping in types
//!   whose `Drop` undoes it, and must hand anything they were given but will no
//!   longer take (a permit, an item) to the next waiter. Inside [`shield`] no
//!   interruption is raised; nor is one raised while the caller is already
//!   unwinding.
//! * **Waiting while unwinding.** A fiber that parks while it unwinds a
//!   panic or a cancellation (a destructor that waits) does not switch to
//!   the other fibers of its worker at first: `std::thread::panicking()` is
//!   per thread, and they would see it `true`. The worker waits in place,
//!   still applying wakeups, firing timers and polling IO, so a wait on
//!   another thread, a timer or a socket ends as it would otherwise. A wait
//!   that needs another fiber of the same worker cannot end that way, so
//!   after `reactor::IN_PLACE_LIMIT` (per unwinding) the fiber suspends like
//!   any park, and a one-time report says that the worker's other fibers now
//!   run beside it — seeing `panicking()` true, so not interruptible, until
//!   it has finished unwinding. No interruption is raised in such a wait.
//! * **When each interruption is raised.** Cancellation is raised at once:
//!   when a park is entered and again after the caller was resumed. An
//!   expired `timeout` is raised only when the park is *about to block*: not
//!   when a wake token is waiting (the park consumes it and returns), and not
//!   after the caller was woken (the park returns normally). So a waiter that
//!   was woken because it was handed something always gets to re-check its
//!   condition and take it; the timeout is raised at its next park, when it
//!   really would wait. Without this rule an item handed to a waiter whose
//!   deadline had passed before it ran would be passed on by that waiter's
//!   unwinding to the next waiter, whose deadline may have passed as well,
//!   and so on: the item would circulate between waiters and never rest.
//!   (A timer firing for the deadline wakes the caller like any wake; the
//!   re-check finds nothing, the caller parks again and that park raises.)
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! use std::sync::{Arc, Mutex};
//! use sylvan::park::{current_waker, park};
//!
//! // A plain thread waits for a fiber's result (its waker unparks the thread).
//! let result = Arc::new(Mutex::new(None));
//! let (slot, waker) = (result.clone(), current_waker()); // 1. register
//! sylvan::spawn(move || {
//!     *slot.lock().unwrap() = Some(42); // make the condition true…
//!     waker.wake(); // …then wake
//! });
//! let value = loop {
//!     if let Some(v) = result.lock().unwrap().take() {
//!         break v; // 2. re-check
//!     }
//!     park(); // 3. park
//! };
//! assert_eq!(value, 42);
//! ```
//!
//! [cancellation]: crate::JoinHandle::cancel

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crate::reactor;
use crate::record::{self, CancelUnwind, Deadline, FiberCtx, TimeoutUnwind, WaitOn};
pub use crate::record::{current_waker, Waker};

/// Blocks the caller until woken (or spuriously). See the module docs.
///
/// # Panics (unwinds)
/// In a fiber, unwinds with a private payload when the fiber is cancelled or an
/// enclosing [`timeout`](crate::timeout) expires (not inside [`shield`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::{Arc, Mutex};
/// use sylvan::park::{current_waker, park, Waker};
///
/// // A one-shot flag, by the protocol: register, re-check, park.
/// let flag = Arc::new((AtomicBool::new(false), Mutex::new(None::<Waker>)));
/// let waiter = {
///     let flag = flag.clone();
///     sylvan::spawn(move || {
///         loop {
///             *flag.1.lock().unwrap() = Some(current_waker()); // 1. register
///             if flag.0.load(Ordering::Acquire) {              // 2. re-check
///                 break;
///             }
///             park();                                          // 3. park
///         }
///         "woken"
///     })
/// };
/// flag.0.store(true, Ordering::Release); // make the condition true…
/// if let Some(w) = flag.1.lock().unwrap().take() {
///     w.wake(); // …then wake
/// }
/// assert_eq!(waiter.join().unwrap(), "woken");
/// ```
pub fn park() {
    park_inner(None, None, None);
}

/// Like [`park`], but returns by `deadline` at the latest. Returns `true` if the
/// deadline has passed when it returns.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(2);
/// // Nobody wakes us: loop over spurious returns until the deadline.
/// while !sylvan::park::park_until(deadline) {}
/// assert!(Instant::now() >= deadline);
/// ```
pub fn park_until(deadline: Instant) -> bool {
    park_inner(Some(deadline), None, None);
    deadline_passed(deadline)
}

/// Like [`park`], saying what the caller waits on (`"Event::wait"`,
/// `"Queue::get"`...): [`dump`](fn@crate::dump) shows it while the fiber is
/// parked here. Costs nothing more than `park`.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// use sylvan::park::{park_until_for, WaitLabel};
/// sylvan::run(|| {
///     let at = Instant::now() + Duration::from_millis(1);
///     while !park_until_for(at, &WaitLabel("my_protocol::wait_for_peer")) {}
/// });
/// ```
pub fn park_for(label: &'static WaitLabel) {
    park_inner(None, Some(WaitOn::what(label)), None);
}

/// [`park_until`] with a label, as [`park_for`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// use sylvan::park::{current_waker, park_until_for, WaitLabel};
/// let far = Instant::now() + Duration::from_secs(60);
/// current_waker().wake();
/// assert!(!park_until_for(far, &WaitLabel("doc::woken"))); // woken, not timed out
/// let near = Instant::now() + Duration::from_millis(1);
/// while !park_until_for(near, &WaitLabel("doc::deadline")) {}
/// ```
pub fn park_until_for(deadline: Instant, label: &'static WaitLabel) -> bool {
    park_until_with(deadline, WaitOn::what(label))
}

/// What a fiber parked with [`park_for`] waits on, as
/// [`dump`](fn@crate::dump) shows it. A label is referred to, not copied, so a
/// labelled park costs what a plain one does: write `&WaitLabel("...")`
/// (promoted to a `'static`) or keep it in a `static`.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// use sylvan::park::{park_until_for, WaitLabel};
///
/// static WAITING_FOR_PEER: WaitLabel = WaitLabel("my_protocol::wait_for_peer");
/// let at = Instant::now() + Duration::from_millis(1);
/// while !park_until_for(at, &WAITING_FOR_PEER) {}
/// ```
#[derive(Debug)]
pub struct WaitLabel(pub &'static str);

/// [`park`] with any label.
pub(crate) fn park_with(on: WaitOn) {
    park_inner(None, Some(on), None);
}

/// [`park_until`] with any label.
pub(crate) fn park_until_with(deadline: Instant, on: WaitOn) -> bool {
    park_until_read(deadline, on, None)
}

/// [`park_until_with`] for a caller that has just read the clock (`now`:
/// `sleep` computes its deadline from one reading), which spares the park a
/// reading of its own.
pub(crate) fn park_until_read(deadline: Instant, on: WaitOn, now: Option<Instant>) -> bool {
    park_inner(Some(deadline), Some(on), now);
    deadline_passed(deadline)
}

/// After a timed park: whether its deadline has passed. Woken by its timer,
/// the worker's last clock reading already says so; else the clock is read.
fn deadline_passed(deadline: Instant) -> bool {
    reactor::has_passed(deadline) || Instant::now() >= deadline
}

/// Like [`park`], for at most `dur`. Returns `true` if the time ran out.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// use sylvan::park::{current_waker, park_timeout};
/// let me = current_waker();
/// me.wake(); // a token is waiting: the next park returns at once
/// assert!(!park_timeout(Duration::from_secs(60)));
/// assert!(park_timeout(Duration::from_millis(1))); // no token: times out
/// ```
pub fn park_timeout(dur: Duration) -> bool {
    match Instant::now().checked_add(dur) {
        Some(deadline) => park_until(deadline),
        None => {
            park();
            false
        }
    }
}

/// Raises a pending cancellation or expired timeout now (by unwinding), as a
/// park would. Lets long computations offer a cancellation point.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let r = sylvan::timeout(Duration::from_millis(5), || {
///     let mut n = 0u64;
///     loop {
///         n = n.wrapping_add(1); // a computation that never parks…
///         if n % 1024 == 0 {
///             sylvan::park::checkpoint(); // …offers an interruption point
///         }
///     }
/// });
/// assert!(r.is_err());
/// ```
pub fn checkpoint() {
    match record::with_current(raise_interrupts) {
        Some(()) => {}
        None => raise_thread_interrupts(),
    }
}

/// Runs `f` with cancellation and timeouts held back: parks inside `f` do not
/// unwind. Pending interruptions are raised at the next park after `f`.
/// Use it for short cleanup waits that must complete (e.g. waiting for
/// children that borrow from the caller's stack).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let r = sylvan::timeout(Duration::from_millis(1), || {
///     // The deadline passes during this sleep, but the shield holds it back…
///     sylvan::park::shield(|| sylvan::sleep(Duration::from_millis(5)));
///     // …and the next park raises it.
///     sylvan::sleep(Duration::from_secs(60));
/// });
/// assert!(r.is_err());
/// ```
pub fn shield<R>(f: impl FnOnce() -> R) -> R {
    struct Unshield;
    impl Drop for Unshield {
        fn drop(&mut self) {
            adjust_shield(-1);
        }
    }
    adjust_shield(1);
    let _g = Unshield;
    f()
}

thread_local! {
    /// `timeout` scopes on a plain thread (fibers keep theirs in their ctx).
    static THREAD_DEADLINES: RefCell<Vec<Deadline>> = const { RefCell::new(Vec::new()) };
    /// `shield` depth on a plain thread.
    static THREAD_SHIELD: Cell<u32> = const { Cell::new(0) };
}

fn adjust_shield(delta: i32) {
    let apply = |c: &Cell<u32>| c.set(c.get().wrapping_add_signed(delta));
    if record::with_current(|ctx| apply(&ctx.shielded)).is_none() {
        THREAD_SHIELD.with(apply);
    }
}

/// Enters a `timeout` scope with the given deadline.
pub(crate) fn push_deadline(at: Instant, id: u64) {
    let push = |stack: &RefCell<Vec<Deadline>>| {
        let mut stack = stack.borrow_mut();
        let entry = match stack.last() {
            Some(outer) if outer.at <= at => *outer,
            _ => Deadline {
                at,
                id,
                delivered: false,
            },
        };
        stack.push(entry);
    };
    if record::with_current(|ctx| push(&ctx.deadlines)).is_none() {
        THREAD_DEADLINES.with(push);
    }
}

/// Leaves the innermost `timeout` scope.
pub(crate) fn pop_deadline() {
    let pop = |stack: &RefCell<Vec<Deadline>>| {
        stack.borrow_mut().pop();
    };
    if record::with_current(|ctx| pop(&ctx.deadlines)).is_none() {
        THREAD_DEADLINES.with(pop);
    }
}

/// Whether a park of the caller here could raise an interruption: not
/// shielded, not unwinding.
pub(crate) fn interruptible_here() -> bool {
    let shield = record::with_current(|ctx| ctx.shielded.get())
        .unwrap_or_else(|| THREAD_SHIELD.with(Cell::get));
    interruptible(shield)
}

/// The deadline of the innermost `timeout` scope around the caller, if any
/// (for a shielded wait that must still notice it: a scope's wait for its
/// children).
pub(crate) fn innermost_deadline() -> Option<Instant> {
    let top = |stack: &RefCell<Vec<Deadline>>| stack.borrow().last().map(|d| d.at);
    record::with_current(|ctx| top(&ctx.deadlines)).unwrap_or_else(|| THREAD_DEADLINES.with(top))
}

/// Whether the innermost `timeout` scope is `id`'s and its expiry was
/// reported as an error (`deliver_timeout`, under the `patch` feature).
pub(crate) fn timeout_delivered(id: u64) -> bool {
    let top = |stack: &RefCell<Vec<Deadline>>| {
        stack
            .borrow()
            .last()
            .is_some_and(|d| d.id == id && d.delivered)
    };
    record::with_current(|ctx| top(&ctx.deadlines)).unwrap_or_else(|| THREAD_DEADLINES.with(top))
}

#[cfg(feature = "patch")]
/// An interruption that was caught where it could not unwind (a patched
/// libc call: its C callers have no unwind tables) and is returned as an
/// error instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The fiber was cancelled. Cancellation stays pending, so the next
    /// park raises it again.
    Cancelled,
    /// An enclosing `timeout` expired. Its scope returns `Elapsed` even if
    /// the code inside carries on and returns normally.
    TimedOut,
}

#[cfg(feature = "patch")]
/// Runs `f`, turning an interruption that unwinds out of it into an
/// [`Interrupt`]. Any other panic is returned as its payload.
pub(crate) fn catch_interrupt<R>(
    f: impl FnOnce() -> R,
) -> Result<R, Result<Interrupt, Box<dyn std::any::Any + Send>>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Ok(v),
        Err(payload) => {
            if payload.is::<CancelUnwind>() {
                return Err(Ok(Interrupt::Cancelled));
            }
            match payload.downcast::<TimeoutUnwind>() {
                Ok(t) => {
                    deliver_timeout(t.id);
                    Err(Ok(Interrupt::TimedOut))
                }
                Err(other) => Err(Err(other)),
            }
        }
    }
}

/// Whether the next park of the calling fiber would raise an interruption
/// (a cancellation, or an expired innermost `timeout` scope).
#[cfg(feature = "patch")]
pub(crate) fn interrupt_pending() -> bool {
    record::with_current(|ctx| {
        if !interruptible(ctx.shielded.get()) {
            return false;
        }
        ctx.record.is_cancelled()
            || ctx
                .deadlines
                .borrow()
                .last()
                .is_some_and(|d| Instant::now() >= d.at)
    })
    .unwrap_or(false)
}

#[cfg(feature = "patch")]
/// Marks every entry of timeout scope `id` as reported (see
/// [`Deadline::delivered`]).
fn deliver_timeout(id: u64) {
    let mark = |stack: &RefCell<Vec<Deadline>>| {
        for d in stack.borrow_mut().iter_mut().filter(|d| d.id == id) {
            d.delivered = true;
        }
    };
    if record::with_current(|ctx| mark(&ctx.deadlines)).is_none() {
        THREAD_DEADLINES.with(mark);
    }
}

fn interruptible(shield: u32) -> bool {
    shield == 0 && !std::thread::panicking()
}

/// Raises a pending cancellation and, if the innermost `timeout` scope has
/// expired, its timeout (see "When each interruption is raised").
///
/// Inlined into every park and yield: the checks that find nothing are a
/// few loads; what raises is out of line.
#[inline]
pub(crate) fn raise_interrupts(ctx: &FiberCtx) {
    raise_cancellation(ctx);
    raise_expired_timeout(ctx);
}

/// Raises the innermost `timeout` scope's timeout if it has expired.
#[inline]
fn raise_expired_timeout(ctx: &FiberCtx) {
    // Fast path (every park and yield): no enclosing timeout. Only the
    // fiber's own code touches its `deadlines`, and nothing else of it runs
    // during this check, so no mutable borrow can be active.
    // SAFETY: the returned reference is dropped before this function can
    // reach code that borrows `deadlines` mutably.
    if unsafe { ctx.deadlines.try_borrow_unguarded() }.is_ok_and(Vec::is_empty) {
        return;
    }
    raise_expired_scope(ctx);
}

/// [`raise_expired_timeout`] with a `timeout` scope open.
#[cold]
#[inline(never)]
fn raise_expired_scope(ctx: &FiberCtx) {
    let Some(top) = ctx.deadlines.borrow().last().copied() else {
        return;
    };
    if Instant::now() >= top.at && interruptible(ctx.shielded.get()) {
        std::panic::resume_unwind(Box::new(TimeoutUnwind { id: top.id }));
    }
}

/// Raises a pending cancellation (not an expired timeout).
#[inline]
fn raise_cancellation(ctx: &FiberCtx) {
    if ctx.record.is_cancelled() && interruptible(ctx.shielded.get()) {
        cancel_unwind();
    }
}

/// Unwinds the running fiber with the cancellation payload.
#[cold]
#[inline(never)]
fn cancel_unwind() -> ! {
    std::panic::resume_unwind(Box::new(CancelUnwind))
}

fn raise_thread_interrupts() {
    if !interruptible(THREAD_SHIELD.with(Cell::get)) {
        return;
    }
    if let Some(d) = THREAD_DEADLINES.with(|s| s.borrow().last().copied()) {
        if Instant::now() >= d.at {
            std::panic::resume_unwind(Box::new(TimeoutUnwind { id: d.id }));
        }
    }
}

/// The deadline a park must honour: its own and, when interruptible, the
/// innermost `timeout` scope's.
fn wait_deadline(
    deadline: Option<Instant>,
    scopes: Option<Deadline>,
    shield: u32,
) -> Option<Instant> {
    let scope = scopes.filter(|_| interruptible(shield)).map(|d| d.at);
    match (deadline, scope) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `now`: a clock reading the caller took just before, if it has one.
fn park_inner(deadline: Option<Instant>, on: Option<WaitOn>, now: Option<Instant>) {
    let ptr = record::current_ptr();
    if ptr.is_null() {
        return thread_park(deadline);
    }
    // Its box is never moved, freed or `&mut`ed while the fiber lives
    // (`hub::LiveFiber`), so the reference may outlive a suspension.
    // SAFETY: a non-null CURRENT is the running fiber's ctx (`with_current`).
    let ctx = unsafe { &*ptr };
    fiber_park(ctx, deadline, on, now);
}

fn fiber_park(ctx: &FiberCtx, deadline: Option<Instant>, on: Option<WaitOn>, now: Option<Instant>) {
    raise_cancellation(ctx);
    let record = &ctx.record;
    // A wake token is waiting: consume it without switching, and without
    // raising an expired timeout (the caller re-checks first).
    if record.state.take_token() {
        return;
    }
    // About to block: an expired timeout scope is raised here (the
    // cancellation check above still holds: nothing ran since).
    raise_expired_timeout(ctx);
    let top = ctx.deadlines.borrow().last().copied();
    let until = wait_deadline(deadline, top, ctx.shielded.get());
    // A deadline that has passed returns at once (only the park's own can
    // have: an expired scope was raised above, unless shielded or
    // unwinding). The worker's last clock reading may prove it; else the
    // caller's fresh one (`sleep`'s), else the clock is read.
    if until.is_some_and(|at| reactor::has_passed(at) || at <= now.unwrap_or_else(Instant::now)) {
        return;
    }
    let timer = until.map(|at| reactor::add_timer(at, record));
    // `false`: a wake token arrived meanwhile and was consumed.
    if record.state.park() {
        // What `sylvan::dump` shows while the fiber is parked here.
        ctx.waiting_on.set(on);
        reactor::park_suspend(ctx);
    }
    if let Some(key) = timer {
        reactor::cancel_timer(key);
    }
    // Resumed: the caller re-checks its condition before a timeout is raised.
    raise_cancellation(ctx);
}

/// For a plain thread about to block in a system call: raises an expired
/// `timeout` scope, then returns the deadline the wait must honour (its own
/// and the innermost scope's).
pub(crate) fn thread_wait_deadline(deadline: Option<Instant>) -> Option<Instant> {
    raise_thread_interrupts();
    let top = THREAD_DEADLINES.with(|s| s.borrow().last().copied());
    wait_deadline(deadline, top, THREAD_SHIELD.with(Cell::get))
}

/// A park on a plain thread. A thread has no visible wake token, so an
/// expired timeout scope is raised on entry, before it would block, and not
/// after it was woken (see "When each interruption is raised").
/// Plain threads parked in sylvan without a deadline right now: waiting on
/// something only sylvan's fibers or threads can provide (the monitor's
/// deadlock check counts them).
pub(crate) static THREADS_PARKED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

fn thread_park(deadline: Option<Instant>) {
    raise_thread_interrupts();
    let top = THREAD_DEADLINES.with(|s| s.borrow().last().copied());
    match wait_deadline(deadline, top, THREAD_SHIELD.with(Cell::get)) {
        None => {
            THREADS_PARKED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::park();
            THREADS_PARKED.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        Some(at) => {
            let now = Instant::now();
            if at > now {
                std::thread::park_timeout(at - now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    #[test]
    fn thread_waker_wakes_a_parked_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f2 = flag.clone();
        let t = std::thread::spawn(move || {
            tx.send(current_waker()).unwrap();
            while !f2.load(Ordering::Acquire) {
                park();
            }
        });
        let w = rx.recv().unwrap();
        assert!(!w.will_wake(&current_waker()));
        flag.store(true, Ordering::Release);
        w.wake();
        t.join().unwrap();
    }

    #[test]
    fn thread_park_until_times_out() {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(20);
        while !park_until(deadline) {}
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn wait_deadline_respects_shield() {
        let now = Instant::now();
        let scope = Deadline {
            at: now,
            id: 1,
            delivered: false,
        };
        let later = now + Duration::from_secs(1);
        assert_eq!(wait_deadline(Some(later), Some(scope), 0), Some(now));
        assert_eq!(wait_deadline(Some(later), Some(scope), 1), Some(later));
        assert_eq!(wait_deadline(None, None, 0), None);
    }
}
