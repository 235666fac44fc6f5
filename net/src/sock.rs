//! The one wrapper every socket type is built on: a non-blocking std socket,
//! its event-loop registration and its per-handle timeouts.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[cfg(feature = "tls")]
use sylvan_runtime::io::Wait;
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

    /// Runs a receive-side step that may also have data to send (see
    /// [`IoRegistration::io_either`]), parking while it waits, until the
    /// read timeout (if any) passes.
    #[cfg(feature = "tls")]
    pub(crate) fn read_either<T>(
        &self,
        mut op: impl FnMut(&S) -> io::Result<Result<T, Wait>>,
    ) -> io::Result<T> {
        let deadline = self.read_timeout.deadline();
        self.reg.io_either(deadline, || op(&self.sock))
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

impl<S: AsRawFd> Sock<S> {
    /// Accepts one connection with `accept`, parking until one arrives.
    /// Errors that concern only the connection being accepted are skipped;
    /// out of descriptors or memory, it backs off ([`Backoff`]) and retries.
    pub(crate) fn accept<T, A>(
        &self,
        mut accept: impl FnMut(&S) -> io::Result<(T, A)>,
    ) -> io::Result<(T, A)> {
        let mut backoff = Backoff::default();
        loop {
            match self.read(&mut accept) {
                Ok(conn) => return Ok(conn),
                Err(e) if is_resource_exhaustion(&e) => backoff.wait(),
                Err(e) if is_connection_aborted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: AsRawFd> Sock<S>
where
    for<'a> &'a S: io::Read + io::Write,
{
    /// `Read::read` on a stream socket. An empty buffer reads 0 at once (the
    /// kernel would wait for a byte first).
    pub(crate) fn read_buf(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read(|mut s| io::Read::read(&mut s, buf))
    }

    /// `Read::read_vectored` on a stream socket.
    pub(crate) fn read_bufs(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.read(|mut s| io::Read::read_vectored(&mut s, bufs))
    }

    /// `Write::write` on a stream socket.
    pub(crate) fn write_buf(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.write(|mut s| io::Write::write(&mut s, buf))
    }

    /// `Write::write_vectored` on a stream socket.
    pub(crate) fn write_bufs(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.write(|mut s| io::Write::write_vectored(&mut s, bufs))
    }
}

/// The `futures-io` side: the same operations, polled (see
/// `IoRegistration::poll_io`). Per-handle timeouts do not apply: async code
/// brings its own.
#[cfg(feature = "futures-io")]
impl<S: AsRawFd> Sock<S>
where
    for<'a> &'a S: io::Read + io::Write,
{
    pub(crate) fn poll_read_buf(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if buf.is_empty() {
            return std::task::Poll::Ready(Ok(0));
        }
        self.reg
            .poll_io(Direction::Read, cx, || io::Read::read(&mut &self.sock, buf))
    }

    pub(crate) fn poll_write_buf(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if buf.is_empty() {
            return std::task::Poll::Ready(Ok(0));
        }
        self.reg.poll_io(Direction::Write, cx, || {
            io::Write::write(&mut &self.sock, buf)
        })
    }
}

/// `futures_io::AsyncRead` and `AsyncWrite` for a stream type and for
/// shared references to it; `$shutdown` closes the write side.
#[cfg(feature = "futures-io")]
macro_rules! impl_async_io {
    ($ty:ident) => {
        $crate::sock::impl_async_io!(@for &$ty);
        $crate::sock::impl_async_io!(@for $ty);
    };
    (@for $t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.inner.poll_read_buf(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.inner.poll_write_buf(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            /// Shuts the write side down (the peer reads end of stream).
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.inner.get().shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

#[cfg(feature = "futures-io")]
pub(crate) use impl_async_io;

/// The methods every socket type has, for inside its `impl` block: `$addr`
/// is its address type (its `Sock` field must be called `inner`).
///
/// The examples are written once for every type: `setup` is the doctest
/// code that makes a socket `s` of the type, `check` asserts on its
/// address `addr`.
macro_rules! handle_methods {
    ($addr:ty, setup: $setup:expr, check: $check:literal) => {
        /// The local address this socket is bound to.
        ///
        #[doc = concat!("```\n", $setup, "\nlet addr = s.local_addr().unwrap();\n", $check, "\n```")]
        pub fn local_addr(&self) -> std::io::Result<$addr> {
            self.inner.get().local_addr()
        }

        /// A second handle on the same socket (a duplicated descriptor),
        /// e.g. to give the read half of a connection to one fiber and the
        /// write half to another. It starts with this handle's timeouts.
        ///
        #[doc = concat!(
                    "```\n", $setup, "\n",
                    "use std::os::fd::AsRawFd;\n",
                    "let clone = s.try_clone().unwrap();\n",
                    "assert_ne!(clone.as_raw_fd(), s.as_raw_fd()); // a descriptor of its own\n",
                    "let addr = clone.local_addr().unwrap(); // on the same socket\n",
                    $check, "\n```",
                )]
        pub fn try_clone(&self) -> std::io::Result<Self> {
            Ok(Self {
                inner: self.inner.try_clone_with(|s| s.try_clone())?,
            })
        }

        /// Takes the pending `SO_ERROR`, if any.
        ///
        #[doc = concat!(
                    "```\n", $setup, "\n",
                    "assert!(s.take_error().unwrap().is_none()); // nothing went wrong\n```",
                )]
        pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
            self.inner.get().take_error()
        }
    };
}

/// The methods of sockets that exchange data with a peer (streams and UDP):
/// the peer's address and the per-handle timeouts.
///
/// As in `handle_methods`: `setup` makes `s`, here connected to a socket
/// `peer`; `check` asserts on `s`'s peer address `addr`.
macro_rules! peer_methods {
    ($addr:ty, setup: $setup:expr, check: $check:literal) => {
        /// The peer's address (for UDP: the connected peer's).
        ///
        #[doc = concat!("```\n", $setup, "\nlet addr = s.peer_addr().unwrap();\n", $check, "\n```")]
        pub fn peer_addr(&self) -> std::io::Result<$addr> {
            self.inner.get().peer_addr()
        }

        /// Makes operations that wait for data (reads, receives, `peek`) on
        /// this handle fail with [`std::io::ErrorKind::TimedOut`] when
        /// nothing comes within `dur`; `None` waits forever. A zero duration
        /// is an `InvalidInput` error. The timeout belongs to this handle (a
        /// `try_clone` copies it).
        ///
        #[doc = concat!(
                    "```\n", $setup, "\n",
                    "use std::time::Duration;\n",
                    "s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();\n",
                    "assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(5)));\n",
                    "let zero = s.set_read_timeout(Some(Duration::ZERO)).unwrap_err();\n",
                    "assert_eq!(zero.kind(), std::io::ErrorKind::InvalidInput);\n",
                    "s.set_read_timeout(None).unwrap(); // wait forever again\n",
                    "assert_eq!(s.read_timeout().unwrap(), None);\n```",
                )]
        pub fn set_read_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.inner.set_read_timeout(dur)
        }

        /// Makes operations that wait for buffer space (writes, sends) on
        /// this handle fail with [`std::io::ErrorKind::TimedOut`] when none
        /// frees up within `dur` (see `set_read_timeout`).
        ///
        #[doc = concat!(
                    "```\n", $setup, "\n",
                    "use std::time::Duration;\n",
                    "s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();\n",
                    "assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));\n",
                    "assert_eq!(s.read_timeout().unwrap(), None); // the two are separate\n```",
                )]
        pub fn set_write_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.inner.set_write_timeout(dur)
        }

        /// The read timeout of this handle.
        ///
        #[doc = concat!(
                    "```\n", $setup, "\n",
                    "use std::time::Duration;\n",
                    "assert_eq!(s.read_timeout().unwrap(), None); // none by default\n",
                    "s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();\n",
                    "let clone = s.try_clone().unwrap(); // a clone starts with it...\n",
                    "assert_eq!(clone.read_timeout().unwrap(), Some(Duration::from_millis(50)));\n",
                    "clone.set_read_timeout(None).unwrap(); // ...and then has its own\n",
                    "assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(50)));\n```",
                )]
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.inner.read_timeout())
        }

        /// The write timeout of this handle.
        ///
        #[doc = concat!(
                    "```\n", $setup, "\n",
                    "use std::time::Duration;\n",
                    "assert_eq!(s.write_timeout().unwrap(), None); // none by default\n",
                    "s.set_write_timeout(Some(Duration::from_millis(50))).unwrap();\n",
                    "assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_millis(50)));\n```",
                )]
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.inner.write_timeout())
        }
    };
}

