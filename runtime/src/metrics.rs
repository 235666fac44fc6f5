//! `Runtime::metrics()`: per-worker counters — cheap relaxed counters each
//! worker keeps for itself (a load and a store per event, no
//! read-modify-write), read by anyone.

use std::fmt;
use std::time::Duration;

use crate::runtime::Runtime;

/// A snapshot of a runtime's counters ([`Runtime::metrics`]), per worker.
/// Counts are since the runtime started; read them twice and subtract for
/// rates. Each worker updates its own as it goes, so they may lag what
/// another thread saw happen by a moment (a `join` returns once the result
/// is out; the worker counts the fiber finished just after).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| sylvan::spawn(|| ()).join().unwrap());
/// let m = rt.metrics();
/// assert_eq!(m.workers.len(), 2);
/// assert_eq!(m.not_started, 0); // everything spawned has started
/// assert!(m.total().fibers_started >= 2); // block_on's fiber and the spawned one
/// println!("{m}"); // a table, one line per worker
/// ```
#[derive(Debug, Clone)]
pub struct Metrics {
    /// One entry per worker, by index.
    pub workers: Vec<WorkerMetrics>,
    /// Fibers spawned from outside the runtime that no worker has taken yet.
    pub not_started: usize,
}

/// One worker's counters.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder().workers(2).thread_name("w").build().unwrap();
/// rt.block_on(|| sylvan::sleep(std::time::Duration::from_millis(1)));
/// let m = rt.metrics();
/// let busiest = m.workers.iter().max_by_key(|w| w.parks).unwrap();
/// assert!(busiest.thread.starts_with('w'));
/// assert!(busiest.parks >= 1); // the sleep parked
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    /// The worker thread's name.
    pub thread: String,
    /// Fibers this worker started (a fiber starts on one worker, and stays).
    pub fibers_started: u64,
    /// Fibers of this worker that finished (returned, panicked or were
    /// cancelled).
    pub fibers_finished: u64,
    /// `fibers_started - fibers_finished`: its live fibers.
    pub fibers_live: u64,
    /// Times it resumed a fiber.
    pub resumes: u64,
    /// Times one of its fibers parked (waited for something).
    pub parks: u64,
    /// Times one of its fibers yielded (`yield_now`, the IO budget).
    pub yields: u64,
    /// Unstarted fibers it took from other workers' queues or the injector.
    pub steals: u64,
    /// Readiness events its event loop delivered.
    pub io_events: u64,
    /// Timers (sleeps, deadlines) that fired on it.
    pub timers_fired: u64,
    /// Time it spent blocked in its event loop with nothing to run (idle).
    pub poll_blocked: Duration,
    /// The longest any one fiber held it without parking, to the monitor's
    /// 20 ms (what the blocked-worker warning reports).
    pub longest_hold: Duration,
}

impl Metrics {
    /// The counters summed over all workers (`thread` is empty).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    /// rt.block_on(|| (0..4).map(|_| sylvan::spawn(|| ())).for_each(|h| h.join().unwrap()));
    /// let t = rt.metrics().total();
    /// assert!(t.fibers_started >= 5); // the four and block_on's
    /// assert!(t.thread.is_empty());
    /// ```
    pub fn total(&self) -> WorkerMetrics {
        let mut t = WorkerMetrics::default();
        for w in &self.workers {
            t.fibers_started += w.fibers_started;
            t.fibers_finished += w.fibers_finished;
            t.fibers_live += w.fibers_live;
            t.resumes += w.resumes;
            t.parks += w.parks;
            t.yields += w.yields;
            t.steals += w.steals;
            t.io_events += w.io_events;
            t.timers_fired += w.timers_fired;
            t.poll_blocked += w.poll_blocked;
            t.longest_hold = t.longest_hold.max(w.longest_hold);
        }
        t
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<18} {:>8} {:>8} {:>6} {:>10} {:>10} {:>8} {:>7} {:>9} {:>8} {:>10} {:>8}",
            "worker",
            "started",
            "finished",
            "live",
            "resumes",
            "parks",
            "yields",
            "steals",
            "io events",
            "timers",
            "idle",
            "max hold"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, w: &WorkerMetrics| {
            writeln!(
                f,
                "{:<18} {:>8} {:>8} {:>6} {:>10} {:>10} {:>8} {:>7} {:>9} {:>8} {:>9.1?} {:>8.0?}",
                name,
                w.fibers_started,
                w.fibers_finished,
                w.fibers_live,
                w.resumes,
                w.parks,
                w.yields,
                w.steals,
                w.io_events,
                w.timers_fired,
                w.poll_blocked,
                w.longest_hold
            )
        };
        for w in &self.workers {
            row(f, &w.thread, w)?;
        }
        row(f, "total", &self.total())?;
        write!(f, "not started (injector): {}", self.not_started)
    }
}

impl Runtime {
    /// This runtime's per-worker counters (see [`Metrics`]).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    /// rt.block_on(|| {
    ///     let fibers: Vec<_> = (0..10).map(|_| sylvan::spawn(sylvan::yield_now)).collect();
    ///     fibers.into_iter().for_each(|f| f.join().unwrap());
    /// });
    /// let m = rt.metrics();
    /// let total = m.total();
    /// // The ten and block_on's own (counted when they start; a finish is
    /// // counted a moment after the join that saw it).
    /// assert!(total.fibers_started >= 11);
    /// assert_eq!(total.fibers_started, total.fibers_finished + total.fibers_live);
    /// println!("{m}");
    /// ```
    pub fn metrics(&self) -> Metrics {
        Metrics {
            workers: self
                .shared
                .hubs
                .iter()
                .map(|inbox| inbox.watch.metrics())
                .collect(),
            not_started: self.shared.injector.len(),
        }
    }
}
