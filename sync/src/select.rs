//! Waiting on several channel and queue operations at once: the mechanism
//! under [`sylvan::select!`](../../sylvan/macro.select.html).
//!
//! A [`Select`] collects cases — receive, send, get, put — and an optional
//! deadline, then [`wait`](Select::wait)s until exactly one case has
//! happened. Each case writes its outcome into a [`Cell`] the caller owns,
//! so cases of different types can share one select.
//!
//! How it stays exact:
//!
//! 1. Every case is tried without waiting, in a random order, so when
//!    several are ready each gets its fair turn. The first ready one runs;
//!    the others are untouched.
//! 2. Otherwise the selector registers one waiter per case, all sharing one
//!    token. A primitive that wants to hand a waiter something (an item, room
//!    to put, "closed") must first win that token, under its own lock; a
//!    waiter whose token is already taken is skipped, and the item goes to
//!    the next waiter or stays queued. A case found ready while registering
//!    claims the token itself.
//! 3. The selector parks until the token is taken (or the deadline passes and
//!    it takes the token itself), completes the winning case and withdraws
//!    the others. If the wait unwinds (cancellation, an enclosing timeout)
//!    after a case had already won, what that case was handed is passed on.
//!
//! So an item is only ever removed from a queue by the case that runs.
//!
//! One caveat, shared with Go's `select`: a send's value is produced before
//! the select starts and dropped if another case wins. A send to a
//! zero-capacity channel completes only into a receiver's hands: if the
//! receivers that made room for it left (a timeout, or their own select won
//! by another case), it waits again, and a select with it starts over.
//!
//! ```
//! use std::cell::Cell;
//! use std::time::Duration;
//! use sylvan::sync::channel;
//! use sylvan::sync::select::{Select, Selected};
//!
//! let (tx1, rx1) = channel::unbounded::<u32>();
//! let (_tx2, rx2) = channel::unbounded::<&str>();
//! tx1.send(7).unwrap();
//!
//! let (a, b) = (Cell::new(None), Cell::new(None));
//! let mut sel = Select::new();
//! sel.recv(&rx1, &a);
//! sel.recv(&rx2, &b);
//! sel.timeout(Duration::from_secs(1));
//! match sel.wait() {
//!     Selected::Case(0) => assert_eq!(a.take(), Some(Ok(7))),
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert!(rx1.is_empty());
//! ```

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::channel::{Receiver, RecvError, SendError, Sender};
use crate::queue::{PutGrant, Queue};
use crate::shim::{park, Arc};
use crate::waiters::{Registered, SelectToken, Waiter};

/// Which way a [`Select`] ended.
///
/// ```
/// use std::cell::Cell;
/// use std::time::Duration;
/// use sylvan::sync::{channel, select::{Select, Selected}};
///
/// let (_tx, rx) = channel::unbounded::<u8>();
/// let out = Cell::new(None);
/// let mut sel = Select::new();
/// sel.recv(&rx, &out);
/// sel.timeout(Duration::from_millis(2));
/// assert_eq!(sel.wait(), Selected::Timeout); // nothing arrived
/// assert!(out.take().is_none()); // the case did not run
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected {
    /// The case with this index (in the order the cases were added) ran;
    /// its outcome is in its cell.
    Case(usize),
    /// The deadline passed first; no case ran.
    Timeout,
    /// [`try_select`](Select::try_select) found no case ready; none ran.
    Default,
}

