//! The reactor: each worker's `mio::Poll`, its table of registered
//! descriptors and its timer queue. It turns readiness events and due timers
//! into wakes of parked fibers; it never runs a fiber itself (the hub does).
//!
//! * [`ReactorShared`] is the part other threads touch: the `epoll` set's
//!   registry and the descriptor table, so a fiber on any worker can
//!   register a descriptor with the worker it runs on
//!   ([`IoRegistration`](crate::io::IoRegistration) does).
//! * [`Reactor`] is the worker-local part: the poll, its event buffer and the
//!   timers (keyed by fiber record). The hub installs it on its thread for
//!   its whole run; [`add_timer`] and friends reach it from fiber code.
//! * [`IoState`] is one descriptor's readiness: per direction an edge
//!   counter and the wakers of the fibers or threads waiting for the next
//!   edge (see `io.rs` for the protocol).

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::record::{FiberCtx, FiberId, Suspend, TaskRef, Waker};
use crate::sched::{self, Inbox, WAKER_TOKEN};
use crate::sys;
use crate::timer::{TimerKey, TimerQueue};

/// The part of a worker's reactor that other threads may touch.
pub(crate) struct ReactorShared {
    /// A handle on the worker's `epoll` set, for (de)registering descriptors
    /// from any thread.
    registry: mio::Registry,
    /// Descriptors registered with this worker, by token.
    io: Mutex<IoTable>,
    /// How many descriptors are registered (checked without the lock).
    io_count: AtomicUsize,
}

impl ReactorShared {
    /// Adds a descriptor to this worker's `epoll` set (edge-triggered, both
    /// directions) and returns its token.
    pub(crate) fn register(&self, state: &Arc<IoState>) -> io::Result<mio::Token> {
        let fd = state.fd;
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

    /// Removes a descriptor added by [`register`](Self::register).
    pub(crate) fn deregister(&self, fd: RawFd, token: mio::Token) {
        // Fails only if the descriptor is already closed, in which case the
        // kernel has dropped it from the set itself.
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        self.io.lock().remove(token);
        self.io_count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker's reactor; see the module docs. Only the worker's thread uses it.
pub(crate) struct Reactor {
    pub(crate) shared: Arc<ReactorShared>,
    /// The worker's inbox (its `mio::Waker` interrupts this poll).
    inbox: Arc<Inbox>,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
    timers: RefCell<TimerQueue<TaskRef>>,
    /// How many fibers of this worker are suspended while unwinding.
    suspended_unwinding: Cell<usize>,
    /// The unwinding fiber that holds (or last held) this worker by waiting
    /// in place, and since when (only the running fiber can hold it).
    holder: Cell<Option<(FiberId, Instant)>>,
    /// The clock as `fire_timers` last read it: a lower bound on the time
    /// now, for [`has_passed`] (which spares parks two clock reads).
    clock: Cell<Option<Instant>>,
}

/// Whether `at` has passed, by the clock this worker last read for its
/// timers: `true` is certain (the clock is monotonic), `false` may be out of
/// date. Off a worker, or before its first timer: `false`.
pub(crate) fn has_passed(at: Instant) -> bool {
    with_current(|r| r.clock.get().is_some_and(|now| at <= now)).unwrap_or(false)
}

thread_local! {
    /// The reactor of the worker running on this thread (null elsewhere).
    static CURRENT: Cell<*const Reactor> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's reactor, or returns `None` off a worker.
pub(crate) fn with_current<R>(f: impl FnOnce(&Reactor) -> R) -> Option<R> {
    let ptr = CURRENT.with(Cell::get);
    if ptr.is_null() {
        None
    } else {
        // Only `Reactor::install` sets CURRENT; its guard borrows the reactor.
        // SAFETY: so the reactor outlives CURRENT's value and does not move;
        // reactors are used through shared references only.
        Some(f(unsafe { &*ptr }))
    }
}

/// Resets this thread's reactor when dropped (see [`Reactor::install`]);
/// borrows the reactor so that it cannot move or be dropped first.
pub(crate) struct Installed<'a>(std::marker::PhantomData<&'a Reactor>);

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

impl Reactor {
    /// A reactor around `poll`, whose waker is `inbox`'s.
    pub(crate) fn new(poll: mio::Poll, inbox: Arc<Inbox>) -> io::Result<Reactor> {
        Ok(Reactor {
            shared: Arc::new(ReactorShared {
                registry: poll.registry().try_clone()?,
                io: Mutex::new(IoTable::default()),
                io_count: AtomicUsize::new(0),
            }),
            inbox,
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(256)),
            timers: RefCell::new(TimerQueue::new()),
            suspended_unwinding: Cell::new(0),
            holder: Cell::new(None),
            clock: Cell::new(None),
        })
    }

    /// Makes this the thread's reactor until the guard drops (the guard
    /// borrows `self`, so it stays alive and in place meanwhile).
    pub(crate) fn install(&self) -> Installed<'_> {
        CURRENT.with(|c| c.set(self));
        Installed(std::marker::PhantomData)
    }

    /// Arms a timer that wakes `record`'s fiber at `at`.
    pub(crate) fn add_timer(&self, at: Instant, record: &TaskRef) -> TimerKey {
        self.timers.borrow_mut().insert(at, record.clone())
    }

    /// Disarms a timer (no-op if it already fired).
    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        let disarmed = self.timers.borrow_mut().cancel(key);
        drop(disarmed);
    }

