//! Waiting for fibers: [`JoinHandle`] and [`JoinError`], and the one-shot
//! result slot ([`JoinCell`]) a finishing fiber publishes its outcome to.
//!
//! A fiber's closure and its fiber-local values are dropped *before* its
//! result is published (an ordering [`scope`](crate::scope()) relies on).

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::park::{self, Waker};
use crate::record::WaitOn;
use crate::record::{self, panic_message, CancelUnwind, FiberId, Header, TaskRef};

/// Why a fiber did not produce a value.
pub(crate) enum Failure {
    Panic(Box<dyn Any + Send + 'static>),
    Cancelled,
}

impl Failure {
    pub(crate) fn from_payload(p: Box<dyn Any + Send + 'static>) -> Failure {
        if p.is::<CancelUnwind>() {
            Failure::Cancelled
        } else {
            Failure::Panic(p)
        }
    }
}

/// A one-shot slot for a result, with its waiters (fibers, threads, or the
/// handle's own future).
pub(crate) struct JoinCell<T> {
    state: Mutex<JoinState<T>>,
    done: AtomicBool,
    /// Nobody will ever take the outcome (the handle was dropped unjoined):
    /// it is dropped as soon as it is published. Read and written under
    /// `state`'s lock (which orders it); an atomic beside `done` rather than
    /// a field inside, only to keep every fiber's record 8 bytes smaller.
    detached: AtomicBool,
}

struct JoinState<T> {
    outcome: Option<Result<T, Failure>>,
    waiters: Waiters,
}

/// Who waits for an outcome: nearly always one (the joiner, or the
/// handle's future), but [`wait_any`] takes shared handles, so callers on
/// several fibers or threads may wait on one cell at once; each is woken.
enum Waiters {
    None,
    One(Waker),
    // Boxed so the set is no bigger than one waker (asserted below).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Waker>>),
}

// Every fiber's record holds one: no bigger than the single slot it replaced.
const _: () = assert!(std::mem::size_of::<Waiters>() <= std::mem::size_of::<Option<Waker>>());

impl Waiters {
    /// Adds `w` unless an equivalent waker is already there.
    #[inline]
    fn add(&mut self, w: Waker) {
        // Every join's path: the first (usually only) waiter.
        if let Waiters::None = self {
            // Nothing to drop in the old value: skip its drop glue.
            std::mem::forget(std::mem::replace(self, Waiters::One(w)));
        } else {
            self.add_another(w);
        }
    }

    #[inline(never)]
    fn add_another(&mut self, w: Waker) {
        match self {
            Waiters::None => *self = Waiters::One(w),
            Waiters::One(a) if a.will_wake(&w) => {}
            Waiters::One(_) => {
                let Waiters::One(a) = std::mem::replace(self, Waiters::None) else {
                    unreachable!()
                };
                *self = Waiters::Many(Box::new(vec![a, w]));
            }
            Waiters::Many(list) => {
                if !list.iter().any(|a| a.will_wake(&w)) {
                    list.push(w);
                }
            }
        }
    }

    /// Removes the wakers `keep` rejects.
    fn retain(&mut self, keep: impl Fn(&Waker) -> bool) {
        match self {
            Waiters::None => {}
            Waiters::One(a) => {
                if !keep(a) {
                    *self = Waiters::None;
                }
            }
            Waiters::Many(list) => {
                list.retain(|a| keep(a));
                if list.is_empty() {
                    *self = Waiters::None;
                }
            }
        }
    }

    /// Removes `w` (and any equivalent waker).
    fn remove(&mut self, w: &Waker) {
        self.retain(|a| !a.will_wake(w));
    }

    #[inline]
    fn wake_all(self) {
        match self {
            Waiters::None => {}
            Waiters::One(w) => w.wake(),
            Waiters::Many(list) => list.iter().for_each(Waker::wake),
        }
    }
}

impl<T> JoinCell<T> {
    pub(crate) fn new() -> JoinCell<T> {
        JoinCell {
            state: Mutex::new(JoinState {
                outcome: None,
                waiters: Waiters::None,
            }),
            done: AtomicBool::new(false),
            detached: AtomicBool::new(false),
        }
    }

