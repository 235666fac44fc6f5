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
//!   the round. Every 61 resumes it also polls IO without blocking.
//! * When there is nothing to run it first watches its queues for up to
//!   50 µs (work that arrives meanwhile costs no wake-up syscall on either
//!   side), then blocks in `mio::Poll::poll` with the next timer as timeout
//!   (indefinitely when there is none): idle workers use no CPU. Other
//!   threads wake it through its `mio::Waker`, and only when it has announced
//!   that it sleeps (`sleeping`), so busy or spinning hubs cost the waker no
//!   syscall.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use crossbeam_deque::{Steal, Stealer, Worker};
use parking_lot::Mutex;

use crate::fiber::{self, FiberCtx, FiberId, Header, Suspend};
use crate::io::{IoState, IoTable};
use crate::runtime::RuntimeShared;
use crate::stack::{FiberStack, StackPool};
use crate::task::{TaskCell, TaskRef};
use crate::timer::{TimerKey, TimerQueue};

/// The token of each hub's `mio::Waker`.
pub(crate) const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

/// How many fibers a hub resumes between non-blocking IO polls.
const IO_POLL_INTERVAL: usize = 61;

/// How long an out-of-work hub watches its queues before blocking in poll.
const SPIN_TIME: Duration = Duration::from_micros(50);

/// How long a hub leaves another hub's lone queued task to its owner before
/// stealing it (see [`Hub::leave_to_owner`]).
const LONE_TASK_GRACE: Duration = Duration::from_micros(5);

/// Queue checks between clock reads while spinning.
const SPIN_CHECK_EVERY: u32 = 32;

/// How long a shutting-down hub waits for cancelled fibers to finish before it
/// gives up on them (they are leaked, not force-unwound).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How often a shutting-down hub with nothing to do looks at its fibers again.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// An unstarted fiber: its record (whose body runs it) and the stack it will
/// run on — `None` for the runtime's default size, taken from the pool of
/// the hub that starts it (so a queued fiber holds no stack, and a burst of
/// short fibers cycles through a few hot stacks).
///
/// Dropping a task that was never started discards its body: the closure is
/// dropped and the fiber's handle reports it cancelled.
pub(crate) struct Task {
    /// `None` once started.
    record: Option<TaskRef>,
    stack: Option<FiberStack>,
}

impl Task {
    pub(crate) fn new(record: TaskRef, stack: Option<FiberStack>) -> Task {
        Task {
            record: Some(record),
            stack,
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            contain(&record, "the destructor of its unstarted closure", || {
                record.body.discard()
            });
        }
        if let Some(stack) = self.stack.take() {
            crate::stack::recycle(stack);
        }
    }
}

/// Runs user code that executes outside any fiber's closure — dropping a
/// closure that never ran, on a hub or wherever a task is dropped — so that
/// a panic in it is reported and goes no further: it must never unwind into
/// a hub, whose fiber table and queues it would leave half-dropped.
pub(crate) fn contain(fiber: &Header, what: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        report_escaped(fiber, what, &*payload);
    }
}

/// Reports a panic that escaped user code the runtime runs for a fiber
/// (cancellations are not reported: they are how a fiber is stopped).
fn report_escaped(fiber: &Header, what: &str, payload: &(dyn std::any::Any + Send)) {
    if payload.is::<crate::park::CancelUnwind>() {
        return;
    }
    let msg = crate::task::panic_message(payload).unwrap_or("a non-string payload");
    eprintln!(
        "sylvan: fiber {}: {what} panicked ({msg}); the panic was contained",
        fiber.describe()
    );
}

/// A task as a hub starts it: `local` is the closure of a `spawn_local`
/// fiber (which need not be `Send`, so it is not in the record); `None` runs
/// the record's body.
pub(crate) struct LocalTask {
    pub(crate) task: Task,
    pub(crate) local: Option<Box<dyn FnOnce()>>,
}

