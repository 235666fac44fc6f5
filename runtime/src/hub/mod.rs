//! The hub: one per worker thread, it runs that worker's fibers.
//!
//! # Contract
//!
//! * A hub resumes only fibers it started, on its own thread, one at a time
//!   and only when it finds their slot in its ready queue. A started fiber
//!   never leaves its hub (its coroutine is `!Send` and is never moved to
//!   another thread), which is what makes `thread_local!` and `!Send` values
//!   held across blocking calls sound.
//! * Unstarted fibers ([`Task`]s: a fiber's record, whose body holds its
//!   `Send` closure, and maybe a stack) are balanced between hubs *before*
//!   they start: a hub takes from its own `crossbeam_deque::Worker` first,
//!   then the runtime's global injector, then steals from other hubs —
//!   except another hub's lone, freshly queued task, which is left to its
//!   owner for a few microseconds (see `Hub::leave_to_owner`).
//! * Each round the hub: applies wakeups sent from other threads (its inbox),
//!   fires due timers, starts at most one new task (fairness between new and
//!   running fibers), then resumes the fibers that were ready at the start of
//!   the round. Every [`IO_POLL_INTERVAL`] resumes it also polls IO without
//!   blocking.
//! * When there is nothing to run it first watches its queues for up to
//!   `SPIN_TIME` (work that arrives meanwhile costs no wake-up syscall on
//!   either side; `idle.rs`), then blocks in `mio::Poll::poll` with the next
//!   timer as timeout
//!   (indefinitely when there is none): idle workers use no CPU. Other
//!   threads wake it through its `mio::Waker`, and only when it has announced
//!   that it sleeps (`sleeping`), so busy or spinning hubs cost the waker no
//!   syscall.

//!
//! Files: this one has the hub's state, its run loop and how it starts and
//! resumes fibers; `idle.rs` what an out-of-work hub does (spinning,
//! stealing, sleeping); `shutdown.rs` how it winds down; `workers.rs` the
//! state a runtime's hubs share (deques, injector, inboxes).

mod idle;
mod shutdown;
mod snapshot;
mod workers;

pub(crate) use workers::RuntimeShared;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use crossbeam_deque::Worker;

use crate::monitor;
use crate::reactor::Reactor;
use crate::record::{self, contain, report_escaped, FiberCtx, Suspend, Task, TaskRef};
use crate::sched::{self, Inbox};
use crate::stack::{FiberStack, StackPool};

/// Rounds of at least this many fibers prefetch what each resume reads
/// (smaller ones, such as a ping-pong's, are cache-warm anyway).
const PREFETCH_FROM: usize = 8;

/// How many resumes ahead a round prefetches a fiber's record; its context,
/// from which the record's address is read, twice as far ahead.
const PREFETCH_AHEAD: usize = 2;

/// How many fibers a hub resumes between non-blocking IO polls.
const IO_POLL_INTERVAL: usize = 61;

/// A task as a hub starts it: `thread_bound` is the closure of a
/// `spawn_local` fiber (which need not be `Send`, so it is not in the
/// record); `None` runs the record's body.
pub(crate) struct Startable {
    pub(crate) task: Task,
    pub(crate) thread_bound: Option<Box<dyn FnOnce()>>,
}

impl Drop for Startable {
    fn drop(&mut self) {
        // A `spawn_local` closure that never ran: dropping it reports the
        // fiber cancelled (`Job::drop`), before its record goes.
        if let (Some(closure), Some(record)) = (self.thread_bound.take(), &self.task.record) {
            contain(record, "the destructor of its unstarted closure", || {
                drop(closure)
            });
        }
    }
}

impl From<Task> for Startable {
    fn from(task: Task) -> Startable {
        Startable {
            task,
            thread_bound: None,
        }
    }
}

/// A started fiber: its context and its coroutine, kept at the top of the
/// fiber's own stack ([`FiberStack::reserve_top`]). The stack's first page is
/// touched by any fiber that runs, so a fiber's context costs no memory of
/// its own and no allocation.
///
/// # Ownership and aliasing
/// A live fiber is written in place by [`Hub::start`] and held by the hub's
/// table as a raw pointer ([`LivePtr`]). While the fiber is suspended its own
/// frames hold `&FiberCtx` references into it (see `park::park_inner`), so
/// from its start until its coroutine returns the hub never moves it, never
/// makes a `&mut LiveFiber`, and reaches the fields one at a time: shared
/// references to `ctx` (whose mutable parts are cells) and, only in
/// [`Hub::resume`], a unique reference to `co`, which nothing else points
/// into. The coroutine never touches the memory it lives in: its stack ends
/// below the reservation. Once the coroutine has returned no frame refers to
/// the fiber, and [`LivePtr::finish`] drops the one and moves the other out
/// before the stack goes back to the pool.
struct LiveFiber {
    ctx: FiberCtx,
    co: Option<Coroutine<(), Suspend, (), FiberStack>>,
}

