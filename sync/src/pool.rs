//! [`Pool`]: run at most `size` fibers at once (gevent's `Pool`).

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use sylvan_runtime::JoinHandle;

use crate::channel;
use crate::semaphore::{OwnedSemaphorePermit, Semaphore};
use crate::wait_group::WaitGroup;

/// A bounded set of fibers: [`spawn`](Pool::spawn) waits while `size`
/// fibers of the pool are running, [`join`](Pool::join) waits for all of
/// them. Cloning a `Pool` gives another handle to the same pool.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use sylvan::sync::Pool;
///
/// let pool = Pool::new(4);
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..20 {
///     let done = done.clone();
///     pool.spawn(move || {
///         sylvan::sleep(std::time::Duration::from_millis(1));
///         done.fetch_add(1, Ordering::SeqCst);
///     });
/// }
/// pool.join();
/// assert_eq!(done.load(Ordering::SeqCst), 20);
///
/// let squares = pool.map(1..=5u64, |x| x * x);
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
#[derive(Clone)]
pub struct Pool {
    size: usize,
    slots: Arc<Semaphore>,
    running: Arc<WaitGroup>,
}

/// Marks a pool fiber finished (also if it is dropped without running).
struct Finished {
    slot: Option<OwnedSemaphorePermit>,
    running: Arc<WaitGroup>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        // The slot goes back first: whoever `join` wakes must find it free.
        drop(self.slot.take());
        self.running.done();
    }
}

impl Pool {
    /// A pool running at most `size` fibers at once.
    ///
    /// # Panics
    /// If `size` is 0 (nothing could ever run).
    ///
    /// ```
    /// let pool = sylvan::sync::Pool::new(4);
    /// assert_eq!((pool.size(), pool.free_count(), pool.running()), (4, 4, 0));
    /// ```
    pub fn new(size: usize) -> Pool {
        assert!(
            size > 0,
            "Pool::new(0) could never run a fiber; use a size of at least 1"
        );
        Pool {
            size,
            slots: Arc::new(Semaphore::new(size)),
            running: Arc::new(WaitGroup::new()),
        }
    }