/// A set of operations to wait on; see the [module docs](self).
///
/// ```
/// use std::cell::Cell;
/// use sylvan::sync::select::{Select, Selected};
/// use sylvan::sync::Queue;
///
/// let (jobs, results) = (Queue::unbounded(), Queue::bounded(1));
/// jobs.put("crawl").unwrap();
/// let (got, put) = (Cell::new(None), Cell::new(None));
/// let mut sel = Select::new();
/// let get_case = sel.get(&jobs, &got);
/// sel.put(&results, 99, &put);
/// // Both are ready: either may run, and only that one takes effect.
/// match sel.wait() {
///     Selected::Case(i) if i == get_case => assert_eq!(got.take(), Some(Some("crawl"))),
///     Selected::Case(_) => assert_eq!((put.take(), results.len()), (Some(Ok(())), 1)),
///     other => panic!("{other:?}"),
/// }
/// assert_ne!(jobs.is_empty(), results.len() == 1); // exactly one took effect
/// ```
pub struct Select<'a> {
    cases: Vec<Box<dyn Case + 'a>>,
    deadline: Option<Instant>,
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl<'a> Select<'a> {
    /// An empty select: no cases, no deadline.
    ///
    /// ```
    /// use sylvan::sync::select::{Select, Selected};
    /// // No cases: try_select has nothing to run.
    /// assert_eq!(Select::new().try_select(), Selected::Default);
    /// ```
    pub fn new() -> Select<'a> {
        Select {
            cases: Vec::new(),
            deadline: None,
        }
    }

    fn add(&mut self, case: Box<dyn Case + 'a>) -> usize {
        self.cases.push(case);
        self.cases.len() - 1
    }

    /// Adds a receive from `rx`; if it runs, `out` gets what
    /// [`Receiver::recv`] would have returned (an error once the channel is
    /// empty and every sender is gone). Returns the case's index.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use sylvan::sync::{channel, select::{Select, Selected}};
    ///
    /// let (tx, rx) = channel::unbounded::<u8>();
    /// drop(tx);
    /// let out = Cell::new(None);
    /// let mut sel = Select::new();
    /// let i = sel.recv(&rx, &out);
    /// assert_eq!(sel.wait(), Selected::Case(i));
    /// assert_eq!(out.take(), Some(Err(channel::RecvError))); // every sender gone
    /// ```
    pub fn recv<T>(
        &mut self,
        rx: &'a Receiver<T>,
        out: &'a Cell<Option<Result<T, RecvError>>>,
    ) -> usize {
        self.add(Box::new(GetCase {
            queue: rx.queue(),
            out,
            map: |item| item.ok_or(RecvError),
            waiter: None,
        }))
    }

    /// Adds a send of `value` on `tx`; if it runs, `out` gets what
    /// [`Sender::send`] would have returned. If another case runs, `value` is
    /// dropped. Returns the case's index.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use sylvan::sync::{channel, select::{Select, Selected}};
    ///
    /// let (tx, rx) = channel::bounded(1);
    /// let out = Cell::new(None);
    /// let mut sel = Select::new();
    /// let i = sel.send(&tx, "hello", &out);
    /// assert_eq!(sel.wait(), Selected::Case(i));
    /// assert_eq!(out.take(), Some(Ok(())));
    /// assert_eq!(rx.recv(), Ok("hello"));
    /// ```
    pub fn send<T>(
        &mut self,
        tx: &'a Sender<T>,
        value: T,
        out: &'a Cell<Option<Result<(), SendError<T>>>>,
    ) -> usize {
        self.add(Box::new(PutCase {
            queue: tx.queue(),
            item: Some(value),
            out,
            map: |r| r.map_err(SendError),
            waiter: None,
        }))
    }

    /// Adds a get from `queue`; if it runs, `out` gets what [`Queue::get`]
    /// would have returned (`None` once the queue is closed and drained).
    /// Returns the case's index.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use sylvan::sync::{select::{Select, Selected}, Queue};
    ///
    /// let q = Queue::<u8>::unbounded();
    /// q.close();
    /// let out = Cell::new(None);
    /// let mut sel = Select::new();
    /// sel.get(&q, &out);
    /// assert_eq!(sel.wait(), Selected::Case(0));
    /// assert_eq!(out.take(), Some(None)); // closed and drained
    /// ```
    pub fn get<T>(&mut self, queue: &'a Queue<T>, out: &'a Cell<Option<Option<T>>>) -> usize {
        self.add(Box::new(GetCase {
            queue,
            out,
            map: |item| item,
            waiter: None,
        }))
    }

    /// Adds a put of `item` into `queue`; if it runs, `out` gets what
    /// [`Queue::put`] would have returned. If another case runs, `item` is
    /// dropped. Returns the case's index.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use sylvan::sync::{select::{Select, Selected}, Queue};
    ///
    /// let q = Queue::bounded(0); // nobody gets: the put cannot happen
    /// let out = Cell::new(None);
    /// let mut sel = Select::new();
    /// sel.put(&q, 'x', &out);
    /// assert_eq!(sel.try_select(), Selected::Default);
    /// assert!(out.take().is_none() && q.is_empty());
    /// ```
    pub fn put<T>(
        &mut self,
        queue: &'a Queue<T>,
        item: T,
        out: &'a Cell<Option<Result<(), T>>>,
    ) -> usize {
        self.add(Box::new(PutCase {
            queue,
            item: Some(item),
            out,
            map: |r| r,
            waiter: None,
        }))
    }

    /// Gives up `dur` from now (or at the earlier deadline already set).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sylvan::sync::select::{Select, Selected};
    ///
    /// let start = Instant::now();
    /// let mut sel = Select::new();
    /// sel.timeout(Duration::from_millis(3));
    /// assert_eq!(sel.wait(), Selected::Timeout); // no cases: a plain sleep
    /// assert!(start.elapsed() >= Duration::from_millis(3));
    /// ```
    pub fn timeout(&mut self, dur: Duration) {
        if let Some(at) = Instant::now().checked_add(dur) {
            self.deadline(at);
        }
    }

    /// Gives up at `at` (or at the earlier deadline already set).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sylvan::sync::select::{Select, Selected};
    ///
    /// let mut sel = Select::new();
    /// sel.deadline(Instant::now() + Duration::from_secs(60));
    /// sel.timeout(Duration::from_millis(1)); // the earlier one wins
    /// assert_eq!(sel.wait(), Selected::Timeout);
    /// ```
    pub fn deadline(&mut self, at: Instant) {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// Runs one ready case if there is one, without waiting: returns
    /// [`Selected::Default`] otherwise.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use sylvan::sync::{channel, select::{Select, Selected}};
    ///
    /// let (tx, rx) = channel::unbounded();
    /// let out = Cell::new(None);
    /// let mut sel = Select::new();
    /// sel.recv(&rx, &out);
    /// assert_eq!(sel.try_select(), Selected::Default); // empty: returns at once
    ///
    /// tx.send(5).unwrap();
    /// let mut sel = Select::new();
    /// sel.recv(&rx, &out);
    /// assert_eq!(sel.try_select(), Selected::Case(0));
    /// assert_eq!(out.take(), Some(Ok(5)));
    /// ```
    pub fn try_select(mut self) -> Selected {
        let order = shuffled(self.cases.len());
        self.poll_all(&order).unwrap_or(Selected::Default)
    }

    /// Waits until one case has run and returns which, or
    /// [`Selected::Timeout`] once the deadline has passed with none run.
    /// With no cases and no deadline it waits until cancelled. A
    /// cancellation point; works in fibers and plain threads.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use sylvan::sync::{channel, select::{Select, Selected}};
    ///
    /// let (tx, rx) = channel::unbounded();
    /// sylvan::spawn(move || tx.send("late").unwrap());
    /// let out = Cell::new(None);
    /// let mut sel = Select::new();
    /// sel.recv(&rx, &out);
    /// assert_eq!(sel.wait(), Selected::Case(0)); // parks until the send
    /// assert_eq!(out.take(), Some(Ok("late")));
    /// ```
    pub fn wait(mut self) -> Selected {
        loop {
            if let Some(done) = self.wait_once() {
                return done;
            }
        }
    }

    /// One round of [`wait`](Select::wait): `None` when the winning case
    /// could not complete after all (see [`Case::finish`]) and every case
    /// has been withdrawn, so the select starts over.
    fn wait_once(&mut self) -> Option<Selected> {
        let order = shuffled(self.cases.len());
        if let Some(done) = self.poll_all(&order) {
            return Some(done);
        }
        let deadline = self.deadline;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(Selected::Timeout);
        }
        let token = Arc::new(SelectToken::new());
        let mut reg = Registration {
            cases: &mut self.cases,
            registered: Vec::with_capacity(order.len()),
            token: &token,
            finished: false,
        };
        let mut claimed = None;
        for &i in &order {
            match reg.cases[i].register(&token, i) {
                Reg::Won => {
                    claimed = Some(i);
                    break;
                }
                Reg::Lost => break,
                Reg::Waiting => reg.registered.push(i),
                Reg::Retry => {
                    reg.withdraw_except(None);
                    return None;
                }
            }
        }
        let winner = match claimed {
            Some(i) => i,
            None => loop {
                if let Some(w) = token.winner() {
                    if reg.cases[w].finish() {
                        break w;
                    }
                    reg.withdraw_except(None);
                    return None;
                }
                match deadline {
                    None => park::park_for(&crate::shim::park::WaitLabel("select!")),
                    Some(at) => {
                        if park::park_until_for(at, &crate::shim::park::WaitLabel("select!"))
                            && token.try_abort()
                        {
                            reg.withdraw_except(None);
                            return Some(Selected::Timeout);
                        }
                    }
                }
            },
        };
        reg.withdraw_except(Some(winner));
        Some(Selected::Case(winner))
    }

    fn poll_all(&mut self, order: &[usize]) -> Option<Selected> {
        order
            .iter()
            .find(|&&i| self.cases[i].poll())
            .map(|&i| Selected::Case(i))
    }
}