    /// Publishes the outcome and wakes the waiters. A detached cell drops the
    /// outcome here and now (outside its lock).
    pub(crate) fn complete(&self, outcome: Result<T, Failure>) {
        let (waiters, unwanted) = {
            let mut s = self.state.lock();
            self.done.store(true, Ordering::Release);
            if self.detached.load(Ordering::Relaxed) {
                (Waiters::None, Some(outcome))
            } else {
                s.outcome = Some(outcome);
                (std::mem::replace(&mut s.waiters, Waiters::None), None)
            }
        };
        drop(unwanted);
        waiters.wake_all();
    }

    /// The handle is gone without joining: drop an outcome already there,
    /// and any later one as soon as it comes. (The cell itself may live on
    /// for a while, e.g. in a waker, so waiting for its last reference
    /// would keep a result such as a socket open for no one.)
    pub(crate) fn detach(&self) {
        let unwanted = {
            let mut s = self.state.lock();
            self.detached.store(true, Ordering::Relaxed);
            s.outcome.take()
        };
        drop(unwanted);
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits for the outcome (register → re-check → park); `on` is what
    /// `sylvan::dump` shows meanwhile.
    pub(crate) fn wait(&self, on: WaitOn) -> Result<T, Failure> {
        // Every join's path: a loop of its own, without the deadline's
        // branches of `wait_until`.
        loop {
            {
                let mut s = self.state.lock();
                if let Some(o) = s.outcome.take() {
                    return o;
                }
                s.waiters.add(park::current_waker());
            }
            park::park_with(on);
        }
    }

    /// [`wait`](JoinCell::wait) until `deadline`: `None` if it passed first
    /// (the cell then keeps no waker of ours).
    pub(crate) fn wait_until(
        &self,
        on: WaitOn,
        deadline: Option<Instant>,
    ) -> Option<Result<T, Failure>> {
        loop {
            {
                let mut s = self.state.lock();
                if let Some(o) = s.outcome.take() {
                    return Some(o);
                }
                s.waiters.add(park::current_waker());
            }
            match deadline {
                None => park::park_with(on),
                Some(d) => {
                    if park::park_until_with(d, on) {
                        let mut s = self.state.lock();
                        if let Some(o) = s.outcome.take() {
                            return Some(o);
                        }
                        s.waiters.remove(&park::current_waker());
                        return None;
                    }
                }
            }
        }
    }

    /// The outcome if it is here; otherwise registers the async task's
    /// `waker` to be woken when it comes.
    fn poll_outcome(&self, waker: &std::task::Waker) -> Option<Result<T, Failure>> {
        let mut s = self.state.lock();
        if let Some(o) = s.outcome.take() {
            return Some(o);
        }
        // The handle is the future: a waker it was polled with before is
        // stale now.
        s.waiters.retain(|w| !w.is_task());
        s.waiters.add(Waker::of_task(waker));
        None
    }

    /// Asks for `waker` to be woken when the outcome comes; `true` (and no
    /// registration) if it is here already.
    fn watch(&self, waker: &Waker) -> bool {
        let mut s = self.state.lock();
        if s.outcome.is_some() {
            return true;
        }
        s.waiters.add(waker.clone());
        false
    }

    /// Withdraws a [`watch`](JoinCell::watch) of `waker` (only that one:
    /// others may watch the same cell).
    fn unwatch(&self, waker: &Waker) {
        self.state.lock().waiters.remove(waker);
    }
}

/// Waits until one of `cells` has its outcome, or `deadline` passes:
/// the index of one that has it.
fn wait_first<T>(cells: &[&JoinCell<T>], deadline: Option<Instant>) -> Option<usize> {
    assert!(
        !cells.is_empty(),
        "sylvan::wait_any: no handles to wait for (it would wait forever)"
    );
    let on = WaitOn::what(&record::wait_labels::WAIT_ANY);
    loop {
        let waker = park::current_waker();
        let ready = cells.iter().position(|c| c.watch(&waker));
        if ready.is_some() || deadline.is_some_and(|d| Instant::now() >= d) {
            for c in cells {
                c.unwatch(&waker);
            }
            return ready;
        }
        // Unwatch however the park ends (a cancellation unwinds from it).
        struct Unwatch<'a, T>(&'a [&'a JoinCell<T>], Waker);
        impl<T> Drop for Unwatch<'_, T> {
            fn drop(&mut self) {
                for c in self.0 {
                    c.unwatch(&self.1);
                }
            }
        }
        let _unwatch = Unwatch(cells, waker);
        match deadline {
            None => park::park_with(on),
            Some(d) => {
                park::park_until_with(d, on);
            }
        }
    }
}

/// Panics if the caller is the fiber `record` names: its join could never
/// end.
#[inline]
pub(crate) fn refuse_self_join(record: &TaskRef) {
    if record::with_current(|c| c.record.id) == Some(record.id) {
        panic!(
            "sylvan: fiber {} tried to join itself, which would wait forever; \
             join it from another fiber or thread",
            record.describe()
        );
    }
}

/// An owned permission to join a fiber (and to cancel it).
///
/// Dropping the handle detaches the fiber: it keeps running.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let handles: Vec<sylvan::JoinHandle<u32>> = (1..=3).map(|i| sylvan::spawn(move || i * 10)).collect();
/// let sum: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 60);
/// ```
pub struct JoinHandle<T> {
    /// The fiber's record; it holds the result slot, except for
    /// `spawn_local` fibers.
    record: TaskRef,
    /// `spawn_local`'s result slot (its `T` need not be `Send`).
    own_cell: Option<Arc<JoinCell<T>>>,
    /// `join` took the outcome (so dropping the handle need not detach).
    joined: bool,
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn new(record: TaskRef, own_cell: Option<Arc<JoinCell<T>>>) -> JoinHandle<T> {
        JoinHandle {
            record,
            own_cell,
            joined: false,
        }
    }

