//! TLS over [`TcpStream`] (cargo feature `tls`): a client side,
//! [`TlsConnector`], a server side, [`TlsAcceptor`], and the one stream type
//! both produce, [`TlsStream`], which is `Read + Write` like the socket
//! under it. Built on [rustls] with the *ring* crypto provider; [`rustls`] is
//! re-exported so you can build your own configurations.
//!
//! **Contract.** `connect` and `accept` return once the handshake is done.
//! Every wait inside them and inside `read`/`write` is a wait on the
//! socket, so it parks the calling fiber (or blocks a plain thread), obeys
//! the socket's [`set_read_timeout`](TcpStream::set_read_timeout) and
//! [`set_write_timeout`](TcpStream::set_write_timeout) (`TimedOut`), and is a
//! park point where [`JoinHandle::cancel`] and [`sylvan::timeout`] land.
//!
//! **Security defaults.** A [`TlsConnector`] verifies the server's
//! certificate chain against Mozilla's root certificates (the
//! `webpki-roots` crate; the system's store is not consulted) plus any you
//! add, and checks that the certificate is valid for the name passed to
//! [`connect`](TlsConnector::connect), which is also sent as SNI. TLS 1.2
//! and 1.3 with rustls' safe default cipher suites; no client certificates.
//! Both sides offer the ALPN protocol `http/1.1` unless told otherwise.
//! [`TlsConnectorBuilder::danger_accept_invalid_certs`] turns verification
//! off, which is only for tests.
//!
//! **Errors** are [`io::Error`]s. A failed handshake reads `tls handshake
//! with localhost: invalid peer certificate: UnknownIssuer` and has kind
//! [`InvalidData`](io::ErrorKind::InvalidData) when the peer or its
//! certificate was at fault; socket errors keep their kind (`TimedOut`,
//! `ConnectionReset`, …) with the same prefix.
//!
//! **End of stream.** A peer that ends with TLS `close_notify` (as
//! [`TlsStream::shutdown`] and dropping a [`TlsStream`] do, but not a drop
//! while the fiber unwinds) reads as
//! `Ok(0)`. A TCP close without `close_notify` reads as an
//! [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error once the data
//! before it has been read: the data may have been cut short by an attacker
//! (many HTTP servers close this way; a protocol that frames its own
//! messages, as HTTP with `Content-Length` does, can treat it as a close).
//!
//! ```
//! use std::io::{Read, Write};
//! use sylvan::net::tls::{TlsAcceptor, TlsConnector};
//! use sylvan::net::{TcpListener, TcpStream};
//!
//! // A self-signed certificate for "localhost" (a real server loads its own
//! // with TlsAcceptor::from_pem_files).
//! let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
//! let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
//! // The client trusts that certificate (and not the web's roots).
//! let connector = TlsConnector::builder()
//!     .web_roots(false)
//!     .add_root_certificates_pem(cert.as_bytes())?
//!     .build()?;
//!
//! sylvan::run(move || {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = sylvan::spawn(move || -> std::io::Result<()> {
//!         let (tcp, _) = listener.accept()?;
//!         let mut tls = acceptor.accept(tcp)?;
//!         let mut line = [0u8; 5];
//!         tls.read_exact(&mut line)?;
//!         tls.write_all(&line)?; // echo
//!         tls.shutdown()
//!     });
//!     let mut tls = connector.connect("localhost", TcpStream::connect(addr)?)?;
//!     tls.write_all(b"hello")?;
//!     let mut echoed = Vec::new();
//!     tls.read_to_end(&mut echoed)?; // Ok(0) at the server's close_notify
//!     assert_eq!(echoed, b"hello");
//!     server.join().unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [rustls]: https://docs.rs/rustls/0.23
//! [`JoinHandle::cancel`]: sylvan_runtime::JoinHandle::cancel
//! [`sylvan::timeout`]: sylvan_runtime::timeout

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rustls;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme,
};

use sylvan_runtime::io::Wait;

use crate::context::with_context;
use crate::sock::off_hub;
use crate::TcpStream;

/// The ALPN protocol both sides offer unless told otherwise.
const HTTP_1_1: &[u8] = b"http/1.1";

