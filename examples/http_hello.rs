//! "Hello, World!" over HTTP/1.1 with keep-alive, as blocking code: a fiber
//! per connection parses requests with httparse and answers each. Pipelined
//! requests are answered in order, in one write per batch.
//!
//! ```text
//! cargo run --release --example http_hello -- [ADDR] [--workers N]
//! curl http://127.0.0.1:8080/
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
//! - its body is over [`MAX_BODY`]: 413, before any of the body is read.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use sylvan::net::TcpStream;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
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
/// Largest request body accepted, in bytes; bigger ones get 413.
const MAX_BODY: usize = 1 << 20;
/// After an error answer, how long unread input is drained before closing
/// (see [`close_gracefully`]).
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
fn handle(input: &[u8], out: &mut Vec<u8>) -> Next {
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
    let body_len = match body_length(req.headers, MAX_BODY) {
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
    let keep_alive = match connection.as_deref() {
        Some(v) if v.windows(5).any(|w| w == b"close") => false,
        Some(v) if v.windows(10).any(|w| w == b"keep-alive") => true,
        _ => req.version == Some(1),
    };
    if keep_alive {
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

fn serve(mut conn: TcpStream) -> std::io::Result<()> {
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&buf[..n]);
        // Answer every complete request that arrived (pipelining), in order.
        let mut start = 0;
        let mut close = false;
        loop {
            match handle(&input[start..], &mut out) {
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
        }
        if close {
            close_gracefully(&conn);
            return Ok(());
        }
    }
}

/// Closes after an answer the client may not have read yet. Closing a
/// socket with unread input makes the kernel send a reset, which can destroy
/// the answer before the client reads it (a client still sending a rejected
/// body would see "connection reset" instead of 413). So: end our side, then
/// read and discard what the client still sends, for at most [`LINGER`].
fn close_gracefully(mut conn: &TcpStream) {
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_timeout(Some(LINGER));
    let _ = sylvan::timeout(LINGER, || {
        let mut buf = [0u8; 8192];
        while let Ok(1..) = conn.read(&mut buf) {}
    });
}

fn main() {
    let args = common::parse_args(
        "http_hello",
        "127.0.0.1:8080",
        "http_hello [ADDR] [--workers N]",
    );
    common::serve("http_hello", &args, |conn, _peer| {
        // Errors here are clients going away mid-request: nothing to report.
        let _ = serve(conn);
    });
}