    /// The earliest armed timer's deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow_mut().next_deadline()
    }

    /// Wakes the fibers whose timers are due.
    #[inline]
    pub(crate) fn fire_timers(&self) {
        if self.timers.borrow().len() != 0 {
            self.fire_due();
        }
    }

    /// [`fire_timers`](Self::fire_timers) with timers armed: out of line,
    /// so the hub's loop stays small when there are none.
    #[inline(never)]
    fn fire_due(&self) {
        let now = Instant::now();
        self.clock.set(Some(now));
        loop {
            let fired = {
                let mut timers = self.timers.borrow_mut();
                let fired = timers.pop_expired(now);
                // A burst of timers wakes records that are cold by now:
                // start loading the next one's while this one is woken.
                if let Some(next) = timers.peek_value() {
                    crate::sys::prefetch(std::sync::Arc::as_ptr(next).cast::<u8>());
                }
                fired
            };
            let Some(record) = fired else { break };
            crate::monitor::bump(&self.inbox.watch.counters.timers_fired, 1);
            if record.state.is_parked() {
                record.unpark();
            }
        }
    }

    /// How many timers are armed.
    pub(crate) fn timer_count(&self) -> usize {
        self.timers.borrow().len()
    }

    /// Whether any descriptor is registered with this worker.
    pub(crate) fn has_io(&self) -> bool {
        self.shared.io_count.load(Ordering::Relaxed) > 0
    }

    /// Polls for readiness (at most `timeout`; `None`: until something
    /// happens) and wakes the waiters of every descriptor that became ready.
    pub(crate) fn poll_io(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("sylvan: worker {}: mio poll failed: {e}", self.inbox.index),
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
                    let (read, write) = directions(event);
                    ready.push((state.clone(), read, write));
                }
            }
        }
        drop(events);
        crate::monitor::bump(&self.inbox.watch.counters.io_events, ready.len() as u64);
        for (state, read, write) in ready {
            state.on_event(read, write);
        }
    }

    /// Waits in place for the unwinding fiber `ctx` (already `PARKED`) to be
    /// unparked; `false` when it must suspend after all (see
    /// [`park_suspend`]).
    fn hold_in_place(&self, ctx: &FiberCtx) -> bool {
        let Some(since) = self.may_hold(ctx) else {
            return false;
        };
        let record = &ctx.record;
        loop {
            if self.inbox.has_pending() {
                self.inbox.drain();
            }
            self.fire_timers();
            if !record.state.is_parked() {
                // Whoever moved it off PARKED queues its slot exactly once,
                // locally or through the inbox (a remote unparker perhaps a
                // moment after its CAS). It is running already: take it back.
                let slot = record.slot();
                while !sched::take_ready(slot) {
                    std::thread::yield_now();
                    if self.inbox.has_pending() {
                        self.inbox.drain();
                    }
                }
                return true;
            }
            let Some(left) = IN_PLACE_LIMIT.checked_sub(since.elapsed()) else {
                self.gave_up_holding(ctx);
                return false;
            };
            let timeout = self.next_deadline().map_or(left, |at| {
                at.saturating_duration_since(Instant::now()).min(left)
            });
            // Only this worker's own wake-ups interrupt the poll (it does not
            // announce `sleeping`: it cannot start new tasks now). The fence
            // pairs with `Inbox::schedule`'s SeqCst accesses.
            self.inbox.waiting_in_place.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !self.inbox.has_pending() {
                self.poll_io(Some(timeout));
            }
            self.inbox.waiting_in_place.store(false, Ordering::SeqCst);
        }
    }

    /// Whether the unwinding fiber `ctx` may go on holding the worker, and
    /// since when it has: not once it has held it for [`IN_PLACE_LIMIT`],
    /// nor while another fiber of the worker is suspended mid-unwind (the
    /// thread's panic count is raised for everyone then anyway).
    fn may_hold(&self, ctx: &FiberCtx) -> Option<Instant> {
        if self.suspended_unwinding.get() > 0 {
            return None;
        }
        // The budget counts from this fiber's first wait in place: a fiber
        // that unwinds again later (after catching a panic) keeps the old
        // start, and so suspends sooner — never later — than the limit.
        let id = ctx.record.id;
        let since = match self.holder.get() {
            Some((holder, since)) if holder == id => since,
            _ => {
                let now = Instant::now();
                self.holder.set(Some((id, now)));
                now
            }
        };
        if since.elapsed() >= IN_PLACE_LIMIT {
            self.gave_up_holding(ctx);
            return None;
        }
        Some(since)
    }

    /// Says once per process that a fiber held its worker for too long
    /// while unwinding and now lets the others run.
    fn gave_up_holding(&self, ctx: &FiberCtx) {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            sys::report(format_args!(
                "sylvan: fiber {} has blocked for over {:?} in code that runs while it \
                 unwinds (a destructor that waits during a panic or cancellation); \
                 worker {} now runs its other fibers meanwhile, and until it has \
                 finished unwinding they see std::thread::panicking() == true. \
                 (Reported once.)",
                ctx.record.describe(),
                IN_PLACE_LIMIT,
                self.inbox.index
            ));
        }
    }

    /// One pass over the worker's event sources without blocking: inbox,
    /// timers, IO.
    fn step(&self) {
        if self.inbox.has_pending() {
            self.inbox.drain();
        }
        self.fire_timers();
        if self.has_io() {
            self.poll_io(Some(Duration::ZERO));
        }
    }
}

