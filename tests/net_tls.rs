//! TLS through the facade (`sylvan::net::tls`) on loopback, with
//! certificates made by rcgen: a private CA and a server certificate for
//! `localhost` and 127.0.0.1 signed by it. Verification (trusted, untrusted,
//! wrong name, no verification), ALPN and SNI, clean and unclean ends,
//! timeouts and cancellation against silent and non-TLS peers, a large
//! transfer, plain threads and many connections at once.

#[path = "support/pki.rs"]
mod pki;
mod support;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pki::{pki, temp_dir};
use support::on_workers;
use sylvan::net::tls::{TlsAcceptor, TlsConnector, TlsStream};
use sylvan::net::{TcpListener, TcpStream};
use sylvan::sync::channel;

/// How long anything a correct implementation does at once may take on a
/// loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

fn acceptor() -> TlsAcceptor {
    let pki = pki();
    TlsAcceptor::from_pem(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap()
}

/// A connector that trusts the test CA only.
fn trusting() -> TlsConnector {
    TlsConnector::builder()
        .web_roots(false)
        .add_root_certificates_pem(pki().ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

/// A TLS server on loopback (in fibers of the current runtime) that
/// accepts `n` connections and runs `handle` on each in a fiber of its own
/// (the handshake's result included). Returns its address and a handle
/// that joins it.
fn tls_server<H>(n: usize, handle: H) -> (std::net::SocketAddr, sylvan::JoinHandle<()>)
where
    H: Fn(io::Result<TlsStream>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = acceptor();
    let handle = Arc::new(handle);
    let server = sylvan::spawn(move || {
        let conns: Vec<_> = (0..n)
            .map(|_| {
                let (tcp, _) = listener.accept().unwrap();
                let (acceptor, handle) = (acceptor.clone(), handle.clone());
                sylvan::spawn(move || handle(acceptor.accept(tcp)))
            })
            .collect();
        for c in conns {
            c.join().unwrap();
        }
    });
    (addr, server)
}

/// `len` bytes that differ with `seed` and position.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed * 131 + i * 7 + i / 251) as u8)
        .collect()
}

#[test]
fn round_trip_with_alpn_sni_and_the_peer_certificate() {
    on_workers(2, || {
        let (addr, server) = tls_server(1, |tls| {
            let mut tls = tls.unwrap();
            assert!(!tls.is_client());
            assert_eq!(tls.server_name(), Some("localhost"));
            assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert!(tls.peer_certificates().is_none()); // no client auth
            let mut request = Vec::new();
            tls.read_to_end(&mut request).unwrap(); // to the client's close_notify
            assert_eq!(request, b"ping");
            tls.write_all(b"pong").unwrap();
            tls.shutdown().unwrap();
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = trusting().connect("localhost", tcp).unwrap();
        assert!(tls.is_client());
        assert_eq!(tls.server_name(), None);
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        let chain = tls.peer_certificates().unwrap();
        assert_eq!(chain[0].as_ref(), &pki().server_der[..]);
        assert_eq!(tls.get_ref().peer_addr().unwrap(), addr);
        tls.write_all(b"ping").unwrap();
        tls.shutdown().unwrap(); // half-close: the reply still comes
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"pong");
        server.join().unwrap();
    });
}

#[test]
fn alpn_can_be_changed_or_left_out() {
    on_workers(1, || {
        let (addr, server) = tls_server(2, |tls| {
            let mut tls = tls.unwrap();
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).unwrap();
            let got = tls.alpn_protocol().map(<[u8]>::to_vec);
            tls.write_all(&[u8::from(got.is_some())]).unwrap();
        });
        let none = TlsConnector::builder()
            .web_roots(false)
            .add_root_certificates_pem(pki().ca_pem.as_bytes())
            .unwrap()
            .alpn_protocols(Vec::new())
            .build()
            .unwrap();
        let mut tls = none
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        assert_eq!(tls.alpn_protocol(), None);
        tls.write_all(b"?").unwrap();
        let mut saw = [9u8; 1];
        tls.read_exact(&mut saw).unwrap();
        assert_eq!(saw, [0]);
        // Offering h2 before http/1.1: the server picks what it supports.
        let both = TlsConnector::builder()
            .web_roots(false)
            .add_root_certificates_pem(pki().ca_pem.as_bytes())
            .unwrap()
            .alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
            .build()
            .unwrap();
        let mut tls = both
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"?").unwrap();
        tls.read_exact(&mut saw).unwrap();
        assert_eq!(saw, [1]);
        server.join().unwrap();
    });
}

#[test]
fn an_untrusted_certificate_is_refused_with_a_message_naming_the_server() {
    on_workers(1, || {
        let (server_errors_tx, server_errors) = channel::unbounded();
        let (addr, server) = tls_server(1, move |tls| {
            server_errors_tx
                .send(tls.err().map(|e| e.to_string()))
                .unwrap();
        });
        // The web's roots do not include the test CA.
        let err = TlsConnector::new()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "tls handshake with localhost: invalid peer certificate: UnknownIssuer"
        );
        server.join().unwrap();
        // The client told the server why (an alert), and the server's error
        // names the client.
        let server_err = server_errors
            .recv()
            .unwrap()
            .expect("the server failed too");
        assert!(
            server_err.starts_with("tls handshake with 127.0.0.1:")
                && server_err.contains("received fatal alert: UnknownCA"),
            "{server_err}"
        );
    });
}

