//! Runtimes: a set of worker threads, each running a hub.
//!
//! A [`Runtime`] owns its workers. Dropping it (or returning from [`run`])
//! shuts it down: unstarted fibers are dropped, every live fiber is cancelled
//! (it unwinds from its current or next park, so its destructors run), and the
//! worker threads exit and are joined — except a worker that makes no
//! progress for `DROP_PATIENCE` (stuck in a fiber that never comes back to
//! sylvan), which is named on stderr and left behind.
//!
//! Code that calls [`spawn`](crate::spawn()) outside any runtime gets the lazily
//! started *global* runtime (`num_cpus::get()` workers, never shut down), so a
//! plain `fn main` can spawn fibers without any setup.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Worker};

use crate::hub::{self, Hub, RuntimeShared};
use crate::monitor;
use crate::reactor::Reactor;
use crate::sched::Inbox;
use crate::stack;

/// A handle to the runtime that the calling code belongs to: the worker's own
/// runtime inside a fiber, the global runtime elsewhere.
pub(crate) fn current() -> Arc<RuntimeShared> {
    hub::with_hub(|hub| hub.rt.clone()).unwrap_or_else(|| global().shared.clone())
}

/// The lazily started global runtime.
fn global() -> &'static Runtime {
    static GLOBAL: OnceLock<Runtime> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        Runtime::builder()
            .thread_name("sylvan-global")
            .build()
            .unwrap_or_else(|e| panic!("sylvan: cannot start the global runtime: {e}"))
    })
}

/// A set of worker threads running fibers.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
/// let sum = rt.block_on(|| {
///     let parts: Vec<_> = (0..10u64).map(|i| sylvan::spawn(move || i * i)).collect();
///     parts.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
/// });
/// assert_eq!(sum, 285);
/// // Dropping the runtime cancels what is left and joins its threads.
/// ```
pub struct Runtime {
    pub(crate) shared: Arc<RuntimeShared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Runtime {
    /// A builder to configure a runtime.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(3).thread_name("app").build().unwrap();
    /// assert_eq!(rt.workers(), 3);
    /// ```
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the default configuration.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::new().unwrap(); // one worker per CPU
    /// assert!(rt.workers() >= 1);
    /// assert_eq!(rt.block_on(|| 2 + 2), 4);
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// Number of worker threads.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    /// assert_eq!(rt.workers(), 2);
    /// assert_eq!(rt.metrics().workers.len(), 2);
    /// ```
    pub fn workers(&self) -> usize {
        self.shared.hubs.len()
    }

    /// Runs `f` as a fiber on this runtime and blocks the caller (a plain
    /// thread, or a fiber of another runtime) until it returns its value.
    ///
    /// # Panics
    /// Re-raises a panic of `f`; panics if `f`'s fiber was cancelled (because
    /// the runtime was shut down from elsewhere).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    /// let v = rt.block_on(|| {
    ///     // A fiber of `rt`: spawn, sleep and join use this runtime.
    ///     let h = sylvan::spawn(|| {
    ///         sylvan::sleep(Duration::from_millis(1));
    ///         "child"
    ///     });
    ///     h.join().unwrap()
    /// });
    /// assert_eq!(v, "child");
    /// // A panic inside comes back out:
    /// let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(|| panic!("boom"))));
    /// assert!(r.is_err());
    /// ```
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_)
                if self
                    .shared
                    .deadlocked
                    .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                panic!(
                "sylvan: Runtime::block_on: deadlock: every fiber was parked with nothing that \
                 could wake it (the report above names them and what they waited on)"
            )
            }
            Err(e) => panic!("sylvan: Runtime::block_on: {e}"),
        }
    }
}

/// How long dropping a runtime waits for workers that make no progress:
/// their own wind-down (`hub::shutdown`: cancelled fibers get 2 s without
/// progress to finish) and a margin. A worker that has resumed nothing for
/// that long is stuck in a fiber that does not come back to sylvan; it is
/// named and left behind rather than waited for forever. While workers make
/// progress (destructors of cancelled fibers that take their time), the
/// wait goes on.
const DROP_PATIENCE: Duration = Duration::from_secs(4);

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
        let me = std::thread::current().id();
        let mut deadline = Instant::now() + DROP_PATIENCE;
        let progress = |shared: &RuntimeShared| -> u64 {
            shared.hubs.iter().map(|h| h.watch.progress()).sum()
        };
        let mut last_progress = progress(&self.shared);
        let mut threads: Vec<_> = self
            .threads
            .drain(..)
            .enumerate()
            // Dropped from one of its own fibers: that worker exits by
            // itself once this fiber is done; joining would deadlock.
            .filter(|(_, t)| t.thread().id() != me)
            .collect();
        let mut pause = Duration::from_micros(50);
        while !threads.is_empty() && Instant::now() < deadline {
            let (done, busy): (Vec<_>, Vec<_>) =
                threads.into_iter().partition(|(_, t)| t.is_finished());
            for (_, t) in done {
                let _ = t.join();
            }
            threads = busy;
            let now_progress = progress(&self.shared);
            if now_progress != last_progress {
                last_progress = now_progress;
                deadline = Instant::now() + DROP_PATIENCE;
            }
            if !threads.is_empty() {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
        for (i, t) in threads {
            let watch = &self.shared.hubs[i].watch;
            let what = match watch.describe_running() {
                Some(fiber) => format!("it is still running fiber {fiber}, which has not come back to sylvan (a blocking call that is not sylvan's, or a loop)"),
                None => "it has not finished winding down".to_owned(),
            };
            crate::sys::report(format_args!(
                "sylvan: runtime shutdown: worker '{}' did not stop within {:?}: {what}; \
                 leaving the thread and its fibers behind (their stacks and records are \
                 leaked)",
                watch.thread_name, DROP_PATIENCE
            ));
            drop(t); // detaches it
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers())
            .field("stack_size", &self.shared.stack_size)
            .finish()
    }
}

