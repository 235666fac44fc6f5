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
///
/// In a test file (`tests/*.rs`, or a `#[cfg(test)]` module), run by
/// `cargo test` (not here: a doctest is not built as a test):
///
/// ```no_run
/// #[sylvan::test(workers = 4)]
/// fn fibers_on_four_workers() {
///     let hs: Vec<_> = (0..8).map(|i| sylvan::spawn(move || i * 2)).collect();
///     let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
///     assert_eq!(sum, 56);
/// }
/// # fn main() {}
/// ```
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

pub mod net {
    //! Networking that parks the calling fiber instead of blocking its thread.
    //!
    //! TCP ([`TcpListener`], [`TcpStream`]), UDP ([`UdpSocket`]), Unix domain
    //! sockets ([`unix`]) and name resolution ([`lookup_host`],
    //! [`ToSocketAddrs`]), shaped like `std::net`: the same constructors and
    //! methods, `Read` and `Write` (also on `&TcpStream`), so threaded code
    //! ports by changing its `use` lines. With the cargo feature `tls`,
    //! `net::tls` adds TLS client and server streams (rustls).
    //!
    //! * **How it waits.** Every call first tries the system call on a
    //!   non-blocking socket; if it would block, the calling fiber parks until
    //!   its worker's event loop reports the socket ready, and the worker runs
    //!   other fibers meanwhile. Host names are resolved on the blocking pool,
    //!   never on a worker.
    //! * **Fibers and threads.** A socket may be used by fibers on any worker
    //!   over its life, and one fiber may read while another writes (through
    //!   `&TcpStream` or [`TcpStream::try_clone`]). From a plain thread the
    //!   same types simply block that thread, as std's do.
    //! * **Timeouts.** `set_read_timeout`/`set_write_timeout` fail a single
    //!   operation with [`std::io::ErrorKind::TimedOut`]; [`crate::timeout`]
    //!   bounds a whole exchange.
    //! * **Cancellation.** A blocked call is a park point:
    //!   [`JoinHandle::cancel`](crate::JoinHandle::cancel) and an expiring
    //!   [`crate::timeout`] unwind out of it, and the socket stays open and
    //!   usable (the interrupted call transferred nothing).
    //!
    //! ```
    //! use std::io::{BufRead, BufReader, Write};
    //! use std::time::Duration;
    //! use sylvan::net::{TcpListener, TcpStream};
    //!
    //! // A line-echo server: one fiber per connection.
    //! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    //! let addr = listener.local_addr().unwrap();
    //! sylvan::spawn(move || {
    //!     for conn in listener.incoming() {
    //!         let conn = conn.unwrap();
    //!         sylvan::spawn(move || {
    //!             for line in BufReader::new(&conn).lines() {
    //!                 (&conn).write_all(format!("{}\n", line.unwrap()).as_bytes()).unwrap();
    //!             }
    //!         });
    //!     }
    //! });
    //!
    //! // Ten clients at once, each with its own fiber; none blocks a worker.
    //! let clients: Vec<_> = (0..10)
    //!     .map(|i| {
    //!         sylvan::spawn(move || {
    //!             let stream = TcpStream::connect(addr).unwrap();
    //!             (&stream).write_all(format!("client {i}\n").as_bytes()).unwrap();
    //!             let mut reply = String::new();
    //!             BufReader::new(&stream).read_line(&mut reply).unwrap();
    //!             reply
    //!         })
    //!     })
    //!     .collect();
    //! for (i, c) in clients.into_iter().enumerate() {
    //!     assert_eq!(c.join().unwrap(), format!("client {i}\n"));
    //! }
    //!
    //! // A whole exchange bounded by one deadline: nobody answers here.
    //! let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    //! let sock = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    //! sock.connect(quiet.local_addr().unwrap()).unwrap();
    //! let r = sylvan::timeout(Duration::from_millis(5), || sock.recv(&mut [0u8; 16]));
    //! assert!(r.is_err()); // Elapsed; `sock` is still usable
    //! ```

    pub use sylvan_net::*;
}

pub mod sync {
    //! Synchronisation primitives that park fibers (and block plain threads).
    //!
    //! Fibers must not wait with std's locks, channels or condition variables:
    //! those block the worker thread and every fiber on it. These primitives
    //! park the calling fiber instead (its worker runs others) and, called from
    //! a plain thread, block that thread. Uncontended operations never park.
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
    //! | wait on several channels or queues at once | [`select!`](crate::select!), [`select::Select`] |
    //! | tell everybody "it happened" | [`Event`] |
    //! | hand one value to everybody waiting for it | [`AsyncResult`] |
    //! | limit how many do something at once | [`Semaphore`] |
    //! | run many jobs, at most *n* at a time, and collect results | [`Pool`] (`map`, `imap_unordered`) |
    //! | keep track of fibers you spawned, wait for or cancel them all | [`Group`] |
    //! | wait until *n* things are done (Go's `sync.WaitGroup`) | [`WaitGroup`] |
    //! | make *n* parties meet before going on | [`Barrier`] |
    //! | port std code by changing `use` lines only | [`mpsc`] and [`poison`] (std's signatures and error types) |
    //!
    //! * **Fibers and threads, in any mix**: every primitive works between
    //!   fibers on one worker, fibers on different workers and plain threads.
    //! * **Fairness**: waiters are served in FIFO order, and a lock, permit or
    //!   item is handed straight to the longest waiter (`try_lock` and
    //!   `try_acquire` fail while others wait). [`RwLock`] prefers writers but
    //!   admits all queued readers between two writers.
    //! * **Cancellation**: every blocking call is a cancellation point
    //!   ([`JoinHandle::cancel`](crate::JoinHandle::cancel), [`timeout`](crate::timeout));
    //!   the wait unwinds, guards unlock and permits return, and anything that
    //!   was being handed to the cancelled waiter passes to the next one. The
    //!   `_timeout` variants return instead, handing back what they could not
    //!   deliver.
    //!
    //! ```
    //! use std::sync::Arc;
    //! use std::time::Duration;
    //! use sylvan::sync::{channel, Mutex, Pool};
    //!
    //! // A pool of 4 fetches 20 "pages"; results go down a channel; a plain
    //! // thread collects them; a Mutex holds a shared tally.
    //! let (tx, rx) = channel::bounded(2);
    //! let tally = Arc::new(Mutex::new(0usize));
    //! let collector = std::thread::spawn(move || rx.iter().collect::<Vec<usize>>());
    //! let pool = Pool::new(4);
    //! for page in 0..20usize {
    //!     let (tx, tally) = (tx.clone(), tally.clone());
    //!     pool.spawn(move || {
    //!         sylvan::sleep(Duration::from_millis(1)); // "fetching": parks
    //!         *tally.lock() += 1;
    //!         tx.send(page).unwrap(); // parks while the channel is full
    //!     });
    //! }
    //! drop(tx);
    //! pool.join();
    //! let mut pages = collector.join().unwrap();
    //! pages.sort();
    //! assert_eq!(pages, (0..20).collect::<Vec<_>>());
    //! assert_eq!(*tally.lock(), 20);
    //! ```

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