/// The client side of TLS: verifies a server and wraps a connected
/// [`TcpStream`] in a [`TlsStream`]. Cheap to clone (the configuration is
/// shared); make one and use it for every connection.
///
/// [`TlsConnector::new`] trusts the web's roots and offers ALPN `http/1.1`;
/// [`TlsConnector::builder`] adds roots (a private CA), changes ALPN or,
/// for tests, turns verification off; [`TlsConnector::from_config`] takes
/// any rustls configuration.
///
/// ```
/// use sylvan::net::tls::TlsConnector;
/// // For public servers: the web's roots, ALPN http/1.1.
/// let public = TlsConnector::new();
/// assert_eq!(public.config().alpn_protocols, [b"http/1.1".to_vec()]);
/// // A connector is cheap to clone: share one between fibers.
/// let for_a_fiber = public.clone();
/// assert!(std::sync::Arc::ptr_eq(public.config(), for_a_fiber.config()));
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// A connector that trusts the web's root certificates (Mozilla's, from
    /// `webpki-roots`) and offers ALPN `http/1.1`.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use sylvan::net::{tls::TlsConnector, TcpStream};
    /// let tcp = TcpStream::connect("example.com:443")?;
    /// let mut tls = TlsConnector::new().connect("example.com", tcp)?;
    /// tls.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
    /// let mut page = Vec::new();
    /// tls.read_to_end(&mut page)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> TlsConnector {
        TlsConnector::builder()
            .build()
            .expect("the default client configuration is valid")
    }

    /// Options: extra root certificates, whether to trust the web's roots,
    /// ALPN protocols, and (for tests) no verification.
    ///
    /// ```
    /// use sylvan::net::tls::TlsConnector;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let connector = TlsConnector::builder()
    ///     .web_roots(false) // trust only the private CA
    ///     .add_root_certificates_pem(made.cert.pem().as_bytes())?
    ///     .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
    ///     .build()?;
    /// assert_eq!(connector.config().alpn_protocols.len(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> TlsConnectorBuilder {
        TlsConnectorBuilder {
            roots: RootCertStore::empty(),
            web_roots: true,
            alpn: vec![HTTP_1_1.to_vec()],
            accept_invalid_certs: false,
        }
    }

    /// A connector with a configuration you built with [`rustls`] (client
    /// certificates, other protocol versions, a custom verifier, …).
    ///
    /// ```
    /// use sylvan::net::tls::TlsConnector;
    /// // Start from another connector's configuration and change one thing.
    /// let mut config = (**TlsConnector::new().config()).clone();
    /// config.alpn_protocols.clear();
    /// let connector = TlsConnector::from_config(std::sync::Arc::new(config));
    /// assert!(connector.config().alpn_protocols.is_empty());
    /// ```
    pub fn from_config(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// The configuration every connection uses.
    ///
    /// ```
    /// let c = sylvan::net::tls::TlsConnector::new();
    /// assert!(c.config().enable_sni);
    /// ```
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Performs the TLS handshake as the client over `stream` and returns
    /// the stream once it is done. `server_name` is the host name (or IP
    /// address) the certificate must be valid for; a host name is also sent
    /// as SNI.
    ///
    /// The handshake waits on the socket: it parks the calling fiber, and
    /// `stream`'s read and write timeouts bound each wait (`TimedOut`). To
    /// bound the whole handshake, wrap the call in [`sylvan::timeout`]; if
    /// that (or [`JoinHandle::cancel`]) interrupts it, the stream is dropped
    /// and the connection closed.
    ///
    /// Errors name the server: `tls handshake with localhost: invalid peer
    /// certificate: UnknownIssuer` (kind `InvalidData`); an invalid
    /// `server_name` is `InvalidInput`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// use sylvan::net::{TcpListener, TcpStream};
    ///
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// let trusting = TlsConnector::builder()
    ///     .add_root_certificates_pem(cert.as_bytes())?
    ///     .build()?;
    ///
    /// sylvan::run(move || {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let server = sylvan::spawn(move || {
    ///         for _ in 0..2 {
    ///             let (tcp, _) = listener.accept()?;
    ///             if let Ok(mut tls) = acceptor.accept(tcp) {
    ///                 tls.write_all(b"hi")?;
    ///                 tls.shutdown()?;
    ///             }
    ///         }
    ///         Ok::<(), std::io::Error>(())
    ///     });
    ///     // A connector that trusts only the web's roots refuses the
    ///     // self-signed certificate...
    ///     let err = TlsConnector::new()
    ///         .connect("localhost", TcpStream::connect(addr)?)
    ///         .unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    ///     assert!(err.to_string().starts_with("tls handshake with localhost: "), "{err}");
    ///     // ...one told to trust it connects.
    ///     let mut tls = trusting.connect("localhost", TcpStream::connect(addr)?)?;
    ///     assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    ///     let mut hi = String::new();
    ///     tls.read_to_string(&mut hi)?;
    ///     assert_eq!(hi, "hi");
    ///     server.join().unwrap()
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`sylvan::timeout`]: sylvan_runtime::timeout
    /// [`JoinHandle::cancel`]: sylvan_runtime::JoinHandle::cancel
    pub fn connect(&self, server_name: &str, stream: TcpStream) -> io::Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tls connect: invalid server name {server_name:?}"),
            )
        })?;
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| tls_error(&format!("tls connect to {server_name}"), e))?;
        TlsStream::handshake(conn.into(), stream, server_name.to_owned())
    }
}

