//! "Hello, World!" over HTTP/1.1 with keep-alive, as blocking code: a fiber
//! per connection parses requests with httparse and answers each. Pipelined
//! requests are answered in order, in one write per batch.
//!
//! ```text
//! cargo run --release --example http_hello -- [ADDR] [--max-body BYTES] [--idle-timeout DURATION] ...
//! curl http://127.0.0.1:8080/
//! ```
//!
//! With `--tls-cert FILE --tls-key FILE` (PEM: the certificate chain, then
//! its private key) it serves HTTPS instead: each connection's fiber does
//! the TLS handshake (within `--idle-timeout`) and then serves exactly as
//! over plain TCP.
//!
//! ```text
//! cargo run --release --example http_hello -- --tls-cert cert.pem --tls-key key.pem
//! curl --cacert ca.pem https://localhost:8080/
//! ```
//!
//! It is also a small lesson in not trusting the client (RFC 9112 is the
//! reference). A request is answered with an error, and the connection
//! closed, when:
//!
//! - its head (request line and headers) is over [`MAX_HEAD`] bytes or has
//!   over [`MAX_HEADERS`] fields, however it arrives: 431;
//! - its body's framing is ambiguous: a `Content-Length` that is not just
//!   digits (`+5`, `5 5`, `0x5`), more than one `Content-Length` field (even
//!   with equal values: no client sends that, and it is how smuggling attempts
//!   look), or `Transfer-Encoding` together with `Content-Length`: 400;
//! - its body is chunked (not implemented here): 501; any other transfer
//!   coding cannot be framed at all: 400;
//! - its body is over `--max-body` (1 MiB by default): 413, before any of the
//!   body is read;
//! - it does not arrive in full within `--idle-timeout` (10 s by default) of
//!   the connection becoming idle (accepted, or its previous response sent),
//!   however slowly it trickles in: 408 if part of it came, otherwise the
//!   connection is just closed.
//!
//! On Ctrl-C idle keep-alive connections close at once, requests in
//! progress are answered (with `Connection: close`) within `--grace`.

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use common::Conn;
use sylvan::net::tls::{TlsAcceptor, TlsStream};

/// Serve "Hello, World!" over HTTP/1.1 (keep-alive, pipelining).
#[derive(Parser, Debug)]
#[command(name = "http_hello")]
struct Args {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1:8080")]
    addr: String,
    /// Largest request body accepted, in bytes; bigger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_body: usize,
    /// Serve HTTPS with this certificate chain (PEM, the server's
    /// certificate first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert; needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    server: common::ServerArgs,
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BODY_TOO_LARGE: &[u8] =
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const HEAD_TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const NOT_IMPLEMENTED: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Largest request head accepted, in bytes, request line and final empty
/// line included.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 32;
/// After an error answer, how long unread input is drained before closing
/// (see [`close`]).
const LINGER: Duration = Duration::from_secs(2);

/// What to do after one parsed request.
enum Next {
    /// Answered; `used` bytes of input consumed; keep the connection.
    KeepAlive(usize),
    /// Answered; close after writing.
    Close,
    /// Not all of the request is here yet.
    NeedMore,
}

/// Parses one request at the start of `input` and appends its response.
/// `keep_alive` false answers even a keep-alive request with `Connection:
/// close` (the server is shutting down).
fn handle(input: &[u8], max_body: usize, keep_alive: bool, out: &mut Vec<u8>) -> Next {
    let reject = |out: &mut Vec<u8>, response: &[u8]| {
        out.extend_from_slice(response);
        Next::Close
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    // Never look past MAX_HEAD: a head that has not ended by then is too
    // large, whether it came in one read or a byte at a time.
    let window = &input[..input.len().min(MAX_HEAD)];
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() == MAX_HEAD => {
            return reject(out, HEAD_TOO_LARGE)
        }
        Ok(httparse::Status::Partial) => return Next::NeedMore,
        Err(httparse::Error::TooManyHeaders) => return reject(out, HEAD_TOO_LARGE),
        Err(_) => return reject(out, BAD_REQUEST),
    };
    // A body (unusual for GET, but legal) must be skipped, not parsed as the
    // next request.
    let body_len = match body_length(req.headers, max_body) {
        Ok(n) => n,
        Err(response) => return reject(out, response),
    };
    // Cannot overflow (body_len <= max_body), but the peer chose body_len.
    let Some(request_len) = head_len.checked_add(body_len) else {
        return reject(out, BODY_TOO_LARGE);
    };
    if input.len() < request_len {
        return Next::NeedMore;
    }
    let connection = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("connection"))
        .map(|h| h.value.to_ascii_lowercase());
    let wants_keep_alive = match connection.as_deref() {
        Some(v) if v.windows(5).any(|w| w == b"close") => false,
        Some(v) if v.windows(10).any(|w| w == b"keep-alive") => true,
        _ => req.version == Some(1),
    };
    if wants_keep_alive && keep_alive {
        out.extend_from_slice(HELLO);
        Next::KeepAlive(request_len)
    } else {
        out.extend_from_slice(HELLO_CLOSE);
        Next::Close
    }
}

