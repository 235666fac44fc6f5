//! Networking for sylvan fibers: [`TcpListener`], [`TcpStream`],
//! [`UdpSocket`], [`unix`] sockets and DNS ([`lookup_host`]), shaped like
//! `std::net` so code written against std ports by changing an import.
//!
//! Use it as `std::net`: `TcpListener::bind("127.0.0.1:0")`,
//! `accept`/`incoming`, `TcpStream::connect`, `Read`/`Write` (also on
//! `&TcpStream`, so one fiber reads while another writes),
//! `set_read_timeout`. Per-operation timeouts fail with `TimedOut`;
//! `sylvan::timeout` bounds a whole exchange; a cancelled or timed-out
//! operation transferred nothing and the socket stays usable. With the
//! feature `tls`, [`tls`] adds rustls streams; with `futures-io`, the stream
//! types implement `futures_io::AsyncRead`/`AsyncWrite` for async protocol
//! crates run inside a fiber.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use sylvan::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = sylvan::spawn(move || {
//!     // One fiber per connection: an upper-casing line echo.
//!     for _ in 0..10 {
//!         let (conn, _) = listener.accept().unwrap();
//!         sylvan::spawn(move || {
//!             let mut line = String::new();
//!             BufReader::new(&conn).read_line(&mut line).unwrap();
//!             (&conn).write_all(line.to_uppercase().as_bytes()).unwrap();
//!         });
//!     }
//! });
//! let clients: Vec<_> = (0..10)
//!     .map(|i| {
//!         sylvan::spawn(move || {
//!             let mut conn = TcpStream::connect(addr).unwrap();
//!             writeln!(conn, "hello {i}").unwrap();
//!             let mut reply = String::new();
//!             BufReader::new(&conn).read_line(&mut reply).unwrap();
//!             reply
//!         })
//!     })
//!     .collect();
//! for (i, c) in clients.into_iter().enumerate() {
//!     assert_eq!(c.join().unwrap(), format!("HELLO {i}\n"));
//! }
//! server.join().unwrap();
//! ```
//!
//! Every blocking call first tries the system call on a non-blocking socket;
//! if it would block, the calling fiber parks until the worker's event loop
//! reports the socket ready, and the worker runs other fibers meanwhile. The
//! mechanism is [`sylvan_runtime::io::IoRegistration`]: a socket may be used
//! by fibers on any worker over its life, and one fiber may read while another
//! writes. Used from a plain thread (outside any fiber), the same types block
//! that thread, as std's do.
//!
//! Host names are resolved with `getaddrinfo` on the blocking pool, never on
//! a worker thread ([`ToSocketAddrs`] mirrors std's trait for that reason).
//!
//! Blocked operations are park points: [`JoinHandle::cancel`] and
//! [`sylvan::timeout`] interrupt them, and the socket stays open and usable
//! (see [`TcpStream`]). Per-socket read and write timeouts fail an operation
//! with [`std::io::ErrorKind::TimedOut`].
//!
//! With the cargo feature `tls`, the module `tls` adds TLS client and server streams
//! (rustls) over [`TcpStream`].
//!
//! [`JoinHandle::cancel`]: sylvan_runtime::JoinHandle::cancel
//! [`sylvan::timeout`]: sylvan_runtime::timeout

#![forbid(unsafe_code)]

mod addr;
mod context;
mod sock;
mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
mod udp;
pub mod unix;

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener, TcpListenerBuilder, TcpStream, DEFAULT_BACKLOG};
pub use udp::UdpSocket;
