//! A small HTTP/1.1 client over `sylvan::net::TcpStream`: GET with
//! keep-alive connections pooled per origin, Content-Length, chunked and
//! close-delimited bodies, a body size limit and bounded redirects.
//! Everything is plain blocking code; the fibers make it concurrent.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

use std::sync::{Mutex, MutexGuard, PoisonError};
use sylvan::net::TcpStream;
use url::Url;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a fetch failed, with a short kind for the summary.
#[derive(Debug, Clone)]
pub struct FetchError {
    pub kind: &'static str,
    pub message: String,
}

impl FetchError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            message: message.into(),
        }
    }

    fn io(kind: &'static str, e: io::Error) -> FetchError {
        let kind = if e.kind() == io::ErrorKind::TimedOut {
            "timeout"
        } else {
            kind
        };
        FetchError::new(kind, e.to_string())
    }
}

/// A response: status, selected headers, the body, and where it came from
/// after redirects.
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub final_url: Url,
    pub redirects: usize,
}

/// Client settings and the keep-alive pool.
pub struct Client {
    pub user_agent: String,
    pub max_body: usize,
    pub max_redirects: usize,
    pub connect_timeout: Duration,
    /// Idle keep-alive connections by origin ("host:port").
    idle: Mutex<HashMap<String, Vec<BufReader<TcpStream>>>>,
    pub max_idle_per_host: usize,
}

type Conn = BufReader<TcpStream>;

const MAX_HEAD: usize = 64 * 1024;

impl Client {
    pub fn new(
        user_agent: String,
        max_body: usize,
        max_redirects: usize,
        connect_timeout: Duration,
    ) -> Client {
        Client {
            user_agent,
            max_body,
            max_redirects,
            connect_timeout,
            idle: Mutex::new(HashMap::new()),
            max_idle_per_host: 8,
        }
    }

    /// GET `url`, following up to `max_redirects` redirects. `visit` is asked
    /// before each redirect hop; returning false stops there (the target was
    /// crawled already) and the redirect response itself is returned.
    pub fn get(
        &self,
        url: &Url,
        mut visit: impl FnMut(&Url) -> bool,
    ) -> Result<Response, FetchError> {
        let mut url = url.clone();
        let mut chain = vec![url.clone()];
        loop {
            let mut resp = self.get_once(&url)?;
            let hops = chain.len() - 1;
            let location = match resp.status {
                301 | 302 | 303 | 307 | 308 => resp.location.take(),
                _ => None,
            };
            let Some(location) = location else {
                return Ok(resp.into_response(url, hops));
            };
            let next = url.join(&location).map_err(|e| {
                FetchError::new("http", format!("bad redirect location {location:?}: {e}"))
            })?;
            if chain.contains(&next) {
                return Err(FetchError::new(
                    "redirect-loop",
                    format!(
                        "redirect loop: {} -> {next}",
                        chain
                            .iter()
                            .map(Url::as_str)
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ),
                ));
            }
            if chain.len() > self.max_redirects {
                return Err(FetchError::new(
                    "too-many-redirects",
                    format!("more than {} redirects", self.max_redirects),
                ));
            }
            if next.scheme() == "https" {
                return Err(FetchError::new(
                    "https-unsupported",
                    format!("redirect to {next}: https not supported yet"),
                ));
            }
            if next.scheme() != "http" {
                return Err(FetchError::new(
                    "http",
                    format!("redirect to unsupported URL {next}"),
                ));
            }
            if !visit(&next) {
                return Ok(resp.into_response(url, hops));
            }
            chain.push(next.clone());
            url = next;
        }
    }