/// The length of the request's body from its framing headers (RFC 9112
/// section 6), or the error response.
fn body_length(headers: &[httparse::Header], max_body: usize) -> Result<usize, &'static [u8]> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let mut lengths = named("content-length");
    let codings: Vec<&[u8]> = named("transfer-encoding").collect();
    match (lengths.next(), lengths.next()) {
        (Some(_), _) if !codings.is_empty() => Err(BAD_REQUEST),
        (Some(_), Some(_)) => Err(BAD_REQUEST),
        (Some(length), None) => {
            // Content-Length = 1*DIGIT. (httparse has already stripped the
            // spaces and tabs around a field value, which RFC 9110 allows.)
            if length.is_empty() || !length.iter().all(u8::is_ascii_digit) {
                return Err(BAD_REQUEST);
            }
            // Only digits, so the parse can fail only by overflowing usize:
            // too large either way.
            match std::str::from_utf8(length).map(str::parse::<usize>) {
                Ok(Ok(n)) if n <= max_body => Ok(n),
                _ => Err(BODY_TOO_LARGE),
            }
        }
        (None, _) if codings.is_empty() => Ok(0),
        (None, _) => {
            // Codings apply in order; only a final "chunked" marks where the
            // body ends.
            let last = codings.last().and_then(|v| v.rsplit(|&b| b == b',').next());
            let chunked = last.is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            Err(if chunked {
                NOT_IMPLEMENTED
            } else {
                BAD_REQUEST
            })
        }
    }
}

/// The byte stream requests arrive on: the connection itself, or TLS over
/// it. (Generic, not a trait object: the plain path compiles to what it
/// was before TLS existed.)
trait Transport: Write {
    /// Reads; an `idle` read (no request in progress) ends with `Ok(0)`
    /// when the server drains (see [`Conn::read_idle`]).
    fn read_from(&mut self, buf: &mut [u8], idle: bool) -> io::Result<usize>;
    /// Sets the socket's read timeout.
    fn set_read_timeout(&self, dur: Duration) -> io::Result<()>;
    /// Ends this side's output: the client reads end of stream.
    fn close_write(&mut self);
    /// Whether the server is shutting down.
    fn draining(&self) -> bool;
}

impl Transport for &Conn {
    fn read_from(&mut self, buf: &mut [u8], idle: bool) -> io::Result<usize> {
        if idle {
            self.read_idle(buf)
        } else {
            self.read(buf)
        }
    }

    fn set_read_timeout(&self, dur: Duration) -> io::Result<()> {
        (**self).set_read_timeout(Some(dur))
    }

    fn close_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }

    fn draining(&self) -> bool {
        (**self).draining()
    }
}

/// HTTPS: a TLS stream over a second handle on the connection's socket.
struct Tls<'a> {
    stream: TlsStream,
    conn: &'a Conn,
    /// The time the next read has (see `set_read_timeout`). The socket's
    /// timeout bounds each wait of a TLS read, and a read waits until a
    /// whole record is in: a record trickling in would renew it per byte.
    left: std::cell::Cell<Duration>,
}

impl Tls<'_> {
    /// A TLS read bounded as a whole (TimedOut when `left` runs out).
    fn read_bounded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stream = &mut self.stream;
        sylvan::timeout(self.left.get(), || stream.read(buf))
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }
}

