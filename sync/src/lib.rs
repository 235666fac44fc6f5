//! Synchronisation primitives for sylvan fibers and plain threads.
//!
//! Every primitive here works between fibers on the same worker, fibers on
//! different workers and plain OS threads, in any mix: a blocking call parks a
//! fiber (its worker runs others) and blocks a plain thread. Blocking calls
//! are cancellation points and are interrupted cleanly by
//! `JoinHandle::cancel` and `sylvan::timeout`; a waiter interrupted that way
//! loses nothing and takes nothing meant for someone else (see `waiters`).
//!
//! Built so far: [`Event`], [`AsyncResult`], [`Semaphore`], [`Mutex`],
//! [`RwLock`], [`Condvar`], [`Queue`], [`channel`]s and [`WaitGroup`].
//! `Barrier`, `Pool` and `Group` are to come (the sync issue).

#![forbid(unsafe_code)]

mod async_result;
pub mod channel;
mod condvar;
mod event;
mod mutex;
mod queue;
mod rwlock;
mod semaphore;
mod wait_group;
mod waiters;

pub use async_result::AsyncResult;
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use queue::{Queue, TryPutError};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use wait_group::WaitGroup;
