//! Hostile peers against the example programs: clients that try to wedge,
//! exhaust or confuse the servers (over 127.0.0.1, as an attacker on the
//! network would), and a server that feeds the crawler lies. Each test is a
//! reproduction of an audit finding that failed before its fix.

mod example_support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

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
fn http_hello_body_limit_is_a_flag() {
    let server = Server::start("http_hello", &["--max-body", "1000"]);
    let at_limit = format!(
        "POST / HTTP/1.1\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{}",
        "x".repeat(1000)
    );
    assert_eq!(statuses(&exchange(&server, at_limit.as_bytes())), [200]);
    let over = b"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n";
    assert_eq!(statuses(&exchange(&server, over)), [413]);
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

/// Waits for `s` to be closed by the server; returns what it sent first and
/// how long the close took.
fn time_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let reply = read_all(s);
    (reply, started.elapsed())
}

#[test]
fn http_hello_closes_idle_and_slowloris_connections() {
    let server = Server::start("http_hello", &["--idle-timeout", "500ms"]);
    // Says nothing at all.
    let mut silent = server.connect();
    let (reply, took) = time_until_closed(&mut silent);
    assert!(
        reply.is_empty() && took >= Duration::from_millis(400),
        "{took:?}"
    );
    // An idle keep-alive connection after one request.
    let mut idle = server.connect();
    idle.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (reply, _) = time_until_closed(&mut idle);
    assert_eq!(statuses(&reply), [200]);
    // A head trickling in a byte every 50 ms: each byte would have renewed a
    // per-read timeout forever; the head's deadline does not move.
    let mut slow = server.connect();
    let mut trickle = slow.try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        let head = b"GET / HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 200].iter());
        for &b in head {
            if trickle.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (reply, took) = time_until_closed(&mut slow);
    assert_eq!(statuses(&reply), [408], "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    slow.shutdown(Shutdown::Both).unwrap(); // the dribbler's next write fails
    dribbler.join().unwrap();
    server.stop();
}

/// A client that writes without ever reading: once the buffers between it
/// and the server are full the server's writes block, and the write timeout
/// must end the connection. Returns how the client's writing ended.
fn flood_without_reading(server: &Server, chunk: &[u8]) -> io::Error {
    let s = server.connect();
    // A small receive buffer, so the server's writes block sooner.
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(4096)
        .unwrap();
    let mut s = s;
    for _ in 0..(1 << 30) / chunk.len() {
        if let Err(e) = s.write_all(chunk) {
            return e;
        }
    }
    panic!("the server took 1 GiB without blocking");
}

#[test]
fn echo_disconnects_clients_that_do_not_read_or_do_not_write() {
    let server = Server::start(
        "echo",
        &["--write-timeout", "500ms", "--idle-timeout", "500ms"],
    );
    let e = flood_without_reading(&server, &[b'x'; 64 * 1024]);
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "the server should have dropped the connection: {e}"
    );
    let mut silent = server.connect();
    silent.write_all(b"ping").unwrap();
    let (reply, took) = time_until_closed(&mut silent);
    assert_eq!(reply, b"ping");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    server.stop();
}

#[test]
fn http_hello_disconnects_a_client_that_does_not_read() {
    let server = Server::start("http_hello", &["--write-timeout", "500ms"]);
    let requests = b"GET / HTTP/1.1\r\n\r\n".repeat(4096);
    let e = flood_without_reading(&server, &requests);
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "the server should have dropped the connection: {e}"
    );
    server.stop();
}

/// Writes `ping` and reads the echo: true if the server served the
/// connection, false if it closed it unanswered.
fn echoed(s: &mut TcpStream) -> bool {
    if s.write_all(b"ping").is_err() {
        return false;
    }
    let mut back = [0u8; 4];
    match s.read_exact(&mut back) {
        Ok(()) => {
            assert_eq!(&back, b"ping");
            true
        }
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                ),
                "{e}"
            );
            false
        }
    }
}