impl Write for Tls<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Transport for Tls<'_> {
    fn read_from(&mut self, buf: &mut [u8], idle: bool) -> io::Result<usize> {
        if idle {
            let conn = self.conn;
            conn.while_idle(|| self.read_bounded(buf))
        } else {
            self.read_bounded(buf)
        }
    }

    fn set_read_timeout(&self, dur: Duration) -> io::Result<()> {
        self.left.set(dur);
        self.stream.get_ref().set_read_timeout(Some(dur))
    }

    fn close_write(&mut self) {
        // close_notify, then the TCP write half.
        let _ = self.stream.shutdown();
    }

    fn draining(&self) -> bool {
        self.conn.draining()
    }
}

fn serve(mut conn: impl Transport, max_body: usize, idle_timeout: Duration) -> io::Result<()> {
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    // When the request being waited for must be here in full. Renewed only
    // when a response goes out, so a request trickling in cannot extend it.
    let mut deadline = Instant::now() + idle_timeout;
    loop {
        // Answer every complete request that arrived (pipelining), in order.
        let mut start = 0;
        let mut close = false;
        loop {
            match handle(&input[start..], max_body, !conn.draining(), &mut out) {
                Next::KeepAlive(used) => start += used,
                Next::Close => {
                    close = true;
                    break;
                }
                Next::NeedMore => break,
            }
        }
        input.drain(..start);
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
            deadline = Instant::now() + idle_timeout;
        }
        if close {
            close_gracefully(&mut conn);
            return Ok(());
        }
        // Between requests the read is idle: a drain ends it.
        let n = match read_before(&mut conn, &mut buf, deadline, input.is_empty()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if !input.is_empty() {
                    conn.write_all(TIMEOUT)?;
                    close_gracefully(&mut conn);
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

/// Reads into `buf`, failing with `TimedOut` once `deadline` has passed.
fn read_before(
    conn: &mut impl Transport,
    buf: &mut [u8],
    deadline: Instant,
    idle: bool,
) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    conn.set_read_timeout(left)?;
    conn.read_from(buf, idle)
}

/// Closes after an answer the client may not have read yet. Closing a
/// socket with unread input makes the kernel send a reset, which can destroy
/// the answer before the client reads it (a client still sending a rejected
/// body would see "connection reset" instead of 413). So: end our side, then
/// read and discard what the client still sends, for at most [`LINGER`].
fn close_gracefully(conn: &mut impl Transport) {
    conn.close_write();
    let _ = conn.set_read_timeout(LINGER);
    let _ = sylvan::timeout(LINGER, || {
        let mut buf = [0u8; 8192];
        // Idle: a drain ends it at once.
        while let Ok(1..) = conn.read_from(&mut buf, true) {}
    });
}

fn main() {
    let args: Args = common::parse_args(
        "10s",
        "Close a connection that has not sent a whole request this long after it went idle (e.g. 2s, 500ms)",
    );
    let (max_body, idle_timeout) = (args.max_body, args.server.idle_timeout);
    // clap made sure that both files are given, or neither.
    let tls = args
        .tls_cert
        .as_ref()
        .zip(args.tls_key.as_ref())
        .map(|(cert, key)| {
            TlsAcceptor::from_pem_files(cert, key).unwrap_or_else(|e| {
                eprintln!("http_hello: {e}");
                std::process::exit(1)
            })
        });
    common::serve("http_hello", &args.addr, &args.server, move |conn| {
        // Errors here are clients going away mid-request: nothing to report.
        let Some(acceptor) = &tls else {
            let _ = serve(&conn, max_body, idle_timeout);
            return;
        };
        // TLS gets a handle of its own on the socket (with the same
        // timeouts); the server's drain still reaches it through `conn`.
        let Ok(tcp) = conn.try_clone() else { return };
        // A client that does not finish the handshake within the idle
        // timeout is dropped, however slowly it trickles.
        let stream = match sylvan::timeout(idle_timeout, || acceptor.accept(tcp)) {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return common::log(e),
            Err(_elapsed) => return,
        };
        let _ = serve(
            Tls {
                stream,
                conn: &conn,
                left: std::cell::Cell::new(idle_timeout),
            },
            max_body,
            idle_timeout,
        );
    });
}
