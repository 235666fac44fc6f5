//! Runs the example programs the way a newcomer does and checks their output.
//! `cargo test` builds the examples next to the test binaries.

mod example_support;
#[path = "support/pki.rs"]
mod pki;
// The duration parser behind the examples' flags, for its unit test below.
#[path = "../examples/common/duration.rs"]
mod duration;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::Duration;

use example_support::{example, Server};

#[test]
fn durations_on_the_command_line() {
    use duration::parse_duration;
    let ok = |s: &str| parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(ok("2s"), Duration::from_secs(2));
    assert_eq!(ok("2"), Duration::from_secs(2));
    assert_eq!(ok("500ms"), Duration::from_millis(500));
    assert_eq!(ok("1.5s"), Duration::from_millis(1500));
    assert_eq!(ok("10m"), Duration::from_secs(600));
    assert_eq!(ok("1h"), Duration::from_secs(3600));
    for bad in [
        "",
        "0s",
        "0.0000000001s",
        "-1s",
        "+1s",
        "1e3s",
        "s",
        "2 weeks",
        "1.2.3s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    // Too long to be meant, or to add to an Instant.
    assert!(parse_duration("9999999999999s").is_err());
    assert!(parse_duration("99999999999999999999999s").is_err());
}

#[test]
fn hello_example_runs() {
    let path = example("hello");
    let out = Command::new(&path).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e} (build it with `cargo build --examples`)",
            path.display()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("10000 fibers slept 100 ms each"),
        "{stdout}"
    );
    assert!(stdout.contains("(sum of ids 49995000)"), "{stdout}");
    assert!(stdout.contains("hello from fiber greeter"), "{stdout}");
}

#[test]
fn echo_example_echoes_and_stops_on_ctrl_c() {
    let server = Server::start("echo", &[]);
    let clients: Vec<_> = (0..16u8)
        .map(|c| {
            let mut s = server.connect();
            std::thread::spawn(move || {
                for i in 0..100u8 {
                    let msg = [c, i, c.wrapping_mul(i)];
                    s.write_all(&msg).unwrap();
                    let mut back = [0u8; 3];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                }
                s // still open when the server is stopped
            })
        })
        .collect();
    let open: Vec<TcpStream> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    server.stop();
    // The open connections were closed by the shutdown.
    for mut s in open {
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
}

/// An idle connection costs its fiber (a stack page or two and its record)
/// and little else: the echo example holds no read buffer while it waits.
/// With a 16 KiB buffer on the fiber's stack it cost 21 KB each in a release
/// build and 25 KB in this debug build (now 5 KB and 9 KB).
#[test]
fn idle_echo_connections_cost_about_a_page_each() {
    // Under the usual soft limit of 1,024 descriptors, in both processes.
    const CONNS: usize = 600;
    let server = Server::start("echo", &[]);
    // Warm up (one connection's worth of allocator and stack pool), then
    // take the baseline.
    drop(server.connect());
    let base = server.rss();
    let conns: Vec<TcpStream> = (0..CONNS)
        .map(|i| {
            let mut s = server.connect();
            // Served once (the connection's fiber has run and read), then idle.
            s.write_all(&[i as u8]).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8);
            s
        })
        .collect();
    let per_conn = server.rss().saturating_sub(base) / CONNS as u64;
    assert!(
        per_conn < 14 * 1024,
        "{per_conn} bytes of server memory per idle connection"
    );
    // Still echoing.
    for (i, mut s) in conns.into_iter().enumerate().step_by(97) {
        s.write_all(&[i as u8, 7]).unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, [i as u8, 7]);
    }
    server.stop();
}

const HELLO_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

