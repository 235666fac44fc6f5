//! `GET /ws`: the WebSocket handshake and a member's session.
//!
//! **Contract.** [`handshake`] checks an upgrade request that httparse has
//! already read (tungstenite's own checks, plus a well-formed key) and
//! returns the `101` response, or why the request is bad (the caller answers
//! 400). [`session`] then runs the member until it leaves, is dropped as too
//! slow, or the server drains; it sends a close frame whenever the
//! connection is still usable, and answers the client's pings and close.
//!
//! **A reader and a writer on one socket.** tungstenite's `WebSocket` is one
//! object, but a member must wait for the client's next frame and push the
//! room's events out at the same time. sylvan lets one fiber read a socket
//! while another writes it, so a session uses two `WebSocket`s over the one
//! connection, both in the server role:
//!
//! - the *reader*, owned by the session's fiber, reads frames (it is built
//!   with `from_partially_read`, so bytes that came in with the upgrade
//!   request are not lost). Its own replies (a pong for each ping, the echo
//!   of a close) go to a sink and are dropped: what tungstenite would write
//!   from inside `read` could interleave with a frame the writer is in the
//!   middle of;
//! - the *writer* only writes. It sits behind a sylvan mutex shared by the
//!   writer fiber, which sends the room's events from the member's queue,
//!   and the reader's fiber, which sends the pong for each ping and the
//!   reply to a close (and the close when the session ends for another
//!   reason). A frame is written whole under the lock, so frames never
//!   interleave, and once the writer has sent a close, tungstenite refuses
//!   to send anything after it.
//!
//! The other way, one fiber polling reads with a short timeout and writing
//! in between, would add latency in both directions and wake every idle
//! member for nothing.
//!
//! The writer also sends a ping every [`Settings::ping_every`], between
//! events; the browser's pong is traffic, so a live member that only
//! listens never hits the read timeout (`--idle-timeout`), while a vanished
//! one does.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sylvan::sync::channel::{self, RecvTimeoutError};
use sylvan::sync::Mutex;
use tungstenite::handshake::server::{create_response, Response};
use tungstenite::http;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes, WebSocket};

use crate::common::{self, Conn};
use crate::room::{self, Room, QUEUE};

/// The largest message a client may send, in bytes (a JSON object around a
/// message of [`room::MAX_TEXT`] characters fits).
pub const MAX_FRAME: usize = 16 * 1024;

/// What a session needs from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Time between pings.
    pub ping_every: Duration,
}

/// Checks the upgrade request `req` and makes the `101 Switching Protocols`
/// response, or says what is wrong with the request.
pub fn handshake(req: &httparse::Request) -> Result<Response, String> {
    let version = match req.version {
        Some(1) => http::Version::HTTP_11,
        _ => http::Version::HTTP_10,
    };
    let mut request = http::Request::builder()
        .method(req.method.unwrap_or(""))
        .uri(req.path.unwrap_or("/"))
        .version(version);
    for h in req.headers.iter() {
        request = request.header(h.name, h.value);
    }
    let request = request.body(()).map_err(|e| e.to_string())?;
    // RFC 6455 section 4.2.1: the key is 16 bytes, base64-encoded
    // (tungstenite only checks that it is there).
    let key = request
        .headers()
        .get("Sec-WebSocket-Key")
        .map(|k| k.as_bytes());
    let well_formed = |k: &[u8]| {
        k.len() == 24
            && k.ends_with(b"==")
            && k[..22]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if key.is_some_and(|k| !well_formed(k)) {
        return Err("Sec-WebSocket-Key is not 16 bytes in base64".to_string());
    }
    create_response(&request).map_err(|e| e.to_string())
}

/// The reader's stream: reads the connection (as an idle read: a drain ends
/// it), and drops whatever tungstenite writes from inside `read`.
struct Inbound<'a>(&'a Conn);

impl Read for Inbound<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_idle(buf)
    }
}

impl Write for Inbound<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer's stream: writes the connection, and is never read.
struct Outbound(Arc<Conn>);

impl Read for Outbound {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the writer half does not read",
        ))
    }
}

