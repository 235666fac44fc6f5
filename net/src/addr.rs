//! Address resolution that never blocks a hub: host names are looked up with
//! `getaddrinfo` on the blocking pool.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::vec;

use crate::sock::off_hub;

/// Values that name one or more socket addresses, like
/// [`std::net::ToSocketAddrs`] and implemented for the same types — but a
/// host name is resolved on sylvan's blocking pool, so the calling fiber
/// parks instead of blocking its worker thread.
///
/// Literal addresses (`"127.0.0.1:80"`, `"[::1]:80"`, `SocketAddr`, …) are
/// parsed in place and never leave the fiber.
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
/// use sylvan::net::{ToSocketAddrs, UdpSocket};
///
/// // Everything std's trait accepts: "host:port", (host, port), addresses…
/// let a: Vec<SocketAddr> = "127.0.0.1:53".to_socket_addrs().unwrap().collect();
/// let b: Vec<SocketAddr> = (Ipv4Addr::LOCALHOST, 53).to_socket_addrs().unwrap().collect();
/// assert_eq!(a, b);
/// // …so sylvan's constructors take the same arguments as std's.
/// let s = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
/// assert!(s.local_addr().unwrap().ip().is_loopback());
/// ```
pub trait ToSocketAddrs {
    /// The addresses this value names.
    type Iter: Iterator<Item = SocketAddr>;

    /// Resolves this value into socket addresses (see the trait docs).
    ///
    /// ```
    /// use sylvan::net::ToSocketAddrs;
    /// let mut addrs = ("127.0.0.1", 8080).to_socket_addrs().unwrap();
    /// assert_eq!(addrs.next().unwrap().port(), 8080);
    /// ```
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

/// Resolves `host` (a `"name:port"` string, a `(name, port)` pair or anything
/// else that is [`ToSocketAddrs`]) into socket addresses, on the blocking pool
/// when called from a fiber. Resolver failures come back as an `io::Error`
/// carrying the resolver's message.
///
/// ```
/// let addrs: Vec<_> = sylvan::net::lookup_host("localhost:80").unwrap().collect();
/// assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// ```
pub fn lookup_host(host: impl ToSocketAddrs) -> io::Result<vec::IntoIter<SocketAddr>> {
    let addrs: Vec<SocketAddr> = host.to_socket_addrs()?.collect();
    Ok(addrs.into_iter())
}

fn one(addr: SocketAddr) -> io::Result<vec::IntoIter<SocketAddr>> {
    Ok(vec![addr].into_iter())
}

/// `getaddrinfo` for `host` and `port`, off the hub.
fn resolve(host: String, port: u16) -> io::Result<vec::IntoIter<SocketAddr>> {
    off_hub(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(|it| it.collect::<Vec<_>>().into_iter())
            .map_err(|e| crate::context::with_context(e, || format!("lookup {host}")))
    })
}

impl ToSocketAddrs for SocketAddr {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        one(*self)
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        one(SocketAddr::V4(*self))
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        one(SocketAddr::V6(*self))
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        one(SocketAddr::new(self.0, self.1))
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        one(SocketAddr::new(IpAddr::V4(self.0), self.1))
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        one(SocketAddr::new(IpAddr::V6(self.0), self.1))
    }
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => one(SocketAddr::new(ip, port)),
            Err(_) => resolve(host.to_owned(), port),
        }
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return one(addr);
        }
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address");
        let (host, port) = self.rsplit_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().map_err(|_| invalid())?;
        (host, port).to_socket_addrs()
    }
}

impl ToSocketAddrs for String {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = std::iter::Copied<std::slice::Iter<'a, SocketAddr>>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().copied())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (**self).to_socket_addrs()
    }
}

/// Tries `f` on each address `addrs` names, returning the first success or
/// the last error.
pub(crate) fn each_addr<T>(
    addrs: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addrs.to_socket_addrs()? {
        match f(addr) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse_without_resolving() {
        let v: Vec<_> = "127.0.0.1:80".to_socket_addrs().unwrap().collect();
        assert_eq!(v, vec!["127.0.0.1:80".parse().unwrap()]);
        let v: Vec<_> = "[::1]:8080".to_socket_addrs().unwrap().collect();
        assert_eq!(v, vec!["[::1]:8080".parse().unwrap()]);
        let v: Vec<_> = ("10.0.0.1", 9).to_socket_addrs().unwrap().collect();
        assert_eq!(v, vec!["10.0.0.1:9".parse().unwrap()]);
    }

    #[test]
    fn malformed_addresses_are_invalid_input() {
        for bad in ["no-port", "host:notaport", "host:99999"] {
            let err = bad.to_socket_addrs().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