    fn cell(&self) -> &JoinCell<T> {
        match &self.own_cell {
            Some(cell) => cell,
            None => self
                .record
                .body
                .join_cell()
                .downcast_ref()
                .expect("a spawned fiber's record holds a JoinCell of its result type"),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.joined {
            return;
        }
        match &self.own_cell {
            Some(cell) => cell.detach(),
            None => self.record.body.detach(),
        }
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Waits for the fiber to finish and returns its value, or why it has none.
    /// Works from a fiber (which parks) and from a plain thread (which blocks).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::spawn(|| panic!("boom"));
    /// let err = h.join().unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(err.to_string().contains("boom"));
    /// ```
    ///
    /// # Panics
    /// If a fiber tries to join itself (that could never finish).
    pub fn join(self) -> Result<T, JoinError> {
        let mut this = self;
        this.not_self();
        let outcome = this.cell().wait(WaitOn::join(this.record.id.as_u64()));
        this.joined = true;
        outcome.map_err(|f| JoinError::new(f, &this.record))
    }

    /// Panics if the caller is the fiber itself (its join could never end).
    fn not_self(&self) {
        refuse_self_join(&self.record);
    }

    /// [`join`](Self::join), waiting at most `timeout`: the fiber's outcome,
    /// or the handle back if it has not finished by then (to wait again,
    /// cancel it, or drop it and let it run on).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let slow = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    /// let slow = match slow.join_timeout(Duration::from_millis(10)) {
    ///     Ok(_) => unreachable!("it sleeps for an hour"),
    ///     Err(still_running) => still_running,
    /// };
    /// slow.cancel();
    /// assert!(slow.join().unwrap_err().is_cancelled());
    ///
    /// let quick = sylvan::spawn(|| 7);
    /// assert_eq!(quick.join_timeout(Duration::from_secs(10)).ok().unwrap().unwrap(), 7);
    /// ```
    ///
    /// # Panics
    /// If a fiber tries to join itself.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        let mut this = self;
        this.not_self();
        let deadline = Instant::now().checked_add(timeout);
        let on = WaitOn::join(this.record.id.as_u64());
        match this.cell().wait_until(on, deadline) {
            Some(outcome) => {
                this.joined = true;
                Ok(outcome.map_err(|f| JoinError::new(f, &this.record)))
            }
            None => Err(this),
        }
    }
}

/// Waits until at least one of `handles` has finished and returns the
/// index of one that has (gevent's `wait(..., count=1)`); the handles stay
/// yours, to [`join`](JoinHandle::join) without waiting. A park point.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let racers: Vec<_> = [300u64, 5, 200]
///     .into_iter()
///     .map(|ms| sylvan::spawn(move || { sylvan::sleep(Duration::from_millis(ms)); ms }))
///     .collect();
/// let first = sylvan::wait_any(&racers);
/// assert_eq!(first, 1);
/// let mut racers = racers;
/// assert_eq!(racers.swap_remove(first).join().unwrap(), 5);
/// ```
///
/// # Panics
/// If `handles` is empty (nothing could ever finish).
pub fn wait_any<T: 'static>(handles: &[JoinHandle<T>]) -> usize {
    let cells: Vec<&JoinCell<T>> = handles.iter().map(JoinHandle::cell).collect();
    wait_first(&cells, None).expect("a wait without a deadline ends with a finished fiber")
}

/// [`wait_any`] for at most `timeout`: `None` if none finished by then.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let h = [sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)))];
/// assert_eq!(sylvan::wait_any_timeout(&h, Duration::from_millis(5)), None);
/// h[0].cancel();
/// ```
pub fn wait_any_timeout<T: 'static>(handles: &[JoinHandle<T>], timeout: Duration) -> Option<usize> {
    let cells: Vec<&JoinCell<T>> = handles.iter().map(JoinHandle::cell).collect();
    wait_first(&cells, Instant::now().checked_add(timeout))
}

/// Joins `handles` in the order they finish: an iterator of (index in
/// `handles`, outcome), each produced as soon as that fiber ends (gevent's
/// `iwait`, Python's `as_completed`).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// let fetches: Vec<_> = [30u64, 10, 20]
///     .into_iter()
///     .map(|ms| sylvan::spawn(move || { sylvan::sleep(Duration::from_millis(ms)); ms }))
///     .collect();
/// let order: Vec<u64> = sylvan::iwait(fetches).map(|(_, r)| r.unwrap()).collect();
/// assert_eq!(order, [10, 20, 30]);
/// ```
pub fn iwait<T: 'static>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> Iwait<T> {
    Iwait {
        pending: handles.into_iter().enumerate().collect(),
    }
}

