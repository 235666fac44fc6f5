//! Watching the workers from outside: which fiber holds each worker and
//! since when — for the blocked-worker warning and for naming the fiber a
//! worker is stuck in at shutdown.
//!
//! # What a worker publishes
//!
//! Each worker's [`WorkerWatch`] (in its inbox) carries a resume counter and
//! a pointer to the context of the fiber it runs (null when it is out of
//! work, or the fiber finished), both written only by the worker with
//! relaxed stores: a few instructions per resume, no read-modify-write. Another thread that sees
//! the same counter and a non-null pointer twice, `threshold` apart, knows
//! one fiber has held the worker all that time without parking.
//!
//! # Reading the fiber's header safely
//!
//! The context (in the worker's fiber table) and the record it holds live
//! until the fiber has finished: only then does the worker free the context
//! or reset it for reuse and drop the record, when the pointer is already
//! null. The
//! reader announces itself ([`WorkerWatch::describe_running`]: `reading`,
//! then a fence, then the pointer) and the worker, before it lets a finished
//! fiber's record go ([`WorkerWatch::release`]: the null store, a fence,
//! then `reading`), waits while a reader is inside. With a fence on each
//! side, either the reader sees null or the worker sees the reader (the
//! classic store-buffering pair), so a header is never read after it is
//! freed. The worker pays one fence per finished fiber.
//!
//! # The watchdog
//!
//! One thread per process (`sylvan-monitor`, started with the first runtime
//! that wants it) samples every registered runtime's workers every
//! [`TICK`]. A fiber that holds its worker past the runtime's threshold is
//! reported on stderr while it happens, once, naming it, its spawn site,
//! the worker and for how long; when it lets go, a second line says how long
//! it held the worker in all.

use std::fmt::Write as _;
use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::dump::{Dump, FiberDump, RuntimeDump, WorkerDump};
use crate::hub::RuntimeShared;
use crate::record::{FiberCtx, Header};
use crate::sched::Inbox;

/// Milliseconds since the process's first runtime, advanced by the watchdog
/// every [`TICK`]: a clock that costs a fiber one load to read (when it
/// starts and when it suspends, for `sylvan::dump`'s ages).
static COARSE_MS: AtomicU32 = AtomicU32::new(0);

/// An instant fixed at first use, against which labels store deadlines.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The coarse clock's reading (see [`COARSE_MS`]).
#[inline]
pub(crate) fn coarse_now() -> u32 {
    COARSE_MS.load(Ordering::Relaxed)
}

/// How long ago `then` (a [`coarse_now`] reading) was (to a [`TICK`]).
pub(crate) fn coarse_since(then: u32) -> Duration {
    Duration::from_millis(coarse_now().wrapping_sub(then) as u64)
}

/// How often the watchdog samples the workers.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// The default blocked-worker threshold.
pub(crate) const DEFAULT_BLOCKED_WARNING: Duration = Duration::from_millis(100);

/// What a worker publishes about the fiber it runs (see the module docs).
pub(crate) struct WorkerWatch {
    resumes: AtomicU64,
    running: AtomicPtr<FiberCtx>,
    /// How many threads are reading `*running` right now.
    reading: AtomicUsize,
    /// The worker thread's name.
    pub(crate) thread_name: String,
    /// As of the worker's last time out of work: its live fibers, armed
    /// timers, and whether any descriptor is registered with it (for the
    /// deadlock check).
    idle_live: AtomicUsize,
    idle_timers: AtomicUsize,
    idle_io: std::sync::atomic::AtomicBool,
    /// Counters for `Runtime::metrics` (written by the worker alone, with
    /// relaxed load and store: no read-modify-write).
    pub(crate) counters: Counters,
    /// The longest a fiber held this worker without parking, in ms, as the
    /// watchdog saw it (written by the watchdog alone).
    longest_hold_ms: AtomicU64,
    /// The newest dump asked of this worker (a generation number).
    dump_wanted: AtomicU64,
    /// The worker's answer: (generation, its fibers, its unstarted count).
    dump_reply: Mutex<(u64, Vec<FiberDump>, usize)>,
    dump_ready: Condvar,
}

