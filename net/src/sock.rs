//! The one wrapper every socket type is built on: a non-blocking std socket,
//! its event-loop registration and its per-handle timeouts.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sylvan_runtime::io::{Direction, IoRegistration};

/// A non-blocking socket `S` whose operations park the caller.
///
/// Field order matters: the registration drops (leaving the event loops)
/// before the socket closes.
pub(crate) struct Sock<S: AsRawFd> {
    reg: IoRegistration,
    sock: S,
    read_timeout: Timeout,
    write_timeout: Timeout,
}

impl<S: AsRawFd> Sock<S> {
    /// Wraps `sock`, which must already be in non-blocking mode.
    pub(crate) fn new(sock: S) -> Sock<S> {
        Sock {
            reg: IoRegistration::new(sock.as_raw_fd()),
            sock,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
        }
    }

    /// Wraps a socket registered already (a connect in progress).
    pub(crate) fn with_registration(reg: IoRegistration, sock: S) -> Sock<S> {
        debug_assert_eq!(reg.fd(), sock.as_raw_fd());
        Sock {
            reg,
            sock,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
        }
    }

    /// The socket itself, for calls that never block.
    pub(crate) fn get(&self) -> &S {
        &self.sock
    }

    /// Runs a receive-side operation, parking while it would block, until the
    /// read timeout (if any) passes.
    pub(crate) fn read<T>(&self, mut op: impl FnMut(&S) -> io::Result<T>) -> io::Result<T> {
        let deadline = self.read_timeout.deadline();
        self.reg.io(Direction::Read, deadline, || op(&self.sock))
    }

    /// Runs a send-side operation, parking while it would block, until the
    /// write timeout (if any) passes.
    pub(crate) fn write<T>(&self, mut op: impl FnMut(&S) -> io::Result<T>) -> io::Result<T> {
        let deadline = self.write_timeout.deadline();
        self.reg.io(Direction::Write, deadline, || op(&self.sock))
    }

    pub(crate) fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(dur)
    }

    pub(crate) fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(dur)
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// A second handle on a duplicate of the descriptor, with this handle's
    /// current timeouts.
    pub(crate) fn try_clone_with(
        &self,
        dup: impl FnOnce(&S) -> io::Result<S>,
    ) -> io::Result<Sock<S>> {
        let clone = Sock::new(dup(&self.sock)?);
        clone.read_timeout.set(self.read_timeout.get())?;
        clone.write_timeout.set(self.write_timeout.get())?;
        Ok(clone)
    }

    /// Leaves the event loops and returns the (still non-blocking) socket.
    pub(crate) fn into_inner(self) -> S {
        let Sock { reg, sock, .. } = self;
        drop(reg);
        sock
    }
}

/// An optional timeout, stored as nanoseconds (0: none).
#[derive(Default)]
struct Timeout(AtomicU64);

impl Timeout {
    fn set(&self, dur: Option<Duration>) -> io::Result<()> {
        let nanos = match dur {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            // Centuries-long timeouts saturate; they never fire either way.
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        };
        self.0.store(nanos, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.get().and_then(|d| Instant::now().checked_add(d))
    }
}

/// Runs `f` where blocking is allowed: on the blocking pool from a fiber (so
/// a hub thread never blocks), right here on a plain thread.
pub(crate) fn off_hub<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    if sylvan_runtime::in_fiber() {
        sylvan_runtime::unblock(f)
    } else {
        f()
    }
}

/// Whether an `accept` error means "out of descriptors or memory, try again
/// later" rather than a broken listener.
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an `accept` error concerns only the connection being accepted
/// (the peer gave up before we took it): skip it and accept the next one.
pub(crate) fn is_connection_aborted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionAborted || e.raw_os_error() == Some(libc::EPROTO)
}

/// Sleeps the accepting fiber between retries while descriptors are
/// exhausted: 5 ms doubling up to 1 s, so an overloaded server neither spins
/// nor falls over, and picks up again soon after descriptors free up.
#[derive(Default)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn wait(&mut self) {
        self.0 = if self.0.is_zero() {
            Duration::from_millis(5)
        } else {
            (self.0 * 2).min(Duration::from_secs(1))
        };
        sylvan_runtime::sleep(self.0);
    }
}