impl Default for TlsConnector {
    /// [`TlsConnector::new`].
    fn default() -> TlsConnector {
        TlsConnector::new()
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

/// Options for a [`TlsConnector`]; made by [`TlsConnector::builder`].
///
/// ```
/// use sylvan::net::tls::TlsConnector;
/// // Trusting nothing is refused at build time:
/// let err = TlsConnector::builder().web_roots(false).build().unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, Clone)]
pub struct TlsConnectorBuilder {
    /// Roots added explicitly (the web's are added at `build`).
    roots: RootCertStore,
    web_roots: bool,
    alpn: Vec<Vec<u8>>,
    accept_invalid_certs: bool,
}

impl TlsConnectorBuilder {
    /// Also trusts the certificates in `pem` (one or more `BEGIN
    /// CERTIFICATE` blocks; other blocks are ignored), e.g. a private CA's.
    /// Fails with `InvalidData` if `pem` holds no certificate, is malformed,
    /// or a certificate cannot serve as a trust anchor.
    ///
    /// ```
    /// use sylvan::net::tls::TlsConnector;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let b = TlsConnector::builder().web_roots(false);
    /// let connector = b.add_root_certificates_pem(made.cert.pem().as_bytes())?.build()?;
    /// # let _ = connector;
    /// assert!(TlsConnector::builder().add_root_certificates_pem(b"not a certificate").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> io::Result<Self> {
        self.add_roots(pem)
            .map_err(|e| with_context(e, || "root certificates".to_owned()))?;
        Ok(self)
    }

    fn add_roots(&mut self, pem: &[u8]) -> io::Result<()> {
        let certs = parse_certificates(pem)?;
        for (i, cert) in certs.into_iter().enumerate() {
            self.roots.add(cert).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("certificate {} is not usable as a root: {e}", i + 1),
                )
            })?;
        }
        Ok(())
    }

    /// [`add_root_certificates_pem`](Self::add_root_certificates_pem) with
    /// the contents of the file at `path`; errors name the file.
    ///
    /// ```
    /// use sylvan::net::tls::TlsConnector;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-ca-{}.pem", std::process::id()));
    /// std::fs::write(&path, made.cert.pem())?;
    /// let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem_file(&path)?.build();
    /// assert!(connector.is_ok());
    /// std::fs::remove_file(&path)?;
    /// let err = TlsConnector::builder().add_root_certificates_pem_file(&path).unwrap_err();
    /// assert!(err.to_string().contains("sylvan-doc-ca-")); // the error names the file
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add_root_certificates_pem_file(mut self, path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let pem = read_file(path)?;
        self.add_roots(&pem).map_err(|e| {
            with_context(e, || format!("root certificates from {}", path.display()))
        })?;
        Ok(self)
    }

    /// Whether to trust the web's root certificates (Mozilla's, from
    /// `webpki-roots`) besides the ones added; default `true`. With `false`,
    /// only the added roots are trusted, as a client of a private service
    /// wants.
    ///
    /// ```
    /// let with_web = sylvan::net::tls::TlsConnector::builder().web_roots(true).build();
    /// assert!(with_web.is_ok());
    /// ```
    pub fn web_roots(mut self, yes: bool) -> Self {
        self.web_roots = yes;
        self
    }

    /// The ALPN protocols to offer, most preferred first; default
    /// `[b"http/1.1"]`. An empty list offers none.
    ///
    /// ```
    /// let c = sylvan::net::tls::TlsConnector::builder().alpn_protocols(vec![]).build().unwrap();
    /// assert!(c.config().alpn_protocols.is_empty());
    /// ```
    pub fn alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// **Turns off all verification of the server.** With `true`, any
    /// certificate is accepted, for any name, expired, self-signed or
    /// forged: anyone between you and the server can read and change the
    /// traffic while you believe it is private. Only for tests and for
    /// debugging against a server you control. (The handshake itself is
    /// still checked: the server must hold the key of the certificate it
    /// sent.) Default `false`.
    ///
    /// ```
    /// // Only in a test against a server you control:
    /// let insecure = sylvan::net::tls::TlsConnector::builder()
    ///     .web_roots(false)
    ///     .danger_accept_invalid_certs(true)
    ///     .build();
    /// assert!(insecure.is_ok()); // trusts nothing, verifies nothing
    /// ```
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }

    /// The connector. Fails with `InvalidInput` if it would trust nothing
    /// (`web_roots(false)` and no roots added, with verification on).
    ///
    /// ```
    /// let c = sylvan::net::tls::TlsConnector::builder().build()?; // same as TlsConnector::new()
    /// # let _ = c;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<TlsConnector> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls client configuration", e))?;
        let mut config = if self.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = self.roots;
            if self.web_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            if roots.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "tls client configuration: no root certificates to trust \
                     (web_roots(false) and none added)",
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = self.alpn;
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }
}

