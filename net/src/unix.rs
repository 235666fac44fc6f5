//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`].
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use sylvan::net::unix::UnixStream;
//! // A request/reply over a connected pair, one side in a fiber.
//! let (client, server) = UnixStream::pair().unwrap();
//! let replier = sylvan::spawn(move || {
//!     let mut line = String::new();
//!     BufReader::new(&server).read_line(&mut line).unwrap();
//!     (&server).write_all(line.to_uppercase().as_bytes()).unwrap();
//! });
//! (&client).write_all(b"ping\n").unwrap();
//! let mut reply = String::new();
//! BufReader::new(&client).read_line(&mut reply).unwrap();
//! assert_eq!(reply, "PING\n");
//! replier.join().unwrap();
//! ```

use std::io;
use std::net::Shutdown;
use std::os::unix::net as std_unix;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::sock::{
    handle_methods, impl_fd_and_debug, impl_stream_io, incoming_iterator, peer_methods, Sock,
};

pub use std::os::unix::net::SocketAddr;

/// A Unix domain socket server; like [`std::os::unix::net::UnixListener`],
/// but [`accept`](Self::accept) parks the calling fiber.
///
/// ```
/// use std::io::{Read, Write};
/// use sylvan::net::unix::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("sylvan-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let p = path.clone();
/// sylvan::run(move || {
///     let listener = UnixListener::bind(&p).unwrap();
///     let server = sylvan::spawn(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         conn.write_all(b"hello").unwrap();
///     });
///     let mut client = UnixStream::connect(&p).unwrap();
///     let mut s = String::new();
///     client.read_to_string(&mut s).unwrap();
///     assert_eq!(s, "hello");
///     server.join().unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    inner: Sock<std_unix::UnixListener>,
}

/// The doc examples' set-up of a listener `s` on a socket file `path`
/// (removed when the example ends).
macro_rules! listener_doc_setup {
    () => {
        "# struct RemoveOnDrop(std::path::PathBuf);\n\
        # impl Drop for RemoveOnDrop {\n\
        #     fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); }\n\
        # }\n\
        use sylvan::net::unix::UnixListener;\n\
        let path = std::env::temp_dir().join(format!(\"sylvan-doc-{}.sock\", std::process::id()));\n\
        # let _ = std::fs::remove_file(&path);\n\
        # let _rm = RemoveOnDrop(path.clone());\n\
        let s = UnixListener::bind(&path).unwrap();"
    };
}

impl UnixListener {
    /// Binds a listener to the socket file at `path` (which must not exist).
    ///
    /// ```
    /// use sylvan::net::unix::UnixListener;
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-bind-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path).unwrap();
    /// assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// assert!(UnixListener::bind(&path).is_err()); // the file exists now
    /// drop(listener);
    /// std::fs::remove_file(&path).unwrap(); // closing does not remove it
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        std_unix::UnixListener::bind(path)
            .and_then(UnixListener::from_std)
            .map_err(|e| {
                crate::context::with_context(e, || format!("bind unix {}", path.display()))
            })
    }

    /// Wraps a listener made by std (it is switched to non-blocking mode).
    ///
    /// ```
    /// use sylvan::net::unix::UnixListener;
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-from-std-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let listener = UnixListener::from_std(std_listener).unwrap();
    /// assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_std(listener: std_unix::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            inner: Sock::new(listener),
        })
    }

    /// Unwraps into std's listener (left in non-blocking mode).
    ///
    /// ```
    /// use sylvan::net::unix::UnixListener;
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-into-std-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let std_listener = UnixListener::bind(&path).unwrap().into_std();
    /// let err = std_listener.accept().unwrap_err(); // no client, and it does not block
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn into_std(self) -> std_unix::UnixListener {
        self.inner.into_inner()
    }

    /// Accepts a connection, parking until one arrives. Out of descriptors,
    /// it backs off and retries like [`TcpListener::accept`](crate::TcpListener::accept).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::net::unix::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-accept-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path).unwrap();
    /// let p = path.clone();
    /// let client = sylvan::spawn(move || UnixStream::connect(&p).unwrap().write_all(b"hi").unwrap());
    /// let (mut conn, _addr) = listener.accept().unwrap();
    /// let mut s = String::new();
    /// conn.read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "hi");
    /// client.join().unwrap();
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let accepted = self
            .inner
            .accept(|l| l.accept())
            .and_then(|(stream, addr)| Ok((UnixStream::from_std(stream)?, addr)));
        accepted.map_err(|e| crate::context::with_context(e, || "accept unix".to_owned()))
    }

    /// An endless iterator of accepted connections.
    ///
    /// ```
    /// use sylvan::net::unix::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-incoming-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path).unwrap();
    /// let p = path.clone();
    /// let clients = sylvan::spawn(move || {
    ///     for _ in 0..2 {
    ///         drop(UnixStream::connect(&p).unwrap());
    ///     }
    /// });
    /// let served = listener.incoming().take(2).filter(|c| c.is_ok()).count();
    /// assert_eq!(served, 2);
    /// clients.join().unwrap();
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    handle_methods!(
        SocketAddr,
        setup: listener_doc_setup!(),
        check: "assert_eq!(addr.as_pathname(), Some(path.as_path()));"
    );
}