#[test]
fn a_certificate_for_another_name_is_refused_and_the_error_says_so() {
    on_workers(1, || {
        let (addr, server) = tls_server(2, |tls| assert!(tls.is_err()));
        for name in ["example.com", "127.0.0.2"] {
            let err = trusting()
                .connect(name, TcpStream::connect(addr).unwrap())
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("tls handshake with {name}: "))
                    && msg.contains(&format!("certificate not valid for name \"{name}\""))
                    && msg.contains("localhost"),
                "{msg}"
            );
        }
        server.join().unwrap();
    });
}

#[test]
fn an_ip_address_as_the_server_name_is_checked_against_the_certificate() {
    on_workers(1, || {
        let (addr, server) = tls_server(1, |tls| {
            let mut tls = tls.unwrap();
            // No SNI is sent for an IP address.
            assert_eq!(tls.server_name(), None);
            tls.write_all(b"ok").unwrap();
        });
        let mut tls = trusting()
            .connect("127.0.0.1", TcpStream::connect(addr).unwrap())
            .unwrap();
        let mut ok = [0u8; 2];
        tls.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"ok");
        server.join().unwrap();
    });
}

#[test]
fn danger_accept_invalid_certs_connects_to_anything() {
    on_workers(1, || {
        let (addr, server) = tls_server(1, |tls| {
            let mut tls = tls.unwrap();
            tls.write_all(b"unverified").unwrap();
            tls.shutdown().unwrap();
        });
        // No roots at all, and a name the certificate does not have.
        let blind = TlsConnector::builder()
            .web_roots(false)
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let mut tls = blind
            .connect("not-the-name.example", TcpStream::connect(addr).unwrap())
            .unwrap();
        let mut got = String::new();
        tls.read_to_string(&mut got).unwrap();
        assert_eq!(got, "unverified");
        server.join().unwrap();
    });
}