// The top of every stack it takes, as `Builder::stack_size` documents; a
// fiber's first page must stay mostly the fiber's.
const _: () = assert!(std::mem::size_of::<LiveFiber>() <= 192);

/// A live fiber in the hub's table (see [`LiveFiber`] for the rules).
#[derive(Clone, Copy)]
struct LivePtr(NonNull<LiveFiber>);

impl LivePtr {
    /// Starts `co`'s fiber with context `ctx`: writes both into the top of
    /// the stack that `place` reserved.
    ///
    /// # Safety
    /// `place` must come from `reserve_top(size_of::<LiveFiber>())` on the
    /// stack that `co` now runs on, with the reservation still made.
    #[inline]
    unsafe fn new(
        place: NonNull<u8>,
        record: TaskRef,
        guard: (usize, usize),
        co: Coroutine<(), Suspend, (), FiberStack>,
    ) -> LivePtr {
        let place = place.cast::<LiveFiber>();
        debug_assert!(place.as_ptr().is_aligned());
        let p = place.as_ptr();
        // Written field by field, so the context is built in place.
        // SAFETY: per the contract, `place` is lent-out stack memory (64-byte
        // aligned, big enough, mapped, writable; the coroutine's frames lie
        // below it) that nothing else uses.
        unsafe {
            std::ptr::addr_of_mut!((*p).co).write(Some(co));
            std::ptr::addr_of_mut!((*p).ctx).write(FiberCtx::new(record, guard));
        }
        LivePtr(place)
    }

    fn ctx(&self) -> &FiberCtx {
        // Written by `new`; moved out only by `finish`, after the coroutine
        // returned, on this hub's thread (where every caller runs).
        // SAFETY: while it is live only shared references to `ctx` are made.
        unsafe { &(*self.0.as_ptr()).ctx }
    }

    /// The coroutine, for `Hub::resume` only.
    ///
    /// # Safety
    /// No other reference to `co` may exist while the result is used, and
    /// it must not be used once the fiber is finished ([`finish`]): only
    /// `Hub::resume` calls this, once per resume, and a hub never resumes a
    /// fiber from inside another fiber's resume (`Hub::resume` checks).
    ///
    /// [`finish`]: LivePtr::finish
    unsafe fn co<'a>(self) -> &'a mut Option<Coroutine<(), Suspend, (), FiberStack>> {
        // SAFETY: per the function's contract; `co` shares no bytes with
        // `ctx`, to which suspended frames may hold shared references.
        unsafe { &mut *std::ptr::addr_of_mut!((*self.0.as_ptr()).co) }
    }

    /// Drops the context and moves the coroutine out once the coroutine has
    /// returned; returns its stack with the top given back. The fiber's
    /// record (closure slot, result slot) is freed here, unless its handle
    /// still holds it.
    /// coroutine has returned, and gives the stack its top back.
    ///
    /// # Safety
    /// The fiber's coroutine must have returned (no frame refers to it), no
    /// reference from [`co`](LivePtr::co) may be live, and the pointer must
    /// be removed from the table (no copy is used again).
    unsafe fn finish(self) -> FiberStack {
        let p = self.0.as_ptr();
        // The coroutine is moved out and the context dropped in place; the
        // memory is not used as a `LiveFiber` again (the reservation ends
        // below, before the stack is pooled).
        // SAFETY: per the contract nothing else refers to the fiber.
        let co = unsafe {
            let co = (*std::ptr::addr_of_mut!((*p).co)).take();
            std::ptr::drop_in_place(std::ptr::addr_of_mut!((*p).ctx));
            co
        };
        let mut stack = co.expect("a finished fiber has its coroutine").into_stack();
        stack.unreserve();
        stack
    }
}

