//! The sylvan runtime core: fibers on guarded, pooled stacks, scheduled
//! cooperatively by one event-loop *hub* per worker thread.
//!
//! # Model
//!
//! * A **fiber** is a [corosensei] coroutine running a closure on its own
//!   stack (256 KiB of address space by default; only touched pages cost
//!   memory). Stacks are carved from large slabs and guarded with page-table
//!   guard markers where the kernel has them, so 100,000s of fibers fit under
//!   the default `vm.max_map_count`. A stack overflow is reported by fiber
//!   name and aborts the process; it never corrupts memory silently.
//! * Each **worker** thread runs a **hub** (a `mio::Poll` loop): it resumes
//!   ready fibers, applies wakeups from other threads, fires timers and
//!   sleeps in `poll` when there is nothing to do.
//! * A **started fiber never changes thread**, so `thread_local!` values and
//!   `!Send` data held across blocking calls are sound. Load balancing moves
//!   only *unstarted* fibers (plain `Send` closures), through per-worker
//!   `crossbeam_deque` deques, a global injector and stealing.
//! * Blocking calls **park**: see [`park`] for the protocol that every other
//!   crate (sync, net) builds on. It works the same on plain OS threads, where
//!   parking blocks the thread.
//! * **Cancellation** ([`JoinHandle::cancel`]) and [`timeout`] are delivered
//!   at park points by unwinding, so destructors run. This needs
//!   `panic = "unwind"`; under `panic = "abort"` a cancellation or expired
//!   timeout that reaches a parked fiber aborts the process. A fiber that
//!   never parks cannot be cancelled.
//!
//! Most users reach these items through the `sylvan` facade crate.

#![warn(missing_docs)]

#[cfg(test)]
mod alias_model;
mod blocking;
mod fiber;
mod hub;
pub mod io;
mod local;
mod overflow;
pub mod park;
mod run_state;
mod runtime;
mod scope;
pub mod signal;
mod stack;
mod sys;
mod task;
mod time;
mod timer;

pub use blocking::unblock;
pub use fiber::{current, in_fiber, try_current, Fiber, FiberId};
pub use local::LocalKey;
pub use runtime::{run, Runtime, RuntimeBuilder};
pub use scope::{scope, Scope, ScopedJoinHandle};
pub use stack::{uses_guard_markers, DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};
pub use task::{spawn, spawn_local, Builder, JoinError, JoinHandle};
pub use time::{sleep, sleep_until, timeout, timeout_at, yield_now, Elapsed};