#[test]
fn configuration_errors_say_what_is_wrong() {
    let pki = pki();
    let kind_and_message = |e: io::Error| (e.kind(), e.to_string());

    // Roots.
    let (kind, msg) = kind_and_message(
        TlsConnector::builder()
            .add_root_certificates_pem(b"junk")
            .unwrap_err(),
    );
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert_eq!(msg, "root certificates: no certificate found in PEM");
    let (_, msg) = kind_and_message(
        TlsConnector::builder()
            .add_root_certificates_pem(
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            )
            .unwrap_err(),
    );
    assert!(msg.starts_with("root certificates: bad PEM: "), "{msg}");
    let (kind, msg) = kind_and_message(
        TlsConnector::builder()
            .add_root_certificates_pem_file("/nonexistent/ca.pem")
            .unwrap_err(),
    );
    assert_eq!(kind, io::ErrorKind::NotFound);
    assert!(msg.starts_with("read /nonexistent/ca.pem: "), "{msg}");
    let dir = temp_dir("config-errors");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let (kind, msg) = kind_and_message(
        TlsConnector::builder()
            .add_root_certificates_pem_file(&empty)
            .unwrap_err(),
    );
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert_eq!(
        msg,
        format!(
            "root certificates from {}: no certificate found in PEM",
            empty.display()
        )
    );
    let (kind, msg) = kind_and_message(
        TlsConnector::builder()
            .web_roots(false)
            .build()
            .unwrap_err(),
    );
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(msg.contains("no root certificates"), "{msg}");

    // Server certificate and key.
    let (kind, msg) =
        kind_and_message(TlsAcceptor::from_pem(pki.chain_pem.as_bytes(), b"no key").unwrap_err());
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert_eq!(msg, "tls private key: no private key found in PEM");
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let (kind, msg) = kind_and_message(
        TlsAcceptor::from_pem(pki.chain_pem.as_bytes(), other_key.as_bytes()).unwrap_err(),
    );
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert!(msg.starts_with("tls certificate and key: "), "{msg}");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    let from_files = || {
        let e = TlsAcceptor::from_pem_files(&cert_file, &key_file).unwrap_err();
        (e.kind(), e.to_string())
    };
    std::fs::write(&cert_file, &pki.chain_pem).unwrap();
    let (kind, msg) = from_files();
    assert_eq!(kind, io::ErrorKind::NotFound, "{msg}");
    assert!(
        msg.starts_with(&format!("read {}: ", key_file.display())),
        "{msg}"
    );
    std::fs::write(&key_file, &pki.chain_pem).unwrap(); // no key in it
    let (kind, msg) = from_files();
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert_eq!(
        msg,
        format!(
            "tls private key {}: no private key found in PEM",
            key_file.display()
        )
    );
    std::fs::write(&key_file, &other_key).unwrap();
    let (kind, msg) = from_files();
    assert_eq!(kind, io::ErrorKind::InvalidData);
    let prefix = format!(
        "tls certificate {} and key {}: ",
        cert_file.display(),
        key_file.display()
    );
    assert!(msg.starts_with(&prefix), "{msg}");
    std::fs::write(&cert_file, &pki.key_pem).unwrap(); // a key where the chain belongs
    let (kind, msg) = from_files();
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert_eq!(
        msg,
        format!(
            "tls certificate chain {}: no certificate found in PEM",
            cert_file.display()
        )
    );
    std::fs::write(&cert_file, &pki.chain_pem).unwrap();
    std::fs::write(&key_file, &pki.key_pem).unwrap();
    TlsAcceptor::from_pem_files(&cert_file, &key_file).unwrap();

    // A server name that is neither a DNS name nor an IP address.
    on_workers(1, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let err = trusting().connect("not a name!", tcp).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"not a name!\""), "{err}");
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shutdown_reads_as_end_of_stream_and_a_bare_tcp_close_as_unexpected_eof() {
    on_workers(2, || {
        let (addr, server) = tls_server(2, |tls| {
            let mut tls = tls.unwrap();
            let mut which = [0u8; 1];
            tls.read_exact(&mut which).unwrap();
            tls.write_all(b"data").unwrap();
            if which[0] == b'c' {
                // Clean: close_notify. Reading still works (half-close).
                tls.shutdown().unwrap();
                let mut after = Vec::new();
                tls.read_to_end(&mut after).unwrap();
                assert_eq!(after, b"still here");
            } else {
                // Unclean: the TCP connection ends without close_notify.
                tls.get_ref().shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest);
            }
        });
        let mut clean = trusting()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        clean.write_all(b"c").unwrap();
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        loop {
            match clean.read(&mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, b"data");
        assert_eq!(clean.read(&mut buf).unwrap(), 0, "end of stream stays");
        clean.write_all(b"still here").unwrap();
        clean.shutdown().unwrap();

        let mut cut = trusting()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        cut.write_all(b"u").unwrap();
        let mut data = [0u8; 4];
        cut.read_exact(&mut data).unwrap();
        assert_eq!(&data, b"data");
        let err = cut.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        drop(cut);
        server.join().unwrap();
    });
}

