//! A web chat in one process: static files, an HTTP API and WebSockets
//! served together (the classic gevent-websocket + Flask setup), as blocking
//! code with a fiber per connection. HTTP/1.1 is parsed with httparse, the
//! WebSocket protocol is tungstenite's, both over `sylvan::net`.
//!
//! ```text
//! cargo run --release --example webchat -- [ADDR] [--idle-timeout DURATION] ...
//! ```
//!
//! then open <http://127.0.0.1:8000/> in two browser windows. From a shell:
//!
//! ```text
//! curl -H 'Content-Type: application/json' -d '{"name":"curl","text":"hello"}' http://127.0.0.1:8000/api/messages
//! curl http://127.0.0.1:8000/api/history
//! ```
//!
//! What it serves (keep-alive HTTP/1.1; anything else is 404, or 405 for a
//! known path with the wrong method):
//!
//! - `GET /`: the chat page (embedded, as are the files below). It loads
//!   the history, then joins the room over `/ws` with the nickname in its
//!   field; `/?name=NICK` fills the field, `/?say=TEXT` also sends TEXT once
//!   joined (handy for a headless browser).
//! - `GET /static/chat.js`, `/static/chat.css`, `/static/favicon.svg`.
//! - `GET /api/history`: the last [`room::HISTORY`] events, oldest first, as
//!   a JSON array.
//! - `POST /api/messages` with `Content-Type: application/json` and a body
//!   `{"name": "...", "text": "..."}` (`name` optional): posts to the room,
//!   answers `{"seq": N}`. A body over [`MAX_BODY`] bytes gets 413 (before
//!   it is read), bad JSON or a bad message 400, another content type 415
//!   (so a page on another site cannot post with a plain form), a body
//!   without `Content-Length` 411.
//! - `GET /ws?name=NICK`: the WebSocket (a bad handshake gets 400). The
//!   client sends `{"type": "say", "text": "..."}` and `{"type": "rename",
//!   "name": "..."}` as text frames; the server sends one JSON object per
//!   event: `welcome` (to the new member only: its name and who is here),
//!   then `message`, `join`, `leave` (with a `reason`: `left` or `too
//!   slow`) and `rename`, each with a `seq` and a `time` (Unix ms), and
//!   `error` (to one member, about its last message).
//!
//! The room ([`room`]) sends every event to every member in one order; a
//! member too slow to take its events is disconnected rather than allowed
//! to stall the room. Names are sanitised and made unique, messages are one
//! line of at most [`room::MAX_TEXT`] characters, binary frames are refused
//! (close 1003). How a session reads and writes its socket at once is in
//! [`ws`].
//!
//! Limits: request heads over [`MAX_HEAD`] bytes get 431; an HTTP client
//! that sends no whole request within `--idle-timeout` (60 s by default) is
//! dropped; a WebSocket client is pinged after half of it without traffic
//! and dropped if it does not answer. On Ctrl-C, WebSocket clients get a
//! close frame (1001, going away) and idle HTTP connections close; requests
//! in progress get `--grace` to finish.

#[path = "../common/mod.rs"]
mod common;
mod room;
mod ws;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::Conn;
use room::Room;
use serde_json::{json, Value};

/// A browser chat room: static files, a JSON API and WebSockets in one process.
#[derive(Parser, Debug)]
#[command(name = "webchat")]
struct Args {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1:8000")]
    addr: String,
    #[command(flatten)]
    server: common::ServerArgs,
}

/// The largest `POST /api/messages` body accepted, in bytes.
const MAX_BODY: usize = 8 * 1024;
/// The largest request head accepted, in bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 48;
/// After an error answer, how long unread input is drained before closing
/// (see [`close_gracefully`]).
const LINGER: Duration = Duration::from_secs(2);

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Everything `GET` serves from memory.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("static/index.html"),
    },
    Asset {
        path: "/static/chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("static/chat.js"),
    },
    Asset {
        path: "/static/chat.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("static/chat.css"),
    },
    Asset {
        path: "/static/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("static/favicon.svg"),
    },
];

/// What every connection shares.
struct App {
    room: Room,
    /// `--idle-timeout`: how long an HTTP request may take to arrive, and
    /// a WebSocket client to say anything (a pong will do).
    idle_timeout: Duration,
    ws: ws::Settings,
}

/// An HTTP response about to be written.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// Further header lines, each without its CRLF.
    headers: Vec<String>,
}