impl Drop for LocalTask {
    fn drop(&mut self) {
        // A `spawn_local` closure that never ran: dropping it reports the
        // fiber cancelled (`Job::drop`), before its record goes.
        if let (Some(local), Some(record)) = (self.local.take(), &self.task.record) {
            contain(record, "the destructor of its unstarted closure", || {
                drop(local)
            });
        }
    }
}

impl From<Task> for LocalTask {
    fn from(task: Task) -> LocalTask {
        LocalTask { task, local: None }
    }
}

/// A started fiber: its context and its coroutine.
///
/// # Ownership and aliasing
/// A live fiber is a leaked `Box<Fiber>` held by the hub's table as a raw
/// pointer ([`FiberPtr`]). While the fiber is suspended its own frames hold
/// `&FiberCtx` references into it (see `park::park_inner`), so from its start
/// until its coroutine returns the hub never moves the box, never makes a
/// `&mut Fiber`, and reaches the fields one at a time: shared references to
/// `ctx` (whose mutable parts are cells) and, only in [`Hub::resume`], a
/// unique reference to `co`, which nothing else points into. Once the
/// coroutine has returned no frame refers to the fiber, and the box is taken
/// back (for reuse: finished fibers' boxes are kept, `co` empty, saving an
/// allocation per spawn).
struct Fiber {
    ctx: FiberCtx,
    co: Option<Coroutine<(), Suspend, (), FiberStack>>,
}

/// A live fiber in the hub's table (see [`Fiber`] for the rules).
#[derive(Clone, Copy)]
struct FiberPtr(NonNull<Fiber>);

impl FiberPtr {
    fn new(fiber: Box<Fiber>) -> FiberPtr {
        FiberPtr(NonNull::from(Box::leak(fiber)))
    }

    fn ctx(&self) -> &FiberCtx {
        // SAFETY: the pointer came from `Box::leak` and is only turned back
        // into a box by `into_box`, after the coroutine returned; the table
        // that holds it lives on the hub's thread and so does every caller.
        // Only shared references to `ctx` are ever made while it is live.
        unsafe { &(*self.0.as_ptr()).ctx }
    }

    /// The coroutine, for `Hub::resume` only.
    ///
    /// # Safety
    /// No other reference to `co` may exist while the result is used, and
    /// it must not be used once the box was taken back ([`into_box`]): only
    /// `Hub::resume` calls this, once per resume, and a hub never resumes a
    /// fiber from inside another fiber's resume (`Hub::resume` checks).
    ///
    /// [`into_box`]: FiberPtr::into_box
    unsafe fn co<'a>(self) -> &'a mut Option<Coroutine<(), Suspend, (), FiberStack>> {
        // SAFETY: per the function's contract; `co` shares no bytes with
        // `ctx`, to which suspended frames may hold shared references.
        unsafe { &mut *std::ptr::addr_of_mut!((*self.0.as_ptr()).co) }
    }

    /// Takes the box back once the coroutine has returned.
    ///
    /// # Safety
    /// The fiber's coroutine must have returned (no frame refers to it) and
    /// the pointer must be removed from the table (no copy is used again).
    unsafe fn into_box(self) -> Box<Fiber> {
        // SAFETY: per the function's contract the leaked box is unaliased.
        unsafe { Box::from_raw(self.0.as_ptr()) }
    }
}

/// How many finished fibers' boxes a hub keeps for reuse.
const SPARE_FIBERS: usize = 1024;

/// The part of a hub other threads may touch.
pub(crate) struct HubShared {
    pub(crate) index: usize,
    /// Slots of this hub's fibers woken from other threads.
    inbox: Mutex<Vec<usize>>,
    /// `true` while `inbox` may be non-empty (checked without the lock).
    inbox_ready: AtomicBool,
    /// `true` while the hub is about to block or blocked in `poll`.
    pub(crate) sleeping: AtomicBool,
    waker: mio::Waker,
    /// A handle on this hub's `epoll` set, for (de)registering descriptors
    /// from any thread.
    registry: mio::Registry,
    /// Descriptors registered with this hub, by token.
    io: Mutex<IoTable>,
    /// How many descriptors are registered (checked without the lock).
    io_count: AtomicUsize,
}