#[test]
fn a_peer_that_does_not_speak_tls_gives_a_clear_error() {
    // A plain HTTP server: answers whatever comes with a 400 and closes.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_addr = http.local_addr().unwrap();
    let http_thread = std::thread::spawn(move || {
        let (mut s, _) = http.accept().unwrap();
        let mut hello = [0u8; 16];
        let _ = s.read(&mut hello);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    // A server that hangs up at once.
    let rude = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rude_addr = rude.local_addr().unwrap();
    let rude_thread = std::thread::spawn(move || drop(rude.accept().unwrap()));
    on_workers(1, move || {
        let err = trusting()
            .connect("localhost", TcpStream::connect(http_addr).unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(
            msg.starts_with("tls handshake with localhost: ")
                && msg.ends_with("(the peer does not seem to speak TLS)"),
            "{msg}"
        );
        let err = trusting()
            .connect("localhost", TcpStream::connect(rude_addr).unwrap())
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("tls handshake with localhost: "),
            "{err}"
        );

        // And the other way round: a plain client talking to a TLS server.
        let (addr, server) = tls_server(1, |tls| {
            let err = tls.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(
                err.to_string().contains("does not seem to speak TLS"),
                "{err}"
            );
        });
        let mut plain = TcpStream::connect(addr).unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        plain.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut answer = Vec::new();
        // The server sends an alert and closes: no hang.
        let _ = plain.read_to_end(&mut answer);
        server.join().unwrap();
    });
    http_thread.join().unwrap();
    rude_thread.join().unwrap();
}

/// A server that accepts, reads what comes and never writes: a TLS client
/// waits for its ServerHello forever. `accepted` gets the number of bytes
/// of each connection once it was closed by the client.
fn silent_server() -> (std::net::SocketAddr, channel::Receiver<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = channel::unbounded();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                // Bounded: a client that never closes fails the test below.
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                let mut got = Vec::new();
                let closed = s.read_to_end(&mut got).is_ok();
                let _ = tx.send(if closed { got.len() } else { usize::MAX });
            });
        }
    });
    (addr, rx)
}

#[test]
fn handshake_with_a_silent_server_obeys_the_read_timeout() {
    let (addr, closed) = silent_server();
    on_workers(1, move || {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        let err = trusting().connect("localhost", tcp).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(
            err.to_string()
                .starts_with("tls handshake with localhost: "),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(190) && took < PATIENCE,
            "{took:?}"
        );
        // The ClientHello went out, then the socket was closed.
        let sent = closed.recv().unwrap();
        assert!(sent > 0 && sent != usize::MAX, "{sent}");
    });
}

#[test]
fn timeout_and_cancel_interrupt_a_handshake_and_close_the_socket() {
    let (addr, closed) = silent_server();
    on_workers(2, move || {
        let connector = trusting();
        let start = Instant::now();
        let res = sylvan::timeout(Duration::from_millis(200), || {
            connector.connect("localhost", TcpStream::connect(addr).unwrap())
        });
        assert!(res.is_err(), "the handshake cannot finish");
        assert!(start.elapsed() < PATIENCE);
        let sent = closed.recv().unwrap();
        assert!(sent > 0 && sent != usize::MAX, "{sent}");

        let (started_tx, started) = channel::bounded(1);
        let fiber = sylvan::spawn(move || {
            let tcp = TcpStream::connect(addr).unwrap();
            started_tx.send(()).unwrap();
            connector.connect("localhost", tcp).map(drop)
        });
        started.recv().unwrap();
        fiber.cancel();
        let err = fiber.join().unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        let sent = closed.recv().unwrap();
        assert_ne!(sent, usize::MAX, "the socket was closed");
    });
}