/// The server side of TLS: presents a certificate and wraps an accepted
/// [`TcpStream`] in a [`TlsStream`]. Cheap to clone (the configuration is
/// shared): one for the whole server.
///
/// [`from_pem`](Self::from_pem) and [`from_pem_files`](Self::from_pem_files)
/// make one from a certificate chain and its key, offering ALPN `http/1.1`
/// and asking for no client certificate; [`from_config`](Self::from_config)
/// takes any rustls configuration.
///
/// ```
/// use sylvan::net::tls::TlsAcceptor;
/// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
/// let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
/// assert_eq!(acceptor.config().alpn_protocols, [b"http/1.1".to_vec()]);
/// // The wrong key for the certificate is refused:
/// let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
/// let wrong = TlsAcceptor::from_pem(cert.as_bytes(), other.signing_key.serialize_pem().as_bytes());
/// assert_eq!(wrong.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
}

impl TlsAcceptor {
    /// An acceptor presenting the certificate chain in `cert_chain_pem`
    /// (the server's certificate first, then intermediates) with the
    /// private key in `key_pem` (PKCS#8, PKCS#1 or SEC1). ALPN: `http/1.1`
    /// (a client that offers ALPN protocols but not `http/1.1` is refused,
    /// as RFC 7301 says). Fails with `InvalidData` if either holds nothing
    /// usable or the key does not belong to the certificate.
    ///
    /// ```
    /// use sylvan::net::tls::TlsAcceptor;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let acceptor = TlsAcceptor::from_pem(
    ///     made.cert.pem().as_bytes(),
    ///     made.signing_key.serialize_pem().as_bytes(),
    /// )?;
    /// # let _ = acceptor;
    /// assert!(TlsAcceptor::from_pem(b"", b"").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
        let certs = parse_certificates(cert_chain_pem)
            .map_err(|e| with_context(e, || "tls certificate chain".to_owned()))?;
        let key =
            parse_key(key_pem).map_err(|e| with_context(e, || "tls private key".to_owned()))?;
        server_config(certs, key)
            .map_err(|e| with_context(e, || "tls certificate and key".to_owned()))
    }

    /// [`from_pem`](Self::from_pem) with the contents of two files (read
    /// off the worker threads); errors name the file at fault.
    ///
    /// ```
    /// use sylvan::net::tls::TlsAcceptor;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let dir = std::env::temp_dir();
    /// let (cert, key) = (dir.join(format!("sylvan-doc-{}.crt", std::process::id())), dir.join(format!("sylvan-doc-{}.key", std::process::id())));
    /// std::fs::write(&cert, made.cert.pem())?;
    /// std::fs::write(&key, made.signing_key.serialize_pem())?;
    /// let acceptor = TlsAcceptor::from_pem_files(&cert, &key);
    /// std::fs::remove_file(&cert)?;
    /// std::fs::remove_file(&key)?;
    /// assert!(acceptor.is_ok());
    /// let err = TlsAcceptor::from_pem_files("/nonexistent.crt", "/nonexistent.key").unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent.crt")); // errors name the file
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsAcceptor> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let certs = parse_certificates(&read_file(cert)?)
            .map_err(|e| with_context(e, || format!("tls certificate chain {}", cert.display())))?;
        let key_der = parse_key(&read_file(key)?)
            .map_err(|e| with_context(e, || format!("tls private key {}", key.display())))?;
        server_config(certs, key_der).map_err(|e| {
            with_context(e, || {
                format!(
                    "tls certificate {} and key {}",
                    cert.display(),
                    key.display()
                )
            })
        })
    }

    /// An acceptor with a configuration you built with [`rustls`] (client
    /// certificates, several certificates chosen by SNI, other ALPN, …).
    ///
    /// ```
    /// use sylvan::net::tls::TlsAcceptor;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let base = TlsAcceptor::from_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// let mut config = (**base.config()).clone();
    /// config.alpn_protocols = vec![b"h2".to_vec()];
    /// let acceptor = TlsAcceptor::from_config(std::sync::Arc::new(config));
    /// assert_eq!(acceptor.config().alpn_protocols, [b"h2".to_vec()]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_config(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    /// The configuration every connection uses.
    ///
    /// ```
    /// use sylvan::net::tls::TlsAcceptor;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let acceptor = TlsAcceptor::from_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// assert_eq!(acceptor.config().alpn_protocols, [b"http/1.1".to_vec()]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Performs the TLS handshake as the server over `stream` (fresh from
    /// [`TcpListener::accept`](crate::TcpListener::accept)) and returns the
    /// stream once it is done.
    ///
    /// The handshake waits on the socket: it parks the calling fiber, and
    /// `stream`'s read and write timeouts bound each wait (`TimedOut`). A
    /// server should bound the whole handshake, so a client that connects
    /// and says nothing cannot hold a fiber forever: wrap the call in
    /// [`sylvan::timeout`] (an interrupted handshake drops the stream and
    /// closes the connection). Errors name the client's address: `tls
    /// handshake with 127.0.0.1:50312: received fatal alert: UnknownCA`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// use sylvan::net::{TcpListener, TcpStream};
    ///
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// let connector = TlsConnector::builder()
    ///     .add_root_certificates_pem(cert.as_bytes())?
    ///     .build()?;
    ///
    /// sylvan::run(move || {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let client = sylvan::spawn(move || -> std::io::Result<String> {
    ///         let mut tls = connector.connect("localhost", TcpStream::connect(addr)?)?;
    ///         tls.write_all(b"ping")?;
    ///         tls.shutdown()?;
    ///         let mut reply = String::new();
    ///         tls.read_to_string(&mut reply)?;
    ///         Ok(reply)
    ///     });
    ///     let (tcp, _) = listener.accept()?;
    ///     // At most 10 s for the handshake, however the client behaves.
    ///     let mut tls = sylvan::timeout(Duration::from_secs(10), || acceptor.accept(tcp))
    ///         .map_err(|_| std::io::ErrorKind::TimedOut)??;
    ///     assert_eq!(tls.server_name(), Some("localhost")); // the client's SNI
    ///     let mut request = String::new();
    ///     tls.read_to_string(&mut request)?; // until the client's close_notify
    ///     tls.write_all(format!("{request} pong").as_bytes())?;
    ///     tls.shutdown()?;
    ///     assert_eq!(client.join().unwrap()?, "ping pong");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`sylvan::timeout`]: sylvan_runtime::timeout
    pub fn accept(&self, stream: TcpStream) -> io::Result<TlsStream> {
        let peer = match stream.peer_addr() {
            Ok(addr) => addr.to_string(),
            Err(_) => "client".to_owned(),
        };
        let conn = ServerConnection::new(self.config.clone())
            .map_err(|e| tls_error(&format!("tls accept from {peer}"), e))?;
        TlsStream::handshake(conn.into(), stream, peer)
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

/// A TLS connection over a [`TcpStream`], client or server side: `Read` and
/// `Write` plaintext; the records go over the socket.
///
/// - `read` returns plaintext as soon as a record's worth has arrived,
///   parking until then; `Ok(0)` means the peer closed with `close_notify`,
///   and [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) that the TCP
///   connection ended without it (see the [module docs](self)).
/// - `write` hands plaintext to TLS (at most 64 KiB per call) and writes
///   the resulting records to the socket before it returns, so nothing
///   piles up in memory. If the socket fails after the plaintext was taken,
///   `write` still returns `Ok` (the bytes were taken; they are not lost)
///   and the next `write`, `flush` or [`shutdown`](Self::shutdown) retries
///   the records and reports the error. Call `flush` or `shutdown` at the
///   end to know that everything went out.
///
/// **Interrupted operations.** When a read is interrupted by its read
/// timeout (`TimedOut`), [`JoinHandle::cancel`] or an expired
/// [`sylvan::timeout`], the stream stays usable: the wait was on the socket,
/// the socket read transferred nothing, and rustls changes its state only
/// after the socket call returns, so a later read goes on where this one
/// stopped. The same holds for the records of a write (the unsent rest goes
/// out with the next write or flush); but a write interrupted by
/// cancellation may already have handed its plaintext to TLS, so the caller
/// cannot tell whether those bytes will be sent: drop the stream unless
/// the protocol can tolerate that. A handshake that is interrupted drops
/// the stream (`connect` and `accept` own it) and closes the connection.
///
/// **One object.** TLS state is shared by both directions, so a
/// `TlsStream` cannot be split into a read half and a write half for two
/// fibers (there is no `&TlsStream: Read`); a protocol that reads and writes
/// at the same time needs to take turns in one fiber.
///
/// **Drop** sends `close_notify` if the socket takes it at once (it never
/// waits), then closes the connection — except while the fiber unwinds (a
/// panic, a cancellation, an expired timeout): then the peer sees the
/// connection end without it (an `UnexpectedEof`), so a message cut short
/// cannot pass for a complete one. "Unwinding" is
/// [`sylvan::thread::panicking`]: while another fiber of the same worker has
/// been suspended mid-unwind for over 20 ms (which the runtime reports),
/// every fiber of that worker counts as unwinding, so a stream dropped then
/// ends without `close_notify` too.
///
/// [`sylvan::thread::panicking`]: sylvan_runtime::thread::panicking
///
/// **A TLS error** (a record that does not decrypt, a bad alert) ends the
/// connection: every later read and write fails with the same error.
///
/// [`JoinHandle::cancel`]: sylvan_runtime::JoinHandle::cancel
/// [`sylvan::timeout`]: sylvan_runtime::timeout
///
/// ```
/// use std::io::{Read, Write};
/// use sylvan::net::tls::{TlsAcceptor, TlsConnector};
/// use sylvan::net::{TcpListener, TcpStream};
///
/// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
/// let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
/// let connector = TlsConnector::builder()
///     .web_roots(false)
///     .add_root_certificates_pem(cert.as_bytes())?
///     .build()?;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = sylvan::spawn(move || -> std::io::Result<String> {
///     let mut tls = acceptor.accept(listener.accept()?.0)?;
///     assert!(!tls.is_client());
///     let name = tls.server_name().unwrap_or_default().to_string(); // SNI
///     tls.write_all(b"hi")?;
///     tls.shutdown()?;
///     Ok(name)
/// });
/// let mut tls = connector.connect("localhost", TcpStream::connect(addr)?)?;
/// assert!(tls.is_client());
/// assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
/// assert_eq!(tls.peer_certificates().unwrap().len(), 1);
/// assert_eq!(tls.get_ref().peer_addr()?, addr);
/// let mut got = String::new();
/// tls.read_to_string(&mut got)?; // ends at the server's close_notify
/// assert_eq!(got, "hi");
/// assert_eq!(server.join().unwrap()?, "localhost");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TlsStream {
    conn: Connection,
    sock: TcpStream,
    /// Who the peer is, for error messages: the server name on the client
    /// side, the client's address on the server side.
    peer: String,
    /// The TLS error that ended the connection (rustls accepts nothing
    /// after one): every later read and write fails with it at once.
    failed: Option<(io::ErrorKind, String)>,
}