impl HubShared {
    pub(crate) fn new(index: usize, poll: &mio::Poll) -> io::Result<HubShared> {
        Ok(HubShared {
            index,
            inbox: Mutex::new(Vec::new()),
            inbox_ready: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            waker: mio::Waker::new(poll.registry(), WAKER_TOKEN)?,
            registry: poll.registry().try_clone()?,
            io: Mutex::new(IoTable::default()),
            io_count: AtomicUsize::new(0),
        })
    }

    /// Adds a descriptor to this hub's `epoll` set (edge-triggered, both
    /// directions) and returns its token.
    pub(crate) fn register_io(&self, state: &Arc<IoState>) -> io::Result<mio::Token> {
        let fd = state.fd();
        let mut table = self.io.lock();
        let token = table.insert(state.clone());
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        if let Err(e) = self
            .registry
            .register(&mut mio::unix::SourceFd(&fd), token, interest)
        {
            table.remove(token);
            return Err(e);
        }
        self.io_count.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// Removes a descriptor registered by [`register_io`](Self::register_io).
    pub(crate) fn deregister_io(&self, fd: std::os::fd::RawFd, token: mio::Token) {
        // Fails only if the descriptor is already closed, in which case the
        // kernel has dropped it from the set itself.
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        self.io.lock().remove(token);
        self.io_count.fetch_sub(1, Ordering::Relaxed);
    }

    /// Queues the fiber in `slot` to run on this hub. Called exactly once per
    /// successful `PARKED → RUNNING` transition.
    pub(crate) fn schedule(&self, slot: usize) {
        let local = with_hub(|hub| {
            if std::ptr::eq(&*hub.shared, self) {
                hub.ready.borrow_mut().push_back(slot);
                true
            } else {
                false
            }
        });
        if local == Some(true) {
            return;
        }
        self.inbox.lock().push(slot);
        self.inbox_ready.store(true, Ordering::SeqCst);
        self.wake_if_sleeping();
    }

    /// Wakes the hub if it sleeps (or is about to). Returns whether it did.
    pub(crate) fn wake_if_sleeping(&self) -> bool {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.wake();
            true
        } else {
            false
        }
    }

    /// Wakes the hub unconditionally.
    pub(crate) fn wake(&self) {
        // An eventfd write; it can only fail if the counter saturates, in
        // which case the hub is already due to wake.
        let _ = self.waker.wake();
    }
}