/// How long a fiber that unwinds may hold its worker by waiting in place
/// (see [`park_suspend`]) before the worker runs its other fibers.
pub(crate) const IN_PLACE_LIMIT: Duration = Duration::from_millis(20);

/// Arms a timer on this worker that wakes `record`'s fiber at `at`.
pub(crate) fn add_timer(at: Instant, record: &TaskRef) -> TimerKey {
    with_current(|r| r.add_timer(at, record)).expect("timers are armed by fibers, on a worker")
}

/// Disarms a timer armed by [`add_timer`] (no-op if it already fired).
pub(crate) fn cancel_timer(key: TimerKey) {
    with_current(|r| r.cancel_timer(key));
}

/// Suspends the running fiber, which has just moved itself to `PARKED`,
/// until it is unparked (`park` calls this).
///
/// A fiber that is unwinding (a destructor that waits during a panic or a
/// cancellation) does not switch to other fibers at first: the panic count
/// that `std::thread::panicking()` reads is per thread, so a fiber resumed
/// now would believe it is panicking (std's mutexes would poison, timeouts
/// would not be armed). It *waits in place*: the worker goes on applying
/// wake-ups, firing timers and polling IO, so a wait on another thread, a
/// timer or a socket ends as it would otherwise, and the worker's other
/// fibers run once it has. A wait that needs another fiber of the same
/// worker cannot end that way, so a fiber holds its worker like this for at
/// most [`IN_PLACE_LIMIT`] per unwinding; after that it suspends like any
/// other park (and a one-time report says so).
#[inline]
pub(crate) fn park_suspend(ctx: &FiberCtx) {
    if !std::thread::panicking() {
        return ctx.suspend(Suspend::Park);
    }
    park_unwinding(ctx);
}

/// [`park_suspend`] for a fiber that is unwinding.
#[cold]
#[inline(never)]
fn park_unwinding(ctx: &FiberCtx) {
    let held = with_current(|r| r.hold_in_place(ctx)).expect("fibers run on a worker");
    if !held {
        suspend_unwinding(ctx, Suspend::Park);
    }
}

/// `yield_now` for the running fiber: while it unwinds it yields no more
/// than it would park (see [`park_suspend`]): within [`IN_PLACE_LIMIT`] it
/// only drives the worker's event sources once and goes on.
#[inline]
pub(crate) fn yield_suspend(ctx: &FiberCtx) {
    if !std::thread::panicking() {
        return ctx.suspend(Suspend::Yield);
    }
    yield_unwinding(ctx);
}

/// [`yield_suspend`] for a fiber that is unwinding.
#[cold]
#[inline(never)]
fn yield_unwinding(ctx: &FiberCtx) {
    let held = with_current(|r| {
        let may = r.may_hold(ctx).is_some();
        if may {
            r.step();
        }
        may
    })
    .expect("fibers run on a worker");
    if !held {
        suspend_unwinding(ctx, Suspend::Yield);
    }
}

/// Suspends a fiber that is unwinding, counting it so that other fibers
/// of the worker do not hold it meanwhile (see `Reactor::may_hold`).
fn suspend_unwinding(ctx: &FiberCtx, why: Suspend) {
    let count = |d: isize| {
        with_current(|r| {
            let n = r.suspended_unwinding.get();
            r.suspended_unwinding.set(n.wrapping_add_signed(d));
        })
    };
    count(1);
    ctx.suspend(why);
    count(-1);
}

