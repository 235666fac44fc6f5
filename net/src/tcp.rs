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
///
/// ```
/// use sylvan::net::{TcpListener, DEFAULT_BACKLOG};
/// // These two bind the same way:
/// let a = TcpListener::bind("127.0.0.1:0").unwrap();
/// let b = TcpListener::builder().backlog(DEFAULT_BACKLOG).bind("127.0.0.1:0").unwrap();
/// assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap());
/// ```
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
///
/// ```
/// use sylvan::net::TcpListener;
/// let listener = TcpListener::builder()
///     .backlog(16)
///     .reuse_port(true)
///     .bind("127.0.0.1:0")
///     .unwrap();
/// assert!(listener.local_addr().unwrap().ip().is_loopback());
/// ```
#[derive(Debug, Clone)]
pub struct TcpListenerBuilder {
    backlog: u32,
    reuse_port: bool,
    only_v6: Option<bool>,
}

impl TcpListenerBuilder {
    /// How many not-yet-accepted connections the kernel queues (default
    /// [`DEFAULT_BACKLOG`]; capped by `net.core.somaxconn`).
    ///
    /// ```
    /// let l = sylvan::net::TcpListener::builder().backlog(1).bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEPORT`, so several listeners (in this process or others)
    /// can bind the same address and the kernel spreads connections between
    /// them.
    ///
    /// ```
    /// use sylvan::net::TcpListener;
    /// let a = TcpListener::builder().reuse_port(true).bind("127.0.0.1:0").unwrap();
    /// let addr = a.local_addr().unwrap();
    /// let b = TcpListener::builder().reuse_port(true).bind(addr).unwrap(); // same port
    /// assert_eq!(b.local_addr().unwrap(), addr);
    /// assert!(TcpListener::builder().reuse_port(false).bind(addr).is_err()); // all must opt in
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// For IPv6 addresses: accept only IPv6 connections (`true`) or IPv4 too
    /// (`false`). Unset, the system default applies.
    ///
    /// ```
    /// // Where IPv6 is available, a v6-only listener on [::] leaves IPv4 to others.
    /// if let Ok(l) = sylvan::net::TcpListener::builder().only_v6(true).bind("[::1]:0") {
    ///     assert!(l.local_addr().unwrap().is_ipv6());
    /// }
    /// ```
    pub fn only_v6(mut self, on: bool) -> Self {
        self.only_v6 = Some(on);
        self
    }