impl TlsStream {
    /// Runs the handshake of `conn` over `sock` to the end.
    fn handshake(conn: Connection, sock: TcpStream, peer: String) -> io::Result<TlsStream> {
        let label = format!("tls handshake with {peer}");
        let what = || label.clone();
        let mut tls = TlsStream {
            conn,
            sock,
            peer,
            failed: None,
        };
        // Each pass writes what rustls has to say or waits for the peer's
        // next bytes: the loop advances only as the socket does.
        while tls.conn.is_handshaking() {
            if tls.conn.wants_write() {
                tls.flush_records().map_err(|e| with_context(e, what))?;
            } else if tls.conn.wants_read() {
                let n = tls
                    .conn
                    .read_tls(&mut &tls.sock)
                    .map_err(|e| with_context(e, what))?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: the peer closed the connection", what()),
                    ));
                }
                tls.process_records(true)?;
            } else {
                // rustls always wants one or the other while handshaking.
                return Err(io::Error::other(format!("{}: handshake stalled", what())));
            }
        }
        // The last flight (the client's Finished, the server's tickets).
        tls.flush_records().map_err(|e| with_context(e, what))?;
        Ok(tls)
    }

    /// Lets rustls decrypt and act on the records read so far. On a TLS
    /// error, tries to tell the peer (the alert rustls queued) before
    /// returning it.
    fn process_records(&mut self, handshaking: bool) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.flush_records();
                let what = if handshaking {
                    format!("tls handshake with {}", self.peer)
                } else {
                    format!("tls connection with {}", self.peer)
                };
                let not_tls = handshaking && matches!(e, rustls::Error::InvalidMessage(_));
                let mut err = tls_error(&what, e);
                if not_tls {
                    err = io::Error::new(
                        err.kind(),
                        format!("{err} (the peer does not seem to speak TLS)"),
                    );
                }
                self.failed = Some((err.kind(), err.to_string()));
                Err(err)
            }
        }
    }

    /// The error that ended the connection, if a TLS error did.
    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }

    /// Writes every record rustls has ready to the socket, parking while
    /// the socket is full.
    fn flush_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut &self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// The TCP connection underneath, e.g. for
    /// [`set_read_timeout`](TcpStream::set_read_timeout) (which then
    /// applies to every wait of this stream's reads) or
    /// [`peer_addr`](TcpStream::peer_addr). Reading or writing it directly
    /// would corrupt the TLS stream.
    ///
    /// ```
    /// # use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// # use sylvan::net::{TcpListener, TcpStream};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// # let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem(cert.as_bytes())?.build()?;
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let tcp = TcpStream::connect(listener.local_addr()?)?;
    /// # let accepting = sylvan::spawn(move || acceptor.accept(listener.accept()?.0));
    /// // Both ends of one connection to "localhost" (set-up as in the type docs):
    /// let mut client = connector.connect("localhost", tcp)?;
    /// let mut server = accepting.join().unwrap()?;
    /// let addr = client.get_ref().peer_addr()?;
    /// assert_eq!(addr, server.get_ref().local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &TcpStream {
        &self.sock
    }

    /// The ALPN protocol the two sides agreed on (e.g. `b"http/1.1"`), if
    /// any.
    ///
    /// ```
    /// # use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// # use sylvan::net::{TcpListener, TcpStream};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// # let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem(cert.as_bytes())?.build()?;
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let tcp = TcpStream::connect(listener.local_addr()?)?;
    /// # let accepting = sylvan::spawn(move || acceptor.accept(listener.accept()?.0));
    /// // Both ends of one connection to "localhost" (set-up as in the type docs):
    /// let mut client = connector.connect("localhost", tcp)?;
    /// let mut server = accepting.join().unwrap()?;
    /// // Both sides offer http/1.1 unless configured otherwise.
    /// assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
    /// assert_eq!(server.alpn_protocol(), client.alpn_protocol());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// On the server side, the host name the client asked for (SNI), if it
    /// sent one (clients connecting to an IP address do not). `None` on the
    /// client side.
    ///
    /// ```
    /// # use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// # use sylvan::net::{TcpListener, TcpStream};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// # let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem(cert.as_bytes())?.build()?;
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let tcp = TcpStream::connect(listener.local_addr()?)?;
    /// # let accepting = sylvan::spawn(move || acceptor.accept(listener.accept()?.0));
    /// // Both ends of one connection to "localhost" (set-up as in the type docs):
    /// let mut client = connector.connect("localhost", tcp)?;
    /// let mut server = accepting.join().unwrap()?;
    /// assert_eq!(server.server_name(), Some("localhost"));
    /// assert_eq!(client.server_name(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(conn) => conn.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// The certificate chain the peer presented, its own certificate first:
    /// the server's on the client side (always there); the client's on the
    /// server side (only if the configuration asked for one).
    ///
    /// ```
    /// # use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// # use sylvan::net::{TcpListener, TcpStream};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// # let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem(cert.as_bytes())?.build()?;
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let tcp = TcpStream::connect(listener.local_addr()?)?;
    /// # let accepting = sylvan::spawn(move || acceptor.accept(listener.accept()?.0));
    /// // Both ends of one connection to "localhost" (set-up as in the type docs):
    /// let mut client = connector.connect("localhost", tcp)?;
    /// let mut server = accepting.join().unwrap()?;
    /// let chain = client.peer_certificates().unwrap();
    /// assert_eq!(chain[0].as_ref(), made.cert.der().as_ref()); // the self-signed one
    /// assert!(server.peer_certificates().is_none()); // no client certificate asked for
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// Ends this side's output cleanly: sends `close_notify` (the peer's
    /// reads return `Ok(0)`), writes every pending record, then shuts down
    /// the TCP write half. Reading goes on working until the peer closes
    /// too.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// # use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// # use sylvan::net::{TcpListener, TcpStream};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// # let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem(cert.as_bytes())?.build()?;
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let tcp = TcpStream::connect(listener.local_addr()?)?;
    /// # let accepting = sylvan::spawn(move || acceptor.accept(listener.accept()?.0));
    /// // Both ends of one connection to "localhost" (set-up as in the type docs):
    /// let mut client = connector.connect("localhost", tcp)?;
    /// let mut server = accepting.join().unwrap()?;
    /// client.write_all(b"last words")?;
    /// client.shutdown()?;
    /// let mut got = String::new();
    /// server.read_to_string(&mut got)?; // Ok(0) at the close_notify: a clean end
    /// assert_eq!(got, "last words");
    /// server.write_all(b"bye")?; // the other direction still works
    /// drop(server);
    /// let mut reply = String::new();
    /// client.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "bye");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush_records()?;
        self.sock.shutdown(Shutdown::Write)
    }

    /// Whether this is the client side of the connection.
    ///
    /// ```
    /// # use sylvan::net::tls::{TlsAcceptor, TlsConnector};
    /// # use sylvan::net::{TcpListener, TcpStream};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    /// # let connector = TlsConnector::builder().web_roots(false).add_root_certificates_pem(cert.as_bytes())?.build()?;
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// # let tcp = TcpStream::connect(listener.local_addr()?)?;
    /// # let accepting = sylvan::spawn(move || acceptor.accept(listener.accept()?.0));
    /// // Both ends of one connection to "localhost" (set-up as in the type docs):
    /// let mut client = connector.connect("localhost", tcp)?;
    /// let mut server = accepting.join().unwrap()?;
    /// assert!(client.is_client() && !server.is_client());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_client(&self) -> bool {
        matches!(self.conn, Connection::Client(_))
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.check_failed()?;
        // Each pass returns or waits on the socket for more records: it
        // never spins. (After the socket's end of stream, the reader no
        // longer says WouldBlock.)
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if self.conn.wants_write() {
                // Records of ours are queued (what the peer's last records
                // asked for, or what a write that timed out left): send them
                // as the socket takes them while waiting for the peer's,
                // neither waiting for room first (the peer may be waiting
                // for us to read) nor leaving them (it may need them first).
                let conn = &mut self.conn;
                // A send that failed (not "full") is not retried here: the
                // next write reports it, and this read waits for reading.
                let mut send_failed = false;
                self.sock.read_either(|sock| {
                    while !send_failed && conn.wants_write() {
                        match conn.write_tls(&mut NoWait(sock)) {
                            Ok(n) if n > 0 => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            _ => send_failed = true,
                        }
                    }
                    match conn.read_tls(&mut NoWait(sock)) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            Ok(Err(if !send_failed && conn.wants_write() {
                                Wait::ReadOrWrite
                            } else {
                                Wait::Read
                            }))
                        }
                        r => r.map(Ok),
                    }
                })?;
            } else {
                self.conn.read_tls(&mut &self.sock)?;
            }
            self.process_records(false)?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.check_failed()?;
        // Records an earlier write could not send go first, and their
        // error is reported here.
        self.flush_records()?;
        let taken = self.conn.writer().write(buf)?;
        // The bytes are taken: an error now must not make the caller send
        // them again. The next call retries and reports it.
        let _ = self.flush_records();
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check_failed()?;
        self.conn.writer().flush()?;
        self.flush_records()
    }
}

