//! Synchronisation primitives for sylvan fibers and plain threads.
//!
//! Every primitive here works between fibers on the same worker, fibers on
//! different workers and plain OS threads, in any mix: a blocking call parks a
//! fiber (its worker runs others) and blocks a plain thread. Blocking calls
//! are cancellation points and are interrupted cleanly by
//! `JoinHandle::cancel` and `sylvan::timeout`; a waiter interrupted that way
//! loses nothing and takes nothing meant for someone else (see `waiters`).
//!
//! The primitives: [`Event`], [`AsyncResult`], [`Semaphore`], [`Mutex`],
//! [`RwLock`], [`Condvar`], [`Queue`], [`channel`]s, [`WaitGroup`],
//! [`Barrier`], [`Pool`] and [`Group`]. All waiter bookkeeping lives in one
//! private module (`waiters`) that every primitive shares.

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
