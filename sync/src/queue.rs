//! [`Queue`]: a FIFO queue between fibers and threads, bounded or not,
//! closable, with gevent's `JoinableQueue` (`task_done` / `join`).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::shim::park::Waker;
use crate::shim::{Arc, Mutex};
use crate::waiters::{self, Registered, SelectToken, WaitQueue, Waiter};

/// A multi-producer, multi-consumer FIFO queue.
///
/// * `bounded(n)`: `put` waits while `n` items are queued; `bounded(0)` is a
///   rendezvous (`put` waits for a `get`); `unbounded()`: `put` never waits.
/// * Waiting getters and putters are served in FIFO order. A `put` with
///   getters waiting hands the item straight to the longest-waiting one.
/// * A getter that is cancelled or times out just as an item reaches it
///   passes the item on (to the next getter, or back to the front of the
///   queue): items are never lost.
/// * [`close`](Queue::close) wakes everybody: `get` drains what is left, then
///   returns `None`; `put` returns the item as `Err`.
/// * `task_done`/`join` as in gevent's `JoinableQueue`: every successful `put`
///   adds an unfinished task, `task_done` marks one finished, `join` waits
///   until none are left.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::Queue;
///
/// let q = Arc::new(Queue::bounded(2));
/// let consumer = {
///     let q = q.clone();
///     sylvan::spawn(move || {
///         let mut sum = 0;
///         while let Some(v) = q.get() {
///             sum += v;
///             q.task_done();
///         }
///         sum
///     })
/// };
/// for i in 1..=10 {
///     q.put(i).unwrap(); // waits while 2 items are queued
/// }
/// q.join(); // all 10 processed
/// q.close();
/// assert_eq!(consumer.join().unwrap(), 55);
/// assert_eq!(q.put(11), Err(11)); // closed: the item comes back
/// ```
pub struct Queue<T> {
    state: Mutex<State<T>>,
}

/// What a waiting putter is told.
pub(crate) enum PutGrant {
    /// Room for one item is reserved for you.
    Room,
    /// The queue was closed.
    Closed,
}

struct State<T> {
    items: VecDeque<T>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    /// Room promised to woken putters that have not put yet.
    reserved: usize,
    closed: bool,
    /// Getters; each is handed `Some(item)`, or `None` when the queue closes.
    getters: WaitQueue<Option<T>>,
    putters: WaitQueue<PutGrant>,
    /// Items put and not yet marked `task_done` (gevent's JoinableQueue).
    unfinished: usize,
    /// Callers of `join`, woken when `unfinished` reaches zero.
    joiners: WaitQueue,
}

impl<T> State<T> {
    fn has_room(&self) -> bool {
        match self.capacity {
            None => true,
            // Rendezvous: room exists for each waiting getter that has not
            // been promised an item yet.
            Some(0) => self.getters.len() > self.reserved,
            Some(cap) => self.items.len() + self.reserved < cap,
        }
    }

    /// Puts `item` in: [`deliver`](State::deliver), except into a
    /// rendezvous queue, which has no buffer: there a waiting getter must
    /// take it, or `Err(item)` and the putter waits again. (A getter can
    /// leave after it granted the room — a timeout, a cancellation, its
    /// select won by another case — and `has_room` counts such a select's
    /// getter until it withdraws; `notify_one` skips and drops it.)
    #[inline(always)]
    fn hand_over(&mut self, item: T) -> Result<Option<Waker>, T> {
        if self.capacity == Some(0) {
            return self.hand_over_rendezvous(item);
        }
        Ok(self.deliver(item))
    }

    /// [`hand_over`](State::hand_over) for a rendezvous queue.
    #[inline(never)]
    fn hand_over_rendezvous(&mut self, item: T) -> Result<Option<Waker>, T> {
        match self.getters.notify_one(Some(item)) {
            // Under the lock, so before the getter can mark it done.
            Ok(w) => {
                self.unfinished += 1;
                Ok(Some(w))
            }
            Err(item) => Err(item.expect("a real item")),
        }
    }

    /// Adds an item: straight to the longest-waiting getter, else the buffer.
    /// It counts as unfinished first, so a fast `task_done` cannot underflow.
    fn deliver(&mut self, item: T) -> Option<Waker> {
        self.unfinished += 1;
        match self.getters.notify_one(Some(item)) {
            Ok(w) => Some(w),
            Err(item) => {
                self.items.push_back(item.expect("a real item"));
                None
            }
        }
    }

