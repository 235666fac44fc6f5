//! Runtimes: a set of worker threads, each running a hub.
//!
//! A [`Runtime`] owns its workers. Dropping it (or returning from [`run`])
//! shuts it down: unstarted fibers are dropped, every live fiber is cancelled
//! (it unwinds from its current or next park, so its destructors run), and the
//! worker threads exit and are joined.
//!
//! Code that calls [`spawn`](crate::spawn()) outside any runtime gets the lazily
//! started *global* runtime (`num_cpus::get()` workers, never shut down), so a
//! plain `fn main` can spawn fibers without any setup.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, OnceLock};

use crossbeam_deque::{Injector, Worker};

use crate::hub::{self, Hub, RuntimeShared};
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
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the default configuration.
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.hubs.len()
    }

    /// Runs `f` as a fiber on this runtime and blocks the caller (a plain
    /// thread, or a fiber of another runtime) until it returns its value.
    ///
    /// # Panics
    /// Re-raises a panic of `f`; panics if `f`'s fiber was cancelled (because
    /// the runtime was shut down from elsewhere).
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("sylvan: Runtime::block_on: {e}"),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            if t.thread().id() == me {
                // Dropped from one of its own fibers: that worker exits by
                // itself once this fiber is done; joining would deadlock.
                continue;
            }
            let _ = t.join();
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
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    workers: Option<usize>,
    stack_size: usize,
    thread_name: String,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            workers: None,
            stack_size: stack::DEFAULT_STACK_SIZE,
            thread_name: "sylvan-worker".into(),
        }
    }
}

impl RuntimeBuilder {
    /// Number of worker threads (default: `num_cpus::get()`).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Default usable stack size of fibers, in bytes (default 256 KiB; only
    /// touched pages cost memory). Individual fibers can override it with
    /// [`Builder::stack_size`](crate::Builder::stack_size).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Prefix of worker thread names (default `sylvan-worker`; threads are
    /// named `<prefix>-<index>`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Starts the worker threads.
    ///
    /// Errors: `InvalidInput` for zero workers or an out-of-range stack size;
    /// the OS error if a thread or poller cannot be created.
    pub fn build(self) -> io::Result<Runtime> {
        let n = self.workers.unwrap_or_else(num_cpus::get);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sylvan: a runtime needs at least one worker (RuntimeBuilder::workers)",
            ));
        }
        let stack_size = stack::normalize_size(self.stack_size)?;
        crate::overflow::install_handler();
        #[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
        crate::patch::link();
        let mut reactors = Vec::with_capacity(n);
        let mut hubs = Vec::with_capacity(n);
        let mut deques = Vec::with_capacity(n);
        let mut stealers = Vec::with_capacity(n);
        for i in 0..n {
            let poll = mio::Poll::new()?;
            let inbox = Arc::new(Inbox::new(i, poll.registry())?);
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
        });
        let mut threads = Vec::with_capacity(n);
        for (i, (reactor, unstarted)) in reactors.into_iter().zip(deques).enumerate() {
            let rt = shared.clone();
            let inbox = shared.hubs[i].clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", self.thread_name))
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
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = Runtime::new().unwrap_or_else(|e| panic!("sylvan::run: cannot start a runtime: {e}"));
    rt.block_on(f)
}