impl Write for Outbound {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer half, shared by the writer fiber and the reader's fiber.
type Writer = Arc<Mutex<WebSocket<Outbound>>>;

/// Sends a close frame (if none was sent yet) and ends the writer half:
/// anything sent after it is refused.
fn close(writer: &Writer, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = writer.lock().close(Some(frame));
}

/// Sends the close frame that fits the reader's failure `e`, if the client
/// is still there to read it.
fn close_after_error(writer: &Writer, conn: &Conn, e: tungstenite::Error) {
    use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
    use tungstenite::Error;
    if conn.draining() {
        return close(writer, CloseCode::Away, "server shutting down");
    }
    match e {
        Error::Capacity(_) => close(writer, CloseCode::Size, "message too big"),
        Error::Utf8(_) => close(writer, CloseCode::Invalid, "text is not UTF-8"),
        // The client vanished without a close: nobody to tell.
        Error::Protocol(ResetWithoutClosingHandshake) => {}
        Error::Protocol(p) => {
            common::log(format_args!("{}: {p}", conn.peer));
            close(writer, CloseCode::Protocol, "protocol error");
        }
        // Gone, timed out (no pong within --idle-timeout), or cut off as
        // too slow.
        _ => {}
    }
}

/// Runs a member of `room` on `conn`, whose upgrade to a WebSocket has been
/// answered; `early` holds the bytes that arrived after the upgrade request,
/// `wanted` the nickname it asked for.
pub fn session(conn: Arc<Conn>, early: Vec<u8>, wanted: &str, room: &Room, settings: Settings) {
    // The writer writes each frame at once (`send` flushes); its read
    // buffer is never used, so keep it small.
    let writer_config = WebSocketConfig::default()
        .read_buffer_size(64)
        .write_buffer_size(0);
    let writer: Writer = Arc::new(Mutex::new(WebSocket::from_raw_socket(
        Outbound(conn.clone()),
        Role::Server,
        Some(writer_config),
    )));
    let reader_config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_frame_size(Some(MAX_FRAME))
        .max_message_size(Some(MAX_FRAME));
    let mut reader =
        WebSocket::from_partially_read(Inbound(&conn), early, Role::Server, Some(reader_config));

    let (tx, rx) = channel::bounded::<Utf8Bytes>(QUEUE);
    // Our own sender, for answers to this member alone (errors).
    let own = tx.clone();
    let id = room.join(wanted, tx, conn.clone());
    let writer_fiber = {
        let writer = writer.clone();
        sylvan::spawn(move || {
            // Pings go out on a fixed schedule, busy room or not: a member
            // that only listens answers nothing else.
            let mut next_ping = Instant::now() + settings.ping_every;
            loop {
                let left = next_ping.saturating_duration_since(Instant::now());
                let message = if left.is_zero() {
                    next_ping = Instant::now() + settings.ping_every;
                    Message::Ping(Default::default())
                } else {
                    match rx.recv_timeout(left) {
                        Ok(event) => Message::Text(event),
                        Err(RecvTimeoutError::Timeout) => continue,
                        // Out of the room, and everything queued is sent.
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                };
                // Fails once a close was sent, or the client is gone.
                if writer.lock().send(message).is_err() {
                    break;
                }
            }
        })
    };

    loop {
        let message = match reader.read() {
            Ok(message) => message,
            Err(e) => {
                close_after_error(&writer, &conn, e);
                break;
            }
        };
        match message {
            Message::Text(text) => {
                if let Err(why) = command(room, id, text.as_str()) {
                    let error = json!({"type": "error", "text": why});
                    let _ = own.try_send(Utf8Bytes::from(error.to_string()));
                }
            }
            Message::Binary(_) => {
                close(&writer, CloseCode::Unsupported, "text frames only");
                break;
            }
            Message::Ping(data) => {
                let _ = writer.lock().send(Message::Pong(data));
            }
            Message::Close(frame) => {
                // Echo the client's close (tungstenite has already turned a
                // code that is not allowed on the wire into 1002).
                let _ = writer.lock().close(frame);
                break;
            }
            Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    room.leave(id);
    drop(own);
    // The writer ends once the queue is drained and the room's sender is
    // gone, or at once if it sent a close. (A too slow client's socket was
    // shut down, so its writes fail.)
    let _ = writer_fiber.join();
    // The server closes the TCP connection first (RFC 6455 section 7.1.1).
    let _ = conn.shutdown(Shutdown::Write);
}

/// Carries out one message from a member: `{"type": "say", "text": ...}`
/// or `{"type": "rename", "name": ...}`; the error says what was wrong.
fn command(room: &Room, id: u64, text: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .ok_or(format!("no string field {name:?}"))
    };
    match field("type")? {
        "say" => {
            let text = room::clean_text(field("text")?)?;
            // None: the member was dropped an instant ago.
            room.member_says(id, &text);
            Ok(())
        }
        "rename" => {
            room.rename(id, field("name")?);
            Ok(())
        }
        other => Err(format!("unknown type {other:?}")),
    }
}