impl WorkerWatch {
    pub(crate) fn new(thread_name: String) -> WorkerWatch {
        WorkerWatch {
            resumes: AtomicU64::new(0),
            running: AtomicPtr::new(std::ptr::null_mut()),
            reading: AtomicUsize::new(0),
            thread_name,
            counters: Counters::default(),
            longest_hold_ms: AtomicU64::new(0),
            idle_live: AtomicUsize::new(0),
            idle_timers: AtomicUsize::new(0),
            idle_io: std::sync::atomic::AtomicBool::new(false),
            dump_wanted: AtomicU64::new(0),
            dump_reply: Mutex::new((0, Vec::new(), 0)),
            dump_ready: Condvar::new(),
        }
    }

    /// The dump generation the worker should answer, if it has not yet
    /// (`served` is the last it answered). One load: checked every round.
    #[inline]
    pub(crate) fn dump_wanted(&self, served: u64) -> Option<u64> {
        let wanted = self.dump_wanted.load(Ordering::Acquire);
        (wanted != served).then_some(wanted)
    }

    /// The worker's answer to dump request `generation`.
    pub(crate) fn answer_dump(&self, generation: u64, fibers: Vec<FiberDump>, not_started: usize) {
        *self.dump_reply.lock() = (generation, fibers, not_started);
        self.dump_ready.notify_all();
    }

    /// Asks the worker (of `inbox`) for its fibers; returns the request's
    /// generation, for [`WorkerWatch::await_dump`].
    fn ask_dump(inbox: &Inbox) -> u64 {
        // SeqCst: pairs with the worker's announce-sleep, fence, re-check
        // (`Hub::sleep`), so a worker about to sleep sees the request.
        let generation = inbox.watch.dump_wanted.fetch_add(1, Ordering::SeqCst) + 1;
        inbox.wake_if_sleeping();
        generation
    }

    /// Waits until `until` for the worker's answer to request `generation`.
    /// `None`: it did not answer in time.
    fn await_dump(
        inbox: &Inbox,
        generation: u64,
        until: Instant,
    ) -> Option<(Vec<FiberDump>, usize)> {
        let watch = &inbox.watch;
        let mut reply = watch.dump_reply.lock();
        loop {
            if reply.0 >= generation {
                // Cloned, not taken: concurrent dumps may share one answer.
                return Some((reply.1.clone(), reply.2));
            }
            // A sleeping worker wakes; one about to sleep re-checks (its
            // `has_pending_work`), or is woken on the next try.
            inbox.wake_if_sleeping();
            let now = Instant::now();
            if now >= until {
                return None;
            }
            let step = (until - now).min(Duration::from_millis(10));
            watch.dump_ready.wait_for(&mut reply, step);
        }
    }

