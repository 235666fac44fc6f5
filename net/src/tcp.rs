//! TCP: [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use sylvan_runtime::io::{Direction, IoRegistration};

use crate::addr::{each_addr, ToSocketAddrs};
use crate::context::with_context;
use crate::sock::{
    handle_methods, impl_fd_and_debug, impl_stream_io, incoming_iterator, peer_methods, Sock,
};

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
        each_addr(addr, |a| {
            self.bind_one(a)
                .map_err(|e| with_context(e, || format!("bind tcp {a}")))
        })
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
        let accepted = self
            .inner
            .accept(|l| l.accept())
            .and_then(|(stream, addr)| Ok((TcpStream::from_std(stream)?, addr)));
        accepted.map_err(|e| {
            with_context(e, || match self.local_addr() {
                Ok(local) => format!("accept tcp {local}"),
                Err(_) => "accept tcp".to_owned(),
            })
        })
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets `IP_TTL` for accepted connections.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    handle_methods!(SocketAddr);
}

impl_fd_and_debug!(TcpListener);
incoming_iterator!(TcpListener, TcpStream);

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
        each_addr(addr, |a| {
            TcpStream::connect_inner(a, None)
                .map_err(|e| with_context(e, || format!("connect tcp {a}")))
        })
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
            .map_err(|e| with_context(e, || format!("connect tcp {addr}")))
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

    handle_methods!(SocketAddr);
    peer_methods!(SocketAddr);

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
}

impl_stream_io!(TcpStream);
#[cfg(feature = "futures-io")]
crate::sock::impl_async_io!(TcpStream);
impl_fd_and_debug!(TcpStream);