/// The registered cases of a waiting select. Dropped without
/// [`withdraw_except`](Registration::withdraw_except) only while unwinding:
/// then it gives up the select, or passes on what the winner was handed.
struct Registration<'s, 'a> {
    cases: &'s mut Vec<Box<dyn Case + 'a>>,
    registered: Vec<usize>,
    token: &'s SelectToken,
    finished: bool,
}

impl Registration<'_, '_> {
    fn withdraw_except(&mut self, winner: Option<usize>) {
        self.finished = true;
        for &i in &self.registered {
            if Some(i) != winner {
                self.cases[i].withdraw();
            }
        }
    }
}

impl Drop for Registration<'_, '_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let winner = match self.token.try_abort() {
            true => None,
            false => self.token.winner(),
        };
        if let Some(w) = winner {
            self.cases[w].abandon();
        }
        self.withdraw_except(winner);
    }
}

enum Reg {
    Won,
    Lost,
    Waiting,
    /// Claimed the select but could not complete (see [`Case::finish`]).
    Retry,
}

/// One case of a select over some primitive.
trait Case {
    /// Runs the operation if it would not wait; whether it ran.
    fn poll(&mut self) -> bool;
    /// Runs it if ready (claiming the select), else queues a waiter.
    fn register(&mut self, token: &Arc<SelectToken>, index: usize) -> Reg;
    /// This case's waiter won: complete the operation. `false` if it cannot
    /// complete after all (a rendezvous put whose getter left before the
    /// item went over): the select starts over, this case with its item.
    fn finish(&mut self) -> bool;
    /// This case's waiter lost (or the select gave up): dequeue it.
    fn withdraw(&mut self);
    /// This case's waiter won but the select is unwinding: pass on what it
    /// was handed.
    fn abandon(&mut self);
}

