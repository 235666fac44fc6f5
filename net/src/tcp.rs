//! TCP: [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use sylvan_runtime::io::{Direction, IoRegistration};

use crate::addr::{each_addr, ToSocketAddrs};
use crate::sock::{is_connection_aborted, is_resource_exhaustion, Backoff, Sock};

/// The listen backlog used unless [`TcpListenerBuilder::backlog`] says
/// otherwise (the kernel caps it at `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// A TCP socket server, listening for connections; like
/// [`std::net::TcpListener`], but [`accept`](Self::accept) parks the calling
/// fiber instead of blocking its worker thread.
///
/// Bound with `SO_REUSEADDR` (a restarted server can bind at once) and a
/// backlog of [`DEFAULT_BACKLOG`]; use [`TcpListener::builder`] for
/// `SO_REUSEPORT`, another backlog or IPv6-only.
///
/// ```
/// use std::io::{Read, Write};
/// use sylvan::net::{TcpListener, TcpStream};
///
/// sylvan::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = sylvan::spawn(move || {
///         let (mut conn, _peer) = listener.accept().unwrap();
///         let mut buf = [0u8; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap(); // echo it back
///     });
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut reply = [0u8; 5];
///     client.read_exact(&mut reply).unwrap();
///     assert_eq!(&reply, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    inner: Sock<std::net::TcpListener>,
}

/// Options for binding a [`TcpListener`]; made by [`TcpListener::builder`].
#[derive(Debug, Clone)]
pub struct TcpListenerBuilder {
    backlog: u32,
    reuse_port: bool,
    only_v6: Option<bool>,
}

impl TcpListenerBuilder {
    /// How many not-yet-accepted connections the kernel queues (default
    /// [`DEFAULT_BACKLOG`]; capped by `net.core.somaxconn`).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEPORT`, so several listeners (in this process or others)
    /// can bind the same address and the kernel spreads connections between
    /// them.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// For IPv6 addresses: accept only IPv6 connections (`true`) or IPv4 too
    /// (`false`). Unset, the system default applies.
    pub fn only_v6(mut self, on: bool) -> Self {
        self.only_v6 = Some(on);
        self
    }

    /// Binds to the first address `addr` names that works.
    pub fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| self.bind_one(a))
    }

    fn bind_one(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        if self.reuse_port {
            socket.set_reuse_port(true)?;
        }
        if let (Some(v6), SocketAddr::V6(_)) = (self.only_v6, addr) {
            socket.set_only_v6(v6)?;
        }
        socket.bind(&SockAddr::from(addr))?;
        let backlog = i32::try_from(self.backlog).unwrap_or(i32::MAX);
        socket.listen(backlog)?;
        Ok(TcpListener {
            inner: Sock::new(socket.into()),
        })
    }
}

impl TcpListener {
    /// Binds a listener to the first address `addr` names that works, with
    /// the default options (see the type docs). Port 0 picks a free port;
    /// [`local_addr`](Self::local_addr) tells which.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::builder().bind(addr)
    }

    /// Options for binding: backlog, `SO_REUSEPORT`, IPv6-only.
    ///
    /// ```
    /// use sylvan::net::TcpListener;
    /// let a = TcpListener::builder().reuse_port(true).bind("127.0.0.1:0").unwrap();
    /// let port = a.local_addr().unwrap().port();
    /// // A second listener on the same port: the kernel balances between them.
    /// let b = TcpListener::builder().reuse_port(true).bind(("127.0.0.1", port)).unwrap();
    /// assert_eq!(b.local_addr().unwrap().port(), port);
    /// ```
    pub fn builder() -> TcpListenerBuilder {
        TcpListenerBuilder {
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
            only_v6: None,
        }
    }

    /// Wraps a listener made by std (it is switched to non-blocking mode).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            inner: Sock::new(listener),
        })
    }

    /// Unwraps into std's listener (left in non-blocking mode).
    pub fn into_std(self) -> std::net::TcpListener {
        self.inner.into_inner()
    }

    /// Accepts a new connection, parking until one arrives.
    ///
    /// Errors that concern only the connection being accepted (the peer reset
    /// it while it was queued) are skipped. When the process or system is out
    /// of file descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`),
    /// it does not fail and does not spin: it waits 5 ms, doubling up to 1 s,
    /// and tries again, so a server under descriptor pressure keeps serving as
    /// soon as connections close. Wrap it in [`sylvan::timeout`] to bound the
    /// wait.
    ///
    /// [`sylvan::timeout`]: sylvan_runtime::timeout
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut backoff = Backoff::default();
        loop {
            match self.inner.read(|l| l.accept()) {
                Ok((stream, addr)) => return Ok((TcpStream::from_std(stream)?, addr)),
                Err(e) if is_resource_exhaustion(&e) => backoff.wait(),
                Err(e) if is_connection_aborted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Another handle on the same listening socket.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.try_clone_with(|l| l.try_clone())?,
        })
    }

    /// Sets `IP_TTL` for accepted connections.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    /// Takes the pending `SO_ERROR`, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpListener")
            .field(self.inner.get())
            .finish()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get().as_fd()
    }
}