    /// The worker is about to resume the fiber whose context is `ctx`.
    #[inline]
    pub(crate) fn enter(&self, ctx: &FiberCtx) {
        // Release: a reader that sees the pointer sees the context as written
        // for this fiber (at the top of a reused stack), not a previous
        // fiber's.
        self.running
            .store(ctx as *const FiberCtx as *mut FiberCtx, Ordering::Release);
        let n = self.resumes.load(Ordering::Relaxed);
        self.resumes.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// No fiber holds the worker: it ran out of work, or the fiber it ran
    /// last has finished. (Not called after every resume, to keep resumes
    /// cheap: while a worker is busy, the fiber it resumed last stays shown
    /// until the next resume.)
    #[inline]
    pub(crate) fn leave(&self) {
        self.running.store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// The worker ran out of work with `live` fibers, `timers` armed and
    /// descriptors registered or not.
    #[inline]
    pub(crate) fn idle(&self, live: usize, timers: usize, io: bool) {
        self.idle_live.store(live, Ordering::Relaxed);
        self.idle_timers.store(timers, Ordering::Relaxed);
        self.idle_io.store(io, Ordering::Relaxed);
    }

    /// Before the worker drops a finished fiber's record (after `leave`):
    /// waits out a reader that may still be reading its header.
    #[inline]
    pub(crate) fn release(&self) {
        fence(Ordering::SeqCst);
        let mut spins = 0u32;
        while self.reading.load(Ordering::Acquire) != 0 {
            // A reader copies a few fields; if it was descheduled meanwhile,
            // let it run.
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// (resume counter, whether a fiber is running), for sampling.
    fn sample(&self) -> (u64, bool) {
        let running = !self.running.load(Ordering::Relaxed).is_null();
        (self.resumes.load(Ordering::Relaxed), running)
    }

    /// Describes the fiber the worker is running — "'name' (#7), spawned at
    /// src/main.rs:10:5" — or `None` between resumes. Callable from any
    /// thread.
    pub(crate) fn describe_running(&self) -> Option<String> {
        self.reading.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // Acquire: pairs with `enter`'s release (see there).
        let ptr = self.running.load(Ordering::Acquire);
        // Non-null after the fence: the worker has not passed `release` for
        // this fiber, and will not until `reading` is cleared below, so its
        // context, and the record it holds, are live and not being changed.
        // SAFETY: see the module docs ("Reading the fiber's header safely").
        let desc = unsafe { ptr.as_ref() }.map(|ctx| describe(&ctx.record));
        self.reading.fetch_sub(1, Ordering::Release);
        desc
    }
}

/// A worker's counters (see [`crate::metrics`]): each written only by its
/// worker, so a bump is a relaxed load and store.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) started: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) yields: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) io_events: AtomicU64,
    pub(crate) timers_fired: AtomicU64,
    pub(crate) poll_blocked_ns: AtomicU64,
}

/// Adds `n` to a counter only its owner writes.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl WorkerWatch {
    /// A number that grows while the worker gets anything done (resumes
    /// and finished fibers), for `Runtime::drop`'s patience.
    pub(crate) fn progress(&self) -> u64 {
        let finished = self.counters.finished.load(Ordering::Relaxed);
        self.resumes.load(Ordering::Relaxed).wrapping_add(finished)
    }

    /// This worker's metrics.
    pub(crate) fn metrics(&self) -> crate::metrics::WorkerMetrics {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (started, finished) = (get(&c.started), get(&c.finished));
        crate::metrics::WorkerMetrics {
            thread: self.thread_name.clone(),
            fibers_started: started,
            fibers_finished: finished,
            fibers_live: started.saturating_sub(finished),
            resumes: get(&self.resumes),
            parks: get(&c.parks),
            yields: get(&c.yields),
            steals: get(&c.steals),
            io_events: get(&c.io_events),
            timers_fired: get(&c.timers_fired),
            poll_blocked: Duration::from_nanos(get(&c.poll_blocked_ns)),
            longest_hold: Duration::from_millis(get(&self.longest_hold_ms)),
        }
    }
}

/// "'name' (#7), spawned at src/main.rs:10:5".
pub(crate) fn describe(h: &Header) -> String {
    let mut s = h.describe();
    let _ = write!(s, ", spawned at {}", h.site);
    s
}

/// The blocked-worker threshold a runtime starts with when its builder
/// does not say: `SYLVAN_BLOCKED_WARNING` in milliseconds (`0` or `off`:
/// none), else [`DEFAULT_BLOCKED_WARNING`].
pub(crate) fn default_threshold() -> Option<Duration> {
    match std::env::var("SYLVAN_BLOCKED_WARNING") {
        Ok(v) if v.trim() == "0" || v.trim().eq_ignore_ascii_case("off") => None,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                crate::sys::report(format_args!(
                    "sylvan: SYLVAN_BLOCKED_WARNING={v:?} is not a number of milliseconds \
                     (or 0/off); using {} ms",
                    DEFAULT_BLOCKED_WARNING.as_millis()
                ));
                Some(DEFAULT_BLOCKED_WARNING)
            }
        },
        Err(_) => Some(DEFAULT_BLOCKED_WARNING),
    }
}

/// Every runtime of the process (weakly), for the watchdog and dumps.
static WATCHED: OnceLock<Arc<Watched>> = OnceLock::new();

/// The runtimes the watchdog samples.
struct Watched {
    runtimes: Mutex<Vec<Weak<RuntimeShared>>>,
}

/// Adds a runtime to the watchdog's rounds (starting the watchdog thread
/// the first time) and to what `sylvan::dump` reports.
pub(crate) fn watch(rt: &Arc<RuntimeShared>) {
    let watched = WATCHED.get_or_init(|| {
        let watched = Arc::new(Watched {
            runtimes: Mutex::new(Vec::new()),
        });
        let w = watched.clone();
        let started = std::thread::Builder::new()
            .name("sylvan-monitor".into())
            .spawn(move || watchdog(&w));
        if let Err(e) = started {
            crate::sys::report(format_args!(
                "sylvan: cannot start the monitor thread ({e}); blocked workers will not be \
                 reported"
            ));
        }
        watched
    });
    watched.runtimes.lock().push(Arc::downgrade(rt));
}

