//! Synchronisation primitives for sylvan fibers and plain threads.
//!
//! Every primitive here works between fibers on the same worker, fibers on
//! different workers and plain OS threads, in any mix: a blocking call parks a
//! fiber (its worker runs others) and blocks a plain thread. Blocking calls
//! are cancellation points and are interrupted cleanly by
//! `JoinHandle::cancel` and `sylvan::timeout`; a waiter interrupted that way
//! loses nothing and takes nothing meant for someone else (see `waiters`).
//!
//! Built so far: [`Event`] and [`Semaphore`]. `AsyncResult`, `Mutex`,
//! `RwLock`, `Condvar`, `Queue`, channels, `WaitGroup`, `Barrier`, `Pool`
//! and `Group` are to come (the sync issue).

#![forbid(unsafe_code)]

mod event;
mod semaphore;
mod waiters;

pub use event::Event;
pub use semaphore::{Semaphore, SemaphorePermit};