#[test]
fn an_interrupted_read_leaves_the_stream_usable() {
    on_workers(2, || {
        let (go_tx, go) = channel::bounded::<()>(1);
        let (end_tx, end) = channel::bounded::<io::Result<Vec<u8>>>(1);
        let (addr, server) = tls_server(2, move |tls| {
            let mut tls = tls.unwrap();
            let mut first = [0u8; 1];
            tls.read_exact(&mut first).unwrap();
            if first[0] == b'1' {
                // Silent until the client has been interrupted twice.
                go.recv().unwrap();
                tls.write_all(b"after").unwrap();
                tls.flush().unwrap();
            } else {
                // The second client is cancelled mid-read: what does this
                // side see? (One byte first: reading it, the client has also
                // read the session tickets sent after the handshake, so it
                // closes with nothing unread — unread data would make its
                // close a reset, not the end this test is about.)
                tls.write_all(b"k").unwrap();
                tls.flush().unwrap();
                let mut rest = Vec::new();
                let res = tls.read_to_end(&mut rest).map(|_| rest);
                end_tx.send(res).unwrap();
            }
        });
        let mut tls = trusting()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        tls.write_all(b"1").unwrap();
        let mut buf = [0u8; 5];
        // Interrupted by sylvan::timeout (the fiber unwinds out of the read)...
        let interrupted = sylvan::timeout(Duration::from_millis(100), || tls.read(&mut buf));
        assert!(interrupted.is_err());
        // ...and by the read timeout.
        tls.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let err = tls.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        tls.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
        go_tx.send(()).unwrap();
        tls.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"after");

        // A fiber cancelled while reading: it unwinds, and the stream drops
        // without close_notify (whatever it was saying may be cut short),
        // so the peer reads an unclean end.
        let connector = trusting();
        let (ready_tx, ready) = channel::bounded(1);
        let reader = sylvan::spawn(move || {
            let mut tls = connector
                .connect("localhost", TcpStream::connect(addr).unwrap())
                .unwrap();
            tls.write_all(b"2").unwrap();
            let mut buf = [0u8; 1];
            tls.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"k");
            ready_tx.send(()).unwrap();
            let _ = tls.read(&mut buf);
            unreachable!("the server writes nothing more");
        });
        ready.recv().unwrap();
        reader.cancel();
        assert!(reader.join().unwrap_err().is_cancelled());
        let end = end.recv().unwrap().unwrap_err();
        assert_eq!(end.kind(), io::ErrorKind::UnexpectedEof, "{end}");
        server.join().unwrap();
    });
}

#[test]
fn a_write_timeout_loses_nothing_that_write_reported_taken() {
    // The peer does not read, so the socket fills up and a write times
    // out. Every byte a write returned Ok for must still arrive, in order,
    // once the peer reads and the writer flushes.
    const CHUNK: usize = 64 << 10;
    const MAX_CHUNKS: usize = 1024; // far more than loopback buffers hold
    on_workers(2, || {
        let (go_tx, go) = channel::bounded::<()>(1);
        let (got_tx, got) = channel::bounded::<Vec<u8>>(1);
        let (addr, server) = tls_server(1, move |tls| {
            let mut tls = tls.unwrap();
            go.recv().unwrap();
            let mut all = Vec::new();
            tls.read_to_end(&mut all).unwrap();
            got_tx.send(all).unwrap();
        });
        let mut tls = trusting()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        tls.get_ref()
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let data = pattern(3, CHUNK * MAX_CHUNKS);
        let mut taken = 0;
        let err = loop {
            assert!(taken < data.len(), "the socket never filled up");
            match tls.write(&data[taken..taken + CHUNK]) {
                Ok(n) => taken += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        tls.get_ref().set_write_timeout(Some(PATIENCE)).unwrap();
        go_tx.send(()).unwrap();
        tls.flush().unwrap();
        tls.shutdown().unwrap();
        let all = got.recv().unwrap();
        assert_eq!(all.len(), taken);
        assert!(all == data[..taken], "the bytes arrived changed");
        server.join().unwrap();
    });
}

#[test]
fn the_types_can_move_between_fibers() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<TlsStream>();
    send_sync::<TlsConnector>();
    send_sync::<TlsAcceptor>();
}

#[test]
fn eight_mebibytes_each_way() {
    // One TlsStream cannot be read by one fiber while another writes it, so
    // the directions take turns: 8 MiB up, then 8 MiB down.
    const TOTAL: usize = 8 << 20;
    on_workers(2, || {
        let (addr, server) = tls_server(1, |tls| {
            let mut tls = tls.unwrap();
            let mut got = vec![0u8; TOTAL];
            tls.read_exact(&mut got).unwrap();
            assert!(got == pattern(1, TOTAL), "upload corrupted");
            // Odd-sized writes, to cross record boundaries.
            let down = pattern(2, TOTAL);
            for chunk in down.chunks(100_003) {
                tls.write_all(chunk).unwrap();
            }
            tls.shutdown().unwrap();
        });
        let mut tls = trusting()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        tls.write_all(&pattern(1, TOTAL)).unwrap();
        tls.flush().unwrap();
        let mut down = Vec::with_capacity(TOTAL);
        let mut buf = vec![0u8; 7919];
        for _ in 0..=TOTAL {
            match tls.read(&mut buf).unwrap() {
                0 => break,
                n => down.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(down.len(), TOTAL);
        assert!(down == pattern(2, TOTAL), "download corrupted");
        server.join().unwrap();
    });
}

#[test]
fn works_on_plain_threads() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = acceptor();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut tls = acceptor.accept(tcp).unwrap();
        let mut line = [0u8; 6];
        tls.read_exact(&mut line).unwrap();
        tls.write_all(&line).unwrap();
        tls.shutdown().unwrap();
    });
    assert!(!sylvan::in_fiber());
    let mut tls = trusting()
        .connect("localhost", TcpStream::connect(addr).unwrap())
        .unwrap();
    tls.write_all(b"thread").unwrap();
    let mut back = Vec::new();
    tls.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"thread");
    server.join().unwrap();
}