/// Configures and builds a [`Runtime`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder()
///     .workers(2)
///     .thread_name("app-worker")
///     .build()
///     .unwrap();
/// assert_eq!(rt.workers(), 2);
/// assert_eq!(rt.block_on(|| 6 * 7), 42);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    workers: Option<usize>,
    stack_size: usize,
    thread_name: String,
    blocked_warning: Option<Option<Duration>>,
    dump_signals: Vec<i32>,
    panic_on_deadlock: bool,
    blocking_threads: Option<usize>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            workers: None,
            stack_size: stack::DEFAULT_STACK_SIZE,
            thread_name: "sylvan-worker".into(),
            blocked_warning: None,
            dump_signals: Vec::new(),
            panic_on_deadlock: false,
            blocking_threads: None,
        }
    }
}

impl RuntimeBuilder {
    /// Number of worker threads (default: `num_cpus::get()`).
    ///
    /// A started fiber stays on its worker, so when other busy processes
    /// share the cores (a load generator on the same machine, a noisy
    /// neighbour), the kernel now and then deschedules a worker for a time
    /// slice and the connections on it wait that slice: milliseconds of
    /// tail latency. There, fewer workers than cores can serve better than
    /// one per core; on cores of its own, one per core is right.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.workers(), 1);
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Default usable stack size of fibers, in bytes (default 256 KiB; only
    /// touched pages cost memory). Individual fibers can override it with
    /// [`Builder::stack_size`](crate::Builder::stack_size).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(1).stack_size(1 << 20).build().unwrap();
    /// // Fibers of `rt` get 1 MiB stacks unless `Builder::stack_size` says otherwise.
    /// let deep = rt.block_on(|| {
    ///     fn depth(n: u32) -> u32 { let pad = [0u8; 1024]; if n == 0 { pad[0] as u32 } else { 1 + depth(n - 1) } }
    ///     depth(512) // ~512 KiB of stack: too much for the 256 KiB default
    /// });
    /// assert_eq!(deep, 512);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Prefix of worker thread names (default `sylvan-worker`; threads are
    /// named `<prefix>-<index>`).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(1).thread_name("crawler").build().unwrap();
    /// let name = rt.block_on(|| std::thread::current().name().map(str::to_owned));
    /// assert!(name.unwrap().starts_with("crawler"));
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Warn on stderr when a fiber holds its worker for longer than
    /// `threshold` without parking — a blocking call that is not sylvan's, or
    /// a long computation: every other fiber of that worker waits meanwhile.
    /// One line names the fiber (name, id, spawn site), the worker and how
    /// long so far; a second says how long in all when it lets go. `None`
    /// turns it off.
    ///
    /// Default: 100 ms, or `SYLVAN_BLOCKED_WARNING` in milliseconds (`0` or
    /// `off` for none).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let rt = sylvan::Runtime::builder()
    ///     .workers(1)
    ///     .blocked_warning(Some(Duration::from_millis(500)))
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(|| {
    ///     // 10 ms of computation: under the threshold, nothing is printed.
    ///     let start = std::time::Instant::now();
    ///     while start.elapsed() < Duration::from_millis(10) {}
    /// });
    /// ```
    pub fn blocked_warning(mut self, threshold: Option<Duration>) -> Self {
        self.blocked_warning = Some(threshold.filter(|t| !t.is_zero()));
        self
    }

    /// Print [`dump`](fn@crate::dump) to stderr each time `signal` (e.g.
    /// `libc::SIGQUIT`, as Go does, or `SIGUSR1`) arrives. The signal's
    /// default action (for `SIGQUIT`: quit with a core dump) is replaced for
    /// the rest of the process. Also set by `SYLVAN_DUMP_SIGNAL=QUIT` (or
    /// `USR1`, a number...) in the environment, for any runtime.
    ///
    /// ```no_run
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder()
    ///     .dump_on_signal(libc::SIGUSR1)
    ///     .build()
    ///     .unwrap();
    /// // `kill -USR1 <pid>` now prints every fiber and what it waits on.
    /// # drop(rt);
    /// ```
    pub fn dump_on_signal(mut self, signal: i32) -> Self {
        self.dump_signals.push(signal);
        self
    }

    /// When the monitor detects a deadlock (every fiber parked with nothing
    /// that could wake it; see the README's "When things go wrong"), besides
    /// printing the report, shut this runtime down: its fibers are
    /// cancelled, and a [`block_on`](Runtime::block_on) waiting on it panics
    /// with a message that says so, instead of waiting forever. What tests
    /// want; `#[sylvan::test]` turns it on. Default: off (report only).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().panic_on_deadlock(true).build().unwrap();
    /// assert_eq!(rt.block_on(|| 1 + 1), 2);
    /// ```
    pub fn panic_on_deadlock(mut self, on: bool) -> Self {
        self.panic_on_deadlock = on;
        self
    }

    /// The most threads the blocking pool ([`unblock`](crate::unblock),
    /// DNS lookups) may run at once (default
    /// [`DEFAULT_BLOCKING_THREADS`](crate::DEFAULT_BLOCKING_THREADS), 512).
    /// The pool is one per process, shared by every runtime in it: the
    /// limit applies to all of them, and the last runtime built with this
    /// set wins. Work beyond the limit queues.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().blocking_threads(4).build().unwrap();
    /// let sum: u32 = rt.block_on(|| {
    ///     let jobs: Vec<_> = (0..16u32)
    ///         .map(|i| sylvan::spawn(move || sylvan::unblock(move || i)))
    ///         .collect();
    ///     jobs.into_iter().map(|j| j.join().unwrap()).sum()
    /// });
    /// assert_eq!(sum, 120);
    /// ```
    pub fn blocking_threads(mut self, n: usize) -> Self {
        self.blocking_threads = Some(n);
        self
    }

    /// Starts the worker threads.
    ///
    /// Errors: `InvalidInput` for zero workers, zero blocking threads or an
    /// out-of-range stack size; the OS error if a thread or poller cannot be
    /// created.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(2).build()?;
    /// assert_eq!(rt.block_on(|| 40 + 2), 42);
    /// drop(rt); // cancels what is left and joins the worker threads
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<Runtime> {
        match self.blocking_threads {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "sylvan: the blocking pool needs at least one thread \
                     (RuntimeBuilder::blocking_threads)",
                ))
            }
            Some(n) => crate::blocking::set_max_threads(n),
            None => {}
        }
        let n = self.workers.unwrap_or_else(num_cpus::get);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sylvan: a runtime needs at least one worker (RuntimeBuilder::workers)",
            ));
        }
        let stack_size = stack::normalize_size(self.stack_size)?;
        crate::overflow::install_handler();
        monitor::install_panic_hook();
        #[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
        crate::patch::link();
        let mut reactors = Vec::with_capacity(n);
        let mut hubs = Vec::with_capacity(n);
        let mut deques = Vec::with_capacity(n);
        let mut stealers = Vec::with_capacity(n);
        for i in 0..n {
            let poll = mio::Poll::new()?;
            let name = format!("{}-{i}", self.thread_name);
            let inbox = Arc::new(Inbox::new(i, poll.registry(), name)?);
            reactors.push(Reactor::new(poll, inbox.clone())?);
            hubs.push(inbox);
            // FIFO: tasks start in spawn order, which is also the order code
            // usually joins them in; LIFO would make a thief's batches finish
            // out of order and joiners wait on the last-started first.
            let unstarted = Worker::new_fifo();
            stealers.push(unstarted.stealer());
            deques.push(unstarted);
        }
        let shared = Arc::new(RuntimeShared {
            hubs,
            stealers,
            injector: Injector::new(),
            shutdown: AtomicBool::new(false),
            spinning: AtomicUsize::new(0),
            stack_size,
            next_hub: AtomicUsize::new(0),
            blocked_warning: self
                .blocked_warning
                .unwrap_or_else(monitor::default_threshold),
            panic_on_deadlock: self.panic_on_deadlock,
            deadlocked: AtomicBool::new(false),
        });
        monitor::watch(&shared);
        for signal in self
            .dump_signals
            .iter()
            .copied()
            .chain(monitor::env_dump_signal())
        {
            monitor::dump_on_signal(signal);
        }
        let mut threads = Vec::with_capacity(n);
        for (i, (reactor, unstarted)) in reactors.into_iter().zip(deques).enumerate() {
            let rt = shared.clone();
            let inbox = shared.hubs[i].clone();
            let spawned = std::thread::Builder::new()
                .name(inbox.watch.thread_name.clone())
                .spawn(move || Hub::run_worker(rt, inbox, reactor, unstarted));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the workers already started before reporting.
                    drop(Runtime { shared, threads });
                    return Err(e);
                }
            }
        }
        Ok(Runtime { shared, threads })
    }
}

/// Runs `f` as the first fiber of a new runtime with the default configuration
/// and returns its result. When `f` returns, the runtime shuts down: remaining
/// fibers are cancelled and the worker threads exit.
///
/// # Panics
/// Re-raises a panic of `f`; panics if the runtime cannot be started.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let answer = sylvan::run(|| {
///     let h = sylvan::spawn(|| 6 * 7);
///     h.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = Runtime::new().unwrap_or_else(|e| panic!("sylvan::run: cannot start a runtime: {e}"));
    rt.block_on(f)
}
