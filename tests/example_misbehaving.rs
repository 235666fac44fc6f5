//! Servers and clients that misbehave exactly, found by an adversarial
//! review of the crawler and of http_hello over TLS (issue 15): one test
//! per finding, each failing before its fix, against scripted servers on
//! 127.0.0.1 that write raw bytes.

mod example_support;
#[path = "support/pki.rs"]
mod pki;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use example_support::example;
use serde_json::Value;

/// What a route answers: raw bytes, after an optional pause.
type RouteFn = dyn Fn(&str, &str) -> (Duration, Vec<u8>) + Send + Sync;
type Route = Arc<RouteFn>;

/// A keep-alive HTTP/1.1 server answering each request with `route`'s raw
/// bytes (nothing filtered: a HEAD answer is sent as the route wrote it).
fn server(route: Route) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let route = route.clone();
            std::thread::spawn(move || serve(conn, &*route));
        }
    });
    port
}

fn serve(conn: TcpStream, route: &RouteFn) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let (pause, bytes) = route(method, target);
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        if reader.get_mut().write_all(&bytes).is_err() {
            return;
        }
    }
}

fn now(bytes: Vec<u8>) -> (Duration, Vec<u8>) {
    (Duration::ZERO, bytes)
}

fn html(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status(code: u16) -> Vec<u8> {
    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn redirect(code: u16, to: &str) -> Vec<u8> {
    format!("HTTP/1.1 {code} X\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// Runs the crawler; returns its exit status, its stdout+stderr and the
/// JSON records by URL path.
fn crawl(args: &[&str]) -> (i32, String, HashMap<String, Value>) {
    let res = Command::new(example("crawler"))
        .args(args)
        .args(["--quiet", "--output", "-"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout).to_string();
    let stderr = String::from_utf8_lossy(&res.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut records = HashMap::new();
    for line in stdout.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let url = url::Url::parse(r["url"].as_str().unwrap()).unwrap();
        records.insert(url.path().to_string(), r);
    }
    (res.status.code().unwrap_or(-1), stdout + &stderr, records)
}

/// A server that answers HEAD with a body (broken CGI scripts do) must not
/// make the next request on that pooled connection read the stale body as
/// its answer. Here the stale body is a whole response: /b is recorded with
/// the links of that forged response, and /smuggled, which no page links
/// to, is crawled.
#[test]
fn a_head_answer_with_a_body_does_not_desynchronise_the_pooled_connection() {
    let port = server(Arc::new(|method, target| {
        now(match target {
            "/robots.txt" => status(404),
            "/" => html("<a href=/a.pdf>a</a><a href=/b>b</a>"),
            "/a.pdf" => {
                assert_eq!(method, "HEAD");
                let forged = html("<a href=/smuggled>x</a>");
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\n\r\n",
                    forged.len()
                )
                .into_bytes();
                r.extend_from_slice(&forged);
                r
            }
            "/b" => html("<p>the real /b: no links</p>"),
            _ => status(404),
        })
    }));
    let start = format!("http://127.0.0.1:{port}/");
    let (_, out, records) = crawl(&[&start, "--concurrency", "1", "--per-host", "1"]);
    assert_eq!(records["/b"]["links"], 0, "{out}");
    assert!(!records.contains_key("/smuggled"), "{out}");
}

/// A redirect to another origin asks that origin's robots.txt inside the
/// redirecting page's --timeout. When that page's time runs out during the
/// robots.txt fetch, the robots.txt cell is set to "interrupted" for good,
/// and every page of the other (healthy) origin then fails with it.
#[test]
fn a_page_timing_out_during_a_redirect_does_not_poison_the_targets_robots_txt() {
    let b = server(Arc::new(|_, target| match target {
        // Slower than what the redirecting page leaves, faster than --timeout.
        "/robots.txt" => (Duration::from_millis(300), status(404)),
        _ => now(html("<p>fine</p>")),
    }));
    let a = server(Arc::new(move |_, target| match target {
        "/robots.txt" => now(status(404)),
        // Uses up most of its --timeout before redirecting to the other origin.
        _ => (
            Duration::from_millis(450),
            redirect(302, &format!("http://127.0.0.1:{b}/x")),
        ),
    }));
    let (r, y) = (
        format!("http://127.0.0.1:{a}/r"),
        format!("http://127.0.0.1:{b}/y"),
    );
    // One fetcher: /r (and its redirect) first, then /y.
    let (_, out, records) = crawl(&[&r, &y, "--timeout", "700ms", "--concurrency", "1"]);
    assert_eq!(records["/y"]["status"], 200, "{out}");
}

/// A chain longer than --max-redirects fails, but the hop that exceeded the
/// limit has already been marked seen by `Crawl::hop`: it is never fetched
/// nor recorded, even when another page links to it (a broken link missed).
#[test]
fn the_url_beyond_max_redirects_is_still_checked_when_linked() {
    let port = server(Arc::new(|_, target| {
        now(match target {
            "/robots.txt" => status(404),
            "/" => html("<a href=/0>0</a><a href=/p2>p2</a>"),
            "/0" => redirect(302, "/1"),
            "/1" => redirect(302, "/2"),
            "/2" => redirect(302, "/3"),
            "/p2" => html("<a href=/3>3</a>"),
            _ => status(404),
        })
    }));
    let start = format!("http://127.0.0.1:{port}/");
    let (code, out, records) = crawl(&[&start, "--max-redirects", "2", "--concurrency", "1"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(records["/0"]["kind"], "too-many-redirects", "{out}");
    // /3 is a 404 linked from /p2: it must be in the output.
    assert_eq!(
        records.get("/3").map(|r| r["status"].clone()),
        Some(Value::from(404)),
        "{out}"
    );
}

/// --check-external checks a link to another host with one request, but a
/// redirect is never followed there (`Crawl::hop` stops at "another host",
/// even for a redirect within that same external host), so an external
/// link that redirects to a 404 (http -> https, /old -> /new, ...) is
/// reported as a fine 301 and the exit status says nothing is broken.
#[test]
fn check_external_follows_an_external_links_redirects() {
    let ext = server(Arc::new(|_, target| {
        now(match target {
            "/old" => redirect(301, "/gone"),
            _ => status(404),
        })
    }));
    let port = server(Arc::new(move |_, target| {
        now(match target {
            "/robots.txt" => status(404),
            _ => html(&format!("<a href=http://localhost:{ext}/old>ext</a>")),
        })
    }));
    let start = format!("http://127.0.0.1:{port}/");
    let (code, out, records) = crawl(&[&start, "--check-external"]);
    assert_eq!(records["/old"]["status"], 404, "{out}");
    assert_eq!(code, 1, "{out}");
}

/// When the JSON lines cannot be written (a full disk: /dev/full), the
/// crawler says so on stderr but exits 0, "nothing broken", with every
/// record lost: a script checking the exit status believes the report.
#[test]
fn a_failed_output_is_not_reported_as_success() {
    let port = server(Arc::new(|_, target| {
        now(match target {
            "/robots.txt" => status(404),
            _ => html("<p>no links</p>"),
        })
    }));
    let start = format!("http://127.0.0.1:{port}/");
    let res = Command::new(example("crawler"))
        .args([&start, "--quiet", "--output", "/dev/full"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("writing the output failed"), "{stderr}");
    assert_ne!(res.status.code(), Some(0), "{stderr}");
}

/// http_hello promises that a request must arrive whole within
/// --idle-timeout "so a request trickling in cannot extend it", and over
/// plain TCP it holds. Over TLS it does not: `TlsStream::read` keeps waiting
/// on the socket until a whole record has arrived, and each of those waits
/// gets the full read timeout again, so a client that sends one byte of a
/// record per (timeout - epsilon) holds the connection (and its fiber) for
/// as long as it likes: a 4 KB record at 4 bytes/s is over 15 minutes.
#[test]
fn http_hello_over_tls_closes_a_trickling_request_at_its_deadline() {
    use std::io::Read;
    use std::time::Instant;
    use sylvan::net::tls::{rustls, TlsConnector};
    let pki = pki::pki();
    let dir = pki::temp_dir("review-slowloris");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pki.chain_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let server = example_support::Server::start(
        "http_hello",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--idle-timeout",
            "1s",
        ],
    );
    let config = TlsConnector::builder()
        .web_roots(false)
        .add_root_certificates_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
        .config()
        .clone();
    let mut tls = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    let mut sock = TcpStream::connect(&server.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut sock).unwrap();
    }
    // One record holding a (large) request; sent a byte at a time.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(4000)
    );
    tls.writer().write_all(request.as_bytes()).unwrap();
    let mut record = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut record).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let started = Instant::now();
    let mut closed_after = None;
    for byte in &record[..record.len() - 1] {
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
        if sock.write_all(std::slice::from_ref(byte)).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        // Waits 250 ms for the server to close (session tickets may come first).
        let mut buf = [0u8; 4096];
        let closed = match sock.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        if closed {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let closed_after = closed_after.expect("the trickling TLS client was still served after 4 s");
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
}
