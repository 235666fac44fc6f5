//! `sylvan::dump()`: every live fiber of every runtime in the process — what
//! Go prints on SIGQUIT and gevent's `print_run_info()` shows.
//!
//! # How it is collected
//!
//! A fiber's state lives on its worker and changes only there, so nothing is
//! read from outside while the worker could change it: the dump asks each
//! worker (`WorkerWatch::request_dump`, and a wake-up if it sleeps), and the
//! worker describes its own fibers between two resumes (`Hub::serve_dump`)
//! — at no cost to its fibers when no dump is asked for, beyond one load per
//! round. A worker that does not answer within [`PATIENCE`] is held by one
//! fiber that does not park (a long computation, a blocking call that is
//! not sylvan's); the dump names that fiber instead
//! (`WorkerWatch::describe_running`). From inside a fiber the collection
//! runs on the blocking pool, so the caller's own worker is free to answer.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::record::FiberId;

/// How long a dump waits for each worker to describe its fibers.
pub(crate) const PATIENCE: Duration = Duration::from_millis(250);

/// A snapshot of every live fiber of every runtime in the process
/// ([`dump`]). `Display` prints it for people; the fields are for tools.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::FiberState;
/// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
/// let parked = rt.block_on(|| {
///     let sleeper = sylvan::Builder::new()
///         .name("napper")
///         .spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)))
///         .unwrap();
///     sylvan::yield_now(); // let it start and park
///     let dump = sylvan::dump();
///     let found = dump.runtimes.iter()
///         .flat_map(|r| &r.workers)
///         .flat_map(|w| &w.fibers)
///         .any(|f| f.name.as_deref() == Some("napper") && f.state == FiberState::Parked);
///     sleeper.cancel();
///     found
/// });
/// assert!(parked);
/// ```
#[derive(Debug, Clone)]
pub struct Dump {
    /// The runtimes, in the order they were built.
    pub runtimes: Vec<RuntimeDump>,
}

/// One runtime's part of a [`Dump`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let _rt = sylvan::Runtime::builder().workers(2).build().unwrap();
/// let dump = sylvan::dump();
/// assert!(dump.runtimes.iter().any(|r| r.workers.len() == 2));
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeDump {
    /// Its workers, by index.
    pub workers: Vec<WorkerDump>,
    /// Fibers spawned from outside the runtime that no worker has taken yet.
    pub not_started: usize,
}

/// One worker's part of a [`Dump`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let _rt = sylvan::Runtime::builder().workers(1).thread_name("dumped").build().unwrap();
/// let dump = sylvan::dump();
/// let w = dump.runtimes.iter().flat_map(|r| &r.workers).find(|w| w.thread.starts_with("dumped")).unwrap();
/// assert!(w.busy.is_none()); // it answered
/// ```
#[derive(Debug, Clone)]
pub struct WorkerDump {
    /// The worker thread's name.
    pub thread: String,
    /// Its started, live fibers (empty if it did not answer: see `busy`).
    pub fibers: Vec<FiberDump>,
    /// Fibers queued on this worker that have not started yet.
    pub not_started: usize,
    /// Set when the worker did not answer in time: it is held by the fiber
    /// described here ("'name' (#7), spawned at src/main.rs:10:5"), which
    /// has not parked since (a long computation, or a blocking call that is
    /// not sylvan's).
    pub busy: Option<String>,
}

/// What a fiber is doing.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::FiberState;
/// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
/// let state = rt.block_on(|| {
///     let h = sylvan::spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)));
///     sylvan::yield_now(); // it starts and parks in its sleep
///     let id = h.id();
///     let dump = sylvan::dump();
///     h.cancel();
///     dump.runtimes.iter().flat_map(|r| &r.workers).flat_map(|w| &w.fibers)
///         .find(|f| f.id == id).map(|f| f.state)
/// });
/// assert_eq!(state, Some(FiberState::Parked));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiberState {
    /// Running on its worker right now: one holding a busy worker. (A
    /// fiber that asks for a dump waits for it, so it shows as parked on
    /// `sylvan::dump`.)
    Running,
    /// Woken, or yielded: queued to run.
    Ready,
    /// Waiting for something ([`FiberDump::waiting_on`]).
    Parked,
}

