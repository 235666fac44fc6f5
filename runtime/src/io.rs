//! Readiness-based IO: how a non-blocking file descriptor blocks a fiber.
//!
//! This is the primitive `sylvan-net` builds its sockets on; it is public so
//! other crates can make their own descriptors fiber-aware the same way.
//!
//! # Contract
//!
//! * An [`IoRegistration`] names one **non-blocking** descriptor. An operation
//!   ([`IoRegistration::io`]) first tries the syscall; only when it reports
//!   `WouldBlock` does the caller wait for readiness and retry. Sockets that
//!   never block never touch the event loop.
//! * **Registration follows the user.** The first time a fiber on a worker
//!   waits on the descriptor, it is added (edge-triggered, for both
//!   directions) to *that worker's* `epoll` set, once, and stays there until
//!   the registration drops. A descriptor passed to fibers on other workers
//!   ends up in several sets; each reports its edges and any of them wakes the
//!   waiters, wherever they run. Started fibers never move, so no waiter ever
//!   needs its descriptor moved.
//! * **Reader and writer waiters are separate**, and each direction takes any
//!   number of waiters (several fibers accepting on one listener, one fiber
//!   reading while another writes). An edge wakes every waiter of its
//!   direction; they retry their syscalls, and the losers wait again.
//! * No edge is lost: each direction has an event counter. The caller reads
//!   it *before* the syscall and, after `WouldBlock`, waits only while it is
//!   unchanged — an edge that arrived between the syscall and the wait is
//!   seen, not slept through.
//! * **Plain threads** (no fiber) wait in `poll(2)` on the descriptor instead.
//! * **Cooperative budget.** A fiber whose operations keep succeeding without
//!   waiting (a socket that always has data) yields to the other fibers of
//!   its worker once every `IO_BUDGET` operations (`record::ctx`), before the
//!   operation, so a flooding peer cannot starve them. The yield is a
//!   cancellation point.
//! * A wait is a park point: cancellation and [`timeout`](crate::timeout)
//!   interrupt it by unwinding, and the waiter is removed on the way out. The
//!   descriptor is untouched (an interrupted operation either happened before
//!   the wait or not at all) and stays usable.
//! * Drop the registration **before** closing the descriptor (put it first in
//!   the owning struct); it removes the descriptor from every `epoll` set it
//!   joined.
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! use std::io::{Read, Write};
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use sylvan::io::{Direction, IoRegistration};
//!
//! /// A fiber-aware reader. The registration comes first: it drops first.
//! struct Reader {
//!     reg: IoRegistration,
//!     sock: UnixStream,
//! }
//!
//! let (a, mut b) = UnixStream::pair().unwrap();
//! a.set_nonblocking(true).unwrap();
//! let reader = Reader { reg: IoRegistration::new(a.as_raw_fd()), sock: a };
//! let h = sylvan::spawn(move || {
//!     let mut buf = [0u8; 5];
//!     // Tries the read; on WouldBlock the fiber parks until `a` is readable.
//!     let n = reader.reg.io(Direction::Read, None, || (&reader.sock).read(&mut buf)).unwrap();
//!     buf[..n].to_vec()
//! });
//! b.write_all(b"hello").unwrap();
//! assert_eq!(h.join().unwrap(), b"hello");
//! ```

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::park::{self, Waker};
use crate::reactor::{self, IoState};
use crate::record::{self, wait_labels, FiberCtx, WaitOn};

/// Which readiness an operation waits for.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use sylvan::io::{Direction, IoRegistration};
/// let (a, _b) = UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let reg = IoRegistration::new(a.as_raw_fd());
/// // Writable at once: the operation succeeds without waiting.
/// let n = reg.io(Direction::Write, None, || (&a).write(b"x")).unwrap();
/// assert_eq!(n, 1);
/// drop(reg);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Readable: data, a pending connection, end of stream or an error.
    Read,
    /// Writable: buffer space, a finished connect, or an error.
    Write,
}

