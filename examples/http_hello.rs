//! "Hello, World!" over HTTP/1.1 with keep-alive, as blocking code: a fiber
//! per connection parses requests with httparse and answers each. Pipelined
//! requests are answered in order, in one write per batch; a malformed
//! request gets a 400 and the connection is closed.
//!
//! ```text
//! cargo run --release --example http_hello -- [ADDR] [--workers N]
//! curl http://127.0.0.1:8080/
//! ```

mod common;

use std::io::{Read, Write};

use sylvan::net::TcpStream;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: sylvan\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const NOT_IMPLEMENTED: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

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
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => {
            out.extend_from_slice(TOO_LARGE);
            return Next::Close;
        }
        Ok(httparse::Status::Partial) => return Next::NeedMore,
        Err(_) => {
            out.extend_from_slice(BAD_REQUEST);
            return Next::Close;
        }
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if header("transfer-encoding").is_some() {
        out.extend_from_slice(NOT_IMPLEMENTED); // chunked request bodies
        return Next::Close;
    }
    // A body (unusual for GET, but legal) must be skipped, not parsed as the
    // next request.
    let body_len = match header("content-length").map(std::str::from_utf8) {
        None => 0,
        Some(Ok(v)) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                out.extend_from_slice(BAD_REQUEST);
                return Next::Close;
            }
        },
        Some(Err(_)) => {
            out.extend_from_slice(BAD_REQUEST);
            return Next::Close;
        }
    };
    if input.len() < head_len + body_len {
        return Next::NeedMore;
    }
    let connection = header("connection").map(|v| v.to_ascii_lowercase());
    let keep_alive = match connection.as_deref() {
        Some(v) if v.windows(5).any(|w| w == b"close") => false,
        Some(v) if v.windows(10).any(|w| w == b"keep-alive") => true,
        _ => req.version == Some(1),
    };
    if keep_alive {
        out.extend_from_slice(HELLO);
        Next::KeepAlive(head_len + body_len)
    } else {
        out.extend_from_slice(HELLO_CLOSE);
        Next::Close
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
            return Ok(());
        }
    }
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