/// The worker-local hub. Only its own thread touches it.
pub(crate) struct Hub {
    pub(crate) shared: Arc<HubShared>,
    pub(crate) rt: Arc<RuntimeShared>,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
    pub(crate) local: Worker<Task>,
    ready: RefCell<VecDeque<usize>>,
    /// Live fibers by slot. Never dropped with live fibers in it: a hub
    /// exits only once they are done or abandoned (leaked on purpose).
    fibers: RefCell<Vec<Option<FiberPtr>>>,
    /// The slot of the fiber being resumed, if any.
    running: Cell<Option<usize>>,
    free_slots: RefCell<Vec<usize>>,
    /// Finished fibers' boxes, kept so the allocation itself is reused.
    #[allow(clippy::vec_box)]
    spare: RefCell<Vec<Box<Fiber>>>,
    /// Stands in as the record of spare fibers, so that a finished fiber's
    /// record (closure slot, result slot) is freed when it ends.
    idle: TaskRef,
    /// Per hub: since when we have seen exactly one task in its queue
    /// (see [`Hub::leave_to_owner`]).
    lone_since: Vec<Cell<Option<Instant>>>,
    timers: RefCell<TimerQueue<(usize, FiberId)>>,
    pub(crate) stacks: RefCell<StackPool>,
    live: Cell<usize>,
    shutting_down: Cell<bool>,
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
fn fiber_entry(local: Option<Box<dyn FnOnce()>>) {
    let ran = catch_unwind(AssertUnwindSafe(|| match local {
        Some(run) => run(),
        // The record stays in this fiber's ctx until the fiber ends.
        None => fiber::with_current(|ctx| ctx.header.body.run())
            .expect("a fiber runs with its ctx installed"),
    }));
    if let Err(payload) = ran {
        fiber::with_current(|ctx| {
            report_escaped(
                &ctx.header,
                "code run after its closure (e.g. the destructor of a result nobody joins)",
                &*payload,
            )
        });
    }
    crate::local::drop_fiber_locals();
}

/// Blocks the running fiber, which has already moved itself to `PARKED`,
/// *without* switching to another fiber, until it is unparked. For waits
/// made while the fiber unwinds a panic: the panic count that
/// `std::thread::panicking()` reads is per thread, so any fiber resumed now
/// would believe it is panicking (std's mutexes would poison, timeouts would
/// not be armed). Meanwhile this worker applies wakeups, fires timers and
/// polls IO as usual, so the wait ends like any other; the other fibers of
/// the worker run once it has.
///
/// Returns `false` if the runtime is shutting down and the wait has lasted
/// [`SHUTDOWN_GRACE`]: the caller then suspends after all, so the worker can
/// abandon the fiber instead of hanging.
pub(crate) fn wait_in_place(record: &Header) -> bool {
    with_hub(|hub| hub.wait_in_place(record)).expect("fibers run on a hub")
}

/// Arms a timer on the current hub that wakes fiber `id` in `slot`.
pub(crate) fn add_timer(at: Instant, slot: usize, id: FiberId) -> TimerKey {
    with_hub(|hub| hub.timers.borrow_mut().insert(at, (slot, id)))
        .expect("timers are armed by fibers, which run on a hub")
}

/// Disarms a timer armed by [`add_timer`] (no-op if it already fired).
pub(crate) fn cancel_timer(key: TimerKey) {
    with_hub(|hub| hub.timers.borrow_mut().cancel(key));
}

impl Hub {
    /// The body of a worker thread: runs the hub until the runtime shuts down
    /// and every fiber of this hub has finished.
    pub(crate) fn run_worker(
        rt: Arc<RuntimeShared>,
        shared: Arc<HubShared>,
        poll: mio::Poll,
        local: Worker<Task>,
    ) {
        let _altstack = crate::overflow::AltStack::install();
        let lone_since = (0..rt.stealers.len()).map(|_| Cell::new(None)).collect();
        let hub = Hub {
            stacks: RefCell::new(StackPool::new(rt.stack_size)),
            shared,
            rt,
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(256)),
            local,
            ready: RefCell::new(VecDeque::new()),
            fibers: RefCell::new(Vec::new()),
            running: Cell::new(None),
            free_slots: RefCell::new(Vec::new()),
            spare: RefCell::new(Vec::new()),
            idle: TaskCell::bare(None, 0),
            lone_since,
            timers: RefCell::new(TimerQueue::new()),
            live: Cell::new(0),
            shutting_down: Cell::new(false),
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
        // User code never unwinds into the hub (fibers' entry points and
        // `contain` catch it), so a panic here is a bug in sylvan. Unwinding
        // would drop the fiber table while fibers' stacks still point into
        // it; stop instead.
        let ran = catch_unwind(AssertUnwindSafe(|| {
            hub.run();
            // Drop whatever was spawned onto this hub while it wound down.
            while hub.local.pop().is_some() {}
        }));
        if let Err(payload) = ran {
            let msg = crate::task::panic_message(&*payload).unwrap_or("a non-string payload");
            eprintln!(
                "sylvan: internal error: worker {} failed ({msg}); aborting, since its \
                 fibers' stacks cannot be unwound safely",
                hub.shared.index
            );
            std::process::abort();
        }
    }

