//! [`AsyncResult`]: a value that becomes available once, for many waiters.

use std::time::{Duration, Instant};

use crate::shim::park::Waker;
use crate::shim::Mutex;
use crate::waiters::{self, WaitQueue};

/// A slot for a value that one party sets and any number of fibers or
/// threads wait for (gevent's `AsyncResult`). Setting it again replaces the
/// value and wakes any new waiters.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::AsyncResult;
///
/// let answer = Arc::new(AsyncResult::new());
/// let readers: Vec<_> = (0..3)
///     .map(|_| {
///         let answer = answer.clone();
///         sylvan::spawn(move || answer.get())
///     })
///     .collect();
/// answer.set(42);
/// for r in readers {
///     assert_eq!(r.join().unwrap(), 42);
/// }
/// ```
pub struct AsyncResult<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Option<T>,
    waiters: WaitQueue,
}

fn queue<T>(s: &mut State<T>) -> &mut WaitQueue {
    &mut s.waiters
}

fn nothing_to_pass_on<T>(_: &mut State<T>, (): ()) -> Vec<Waker> {
    Vec::new()
}

impl<T> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult {
            state: Mutex::new(State {
                value: None,
                waiters: WaitQueue::default(),
            }),
        }
    }
}

impl<T> AsyncResult<T> {
    /// An empty result.
    ///
    /// ```
    /// let r: sylvan::sync::AsyncResult<u32> = sylvan::sync::AsyncResult::new();
    /// assert!(!r.is_ready());
    /// assert_eq!(r.try_get(), None);
    /// ```
    pub fn new() -> AsyncResult<T> {
        AsyncResult::default()
    }

    /// Stores the value and wakes every waiter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::AsyncResult;
    ///
    /// let r = Arc::new(AsyncResult::new());
    /// let waiter = {
    ///     let r = r.clone();
    ///     sylvan::spawn(move || r.get()) // parks until the value is set
    /// };
    /// r.set("done");
    /// assert_eq!(waiter.join().unwrap(), "done");
    /// ```
    pub fn set(&self, value: T) {
        let wakers = {
            let mut s = self.state.lock();
            s.value = Some(value);
            s.waiters.wake_every()
        };
        waiters::wake_all(wakers);
    }

    /// Whether a value has been set.
    ///
    /// ```
    /// let r = sylvan::sync::AsyncResult::new();
    /// assert!(!r.is_ready());
    /// r.set(1);
    /// assert!(r.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.state.lock().value.is_some()
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Waits for the value and returns a clone of it. A cancellation point.
    ///
    /// ```
    /// let r = sylvan::sync::AsyncResult::new();
    /// r.set(vec![1, 2]);
    /// assert_eq!(r.get(), [1, 2]); // every reader gets a clone
    /// assert_eq!(r.get(), [1, 2]);
    /// ```
    pub fn get(&self) -> T {
        self.get_deadline(None).expect("no deadline")
    }

    /// Waits at most `timeout`; `None` if no value was set by then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = sylvan::sync::AsyncResult::<u8>::new();
    /// assert_eq!(r.get_timeout(Duration::from_millis(2)), None);
    /// r.set(3);
    /// assert_eq!(r.get_timeout(Duration::from_millis(2)), Some(3));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.get_deadline(Instant::now().checked_add(timeout))
    }

    /// The value, if set, without waiting.
    ///
    /// ```
    /// let r = sylvan::sync::AsyncResult::new();
    /// assert_eq!(r.try_get(), None);
    /// r.set('x');
    /// assert_eq!(r.try_get(), Some('x'));
    /// ```
    pub fn try_get(&self) -> Option<T> {
        self.state.lock().value.clone()
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Option<T> {
        loop {
            let waiter = {
                let mut s = self.state.lock();
                if let Some(v) = &s.value {
                    return Some(v.clone());
                }
                s.waiters.push()
            };
            // Woken by a `set`: loop to read the value (None: timed out).
            waiters::wait(
                &crate::shim::park::WaitLabel("AsyncResult::get"),
                &self.state,
                waiter,
                deadline,
                queue,
                nothing_to_pass_on,
            )?;
        }
    }
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.is_ready())
            .finish()
    }
}