#[test]
fn http_hello_keeps_alive_pipelines_and_rejects_garbage() {
    let server = Server::start("http_hello", &[]);
    // Keep-alive: many requests on one connection.
    let mut s = server.connect();
    for _ in 0..100 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = vec![0u8; HELLO_RESPONSE.len()];
        s.read_exact(&mut resp).unwrap();
        assert_eq!(resp, HELLO_RESPONSE);
    }
    // Pipelining: ten requests in one write (one with a body to skip), ten
    // responses in order.
    let mut batch = Vec::new();
    for i in 0..10 {
        if i == 5 {
            batch.extend_from_slice(
                b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /",
            );
        } else {
            batch.extend_from_slice(b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n");
        }
    }
    s.write_all(&batch).unwrap();
    let mut resp = vec![0u8; HELLO_RESPONSE.len() * 10];
    s.read_exact(&mut resp).unwrap();
    assert!(resp
        .chunks(HELLO_RESPONSE.len())
        .all(|r| r == HELLO_RESPONSE));
    // A request split across writes.
    s.write_all(b"GET / HT").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    s.write_all(b"TP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut one = vec![0u8; HELLO_RESPONSE.len()];
    s.read_exact(&mut one).unwrap();
    assert_eq!(one, HELLO_RESPONSE);
    // Garbage: 400, then the server closes the connection.
    let mut bad = server.connect();
    bad.write_all(b"\x01\x02 NOT HTTP\r\n\r\n").unwrap();
    let mut all = Vec::new();
    bad.read_to_end(&mut all).unwrap();
    assert!(
        all.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    // HTTP/1.0 without keep-alive: one answer, then close.
    let mut old = server.connect();
    old.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    old.read_to_end(&mut all).unwrap();
    assert!(all.ends_with(b"Hello, World!") && all.starts_with(b"HTTP/1.1 200 OK"));
    // A real client, where one is installed.
    if let Ok(out) = Command::new("curl")
        .args(["-s", &format!("http://{}/", server.addr)])
        .output()
    {
        if out.status.success() {
            assert_eq!(out.stdout, b"Hello, World!");
        }
    }
    server.stop();
}

#[test]
fn http_hello_serves_https_with_a_certificate_and_key() {
    use sylvan::net::tls::TlsConnector;
    let pki = pki::pki();
    let dir = pki::temp_dir("http_hello");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pki.chain_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    // Both flags or neither; a file that is not there is named.
    for args in [&["--tls-cert", cert][..], &["--tls-key", key][..]] {
        let out = Command::new(example("http_hello"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("required arguments were not provided"),
            "{stderr}"
        );
    }
    let out = Command::new(example("http_hello"))
        .args([
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            key,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("read /nonexistent/cert.pem: "), "{stderr}");

    let server = Server::start(
        "http_hello",
        &["--tls-cert", cert, "--tls-key", key, "--grace", "60s"],
    );
    let connect = |connector: &TlsConnector| {
        let tcp = sylvan::net::TcpStream::connect(&server.addr).unwrap();
        tcp.set_read_timeout(Some(example_support::PATIENCE))
            .unwrap();
        tcp.set_write_timeout(Some(example_support::PATIENCE))
            .unwrap();
        connector.connect("localhost", tcp)
    };
    let trusting = TlsConnector::builder()
        .web_roots(false)
        .add_root_certificates_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    // Keep-alive over TLS.
    let mut tls = connect(&trusting).unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    for _ in 0..10 {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut resp = vec![0u8; HELLO_RESPONSE.len()];
        tls.read_exact(&mut resp).unwrap();
        assert_eq!(resp, HELLO_RESPONSE);
    }
    // Connection: close ends with TLS close_notify: a clean end of stream.
    let mut closing = connect(&trusting).unwrap();
    closing
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    closing.read_to_end(&mut all).unwrap();
    assert!(
        all.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert!(all.ends_with(b"Connection: close\r\n\r\nHello, World!"));
    // A client that does not trust the certificate is told why.
    let err = connect(&TlsConnector::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "tls handshake with localhost: invalid peer certificate: UnknownIssuer"
    );
    // Ctrl-C wakes the idle TLS connection at once (well within --grace),
    // which then closes with close_notify.
    let stderr = server.stop();
    let mut b = [0u8; 1];
    assert_eq!(tls.read(&mut b).unwrap(), 0);
    // The refused handshake was logged, naming the client.
    assert!(stderr.contains("tls handshake with 127.0.0.1:"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

fn join_chat(server: &Server, nick: &str) -> (TcpStream, BufReader<TcpStream>) {
    let s = server.connect();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert!(read_line(&mut r).starts_with("Welcome"));
    (&s).write_all(format!("{nick}\r\n").as_bytes()).unwrap();
    let hello = read_line(&mut r);
    assert!(hello.starts_with(&format!("Hello {nick}!")), "{hello}");
    (s, r)
}

#[test]
fn chat_broadcasts_and_drops_a_slow_client_without_stalling_others() {
    let server = Server::start("chat", &[]);
    let (mut alice, mut alice_r) = join_chat(&server, "alice");
    let (mut bob, mut bob_r) = join_chat(&server, "bob");
    assert_eq!(read_line(&mut alice_r), "* bob joined");
    bob.write_all(b"hi alice\r\n").unwrap();
    assert_eq!(read_line(&mut alice_r), "[bob] hi alice");
    alice.write_all(b"/who\r\n").unwrap();
    assert_eq!(read_line(&mut alice_r), "* 2 here: alice, bob");
    // A client that never reads.
    let (slow, _slow_r) = join_chat(&server, "slow");
    assert_eq!(read_line(&mut alice_r), "* slow joined");
    assert_eq!(read_line(&mut bob_r), "* slow joined");
    // Alice floods in windows of 64 lines (well under the server's 256-line
    // queue) that bob reads before the next window, so bob keeps up
    // whatever the scheduling; slow never reads, so once its socket buffers
    // (a few MB on loopback) and its queue are full the server drops it.
    const LINES: usize = 12_000;
    const WINDOW: usize = 64;
    let payload = "x".repeat(900);
    let mut saw_drop = false;
    for window in 0..LINES / WINDOW {
        let first = window * WINDOW;
        let batch: String = (first..first + WINDOW)
            .map(|i| format!("{i} {payload}\r\n"))
            .collect();
        alice.write_all(batch.as_bytes()).unwrap();
        let mut got = first;
        while got < first + WINDOW {
            let line = read_line(&mut bob_r);
            if line == "* slow was disconnected (too slow)" && !saw_drop {
                saw_drop = true;
                continue;
            }
            let expected = format!("[alice] {got} ");
            assert!(
                line.starts_with(&expected),
                "expected {expected:?}, got {line:.40?}"
            );
            got += 1;
        }
    }
    if !saw_drop {
        assert_eq!(read_line(&mut bob_r), "* slow was disconnected (too slow)");
    }
    // The slow client's connection was shut down by the server.
    let mut rest = Vec::new();
    let mut slow = slow;
    let _ = slow.read_to_end(&mut rest);
    let stderr = server.stop();
    assert!(stderr.contains("slow could not keep up"), "{stderr}");
}

#[test]
fn portforward_relays_both_ways_with_half_close() {
    // The target: reads until end-of-stream, then answers with the bytes
    // reversed and closes (so it only answers if half-close was relayed).
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in target.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                let mut data = Vec::new();
                conn.read_to_end(&mut data).unwrap();
                data.reverse();
                conn.write_all(&data).unwrap();
            });
        }
    });
    let server = Server::start("portforward", &[&target_addr]);
    let clients: Vec<_> = (0..8u32)
        .map(|c| {
            let mut s = server.connect();
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 + c) as u8).collect();
                s.write_all(&data).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                let mut expected = data;
                expected.reverse();
                assert!(back == expected, "client {c}: {} bytes back", back.len());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.stop();
}