/// What an [`IoRegistration::io_either`] step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Readability.
    Read,
    /// Readability, or room to send what the step could not.
    ReadOrWrite,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }
}

/// A non-blocking descriptor made fiber-aware: blocking-style operations on it
/// park the calling fiber (or block the calling thread) until it is ready.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::io::{Read, Write};
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use sylvan::io::{Direction, IoRegistration};
///
/// sylvan::run(|| {
///     let (a, mut b) = UnixStream::pair().unwrap();
///     a.set_nonblocking(true).unwrap();
///     let reg = IoRegistration::new(a.as_raw_fd());
///     let writer = sylvan::spawn(move || {
///         sylvan::sleep(std::time::Duration::from_millis(10));
///         b.write_all(b"ping").unwrap();
///     });
///     let mut buf = [0u8; 4];
///     // WouldBlock at first: the fiber parks until the writer has written.
///     let n = reg.io(Direction::Read, None, || (&a).read(&mut buf)).unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     writer.join().unwrap();
///     drop(reg); // before `a` closes
/// });
/// ```
pub struct IoRegistration {
    state: Arc<IoState>,
}

impl IoRegistration {
    /// Makes `fd` fiber-aware. `fd` must be in non-blocking mode and stay open
    /// until the registration is dropped. Nothing is registered with the
    /// event loop until an operation first has to wait.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Read;
    /// use std::os::fd::AsRawFd;
    /// use std::time::{Duration, Instant};
    /// use sylvan::io::{Direction, IoRegistration};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap(); // required
    /// let reg = IoRegistration::new(a.as_raw_fd());
    /// // Nothing to read: with a deadline, gives up with TimedOut.
    /// let deadline = Instant::now() + Duration::from_millis(2);
    /// let err = reg.io(Direction::Read, Some(deadline), || (&a).read(&mut [0u8; 8])).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// drop(reg); // before `a` closes
    /// ```
    pub fn new(fd: RawFd) -> IoRegistration {
        IoRegistration {
            state: Arc::new(IoState::new(fd)),
        }
    }

    /// The descriptor this registration is for.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let reg = sylvan::io::IoRegistration::new(a.as_raw_fd());
    /// assert_eq!(reg.fd(), a.as_raw_fd());
    /// ```
    pub fn fd(&self) -> RawFd {
        self.state.fd
    }