    /// Whether a putter (of the select that owns `token`, if any) may put
    /// now, without waiting: there is room and nobody ahead in line to take
    /// it. In a rendezvous queue "ahead" counts only putters a waiting
    /// getter can serve (a select's put whose only partner is its own
    /// receive cannot), and a select's put needs a getter not its own.
    #[inline(always)]
    fn may_put_now(&self, token: Option<&SelectToken>) -> bool {
        match self.capacity {
            None => self.putters.is_empty(),
            Some(0) => self.may_put_rendezvous(token),
            Some(cap) => self.items.len() + self.reserved < cap && self.putters.is_empty(),
        }
    }

    /// [`may_put_now`](State::may_put_now) for a rendezvous queue.
    #[inline(never)]
    fn may_put_rendezvous(&self, token: Option<&SelectToken>) -> bool {
        let getters = &self.getters;
        self.has_room() && getters.serves(token) && !self.putters.any(|t| getters.serves(t))
    }

    /// After an item left the buffer (or a getter came to a rendezvous
    /// queue): give the room to the next putter. (Also after a putter
    /// joined the line of a rendezvous queue: room a select's own getter
    /// made, which its put could not take, may serve a putter behind it.)
    fn room_freed(&mut self) -> Option<Waker> {
        if !self.has_room() {
            return None;
        }
        let granted = if self.capacity == Some(0) {
            // The first putter in line that a waiting getter can serve.
            let getters = &self.getters;
            self.putters
                .notify_first(|t| getters.serves(t), PutGrant::Room)
        } else {
            self.putters.notify_one(PutGrant::Room)
        };
        let w = granted.ok()?;
        self.reserved += 1;
        Some(w)
    }
}

fn getters<T>(s: &mut State<T>) -> &mut WaitQueue<Option<T>> {
    &mut s.getters
}

fn joiners<T>(s: &mut State<T>) -> &mut WaitQueue {
    &mut s.joiners
}

fn putters<T>(s: &mut State<T>) -> &mut WaitQueue<PutGrant> {
    &mut s.putters
}

/// A getter left while holding an item: the next getter gets it, else it
/// goes back to the front (it is the oldest item).
fn getter_pass_on<T>(s: &mut State<T>, item: Option<T>) -> Vec<Waker> {
    let Some(item) = item else {
        return Vec::new();
    };
    match s.getters.notify_one(Some(item)) {
        Ok(w) => vec![w],
        Err(item) => {
            s.items.push_front(item.expect("a real item"));
            Vec::new()
        }
    }
}

/// A putter left while holding reserved room: pass the room on.
fn putter_pass_on<T>(s: &mut State<T>, grant: PutGrant) -> Vec<Waker> {
    match grant {
        PutGrant::Closed => Vec::new(),
        PutGrant::Room => {
            s.reserved -= 1;
            s.room_freed().into_iter().collect()
        }
    }
}

/// Why [`Queue::try_put`] did not take the item (which it hands back).
///
/// ```
/// use sylvan::sync::{Queue, TryPutError};
/// let q = Queue::bounded(1);
/// q.try_put(1).unwrap();
/// assert!(matches!(q.try_put(2), Err(TryPutError::Full(2))));
/// q.close();
/// assert!(matches!(q.try_put(3), Err(TryPutError::Closed(3))));
/// ```
#[derive(PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is bounded and full.
    Full(T),
    /// The queue is closed.
    Closed(T),
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(0);
    /// let err = q.try_put(String::from("kept")).unwrap_err();
    /// assert_eq!(err.into_inner(), "kept");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t) | TryPutError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("the queue is full"),
            TryPutError::Closed(_) => f.write_str("the queue is closed"),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}