fn fifty_echo_connections(workers: usize) {
    const CONNS: usize = 50;
    const MESSAGES: usize = 20;
    let verified = on_workers(workers, || {
        let (addr, server) = tls_server(CONNS, |tls| {
            let mut tls = tls.unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf).unwrap() {
                    0 => break,
                    n => tls.write_all(&buf[..n]).unwrap(),
                }
            }
            tls.shutdown().unwrap();
        });
        let connector = trusting();
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                let connector = connector.clone();
                sylvan::spawn(move || {
                    let tcp = TcpStream::connect(addr).unwrap();
                    let mut tls = connector.connect("localhost", tcp).unwrap();
                    let mut total = 0;
                    for m in 0..MESSAGES {
                        let msg = pattern(c * MESSAGES + m, 1 + (c * 37 + m * 101) % 3000);
                        tls.write_all(&msg).unwrap();
                        let mut back = vec![0u8; msg.len()];
                        tls.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg, "connection {c} message {m}");
                        total += msg.len();
                    }
                    tls.shutdown().unwrap();
                    let mut rest = Vec::new();
                    tls.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty());
                    total
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
        server.join().unwrap();
        total
    });
    let expected: usize = (0..CONNS)
        .flat_map(|c| (0..MESSAGES).map(move |m| 1 + (c * 37 + m * 101) % 3000))
        .sum();
    assert_eq!(verified, expected);
}

#[test]
fn fifty_concurrent_connections_on_one_worker() {
    fifty_echo_connections(1);
}

#[test]
fn fifty_concurrent_connections_on_two_workers() {
    fifty_echo_connections(2);
}

/// Taking turns in one fiber (what the `TlsStream` docs recommend): a write
/// that timed out because the peer is not reading leaves records unsent,
/// and the peer's data waits to be read. The read returns it (found by
/// review: it first flushed the unsent records, waiting for room, and
/// failed with "write timed out").
#[test]
fn a_read_is_not_held_up_by_records_a_timed_out_write_left_unsent() {
    on_workers(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done) = channel::bounded::<()>(1);
        let client = sylvan::spawn(move || {
            let mut tls = trusting()
                .connect("localhost", TcpStream::connect(addr).unwrap())
                .unwrap();
            tls.write_all(b"ping").unwrap();
            tls.flush().unwrap();
            // Reads nothing until the server is done.
            let _ = done.recv_timeout(PATIENCE);
        });
        let (tcp, _) = listener.accept().unwrap();
        let mut tls = acceptor().accept(tcp).unwrap();
        tls.get_ref()
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        tls.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
        let big = vec![7u8; 32 << 20];
        let err = tls.write_all(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let mut ping = [0u8; 4];
        let res = tls.read_exact(&mut ping);
        done_tx.send(()).unwrap();
        client.join().unwrap();
        res.unwrap();
        assert_eq!(&ping, b"ping");
    });
}

