//! UDP: [`UdpSocket`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::addr::{each_addr, ToSocketAddrs};
use crate::sock::{handle_methods, impl_fd_and_debug, peer_methods, Sock};

/// A UDP socket; like [`std::net::UdpSocket`], but receives (and sends that
/// find the buffer full) park the calling fiber instead of blocking its
/// worker thread.
///
/// Several fibers may receive on one socket at once (share it in an `Arc`);
/// each datagram goes to one of them.
///
/// ```
/// use sylvan::net::UdpSocket;
///
/// sylvan::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"hi", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    inner: Sock<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to the first address `addr` names that works.
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            std::net::UdpSocket::bind(a)
                .and_then(UdpSocket::from_std)
                .map_err(|e| crate::context::with_context(e, || format!("bind udp {a}")))
        })
    }

    /// Wraps a socket made by std (it is switched to non-blocking mode).
    ///
    /// ```
    /// let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = std_sock.local_addr().unwrap();
    /// let s = sylvan::net::UdpSocket::from_std(std_sock).unwrap();
    /// assert_eq!(s.local_addr().unwrap(), addr);
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            inner: Sock::new(socket),
        })
    }

    /// Unwraps into std's socket (left in non-blocking mode).
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = s.local_addr().unwrap();
    /// assert_eq!(s.into_std().local_addr().unwrap(), addr);
    /// ```
    pub fn into_std(self) -> std::net::UdpSocket {
        self.inner.into_inner()
    }

    /// Receives one datagram, parking until one arrives; returns its length
    /// (truncated to `buf`) and sender.
    ///
    /// ```
    /// use sylvan::net::UdpSocket;
    /// let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = server.local_addr().unwrap();
    /// let client = sylvan::spawn(move || {
    ///     let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     c.send_to(b"ping", addr).unwrap();
    ///     c.local_addr().unwrap()
    /// });
    /// let mut buf = [0u8; 64];
    /// let (n, from) = server.recv_from(&mut buf).unwrap(); // parks until a datagram arrives
    /// assert_eq!((&buf[..n], from), (&b"ping"[..], client.join().unwrap()));
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.recv_from(buf))
    }

    /// Like [`recv_from`](Self::recv_from) without taking the datagram off
    /// the queue.
    ///
    /// ```
    /// use sylvan::net::UdpSocket;
    /// let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    /// a.send_to(b"x", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.peek_from(&mut buf).unwrap().0, 1);
    /// assert_eq!(b.recv_from(&mut buf).unwrap().0, 1); // still there after the peek
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.peek_from(buf))
    }

    /// Sends one datagram to the first address `addr` names (host names are
    /// resolved on the blocking pool).
    ///
    /// ```
    /// use sylvan::net::UdpSocket;
    /// let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    /// assert_eq!(a.send_to(b"hello", b.local_addr().unwrap()).unwrap(), 5);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 5);
    /// ```
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.inner.write(|s| s.send_to(buf, to))
    }

    /// Sets the default peer: [`send`](Self::send) goes there and only its
    /// datagrams are received.
    ///
    /// ```
    /// use sylvan::net::UdpSocket;
    /// let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// a.send(b"to b").unwrap(); // no address needed now
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 4);
    /// ```
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |a| {
            self.inner
                .get()
                .connect(a)
                .map_err(|e| crate::context::with_context(e, || format!("connect udp {a}")))
        })
    }

    /// Sends one datagram to the connected peer.
    ///
    /// ```
    /// use sylvan::net::UdpSocket;
    /// let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    /// assert!(a.send(b"nowhere").is_err()); // not connected
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.send(b"ok").unwrap(), 2);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| s.send(buf))
    }

    /// Receives one datagram from the connected peer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::net::UdpSocket;
    /// let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// let err = s.recv(&mut [0u8; 8]).unwrap_err(); // nothing sent
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.recv(buf))
    }

    /// Like [`recv`](Self::recv) without taking the datagram off the queue.
    ///
    /// ```
    /// use sylvan::net::UdpSocket;
    /// let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send_to(b"abc", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.peek(&mut buf).unwrap(), 3);
    /// assert_eq!(b.recv(&mut buf).unwrap(), 3);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    handle_methods!(
        SocketAddr,
        setup: "use sylvan::net::UdpSocket;\n\
             let peer = UdpSocket::bind(\"127.0.0.1:0\").unwrap();\n\
             let s = UdpSocket::bind(\"127.0.0.1:0\").unwrap();\n\
             s.connect(peer.local_addr().unwrap()).unwrap();",
        check: "assert!(addr.ip().is_loopback() && addr.port() != 0);"
    );
    peer_methods!(
        SocketAddr,
        setup: "use sylvan::net::UdpSocket;\n\
             let peer = UdpSocket::bind(\"127.0.0.1:0\").unwrap();\n\
             let s = UdpSocket::bind(\"127.0.0.1:0\").unwrap();\n\
             s.connect(peer.local_addr().unwrap()).unwrap();",
        check: "assert_eq!(addr, peer.local_addr().unwrap());"
    );

    /// Sets `SO_BROADCAST`.
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_broadcast(true).unwrap();
    /// assert!(s.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.get().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(!s.broadcast().unwrap()); // off by default
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.get().broadcast()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_ttl(7).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 7);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.ttl().unwrap() > 0); // the system default (often 64)
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    /// Joins an IPv4 multicast group on the given interface.
    ///
    /// ```no_run
    /// // Needs a multicast-capable interface (not run here).
    /// use std::net::Ipv4Addr;
    /// let s = sylvan::net::UdpSocket::bind("0.0.0.0:5353").unwrap();
    /// let group = Ipv4Addr::new(224, 0, 0, 251); // mDNS
    /// s.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED).unwrap();
    /// let mut buf = [0u8; 1500];
    /// let (n, from) = s.recv_from(&mut buf).unwrap(); // datagrams sent to the group
    /// assert!(n <= buf.len() && !from.ip().is_unspecified());
    /// ```
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.get().join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// ```no_run
    /// // Needs a multicast-capable interface (not run here).
    /// use std::net::Ipv4Addr;
    /// let s = sylvan::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    /// let group = Ipv4Addr::new(239, 1, 2, 3);
    /// s.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED).unwrap();
    /// s.leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED).unwrap();
    /// // Leaving twice: the group is no longer joined.
    /// assert!(s.leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED).is_err());
    /// ```
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.get().leave_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group on the given interface index.
    ///
    /// ```no_run
    /// // Needs IPv6 and a multicast-capable interface (not run here).
    /// use std::net::Ipv6Addr;
    /// let s = sylvan::net::UdpSocket::bind("[::]:0").unwrap();
    /// let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb); // mDNS, link-local
    /// s.join_multicast_v6(&group, 0).unwrap(); // 0: the default interface
    /// assert!(s.local_addr().unwrap().is_ipv6());
    /// ```
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.get().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// ```no_run
    /// // Needs IPv6 and a multicast-capable interface (not run here).
    /// use std::net::Ipv6Addr;
    /// let s = sylvan::net::UdpSocket::bind("[::]:0").unwrap();
    /// let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
    /// s.join_multicast_v6(&group, 0).unwrap();
    /// s.leave_multicast_v6(&group, 0).unwrap();
    /// assert!(s.leave_multicast_v6(&group, 0).is_err()); // not joined any more
    /// ```
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.get().leave_multicast_v6(group, interface)
    }
}

impl_fd_and_debug!(UdpSocket);