/// The state a descriptor's registration shares with the workers that poll
/// it.
pub(crate) struct IoState {
    pub(crate) fd: RawFd,
    /// Per direction: how many readiness edges have been seen.
    pub(crate) ticks: [AtomicU64; 2],
    pub(crate) inner: Mutex<IoWaiters>,
}

/// The mutable part of an [`IoState`].
pub(crate) struct IoWaiters {
    /// Per direction: who waits for the next edge.
    pub(crate) waiters: [Vec<Waker>; 2],
    /// Per direction: the async task that polled it last
    /// ([`IoRegistration::poll_io`](crate::io::IoRegistration::poll_io)),
    /// woken with the waiters. One slot, replaced by each poll, so polls
    /// that a task abandons (a `select`, a timeout) leave nothing behind.
    pub(crate) tasks: [Option<std::task::Waker>; 2],
    /// Workers whose `epoll` set holds the descriptor, with its token there.
    pub(crate) registered: Vec<(Arc<ReactorShared>, mio::Token)>,
    /// The descriptor is being closed: it may join no `epoll` set again
    /// (its number may soon name another file).
    pub(crate) retired: bool,
}

impl IoState {
    /// The state of a descriptor no worker polls yet.
    pub(crate) fn new(fd: RawFd) -> IoState {
        IoState {
            fd,
            ticks: [AtomicU64::new(0), AtomicU64::new(0)],
            inner: Mutex::new(IoWaiters {
                waiters: [Vec::new(), Vec::new()],
                tasks: [None, None],
                registered: Vec::new(),
                retired: false,
            }),
        }
    }

    /// Records an event reported by a worker's poll and wakes the waiters of
    /// every direction it concerns.
    pub(crate) fn on_event(&self, read: bool, write: bool) {
        let mut woken = Vec::new();
        let mut tasks = [None, None];
        for (dir, hit) in [(0, read), (1, write)] {
            if hit {
                self.ticks[dir].fetch_add(1, Ordering::SeqCst);
            }
        }
        {
            let mut inner = self.inner.lock();
            for (dir, hit) in [(0, read), (1, write)] {
                if hit {
                    woken.append(&mut inner.waiters[dir]);
                    tasks[dir] = inner.tasks[dir].take();
                }
            }
        }
        for w in woken {
            w.wake();
        }
        for t in tasks.into_iter().flatten() {
            t.wake();
        }
    }
}

/// A worker's table of registered descriptors: token → state. Tokens carry
/// a generation so an event harvested for a slot that was freed and reused
/// meanwhile cannot be mistaken for the new occupant's.
#[derive(Default)]
pub(crate) struct IoTable {
    slots: Vec<(u32, Option<Arc<IoState>>)>,
    free: Vec<usize>,
}

const SLOT_BITS: u32 = 32;

/// Which directions a polled event concerns: (read, write). Errors and
/// hang-ups concern both, so a waiter retries and sees them.
fn directions(event: &mio::event::Event) -> (bool, bool) {
    let read = event.is_readable() || event.is_read_closed() || event.is_error();
    let write = event.is_writable() || event.is_write_closed() || event.is_error();
    (read, write)
}

impl IoTable {
    pub(crate) fn insert(&mut self, state: Arc<IoState>) -> mio::Token {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push((0, None));
            self.slots.len() - 1
        });
        let entry = &mut self.slots[slot];
        entry.1 = Some(state);
        // Generations use 31 bits so no token equals the waker's usize::MAX.
        mio::Token(((entry.0 as usize) << SLOT_BITS) | slot)
    }

    pub(crate) fn get(&self, token: mio::Token) -> Option<&Arc<IoState>> {
        let slot = token.0 & ((1usize << SLOT_BITS) - 1);
        let gen = (token.0 >> SLOT_BITS) as u32;
        match self.slots.get(slot) {
            Some((g, Some(state))) if *g == gen => Some(state),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, token: mio::Token) {
        let slot = token.0 & ((1usize << SLOT_BITS) - 1);
        let gen = (token.0 >> SLOT_BITS) as u32;
        if let Some(entry) = self.slots.get_mut(slot) {
            if entry.0 == gen && entry.1.is_some() {
                entry.1 = None;
                entry.0 = (entry.0 + 1) & 0x7fff_ffff;
                self.free.push(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tokens_miss_reused_slots() {
        let mut t = IoTable::default();
        let a = Arc::new(IoState::new(-1));
        let ta = t.insert(a.clone());
        assert!(t.get(ta).is_some());
        t.remove(ta);
        assert!(t.get(ta).is_none());
        let tb = t.insert(a);
        assert_ne!(ta, tb);
        assert!(t.get(ta).is_none());
        assert!(t.get(tb).is_some());
        t.remove(ta); // stale: must not free the new occupant
        assert!(t.get(tb).is_some());
        assert_ne!(tb, WAKER_TOKEN);
    }
}