impl Response {
    /// A response with no further headers.
    fn new(status: u16, reason: &'static str, content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            reason,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// A JSON response.
    fn json(status: u16, reason: &'static str, value: &Value) -> Self {
        Response::new(status, reason, "application/json", value.to_string().into())
    }

    /// A JSON error, `{"error": why}`.
    fn error(status: u16, reason: &'static str, why: impl std::fmt::Display) -> Self {
        Response::json(status, reason, &json!({ "error": why.to_string() }))
    }

    /// Appends the response to `out`, with `Connection: close` unless
    /// `keep_alive`, without the body if `head_only`.
    fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nServer: sylvan-webchat\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        for h in &self.headers {
            let _ = write!(out, "{h}\r\n");
        }
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// What to do with the input so far.
enum Step {
    /// Not all of the request is here yet.
    NeedMore,
    /// Answer, having consumed `used` bytes; close afterwards unless
    /// `keep_alive`.
    Answer {
        used: usize,
        response: Response,
        keep_alive: bool,
        head_only: bool,
    },
    /// Switch to the WebSocket protocol: write `response` (the 101), then
    /// the bytes after `used` are the client's first frames.
    Upgrade {
        used: usize,
        response: Vec<u8>,
        name: String,
    },
}

/// Parses the request at the start of `input` and decides the answer.
/// `draining`: the server is shutting down, so the connection closes after
/// this answer and no WebSocket is opened.
fn step(input: &[u8], app: &App, draining: bool) -> Step {
    let fail = |response| Step::Answer {
        used: input.len(),
        response,
        keep_alive: false,
        head_only: false,
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let window = &input[..input.len().min(MAX_HEAD)];
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() == MAX_HEAD => {
            return fail(Response::error(
                431,
                "Request Header Fields Too Large",
                "head too large",
            ))
        }
        Ok(httparse::Status::Partial) => return Step::NeedMore,
        Err(httparse::Error::TooManyHeaders) => {
            return fail(Response::error(
                431,
                "Request Header Fields Too Large",
                "too many header fields",
            ))
        }
        Err(e) => return fail(Response::error(400, "Bad Request", e)),
    };
    let header = |name: &'static str| {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    // The body's framing (RFC 9112 section 6): only Content-Length, once,
    // just digits.
    if header("transfer-encoding").next().is_some() {
        return fail(Response::error(
            411,
            "Length Required",
            "send a Content-Length, not a Transfer-Encoding",
        ));
    }
    let mut lengths = header("content-length");
    let body_len = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(v), None) if !v.is_empty() && v.iter().all(u8::is_ascii_digit) => {
            // Only digits: the parse fails only on overflow, too large anyway.
            match std::str::from_utf8(v).map(str::parse::<usize>) {
                Ok(Ok(n)) if n <= MAX_BODY => Some(n),
                _ => {
                    return fail(Response::error(
                        413,
                        "Payload Too Large",
                        format_args!("the body is over {MAX_BODY} bytes"),
                    ))
                }
            }
        }
        _ => return fail(Response::error(400, "Bad Request", "bad Content-Length")),
    };
    let used = head_len + body_len.unwrap_or(0);
    if input.len() < used {
        return Step::NeedMore;
    }
    let body = &input[head_len..used];
    let connection = header("connection").next().map(|v| v.to_ascii_lowercase());
    let has = |token: &[u8]| {
        connection
            .as_deref()
            .is_some_and(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii() == token))
    };
    let keep_alive = !draining && !has(b"close") && (req.version == Some(1) || has(b"keep-alive"));
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let answer = |response| Step::Answer {
        used,
        response,
        keep_alive,
        head_only: method == "HEAD",
    };
    let not_allowed = |allow: &str| {
        let mut r = Response::error(405, "Method Not Allowed", format_args!("use {allow}"));
        r.headers.push(format!("Allow: {allow}"));
        answer(r)
    };

    if let Some(asset) = ASSETS.iter().find(|a| a.path == path) {
        return match method {
            "GET" | "HEAD" => answer(Response::new(
                200,
                "OK",
                asset.content_type,
                asset.body.into(),
            )),
            _ => not_allowed("GET, HEAD"),
        };
    }
    match path {
        "/api/history" => match method {
            "GET" | "HEAD" => {
                let history = app.room.history_json().into_bytes();
                answer(Response::new(200, "OK", "application/json", history))
            }
            _ => not_allowed("GET, HEAD"),
        },
        "/api/messages" => match method {
            "POST" if body_len.is_none() => fail(Response::error(
                411,
                "Length Required",
                "send a Content-Length",
            )),
            "POST" => {
                let json_type = header("content-type").next().is_some_and(|v| {
                    let essence = v.split(|&b| b == b';').next().unwrap_or(b"");
                    essence
                        .trim_ascii()
                        .eq_ignore_ascii_case(b"application/json")
                });
                if !json_type {
                    return answer(Response::error(
                        415,
                        "Unsupported Media Type",
                        "send application/json",
                    ));
                }
                answer(post_message(&app.room, body))
            }
            _ => not_allowed("POST"),
        },
        "/ws" => match method {
            _ if draining => fail(Response::error(503, "Service Unavailable", "shutting down")),
            "GET" => match ws::handshake(&req) {
                Ok(response) => {
                    let mut head = Vec::new();
                    // Only fails on header values that are not text, and
                    // tungstenite made them all.
                    let _ = tungstenite::handshake::server::write_response(&mut head, &response);
                    let name = url::form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == "name")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    Step::Upgrade {
                        used,
                        response: head,
                        name,
                    }
                }
                Err(why) => fail(Response::error(
                    400,
                    "Bad Request",
                    format_args!("bad WebSocket handshake: {why}"),
                )),
            },
            _ => not_allowed("GET"),
        },
        _ => answer(Response::error(
            404,
            "Not Found",
            format_args!("nothing at {path}"),
        )),
    }
}

