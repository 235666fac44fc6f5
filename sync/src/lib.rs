//! Synchronisation primitives for sylvan fibers and plain threads: `Event`,
//! `AsyncResult`, `Semaphore`, `Mutex`, `RwLock`, `Condvar`, `Queue`,
//! channels, `WaitGroup`, `Barrier`, `Pool` and `Group`.
//!
//! Not built yet: this crate is the place for the sync issue's work, which
//! builds on the runtime's parking protocol (`sylvan_runtime::park`).

#![forbid(unsafe_code)]