/// One fiber produced by [`iwait`]: its index among the handles given, and
/// its outcome.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let (index, outcome): sylvan::Completed<&str> =
///     sylvan::iwait([sylvan::spawn(|| "only")]).next().unwrap();
/// assert_eq!((index, outcome.unwrap()), (0, "only"));
/// ```
pub type Completed<T> = (usize, Result<T, JoinError>);

/// The iterator of [`iwait`]: fibers in the order they finish.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let mut done: sylvan::Iwait<u8> = sylvan::iwait((0..3u8).map(|i| sylvan::spawn(move || i)));
/// let mut got: Vec<u8> = done.by_ref().map(|(_, r)| r.unwrap()).collect();
/// got.sort();
/// assert_eq!((got, done.remaining()), (vec![0, 1, 2], 0));
/// ```
pub struct Iwait<T> {
    /// (index given, handle) of the fibers not yet produced.
    pending: Vec<(usize, JoinHandle<T>)>,
}

impl<T: 'static> Iwait<T> {
    /// Joins the pending fiber at `at` (it has finished).
    fn take(&mut self, at: usize) -> Completed<T> {
        let (index, handle) = self.pending.swap_remove(at);
        (index, handle.join())
    }

    /// Like [`next`](Iterator::next), waiting at most `timeout`:
    /// `Ok(None)` when every fiber was produced, `Err(Elapsed)` when none
    /// finished in time (the rest stay pending).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let mut done = sylvan::iwait([sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)))]);
    /// assert!(done.next_timeout(Duration::from_millis(5)).is_err());
    /// assert_eq!(done.remaining(), 1);
    /// ```
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Completed<T>>, crate::Elapsed> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let cells: Vec<&JoinCell<T>> = self.pending.iter().map(|(_, h)| h.cell()).collect();
        match wait_first(&cells, Instant::now().checked_add(timeout)) {
            Some(at) => Ok(Some(self.take(at))),
            None => Err(crate::Elapsed::new(timeout)),
        }
    }

    /// How many fibers are still to be produced.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let mut done = sylvan::iwait([sylvan::spawn(|| 1), sylvan::spawn(|| 2)]);
    /// assert_eq!(done.remaining(), 2);
    /// done.next();
    /// assert_eq!(done.remaining(), 1);
    /// ```
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }
}

impl<T: 'static> Iterator for Iwait<T> {
    type Item = Completed<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending.is_empty() {
            return None;
        }
        let cells: Vec<&JoinCell<T>> = self.pending.iter().map(|(_, h)| h.cell()).collect();
        let at =
            wait_first(&cells, None).expect("a wait without a deadline ends with a finished fiber");
        Some(self.take(at))
    }
}