    /// Spawns `f` as a fiber of the pool, first waiting while `size` of its
    /// fibers are running. A cancellation point.
    ///
    /// ```
    /// let pool = sylvan::sync::Pool::new(2);
    /// let handles: Vec<_> = (0..5).map(|i| pool.spawn(move || i * i)).collect();
    /// let squares: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9, 16]);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.slots.acquire_owned();
        self.running.add(1);
        let finished = Finished {
            slot: Some(slot),
            running: self.running.clone(),
        };
        sylvan_runtime::spawn(move || {
            let _finished = finished;
            f()
        })
    }

    /// Waits until every fiber of the pool has finished.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let (pool, n) = (sylvan::sync::Pool::new(2), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..4 {
    ///     let n = n.clone();
    ///     pool.spawn(move || n.fetch_add(1, Ordering::SeqCst));
    /// }
    /// pool.join();
    /// assert_eq!(n.load(Ordering::SeqCst), 4);
    /// ```
    pub fn join(&self) {
        self.running.wait();
    }

    /// Like [`join`](Pool::join), for at most `timeout`; returns whether all
    /// finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = sylvan::sync::Pool::new(1);
    /// assert!(pool.join_timeout(Duration::from_millis(1))); // nothing running
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.running.wait_timeout(timeout)
    }

    /// The most fibers that run at once.
    ///
    /// ```
    /// assert_eq!(sylvan::sync::Pool::new(8).size(), 8);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Fibers that could start right now without waiting.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Event, Pool};
    /// let (pool, go) = (Pool::new(2), Arc::new(Event::new()));
    /// let go2 = go.clone();
    /// pool.spawn(move || go2.wait());
    /// assert_eq!(pool.free_count(), 1);
    /// go.set();
    /// pool.join();
    /// assert_eq!(pool.free_count(), 2);
    /// ```
    pub fn free_count(&self) -> usize {
        self.slots.available_permits()
    }

    /// Fibers of the pool running (or about to) right now: the slots held.
    /// (Counting slots rather than the join count keeps this at most the
    /// pool's size while a finishing fiber hands its slot on.)
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Event, Pool};
    /// let (pool, go) = (Pool::new(3), Arc::new(Event::new()));
    /// for _ in 0..2 {
    ///     let go = go.clone();
    ///     pool.spawn(move || go.wait());
    /// }
    /// assert_eq!(pool.running(), 2);
    /// go.set();
    /// pool.join();
    /// assert_eq!(pool.running(), 0);
    /// ```
    pub fn running(&self) -> usize {
        self.size - self.slots.available_permits()
    }

    /// Applies `f` to every item on the pool's fibers and returns the results
    /// in input order.
    ///
    /// # Panics
    /// Re-raises the first panic of `f` (after the other items finished).
    ///
    /// ```
    /// let pool = sylvan::sync::Pool::new(3);
    /// let lens = pool.map(vec!["a", "bb", "ccc", "dddd"], |s| s.len());
    /// assert_eq!(lens, [1, 2, 3, 4]); // input order, whatever order they finished in
    /// ```
    pub fn map<I, F, T>(&self, items: I, f: F) -> Vec<T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        let mut first_panic = None;
        for h in handles {
            match h.join() {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() && first_panic.is_none() => {
                    first_panic = Some(e.into_panic())
                }
                Err(e) if e.is_panic() => {}
                Err(e) => panic!("Pool::map: {e}"),
            }
        }
        if let Some(p) = first_panic {
            std::panic::resume_unwind(p);
        }
        out
    }

    /// Applies `f` to every item on the pool's fibers and yields the results
    /// as they complete (any order). Items are started lazily, as the
    /// iterator is consumed: at most `size` results are started and not yet
    /// taken at any time (and at most `size` fibers run at once, shared with
    /// the pool's other work). Dropping the iterator starts no more items;
    /// those running finish on their own.
    ///
    /// # Panics
    /// The iterator re-raises the panic of an item (or of `items` itself)
    /// when its turn comes, and then ends: `next` panics, as
    /// [`map`](Pool::map) does.
    /// It panics with a message if an item's fiber was cancelled.
    ///
    /// ```
    /// let pool = sylvan::sync::Pool::new(3);
    /// let mut lens: Vec<usize> = pool
    ///     .imap_unordered(["a", "bbb", "cc"], |s| s.len())
    ///     .collect();
    /// lens.sort();
    /// assert_eq!(lens, [1, 2, 3]);
    /// ```
    pub fn imap_unordered<I, F, T>(&self, items: I, f: F) -> impl Iterator<Item = T>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let (tx, results) = channel::unbounded();
        // A credit per result started and not yet taken.
        let credits = Arc::new(Semaphore::new(self.size));
        let pool = self.clone();
        let f = Arc::new(f);
        let items = items.into_iter();
        let feeder_credits = credits.clone();
        // The feeder starts an item per credit, each on a slot of the pool;
        // the channel closes when it and every item's fiber have dropped
        // their senders.
        let feeder = sylvan_runtime::spawn(move || {
            let fed = catch_unwind(AssertUnwindSafe(|| {
                for item in items {
                    feeder_credits.acquire().forget();
                    let (tx, f) = (tx.clone(), f.clone());
                    pool.spawn(move || {
                        let outcome = match catch_unwind(AssertUnwindSafe(|| f(item))) {
                            Ok(v) => Outcome::Done(v),
                            Err(p) if sylvan_runtime::current().is_cancelled() => {
                                // Still ends as cancelled.
                                let _ = tx.send(Outcome::Cancelled);
                                resume_unwind(p)
                            }
                            Err(p) => Outcome::Panicked(p),
                        };
                        let _ = tx.send(outcome);
                    });
                }
            }));
            // The items' iterator panicked: so does the sequence. (A feeder
            // cancelled by the iterator's drop just ends.)
            if let Err(p) = fed {
                if sylvan_runtime::current().is_cancelled() {
                    resume_unwind(p);
                }
                let _ = tx.send(Outcome::Panicked(p));
            }
        });
        ImapUnordered {
            results,
            credits,
            feeder,
            ended: false,
        }
    }
}

/// What an item's fiber of [`Pool::imap_unordered`] reports.
enum Outcome<T> {
    Done(T),
    Panicked(Box<dyn Any + Send>),
    Cancelled,
}

/// The iterator [`Pool::imap_unordered`] returns.
struct ImapUnordered<T> {
    results: channel::Receiver<Outcome<T>>,
    credits: Arc<Semaphore>,
    feeder: JoinHandle<()>,
    ended: bool,
}

impl<T> Iterator for ImapUnordered<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.ended {
            return None;
        }
        match self.results.recv() {
            Ok(Outcome::Done(v)) => {
                self.credits.add_permits(1);
                Some(v)
            }
            Ok(Outcome::Panicked(p)) => {
                self.ended = true;
                resume_unwind(p)
            }
            Ok(Outcome::Cancelled) => {
                self.ended = true;
                panic!("Pool::imap_unordered: an item's fiber was cancelled before it finished")
            }
            Err(_) => {
                self.ended = true;
                None
            }
        }
    }
}

impl<T> Drop for ImapUnordered<T> {
    fn drop(&mut self) {
        // Start no more items (the feeder waits for a credit, or a slot).
        self.feeder.cancel();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("running", &self.running())
            .finish()
    }
}