/// `Debug` (showing the std socket), `AsRawFd` and `AsFd` for a socket type
/// whose `Sock` field is called `inner`.
macro_rules! impl_fd_and_debug {
    ($ty:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($ty))
                    .field(self.inner.get())
                    .finish()
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.get().as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.get().as_fd()
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for shared references to it (so
/// one fiber can read while another writes), through its `Sock` field
/// `inner`.
macro_rules! impl_stream_io {
    ($ty:ident) => {
        impl_stream_io!(@for &$ty);
        impl_stream_io!(@for $ty);
    };
    (@for $t:ty) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.read_buf(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.inner.read_bufs(bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.write_buf(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner.write_bufs(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// The endless iterator of accepted connections a listener's `incoming`
/// returns. For its example, `setup` makes a listener `s` and `connect`
/// connects a client to it (see `handle_methods`).
macro_rules! incoming_iterator {
    ($listener:ident, $stream:ident, setup: $setup:expr, connect: $connect:literal) => {
        #[doc = concat!("The iterator of [`", stringify!($listener), "::incoming`]; never returns `None`.")]
        ///
        #[doc = concat!(
            "```\n", $setup, "\n",
            "let client = ", $connect, ".unwrap();\n",
            "let mut incoming = s.incoming();\n",
            "let conn = incoming.next().unwrap().unwrap(); // parks until a client connects\n",
            "use std::io::{Read, Write};\n",
            "(&client).write_all(b\"x\").unwrap();\n",
            "let mut buf = [0u8; 1];\n",
            "(&conn).read_exact(&mut buf).unwrap();\n",
            "assert_eq!(&buf, b\"x\");\n```",
        )]
        #[derive(Debug)]
        pub struct Incoming<'a> {
            listener: &'a $listener,
        }

        impl Iterator for Incoming<'_> {
            type Item = std::io::Result<$stream>;
            fn next(&mut self) -> Option<std::io::Result<$stream>> {
                Some(self.listener.accept().map(|(s, _)| s))
            }
        }
    };
}

pub(crate) use {
    handle_methods, impl_fd_and_debug, impl_stream_io, incoming_iterator, peer_methods,
};

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
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an `accept` error concerns only the connection being accepted
/// (the peer gave up before we took it): skip it and accept the next one.
fn is_connection_aborted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionAborted || e.raw_os_error() == Some(libc::EPROTO)
}

/// Sleeps the accepting fiber between retries while descriptors are
/// exhausted: 5 ms doubling up to 1 s, so an overloaded server neither spins
/// nor falls over, and picks up again soon after descriptors free up.
#[derive(Default)]
struct Backoff(Duration);

impl Backoff {
    fn wait(&mut self) {
        self.0 = if self.0.is_zero() {
            Duration::from_millis(5)
        } else {
            (self.0 * 2).min(Duration::from_secs(1))
        };
        sylvan_runtime::sleep(self.0);
    }
}