impl<T> Queue<T> {
    fn with_capacity(capacity: Option<usize>) -> Queue<T> {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                capacity,
                reserved: 0,
                closed: false,
                getters: WaitQueue::default(),
                putters: WaitQueue::default(),
                unfinished: 0,
                joiners: WaitQueue::default(),
            }),
        }
    }

    /// A queue that holds at most `capacity` items. With `capacity` 0 it is a
    /// rendezvous: `put` waits until a `get` takes the item.
    ///
    /// One exception, so that no item is ever lost: a `get` interrupted
    /// (cancelled, or by an enclosing timeout) just as it was handed an item
    /// that no other getter waits for puts the item back at the front, even
    /// if the queue filled up meanwhile; it then briefly holds more than
    /// `capacity` items, and puts wait until it is below again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = sylvan::sync::Queue::bounded(2);
    /// assert_eq!(q.capacity(), Some(2));
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.put_timeout(3, Duration::from_millis(2)), Err(3)); // full
    /// ```
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue::with_capacity(Some(capacity))
    }

    /// A queue without a size limit.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// assert_eq!(q.capacity(), None);
    /// (0..100).for_each(|i| q.put(i).unwrap());
    /// assert_eq!(q.len(), 100);
    /// ```
    pub fn unbounded() -> Queue<T> {
        Queue::with_capacity(None)
    }

    /// Adds an item, waiting while the queue is full. Returns the item back
    /// as `Err` if the queue is (or gets) closed. A cancellation point.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::Queue;
    ///
    /// let q = Arc::new(Queue::bounded(1));
    /// let producer = {
    ///     let q = q.clone();
    ///     sylvan::spawn(move || {
    ///         for i in 0..3 {
    ///             q.put(i).unwrap(); // parks while full
    ///         }
    ///         q.close();
    ///     })
    /// };
    /// let mut got = Vec::new();
    /// while let Some(i) = q.get() {
    ///     got.push(i);
    /// }
    /// assert_eq!(got, [0, 1, 2]);
    /// assert_eq!(q.put(9), Err(9)); // closed: the item comes back
    /// producer.join().unwrap();
    /// ```
    pub fn put(&self, item: T) -> Result<(), T> {
        self.put_deadline(item, None)
    }

    /// Like [`put`](Queue::put), waiting at most `timeout` for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = sylvan::sync::Queue::bounded(0); // nobody gets
    /// assert_eq!(q.put_timeout("x", Duration::from_millis(2)), Err("x"));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.put_deadline(item, Instant::now().checked_add(timeout))
    }

    /// Adds an item if there is room right now.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(1);
    /// assert!(q.try_put(1).is_ok());
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let wakers = {
            let mut s = self.state.lock();
            if s.closed {
                return Err(TryPutError::Closed(item));
            }
            if !s.may_put_now(None) {
                return Err(TryPutError::Full(item));
            }
            match s.hand_over(item) {
                Ok(w) => w,
                Err(item) => return Err(TryPutError::Full(item)),
            }
        };
        waiters::wake_all(wakers);
        Ok(())
    }

    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), T> {
        // Whether this putter lost a grant and waits again at the front.
        let mut again = false;
        let mut item = item;
        loop {
            let waiter = {
                let mut s = self.state.lock();
                if s.closed {
                    return Err(item);
                }
                if s.may_put_now(None) {
                    if s.capacity != Some(0) {
                        let wakers = s.deliver(item);
                        drop(s);
                        waiters::wake_all(wakers);
                        return Ok(());
                    }
                    match s.hand_over_rendezvous(item) {
                        Ok(wakers) => {
                            drop(s);
                            waiters::wake_all(wakers);
                            return Ok(());
                        }
                        // The getters that made room had left: wait.
                        Err(back) => item = back,
                    }
                }
                let waiter = if again {
                    s.putters.push_front()
                } else {
                    s.putters.push()
                };
                if s.capacity == Some(0) {
                    // Room a select's getter made that only its own put was
                    // in line for may serve this putter.
                    let granted = s.room_freed();
                    drop(s);
                    waiters::wake_all(granted);
                }
                waiter
            };
            match waiters::wait(
                &crate::shim::park::WaitLabel("Queue::put"),
                &self.state,
                waiter,
                deadline,
                putters,
                putter_pass_on,
            ) {
                Some(PutGrant::Room) => {
                    let wakers = {
                        let mut s = self.state.lock();
                        s.reserved -= 1;
                        if s.closed {
                            // Closed before the item went in: a waiting put
                            // fails (a receiver may have drained and gone).
                            return Err(item);
                        }
                        match s.hand_over(item) {
                            Ok(w) => w,
                            Err(back) => {
                                // Rendezvous: the getter this room was for
                                // left; wait for another, first in line as
                                // before, rather than buffer the item with
                                // nobody to take it.
                                item = back;
                                again = true;
                                continue;
                            }
                        }
                    };
                    waiters::wake_all(wakers);
                    return Ok(());
                }
                Some(PutGrant::Closed) | None => return Err(item),
            }
        }
    }

    /// Takes the oldest item, waiting while the queue is empty. Returns
    /// `None` once the queue is closed and drained. A cancellation point.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put("a").unwrap();
    /// q.close();
    /// assert_eq!(q.get(), Some("a")); // drains what is queued
    /// assert_eq!(q.get(), None); // then reports the close
    /// ```
    pub fn get(&self) -> Option<T> {
        self.get_deadline(None)
    }

    /// Like [`get`](Queue::get), waiting at most `timeout`; `None` also on
    /// timeout (see [`is_closed`](Queue::is_closed) to tell which).
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// assert_eq!(q.get_timeout(Duration::from_millis(2)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.get_deadline(Instant::now().checked_add(timeout))
    }

    /// Takes the oldest item if there is one right now.
    ///
    /// A rendezvous queue (`bounded(0)`) holds no items: there `try_get`
    /// finds nothing even while a `put` waits, since a put hands its item
    /// only to a `get` that waits for it (unlike Go's non-blocking receive,
    /// which takes a blocked sender's value).
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// assert_eq!(q.try_get(), None);
    /// q.put(1).unwrap();
    /// assert_eq!(q.try_get(), Some(1));
    /// ```
    pub fn try_get(&self) -> Option<T> {
        let (item, wakers) = {
            let mut s = self.state.lock();
            let item = s.items.pop_front()?;
            let wakers = s.room_freed();
            (item, wakers)
        };
        waiters::wake_all(wakers);
        Some(item)
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Option<T> {
        let waiter = {
            let mut s = self.state.lock();
            if let Some(item) = s.items.pop_front() {
                let wakers = s.room_freed();
                drop(s);
                waiters::wake_all(wakers);
                return Some(item);
            }
            if s.closed {
                return None;
            }
            let waiter = s.getters.push();
            // A rendezvous queue has room now: call a waiting putter over.
            let wakers = s.room_freed();
            drop(s);
            waiters::wake_all(wakers);
            waiter
        };
        waiters::wait(
            &crate::shim::park::WaitLabel("Queue::get"),
            &self.state,
            waiter,
            deadline,
            getters,
            getter_pass_on,
        )
        .flatten()
    }

    /// Closes the queue: waiting and future `put`s fail (returning their
    /// item), `get`s drain what is queued and then return `None`.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// q.close();
    /// assert!(q.is_closed());
    /// assert_eq!(q.get(), None);
    /// ```
    pub fn close(&self) {
        let wakers = {
            let mut s = self.state.lock();
            s.closed = true;
            let mut w = s.getters.notify_all(|| None);
            w.extend(s.putters.notify_all(|| PutGrant::Closed));
            w
        };
        waiters::wake_all(wakers);
    }

    /// Whether [`close`](Queue::close) was called.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::<()>::unbounded();
    /// assert!(!q.is_closed());
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Items queued right now.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put(1).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    /// Whether no item is queued.
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// assert!(q.is_empty());
    /// q.put(()).unwrap();
    /// assert!(!q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size limit (`None` for an unbounded queue).
    ///
    /// ```
    /// assert_eq!(sylvan::sync::Queue::<u8>::bounded(4).capacity(), Some(4));
    /// assert_eq!(sylvan::sync::Queue::<u8>::unbounded().capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.state.lock().capacity
    }

    /// Marks one item taken from the queue as fully processed.
    ///
    /// # Panics
    /// If called more times than items were put.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put("job").unwrap();
    /// let _job = q.get().unwrap();
    /// assert!(!q.join_timeout(Duration::from_millis(1))); // taken, not yet done
    /// q.task_done();
    /// assert!(q.join_timeout(Duration::from_millis(1)));
    /// ```
    pub fn task_done(&self) {
        let wakers = {
            let mut s = self.state.lock();
            assert!(
                s.unfinished > 0,
                "Queue::task_done called more times than items were put"
            );
            s.unfinished -= 1;
            match s.unfinished {
                0 => s.joiners.wake_every(),
                _ => Vec::new(),
            }
        };
        waiters::wake_all(wakers);
    }

    /// Waits until every item put has been marked [`task_done`](Queue::task_done).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::Queue;
    ///
    /// let q = Arc::new(Queue::unbounded());
    /// for i in 0..5 {
    ///     q.put(i).unwrap();
    /// }
    /// let worker = {
    ///     let q = q.clone();
    ///     sylvan::spawn(move || {
    ///         while let Some(_item) = q.get() {
    ///             q.task_done();
    ///         }
    ///     })
    /// };
    /// q.join(); // every item put has been marked done
    /// assert!(q.is_empty());
    /// q.close();
    /// worker.join().unwrap();
    /// ```
    pub fn join(&self) {
        self.join_deadline(None);
    }

    /// Like [`join`](Queue::join), for at most `timeout`; returns whether all
    /// tasks were done.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = sylvan::sync::Queue::unbounded();
    /// assert!(q.join_timeout(Duration::from_millis(1))); // nothing put
    /// q.put(1).unwrap();
    /// assert!(!q.join_timeout(Duration::from_millis(1)));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_deadline(Instant::now().checked_add(timeout))
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> bool {
        let waiter = {
            let mut s = self.state.lock();
            if s.unfinished == 0 {
                return true;
            }
            s.joiners.push()
        };
        // Woken means the count reached zero (even if work was added since).
        waiters::wait(
            &crate::shim::park::WaitLabel("Queue::join"),
            &self.state,
            waiter,
            deadline,
            joiners,
            |_, ()| Vec::new(),
        )
        .is_some()
    }
}