/// The worker-local hub. Only its own thread touches it.
pub(crate) struct Hub {
    /// Where other threads queue this hub's woken fibers.
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) rt: Arc<RuntimeShared>,
    /// The poll, descriptors and timers (`crate::reactor`).
    reactor: Reactor,
    /// New fibers spawned on this worker, not started yet.
    pub(crate) unstarted: Worker<Task>,
    /// Live fibers by slot. Never dropped with live fibers in it: a hub
    /// exits only once they are done or abandoned (leaked on purpose).
    fibers: RefCell<Vec<Option<LivePtr>>>,
    /// The slot of the fiber being resumed, if any.
    running: Cell<Option<usize>>,
    /// The ready queue's previous buffer, swapped in each round (see
    /// `sched::take_ready_all`) so rounds allocate nothing.
    round: Cell<VecDeque<usize>>,
    free_slots: RefCell<Vec<usize>>,
    /// Per hub: since when we have seen exactly one task in its queue
    /// (see [`Hub::leave_to_owner`]).
    lone_since: Vec<Cell<Option<Instant>>>,
    pub(crate) stacks: RefCell<StackPool>,
    live: Cell<usize>,
    shutting_down: Cell<bool>,
    /// The last `sylvan::dump` request this hub answered (`snapshot.rs`).
    dump_served: Cell<u64>,
}

thread_local! {
    /// The hub of this worker thread (null on other threads).
    static HUB: Cell<*const Hub> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's hub, or returns `None` off a worker thread.
pub(crate) fn with_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let ptr = HUB.with(Cell::get);
    if ptr.is_null() {
        None
    } else {
        // SAFETY: `run_worker` installs HUB only while its hub is alive on
        // this thread's stack and resets it before the hub drops; hubs are
        // used through shared references only (RefCell/Cell inside).
        Some(f(unsafe { &*ptr }))
    }
}

/// A fiber's entry point, on its own stack: runs the fiber's closure (the
/// record's body, or a `spawn_local` closure), then drops fiber-locals
/// created after the closure's own were dropped (by the destructor of a
/// result nobody joins, say), so that none outlives the fiber. Nothing
/// unwinds out of it: a panic that escapes the body — one raised while the
/// outcome is published, e.g. by that destructor, or the cancellation of a
/// fiber blocked in it — is reported and ends the fiber.
fn fiber_entry(thread_bound: Option<Box<dyn FnOnce()>>) {
    let ran = catch_unwind(AssertUnwindSafe(|| match thread_bound {
        Some(run) => run(),
        // The record stays in this fiber's ctx until the fiber ends.
        None => record::with_current(|ctx| ctx.record.body.run())
            .expect("a fiber runs with its ctx installed"),
    }));
    if let Err(payload) = ran {
        record::with_current(|ctx| {
            report_escaped(
                &ctx.record,
                "code run after its closure (e.g. the destructor of a result nobody joins)",
                &*payload,
            )
        });
    }
    crate::local::drop_fiber_locals();
}

impl Hub {
    /// The body of a worker thread: runs the hub until the runtime shuts down
    /// and every fiber of this hub has finished.
    pub(crate) fn run_worker(
        rt: Arc<RuntimeShared>,
        inbox: Arc<Inbox>,
        reactor: Reactor,
        unstarted: Worker<Task>,
    ) {
        let _altstack = crate::overflow::AltStack::install();
        let lone_since = (0..rt.stealers.len()).map(|_| Cell::new(None)).collect();
        let hub = Hub {
            stacks: RefCell::new(StackPool::new(rt.stack_size)),
            inbox,
            rt,
            reactor,
            unstarted,
            fibers: RefCell::new(Vec::new()),
            running: Cell::new(None),
            round: Cell::new(VecDeque::new()),
            free_slots: RefCell::new(Vec::new()),
            lone_since,
            live: Cell::new(0),
            shutting_down: Cell::new(false),
            dump_served: Cell::new(0),
        };
        // HUB points at `hub` exactly while this guard lives; it is
        // declared after `hub`, so it is dropped (and HUB reset) first.
        struct Installed;
        impl Drop for Installed {
            fn drop(&mut self) {
                HUB.with(|h| h.set(std::ptr::null()));
            }
        }
        HUB.with(|h| h.set(&hub));
        let _installed = Installed;
        let _reactor = hub.reactor.install();
        let _home = sched::make_home(&hub.inbox);
        // User code never unwinds into the hub (fibers' entry points and
        // `contain` catch it), so a panic here is a bug in sylvan. Unwinding
        // would drop the fiber table while fibers' stacks still point into
        // it; stop instead.
        let ran = catch_unwind(AssertUnwindSafe(|| {
            hub.run();
            // Drop whatever was spawned onto this hub while it wound down.
            while hub.unstarted.pop().is_some() {}
        }));
        if let Err(payload) = ran {
            let msg = record::panic_message(&*payload).unwrap_or("a non-string payload");
            crate::sys::report(format_args!(
                "sylvan: internal error: worker {} failed ({msg}); aborting, since its \
                 fibers' stacks cannot be unwound safely",
                hub.inbox.index
            ));
            std::process::abort();
        }
    }