/// What the watchdog remembers about one worker.
struct Seen {
    resumes: u64,
    since: Instant,
    /// The fiber it reported as holding the worker, if any.
    reported: Option<String>,
}

fn watchdog(watched: &Watched) {
    // Keyed by (runtime, worker index).
    let mut seen: Vec<(Weak<RuntimeShared>, Vec<Seen>)> = Vec::new();
    let epoch = Instant::now();
    let mut deadlock = Deadlock::default();
    let mut quiet_ticks = 0u32;
    loop {
        // With no runtime left, look less often (a runtime built later is
        // sampled within a second).
        std::thread::sleep(if quiet_ticks > 50 { TICK * 50 } else { TICK });
        let now = Instant::now();
        COARSE_MS.store((now - epoch).as_millis() as u32, Ordering::Relaxed);
        let runtimes: Vec<Arc<RuntimeShared>> = {
            let mut list = watched.runtimes.lock();
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        quiet_ticks = if runtimes.is_empty() {
            quiet_ticks.saturating_add(1)
        } else {
            0
        };
        // A runtime that is gone: its reported fibers let go with it.
        seen.retain(|(w, workers)| {
            if w.strong_count() > 0 {
                return true;
            }
            for s in workers {
                if let Some(who) = &s.reported {
                    crate::sys::report(format_args!(
                        "sylvan: fiber {who} let its worker go when the runtime shut down, \
                         after holding it for {} ms",
                        (now - s.since).as_millis()
                    ));
                }
            }
            false
        });
        deadlock.check(&runtimes, now);
        for rt in &runtimes {
            // Without a warning threshold the samples still feed the
            // longest-hold metric.
            let threshold = rt.blocked_warning.unwrap_or(Duration::MAX);
            let idx = match seen
                .iter()
                .position(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(rt)))
            {
                Some(i) => i,
                None => {
                    let fresh = rt
                        .hubs
                        .iter()
                        .map(|h| Seen {
                            resumes: h.watch.sample().0,
                            since: now,
                            reported: None,
                        })
                        .collect();
                    seen.push((Arc::downgrade(rt), fresh));
                    seen.len() - 1
                }
            };
            for (hub, s) in rt.hubs.iter().zip(seen[idx].1.iter_mut()) {
                check(&hub.watch, s, now, threshold);
            }
        }
    }
}

/// One sample of one worker.
fn check(watch: &WorkerWatch, s: &mut Seen, now: Instant, threshold: Duration) {
    let (resumes, running) = watch.sample();
    if running && resumes == s.resumes {
        let held = now - s.since;
        let ms = held.as_millis() as u64;
        if ms > watch.longest_hold_ms.load(Ordering::Relaxed) {
            watch.longest_hold_ms.store(ms, Ordering::Relaxed);
        }
        if held >= threshold && s.reported.is_none() {
            if let Some(who) = watch.describe_running() {
                crate::sys::report(format_args!(
                    "sylvan: fiber {who} has held worker '{}' for {} ms without parking \
                     (a blocking call or a long computation: every other fiber of the worker \
                     waits)",
                    watch.thread_name,
                    held.as_millis()
                ));
                s.reported = Some(who);
            }
        }
        return;
    }
    if let Some(who) = s.reported.take() {
        crate::sys::report(format_args!(
            "sylvan: fiber {who} let worker '{}' go after holding it for {} ms",
            watch.thread_name,
            (now - s.since).as_millis()
        ));
    }
    s.resumes = resumes;
    s.since = now;
}

/// Makes panic messages name the fiber: installed once, with the first
/// runtime, in front of whatever panic hook was set before (std's default
/// one prints the worker thread's name, which says nothing about which
/// fiber). A panic in a fiber first gets a line naming the fiber, its spawn
/// site and its worker; then the previous hook reports it as before.
/// Cancellations and timeouts unwind without the hook.
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // `take_hook` panics on a thread that is panicking (a runtime built by a
    // destructor during unwinding): try again with the next runtime.
    if std::thread::panicking() {
        return;
    }
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(fiber) = crate::record::with_current(|ctx| describe(&ctx.record)) {
                let thread = std::thread::current();
                crate::sys::report(format_args!(
                    "fiber {fiber} panicked (on worker thread '{}'; std's report follows):",
                    thread.name().unwrap_or("unnamed")
                ));
            }
            previous(info);
        }));
    });
}