/// `POST /api/messages`: `{"name": "...", "text": "..."}`.
fn post_message(room: &Room, body: &[u8]) -> Response {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return Response::error(400, "Bad Request", format_args!("bad JSON: {e}")),
    };
    let Some(text) = value.get("text").and_then(Value::as_str) else {
        return Response::error(400, "Bad Request", "no string field \"text\"");
    };
    let text = match room::clean_text(text) {
        Ok(text) => text,
        Err(why) => return Response::error(400, "Bad Request", why),
    };
    let name = room::sanitize_name(value.get("name").and_then(Value::as_str).unwrap_or("api"));
    let seq = room.say(&name, &text);
    Response::json(200, "OK", &json!({ "seq": seq }))
}

/// Serves one connection: HTTP requests until it closes, or a WebSocket
/// session once it upgrades.
fn serve(conn: Conn, app: &App) -> io::Result<()> {
    let conn = Arc::new(conn);
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    // When the request being waited for must be here in full. Renewed only
    // when a response goes out, so a request trickling in cannot extend it.
    let mut deadline = Instant::now() + app.idle_timeout;
    loop {
        // Answer every complete request that arrived (pipelining), in order.
        let mut start = 0;
        let mut close = false;
        while start < input.len() {
            match step(&input[start..], app, conn.draining()) {
                Step::NeedMore => break,
                Step::Answer {
                    used,
                    response,
                    keep_alive,
                    head_only,
                } => {
                    response.write_to(&mut out, keep_alive, head_only);
                    start += used;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Step::Upgrade {
                    used,
                    response,
                    name,
                } => {
                    out.extend_from_slice(&response);
                    (&*conn).write_all(&out)?;
                    let early = input[start + used..].to_vec();
                    // The session's reads wait for the client for
                    // --idle-timeout at a time; the pings keep it talking.
                    conn.set_read_timeout(Some(app.idle_timeout))?;
                    ws::session(conn.clone(), early, &name, &app.room, app.ws);
                    return Ok(());
                }
            }
        }
        input.drain(..start);
        if !out.is_empty() {
            (&*conn).write_all(&out)?;
            out.clear();
            deadline = Instant::now() + app.idle_timeout;
        }
        if close {
            close_gracefully(&conn);
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        conn.set_read_timeout(Some(left))?;
        // Between requests the read is idle: a drain ends it.
        let read = if input.is_empty() {
            conn.read_idle(&mut buf)
        } else {
            (&*conn).read(&mut buf)
        };
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if !input.is_empty() {
                    let mut out = Vec::new();
                    Response::error(408, "Request Timeout", "the request took too long")
                        .write_to(&mut out, false, false);
                    (&*conn).write_all(&out)?;
                    close_gracefully(&conn);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&buf[..n]);
    }
}

/// Closes after an answer the client may not have read yet: ends our side,
/// then reads and discards what the client still sends for at most
/// [`LINGER`] (closing with unread input would send a reset, which can
/// destroy the answer before the client reads it).
fn close_gracefully(conn: &Conn) {
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_timeout(Some(LINGER));
    let _ = sylvan::timeout(LINGER, || {
        let mut buf = [0u8; 8192];
        while let Ok(1..) = conn.read_idle(&mut buf) {}
    });
}

fn main() {
    let args: Args = common::parse_args(
        "60s",
        "Drop an HTTP client that sends no whole request, or a WebSocket client that answers no ping, within this long (e.g. 2m, 30s)",
    );
    let idle_timeout = args.server.idle_timeout;
    let app = App {
        room: Room::default(),
        idle_timeout,
        ws: ws::Settings {
            ping_every: idle_timeout / 2,
        },
    };
    common::serve("webchat", &args.addr, &args.server, move |conn| {
        let peer = conn.peer;
        if let Err(e) = serve(conn, &app) {
            // Resets and timeouts are clients going away: not news.
            if !matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::UnexpectedEof
            ) {
                common::log(format_args!("{peer}: {e}"));
            }
        }
    });
}
