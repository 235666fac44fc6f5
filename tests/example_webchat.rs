//! The webchat example (examples/webchat) as its users see it: WebSocket
//! clients (tungstenite's, over std's TcpStream), the JSON API and the static
//! files, against the example binary on a loopback port; and, where Debian's
//! chromium is installed, the page in a real headless browser.

mod example_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use example_support::{Server, PATIENCE};
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// A chat member: a WebSocket client.
struct Client {
    ws: WebSocket<TcpStream>,
    /// The name the server gave it.
    name: String,
    /// Pings received so far (tungstenite answers them).
    pings: usize,
}

impl Client {
    /// Joins the room asking for `name`; reads the welcome.
    fn join(server: &Server, name: &str) -> Client {
        let url = format!("ws://{}/ws?name={name}", server.addr);
        let (ws, response) = tungstenite::client(url.as_str(), server.connect()).unwrap();
        assert_eq!(response.status(), 101);
        let mut client = Client {
            ws,
            name: String::new(),
            pings: 0,
        };
        let welcome = client.next_event();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client.name = welcome["name"].as_str().unwrap().to_string();
        client
    }

    /// The next event (a text frame, as JSON); pings are answered by
    /// tungstenite on the way.
    fn next_event(&mut self) -> Value {
        loop {
            match self.ws.read().expect("an event") {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Ping(_) => self.pings += 1,
                Message::Pong(_) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// Skips events until one of type `kind` for which `pick` holds.
    fn wait_for(&mut self, kind: &str, pick: impl Fn(&Value) -> bool) -> Value {
        loop {
            let event = self.next_event();
            if event["type"] == kind && pick(&event) {
                return event;
            }
        }
    }

    fn say(&mut self, text: &str) {
        let message = json!({"type": "say", "text": text}).to_string();
        self.ws.send(Message::text(message)).unwrap();
    }

    /// Reads until the server's close frame and returns it; whatever came
    /// before it must be events or pings.
    fn until_close(&mut self) -> Option<tungstenite::protocol::CloseFrame> {
        loop {
            match self.ws.read().expect("a close frame") {
                Message::Close(frame) => return frame,
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        }
    }
}

/// An HTTP response: status, header lines (lowercase names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends `request` (whole, ending the connection after it) and reads the
/// one answer to the end.
fn http(server: &Server, request: &str) -> Reply {
    let mut s = server.connect();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A server that closes with unread input may reset instead of ending
    // cleanly; the answer has arrived by then.
    if let Err(e) = s.read_to_end(&mut raw) {
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    }
    let (reply, used) = parse_reply(&raw);
    assert_eq!(used, raw.len(), "more than one answer");
    reply
}

/// Parses the response at the start of `raw` (its body framed by
/// Content-Length); returns it and how many bytes it took.
fn parse_reply(raw: &[u8]) -> (Reply, usize) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "not an HTTP response ({other:?}): {:?}",
            String::from_utf8_lossy(raw)
        ),
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let status = response.code.unwrap();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .expect("a Content-Length")
        .1
        .parse()
        .unwrap();
    let end = head_len + length;
    assert!(raw.len() >= end, "a truncated body");
    let reply = Reply {
        status,
        headers,
        body: raw[head_len..end].to_vec(),
    };
    (reply, end)
}

fn get(server: &Server, path: &str) -> Reply {
    http(
        server,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

fn post_json(server: &Server, body: &str) -> Reply {
    http(
        server,
        &format!(
            "POST /api/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// (seq, name, text) of a message event.
fn message(event: &Value) -> (u64, String, String) {
    assert_eq!(event["type"], "message", "{event}");
    (
        event["seq"].as_u64().unwrap(),
        event["name"].as_str().unwrap().to_string(),
        event["text"].as_str().unwrap().to_string(),
    )
}

#[test]
fn members_see_every_message_in_one_order_and_the_api_posts_and_lists_them() {
    let server = Server::start("webchat", &[]);
    let mut alice = Client::join(&server, "alice");
    assert_eq!(alice.next_event()["name"], "alice"); // her own join
    let mut bob = Client::join(&server, "bob");
    alice.wait_for("join", |e| e["name"] == "bob");
    bob.wait_for("join", |e| e["name"] == "bob");
    // Names are unique and sanitised.
    let mut alice2 = Client::join(&server, "alice");
    assert_eq!(alice2.name, "alice-2");
    let mut odd = Client::join(&server, "%3Cb%3E%20x%0A%20y");
    assert_eq!(odd.name, "b x y");

    // Both talk at once, from two threads.
    const EACH: usize = 50;
    let talk = |mut c: Client, who: &'static str| {
        std::thread::spawn(move || {
            for i in 0..EACH {
                c.say(&format!("{who} {i}"));
            }
            c
        })
    };
    let (a, b) = (talk(alice, "a"), talk(bob, "b"));
    let (mut alice, mut bob) = (a.join().unwrap(), b.join().unwrap());
    let received = |c: &mut Client| -> Vec<(u64, String, String)> {
        (0..2 * EACH)
            .map(|_| message(&c.wait_for("message", |_| true)))
            .collect()
    };
    let seen_by_alice = received(&mut alice);
    let seen_by_bob = received(&mut bob);
    let seen_by_alice2 = received(&mut alice2);
    assert_eq!(seen_by_alice, seen_by_bob);
    assert_eq!(seen_by_alice, seen_by_alice2);
    // Each sender's messages in the order sent, sequence numbers rising.
    for (who, name) in [("a", "alice"), ("b", "bob")] {
        let mine: Vec<String> = seen_by_alice
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, t)| t.clone())
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{who} {i}")).collect();
        assert_eq!(mine, sent);
    }
    assert!(seen_by_alice.windows(2).all(|w| w[0].0 < w[1].0));

    // A message from plain HTTP reaches the sockets.
    let reply = post_json(&server, r#"{"name": "curl", "text": "  via\tthe API  "}"#);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let seq = reply.json()["seq"].as_u64().unwrap();
    let posted = (seq, "curl".to_string(), "via the API".to_string());
    assert_eq!(message(&alice.wait_for("message", |_| true)), posted);
    assert_eq!(message(&bob.wait_for("message", |_| true)), posted);

    // The history: the last events in the same order.
    let history = get(&server, "/api/history");
    assert_eq!(history.status, 200);
    assert_eq!(history.header("content-type"), Some("application/json"));
    let events = history.json();
    let messages: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(message)
        .collect();
    let mut expected = seen_by_alice.clone();
    expected.push(posted);
    assert!(messages.ends_with(&expected[expected.len() - 50..]));
    assert_eq!(messages.last(), expected.last());

    // A message that breaks the rules gets an error, to its sender only.
    odd.ws.send(Message::text("not json")).unwrap();
    let error = odd.wait_for("error", |_| true);
    assert!(
        error["text"].as_str().unwrap().contains("bad JSON"),
        "{error}"
    );
    odd.say(&"x".repeat(1001));
    let error = odd.wait_for("error", |_| true);
    assert!(
        error["text"].as_str().unwrap().contains("too long"),
        "{error}"
    );

    // Leaving is announced.
    alice2.ws.close(None).unwrap();
    alice2.until_close();
    let leave = alice.wait_for("leave", |_| true);
    assert_eq!(
        (&leave["name"], &leave["reason"]),
        (&json!("alice-2"), &json!("left"))
    );
    server.stop();
}

#[test]
fn the_page_and_static_files_load_with_their_content_types() {
    let server = Server::start("webchat", &[]);
    let page = get(&server, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains(r#"src="/static/chat.js""#), "{html}");
    assert!(html.contains(r#"href="/static/chat.css""#), "{html}");
    for (path, content_type, needle) in [
        (
            "/static/chat.js",
            "text/javascript; charset=utf-8",
            "new WebSocket(",
        ),
        ("/static/chat.css", "text/css; charset=utf-8", "#messages"),
        ("/static/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let reply = get(&server, path);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert!(
            String::from_utf8(reply.body).unwrap().contains(needle),
            "{path}"
        );
    }
    assert_eq!(get(&server, "/static/nope.js").status, 404);
    let post = http(
        &server,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // Keep-alive and pipelining: two requests in one write, two answers.
    let mut s = server.connect();
    s.write_all(
        b"GET /static/chat.css HTTP/1.1\r\nHost: x\r\n\r\nGET /api/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let (first, used) = parse_reply(&raw);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(first.header("connection"), None);
    let (second, used_too) = parse_reply(&raw[used..]);
    assert_eq!(second.status, 200);
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(second.header("connection"), Some("close"));
    assert_eq!(used + used_too, raw.len());
    server.stop();
}

#[test]
fn bad_upgrades_oversized_and_malformed_posts_are_refused() {
    let server = Server::start("webchat", &[]);
    // Not an upgrade at all, a wrong version, a malformed key.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    for headers in [
        String::new(),
        format!("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: {key}\r\n"),
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n".to_string(),
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n".to_string(),
    ] {
        let reply = http(&server, &format!("GET /ws HTTP/1.1\r\nHost: x\r\n{headers}\r\n"));
        assert_eq!(reply.status, 400, "{headers}");
        assert!(reply.json()["error"].as_str().unwrap().contains("handshake"));
    }
    // The same with a good key upgrades (the handshake the check accepts).
    let reply = {
        let mut s = server.connect();
        s.write_all(format!("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n").as_bytes()).unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(reply.starts_with("HTTP/1.1 101"), "{reply}");
    // RFC 6455's example key and its answer.
    assert!(reply.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{reply}");

    // Over the body limit: 413 before the body is sent.
    let mut s = server.connect();
    s.write_all(
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert_eq!(parse_reply(&raw).0.status, 413);

    // Bad JSON, a JSON without text, an empty text: 400; not JSON: 415.
    for body in [
        "{\"text\": ",
        "{\"name\": \"x\"}",
        "{\"text\": \" \"}",
        "[1]",
    ] {
        assert_eq!(post_json(&server, body).status, 400, "{body}");
    }
    let form = http(
        &server,
        "POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    );
    assert_eq!(form.status, 415);
    // None of that reached the room (only the upgraded client's join and
    // leave are in the history).
    let history = get(&server, "/api/history").json();
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(!types.contains(&"message"), "{history}");
    server.stop();
}

#[test]
fn pings_binary_frames_and_closes_are_answered() {
    let server = Server::start("webchat", &[]);
    let mut c = Client::join(&server, "pinger");
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    loop {
        match c.ws.read().unwrap() {
            Message::Pong(data) => {
                assert_eq!(&data[..], b"are you there");
                break;
            }
            Message::Text(_) => continue, // its own join
            other => panic!("expected the pong, got {other:?}"),
        }
    }
    // The client closes: the server echoes the close and ends the connection.
    c.ws.close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    let echo = c.until_close().expect("a close code");
    assert_eq!(echo.code, CloseCode::Normal);
    assert!(matches!(
        c.ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));

    // Binary frames are refused with 1003.
    let mut b = Client::join(&server, "binary");
    b.ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    let close = b.until_close().expect("a close code");
    assert_eq!(close.code, CloseCode::Unsupported);
    server.stop();
}

#[test]
fn a_member_that_never_reads_is_dropped_without_stalling_the_room() {
    let server = Server::start("webchat", &[]);
    let mut alice = Client::join(&server, "alice");
    // Never reads after the handshake.
    let slow = Client::join(&server, "slow");
    alice.wait_for("join", |e| e["name"] == "slow");
    // Alice sends in windows of 64 messages (a quarter of the server's
    // queue) and reads each window back before the next, so she keeps up
    // whatever the scheduling. Once slow's socket buffers and queue are
    // full the room drops it; bounded in messages and in time.
    const WINDOW: usize = 64;
    const MAX_MESSAGES: usize = 40_000;
    let deadline = Instant::now() + 6 * PATIENCE;
    let payload = "x".repeat(990);
    let mut dropped = false;
    let mut next = 0;
    while !dropped {
        assert!(
            next < MAX_MESSAGES && Instant::now() < deadline,
            "slow was not dropped after {next} messages"
        );
        for i in next..next + WINDOW {
            alice.say(&format!("{i} {payload}"));
        }
        let mut got = next;
        while got < next + WINDOW {
            let event = alice.next_event();
            match event["type"].as_str() {
                Some("message") => {
                    let text = event["text"].as_str().unwrap();
                    assert!(text.starts_with(&format!("{got} ")), "{:.20}", text);
                    got += 1;
                }
                Some("leave") => {
                    assert_eq!(event["name"], "slow");
                    assert_eq!(event["reason"], "too slow");
                    dropped = true;
                }
                _ => panic!("unexpected {event}"),
            }
        }
        next += WINDOW;
    }
    // The room still works for alice.
    alice.say("still here");
    assert_eq!(alice.wait_for("message", |_| true)["text"], "still here");
    // Slow's connection was cut: reading what is buffered reaches its end.
    let mut stream = slow.ws.into_inner();
    let mut sink = [0u8; 65536];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("slow's connection was not closed: {e}"),
        }
    }
    let stderr = server.stop();
    assert!(stderr.contains("\"slow\" could not keep up"), "{stderr}");
}

#[test]
fn pings_keep_a_member_that_only_listens_in_a_busy_room() {
    // Pinged every half second; a member that answers nothing for a second
    // is dropped.
    let server = Server::start("webchat", &["--idle-timeout", "1s"]);
    let mut listener = Client::join(&server, "listener");
    // Messages flow all the time (each posted once the previous arrived),
    // for well over the idle timeout: the pings must still come.
    let started = Instant::now();
    let mut posted = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let text = format!("busy {posted}");
        let reply = post_json(&server, &json!({"name": "api", "text": text}).to_string());
        assert_eq!(reply.status, 200);
        assert_eq!(
            listener.wait_for("message", |_| true)["text"],
            text.as_str()
        );
        posted += 1;
    }
    assert!(listener.pings >= 3, "{} pings in 2.5 s", listener.pings);
    let stderr = server.stop();
    assert!(!stderr.contains("listener"), "{stderr}");
}

#[test]
fn ctrl_c_closes_every_websocket_and_exits_within_the_grace_period() {
    let server = Server::start("webchat", &["--grace", "3s"]);
    let mut alice = Client::join(&server, "alice");
    let mut bob = Client::join(&server, "bob");
    alice.wait_for("join", |e| e["name"] == "bob");
    // An idle keep-alive HTTP connection too.
    let mut idle = server.connect();
    idle.write_all(b"GET /api/history HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(idle.read(&mut buf).unwrap() > 0);

    let started = Instant::now();
    server.interrupt();
    for c in [&mut alice, &mut bob] {
        let close = c.until_close().expect("a close code");
        assert_eq!(close.code, CloseCode::Away);
    }
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
    let (status, stderr) = server.wait_exit(PATIENCE);
    assert!(status.success(), "{status}: {stderr}");
    // Nothing needed the grace period: every connection closed at once.
    assert!(started.elapsed() < Duration::from_secs(3), "{stderr}");
    assert!(!stderr.contains("grace period over"), "{stderr}");
}

/// Debian's chromium, where it is installed (CI does not install it).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Starts headless chromium on `url`, to print the page's DOM once its
/// virtual time is spent (with a profile of its own).
fn chromium_dump(url: &str) -> (std::process::Child, std::path::PathBuf) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile =
        std::env::temp_dir().join(format!("webchat-chromium-{}-{run}", std::process::id()));
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, profile)
}

/// Waits (bounded by `patience`) for a [`chromium_dump`] and returns the DOM
/// it printed; removes its profile.
fn finish_dump(
    (child, profile): &mut (std::process::Child, std::path::PathBuf),
    patience: Duration,
) -> String {
    let deadline = Instant::now() + patience;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut dom = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut dom)
        .unwrap();
    let _ = std::fs::remove_dir_all(profile);
    dom
}

#[test]
fn headless_chromium_shows_the_history_and_sends_from_the_page() {
    if !Path::new(CHROMIUM).exists() {
        // Straight to stderr: libtest would hide an eprintln! of a passing test.
        let note = format!("note: {CHROMIUM} is not installed; skipping the browser check\n");
        let _ = std::io::stderr().write_all(note.as_bytes());
        return;
    }
    let server = Server::start("webchat", &[]);
    let reply = post_json(
        &server,
        r#"{"name": "api", "text": "posted before the page"}"#,
    );
    assert_eq!(reply.status, 200);
    let mut watcher = Client::join(&server, "watcher");
    // Chromium takes a few seconds to start, more on a busy machine.
    let browser_patience = Duration::from_secs(60);
    watcher
        .ws
        .get_ref()
        .set_read_timeout(Some(browser_patience))
        .unwrap();

    let url = format!(
        "http://{}/?name=browser&say=hello%20from%20the%20page",
        server.addr
    );
    let mut child = chromium_dump(&url);
    // The page sends its message once it has joined: the room sees it.
    let said = watcher.wait_for("message", |e| e["name"] == "browser");
    assert_eq!(said["text"], "hello from the page");
    let dom = finish_dump(&mut child, browser_patience);
    // The history loaded and the page joined.
    assert!(dom.contains("posted before the page"), "{dom}");
    assert!(dom.contains("You are browser."), "{dom}");
    // Its own message, as a page shows it: the echo may come after
    // chromium's virtual-time dump, so a second page, loaded once the room
    // has it, shows it from the history (one load showing it live was
    // flaky: 1 run in ~10 dumped before the echo).
    let mut again = chromium_dump(&format!("http://{}/?name=reader", server.addr));
    let dom = finish_dump(&mut again, browser_patience);
    assert!(dom.contains("hello from the page"), "{dom}");
    server.stop();
}