/// After a fatal TLS error (a record that does not decrypt) every read and
/// write fails at once with it (found by review: the next read waited on
/// the socket for records it could only reject).
#[test]
fn a_tls_error_ends_the_connection_for_every_later_call() {
    on_workers(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done) = channel::bounded::<()>(1);
        let client = sylvan::spawn(move || {
            let tls = trusting()
                .connect("localhost", TcpStream::connect(addr).unwrap())
                .unwrap();
            // An application-data record that cannot decrypt.
            let mut rec = vec![0x17, 0x03, 0x03, 0x00, 0x40];
            rec.extend_from_slice(&[0x55; 0x40]);
            tls.get_ref().write_all(&rec).unwrap();
            // Then silent, the connection open, until the server is done.
            let _ = done.recv_timeout(PATIENCE);
            drop(tls);
        });
        let (tcp, _) = listener.accept().unwrap();
        let mut tls = acceptor().accept(tcp).unwrap();
        tls.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 16];
        let first = tls.read(&mut buf).unwrap_err();
        let started = Instant::now();
        let again = tls.read(&mut buf).unwrap_err();
        let write = tls.write(b"x").unwrap_err();
        let flush = tls.flush().unwrap_err();
        let took = started.elapsed();
        done_tx.send(()).unwrap();
        client.join().unwrap();
        assert_eq!(first.kind(), io::ErrorKind::InvalidData, "{first}");
        for e in [&again, &write, &flush] {
            assert_eq!(e.kind(), first.kind());
            assert_eq!(e.to_string(), first.to_string());
        }
        assert!(
            took < PATIENCE / 2,
            "the calls after the error waited: {took:?}"
        );
    });
}

/// A fiber that panics half-way through a close-delimited message: its
/// stream is dropped while unwinding and must not end with close_notify,
/// or the peer would take the half message for all of it (found by review).
#[test]
fn a_fiber_that_panics_mid_message_does_not_end_the_stream_cleanly() {
    on_workers(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut tls = acceptor().accept(tcp).unwrap();
            tls.write_all(b"HTTP/1.0 200 OK\r\n\r\nfirst half, ")
                .unwrap();
            tls.flush().unwrap();
            panic!("the handler failed before the second half");
        });
        let mut tls = trusting()
            .connect("localhost", TcpStream::connect(addr).unwrap())
            .unwrap();
        tls.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = Vec::new();
        let res = tls.read_to_end(&mut got);
        assert!(server.join().unwrap_err().is_panic());
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(got, b"HTTP/1.0 200 OK\r\n\r\nfirst half, ");
    });
}

/// A write whose records the socket could not take before its write
/// timeout still returns `Ok(n)` (the bytes are taken, the tail of their
/// records stays queued). A following read gets them out as the socket
/// makes room, while it waits for the peer's answer: the peer needs the
/// whole request before it answers (found by review: a read that sent only
/// what the socket took at once, then waited to read, hung both sides).
#[test]
fn a_read_after_a_write_that_left_records_queued_gets_them_out() {
    const REQ: usize = 48 * 1024;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(on_workers(2, || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            // Small windows, so the request does not fit in the socket
            // buffers in between.
            socket2::SockRef::from(&listener)
                .set_recv_buffer_size(4096)
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let server = sylvan::spawn(move || -> io::Result<usize> {
                let (tcp, _) = listener.accept()?;
                let mut tls = acceptor().accept(tcp)?;
                tls.get_ref()
                    .set_read_timeout(Some(Duration::from_secs(3)))?;
                // Busy for a moment before it reads the request.
                sylvan::sleep(Duration::from_millis(300));
                let mut req = vec![0u8; REQ];
                tls.read_exact(&mut req)?;
                tls.write_all(b"done")?;
                tls.flush()?;
                Ok(req.len())
            });
            let tcp = TcpStream::connect(addr).unwrap();
            socket2::SockRef::from(&tcp)
                .set_send_buffer_size(4096)
                .unwrap();
            let mut tls = trusting().connect("localhost", tcp).unwrap();
            tls.get_ref()
                .set_write_timeout(Some(Duration::from_millis(150)))
                .unwrap();
            tls.get_ref()
                .set_read_timeout(Some(Duration::from_secs(6)))
                .unwrap();
            let taken = tls.write(&vec![5u8; REQ]).unwrap();
            assert_eq!(taken, REQ, "TLS took the whole request");
            let mut reply = [0u8; 4];
            let got = tls
                .read_exact(&mut reply)
                .map(|()| reply)
                .map_err(|e| e.to_string());
            let served = server.join().unwrap().map_err(|e| e.to_string());
            (got, served)
        }));
    });
    let (got, served) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("watchdog: the test hung");
    assert_eq!(
        (got, served),
        (Ok(*b"done"), Ok(REQ)),
        "the request's queued records never went out: both sides waited for each other"
    );
}
