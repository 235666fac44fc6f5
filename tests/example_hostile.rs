//! Hostile peers against the example programs: clients that try to wedge,
//! exhaust or confuse the servers (over 127.0.0.1, as an attacker on the
//! network would), and a server that feeds the crawler lies. Each test is a
//! reproduction of an audit finding that failed before its fix.

mod example_support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use example_support::{Server, PATIENCE};

/// http_hello's limits (examples/http_hello.rs).
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 32;

/// Sends `request` on a fresh connection and reads until the server closes
/// it (or resets it: what came before the reset is kept).
fn exchange(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut s = server.connect();
    s.write_all(request).unwrap();
    read_all(&mut s)
}

fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!(
                "no end of stream within {PATIENCE:?} ({e}); got {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

/// The status code of every response in `bytes` (responses with bodies
/// are told apart by their status lines, which is enough here).
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ")
        .map(|(i, _)| text[i + 9..i + 12].parse().unwrap())
        .collect()
}

#[test]
fn http_hello_survives_a_content_length_that_wraps_around() {
    // One worker: a fiber that spins without parking would stall it, and the
    // second request would never be answered.
    let server = Server::start("http_hello", &["--workers", "1"]);
    // head_len (56) + 18446744073709551560 = 2^64: wrapped to 0 in release
    // builds (a request that consumes nothing, answered forever), overflow
    // panic in debug builds.
    let request = b"GET / HTTP/1.1\r\nContent-Length: 18446744073709551560\r\n\r\n";
    assert_eq!(request.len(), 56);
    let reply = exchange(&server, request);
    assert_eq!(
        statuses(&reply),
        [413],
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // Larger than any usize: too large as well, not malformed.
    let reply = exchange(
        &server,
        b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
    );
    assert_eq!(statuses(&reply), [413]);
    let reply = exchange(&server, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(statuses(&reply), [200]);
    server.stop();
}

#[test]
fn http_hello_refuses_bodies_over_the_limit_before_reading_them() {
    let server = Server::start("http_hello", &[]);
    // The default limit (1 MiB): a terabyte is refused at once, not buffered.
    let reply = exchange(
        &server,
        b"POST / HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n",
    );
    assert_eq!(statuses(&reply), [413]);
    // A client that keeps sending the refused body still gets the 413 (the
    // server drains what it sends instead of resetting the connection).
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 4000000\r\n\r\n")
        .unwrap();
    let mut body_writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = [b'x'; 16 * 1024];
        for _ in 0..64 {
            if body_writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let reply = read_all(&mut s);
    assert_eq!(
        statuses(&reply),
        [413],
        "{}",
        String::from_utf8_lossy(&reply)
    );
    drop(s);
    sender.join().unwrap();
    server.stop();
}

#[test]
fn http_hello_rejects_ambiguous_body_framing() {
    let server = Server::start("http_hello", &[]);
    let cases: &[(&str, u16)] = &[
        // Two lengths: the first used to win, and the rest of the body was
        // parsed as a second request (the smuggled GET below).
        ("Content-Length: 5\r\nContent-Length: 50", 400),
        ("Content-Length: 50\r\nContent-Length: 50", 400),
        ("Content-Length: +5", 400),
        ("Content-Length: -5", 400),
        ("Content-Length: 0x5", 400),
        ("Content-Length: 5 5", 400),
        ("Content-Length: 5,5", 400),
        ("Content-Length: ", 400),
        ("Transfer-Encoding: chunked\r\nContent-Length: 5", 400),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: gzip", 400),
        ("Transfer-Encoding: chunked, gzip", 400),
        ("Transfer-Encoding: chunked", 501),
        ("Transfer-Encoding: gzip, chunked", 501),
        // Spaces around a field value are not part of it (RFC 9110 5.5).
        ("Content-Length:   5  ", 200),
        ("Content-Length: 5", 200),
    ];
    for (headers, status) in cases {
        let request = format!(
            "POST / HTTP/1.1\r\n{headers}\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nConnection: close\r\n\r\n"
        );
        let reply = exchange(&server, request.as_bytes());
        // A body of 5 and the pipelined GET after it are answered; any
        // other framing gets one error answer and the connection is closed
        // before the rest is taken for a request.
        let expected: &[u16] = if *status == 200 {
            &[200, 200]
        } else {
            &[*status]
        };
        assert_eq!(
            statuses(&reply),
            expected,
            "{headers:?}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    server.stop();
}

/// A request head of exactly `len` bytes (a padded header).
fn head_of_len(len: usize) -> Vec<u8> {
    let frame = "GET / HTTP/1.1\r\nConnection: close\r\nX-Pad: \r\n\r\n".len();
    format!(
        "GET / HTTP/1.1\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(len - frame)
    )
    .into_bytes()
}

#[test]
fn http_hello_head_limit_is_exact_however_the_head_arrives() {
    let server = Server::start("http_hello", &[]);
    assert_eq!(head_of_len(MAX_HEAD).len(), MAX_HEAD);
    assert_eq!(statuses(&exchange(&server, &head_of_len(MAX_HEAD))), [200]);
    // One byte over, in one write; and 20 KiB, which used to pass because
    // only what was buffered before a read was checked.
    for len in [MAX_HEAD + 1, 20 * 1024] {
        let reply = exchange(&server, &head_of_len(len));
        assert_eq!(statuses(&reply), [431], "{len} bytes");
    }
    // One byte over, in pieces that straddle the limit.
    let head = head_of_len(MAX_HEAD + 1);
    let mut s = server.connect();
    s.set_nodelay(true).unwrap();
    for piece in [
        &head[..8000],
        &head[8000..MAX_HEAD - 1],
        &head[MAX_HEAD - 1..],
    ] {
        // The server may answer (and close) before the last piece: fine.
        let _ = s.write_all(piece);
    }
    assert_eq!(statuses(&read_all(&mut s)), [431]);
    // Too many header fields is a too-large head too, not a malformed one.
    let fields = |n: usize| {
        let mut req = "GET / HTTP/1.1\r\nConnection: close\r\n".to_string();
        for i in 1..n {
            req += &format!("X-{i}: v\r\n");
        }
        req + "\r\n"
    };
    assert_eq!(
        statuses(&exchange(&server, fields(MAX_HEADERS).as_bytes())),
        [200]
    );
    assert_eq!(
        statuses(&exchange(&server, fields(MAX_HEADERS + 1).as_bytes())),
        [431]
    );
    server.stop();
}

/// A server whose responses lie about their length, one path each; every
/// connection answers one request and closes.
fn lying_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || lie(conn));
        }
    });
    addr
}

