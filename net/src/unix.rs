//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net as std_unix;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::sock::{is_connection_aborted, is_resource_exhaustion, Backoff, Sock};

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

impl UnixListener {
    /// Binds a listener to the socket file at `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_std(std_unix::UnixListener::bind(path)?)
    }

    /// Wraps a listener made by std (it is switched to non-blocking mode).
    pub fn from_std(listener: std_unix::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            inner: Sock::new(listener),
        })
    }

    /// Unwraps into std's listener (left in non-blocking mode).
    pub fn into_std(self) -> std_unix::UnixListener {
        self.inner.into_inner()
    }

    /// Accepts a connection, parking until one arrives. Out of descriptors,
    /// it backs off and retries like [`TcpListener::accept`](crate::TcpListener::accept).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let mut backoff = Backoff::default();
        loop {
            match self.inner.read(|l| l.accept()) {
                Ok((stream, addr)) => return Ok((UnixStream::from_std(stream)?, addr)),
                Err(e) if is_resource_exhaustion(&e) => backoff.wait(),
                Err(e) if is_connection_aborted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Another handle on the same listening socket.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: self.inner.try_clone_with(|l| l.try_clone())?,
        })
    }

    /// Takes the pending `SO_ERROR`, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixListener")
            .field(self.inner.get())
            .finish()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get().as_fd()
    }
}

/// The iterator of [`UnixListener::incoming`]; never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A Unix domain stream connection; like
/// [`std::os::unix::net::UnixStream`], with the same parking behaviour and
/// interruption guarantees as [`TcpStream`](crate::TcpStream).
pub struct UnixStream {
    inner: Sock<std_unix::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file at `path`. When the listener's backlog is
    /// full the kernel refuses at once (`EAGAIN`); this retries with a short
    /// back-off (1 ms doubling to 50 ms) instead of failing.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
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
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a stream made by std (it is switched to non-blocking mode).
    pub fn from_std(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            inner: Sock::new(stream),
        })
    }

    /// Unwraps into std's stream (left in non-blocking mode).
    pub fn into_std(self) -> std_unix::UnixStream {
        self.inner.into_inner()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Makes reads fail with [`io::ErrorKind::TimedOut`] when no data comes
    /// within `dur` (`None`: wait forever; zero is `InvalidInput`).
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Makes writes fail with [`io::ErrorKind::TimedOut`] when the buffer
    /// stays full for `dur`.
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

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    /// A second handle on the same connection.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: self.inner.try_clone_with(|s| s.try_clone())?,
        })
    }

    /// Takes the pending `SO_ERROR`, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }
}

impl Read for &UnixStream {
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

impl Write for &UnixStream {
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

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
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

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixStream").field(self.inner.get()).finish()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get().as_fd()
    }
}
