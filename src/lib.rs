//! # sylvan — stackful green threads for Rust
//!
//! Write code the way you write threaded code — [`spawn`], [`JoinHandle::join`],
//! [`sleep`], blocking reads and writes — and it runs as cheap *fibers* on a
//! small set of worker threads, each driving an event-loop hub. No `async`, no
//! function colouring: every call that would block suspends the calling fiber
//! and lets its worker run others.
//!
//! ```
//! use std::time::Duration;
//!
//! // Works straight from a plain `main`: a global runtime starts on first use.
//! let fibers: Vec<_> = (0..1000u64)
//!     .map(|i| sylvan::spawn(move || {
//!         sylvan::sleep(Duration::from_millis(10)); // parks, does not block the thread
//!         i * 2
//!     }))
//!     .collect();
//! let total: u64 = fibers.into_iter().map(|f| f.join().unwrap()).sum();
//! assert_eq!(total, 999 * 1000);
//! ```
//!
//! # The model
//!
//! * A **fiber** is a function with its own small stack (256 KiB of address
//!   space, a few KiB touched), run by one of the runtime's worker threads;
//!   a million of them fit on a stock kernel.
//! * **What parks the fiber** (the worker runs others meanwhile): sylvan's
//!   sockets ([`net`]), files ([`fs`]), [`sleep`], locks, channels and
//!   queues ([`sync`]), [`JoinHandle::join`], [`unblock`] — and, with the
//!   `patch` feature, std's sockets and sleep and blocking C libraries.
//! * **What blocks the worker thread** (every fiber on it waits): std's
//!   locks held by another fiber, std's channels, blocking crates without
//!   `patch`, long computations. The monitor prints a warning naming the
//!   fiber when a worker is held for over 100 ms.
//! * **Fibers never move**: a fiber starts on any worker and stays there
//!   (so its closure must be `Send`, but what it creates inside need not be).
//! * **Cancellation** ([`JoinHandle::cancel`], [`timeout`]) takes effect
//!   where the fiber parks: the blocking call unwinds, destructors run, the
//!   socket or lock is released. It needs `panic = "unwind"` (the default);
//!   a fiber that never parks cannot be cancelled.
//! * **Porting**: [`thread`], [`sync::mpsc`] and [`sync::poison`] mirror std
//!   so a threaded program ports by changing imports; [`porting`] is the
//!   guide (from std threads, gevent and tokio) and lists the traps
//!   (`thread_local!` is per worker: use [`fiber_local!`]).
//!
//! # Contents
//!
//! * Runtime: [`run`], [`Runtime`], [`spawn`], [`spawn_local`], [`Builder`],
//!   [`scope`], [`sleep`], [`timeout`], [`unblock`], [`fiber_local!`], and the
//!   [`park`] protocol that the rest builds on.
//! * [`net`]: TCP, UDP and unix sockets and DNS that park the calling fiber
//!   instead of blocking its worker thread (std-shaped: `Read`/`Write`).
//!   With the cargo feature `tls`, `net::tls` adds TLS client and server
//!   streams (rustls).
//! * [`sync`]: fiber-aware synchronisation primitives (events, locks,
//!   queues, channels, pools, groups) that work from fibers and threads.

pub use sylvan_runtime::*;

/// Runs `fn main` as the first fiber of a sylvan runtime
/// (`#[sylvan::main]`, `#[sylvan::main(workers = 4)]`).
///
/// ```
/// #[sylvan::main(workers = 2)]
/// fn main() {
///     let h = sylvan::spawn(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// }
/// ```
pub use sylvan_macros::main;

/// Runs a test as the first fiber of a fresh runtime
/// (`#[sylvan::test]`, `#[sylvan::test(workers = 4)]`); one worker by default.
pub use sylvan_macros::test;

/// Waits on several channel and queue operations at once and runs the
/// branch of the first that happens: `recv(rx) -> msg => …`,
/// `send(tx, value) -> res => …`, `get(queue) -> item => …`,
/// `put(queue, item) -> res => …`, `timeout(duration) => …`, `default => …`.
/// Fair when several are ready; only the branch that runs takes an item.
/// See [`sync::select`] for the mechanism.
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::{channel, Queue};
///
/// let (tx, rx) = channel::bounded::<u32>(1);
/// let jobs: Queue<&str> = Queue::unbounded();
/// jobs.put("index.html").unwrap();
/// tx.send(7).unwrap();
/// let mut seen = Vec::new();
/// for _ in 0..3 {
///     sylvan::select! {
///         recv(rx) -> n => seen.push(format!("number {}", n.unwrap())),
///         get(jobs) -> job => seen.push(format!("job {}", job.unwrap())),
///         timeout(Duration::from_millis(20)) => seen.push("nothing".to_string()),
///     }
/// }
/// seen.sort();
/// assert_eq!(seen, ["job index.html", "nothing", "number 7"]);
/// ```
pub use sylvan_macros::select;

/// Networking that parks the calling fiber instead of blocking its thread.
pub mod net {
    pub use sylvan_net::*;
}

/// Synchronisation primitives that park fibers (and block plain threads).
pub mod sync {
    pub use sylvan_sync::*;
}

/// Porting guide: from std threads, gevent and tokio; what maps to what,
/// and the traps.
#[doc = include_str!("porting.md")]
pub mod porting {}

/// The README's examples, compiled and run as doctests so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