    /// Binds to the first address `addr` names that works.
    ///
    /// ```
    /// let builder = sylvan::net::TcpListener::builder().backlog(64);
    /// let (a, b) = (builder.bind("127.0.0.1:0").unwrap(), builder.bind("127.0.0.1:0").unwrap());
    /// assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap()); // one builder, many listeners
    /// ```
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
    ///
    /// ```
    /// use sylvan::net::TcpListener;
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap(); // port 0: the kernel picks one
    /// let addr = listener.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    /// // The port is taken now (no SO_REUSEPORT on either):
    /// assert!(TcpListener::bind(addr).is_err());
    /// ```
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
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = std_listener.local_addr().unwrap();
    /// let listener = sylvan::net::TcpListener::from_std(std_listener).unwrap();
    /// assert_eq!(listener.local_addr().unwrap(), addr);
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            inner: Sock::new(listener),
        })
    }

    /// Unwraps into std's listener (left in non-blocking mode).
    ///
    /// ```
    /// let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let std_listener = listener.into_std();
    /// assert_eq!(std_listener.local_addr().unwrap(), addr);
    /// ```
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
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let client = sylvan::spawn(move || TcpStream::connect(addr).unwrap().local_addr().unwrap());
    /// let (_conn, peer) = listener.accept().unwrap(); // parks (here: blocks this thread) until a client connects
    /// assert_eq!(peer, client.join().unwrap());
    /// ```
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
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let server = sylvan::spawn(move || {
    ///     // Serve exactly three connections, one fiber each.
    ///     for conn in listener.incoming().take(3) {
    ///         let mut conn = conn.unwrap();
    ///         sylvan::spawn(move || {
    ///             let mut buf = [0u8; 1];
    ///             conn.read_exact(&mut buf).unwrap();
    ///             conn.write_all(&[buf[0] + 1]).unwrap();
    ///         });
    ///     }
    /// });
    /// for i in 0..3u8 {
    ///     let mut c = TcpStream::connect(addr).unwrap();
    ///     c.write_all(&[i]).unwrap();
    ///     let mut reply = [0u8; 1];
    ///     c.read_exact(&mut reply).unwrap();
    ///     assert_eq!(reply[0], i + 1);
    /// }
    /// server.join().unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets `IP_TTL` for accepted connections.
    ///
    /// ```
    /// let l = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(42).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 42);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    ///
    /// ```
    /// let l = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.ttl().unwrap() > 0); // the system default (often 64)
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    handle_methods!(
        SocketAddr,
        setup: "use sylvan::net::TcpListener;\n\
             let s = TcpListener::bind(\"127.0.0.1:0\").unwrap();",
        check: "assert!(addr.ip().is_loopback() && addr.port() != 0);"
    );
}

impl_fd_and_debug!(TcpListener);
incoming_iterator!(
    TcpListener,
    TcpStream,
    setup: "use sylvan::net::TcpListener;\n\
         let s = TcpListener::bind(\"127.0.0.1:0\").unwrap();",
    connect: "sylvan::net::TcpStream::connect(s.local_addr().unwrap())"
);

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
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::time::Duration;
/// use sylvan::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = sylvan::spawn(move || {
///     let (conn, _) = listener.accept().unwrap();
///     // Read lines and answer each one; `&TcpStream` is Read and Write too.
///     for line in BufReader::new(&conn).lines() {
///         let line = line.unwrap();
///         (&conn).write_all(format!("{}\n", line.len()).as_bytes()).unwrap();
///     }
/// });
///
/// let stream = TcpStream::connect(addr).unwrap();
/// stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
/// let mut replies = BufReader::new(stream.try_clone().unwrap()); // a second handle for reading
/// let mut writer = stream;
/// for word in ["fiber", "hub"] {
///     writer.write_all(format!("{word}\n").as_bytes()).unwrap();
///     let mut reply = String::new();
///     replies.read_line(&mut reply).unwrap();
///     assert_eq!(reply.trim(), word.len().to_string());
/// }
/// writer.shutdown(std::net::Shutdown::Write).unwrap(); // the server's `lines()` ends
/// server.join().unwrap();
/// ```
///
/// A read that waits longer than the read timeout fails with `TimedOut`, and
/// the stream stays usable:
///
/// ```
/// use std::io::{ErrorKind, Read, Write};
/// use std::time::Duration;
/// use sylvan::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let (mut server, _) = listener.accept().unwrap();
/// client.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
/// let mut buf = [0u8; 4];
/// assert_eq!(client.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
/// server.write_all(b"late").unwrap();
/// client.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"late");
/// ```
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
    ///
    /// Connecting to a local server (the accept may happen after the connect
    /// returns: the kernel completes the handshake from its backlog):
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let stream = TcpStream::connect(addr).unwrap();
    /// assert_eq!(stream.peer_addr().unwrap(), addr);
    /// // Nobody listening: refused.
    /// drop(listener);
    /// let err = TcpStream::connect(addr).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| {
            TcpStream::connect_inner(a, None)
                .map_err(|e| with_context(e, || format!("connect tcp {a}")))
        })
    }

    /// Connects to `addr`, failing with [`io::ErrorKind::TimedOut`] if the
    /// connection is not set up within `timeout` (which must not be zero).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), addr);
    /// assert!(TcpStream::connect_timeout(&addr, Duration::ZERO).is_err()); // zero is invalid
    /// ```
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
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let stream = sylvan::net::TcpStream::from_std(std_stream).unwrap();
    /// assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            inner: Sock::new(stream),
        })
    }

    /// Unwraps into std's stream (left in non-blocking mode).
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let std_stream = stream.into_std();
    /// std_stream.set_nonblocking(false).unwrap(); // it was left non-blocking
    /// ```
    pub fn into_std(self) -> std::net::TcpStream {
        self.inner.into_inner()
    }

    /// Reads without removing the data from the queue, parking until some
    /// is there.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let (mut server, _) = listener.accept().unwrap();
    /// client.write_all(b"GET").unwrap();
    /// let mut buf = [0u8; 3];
    /// let n = server.peek(&mut buf).unwrap(); // parks until data is there
    /// assert_eq!(&buf[..n], &b"GET"[..n]);
    /// let mut all = [0u8; 3];
    /// server.read_exact(&mut all).unwrap(); // still there to read
    /// assert_eq!(&all, b"GET");
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    /// A receive-side step that may also send (TLS's read with records of
    /// its own still queued), until the read timeout: see
    /// [`IoRegistration::io_either`](sylvan_runtime::io::IoRegistration::io_either).
    /// The step gets the non-blocking std socket.
    #[cfg(feature = "tls")]
    pub(crate) fn read_either<T>(
        &self,
        op: impl FnMut(&std::net::TcpStream) -> io::Result<Result<T, sylvan_runtime::io::Wait>>,
    ) -> io::Result<T> {
        self.inner.read_either(op)
    }

    /// Shuts down the read half, the write half or both. After
    /// `shutdown(Shutdown::Write)` the peer reads end-of-stream, and this side
    /// can go on reading what the peer sends.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::Shutdown;
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let (mut server, _) = listener.accept().unwrap();
    /// client.write_all(b"request").unwrap();
    /// client.shutdown(Shutdown::Write).unwrap();
    /// let mut req = String::new();
    /// server.read_to_string(&mut req).unwrap(); // ends at the shutdown
    /// server.write_all(b"reply").unwrap(); // the other direction still works
    /// drop(server);
    /// let mut reply = String::new();
    /// client.read_to_string(&mut reply).unwrap();
    /// assert_eq!((req.as_str(), reply.as_str()), ("request", "reply"));
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// assert!(!s.nodelay().unwrap()); // Nagle's algorithm is on by default
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get().nodelay()
    }

    handle_methods!(
        SocketAddr,
        setup: "use sylvan::net::{TcpListener, TcpStream};\n\
             let peer = TcpListener::bind(\"127.0.0.1:0\").unwrap();\n\
             let s = TcpStream::connect(peer.local_addr().unwrap()).unwrap();",
        check: "assert!(addr.ip().is_loopback() && addr.port() != 0);"
    );
    peer_methods!(
        SocketAddr,
        setup: "use sylvan::net::{TcpListener, TcpStream};\n\
             let peer = TcpListener::bind(\"127.0.0.1:0\").unwrap();\n\
             let s = TcpStream::connect(peer.local_addr().unwrap()).unwrap();",
        check: "assert_eq!(addr, peer.local_addr().unwrap());"
    );

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// s.set_ttl(16).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 16);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    ///
    /// ```
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// assert!(s.ttl().unwrap() > 0); // the system default (often 64)
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    /// Sets `SO_LINGER`: `Some(Duration::ZERO)` makes close send a reset.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// use sylvan::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let (mut server, _) = listener.accept().unwrap();
    /// client.set_linger(Some(Duration::ZERO)).unwrap();
    /// drop(client); // sends a reset, not a FIN
    /// let err = server.read(&mut [0u8; 1]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        socket2::SockRef::from(self.inner.get()).set_linger(linger)
    }
}

impl_stream_io!(TcpStream);
#[cfg(feature = "futures-io")]
crate::sock::impl_async_io!(TcpStream);
impl_fd_and_debug!(TcpStream);