/// The operations a [`select`](crate::select) performs on a queue: a ready
/// check, registration that claims the select when the queue is ready, and
/// the three ways a registered case ends (won, withdrawn, abandoned while
/// unwinding after it won).
impl<T> Queue<T> {
    /// A get that would not wait: `Some(Some(item))`, `Some(None)` when
    /// closed and drained, `None` when it would wait.
    pub(crate) fn poll_get(&self) -> Option<Option<T>> {
        let (item, wakers) = {
            let mut s = self.state.lock();
            match s.items.pop_front() {
                Some(item) => (Some(item), s.room_freed()),
                None if s.closed => return Some(None),
                None => return None,
            }
        };
        waiters::wake_all(wakers);
        Some(item)
    }

    /// A put that would not wait: `Ok(outcome)` when it completed (put, or
    /// refused because the queue is closed), `Err(item)` when it would wait.
    pub(crate) fn poll_put(&self, item: T) -> Result<Result<(), T>, T> {
        match self.try_put(item) {
            Ok(()) => Ok(Ok(())),
            Err(TryPutError::Closed(item)) => Ok(Err(item)),
            Err(TryPutError::Full(item)) => Err(item),
        }
    }

    /// Registers case `case` of a select as a getter.
    pub(crate) fn register_get(
        &self,
        token: &Arc<SelectToken>,
        case: usize,
    ) -> Registered<Option<T>, Option<T>> {
        let (reg, wakers) = {
            let mut s = self.state.lock();
            if !s.items.is_empty() || s.closed {
                if !token.try_claim(case) {
                    return Registered::Lost;
                }
                match s.items.pop_front() {
                    Some(item) => (Registered::Won(Some(item)), s.room_freed()),
                    None => return Registered::Won(None),
                }
            } else {
                let waiter = s.getters.push_select(token, case);
                // A rendezvous queue has room now: call a waiting putter
                // over (not this select's own put, if it has one).
                (Registered::Waiting(waiter), s.room_freed())
            }
        };
        waiters::wake_all(wakers);
        reg
    }