#[test]
fn echo_limits_connections_and_says_so_once() {
    let server = Server::start("echo", &["--max-connections", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    assert!(echoed(&mut first) && echoed(&mut second));
    for _ in 0..20 {
        assert!(!echoed(&mut server.connect()), "over the limit");
    }
    // The first client leaves; the server's close (end of stream here)
    // comes after its slot is free.
    first.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(&mut first).is_empty());
    let mut third = server.connect();
    assert!(echoed(&mut third));
    assert!(echoed(&mut second));
    server.wait_for_line("refused 20 connection(s)");
    let stderr = server.stop();
    assert_eq!(
        stderr.matches("connection limit reached (2 open)").count(),
        1,
        "{stderr}"
    );
}

/// The TCP state row of a loopback socket in /proc/net/tcp: `tr` is "02"
/// while a keep-alive timer is pending on it.
fn keepalive_timer_pending(local_port: u16, remote_port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{local_port:04X}");
    let remote = format!("0100007F:{remote_port:04X}");
    let row = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[1] == local && f[2] == remote)
        .unwrap_or_else(|| panic!("no socket {local} -> {remote} in\n{table}"));
    // field 5: "tr:tm->when"
    row[5].starts_with("02:")
}

#[test]
fn echo_turns_on_tcp_keepalive_for_its_connections() {
    let server = Server::start("echo", &[]);
    let mut s = server.connect();
    assert!(echoed(&mut s)); // accepted and set up
    let server_port = s.peer_addr().unwrap().port();
    let client_port = s.local_addr().unwrap().port();
    assert!(keepalive_timer_pending(server_port, client_port));
    // (and the client side, which never asked for it, has none)
    assert!(!keepalive_timer_pending(client_port, server_port));
    server.stop();
}

/// A target that resets every connection as soon as it is accepted.
fn resetting_target() -> String {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in target.incoming().flatten() {
            let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
        }
    });
    addr
}

#[test]
fn portforward_throttles_its_error_log() {
    let target = resetting_target();
    let server = Server::start("portforward", &[&target]);
    const CONNECTIONS: usize = 300;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..CONNECTIONS / 4 {
                    let mut s = server.connect();
                    read_all(&mut s); // closed once the reset is relayed
                }
            });
        }
    });
    let took = started.elapsed();
    let stderr = server.stop();
    // "portforward: 127.0.0.1:PORT: <error>"
    let errors = stderr
        .lines()
        .filter(|l| l.starts_with("portforward: 127.0.0.1:"))
        .count();
    let seconds = took.as_secs() as usize + 1;
    assert!(
        errors <= 10 * (seconds + 1),
        "{errors} error lines for {CONNECTIONS} resets in {took:?}:\n{stderr}"
    );
    assert!(stderr.contains("suppressed"), "{stderr}");
}