struct GetCase<'a, T, R> {
    queue: &'a Queue<T>,
    out: &'a Cell<Option<R>>,
    map: fn(Option<T>) -> R,
    waiter: Option<Waiter<Option<T>>>,
}

impl<T, R> Case for GetCase<'_, T, R> {
    fn poll(&mut self) -> bool {
        match self.queue.poll_get() {
            Some(item) => {
                self.out.set(Some((self.map)(item)));
                true
            }
            None => false,
        }
    }

    fn register(&mut self, token: &Arc<SelectToken>, index: usize) -> Reg {
        match self.queue.register_get(token, index) {
            Registered::Won(item) => {
                self.out.set(Some((self.map)(item)));
                Reg::Won
            }
            Registered::Lost => Reg::Lost,
            Registered::Waiting(w) => {
                self.waiter = Some(w);
                Reg::Waiting
            }
            Registered::Retry => Reg::Retry,
        }
    }

    fn finish(&mut self) -> bool {
        if let Some(w) = self.waiter.take() {
            self.out.set(Some((self.map)(self.queue.finish_get(w))));
        }
        true
    }

    fn withdraw(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.queue.withdraw_get(w);
        }
    }

    fn abandon(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.queue.abandon_get(w);
        }
    }
}

struct PutCase<'a, T, R> {
    queue: &'a Queue<T>,
    item: Option<T>,
    out: &'a Cell<Option<R>>,
    map: fn(Result<(), T>) -> R,
    waiter: Option<Waiter<PutGrant>>,
}