    fn run(&self) {
        let mut since_io = 0usize;
        // While shutting down: (live fibers, when that count last changed).
        let mut wind_down: Option<(usize, Instant)> = None;
        loop {
            if self.inbox.has_pending() {
                self.inbox.drain();
            }
            self.reactor.fire_timers();
            if self.rt.shutdown.load(Ordering::Acquire) && !self.shutting_down.get() {
                self.begin_shutdown();
            }
            // `pop` costs a fence even when empty; the check is two loads.
            if !self.unstarted.is_empty() {
                if let Some(task) = self.unstarted.pop() {
                    self.start(task.into());
                }
            }
            // This round resumes the fibers that are ready now; those woken
            // meanwhile queue up for the next round.
            let mut round = sched::take_ready_all(self.round.take());
            let batch = round.len();
            if batch > 0 {
                if batch < PREFETCH_FROM {
                    for slot in round.drain(..) {
                        self.resume(slot);
                    }
                } else {
                    self.resume_many(&mut round);
                }
                self.round.set(round);
                since_io += batch;
                if since_io >= IO_POLL_INTERVAL {
                    since_io = 0;
                    self.reactor.poll_io(Some(Duration::ZERO));
                    self.serve_dump_if_asked();
                    // Busy, but out of new tasks of its own: take a share
                    // of the others': started fibers never move, so a hub that
                    // only stole when idle would leave another to start most
                    // of a burst and run it alone.
                    if self.unstarted.is_empty() {
                        if let Some(task) = self.find_task() {
                            self.start(task.into());
                        }
                    }
                }
                continue;
            }
            self.round.set(round);
            if let Some(task) = self.find_task() {
                self.start(task.into());
                continue;
            }
            // Out of work: no fiber holds the worker (the monitor's view;
            // between resumes of a busy worker the last one stays shown).
            self.inbox.watch.leave();
            self.inbox.watch.idle(
                self.live.get(),
                self.reactor.timer_count(),
                self.reactor.has_io(),
            );
            self.serve_dump_if_asked();
            if self.shutting_down.get() && self.wound_down(&mut wind_down) {
                return;
            }
            since_io = 0;
            if !self.shutting_down.get() && self.spin_for_work() {
                continue;
            }
            self.sleep();
        }
    }

    /// A stack for a fiber spawned on this worker, from its pool.
    pub(crate) fn stack(&self, size: Option<usize>) -> io::Result<FiberStack> {
        let usable = match size {
            Some(s) => crate::stack::normalize_size(s)?,
            None => self.rt.stack_size,
        };
        self.stacks.borrow_mut().get(usable)
    }

    /// Starts a task: makes its coroutine and queues it.
    pub(crate) fn start(&self, mut task: Startable) {
        if self.shutting_down.get() {
            // Dropping an unstarted task completes its JoinHandle as cancelled
            // (and runs its closure's destructors, outside any fiber).
            self.inbox.watch.leave();
            drop(task);
            return;
        }
        let mut stack = match task.task.take_stack().map_or_else(|| self.stack(None), Ok) {
            Ok(stack) => stack,
            Err(e) => {
                // Dropping the task unstarted completes its JoinHandle as
                // cancelled; say why, since nobody may be joining.
                if let Some(record) = &task.task.record {
                    crate::sys::report(format_args!(
                        "sylvan: fiber {} not started: {e}",
                        record.describe()
                    ));
                }
                drop(task);
                return;
            }
        };
        let thread_bound = task.thread_bound.take();
        let record = task
            .task
            .record
            .take()
            .expect("an unstarted task has its record");
        let slot = self.free_slots.borrow_mut().pop().unwrap_or_else(|| {
            let mut fibers = self.fibers.borrow_mut();
            fibers.push(None);
            fibers.len() - 1
        });
        record.set_owner(&self.inbox, slot);
        let guard = stack.guard_range();
        let place = stack.reserve_top(std::mem::size_of::<LiveFiber>());
        let co = Coroutine::with_stack(stack, move |y: &Yielder<(), Suspend>, ()| {
            record::with_current(|ctx| ctx.yielder.set(y));
            fiber_entry(thread_bound);
        });
        // SAFETY: `place` was reserved just above on the stack `co` runs on.
        let fiber = unsafe { LivePtr::new(place, record, guard, co) };
        self.fibers.borrow_mut()[slot] = Some(fiber);
        self.live.set(self.live.get() + 1);
        monitor::bump(&self.inbox.watch.counters.started, 1);
        sched::push_ready(slot);
    }