    /// Runs the non-blocking operation `op` until it does not report
    /// `WouldBlock`, waiting for `dir` readiness between tries. `Interrupted`
    /// is retried too. With a `deadline`, gives up with an
    /// [`io::ErrorKind::TimedOut`] error once it passes.
    ///
    /// # Panics (unwinds)
    /// Like [`park::park`]: when the calling fiber is cancelled or an
    /// enclosing [`timeout`](crate::timeout) expires while it waits.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Read;
    /// use std::os::fd::AsRawFd;
    /// use std::time::{Duration, Instant};
    /// use sylvan::io::{Direction, IoRegistration};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let reg = IoRegistration::new(a.as_raw_fd());
    /// // Nothing is sent: the read waits until the deadline, then gives up.
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// let err = reg.io(Direction::Read, Some(deadline), || (&a).read(&mut [0u8; 1])).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// drop(reg); // before `a` closes
    /// ```
    pub fn io<T>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        // Cooperative budget: after many operations that did not wait, let
        // the worker's other fibers run before this one (before the
        // operation, so a cancellation raised by the yield loses no data).
        if record::with_current(FiberCtx::io_budget_spent) == Some(true) {
            crate::yield_now();
        }
        self.io_unbudgeted(dir, deadline, op)
    }

    /// [`io`](Self::io) without the cooperative budget: parks only when the
    /// operation would block. For the `patch` hooks, whose callers may hold
    /// locks that are per thread (std's stdio locks), which a yield would
    /// share with the worker's other fibers.
    pub(crate) fn io_unbudgeted<T>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let seen = self.state.ticks[dir.index()].load(Ordering::SeqCst);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                res => return res,
            }
            self.wait_since(dir, seen, deadline)?;
        }
    }

    /// The non-blocking operation `op`, for a future's `poll`: its result
    /// if it does not report `WouldBlock`; otherwise `Pending`, with the
    /// task's waker registered to be woken at the next `dir` readiness edge
    /// (the same no-lost-edge protocol as [`io`](Self::io)). This is how
    /// `futures-io`'s `AsyncRead`/`AsyncWrite` for sylvan's sockets are
    /// driven by the worker's event loop.
    ///
    /// Readiness comes from a worker's `epoll` set, so the future must be
    /// polled inside a fiber by an executor that parks the fiber, not the
    /// thread, between polls: [`future::block_on`](crate::future::block_on).
    /// Polled off the workers it fails with `Unsupported` rather than wait
    /// forever; under another executor's blocking `block_on` in a fiber it
    /// hangs that worker (its event loop cannot run).
    ///
    /// Per direction, the task that polled last is the one woken (as with
    /// tokio's readiness): two tasks waiting on one direction of a socket at
    /// once is not supported. Like [`io`](Self::io), a run of operations that
    /// did not wait yields now and then (`Pending` after waking the task).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::future::poll_fn;
    /// use std::io::{Read, Write};
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use sylvan::io::{Direction, IoRegistration};
    ///
    /// sylvan::run(|| {
    ///     let (a, mut b) = UnixStream::pair().unwrap();
    ///     a.set_nonblocking(true).unwrap();
    ///     let reg = IoRegistration::new(a.as_raw_fd());
    ///     let writer = sylvan::spawn(move || b.write_all(b"ping").unwrap());
    ///     let mut buf = [0u8; 4];
    ///     let n = sylvan::future::block_on(poll_fn(|cx| {
    ///         reg.poll_io(Direction::Read, cx, || (&a).read(&mut buf))
    ///     }))
    ///     .unwrap();
    ///     assert_eq!(&buf[..n], b"ping");
    ///     writer.join().unwrap();
    ///     drop(reg);
    /// });
    /// ```
    pub fn poll_io<T>(
        &self,
        dir: Direction,
        cx: &mut std::task::Context<'_>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> std::task::Poll<io::Result<T>> {
        use std::task::Poll;
        let d = dir.index();
        // Cooperative budget, as `io`'s: after many operations that did not
        // wait, yield (`block_on` gives the worker's other fibers a turn
        // before it polls again).
        if record::with_current(FiberCtx::io_budget_spent_renew) == Some(true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            let seen = self.state.ticks[d].load(Ordering::SeqCst);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                res => return Poll::Ready(res),
            }
            if reactor::with_current(|_| ()).is_none() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "sylvan: a sylvan socket's async IO was polled off the runtime's \
                     worker threads, where no event loop watches it; poll it inside a \
                     fiber (sylvan::future::block_on)",
                )));
            }
            if let Err(e) = self.register_here() {
                return Poll::Ready(Err(e));
            }
            // The task that polls last is the one woken (as with futures-io
            // and tokio readiness): a poll its task abandoned is replaced.
            let waker = cx.waker().clone();
            let replaced = self.state.inner.lock().tasks[d].replace(waker);
            // Dropped outside the lock: a task waker's drop is foreign code.
            drop(replaced);
            // An edge between the operation and the registration: retry
            // rather than wait for one that already came.
            if self.state.ticks[d].load(Ordering::SeqCst) == seen {
                return Poll::Pending;
            }
        }
    }

    /// Runs `op`, a non-blocking step that reads and may also have data to
    /// send, until it completes: `Ok(Ok(value))`. `Ok(Err(wait))` says what
    /// it waits for — [`Wait::Read`], or [`Wait::ReadOrWrite`] while it also
    /// has data the socket did not take — and the caller parks (or, on a
    /// plain thread, blocks) until that, or until `deadline`: then
    /// `TimedOut` ("read timed out"). For a protocol that must keep sending
    /// while it waits to read (TLS records queued by an earlier write, which
    /// the peer may need before it answers), without waiting for room to
    /// send before it reads. The same cooperative budget and no-lost-edge
    /// protocol as [`io`](Self::io).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::{Read, Write};
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use sylvan::io::{IoRegistration, Wait};
    ///
    /// sylvan::run(|| {
    ///     let (a, mut b) = UnixStream::pair().unwrap();
    ///     a.set_nonblocking(true).unwrap();
    ///     let reg = IoRegistration::new(a.as_raw_fd());
    ///     let peer = sylvan::spawn(move || {
    ///         let mut hello = [0u8; 5];
    ///         b.read_exact(&mut hello).unwrap(); // the peer needs it first
    ///         b.write_all(b"world").unwrap();
    ///     });
    ///     let mut out: &[u8] = b"hello";
    ///     let mut buf = [0u8; 5];
    ///     let n = reg
    ///         .io_either(None, || {
    ///             while !out.is_empty() {
    ///                 match (&a).write(out) {
    ///                     Ok(n) => out = &out[n..],
    ///                     Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
    ///                     Err(e) => return Err(e),
    ///                 }
    ///             }
    ///             match (&a).read(&mut buf) {
    ///                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
    ///                     Ok(Err(if out.is_empty() { Wait::Read } else { Wait::ReadOrWrite }))
    ///                 }
    ///                 r => r.map(Ok),
    ///             }
    ///         })
    ///         .unwrap();
    ///     assert_eq!(&buf[..n], b"world");
    ///     peer.join().unwrap();
    ///     drop(reg);
    /// });
    /// ```
    pub fn io_either<T>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<Result<T, Wait>>,
    ) -> io::Result<T> {
        if record::with_current(FiberCtx::io_budget_spent) == Some(true) {
            crate::yield_now();
        }
        loop {
            let seen = [self.edges(Direction::Read), self.edges(Direction::Write)];
            let wait = match op() {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(wait)) => wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match wait {
                Wait::Read => self.wait_since(Direction::Read, seen[0], deadline)?,
                Wait::ReadOrWrite if !crate::in_fiber() => {
                    self.thread_wait_for(libc::POLLIN | libc::POLLOUT, Direction::Read, deadline)?
                }
                Wait::ReadOrWrite => {
                    let both = [
                        (self, Direction::Read, seen[0]),
                        (self, Direction::Write, seen[1]),
                    ];
                    if !wait_any(&both, deadline, &wait_labels::READABLE)? {
                        return Err(timed_out(Direction::Read));
                    }
                }
            }
        }
    }

    /// How many `dir` readiness edges have been reported so far: read it
    /// before trying an operation, then wait with [`wait_any`] only while it
    /// is unchanged.
    pub(crate) fn edges(&self, dir: Direction) -> u64 {
        self.state.ticks[dir.index()].load(Ordering::SeqCst)
    }

    /// Waits until `dir` readiness is reported after `seen` edges (or
    /// `deadline` passes: `TimedOut`).
    fn wait_since(&self, dir: Direction, seen: u64, deadline: Option<Instant>) -> io::Result<()> {
        if !crate::in_fiber() {
            return self.thread_wait(dir, deadline);
        }
        self.register_here()?;
        let on = WaitOn::fd(
            match dir {
                Direction::Read => &wait_labels::READABLE,
                Direction::Write => &wait_labels::WRITABLE,
            },
            self.state.fd,
        );
        let d = dir.index();
        let state = &self.state;
        let waker = park::current_waker();
        // Leaves the waiter list however the wait ends (edge, deadline,
        // cancellation unwinding through the park).
        struct Leave<'a>(&'a IoState, usize, Waker);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.inner.lock().waiters[self.1].retain(|w| !w.will_wake(&self.2));
            }
        }
        let leave = Leave(state, d, waker);
        loop {
            // Register before *every* re-check: an edge wakes and removes
            // all of its direction's waiters, including for a bump that this
            // waiter had already counted in `seen` (a stale edge, e.g. one
            // polled by another worker); after such a wake the waiter must be
            // back on the list before it parks again, or the next edge would
            // find it missing (found by the loom model of this protocol).
            {
                let mut inner = state.inner.lock();
                let list = &mut inner.waiters[d];
                if !list.iter().any(|w| w.will_wake(&leave.2)) {
                    list.push(leave.2.clone());
                }
            }
            if state.ticks[d].load(Ordering::SeqCst) != seen {
                return Ok(());
            }
            match deadline {
                None => park::park_with(on),
                Some(at) => {
                    if park::park_until_with(at, on)
                        && state.ticks[d].load(Ordering::SeqCst) == seen
                    {
                        return Err(timed_out(dir));
                    }
                }
            }
        }
    }

    /// Adds the descriptor to the current worker's `epoll` set unless it is
    /// there already (`EEXIST` if another registration of the same number
    /// holds it there).
    pub(crate) fn register_here(&self) -> io::Result<()> {
        match self.try_register_here() {
            // The number is in this set already: if through a patched
            // `poll`'s registration for one wait, that one steps aside.
            #[cfg(feature = "patch")]
            Err(e)
                if e.raw_os_error() == Some(libc::EEXIST)
                    && crate::patch::make_room(self.state.fd) =>
            {
                self.try_register_here()
            }
            r => r,
        }
    }

    fn try_register_here(&self) -> io::Result<()> {
        let Some(here) = reactor::with_current(|r| r.shared.clone()) else {
            return Ok(());
        };
        let mut inner = self.state.inner.lock();
        if inner.registered.iter().any(|(r, _)| Arc::ptr_eq(r, &here)) {
            return Ok(());
        }
        if inner.retired {
            // Closed (or being closed): adding the number now could add
            // whatever file reuses it.
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let token = here.register(&self.state)?;
        inner.registered.push((here, token));
        Ok(())
    }

    /// The plain-thread wait: `poll(2)` on the descriptor.
    fn thread_wait(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let events = match dir {
            Direction::Read => libc::POLLIN,
            Direction::Write => libc::POLLOUT,
        };
        self.thread_wait_for(events, dir, deadline)
    }

    /// A plain thread's wait for `events` (`poll(2)`); `dir` names the
    /// timeout.
    fn thread_wait_for(
        &self,
        events: libc::c_short,
        dir: Direction,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let until = park::thread_wait_deadline(deadline);
        let ms = match until {
            None => -1,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                // Round up so a wait never returns before its deadline.
                let ms = left.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            }
        };
        // An expired timeout scope is raised by the next wait, if the
        // operation would block again (see `park`'s rule on when).
        let ready = crate::sys::poll_one(self.state.fd, events, ms)?;
        if !ready && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out(dir));
        }
        Ok(())
    }
}