/// A target that accepts connections and never reads, writes or closes
/// them.
fn silent_target() -> String {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in target.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

#[test]
fn portforward_closes_connections_idle_both_ways_even_half_closed() {
    let server = Server::start(
        "portforward",
        &[&silent_target(), "--idle-timeout", "500ms"],
    );
    // Half-closed by the client, target silent: nothing moves either way.
    let mut s = server.connect();
    s.write_all(b"request").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (reply, took) = time_until_closed(&mut s);
    assert!(reply.is_empty());
    assert!(took >= Duration::from_millis(400), "{took:?}");
    server.wait_for_line("without traffic");
    server.stop();
}

#[test]
fn portforward_keeps_a_one_way_transfer_open_past_the_idle_timeout() {
    // A download: the target talks for 2 s, the client never says a thing.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut conn, _) = target.accept().unwrap();
        for i in 0..20u8 {
            conn.write_all(&[i]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let server = Server::start("portforward", &[&target_addr, "--idle-timeout", "500ms"]);
    let mut s = server.connect();
    let reply = read_all(&mut s);
    assert_eq!(reply, (0..20).collect::<Vec<u8>>());
    drop(s);
    server.stop();
}

#[test]
fn http_hello_drains_on_ctrl_c() {
    let server = Server::start("http_hello", &["--grace", "2s"]);
    let response = |s: &mut TcpStream| {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert!(r.read_line(&mut head).unwrap() > 0, "closed: {head:?}");
        }
        let mut body = [0u8; 13];
        r.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"Hello, World!");
        head
    };
    // Idle between requests.
    let mut idle = server.connect();
    idle.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    response(&mut idle);
    // In the middle of a request: a complete one (answered, so the server
    // has read this write) and the start of the next.
    let pipelined = b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n";
    let mut busy = server.connect();
    busy.write_all(pipelined).unwrap();
    response(&mut busy);
    // The same, but its request never completes.
    let mut stuck = server.connect();
    stuck.write_all(pipelined).unwrap();
    response(&mut stuck);

    server.interrupt();
    server.wait_for_line("shutting down");
    // No new connections...
    assert!(TcpStream::connect(&server.addr).is_err());
    // ...idle ones are closed at once...
    let (reply, took) = time_until_closed(&mut idle);
    assert!(
        reply.is_empty() && took < Duration::from_secs(1),
        "{took:?}"
    );
    // ...the request in progress is answered, and its connection closed...
    busy.write_all(b"\r\n").unwrap();
    let head = response(&mut busy);
    assert!(head.contains("Connection: close"), "{head}");
    assert!(read_all(&mut busy).is_empty());
    drop(busy);
    // ...and what has not finished within the grace period is cut off.
    let (reply, took) = time_until_closed(&mut stuck);
    assert!(reply.is_empty() && took < PATIENCE, "{took:?}");
    let (status, stderr) = server.wait_exit(PATIENCE);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("grace period over; closing 1 connection(s)"),
        "{stderr}"
    );
}

#[test]
fn chat_gives_a_nickname_to_one_client_only() {
    // More workers than cores, so the OS may preempt a worker anywhere,
    // also between a nickname check and the insert that follows it.
    let server = Server::start("chat", &["--workers", "8"]);
    // Rounds of clients asking for one nickname at the same moment. When
    // the check and the insert were separate steps, two clients got the
    // name in 3-9% of rounds on a 2-core machine.
    const ROUNDS: usize = 400;
    const CLIENTS: usize = 4;
    for round in 0..ROUNDS {
        let mut clients: Vec<(TcpStream, BufReader<TcpStream>)> = (0..CLIENTS)
            .map(|_| {
                let s = server.connect();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut welcome = String::new();
                r.read_line(&mut welcome).unwrap();
                assert!(welcome.starts_with("Welcome"), "{welcome}");
                (s, r)
            })
            .collect();
        let ask = format!("sam{round}\r\n");
        for (s, _) in &mut clients {
            s.write_all(ask.as_bytes()).unwrap();
        }
        // Every client keeps its connection (and any name it got) until all
        // have been answered.
        let answers: Vec<String> = clients
            .iter_mut()
            .map(|(_, r)| {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                line.trim().to_string()
            })
            .collect();
        let got_it = answers.iter().filter(|l| l.starts_with("Hello")).count();
        assert_eq!(got_it, 1, "round {round}: {answers:?}");
    }
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
    // HTML, so the crawler reads the bodies (one it does not want, of
    // unknown or large length, it leaves unread).
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n";
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
    // Broken answers were found: exit status 1.
    assert_eq!(run.status.code(), Some(1), "{stderr}");
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
    assert_eq!(outcome("plus-length"), "bad-length");
    assert_eq!(outcome("two-lengths"), "bad-length");
    assert_eq!(outcome("same-lengths"), "200");
    assert_eq!(outcome("huge-length"), "too-large");
    assert_eq!(outcome("plus-chunk"), "bad-chunk");
    assert_eq!(outcome("huge-chunk"), "too-large");
    assert_eq!(outcome("wrapping-chunk"), "too-large");
}