    /// Registers case `case` of a select as a putter of `*item`. `Won(true)`:
    /// the item was put (taken out of `item`); `Won(false)`: the queue is
    /// closed (the item stays in `item`).
    pub(crate) fn register_put(
        &self,
        item: &mut Option<T>,
        token: &Arc<SelectToken>,
        case: usize,
    ) -> Registered<bool, PutGrant> {
        let wakers = {
            let mut s = self.state.lock();
            if s.closed {
                return match token.try_claim(case) {
                    true => Registered::Won(false),
                    false => Registered::Lost,
                };
            }
            // A rendezvous put needs a getter other than this select's own.
            if !s.may_put_now(Some(token)) {
                let waiter = s.putters.push_select(token, case);
                // As a plain put's: room only its own getter's line had.
                let granted = if s.capacity == Some(0) {
                    s.room_freed()
                } else {
                    None
                };
                drop(s);
                waiters::wake_all(granted);
                return Registered::Waiting(waiter);
            }
            if !token.try_claim(case) {
                return Registered::Lost;
            }
            let taken = item.take().expect("a select puts its item once");
            match s.hand_over(taken) {
                Ok(w) => w,
                Err(back) => {
                    // The rendezvous getters that made room had left (and
                    // are gone from the line now): the select starts over.
                    *item = Some(back);
                    return Registered::Retry;
                }
            }
        };
        waiters::wake_all(wakers);
        Registered::Won(true)
    }