/// In a fiber: waits until any of `waits` — (registration, direction, edge
/// count read before the caller's last try) — sees a new edge, or `deadline`
/// passes (returns `false`). The same protocol as one registration's wait,
/// over several (how the patched `poll` waits for a set of descriptors, and
/// [`IoRegistration::io_either`] for both directions of one).
pub(crate) fn wait_any(
    waits: &[(&IoRegistration, Direction, u64)],
    deadline: Option<Instant>,
    label: &'static crate::park::WaitLabel,
) -> io::Result<bool> {
    debug_assert!(crate::in_fiber());
    for (reg, _, _) in waits {
        reg.register_here()?;
    }
    let on = WaitOn::what(label);
    let waker = park::current_waker();
    // Leaves every waiter list however the wait ends.
    struct Leave<'a>(&'a [(&'a IoRegistration, Direction, u64)], Waker);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            for (reg, dir, _) in self.0 {
                let mut inner = reg.state.inner.lock();
                inner.waiters[dir.index()].retain(|w| !w.will_wake(&self.1));
            }
        }
    }
    let leave = Leave(waits, waker);
    loop {
        // Register before every re-check (see `wait_since`).
        for (reg, dir, _) in waits {
            let mut inner = reg.state.inner.lock();
            let list = &mut inner.waiters[dir.index()];
            if !list.iter().any(|w| w.will_wake(&leave.1)) {
                list.push(leave.1.clone());
            }
        }
        if waits
            .iter()
            .any(|(reg, dir, seen)| reg.edges(*dir) != *seen)
        {
            return Ok(true);
        }
        match deadline {
            None => park::park_with(on),
            Some(at) => {
                if park::park_until_with(at, on) {
                    return Ok(waits
                        .iter()
                        .any(|(reg, dir, seen)| reg.edges(*dir) != *seen));
                }
            }
        }
    }
}