impl<T, R> Case for PutCase<'_, T, R> {
    fn poll(&mut self) -> bool {
        let Some(item) = self.item.take() else {
            return false;
        };
        match self.queue.poll_put(item) {
            Ok(done) => {
                self.out.set(Some((self.map)(done)));
                true
            }
            Err(item) => {
                self.item = Some(item);
                false
            }
        }
    }

    fn register(&mut self, token: &Arc<SelectToken>, index: usize) -> Reg {
        match self.queue.register_put(&mut self.item, token, index) {
            Registered::Won(true) => {
                self.out.set(Some((self.map)(Ok(()))));
                Reg::Won
            }
            Registered::Won(false) => {
                let item = self.item.take().expect("a refused put keeps its item");
                self.out.set(Some((self.map)(Err(item))));
                Reg::Won
            }
            Registered::Lost => Reg::Lost,
            Registered::Waiting(w) => {
                self.waiter = Some(w);
                Reg::Waiting
            }
            Registered::Retry => Reg::Retry,
        }
    }

    fn finish(&mut self) -> bool {
        if let (Some(w), Some(item)) = (self.waiter.take(), self.item.take()) {
            match self.queue.finish_put(w, item) {
                Ok(done) => self.out.set(Some((self.map)(done))),
                Err(item) => {
                    self.item = Some(item);
                    return false;
                }
            }
        }
        true
    }

    fn withdraw(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.queue.withdraw_put(w);
        }
    }

    fn abandon(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.queue.abandon_put(w);
        }
    }
}

/// `0..n` in a random order (Fisher–Yates over a per-thread xorshift).
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if cfg!(all(test, loom)) {
        // A loom model must replay each schedule exactly: keep the order.
        return order;
    }
    for i in (1..n).rev() {
        let j = (next_random() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

fn next_random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
    }
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (bounded) until `queue` has `n` waiting getters.
    fn wait_for_getters<T>(queue: &Queue<T>, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while queue.waiting_getters() != n {
            assert!(Instant::now() < deadline, "the select never registered");
            std::thread::yield_now();
        }
    }

    #[test]
    fn an_item_offered_to_a_decided_select_stays_queued() {
        let (q1, q2) = (Arc::new(Queue::unbounded()), Arc::new(Queue::unbounded()));
        let selector = {
            let (q1, q2) = (q1.clone(), q2.clone());
            std::thread::spawn(move || {
                let (a, b) = (Cell::new(None), Cell::new(None));
                let mut sel = Select::new();
                sel.get(&q1, &a);
                sel.get(&q2, &b);
                let which = sel.wait();
                (which, a.take(), b.take())
            })
        };
        wait_for_getters(&q1, 1);
        wait_for_getters(&q2, 1);
        q1.put(1).unwrap();
        // Whether or not the selector has withdrawn from q2 yet, this item
        // must not go to it.
        q2.put(2).unwrap();
        let (which, a, b) = selector.join().unwrap();
        assert_eq!(which, Selected::Case(0));
        assert_eq!((a, b), (Some(Some(1)), None));
        assert_eq!(q2.try_get(), Some(2));
        assert_eq!((q1.waiting_getters(), q2.waiting_getters()), (0, 0));
    }

    #[test]
    fn a_timed_out_select_leaves_no_waiters() {
        let (q1, q2) = (Queue::<u8>::bounded(1), Queue::<u8>::bounded(1));
        q2.put(0).unwrap();
        let (a, b) = (Cell::new(None), Cell::new(None));
        let mut sel = Select::new();
        sel.get(&q1, &a);
        sel.put(&q2, 9, &b);
        sel.timeout(Duration::from_millis(10));
        assert_eq!(sel.wait(), Selected::Timeout);
        assert_eq!((a.take(), b.take()), (None, None));
        assert_eq!(q1.waiting_getters(), 0);
        assert_eq!(q2.try_get(), Some(0));
        assert!(q2.is_empty(), "the timed-out put did not happen");
        // The queues still work for plain callers.
        q2.put(1).unwrap();
        assert_eq!(q2.get(), Some(1));
    }

    #[test]
    fn shuffle_is_a_permutation_and_varies() {
        // Miri runs a tenth of the rounds; the bound stays far below the
        // expected quarter.
        let (rounds, least) = if cfg!(miri) { (400, 50) } else { (4000, 800) };
        let mut firsts = [0usize; 4];
        for _ in 0..rounds {
            let mut o = shuffled(4);
            firsts[o[0]] += 1;
            o.sort_unstable();
            assert_eq!(o, [0, 1, 2, 3]);
        }
        assert!(firsts.iter().all(|&n| n > least), "{firsts:?}");
    }
}