    /// Resumes a big round of fibers woken together (a timer burst, a
    /// broadcast), whose stack tops and records are cold: before each
    /// resume it starts loading the context (at its stack's top) of the
    /// fiber `2 * PREFETCH_AHEAD` places on, and the record of the one
    /// `PREFETCH_AHEAD` on, whose context was prefetched earlier.
    #[inline(never)]
    fn resume_many(&self, round: &mut VecDeque<usize>) {
        let slots = round.make_contiguous();
        for i in 0..slots.len() {
            {
                let fibers = self.fibers.borrow();
                let fiber = |at: usize| {
                    slots
                        .get(at)
                        .and_then(|&s| fibers.get(s).copied().flatten())
                };
                if let Some(f) = fiber(i + 2 * PREFETCH_AHEAD) {
                    let p = f.0.as_ptr().cast::<u8>();
                    crate::sys::prefetch(p);
                    crate::sys::prefetch(p.wrapping_add(std::mem::offset_of!(LiveFiber, co)));
                }
                if let Some(f) = fiber(i + PREFETCH_AHEAD) {
                    crate::sys::prefetch(std::sync::Arc::as_ptr(&f.ctx().record).cast::<u8>());
                }
            }
            self.resume(slots[i]);
        }
        round.clear();
    }

    /// Resumes the fiber in `slot` until it suspends or ends. Inlined into
    /// both of its callers, so the common loop pays no call.
    #[inline(always)]
    fn resume(&self, slot: usize) {
        let fiber = self.fibers.borrow()[slot].expect("a queued slot holds a fiber");
        // A queued fiber was made RUNNING by whoever queued it; PARKED here
        // would mean it was queued twice for one park.
        debug_assert!(!fiber.ctx().record.state.is_parked());
        assert!(
            self.running.replace(Some(slot)).is_none(),
            "a hub resumes one fiber at a time"
        );
        let prev = record::set_current(fiber.ctx());
        let watch = &self.inbox.watch;
        watch.enter(fiber.ctx());
        // SAFETY: this is the only place that reaches `co`, and the check
        // above rules out a nested resume.
        let co = unsafe { fiber.co() };
        let result = co
            .as_mut()
            .expect("a started fiber has a coroutine")
            .resume(());
        record::set_current(prev);
        self.running.set(None);
        match result {
            CoroutineResult::Yield(why) => {
                let counters = &watch.counters;
                if why == Suspend::Yield {
                    monitor::bump(&counters.yields, 1);
                    sched::push_ready(slot);
                } else {
                    monitor::bump(&counters.parks, 1);
                }
            }
            CoroutineResult::Return(()) => {
                self.fibers.borrow_mut()[slot] = None;
                fiber.ctx().record.state.finish();
                // The monitor may be reading this fiber's context: it is
                // moved out and dropped below.
                watch.leave();
                watch.release();
                // SAFETY: the coroutine returned, so no frame refers to the
                // fiber; `co` is not used again; its pointer just left the
                // table.
                let stack = unsafe { fiber.finish() };
                self.stacks.borrow_mut().put(stack);
                self.free_slots.borrow_mut().push(slot);
                self.live.set(self.live.get() - 1);
                monitor::bump(&watch.counters.finished, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TaskCell;

    /// A fiber spawned with a stack of its own and dropped before it started
    /// gives the stack back to the pool.
    #[test]
    fn an_unstarted_tasks_own_stack_is_recycled() {
        // A size no other test uses: the pool's stack of that size is ours.
        let usable = crate::stack::normalize_size(200 * 1024 + 3 * 4096).unwrap();
        let stack = crate::stack::allocate(usable).unwrap();
        let bottom = stack.guard_range().0;
        drop(Task::new(TaskCell::bare(None, usable), Some(stack)));
        let mut pool = StackPool::new(crate::stack::DEFAULT_STACK_SIZE);
        let again = pool.get(usable).unwrap();
        assert_eq!(again.guard_range().0, bottom, "the same stack comes back");
        crate::stack::recycle(again);
    }
}