impl<T> fmt::Debug for Iwait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iwait")
            .field("remaining", &self.pending.len())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Requests cancellation: the fiber unwinds from its current or next park
    /// point (sleep, join, IO, lock, queue...), running its destructors, and
    /// [`join`](Self::join) reports [`JoinError::is_cancelled`]. A fiber that
    /// never parks cannot be cancelled. No-op on a finished fiber.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    /// h.cancel();
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.record.cancel();
    }

    /// Whether the fiber has finished (its result is ready).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    /// let g = gate.clone();
    /// let h = sylvan::spawn(move || { g.wait(); });
    /// assert!(!h.is_finished()); // it waits for the barrier
    /// gate.wait();
    /// while !h.is_finished() { std::thread::yield_now(); }
    /// h.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.own_cell {
            Some(cell) => cell.is_done(),
            None => self.record.body.is_done(),
        }
    }

    /// The fiber's id (what [`dump`](fn@crate::dump) and panic messages show).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::spawn(|| sylvan::current().id());
    /// let id = h.id();
    /// assert_eq!(h.join().unwrap(), id);
    /// ```
    pub fn id(&self) -> FiberId {
        self.record.id
    }

    /// The fiber's name, if it was given one.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::Builder::new().name("worker").spawn(|| ()).unwrap();
    /// assert_eq!(h.name(), Some("worker"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.record.name()
    }

    /// A clonable handle to the fiber's identity (id, name, cancellation).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    /// let fiber = h.fiber(); // e.g. kept in a registry of sessions
    /// fiber.cancel();
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn fiber(&self) -> crate::Fiber {
        crate::Fiber {
            record: self.record.clone(),
        }
    }
}

/// Async code awaits a fiber: the output is what [`join`](JoinHandle::join)
/// returns. Works under any executor (the fiber's end wakes the task).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let fiber = sylvan::spawn(|| "from a fiber");
/// // Any executor; here a plain thread's.
/// let out = sylvan::future::block_on(async move { fiber.await.unwrap() });
/// assert_eq!(out, "from a fiber");
/// ```
///
/// # Panics
/// If polled again after it returned the result.
impl<T: 'static> std::future::Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.joined,
            "sylvan: a JoinHandle was polled after it returned the fiber's result"
        );
        match this.cell().poll_outcome(cx.waker()) {
            Some(outcome) => {
                this.joined = true;
                std::task::Poll::Ready(outcome.map_err(|f| JoinError::new(f, &this.record)))
            }
            None => std::task::Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.record.id)
            .field("name", &self.record.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why joining a fiber gave no value: it panicked or was cancelled. Its
/// `Display` names the fiber (name, id, spawn site) and says which.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let err = sylvan::Builder::new()
///     .name("parser")
///     .spawn(|| panic!("bad input"))
///     .unwrap()
///     .join()
///     .unwrap_err();
/// assert!(err.is_panic());
/// let text = err.to_string();
/// assert!(text.contains("parser") && text.contains("bad input"), "{text}");
/// ```
pub struct JoinError {
    failure: Failure,
    fiber: String,
}

impl JoinError {
    pub(crate) fn new(failure: Failure, header: &Header) -> JoinError {
        JoinError {
            failure,
            fiber: header.describe(),
        }
    }

    /// The fiber panicked.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// assert!(sylvan::spawn(|| panic!("x")).join().unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.failure, Failure::Panic(_))
    }

    /// The fiber was cancelled (by [`JoinHandle::cancel`] or runtime shutdown).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::spawn(|| sylvan::sleep(std::time::Duration::from_secs(3600)));
    /// h.cancel();
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.failure, Failure::Cancelled)
    }

    /// The panic payload, to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    /// If the fiber was cancelled rather than panicking; check
    /// [`is_panic`](Self::is_panic) or use [`try_into_panic`](Self::try_into_panic).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let err = sylvan::spawn(|| std::panic::panic_any(42u8)).join().unwrap_err();
    /// assert_eq!(err.into_panic().downcast_ref::<u8>(), Some(&42));
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|e| panic!("JoinError::into_panic on a non-panic error: {e}"))
    }

    /// The panic payload, or the error back if the fiber was cancelled.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::spawn(|| sylvan::sleep(std::time::Duration::from_secs(3600)));
    /// h.cancel();
    /// let err = h.join().unwrap_err();
    /// assert!(err.try_into_panic().unwrap_err().is_cancelled());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.failure {
            Failure::Panic(p) => Ok(p),
            Failure::Cancelled => Err(self),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Cancelled => write!(f, "fiber {} was cancelled", self.fiber),
            Failure::Panic(p) => match panic_message(&**p) {
                Some(msg) => write!(f, "fiber {} panicked: {msg}", self.fiber),
                None => write!(f, "fiber {} panicked", self.fiber),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        io::Error::other(e.to_string())
    }
}
