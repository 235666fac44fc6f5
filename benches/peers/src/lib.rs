//! What the comparison programs share: argument parsing, memory readings, and
//! the request handling of the HTTP and echo servers (written once against
//! `Read + Write` for the blocking-style runtimes — sylvan, may, std threads —
//! so they run the very same code; tokio's servers are its async twin).

use std::io::{self, Read, Write};
use std::time::Instant;

/// The response of every HTTP server in the comparison.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// `PROGRAM WORKLOAD WORKERS [N]`, as every workload program takes it.
pub struct Args {
    /// Which workload.
    pub workload: String,
    /// Worker threads (or GOMAXPROCS) to use.
    pub workers: usize,
    /// Problem size, if given.
    pub n: Option<u64>,
}

/// Parses `WORKLOAD WORKERS [N]` from the command line.
pub fn args() -> Args {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        eprintln!("usage: PROGRAM spawn|pingpong|yield|idle|sleep|park WORKERS [N]");
        std::process::exit(2);
    }
    Args {
        workload: a[0].clone(),
        workers: a[1].parse().expect("WORKERS is a number"),
        n: a.get(2).map(|n| n.parse().expect("N is a number")),
    }
}

/// Prints a workload's result: one number on stdout.
pub fn report(value: f64) {
    println!("{value:.1}");
}

/// Nanoseconds since `start`, divided by `n`.
pub fn ns_per(start: Instant, n: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident set size now, bytes.
pub fn rss() -> u64 {
    status_kb("VmRSS:") * 1024
}

/// Peak resident set size so far, bytes.
pub fn peak_rss() -> u64 {
    status_kb("VmHWM:") * 1024
}

/// Serves one HTTP/1.1 keep-alive connection: answers every complete
/// request in the buffer (pipelining), skipping declared bodies; a bad
/// request gets a 400 and the connection closed.
pub fn serve_http<S: Read + Write>(mut conn: S) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut have = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        // Answer what is complete, then write once.
        let mut used = 0;
        loop {
            match parse(&buf[used..have]) {
                Parsed::Request(len) => {
                    out.extend_from_slice(RESPONSE);
                    used += len;
                }
                Parsed::Partial => break,
                Parsed::Bad => {
                    out.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    conn.write_all(&out)?;
                    return Ok(());
                }
            }
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        buf.copy_within(used..have, 0);
        have -= used;
        if have == buf.len() {
            return Ok(()); // headers too large
        }
        let n = conn.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
    }
}

/// What [`parse`] found at the start of a buffer.
pub enum Parsed {
    /// A whole request (headers and body) of this many bytes.
    Request(usize),
    /// Not all of it yet.
    Partial,
    /// Not HTTP.
    Bad,
}

/// Parses one request at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head)) => {
            let body = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0);
            if buf.len() >= head + body {
                Parsed::Request(head + body)
            } else {
                Parsed::Partial
            }
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Bad,
    }
}

/// Echoes everything back until the peer closes.
pub fn serve_echo<S: Read + Write>(mut conn: S) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}

/// `PROGRAM http|echo ADDR WORKERS`, as every server program takes it.
pub fn server_args() -> (String, String, usize) {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 3 || !(a[0] == "http" || a[0] == "echo") {
        eprintln!("usage: PROGRAM http|echo ADDR WORKERS");
        std::process::exit(2);
    }
    (
        a[0].clone(),
        a[1].clone(),
        a[2].parse().expect("WORKERS is a number"),
    )
}