    /// One request/response exchange. A pooled connection that turns out to
    /// be closed by the server (nothing read back) is retried once on a fresh
    /// connection.
    fn get_once(&self, url: &Url) -> Result<RawResponse, FetchError> {
        let host = url
            .host_str()
            .ok_or_else(|| FetchError::new("bad-url", "URL has no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let origin = format!("{host}:{port}");
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {}\r\nAccept: text/html,*/*;q=0.8\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n",
            self.user_agent
        );
        let pooled = lock(&self.idle).get_mut(&origin).and_then(Vec::pop);
        if let Some(conn) = pooled {
            // Err: a stale keep-alive connection, closed by the server while
            // it sat idle. Fall through to a fresh one.
            if let Ok((resp, conn)) = self.exchange(conn, &request) {
                return Ok(self.finish(resp, conn, &origin));
            }
        }
        let conn = self.connect(host, port)?;
        match self.exchange_fresh(conn, &request) {
            Ok((resp, conn)) => Ok(self.finish(resp, conn, &origin)),
            Err(e) => Err(e),
        }
    }

    fn finish(&self, resp: RawResponse, conn: Option<Conn>, origin: &str) -> RawResponse {
        if let Some(conn) = conn {
            let mut idle = lock(&self.idle);
            let list = idle.entry(origin.to_string()).or_default();
            if list.len() < self.max_idle_per_host {
                list.push(conn);
            }
        }
        resp
    }

    fn connect(&self, host: &str, port: u16) -> Result<Conn, FetchError> {
        let addrs: Vec<_> = sylvan::net::lookup_host((host, port))
            .map_err(|e| FetchError::new("dns", format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(BufReader::with_capacity(16 * 1024, s));
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses"));
        Err(FetchError::io(
            "connect",
            io::Error::new(e.kind(), format!("connect to {host}:{port}: {e}")),
        ))
    }

    /// On a pooled connection: any failure before the first response byte
    /// means the connection was stale.
    fn exchange(
        &self,
        mut conn: Conn,
        request: &str,
    ) -> Result<(RawResponse, Option<Conn>), Stale> {
        if conn.get_mut().write_all(request.as_bytes()).is_err() {
            return Err(Stale);
        }
        match conn.fill_buf() {
            Ok([]) | Err(_) => return Err(Stale),
            Ok(_) => {}
        }
        self.read_response(conn).map_err(|_| Stale)
    }

    fn exchange_fresh(
        &self,
        mut conn: Conn,
        request: &str,
    ) -> Result<(RawResponse, Option<Conn>), FetchError> {
        conn.get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| FetchError::io("io", e))?;
        self.read_response(conn)
    }

    /// Reads one response; returns the connection too if it can be reused.
    fn read_response(&self, mut conn: Conn) -> Result<(RawResponse, Option<Conn>), FetchError> {
        loop {
            let head = read_head(&mut conn)?;
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&head) {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => {
                    return Err(FetchError::new("http", "truncated response head"))
                }
                Err(e) => return Err(FetchError::new("http", format!("malformed response: {e}"))),
            }
            let status = resp.code.unwrap_or(0);
            if (100..200).contains(&status) {
                continue; // 100 Continue and friends: the real response follows
            }
            let header = |name: &str| {
                resp.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
            };
            let http11 = resp.version == Some(1);
            let connection = header("connection").map(|v| v.to_ascii_lowercase());
            let mut reusable = match connection.as_deref() {
                Some(c) if c.contains("close") => false,
                Some(c) if c.contains("keep-alive") => true,
                _ => http11,
            };
            let content_type = header("content-type");
            let location = header("location");
            let all = |name: &str| -> Vec<String> {
                resp.headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
                    .collect()
            };
            // How the body is framed (RFC 9112 section 6.3). Transfer-Encoding
            // wins over Content-Length; a response with both may be an
            // attempt to desynchronise us, so its connection is not reused.
            let codings = all("transfer-encoding");
            let lengths = all("content-length");
            let chunked = codings.last().is_some_and(|c| {
                let last = c.rsplit(',').next().unwrap_or("");
                last.trim().eq_ignore_ascii_case("chunked")
            });
            if !codings.is_empty() && !lengths.is_empty() {
                reusable = false;
            }
            let body = if status == 204 || status == 304 {
                Vec::new()
            } else if chunked {
                read_chunked(&mut conn, self.max_body)?
            } else if !codings.is_empty() {
                // Some other final coding: the body ends when the connection
                // does.
                reusable = false;
                read_to_close(&mut conn, self.max_body)?
            } else if !lengths.is_empty() {
                let len = content_length(&lengths, self.max_body)?;
                let mut body = vec![0u8; len];
                conn.read_exact(&mut body).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        FetchError::new("http", format!("body truncated: expected {len} bytes"))
                    } else {
                        FetchError::io("io", e)
                    }
                })?;
                body
            } else {
                // Delimited by the server closing the connection.
                reusable = false;
                read_to_close(&mut conn, self.max_body)?
            };
            let raw = RawResponse {
                status,
                content_type,
                location,
                body,
            };
            return Ok((raw, reusable.then_some(conn)));
        }
    }
}

struct Stale;

/// The body length a response's Content-Length fields give: each is
/// 1*DIGIT (a comma-separated list of them is allowed), and all must agree
/// (RFC 9110 section 8.6). Identical repeats are accepted, as the RFC
/// allows, because real servers and proxies send them; differing ones mean
/// the response cannot be framed.
fn content_length(fields: &[String], max: usize) -> Result<usize, FetchError> {
    let bad = || FetchError::new("http", format!("bad Content-Length {fields:?}"));
    let mut values = fields.iter().flat_map(|f| f.split(',')).map(str::trim);
    let first = values.next().ok_or_else(bad)?;
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if values.any(|v| v != first) {
        return Err(bad());
    }
    // Only digits, so the parse fails only by overflow: too large anyway.
    match first.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(too_large(max)),
    }
}

/// Reads a body delimited by the server closing the connection.
fn read_to_close(conn: &mut Conn, max: usize) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    conn.take(limit)
        .read_to_end(&mut body)
        .map_err(|e| FetchError::io("io", e))?;
    if body.len() > max {
        return Err(too_large(max));
    }
    Ok(body)
}

fn too_large(max: usize) -> FetchError {
    FetchError::new("too-large", format!("body larger than {max} bytes"))
}

struct RawResponse {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
}

impl RawResponse {
    fn into_response(self, final_url: Url, redirects: usize) -> Response {
        Response {
            status: self.status,
            content_type: self.content_type,
            body: self.body,
            final_url,
            redirects,
        }
    }
}

/// Reads up to and including the empty line that ends a response head.
fn read_head(conn: &mut Conn) -> Result<Vec<u8>, FetchError> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = conn
            .by_ref()
            .take((MAX_HEAD + 1 - head.len()) as u64)
            .read_until(b'\n', &mut head)
            .map_err(|e| FetchError::io("io", e))?;
        if n == 0 {
            return Err(FetchError::new(
                "http",
                if head.is_empty() {
                    "connection closed before a response"
                } else {
                    "truncated response head"
                },
            ));
        }
        if head.len() > MAX_HEAD {
            return Err(FetchError::new("http", "response head larger than 64 KiB"));
        }
        let line = &head[before..];
        if (line == b"\r\n" || line == b"\n") && before > 0 {
            return Ok(head);
        }
    }
}

/// Decodes a chunked body (chunk extensions ignored, trailers skipped).
fn read_chunked(conn: &mut Conn, max: usize) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        conn.by_ref()
            .take(1024)
            .read_until(b'\n', &mut line)
            .map_err(|e| FetchError::io("io", e))?;
        if line.is_empty() || !line.ends_with(b"\n") {
            return Err(FetchError::new("http", "truncated chunked body"));
        }
        // chunk-size = 1*HEXDIG, then optional whitespace and extensions.
        let text = String::from_utf8_lossy(&line);
        let size_text = text.split(';').next().unwrap_or("");
        let size_text = size_text.trim_end_matches([' ', '\t', '\r', '\n']);
        if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FetchError::new(
                "http",
                format!("bad chunk size {size_text:?}"),
            ));
        }
        // Only hex digits, so the parse fails only by overflow.
        let size = usize::from_str_radix(size_text, 16).map_err(|_| too_large(max))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = Vec::new();
                let n = conn
                    .by_ref()
                    .take(8192)
                    .read_until(b'\n', &mut t)
                    .map_err(|e| FetchError::io("io", e))?;
                if n == 0 || t == b"\r\n" || t == b"\n" {
                    return Ok(body);
                }
            }
        }
        // The server chose `size`: add with care.
        let end = match body.len().checked_add(size) {
            Some(end) if end <= max => end,
            _ => return Err(too_large(max)),
        };
        let start = body.len();
        body.resize(end, 0);
        conn.read_exact(&mut body[start..])
            .map_err(|_| FetchError::new("http", "truncated chunked body"))?;
        let mut crlf = [0u8; 2];
        conn.read_exact(&mut crlf)
            .map_err(|_| FetchError::new("http", "truncated chunked body"))?;
        if &crlf != b"\r\n" {
            return Err(FetchError::new("http", "malformed chunk terminator"));
        }
    }
}
