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
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! use std::time::Duration;
//! // 1,000 fibers that each block for a moment, on two worker threads.
//! let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
//! let total = rt.block_on(|| {
//!     let hs: Vec<_> = (0..1000u64)
//!         .map(|i| sylvan::spawn(move || { sylvan::sleep(Duration::from_millis(1)); i }))
//!         .collect();
//!     hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 999 * 1000 / 2);
//! ```
//!
//! # Layout
//!
//! Modules import only downwards, bottom to top:
//!
//! * leaves: `sys` (raw syscalls), `timer` (the timer heap), `stack`
//!   (guarded, pooled fiber stacks), `sched` (each worker's ready queue and
//!   its cross-thread `Inbox`);
//! * `record`: the fiber record — header and run state, the one-allocation
//!   task cell and its body, unstarted tasks, the per-fiber context and
//!   `CURRENT`, wakers;
//! * `reactor`: each worker's `mio::Poll`, descriptor table and timers;
//! * [`park`], `local` (fiber-locals), `overflow` (the stack-overflow
//!   report), [`io`];
//! * `hub`: the run loop and fiber table (`hub/mod.rs`), the idle policy
//!   (`idle.rs`), shutdown (`shutdown.rs`), what workers share
//!   (`workers.rs`);
//! * the API: `runtime`, `spawn`, `join`, `scope`, `time`, `blocking`,
//!   [`signal`], `fiber`.
//!
//! # The life of a wakeup
//!
//! A fiber blocks in `park::fiber_park`: it arms a timer for its deadline
//! (`reactor::add_timer`), moves its run state to `PARKED`
//! (`RunState::park`) and suspends to its hub (`FiberCtx::suspend`), which
//! returns from the coroutine's resume in `Hub::resume`. Something then
//! calls `Waker::wake` → `Header::unpark`: the one caller that wins
//! `RunState::unpark` queues the fiber's slot through `Inbox::schedule` —
//! straight onto the worker's ready queue (`sched::push_ready`) when it runs
//! on that worker's thread, otherwise into the inbox, waking the worker's
//! poll through its `mio::Waker` if it sleeps. That something is: another
//! fiber or thread releasing what the fiber waits for (sync primitives,
//! `JoinCell::complete`); readiness — `Reactor::poll_io` (called by the hub
//! between resumes, in `Hub::spin_for_work` and in `Hub::sleep`) looks the
//! event up in its descriptor table and `IoState::on_event` wakes that
//! direction's waiters; a due timer — `Reactor::fire_timers`, at the top of
//! each round of `Hub::run`, unparks a record still `PARKED`; or a
//! cancellation (`Header::cancel`). Each round `Hub::run` moves the inbox's
//! slots onto the ready queue (`Inbox::drain`) and `Hub::resume`s the slots
//! that were ready at its start; the fiber continues in `fiber_park` after
//! its suspend, cancels its timer and returns (or unwinds with a
//! cancellation) to re-check what it waited for.

#![warn(missing_docs)]

#[cfg(test)]
mod alias_model;
mod blocking;
mod dump;
mod fiber;
pub mod fs;
pub mod future;
mod hub;
pub mod io;
mod join;
mod local;
mod metrics;
mod monitor;
mod overflow;
pub mod park;
pub mod patch;
mod reactor;
mod record;
mod runtime;
mod sched;
mod scope;
pub mod signal;
mod spawn;
mod stack;
mod sys;
pub mod thread;
mod time;
mod timer;

pub use blocking::{unblock, unblock_scoped, DEFAULT_BLOCKING_THREADS};
pub use dump::{dump, Dump, FiberDump, FiberState, RuntimeDump, WorkerDump};
pub use fiber::{current, try_current, Fiber};
pub use join::{iwait, wait_any, wait_any_timeout, Completed, Iwait, JoinError, JoinHandle};
pub use local::LocalKey;
pub use metrics::{Metrics, WorkerMetrics};
pub use record::{in_fiber, FiberId};
pub use runtime::{run, Runtime, RuntimeBuilder};
pub use scope::{scope, Scope, ScopedJoinHandle};
pub use spawn::{spawn, spawn_local, Builder};
pub use stack::{uses_guard_markers, DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};
pub use time::{sleep, sleep_until, timeout, timeout_at, yield_now, Elapsed};
