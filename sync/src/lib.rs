//! Synchronisation primitives for sylvan fibers and plain threads.
//!
//! Fibers must not wait with std's locks, channels or condition variables:
//! those block the worker thread, and every other fiber on that worker
//! waits with it. The types here wait by *parking* the calling fiber (its
//! worker runs other fibers meanwhile) and, called from a plain OS thread,
//! by blocking that thread. Uncontended operations never park.
//!
//! # Which primitive
//!
//! | You want to… | Use |
//! |---|---|
//! | protect data that several fibers change | [`Mutex`] (no poisoning; the guard may be held across blocking calls) |
//! | many readers, the odd writer | [`RwLock`] |
//! | wait until a condition on locked data holds | [`Condvar`] with [`Mutex`] |
//! | pass values from producers to consumers, with an end | [`channel::bounded`] / [`channel::unbounded`] (end when every sender drops) |
//! | a work queue with an explicit close and `task_done`/`join` | [`Queue`] |
//! | wait on several channels or queues at once | [`sylvan::select!`](../sylvan/macro.select.html), [`select::Select`] |
//! | tell everybody "it happened" (a flag, once or repeatedly) | [`Event`] |
//! | hand one value to everybody waiting for it (a future, a promise) | [`AsyncResult`] |
//! | limit how many do something at once | [`Semaphore`] |
//! | run many jobs, at most *n* at a time, and collect results | [`Pool`] (`map`, `imap_unordered`) |
//! | keep track of fibers you spawned, wait for or cancel them all | [`Group`] |
//! | wait until *n* things are done (Go's `sync.WaitGroup`) | [`WaitGroup`] |
//! | make *n* parties meet before going on | [`Barrier`] |
//! | port std code by changing `use` lines only | [`mpsc`] and [`poison`] (std's signatures and error types) |
//!
//! # Fibers and threads, in any mix
//!
//! Every primitive works between fibers on the same worker, fibers on
//! different workers, fibers of different runtimes and plain OS threads:
//! a blocking call parks a fiber and blocks a thread, and a wake-up from
//! either side reaches either kind of waiter.
//!
//! ```
//! use std::sync::Arc;
//! use sylvan::sync::{channel, Event};
//!
//! let (tx, rx) = channel::bounded(1);
//! let done = Arc::new(Event::new());
//! // A plain OS thread produces, a fiber consumes…
//! let producer = std::thread::spawn(move || (1..=10).for_each(|i| tx.send(i).unwrap()));
//! let consumer = {
//!     let done = done.clone();
//!     sylvan::spawn(move || {
//!         let sum: u32 = rx.iter().sum();
//!         done.set();
//!         sum
//!     })
//! };
//! done.wait(); // …and the main thread waits for the fiber.
//! assert_eq!(consumer.join().unwrap(), 55);
//! producer.join().unwrap();
//! ```
//!
//! # Fairness
//!
//! Waiters are served in FIFO order: [`Mutex`] ownership, [`Semaphore`]
//! permits and [`Queue`]/[`channel`] items go to the longest-waiting fiber
//! or thread, handed over directly (a newcomer cannot barge in ahead of
//! someone already queued: `try_lock`/`try_acquire` fail while others
//! wait). [`RwLock`] prefers writers but admits all queued readers between
//! two writers, so neither side starves. [`select!`](../sylvan/macro.select.html)
//! tries its ready cases in random order.
//!
//! # Cancellation and timeouts
//!
//! Every blocking call is a cancellation point: `JoinHandle::cancel` or an
//! expiring `sylvan::timeout` unwinds the fiber out of the wait, running
//! destructors (guards unlock, permits return). A waiter interrupted that
//! way loses nothing and takes nothing meant for someone else: an item,
//! permit or lock that was being handed to it at that moment is passed on to
//! the next waiter or back to the primitive. The `_timeout` variants give up
//! without unwinding and return the value they could not deliver (`put`
//! and `send` hand the item back in their error).
//!
//! ```
//! use std::time::Duration;
//! use std::sync::Arc;
//! use sylvan::sync::Queue;
//!
//! let q = Arc::new(Queue::unbounded());
//! let getter = {
//!     let q = q.clone();
//!     sylvan::spawn(move || q.get())
//! };
//! getter.cancel(); // unwinds out of `get` (or before it, if not yet parked)
//! assert!(getter.join().unwrap_err().is_cancelled());
//! q.put("kept").unwrap(); // nobody took it on the cancelled fiber's behalf
//! assert_eq!(q.try_get(), Some("kept"));
//!
//! // The same through a timeout scope:
//! let r = sylvan::timeout(Duration::from_millis(2), || q.get());
//! assert!(r.is_err()); // the `get` unwound and took nothing
//! q.put("next").unwrap();
//! assert_eq!(q.try_get(), Some("next"));
//! ```
//!
//! All waiter bookkeeping lives in one private module (`waiters`) that every
//! primitive shares; parking follows the runtime's protocol
//! (`sylvan::park`).

#![deny(unsafe_code)] // allowed in one place: `waiters::handoff`

mod async_result;
mod barrier;
pub mod channel;
mod condvar;
mod event;
mod group;
#[cfg(all(test, loom))]
mod loom_models;
pub mod mpsc;
mod mutex;
pub mod poison;
mod pool;
mod queue;
mod rwlock;
pub mod select;
mod semaphore;
mod shim;
mod wait_group;
mod waiters;

pub use async_result::AsyncResult;
pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use group::Group;
pub use mutex::{Mutex, MutexGuard};
pub use pool::Pool;
pub use queue::{Queue, TryPutError};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use wait_group::WaitGroup;