/// Collects a [`Dump`] (see `crate::dump`). Must not run on a worker
/// thread of a runtime it asks (that worker could not answer).
pub(crate) fn collect_dump() -> Dump {
    // Runtimes shutting down are left out: their workers may have exited.
    let runtimes: Vec<Arc<RuntimeShared>> = match WATCHED.get() {
        Some(w) => w
            .runtimes
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|rt| !rt.shutdown.load(Ordering::Acquire))
            .collect(),
        None => Vec::new(),
    };
    // Ask every worker first, then collect the answers.
    let asked: Vec<Vec<u64>> = runtimes
        .iter()
        .map(|rt| {
            rt.hubs
                .iter()
                .map(|inbox| WorkerWatch::ask_dump(inbox))
                .collect()
        })
        .collect();
    let until = Instant::now() + crate::dump::PATIENCE;
    let runtimes = runtimes
        .iter()
        .zip(asked)
        .map(|(rt, generations)| RuntimeDump {
            not_started: rt.injector.len(),
            workers: rt
                .hubs
                .iter()
                .zip(generations)
                .map(
                    |(inbox, g)| match WorkerWatch::await_dump(inbox, g, until) {
                        Some((fibers, not_started)) => WorkerDump {
                            thread: inbox.watch.thread_name.clone(),
                            fibers,
                            not_started,
                            busy: None,
                        },
                        None => WorkerDump {
                            thread: inbox.watch.thread_name.clone(),
                            fibers: Vec::new(),
                            not_started: 0,
                            // Not answering and running nothing: it went
                            // idle just after the deadline, or its runtime
                            // began shutting down meanwhile.
                            busy: inbox.watch.describe_running().or_else(|| {
                                (!rt.shutdown.load(Ordering::Acquire))
                                    .then(|| "(none named: it did not answer in time)".to_owned())
                            }),
                        },
                    },
                )
                .collect(),
        })
        .collect();
    Dump { runtimes }
}

