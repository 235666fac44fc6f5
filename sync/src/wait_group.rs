//! [`WaitGroup`]: wait until a set of tasks has finished.

use std::time::{Duration, Instant};

use crate::shim::park::Waker;
use crate::shim::Mutex;
use crate::waiters::{self, WaitQueue};

/// Counts outstanding work; `wait` blocks until the count drops to zero
/// (Go's `sync.WaitGroup`).
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::WaitGroup;
///
/// let wg = Arc::new(WaitGroup::new());
/// for _ in 0..10 {
///     wg.add(1);
///     let wg = wg.clone();
///     sylvan::spawn(move || wg.done());
/// }
/// wg.wait();
/// assert_eq!(wg.count(), 0);
/// ```
#[derive(Default)]
pub struct WaitGroup {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    count: usize,
    waiters: WaitQueue,
}

fn queue(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

fn nothing_to_pass_on(_: &mut State, (): ()) -> Vec<Waker> {
    Vec::new()
}

impl WaitGroup {
    /// A group with a count of zero.
    ///
    /// ```
    /// let wg = sylvan::sync::WaitGroup::new();
    /// assert_eq!(wg.count(), 0);
    /// wg.wait(); // a zero count never waits
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `n` to the count.
    ///
    /// ```
    /// let wg = sylvan::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// ```
    pub fn add(&self, n: usize) {
        self.state.lock().count += n;
    }

    /// Subtracts one from the count, waking the waiters when it reaches zero.
    ///
    /// # Panics
    /// If the count is already zero (more `done`s than `add`s).
    ///
    /// ```
    /// let wg = sylvan::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn done(&self) {
        let wakers = {
            let mut s = self.state.lock();
            assert!(
                s.count > 0,
                "WaitGroup::done called more times than WaitGroup::add counted"
            );
            s.count -= 1;
            if s.count == 0 {
                s.waiters.wake_every()
            } else {
                Vec::new()
            }
        };
        waiters::wake_all(wakers);
    }

    /// The current count.
    ///
    /// ```
    /// let wg = sylvan::sync::WaitGroup::new();
    /// wg.add(3);
    /// wg.done();
    /// assert_eq!(wg.count(), 2);
    /// ```
    pub fn count(&self) -> usize {
        self.state.lock().count
    }

    /// Blocks until the count is zero. A cancellation point.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::WaitGroup;
    ///
    /// let wg = Arc::new(WaitGroup::new());
    /// wg.add(3);
    /// for _ in 0..3 {
    ///     let wg = wg.clone();
    ///     sylvan::spawn(move || wg.done());
    /// }
    /// wg.wait(); // parks (or blocks this thread) until the count is zero
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Blocks at most `timeout`; returns whether the count reached zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let wg = sylvan::sync::WaitGroup::new();
    /// wg.add(1);
    /// assert!(!wg.wait_timeout(Duration::from_millis(2)));
    /// wg.done();
    /// assert!(wg.wait_timeout(Duration::from_millis(2)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Instant::now().checked_add(timeout))
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        let waiter = {
            let mut s = self.state.lock();
            if s.count == 0 {
                return true;
            }
            s.waiters.push()
        };
        // Woken means the count reached zero (even if work was added since).
        waiters::wait(
            &crate::shim::park::WaitLabel("WaitGroup::wait"),
            &self.state,
            waiter,
            deadline,
            queue,
            nothing_to_pass_on,
        )
        .is_some()
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