/// The iterator of [`TcpListener::incoming`]; never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection; like [`std::net::TcpStream`] (`Read`, `Write`, also on
/// `&TcpStream`), but blocking calls park the calling fiber instead of its
/// worker thread. Used from a plain thread, it blocks that thread.
///
/// One fiber may read while another writes (through `&TcpStream` or
/// [`try_clone`](Self::try_clone)), on the same or different workers.
///
/// **Interrupted operations.** When a read or write is interrupted by
/// [`JoinHandle::cancel`] or an expired [`sylvan::timeout`] (it unwinds) or
/// by its own read/write timeout (`TimedOut`), the stream stays open and
/// usable: the interrupted call transferred nothing. (A `write_all` or
/// `read_exact` that was interrupted part-way may have transferred a prefix,
/// as with std.)
///
/// [`JoinHandle::cancel`]: sylvan_runtime::JoinHandle::cancel
/// [`sylvan::timeout`]: sylvan_runtime::timeout
pub struct TcpStream {
    inner: Sock<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to the first address `addr` names that accepts, parking
    /// while the connection is set up (and while a host name is resolved, on
    /// the blocking pool).
    ///
    /// ```no_run
    /// use std::io::Write;
    /// let mut s = sylvan::net::TcpStream::connect("example.com:80")?;
    /// s.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_inner(a, None))
    }

    /// Connects to `addr`, failing with [`io::ErrorKind::TimedOut`] if the
    /// connection is not set up within `timeout` (which must not be zero).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_inner(*addr, Instant::now().checked_add(timeout))
    }

    fn connect_inner(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        let reg = IoRegistration::new(socket.as_raw_fd());
        let mut started = false;
        let res = reg.io(Direction::Write, deadline, || {
            if !started {
                started = true;
                return match socket.connect(&SockAddr::from(addr)) {
                    Ok(()) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                };
            }
            // Writable: the handshake finished, one way or the other.
            if let Some(e) = socket.take_error()? {
                return Err(e);
            }
            match socket.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        });
        match res {
            Ok(()) => Ok(TcpStream {
                inner: Sock::with_registration(reg, socket.into()),
            }),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out"),
            )),
            Err(e) => Err(e),
        }
    }

    /// Wraps a stream made by std (it is switched to non-blocking mode).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            inner: Sock::new(stream),
        })
    }

    /// Unwraps into std's stream (left in non-blocking mode).
    pub fn into_std(self) -> std::net::TcpStream {
        self.inner.into_inner()
    }

    /// Reads without removing the data from the queue, parking until some
    /// is there.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    /// Shuts down the read half, the write half or both. After
    /// `shutdown(Shutdown::Write)` the peer reads end-of-stream, and this side
    /// can go on reading what the peer sends.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get().nodelay()
    }

    /// Makes reads (and `peek`) on this handle fail with
    /// [`io::ErrorKind::TimedOut`] when no data comes within `dur`; `None`
    /// waits forever. A zero duration is an `InvalidInput` error. The timeout
    /// belongs to this handle (a [`try_clone`](Self::try_clone) copies it).
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Makes writes on this handle fail with [`io::ErrorKind::TimedOut`] when
    /// no buffer space frees up within `dur` (see
    /// [`set_read_timeout`](Self::set_read_timeout)).
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(dur)
    }

    /// The read timeout of this handle.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.read_timeout())
    }

    /// The write timeout of this handle.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// A second handle on the same connection (a duplicated descriptor), e.g.
    /// to give the read half to one fiber and the write half to another.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.try_clone_with(|s| s.try_clone())?,
        })
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    /// Sets `SO_LINGER`: `Some(Duration::ZERO)` makes close send a reset.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        socket2::SockRef::from(self.inner.get()).set_linger(linger)
    }

    /// Takes the pending `SO_ERROR`, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The kernel would wait for a byte before returning 0; by the
        // `Read` convention an empty buffer reads 0 at once.
        if buf.is_empty() {
            return Ok(0);
        }
        self.inner.read(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.inner.read(|mut s| s.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.inner.write(|mut s| s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.inner.write(|mut s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(self.inner.get()).finish()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get().as_fd()
    }
}