impl_fd_and_debug!(UnixListener);
incoming_iterator!(
    UnixListener,
    UnixStream,
    setup: listener_doc_setup!(),
    connect: "sylvan::net::unix::UnixStream::connect(&path)"
);

/// A Unix domain stream connection; like
/// [`std::os::unix::net::UnixStream`], with the same parking behaviour and
/// interruption guarantees as [`TcpStream`](crate::TcpStream).
///
/// ```
/// use std::io::{Read, Write};
/// use sylvan::net::unix::UnixStream;
///
/// let (a, b) = UnixStream::pair().unwrap();
/// let echo = sylvan::spawn(move || {
///     let mut b = b;
///     let mut buf = [0u8; 4];
///     b.read_exact(&mut buf).unwrap();
///     b.write_all(&buf).unwrap();
/// });
/// (&a).write_all(b"ping").unwrap(); // `&UnixStream` is Read and Write too
/// let mut reply = [0u8; 4];
/// (&a).read_exact(&mut reply).unwrap();
/// assert_eq!(&reply, b"ping");
/// echo.join().unwrap();
/// ```
pub struct UnixStream {
    inner: Sock<std_unix::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file at `path`. When the listener's backlog is
    /// full the kernel refuses at once (`EAGAIN`); this retries with a short
    /// back-off (1 ms doubling to 50 ms) instead of failing.
    ///
    /// ```
    /// use sylvan::net::unix::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-connect-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path).unwrap();
    /// let stream = UnixStream::connect(&path).unwrap(); // queued in the backlog until accepted
    /// let (_conn, _) = listener.accept().unwrap();
    /// assert_eq!(stream.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// assert!(UnixStream::connect(&path).is_err()); // nothing there any more
    /// ```
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        UnixStream::connect_inner(path).map_err(|e| {
            crate::context::with_context(e, || format!("connect unix {}", path.display()))
        })
    }

    fn connect_inner(path: &Path) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        let mut wait = Duration::from_millis(1);
        loop {
            match socket.connect(&addr) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    sylvan_runtime::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(50));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream {
            inner: Sock::new(std_unix::UnixStream::from(std::os::fd::OwnedFd::from(
                socket,
            ))),
        })
    }

    /// A connected pair of streams.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut a, mut b) = sylvan::net::unix::UnixStream::pair().unwrap();
    /// a.write_all(b"x").unwrap();
    /// let mut buf = [0u8; 1];
    /// b.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"x");
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a stream made by std (it is switched to non-blocking mode).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::net::unix::UnixStream;
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let (mut a, mut b) = (UnixStream::from_std(a).unwrap(), UnixStream::from_std(b).unwrap());
    /// a.write_all(b"ok").unwrap();
    /// let mut buf = [0u8; 2];
    /// b.read_exact(&mut buf).unwrap(); // parks (here: blocks) until the bytes are there
    /// assert_eq!(&buf, b"ok");
    /// ```
    pub fn from_std(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            inner: Sock::new(stream),
        })
    }

    /// Unwraps into std's stream (left in non-blocking mode).
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, _b) = sylvan::net::unix::UnixStream::pair().unwrap();
    /// let mut std_stream = a.into_std();
    /// let err = std_stream.read(&mut [0u8; 1]).unwrap_err(); // nothing sent, and no wait
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn into_std(self) -> std_unix::UnixStream {
        self.inner.into_inner()
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// let (a, mut b) = sylvan::net::unix::UnixStream::pair().unwrap();
    /// a.shutdown(Shutdown::Write).unwrap();
    /// let mut s = String::new();
    /// assert_eq!(b.read_to_string(&mut s).unwrap(), 0); // end of stream at once
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    handle_methods!(
        SocketAddr,
        setup: "use sylvan::net::unix::UnixStream;\n\
             let (s, peer) = UnixStream::pair().unwrap();",
        check: "assert!(addr.is_unnamed()); // a pair has no file name"
    );
    peer_methods!(
        SocketAddr,
        setup: "use sylvan::net::unix::UnixStream;\n\
             let (s, peer) = UnixStream::pair().unwrap();",
        check: "assert!(addr.is_unnamed()); // `peer` has no file name either"
    );
}

impl_stream_io!(UnixStream);
#[cfg(feature = "futures-io")]
crate::sock::impl_async_io!(UnixStream);
impl_fd_and_debug!(UnixStream);