/// The socket's own calls, which never wait (it is non-blocking):
/// `WouldBlock` when there is no data or no room. (std's `send` passes
/// `MSG_NOSIGNAL`: a peer that has gone raises no SIGPIPE.)
struct NoWait<'a>(&'a std::net::TcpStream);

impl Read for NoWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TlsStream {
    fn drop(&mut self) {
        // Say goodbye if the socket takes it now; never wait. A send that
        // cannot take it all leaves the peer with a cut record: it sees an
        // error either way. Not while unwinding (a panic, a cancellation,
        // an expired timeout): a message may have been cut short, and the
        // peer must not take what it got for all of it.
        if self.conn.is_handshaking()
            || self.failed.is_some()
            || sylvan_runtime::thread::panicking()
        {
            return;
        }
        self.conn.send_close_notify();
        let mut records = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut records).is_err() {
                return;
            }
        }
        // MSG_NOSIGNAL: a peer that has gone must not raise SIGPIPE.
        if !records.is_empty() {
            let _ =
                socket2::SockRef::from(&self.sock).send_with_flags(&records, libc::MSG_NOSIGNAL);
        }
    }
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("client", &self.is_client())
            .field("peer", &self.peer)
            .field("protocol_version", &self.conn.protocol_version())
            .finish_non_exhaustive()
    }
}