/// The signals `dump_on_signal` listens for.
static ARMED_SIGNALS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Prints [`dump`](fn@crate::dump) to stderr each time `signal` arrives (as
/// Go does on `SIGQUIT`), from a thread of its own; once per signal number
/// per process.
pub(crate) fn dump_on_signal(signal: i32) {
    let mut armed = ARMED_SIGNALS.lock();
    if armed.contains(&signal) {
        return;
    }
    let listening = crate::signal::on_each(signal, "sylvan-dump-signal", || {
        crate::sys::report(format_args!("{}", crate::dump::dump()))
    });
    match listening {
        Ok(()) => armed.push(signal),
        Err(e) => crate::sys::report(format_args!("sylvan: cannot dump on signal {signal}: {e}")),
    }
}

/// The signal `SYLVAN_DUMP_SIGNAL` names (`QUIT`, `SIGUSR1`, `10`...), if
/// set; a value that names none is reported and ignored.
pub(crate) fn env_dump_signal() -> Option<i32> {
    let v = std::env::var("SYLVAN_DUMP_SIGNAL").ok()?;
    let name = v.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let sig = match name {
        "QUIT" => Some(libc::SIGQUIT),
        "USR1" => Some(libc::SIGUSR1),
        "USR2" => Some(libc::SIGUSR2),
        "HUP" => Some(libc::SIGHUP),
        "INT" => Some(libc::SIGINT),
        "TERM" => Some(libc::SIGTERM),
        "WINCH" => Some(libc::SIGWINCH),
        n => n.parse::<i32>().ok().filter(|s| (1..=64).contains(s)),
    };
    if sig.is_none() {
        crate::sys::report(format_args!(
            "sylvan: SYLVAN_DUMP_SIGNAL={v:?} names no signal (QUIT, USR1, USR2, HUP, INT, \
             TERM, WINCH or a number); not dumping on a signal"
        ));
    }
    sig
}

/// How long everything must have stood still before it is called a
/// deadlock.
const DEADLOCK_GRACE: Duration = Duration::from_secs(1);

/// The watchdog's deadlock check (see [`Deadlock::check`]).
#[derive(Default)]
struct Deadlock {
    /// Every worker's resume counter when the standstill began, and when.
    still: Option<(Vec<u64>, Instant)>,
    /// This standstill has been reported.
    reported: bool,
    /// When the process's threads were last counted.
    last_thread_check: Option<Instant>,
}

impl Deadlock {
    /// A deadlock, as sylvan can know one: every runtime's workers have run
    /// out of work and sleep, with fibers parked but no timer armed, no
    /// descriptor registered (a socket could wake them), no `signal::wait_for`
    /// waiting (a signal could), nothing queued or
    /// running on the blocking pool, and every thread of the process is one
    /// of sylvan's or parked in a sylvan wait (a `join`, `block_on`, a lock
    /// or queue) — for [`DEADLOCK_GRACE`], with no resume meanwhile. Nothing
    /// can ever wake those fibers. A thread sylvan does not know (sleeping,
    /// blocked in a std call or computing) might still provide what they
    /// wait for, so then nothing is reported: no false alarms.
    fn check(&mut self, runtimes: &[Arc<RuntimeShared>], now: Instant) {
        let Some(resumes) = standstill(runtimes) else {
            self.still = None;
            self.reported = false;
            self.last_thread_check = None;
            return;
        };
        match &self.still {
            Some((seen, _)) if *seen == resumes => {}
            _ => {
                self.still = Some((resumes, now));
                self.reported = false;
                return;
            }
        }
        let since = self.still.as_ref().map_or(now, |s| s.1);
        if self.reported || now - since < DEADLOCK_GRACE {
            return;
        }
        // Counting the process's threads reads /proc: once a second at most
        // while a standstill lasts.
        if self
            .last_thread_check
            .is_some_and(|t| now - t < DEADLOCK_GRACE)
        {
            return;
        }
        self.last_thread_check = Some(now);
        if !no_other_threads(runtimes) {
            return;
        }
        self.reported = true;
        let dump = collect_dump();
        for rt in runtimes.iter().filter(|rt| rt.panic_on_deadlock) {
            rt.deadlocked.store(true, Ordering::SeqCst);
            rt.begin_shutdown();
        }
        crate::sys::report(format_args!(
            "sylvan: deadlock: every fiber has been parked for {} ms with nothing that could \
             wake it (no timer armed, no socket registered, no blocking job running, and every \
             other thread waiting on sylvan).\n{dump}",
            (now - since).as_millis()
        ));
    }
}

/// Every worker's resume counter if every runtime stands still as the
/// deadlock check needs (see [`Deadlock::check`]), with some fiber parked.
fn standstill(runtimes: &[Arc<RuntimeShared>]) -> Option<Vec<u64>> {
    if crate::signal::WAITING.load(Ordering::SeqCst) > 0 {
        // A signal may still wake them.
        return None;
    }
    let mut resumes = Vec::new();
    let mut parked = 0;
    for rt in runtimes {
        if rt.shutdown.load(Ordering::Acquire) || !rt.injector.is_empty() {
            return None;
        }
        for inbox in &rt.hubs {
            let w = &inbox.watch;
            let idle = inbox.sleeping.load(Ordering::SeqCst)
                && w.running.load(Ordering::Relaxed).is_null()
                && w.idle_timers.load(Ordering::Relaxed) == 0
                && !w.idle_io.load(Ordering::Relaxed);
            if !idle {
                return None;
            }
            parked += w.idle_live.load(Ordering::Relaxed);
            resumes.push(w.resumes.load(Ordering::Relaxed));
        }
        if rt.stealers.iter().any(|s| !s.is_empty()) {
            return None;
        }
    }
    (parked > 0).then_some(resumes)
}

/// Whether every thread of the process is sylvan's own or parked in a
/// sylvan wait.
fn no_other_threads(runtimes: &[Arc<RuntimeShared>]) -> bool {
    let (pool_threads, pool_busy) = crate::blocking::pool_status();
    if pool_busy {
        return false;
    }
    let Some(total) = thread_count() else {
        return false;
    };
    let workers: usize = runtimes.iter().map(|rt| rt.hubs.len()).sum();
    let signal_threads = crate::signal::LISTENERS.load(Ordering::SeqCst);
    let parked = crate::park::THREADS_PARKED.load(Ordering::SeqCst);
    // The watchdog itself, the workers, the pool's idle threads, the
    // dump-signal listeners and the threads parked in sylvan.
    total <= 1 + workers + pool_threads + signal_threads + parked
}

/// The number of threads in this process (Linux: `/proc/self/stat`).
fn thread_count() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit(')').next()?;
    // Field 20 of the line is num_threads: the 18th after the name.
    after.split_whitespace().nth(17)?.parse().ok()
}