fn timed_out(dir: Direction) -> io::Error {
    let what = match dir {
        Direction::Read => "read timed out",
        Direction::Write => "write timed out",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl IoRegistration {
    /// Leaves every `epoll` set now (the descriptor is about to be closed
    /// while other holders of this registration may outlive it: their
    /// drops then deregister nothing, so they cannot remove a registration
    /// of whatever file reuses the number). Waiters stay parked until their
    /// deadline or an interruption.
    pub(crate) fn deregister_all(&self) {
        let registered = std::mem::take(&mut self.state.inner.lock().registered);
        for (reactor, token) in registered {
            reactor.deregister(self.state.fd, token);
        }
    }

    /// The descriptor is about to be closed: leaves every `epoll` set, as
    /// [`deregister_all`](Self::deregister_all), and refuses to join one
    /// again, so a holder still waiting cannot register the number once it
    /// names another file (it gets `EBADF` instead).
    #[cfg(feature = "patch")]
    pub(crate) fn retire(&self) {
        self.state.inner.lock().retired = true;
        self.deregister_all();
    }

    /// Retires the registration ([`retire`](Self::retire)) and wakes its
    /// waiters: another registration of the number needs its place.
    #[cfg(feature = "patch")]
    pub(crate) fn evict(&self) {
        self.retire();
        self.state.on_event(true, true);
    }

    /// Leaves every `epoll` set and wakes every waiter, who retries its
    /// operation (and registers again if it must wait): the owner is taking
    /// the descriptor over (it may register it itself, which a lasting
    /// registration of ours in the same set would make fail with `EEXIST`).
    #[cfg(feature = "patch")]
    pub(crate) fn release(&self) {
        self.deregister_all();
        self.state.on_event(true, true);
    }
}

impl Drop for IoRegistration {
    fn drop(&mut self) {
        self.deregister_all();
    }
}

impl std::fmt::Debug for IoRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoRegistration")
            .field("fd", &self.state.fd)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fiber and a plain thread bounce a byte over a socketpair many times:
    /// every round the fiber's read must wait for an edge that races its
    /// registration. A lost edge hangs, so a watchdog turns that into a
    /// failure.
    #[test]
    #[cfg_attr(miri, ignore = "fibers: corosensei switches stacks with inline asm")]
    fn no_edge_is_lost_in_a_fiber_thread_ping_pong() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        const ROUNDS: u32 = 20_000;
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = {
            let done = done.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                while !done.load(Ordering::SeqCst) {
                    if start.elapsed() > std::time::Duration::from_secs(60) {
                        // The test thread is stuck in a park: fail loudly.
                        eprintln!("io ping-pong hung: an edge was lost");
                        std::process::abort();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            })
        };
        let peer = std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            for _ in 0..ROUNDS {
                b.read_exact(&mut byte).unwrap();
                b.write_all(&byte).unwrap();
            }
        });
        let rt = crate::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(move || {
            let reg = IoRegistration::new(a.as_raw_fd());
            for i in 0..ROUNDS {
                let out = [i as u8];
                reg.io(Direction::Write, None, || (&a).write(&out)).unwrap();
                let mut back = [0u8; 1];
                let n = reg
                    .io(Direction::Read, None, || (&a).read(&mut back))
                    .unwrap();
                assert_eq!((n, back), (1, out));
            }
            drop(reg);
        });
        peer.join().unwrap();
        done.store(true, Ordering::SeqCst);
        watchdog.join().unwrap();
    }
}
