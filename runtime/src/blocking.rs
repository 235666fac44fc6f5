//! The blocking pool: [`unblock`] runs work that would block an OS thread
//! (getaddrinfo, file IO, CPU-heavy calls) on a small elastic thread pool while
//! the calling fiber parks.
//!
//! The pool starts threads on demand (up to 512 by default; see
//! [`RuntimeBuilder::blocking_threads`](crate::RuntimeBuilder::blocking_threads))
//! and lets a thread exit after 10 seconds without work, so an idle process
//! holds no pool threads. There is one pool per process, shared by every
//! runtime in it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::join::{Failure, JoinCell};
use crate::record;

/// The default limit on the pool's threads.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let rt = sylvan::Runtime::builder()
///     .workers(1)
///     .blocking_threads(sylvan::DEFAULT_BLOCKING_THREADS / 8) // a smaller pool
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(|| sylvan::unblock(|| 1 + 1)), 2);
/// ```
pub const DEFAULT_BLOCKING_THREADS: usize = 512;
/// The pool's thread limit (set by `RuntimeBuilder::blocking_threads`).
static MAX_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_BLOCKING_THREADS);

/// Sets the pool's thread limit; threads over it finish their work and
/// exit as they become idle.
pub(crate) fn set_max_threads(n: usize) {
    MAX_THREADS.store(n.max(1), Ordering::Relaxed);
    pool().available.notify_all();
}
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Work = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    available: Condvar,
}

struct PoolState {
    queue: VecDeque<Work>,
    idle: usize,
    threads: usize,
}

/// The blocking pool's threads, and whether any work is queued or running.
pub(crate) fn pool_status() -> (usize, bool) {
    let s = pool().state.lock();
    (s.threads, !s.queue.is_empty() || s.idle < s.threads)
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            queue: VecDeque::new(),
            idle: 0,
            threads: 0,
        }),
        available: Condvar::new(),
    })
}

impl Pool {
    fn submit(&'static self, work: Work) {
        let mut s = self.state.lock();
        s.queue.push_back(work);
        if s.idle >= s.queue.len() || s.threads >= MAX_THREADS.load(Ordering::Relaxed) {
            self.available.notify_one();
            return;
        }
        s.threads += 1;
        let spawned = std::thread::Builder::new()
            .name("sylvan-blocking".into())
            .spawn(move || self.worker());
        if let Err(e) = spawned {
            s.threads -= 1;
            if s.threads == 0 {
                // Nobody could ever run the work: fail loudly rather than hang.
                let work = s.queue.pop_back();
                drop(s);
                drop(work);
                panic!("sylvan::unblock: cannot start a blocking-pool thread: {e}");
            }
            self.available.notify_one();
        }
    }

    fn worker(&self) {
        let mut s = self.state.lock();
        loop {
            if let Some(work) = s.queue.pop_front() {
                drop(s);
                run_work(work);
                s = self.state.lock();
                continue;
            }
            if s.threads > MAX_THREADS.load(Ordering::Relaxed) {
                // The limit was lowered: one thread over it leaves.
                s.threads -= 1;
                return;
            }
            s.idle += 1;
            let timed_out = self.available.wait_for(&mut s, KEEP_ALIVE).timed_out();
            s.idle -= 1;
            if timed_out && s.queue.is_empty() {
                s.threads -= 1;
                return;
            }
        }
    }
}

/// Runs one job on a pool thread. The job catches its closure's panic
/// itself; what can still unwind out of it is a destructor run on the pool
/// (of a result whose caller gave up, or of a panic payload): that is
/// reported, and the thread carries on, keeping its place in the count.
fn run_work(work: Work) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(work)) {
        crate::sys::report(format_args!(
            "sylvan: a destructor panicked on a blocking-pool thread (the result of an \
             `unblock` whose caller had given up, dropped there); the thread carries on"
        ));
        // A payload whose own destructor panics is leaked, not dropped.
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// Runs `f` on the blocking pool and parks the calling fiber until it returns
/// its value. Called outside a fiber, runs `f` right there.
///
/// A panic in `f` is re-raised in the caller. If the calling fiber is
/// cancelled or its [`timeout`](crate::timeout) expires while waiting, it
/// unwinds at once; `f` still runs to completion on the pool and its result is
/// dropped.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let len = sylvan::spawn(|| {
///     sylvan::unblock(|| std::fs::read_to_string("Cargo.toml").map(|s| s.len()))
/// })
/// .join()
/// .unwrap()
/// .unwrap();
/// assert!(len > 0);
/// ```
pub fn unblock<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unblock_for(&crate::record::wait_labels::UNBLOCK, f)
}

/// [`unblock`], with what `sylvan::dump` shows the caller waiting on.
pub(crate) fn unblock_for<F, T>(what: &'static crate::park::WaitLabel, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !record::in_fiber() {
        return f();
    }
    let (cell, work) = packaged(f);
    pool().submit(work);
    outcome(cell.wait(crate::record::WaitOn::what(what)))
}

/// `f` as pool work that publishes its outcome (value or panic) to the
/// returned cell.
fn packaged<'a, F, T>(f: F) -> (Arc<JoinCell<T>>, Box<dyn FnOnce() + Send + 'a>)
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let cell = Arc::new(JoinCell::new());
    let done = cell.clone();
    let work = Box::new(move || {
        let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(Failure::Panic);
        done.complete(outcome);
    });
    (cell, work)
}

/// The caller's side of a packaged job: its value, or its panic re-raised.
fn outcome<T>(o: Result<T, Failure>) -> T {
    match o {
        Ok(v) => v,
        Err(Failure::Panic(p)) => resume_unwind(p),
        Err(Failure::Cancelled) => unreachable!("blocking work is never cancelled"),
    }
}

/// [`unblock`] for a closure that borrows from the caller: `f` may use
/// references to the calling fiber's stack (or anything else that outlives
/// the call), because the call does not return — or unwind — before `f` has
/// finished on the pool.
///
/// The price: **it cannot be interrupted while the borrow lives.** A
/// cancellation or an expired [`timeout`](crate::timeout) that arrives while
/// `f` runs is delivered at the caller's next park point after the call
/// returns, not during it (an unwinding caller would end the borrow while
/// `f` still used it). Use [`unblock`] (which owns its data) when the wait
/// must be interruptible.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let lines = sylvan::spawn(|| {
///     let text = String::from("one\ntwo\nthree");
///     // Borrows `text`: no clone, no Arc.
///     sylvan::unblock_scoped(|| text.lines().count())
/// })
/// .join()
/// .unwrap();
/// assert_eq!(lines, 3);
/// ```
pub fn unblock_scoped<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    if !record::in_fiber() {
        return f();
    }
    let (cell, work) = packaged::<'a, F, T>(f);
    // Only the lifetime changes. This frame (and so everything `'a` covers)
    // outlives `work`'s use of `f` and of `T`: the wait below is shielded,
    // so it neither returns nor unwinds before `complete` has run, and `f`
    // and the result are gone from `work` by then (what `work` still holds
    // afterwards is its `done` handle, whose cell this fiber has emptied).
    // A fiber abandoned at shutdown while waiting here is leaked, never
    // unwound, so its frame stays valid as well.
    // SAFETY: so nothing borrowed for 'a is used after 'a ends.
    let work: Work = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Work>(work) };
    pool().submit(work);
    let waited = crate::park::shield(|| {
        cell.wait(crate::record::WaitOn::what(
            &crate::record::wait_labels::UNBLOCK,
        ))
    });
    outcome(waited)
}