/// One fiber in a [`Dump`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
/// let (file, waiting_on) = rt.block_on(|| {
///     let h = sylvan::spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)));
///     sylvan::yield_now(); // it starts and parks in its sleep
///     let id = h.id();
///     let dump = sylvan::dump();
///     h.cancel();
///     let f = dump.runtimes.iter().flat_map(|r| &r.workers).flat_map(|w| &w.fibers)
///         .find(|f| f.id == id).cloned().unwrap();
///     (f.spawned_at.file().to_owned(), f.waiting_on)
/// });
/// assert!(file.ends_with(".rs")); // where it was spawned
/// assert!(waiting_on.unwrap().starts_with("sleep until"));
/// ```
#[derive(Debug, Clone)]
pub struct FiberDump {
    /// Its id.
    pub id: FiberId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Running, ready or parked.
    pub state: FiberState,
    /// What it waits on, as the waiting code labelled it: `Event::wait`,
    /// `Queue::get`, `Mutex::lock`, `sleep until +2.3s`, `join fiber #42`,
    /// `wait readable fd 7`... `None` when it is not parked, or parked
    /// somewhere unlabelled.
    pub waiting_on: Option<String>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// How long it has existed (since it started; to the monitor's 20 ms).
    pub age: Duration,
    /// How long it has been parked or queued (to 20 ms).
    pub waited: Option<Duration>,
    /// Time left until the innermost enclosing `sylvan::timeout` expires,
    /// if it waits inside one (zero: expired, raised at its next park).
    pub timeout_in: Option<Duration>,
}

/// Every live fiber of every runtime in this process: its id, name, state,
/// what it waits on, where it was spawned and how long it has existed and
/// waited, grouped by worker. Callable from fibers and plain threads alike.
///
/// A worker held by one fiber that does not park cannot describe its
/// fibers; the dump then names the fiber holding it instead.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
/// let sleeper = rt.spawn(|| sylvan::sleep(std::time::Duration::from_secs(30)));
/// # std::thread::sleep(std::time::Duration::from_millis(50));
/// let dump = sylvan::dump();
/// println!("{dump}");
/// assert!(dump.to_string().contains("sleep until"));
/// sleeper.cancel();
/// ```
pub fn dump() -> Dump {
    if crate::in_fiber() {
        // The caller's own worker must be free to answer.
        return crate::blocking::unblock_for(
            &crate::record::wait_labels::DUMP,
            crate::monitor::collect_dump,
        );
    }
    crate::monitor::collect_dump()
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = || {
            self.runtimes
                .iter()
                .flat_map(|r| r.workers.iter())
                .flat_map(|w| w.fibers.iter())
        };
        let count = |s: FiberState| all().filter(|fd| fd.state == s).count();
        let not_started: usize = self
            .runtimes
            .iter()
            .map(|r| r.not_started + r.workers.iter().map(|w| w.not_started).sum::<usize>())
            .sum();
        let busy = self
            .runtimes
            .iter()
            .flat_map(|r| r.workers.iter())
            .filter(|w| w.busy.is_some())
            .count();
        writeln!(
            f,
            "sylvan dump: {} runtime(s), {} fiber(s): {} running, {} ready, {} parked; {} not \
             started; {} busy worker(s)",
            self.runtimes.len(),
            all().count(),
            count(FiberState::Running),
            count(FiberState::Ready),
            count(FiberState::Parked),
            not_started,
            busy,
        )?;
        for (i, rt) in self.runtimes.iter().enumerate() {
            writeln!(
                f,
                "runtime {} ({} worker(s), {} not started)",
                i + 1,
                rt.workers.len(),
                rt.not_started
            )?;
            for w in &rt.workers {
                match &w.busy {
                    Some(who) => writeln!(
                        f,
                        "  worker '{}': busy: fiber {who} holds it and has not parked \
                         (its other fibers cannot be listed)",
                        w.thread
                    )?,
                    None => writeln!(
                        f,
                        "  worker '{}': {} fiber(s), {} not started",
                        w.thread,
                        w.fibers.len(),
                        w.not_started
                    )?,
                }
                for fd in &w.fibers {
                    write!(f, "    {}", fd.id)?;
                    if let Some(n) = &fd.name {
                        write!(f, " '{n}'")?;
                    }
                    let state = match fd.state {
                        FiberState::Running => "running",
                        FiberState::Ready => "ready",
                        FiberState::Parked => "parked",
                    };
                    write!(f, " {state}")?;
                    if let Some(on) = &fd.waiting_on {
                        write!(f, " on {on}")?;
                    }
                    if let Some(w) = fd.waited {
                        write!(f, " for {}", secs(w))?;
                    }
                    if let Some(t) = fd.timeout_in {
                        write!(f, ", timeout in {}", secs(t))?;
                    }
                    writeln!(f, " (age {}, spawned at {})", secs(fd.age), fd.spawned_at)?;
                }
            }
        }
        Ok(())
    }
}