    /// Getters waiting right now (for tests).
    #[cfg(test)]
    pub(crate) fn waiting_getters(&self) -> usize {
        self.state.lock().getters.len()
    }

    /// Putters waiting, and room promised to woken putters (for tests).
    #[cfg(all(test, loom))]
    pub(crate) fn waiting_putters(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.putters.len(), s.reserved)
    }

    /// The getter `waiter` won its select: what it was handed.
    pub(crate) fn finish_get(&self, mut waiter: Waiter<Option<T>>) -> Option<T> {
        // The notifier claims, then hands over, under the lock: taking the
        // lock makes sure the hand-over is complete.
        let _s = self.state.lock();
        waiter.take_payload().expect(waiters::NOTIFIED)
    }

    /// The putter `waiter` won its select: put `item` in the room it was
    /// granted, or hand it back if the queue was closed instead (`Ok` with
    /// the outcome). `Err(item)`: a rendezvous queue's getter that granted
    /// the room left before the item went over, so nobody would take it:
    /// the select waits again (as `put` does).
    pub(crate) fn finish_put(
        &self,
        mut waiter: Waiter<PutGrant>,
        item: T,
    ) -> Result<Result<(), T>, T> {
        let wakers = {
            let mut s = self.state.lock();
            match waiter.take_payload().expect(waiters::NOTIFIED) {
                PutGrant::Closed => return Ok(Err(item)),
                PutGrant::Room => {
                    s.reserved -= 1;
                    if s.closed {
                        // Closed before the item went in (as `put`).
                        return Ok(Err(item));
                    }
                    // Rendezvous, the getter gone: the select starts over.
                    s.hand_over(item)?
                }
            }
        };
        waiters::wake_all(wakers);
        Ok(Ok(()))
    }

    /// The getter `waiter` lost its select (or the select gave up).
    pub(crate) fn withdraw_get(&self, waiter: Waiter<Option<T>>) {
        self.state.lock().getters.remove(&waiter);
    }

    /// The putter `waiter` lost its select (or the select gave up).
    pub(crate) fn withdraw_put(&self, waiter: Waiter<PutGrant>) {
        let wakers = {
            let mut s = self.state.lock();
            match s.putters.remove(&waiter) {
                // Keep the line moving should room be free behind it.
                true => s.room_freed(),
                false => None,
            }
        };
        waiters::wake_all(wakers);
    }

    /// The getter `waiter` won, but its select is unwinding: pass the item on.
    pub(crate) fn abandon_get(&self, mut waiter: Waiter<Option<T>>) {
        let wakers = {
            let mut s = self.state.lock();
            let item = waiter.take_payload().expect(waiters::NOTIFIED);
            getter_pass_on(&mut s, item)
        };
        waiters::wake_all(wakers);
    }

    /// The putter `waiter` won, but its select is unwinding: pass the room on.
    pub(crate) fn abandon_put(&self, mut waiter: Waiter<PutGrant>) {
        let wakers = {
            let mut s = self.state.lock();
            let grant = waiter.take_payload().expect(waiters::NOTIFIED);
            putter_pass_on(&mut s, grant)
        };
        waiters::wake_all(wakers);
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Queue")
            .field("len", &s.items.len())
            .field("capacity", &s.capacity)
            .field("closed", &s.closed)
            .field("getters", &s.getters.len())
            .field("putters", &s.putters.len())
            .finish()
    }
}
