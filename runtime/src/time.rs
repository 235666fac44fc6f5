//! Time: [`sleep`], [`sleep_until`], [`yield_now`] and [`timeout`] for any
//! block of code.
//!
//! All of these work in fibers (the worker runs other fibers meanwhile) and on
//! plain threads (the thread blocks).

use std::fmt;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::park;
use crate::reactor;
use crate::record::{self, TimeoutUnwind};

/// Suspends the caller for `dur`.
///
/// A cancellation point: a cancelled fiber unwinds out of it.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// sylvan::spawn(|| sylvan::sleep(Duration::from_millis(10))).join().unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(dur: Duration) {
    let now = Instant::now();
    match now.checked_add(dur) {
        Some(deadline) => {
            // The first park reuses this clock reading; a spurious return
            // (a wake token) parks again with a reading of its own.
            let on = crate::record::WaitOn::sleep(deadline);
            if !park::park_until_read(deadline, on, Some(now)) {
                sleep_until(deadline);
            }
        }
        // Further away than Instant can express: wait until interrupted.
        None => loop {
            park::park();
        },
    }
}

/// Suspends the caller until `deadline`.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// // Ticks at fixed instants, however long each round took.
/// let start = Instant::now();
/// for tick in 1..=3 {
///     sylvan::sleep_until(start + Duration::from_millis(2 * tick));
/// }
/// assert!(start.elapsed() >= Duration::from_millis(6));
/// ```
pub fn sleep_until(deadline: Instant) {
    while !park::park_until_with(deadline, crate::record::WaitOn::sleep(deadline)) {}
}

/// Lets the other ready fibers of this worker run, then continues. On a plain
/// thread it yields the OS thread. A cancellation point.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// sylvan::run(|| {
///     let h = sylvan::spawn_local(|| 1);
///     sylvan::yield_now(); // the new fiber runs now
///     assert!(h.is_finished());
/// });
/// ```
pub fn yield_now() {
    let switched = record::with_current(|ctx| {
        // One check, after the switch, covers interruptions that were pending
        // before it too.
        reactor::yield_suspend(ctx);
        park::raise_interrupts(ctx);
    });
    if switched.is_none() {
        std::thread::yield_now();
        park::checkpoint();
    }
}

/// The error of [`timeout`]: the deadline passed before the code finished.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let err = sylvan::timeout(Duration::from_millis(1), || sylvan::sleep(Duration::from_secs(60))).unwrap_err();
/// assert_eq!(err.limit(), Duration::from_millis(1));
/// let io: std::io::Error = err.into(); // `?` in IO code: a TimedOut error
/// assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    after: Duration,
}

impl Elapsed {
    pub(crate) fn new(after: Duration) -> Elapsed {
        Elapsed { after }
    }

    /// The time limit that was exceeded.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let e = sylvan::timeout(Duration::from_millis(2), || sylvan::sleep(Duration::from_secs(9))).unwrap_err();
    /// assert_eq!(e.limit(), Duration::from_millis(2));
    /// assert_eq!(e.to_string(), "deadline of 2ms has elapsed");
    /// ```
    pub fn limit(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline of {:?} has elapsed", self.after)
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// Runs `f`, giving up when `dur` has passed.
///
/// If the deadline passes while `f` is blocked in sylvan (sleep, join, a lock,
/// a queue, a socket — anything that parks), that call unwinds, so `f`'s
/// destructors run, and `timeout` returns `Err(Elapsed)`. Code that never
/// parks is not interrupted: if `f` completes, its value is returned even when
/// late. Timeouts nest; the earliest deadline wins. Works in fibers and on
/// plain threads.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let r = sylvan::timeout(Duration::from_millis(20), || {
///     sylvan::sleep(Duration::from_secs(60));
///     "finished"
/// });
/// assert!(r.is_err());
/// assert_eq!(sylvan::timeout(Duration::from_secs(5), || 7), Ok(7));
/// ```
pub fn timeout<F, T>(dur: Duration, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T,
{
    match Instant::now().checked_add(dur) {
        Some(deadline) => scoped(deadline, dur, f),
        None => Ok(f()),
    }
}

/// Like [`timeout`], with an absolute deadline.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// // One deadline shared by several steps.
/// let deadline = Instant::now() + Duration::from_millis(5);
/// assert_eq!(sylvan::timeout_at(deadline, || "quick"), Ok("quick"));
/// let slow = sylvan::timeout_at(deadline, || sylvan::sleep(Duration::from_secs(60)));
/// assert!(slow.is_err());
/// ```
pub fn timeout_at<F, T>(deadline: Instant, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T,
{
    let dur = deadline.saturating_duration_since(Instant::now());
    scoped(deadline, dur, f)
}

fn scoped<F: FnOnce() -> T, T>(deadline: Instant, dur: Duration, f: F) -> Result<T, Elapsed> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            park::pop_deadline();
        }
    }
    park::push_deadline(deadline, id);
    let _leave = Leave;
    match catch_unwind(AssertUnwindSafe(f)) {
        // The expiry reached the code inside as an error from a patched libc
        // call (which cannot unwind) and that code returned: still a timeout.
        Ok(_) if park::timeout_delivered(id) => Err(Elapsed { after: dur }),
        Ok(v) => Ok(v),
        Err(payload) => match payload.downcast::<TimeoutUnwind>() {
            Ok(t) if t.id == id => Err(Elapsed { after: dur }),
            Ok(t) => resume_unwind(t),
            Err(other) => resume_unwind(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_on_a_plain_thread_interrupts_sleep() {
        let start = Instant::now();
        let r = timeout(Duration::from_millis(30), || sleep(Duration::from_secs(30)));
        assert_eq!(r.unwrap_err().limit(), Duration::from_millis(30));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(30) && took < Duration::from_secs(10));
    }

    #[test]
    fn nested_timeouts_the_earliest_wins() {
        let outer = timeout(Duration::from_millis(20), || {
            let inner = timeout(Duration::from_secs(30), || sleep(Duration::from_secs(30)));
            unreachable!("inner must not return, got {inner:?}");
        });
        assert!(outer.is_err());
        let inner_first = timeout(Duration::from_secs(30), || {
            timeout(Duration::from_millis(10), || sleep(Duration::from_secs(30)))
        });
        assert!(inner_first.unwrap().is_err());
    }

    #[test]
    fn elapsed_converts_to_timed_out() {
        let e: io::Error = Elapsed {
            after: Duration::from_secs(1),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
