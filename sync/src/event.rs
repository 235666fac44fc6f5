//! [`Event`]: a flag that fibers and threads can wait for.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::shim::park::Waker;
use crate::shim::{AtomicBool, Mutex};
use crate::waiters::{self, WaitQueue};

/// A flag that can be set, cleared and waited for, like gevent's `Event`.
///
/// Setting it wakes every waiter; waiters that were woken by a `set` return
/// even if the event is cleared again before they run. Works between fibers
/// on any workers and plain threads in any mix.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::Event;
///
/// let ready = Arc::new(Event::new());
/// let waiters: Vec<_> = (0..10)
///     .map(|_| {
///         let ready = ready.clone();
///         sylvan::spawn(move || ready.wait())
///     })
///     .collect();
/// ready.set(); // from a plain thread
/// for w in waiters {
///     w.join().unwrap();
/// }
/// assert!(ready.is_set());
/// ```
#[derive(Default)]
pub struct Event {
    flag: AtomicBool,
    state: Mutex<WaitQueue>,
}

fn queue(q: &mut WaitQueue) -> &mut WaitQueue {
    q
}

fn nothing_to_pass_on(_: &mut WaitQueue, (): ()) -> Vec<Waker> {
    // A set wakes everyone; a waiter that leaves takes nothing from others.
    Vec::new()
}

impl Event {
    /// A new, unset event.
    ///
    /// ```
    /// let e = sylvan::sync::Event::new();
    /// assert!(!e.is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let e = sylvan::sync::Event::new();
    /// e.set();
    /// e.wait(); // returns at once: the flag is set
    /// assert!(e.is_set());
    /// ```
    pub fn set(&self) {
        let wakers = {
            let mut q = self.state.lock();
            self.flag.store(true, Ordering::Release);
            q.wake_every()
        };
        waiters::wake_all(wakers);
    }

    /// Clears the flag; later `wait`s block until the next `set`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = sylvan::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.wait_timeout(Duration::from_millis(2)));
    /// ```
    pub fn clear(&self) {
        let _q = self.state.lock();
        self.flag.store(false, Ordering::Release);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let e = sylvan::sync::Event::new();
    /// assert!(!e.is_set());
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Blocks until the flag is set. A cancellation point.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::Event;
    ///
    /// let go = Arc::new(Event::new());
    /// let runner = {
    ///     let go = go.clone();
    ///     sylvan::spawn(move || {
    ///         go.wait(); // parks this fiber until `set`
    ///         "ran"
    ///     })
    /// };
    /// go.set();
    /// assert_eq!(runner.join().unwrap(), "ran");
    /// ```
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Blocks until the flag is set or `timeout` passes; returns whether it
    /// was set.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = sylvan::sync::Event::new();
    /// assert!(!e.wait_timeout(Duration::from_millis(5)));
    /// e.set();
    /// assert!(e.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Instant::now().checked_add(timeout))
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        let waiter = {
            let mut q = self.state.lock();
            if self.is_set() {
                return true;
            }
            q.push()
        };
        waiters::wait(
            &crate::shim::park::WaitLabel("Event::wait"),
            &self.state,
            waiter,
            deadline,
            queue,
            nothing_to_pass_on,
        )
        .is_some()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
