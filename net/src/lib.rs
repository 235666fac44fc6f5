//! Networking for sylvan fibers: [`TcpListener`], [`TcpStream`],
//! [`UdpSocket`], [`unix`] sockets and DNS ([`lookup_host`]), shaped like
//! `std::net` so code written against std ports by changing an import.
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