    fn run(&self) {
        let mut since_io = 0usize;
        // While shutting down: (live fibers, when that count last changed).
        let mut wind_down: Option<(usize, Instant)> = None;
        loop {
            if self.shared.inbox_ready.load(Ordering::Acquire) {
                self.drain_inbox();
            }
            self.fire_timers();
            if self.rt.shutdown.load(Ordering::Acquire) && !self.shutting_down.get() {
                self.begin_shutdown();
            }
            // `pop` costs a fence even when empty; the check is two loads.
            if !self.local.is_empty() {
                if let Some(task) = self.local.pop() {
                    self.start(task.into());
                }
            }
            let batch = self.ready.borrow().len();
            if batch > 0 {
                for _ in 0..batch {
                    let next = self.ready.borrow_mut().pop_front();
                    match next {
                        Some(slot) => self.resume(slot),
                        None => break,
                    }
                }
                since_io += batch;
                if since_io >= IO_POLL_INTERVAL {
                    since_io = 0;
                    self.poll_io(Some(Duration::ZERO));
                    // Busy, but out of new tasks of its own: take a share
                    // of the others': started fibers never move, so a hub that
                    // only stole when idle would leave another to start most
                    // of a burst and run it alone.
                    if self.local.is_empty() {
                        if let Some(task) = self.find_task() {
                            self.start(task.into());
                        }
                    }
                }
                continue;
            }
            if let Some(task) = self.find_task() {
                self.start(task.into());
                continue;
            }
            if self.shutting_down.get() {
                let live = self.live.get();
                if live == 0 {
                    return;
                }
                let now = Instant::now();
                match wind_down {
                    Some((n, since)) if n == live => {
                        if now - since > SHUTDOWN_GRACE {
                            self.abandon_fibers();
                            return;
                        }
                    }
                    _ => wind_down = Some((live, now)),
                }
            }
            since_io = 0;
            if !self.shutting_down.get() && self.spin_for_work() {
                continue;
            }
            self.sleep();
        }
    }

    /// Before blocking in `poll`, watch the queues for a short while: work
    /// that arrives within [`SPIN_TIME`] (the reply in a cross-worker
    /// ping-pong, a burst of spawns) is picked up without the wake-up
    /// syscalls on both sides. Returns whether work showed up. Bounded, so an
    /// idle worker still ends up blocked and uses no CPU.
    fn spin_for_work(&self) -> bool {
        let spinning = &self.rt.spinning;
        spinning.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        let due = self.timers.borrow_mut().next_deadline();
        let found = 'spin: loop {
            for _ in 0..SPIN_CHECK_EVERY {
                if self.has_pending_work() {
                    break 'spin true;
                }
                std::hint::spin_loop();
            }
            // Sockets become ready without anyone touching our queues: look
            // at the event loop too, without blocking.
            if self.shared.io_count.load(Ordering::Relaxed) > 0 {
                self.poll_io(Some(Duration::ZERO));
                if !self.ready.borrow().is_empty() {
                    break true;
                }
            }
            let now = Instant::now();
            if due.is_some_and(|d| d <= now) {
                break true;
            }
            if now - start >= SPIN_TIME {
                break false;
            }
        };
        // Stop counting as a spinner before announcing sleep (see
        // `RuntimeShared::notify_one` for the pairing).
        spinning.fetch_sub(1, Ordering::SeqCst);
        found
    }