fn lie(mut conn: TcpStream) {
    let mut head = Vec::new();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    while !head.ends_with(b"\r\n\r\n") {
        if reader.read_until(b'\n', &mut head).unwrap_or(0) == 0 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n";
    let reply = match path {
        "/" => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n{}",
            [
                "plus-length",
                "two-lengths",
                "same-lengths",
                "huge-length",
                "plus-chunk",
                "huge-chunk",
                "wrapping-chunk",
            ]
            .map(|p| format!("<a href=/{p}>{p}</a>"))
            .concat()
        ),
        "/robots.txt" => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
        "/plus-length" => format!("{ok}Content-Length: +5\r\n\r\nhello"),
        "/two-lengths" => format!("{ok}Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello, w"),
        "/same-lengths" => format!("{ok}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        "/huge-length" => format!("{ok}Content-Length: 99999999999999999999999\r\n\r\nhello"),
        "/plus-chunk" => format!("{ok}Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"),
        // 1 byte, then a chunk whose size would wrap the running total.
        "/wrapping-chunk" => format!(
            "{ok}Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n{:x}\r\nbbbb",
            usize::MAX
        ),
        "/huge-chunk" => format!(
            "{ok}Transfer-Encoding: chunked\r\n\r\n1{:x}\r\nbbbb",
            usize::MAX
        ),
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
    };
    let _ = conn.write_all(reply.as_bytes());
}

#[test]
fn crawler_checks_the_lengths_a_server_sends() {
    let base = format!("http://{}/", lying_server());
    let out = std::env::temp_dir().join(format!("sylvan-lies-{}.jsonl", std::process::id()));
    let run = std::process::Command::new(example_support::example("crawler"))
        .args([&base, "--quiet", "--timeout", "5s", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let outcome = |path: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{base}{path}\"")))
            .unwrap_or_else(|| panic!("{path} not crawled:\n{text}"));
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        match &record["kind"] {
            serde_json::Value::String(kind) => kind.clone(),
            _ => record["status"].to_string(),
        }
    };
    assert_eq!(outcome("plus-length"), "http");
    assert_eq!(outcome("two-lengths"), "http");
    assert_eq!(outcome("same-lengths"), "200");
    assert_eq!(outcome("huge-length"), "too-large");
    assert_eq!(outcome("plus-chunk"), "http");
    assert_eq!(outcome("huge-chunk"), "too-large");
    assert_eq!(outcome("wrapping-chunk"), "too-large");
}
