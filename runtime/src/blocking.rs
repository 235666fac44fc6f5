//! The blocking pool: [`unblock`] runs work that would block an OS thread
//! (getaddrinfo, file IO, CPU-heavy calls) on a small elastic thread pool while
//! the calling fiber parks.
//!
//! The pool starts threads on demand (up to 512) and lets a thread exit after
//! 10 seconds without work, so an idle process holds no pool threads.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::join::{Failure, JoinCell};
use crate::record;

const MAX_THREADS: usize = 512;
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
        if s.idle >= s.queue.len() || s.threads >= MAX_THREADS {
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
                work();
                s = self.state.lock();
                continue;
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
    let cell = Arc::new(JoinCell::new());
    let done = cell.clone();
    pool().submit(Box::new(move || {
        let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(Failure::Panic);
        done.complete(outcome);
    }));
    match cell.wait(crate::record::WaitOn::what(what)) {
        Ok(v) => v,
        Err(Failure::Panic(p)) => resume_unwind(p),
        Err(Failure::Cancelled) => unreachable!("blocking work is never cancelled"),
    }
}