/// The crypto provider: ring, chosen explicitly so that a program that also
/// links rustls' other provider does not depend on a process default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls error as an `io::Error` saying what failed.
fn tls_error(what: &str, e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
}

/// The acceptor of `from_pem`: `certs` presented with `key`, ALPN
/// `http/1.1`.
fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<TlsAcceptor> {
    let invalid = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(invalid)?;
    config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    Ok(TlsAcceptor::from_config(Arc::new(config)))
}

/// The first private key in `pem`.
fn parse_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        let what = match e {
            pem::Error::NoItemsFound => "no private key found in PEM".to_owned(),
            e => format!("bad PEM: {e}"),
        };
        io::Error::new(io::ErrorKind::InvalidData, what)
    })
}

/// Every certificate in `pem`; an error if there is none or the PEM is bad.
fn parse_certificates(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate found in PEM".to_owned()));
    }
    Ok(certs)
}

/// The contents of the file at `path` (read off the worker threads); the
/// error names the file.
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let owned: PathBuf = path.to_owned();
    off_hub(move || std::fs::read(owned))
        .map_err(|e| with_context(e, || format!("read {}", path.display())))
}

/// The verifier of [`TlsConnectorBuilder::danger_accept_invalid_certs`]:
/// every certificate passes; handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