    /// Takes a task from the global injector or another hub.
    fn find_task(&self) -> Option<Task> {
        if self.shutting_down.get() {
            return None;
        }
        let rt = &*self.rt;
        loop {
            let mut retry = false;
            match rt.injector.steal_batch_and_pop(&self.local) {
                Steal::Success(t) => return Some(self.stole(t)),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = rt.stealers.len();
            let me = self.shared.index;
            for i in 1..n {
                let v = (me + i) % n;
                let victim: &Stealer<Task> = &rt.stealers[v];
                if self.leave_to_owner(v, victim) {
                    continue;
                }
                match victim.steal_batch_and_pop(&self.local) {
                    Steal::Success(t) => return Some(self.stole(t)),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether to leave hub `v`'s queue alone for now: it holds a single task
    /// that has not been there for [`LONE_TASK_GRACE`] (as far as this hub
    /// has watched). A lone fresh task is typically the partner of the fiber
    /// that just spawned it and is about to park (a request handed to a
    /// worker fiber, the other end of a channel); started on the spawner's
    /// hub, every later hand-off between the two stays on one thread, while
    /// a fiber never moves once started, so a steal here would make each of
    /// them a cross-thread wake-up. Go's scheduler leaves its `runnext` slot
    /// alone for the same reason. A task still waiting after the grace is
    /// stolen: its owner is busy.
    fn leave_to_owner(&self, v: usize, victim: &Stealer<Task>) -> bool {
        let seen = &self.lone_since[v];
        if victim.len() != 1 {
            seen.set(None);
            return false;
        }
        let now = Instant::now();
        match seen.get() {
            Some(since) if now - since < LONE_TASK_GRACE => true,
            // Watched throughout the grace: steal it.
            Some(since) if now - since < 4 * LONE_TASK_GRACE => {
                seen.set(None);
                false
            }
            // First sight, or an old sighting (we were away; it may be
            // another task by now): start watching.
            _ => {
                seen.set(Some(now));
                true
            }
        }
    }

    /// After a successful steal, pass the baton so remaining work spreads.
    fn stole(&self, t: Task) -> Task {
        if !self.local.is_empty() || !self.rt.injector.is_empty() {
            self.rt.notify_one();
        }
        t
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
    pub(crate) fn start(&self, mut task: LocalTask) {
        if self.shutting_down.get() {
            // Dropping an unstarted task completes its JoinHandle as cancelled.
            drop(task);
            return;
        }
        let stack = match task.task.stack.take().map_or_else(|| self.stack(None), Ok) {
            Ok(stack) => stack,
            Err(e) => {
                // Dropping the task unstarted completes its JoinHandle as
                // cancelled; say why, since nobody may be joining.
                if let Some(record) = &task.task.record {
                    eprintln!("sylvan: fiber {} not started: {e}", record.describe());
                }
                drop(task);
                return;
            }
        };
        let local = task.local.take();
        let header = task
            .task
            .record
            .take()
            .expect("an unstarted task has its record");
        let slot = self.free_slots.borrow_mut().pop().unwrap_or_else(|| {
            let mut fibers = self.fibers.borrow_mut();
            fibers.push(None);
            fibers.len() - 1
        });
        header.set_owner(&self.shared, slot);
        let guard = stack.guard_range();
        let co = Coroutine::with_stack(stack, move |y: &Yielder<(), Suspend>, ()| {
            fiber::with_current(|ctx| ctx.yielder.set(y));
            fiber_entry(local);
        });
        let spare = self.spare.borrow_mut().pop();
        let fiber = match spare {
            Some(mut f) => {
                f.ctx.reset(header, guard);
                f.co = Some(co);
                f
            }
            None => Box::new(Fiber {
                ctx: FiberCtx::new(header, guard),
                co: Some(co),
            }),
        };
        self.fibers.borrow_mut()[slot] = Some(FiberPtr::new(fiber));
        self.live.set(self.live.get() + 1);
        self.ready.borrow_mut().push_back(slot);
    }

    fn resume(&self, slot: usize) {
        let fiber = self.fibers.borrow()[slot].expect("a queued slot holds a fiber");
        // A queued fiber was made RUNNING by whoever queued it; PARKED here
        // would mean it was queued twice for one park.
        debug_assert!(!fiber.ctx().header.state.is_parked());
        assert!(
            self.running.replace(Some(slot)).is_none(),
            "a hub resumes one fiber at a time"
        );
        let prev = fiber::set_current(fiber.ctx());
        // SAFETY: this is the only place that reaches `co`, and the check
        // above rules out a nested resume.
        let co = unsafe { fiber.co() };
        let result = co
            .as_mut()
            .expect("a started fiber has a coroutine")
            .resume(());
        fiber::set_current(prev);
        self.running.set(None);
        match result {
            CoroutineResult::Yield(why) => {
                if why == Suspend::Yield {
                    self.ready.borrow_mut().push_back(slot);
                }
            }
            CoroutineResult::Return(()) => {
                let co = co.take().expect("a started fiber has a coroutine");
                self.fibers.borrow_mut()[slot] = None;
                // SAFETY: the coroutine returned, so no frame refers to the
                // fiber, and its pointer just left the table.
                let mut fiber = unsafe { fiber.into_box() };
                fiber.ctx.header.state.finish();
                self.stacks.borrow_mut().put(co.into_stack());
                let mut spare = self.spare.borrow_mut();
                if spare.len() < SPARE_FIBERS {
                    fiber.ctx.header = self.idle.clone();
                    spare.push(fiber);
                }
                self.free_slots.borrow_mut().push(slot);
                self.live.set(self.live.get() - 1);
            }
        }
    }

    fn drain_inbox(&self) {
        self.shared.inbox_ready.store(false, Ordering::SeqCst);
        let woken = std::mem::take(&mut *self.shared.inbox.lock());
        self.ready.borrow_mut().extend(woken);
    }

    fn fire_timers(&self) {
        if self.timers.borrow().len() == 0 {
            return;
        }
        let now = Instant::now();
        loop {
            let fired = self.timers.borrow_mut().pop_expired(now);
            let Some((slot, id)) = fired else { break };
            let header = self.fibers.borrow()[slot]
                .filter(|f| f.ctx().header.id == id)
                .map(|f| f.ctx().header.clone());
            if let Some(h) = header {
                if h.state.is_parked() {
                    h.unpark();
                }
            }
        }
    }

    fn poll_io(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("sylvan: hub {}: mio poll failed: {e}", self.shared.index),
        }
        if events.is_empty() {
            return;
        }
        // The waker's event only ends the poll. Look the others up under one
        // lock, then wake their waiters without it.
        let mut ready = Vec::new();
        {
            let table = self.shared.io.lock();
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                if let Some(state) = table.get(event.token()) {
                    let (read, write) = crate::io::directions(event);
                    ready.push((state.clone(), read, write));
                }
            }
        }
        drop(events);
        for (state, read, write) in ready {
            state.on_event(read, write);
        }
    }

    /// See [`wait_in_place`].
    fn wait_in_place(&self, record: &Header) -> bool {
        let slot = self
            .running
            .get()
            .expect("only the running fiber waits in place");
        let since = Instant::now();
        loop {
            if self.shared.inbox_ready.load(Ordering::Acquire) {
                self.drain_inbox();
            }
            self.fire_timers();
            if !record.state.is_parked() {
                self.take_back(slot);
                return true;
            }
            let shutting_down = self.rt.shutdown.load(Ordering::Acquire);
            if shutting_down && since.elapsed() > SHUTDOWN_GRACE {
                eprintln!(
                    "sylvan: at shutdown, fiber {} has been blocked for over {:?} while \
                     unwinding; suspending it so that worker {} can stop",
                    record.describe(),
                    SHUTDOWN_GRACE,
                    self.shared.index
                );
                return false;
            }
            let due = self.timers.borrow_mut().next_deadline();
            let mut timeout = due.map(|at| at.saturating_duration_since(Instant::now()));
            if shutting_down {
                // Come back to check the grace period.
                timeout = Some(timeout.map_or(SHUTDOWN_POLL, |t| t.min(SHUTDOWN_POLL)));
            }
            // Announce sleep so that a remote unpark wakes the poll (the
            // fence pairs with `HubShared::schedule`'s SeqCst inbox flag).
            self.shared.sleeping.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !self.shared.inbox_ready.load(Ordering::SeqCst) {
                self.poll_io(timeout);
            }
            self.shared.sleeping.store(false, Ordering::SeqCst);
            // A spawn elsewhere may have woken this hub to start its task,
            // which it cannot do now: pass the hint on.
            if !self.rt.injector.is_empty() || !self.local.is_empty() {
                self.rt.notify_one();
            }
        }
    }

    /// The running fiber in `slot` was unparked while it waited in place:
    /// its unparker queues the slot exactly once, locally or through the
    /// inbox (a remote one perhaps a moment after its CAS). Removes it, as
    /// the fiber is running already.
    fn take_back(&self, slot: usize) {
        loop {
            if self.shared.inbox_ready.load(Ordering::Acquire) {
                self.drain_inbox();
            }
            let mut ready = self.ready.borrow_mut();
            if let Some(i) = ready.iter().position(|&s| s == slot) {
                ready.remove(i);
                return;
            }
            drop(ready);
            std::thread::yield_now();
        }
    }

    /// Blocks in poll until woken, a timer is due, or IO is ready.
    fn sleep(&self) {
        let deadline = self.timers.borrow_mut().next_deadline();
        let timeout = match deadline {
            Some(at) => Some(at.saturating_duration_since(Instant::now())),
            None if self.shutting_down.get() => Some(SHUTDOWN_POLL),
            None => None,
        };
        if timeout == Some(Duration::ZERO) {
            return;
        }
        let timeout = if self.shutting_down.get() {
            timeout.map(|t| t.min(SHUTDOWN_POLL))
        } else {
            timeout
        };
        // Idle: a good moment to return the memory of unused stacks; come
        // back when the dirty pool will have been quiet long enough.
        let now = Instant::now();
        let timeout = match crate::stack::trim_if_quiet(now) {
            Some(at) => {
                let until = at.saturating_duration_since(now);
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        };
        self.shared.sleeping.store(true, Ordering::SeqCst);
        // Re-check after announcing sleep. The fence pairs with the one in
        // `RuntimeShared::notify_one` (and the SeqCst inbox flag): either we
        // see the queued work here, or the waker sees `sleeping` and wakes us.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.has_pending_work() {
            self.shared.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        self.poll_io(timeout);
        self.shared.sleeping.store(false, Ordering::SeqCst);
    }

    fn has_pending_work(&self) -> bool {
        let rt = &*self.rt;
        self.shared.inbox_ready.load(Ordering::SeqCst)
            || (rt.shutdown.load(Ordering::SeqCst) && !self.shutting_down.get())
            || !self.local.is_empty()
            || (!self.shutting_down.get()
                && (!rt.injector.is_empty() || rt.stealers.iter().any(|s| !s.is_empty())))
    }

    /// Runtime shutdown: drop unstarted tasks, cancel every live fiber.
    fn begin_shutdown(&self) {
        self.shutting_down.set(true);
        while self.local.pop().is_some() {}
        loop {
            match self.rt.injector.steal() {
                Steal::Success(task) => drop(task),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        let headers: Vec<TaskRef> = self
            .fibers
            .borrow()
            .iter()
            .flatten()
            .map(|f| f.ctx().header.clone())
            .collect();
        for h in headers {
            h.cancel();
        }
    }

    /// Last resort at shutdown: fibers that ignored cancellation (parked while
    /// unwinding, waiting for something that will never come) are leaked, not
    /// force-unwound; their stacks stay allocated.
    fn abandon_fibers(&self) {
        let mut fibers = self.fibers.borrow_mut();
        let mut names = Vec::new();
        // Dropping the pointers leaks the fibers: stacks, records and all.
        for f in fibers.iter_mut().filter_map(Option::take) {
            names.push(f.ctx().header.describe());
        }
        self.live.set(0);
        // Abandoned fibers stay PARKED forever; a late wake must still find
        // this hub's shared part alive (see `Header::hub`).
        std::mem::forget(self.shared.clone());
        eprintln!(
            "sylvan: at shutdown, {} fiber(s) did not finish within {:?} of being cancelled \
             and were abandoned: {}",
            names.len(),
            SHUTDOWN_GRACE,
            names.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fiber spawned with a stack of its own and dropped before it started
    /// gives the stack back to the pool (it used to leak it).
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
