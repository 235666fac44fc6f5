//! A small HTTP/1.1 client over `sylvan::net::TcpStream` and, for https,
//! `sylvan::net::tls`: GET and HEAD with keep-alive connections pooled per
//! origin, Content-Length, chunked and
//! close-delimited bodies, a body size limit and bounded redirects.
//! Everything is plain blocking code; the fibers make it concurrent.
//!
//! Nothing a server sends is trusted: every length is checked before it is
//! used, and every way a response can be malformed ends in a [`FetchError`]
//! whose `kind` says which (see [`read_response`]; its property test feeds it
//! generated and mutated responses).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sylvan::net::tls::{TlsConnector, TlsStream};
use sylvan::net::TcpStream;
use url::{Host, Url};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a fetch failed: a short `kind` for the summary and the JSON lines,
/// and a message for people.
///
/// Kinds: `dns`, `connect`, `timeout`, `io`, `tls` (the exchange failed;
/// `tls` is a failed handshake: an untrusted or wrong certificate, or a
/// server that does not speak TLS);
/// `not-http`, `bad-status`, `bad-header`, `bad-length`, `bad-chunk`,
/// `truncated`, `too-large` (the response was malformed or over the limit);
/// `bad-redirect`, `redirect-loop`, `too-many-redirects`, `unsupported`
/// (a redirect could not be followed).
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

    /// An IO error while talking to the server: `timeout` for a timeout,
    /// `truncated` for an early end of stream, else `kind`.
    fn io(kind: &'static str, e: io::Error) -> FetchError {
        let kind = match e.kind() {
            io::ErrorKind::TimedOut => "timeout",
            io::ErrorKind::UnexpectedEof => "truncated",
            _ => kind,
        };
        FetchError::new(kind, e.to_string())
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The request method: GET, or HEAD for links that only need checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// What to do with a redirect's target (the caller decides: it knows what
/// was crawled already, what is in scope and what robots.txt allows).
pub enum Hop {
    /// Follow it, to this (normalised) URL.
    Follow(Url),
    /// Don't; the redirect response itself is the answer, for this reason.
    Stop(&'static str),
}

/// A response: status, selected headers, the body, and where it came from
/// after redirects.
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The body's length: what was read, or what the server declared when
    /// the body was not wanted (HEAD, or a large non-HTML body left unread).
    pub length: Option<u64>,
    pub final_url: Url,
    pub redirects: usize,
    /// The method of the last request (a HEAD the server refused is
    /// repeated as a GET).
    pub method: Method,
    /// A redirect that was not followed: its target and why.
    pub unfollowed: Option<(Url, &'static str)>,
}

/// Client settings and the keep-alive pool.
pub struct Client {
    pub user_agent: String,
    pub max_body: usize,
    pub max_redirects: usize,
    pub connect_timeout: Duration,
    /// How many idle keep-alive connections are kept per origin (the
    /// crawler sets it to `--per-host`, so every fetcher of a host can
    /// reuse one).
    pub max_idle_per_host: usize,
    /// Idle keep-alive connections by origin ("scheme://host:port").
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    /// For https: the roots trusted (the web's, plus `--ca-file`), SNI, ALPN.
    tls: TlsConnector,
}

/// A connection to a server.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Conn = BufReader<Stream>;

/// Largest response head accepted (status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// A body the caller does not want (not HTML) is still read when it is at
/// most this long, so the connection can be reused; a longer one is left
/// unread and its connection closed.
pub const SKIP_BODY_OVER: u64 = 64 * 1024;

impl Client {
    pub fn new(
        user_agent: String,
        max_body: usize,
        max_redirects: usize,
        connect_timeout: Duration,
        max_idle_per_host: usize,
        tls: TlsConnector,
    ) -> Client {
        Client {
            user_agent,
            max_body,
            max_redirects,
            connect_timeout,
            max_idle_per_host,
            idle: Mutex::new(HashMap::new()),
            tls,
        }
    }

    /// Fetches `url` with `method`, following up to `max_redirects`
    /// redirects; `hop` decides about each redirect target. A HEAD the
    /// server refuses (405, 501) is repeated as a GET. `wants_body` is asked
    /// with the response's Content-Type whether a GET's body is needed (a
    /// large unwanted body is left unread).
    pub fn fetch(
        &self,
        url: &Url,
        mut method: Method,
        mut hop: impl FnMut(&Url) -> Hop,
        wants_body: &dyn Fn(Option<&str>) -> bool,
    ) -> Result<Response, FetchError> {
        let mut url = url.clone();
        let mut chain = vec![url.clone()];
        loop {
            let mut raw = self.fetch_once(&url, method, wants_body)?;
            if method == Method::Head && matches!(raw.status, 405 | 501) {
                method = Method::Get;
                raw = self.fetch_once(&url, method, wants_body)?;
            }
            let hops = chain.len() - 1;
            let location = match raw.status {
                301 | 302 | 303 | 307 | 308 => raw.location.take(),
                _ => None,
            };
            let Some(location) = location else {
                return Ok(raw.into_response(url, hops, method, None));
            };
            let next = url.join(&location).map_err(|e| {
                FetchError::new(
                    "bad-redirect",
                    format!("unusable redirect location {location:?}: {e}"),
                )
            })?;
            if !matches!(next.scheme(), "http" | "https") || next.host_str().is_none() {
                return Err(FetchError::new(
                    "unsupported",
                    format!("redirect to {next}: only http:// and https:// URLs are fetched"),
                ));
            }
            if chain.contains(&next) {
                let chain: Vec<&str> = chain.iter().map(Url::as_str).collect();
                return Err(FetchError::new(
                    "redirect-loop",
                    format!("redirect loop: {} -> {next}", chain.join(" -> ")),
                ));
            }
            // Before `hop`, which marks the target as crawled: a target
            // not fetched must stay free to be fetched when linked.
            if chain.len() > self.max_redirects {
                return Err(FetchError::new(
                    "too-many-redirects",
                    format!("more than {} redirects", self.max_redirects),
                ));
            }
            let next = match hop(&next) {
                Hop::Follow(next) => next,
                Hop::Stop(why) => {
                    return Ok(raw.into_response(url, hops, method, Some((next, why))))
                }
            };
            if chain.contains(&next) {
                let chain: Vec<&str> = chain.iter().map(Url::as_str).collect();
                return Err(FetchError::new(
                    "redirect-loop",
                    format!("redirect loop: {} -> {next}", chain.join(" -> ")),
                ));
            }
            chain.push(next.clone());
            url = next;
        }
    }

    /// One request/response exchange. A pooled connection that fails before
    /// any byte of the answer arrives was closed by the server while it sat
    /// idle: the request is repeated once on a fresh connection. Any failure
    /// after the first byte is the answer's, and is returned.
    fn fetch_once(
        &self,
        url: &Url,
        method: Method,
        wants_body: &dyn Fn(Option<&str>) -> bool,
    ) -> Result<RawResponse, FetchError> {
        let origin = origin(url);
        let request = self.request(url, method);
        let pooled = lock(&self.idle).get_mut(&origin).and_then(Vec::pop);
        // A connection on which the server sent anything while it sat idle
        // (the rest of a body it should not have sent, a close) cannot
        // carry a request: its next bytes are not our answer.
        if let Some(mut conn) = pooled.filter(|c| !idle_readable(c.get_ref())) {
            let answered = conn.get_mut().write_all(request.as_bytes()).is_ok()
                && matches!(conn.fill_buf(), Ok(b) if !b.is_empty());
            if answered {
                return self.finish(conn, &origin, method, wants_body);
            }
        }
        let mut conn = self.connect(url)?;
        conn.get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| FetchError::io("io", e))?;
        self.finish(conn, &origin, method, wants_body)
    }

    fn request(&self, url: &Url, method: Method) -> String {
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        // host_str() keeps an IPv6 literal's brackets, as Host needs them.
        let host = url.host_str().unwrap_or("");
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        format!(
            "{} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n",
            method.as_str(),
            self.user_agent
        )
    }

    /// Reads the answer and pools the connection if it can be reused.
    fn finish(
        &self,
        mut conn: Conn,
        origin: &str,
        method: Method,
        wants_body: &dyn Fn(Option<&str>) -> bool,
    ) -> Result<RawResponse, FetchError> {
        let (resp, reusable) = read_response(&mut conn, method, self.max_body, wants_body)?;
        // Bytes after the response (a HEAD or 204 answered with a body, a
        // body longer than its Content-Length) would be read as the answer
        // to the next request on this connection.
        if reusable && conn.buffer().is_empty() && !idle_readable(conn.get_ref()) {
            let mut idle = lock(&self.idle);
            let list = idle.entry(origin.to_string()).or_default();
            if list.len() < self.max_idle_per_host {
                list.push(conn);
            }
        }
        Ok(resp)
    }

    fn connect(&self, url: &Url) -> Result<Conn, FetchError> {
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match url.host() {
            // An IP literal (IPv6 in brackets in the URL) needs no resolver.
            Some(Host::Ipv4(ip)) => vec![SocketAddr::from((ip, port))],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::from((ip, port))],
            Some(Host::Domain(name)) => sylvan::net::lookup_host((name, port))
                .map_err(|e| FetchError::new("dns", format!("cannot resolve {name}: {e}")))?
                .collect(),
            None => return Err(FetchError::new("bad-url", "URL has no host")),
        };
        let host = url.host_str().unwrap_or("");
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let stream = if url.scheme() == "https" {
                        Stream::Tls(Box::new(self.handshake(url, s)?))
                    } else {
                        Stream::Plain(s)
                    };
                    return Ok(BufReader::with_capacity(16 * 1024, stream));
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

    /// The TLS handshake for `url` on `tcp`: the certificate must be valid
    /// for the URL's host (an IP literal is checked as an IP address).
    fn handshake(&self, url: &Url, tcp: TcpStream) -> Result<TlsStream, FetchError> {
        let name = match url.host() {
            Some(Host::Domain(d)) => d.to_string(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(FetchError::new("bad-url", "URL has no host")),
        };
        self.tls.connect(&name, tcp).map_err(|e| {
            let kind = if e.kind() == io::ErrorKind::TimedOut {
                "timeout"
            } else {
                "tls"
            };
            FetchError::new(kind, e.to_string())
        })
    }
}

/// Whether the server sent anything (data or end of stream) on a
/// connection that should be silent: a look at the socket that never waits.
fn idle_readable(stream: &Stream) -> bool {
    let tcp = match stream {
        Stream::Plain(s) => s,
        Stream::Tls(s) => s.get_ref(),
    };
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    match socket2::SockRef::from(tcp)
        .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    {
        Ok(_) => true, // data, or 0: closed
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// The key of a URL's keep-alive pool: "scheme://host:port".
pub fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// One response as read off the wire.
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub length: Option<u64>,
}

impl RawResponse {
    fn into_response(
        self,
        final_url: Url,
        redirects: usize,
        method: Method,
        unfollowed: Option<(Url, &'static str)>,
    ) -> Response {
        Response {
            status: self.status,
            content_type: self.content_type,
            body: self.body,
            length: self.length,
            final_url,
            redirects,
            method,
            unfollowed,
        }
    }
}

/// How a response's body is delimited (RFC 9112 section 6.3).
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// Reads one response to `method` from `conn`; also says whether the
/// connection can carry another request. Bodies over `max_body` are refused
/// (`too-large`); a GET's body that `wants_body` declines and that is over
/// [`SKIP_BODY_OVER`] (or of unknown length) is left unread, and the
/// connection is then not reusable.
pub fn read_response<R: BufRead>(
    conn: &mut R,
    method: Method,
    max_body: usize,
    wants_body: &dyn Fn(Option<&str>) -> bool,
) -> Result<(RawResponse, bool), FetchError> {
    loop {
        let head = read_head(conn)?;
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(FetchError::new("truncated", "truncated response head"))
            }
            Err(e) => {
                let kind = match e {
                    httparse::Error::Status | httparse::Error::Version => "bad-status",
                    _ => "bad-header",
                };
                let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
                return Err(FetchError::new(
                    kind,
                    format!("malformed response ({e}): {}", preview(line)),
                ));
            }
        }
        let status = resp.code.unwrap_or(0);
        if (100..200).contains(&status) {
            if status == 101 {
                return Err(FetchError::new(
                    "bad-status",
                    "101 Switching Protocols to a GET",
                ));
            }
            continue; // 100 Continue and friends: the real response follows
        }
        let all = |name: &str| -> Vec<String> {
            resp.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                .collect()
        };
        let first = |name: &str| all(name).into_iter().next();
        let http11 = resp.version == Some(1);
        let connection = all("connection").join(",").to_ascii_lowercase();
        let mut reusable = if connection.contains("close") {
            false
        } else {
            http11 || connection.contains("keep-alive")
        };
        let content_type = first("content-type");
        let location = first("location");
        let codings = all("transfer-encoding");
        let lengths = all("content-length");
        let framing = if method == Method::Head || status == 204 || status == 304 {
            Framing::None
        } else if !codings.is_empty() {
            // Transfer-Encoding wins over Content-Length; a response with
            // both may be an attempt to desynchronise us, so its connection
            // is not reused.
            if !lengths.is_empty() {
                reusable = false;
            }
            let last = codings.last().and_then(|c| c.rsplit(',').next());
            if last.is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked")) {
                Framing::Chunked
            } else {
                // Some other final coding: the body ends when the connection does.
                Framing::Close
            }
        } else if !lengths.is_empty() {
            Framing::Length(content_length(&lengths)?)
        } else {
            Framing::Close
        };
        let declared = match framing {
            Framing::Length(n) => Some(n),
            Framing::None if method == Method::Head => lengths.first().and_then(|l| l.parse().ok()),
            _ => None,
        };
        let unwanted = method == Method::Get
            && !wants_body(content_type.as_deref())
            && !matches!(framing, Framing::None)
            && declared.map_or(true, |n| n > SKIP_BODY_OVER);
        let body = if unwanted {
            reusable = false;
            Vec::new()
        } else {
            match framing {
                Framing::None => Vec::new(),
                Framing::Length(n) => {
                    if n > max_body as u64 {
                        return Err(too_large(max_body));
                    }
                    let mut body = vec![0u8; n as usize];
                    read_exact(conn, &mut body, "body")?;
                    body
                }
                Framing::Chunked => read_chunked(conn, max_body)?,
                Framing::Close => {
                    reusable = false;
                    read_to_close(conn, max_body)?
                }
            }
        };
        let length = if unwanted || method == Method::Head {
            declared
        } else {
            Some(body.len() as u64)
        };
        let raw = RawResponse {
            status,
            content_type,
            location,
            body,
            length,
        };
        return Ok((raw, reusable));
    }
}

/// A short, printable prefix of what a server sent, for error messages.
fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(60)];
    let text: String = cut.escape_ascii().to_string();
    if bytes.len() > cut.len() {
        format!("\"{text}\"...")
    } else {
        format!("\"{text}\"")
    }
}

/// The body length a response's Content-Length fields give: each is
/// 1*DIGIT (a comma-separated list of them is allowed), and all must agree
/// (RFC 9110 section 8.6). Identical repeats are accepted, as the RFC
/// allows, because real servers and proxies send them; differing ones mean
/// the response cannot be framed.
fn content_length(fields: &[String]) -> Result<u64, FetchError> {
    let bad = || FetchError::new("bad-length", format!("bad Content-Length {fields:?}"));
    let mut values = fields.iter().flat_map(|f| f.split(',')).map(str::trim);
    let first = values.next().ok_or_else(bad)?;
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if values.any(|v| v != first) {
        return Err(bad());
    }
    // Only digits, so the parse fails only by overflow.
    first.parse::<u64>().map_err(|_| {
        FetchError::new(
            "too-large",
            format!("Content-Length {first} does not fit in 64 bits"),
        )
    })
}

fn read_exact<R: Read>(conn: &mut R, buf: &mut [u8], what: &str) -> Result<(), FetchError> {
    conn.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            FetchError::new(
                "truncated",
                format!("{what} truncated: the connection closed early"),
            )
        } else {
            FetchError::io("io", e)
        }
    })
}

/// Reads a body delimited by the server closing the connection.
fn read_to_close<R: Read>(conn: &mut R, max: usize) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    conn.by_ref()
        .take(limit)
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

/// Reads one line of at most `max` bytes (with its `\n`): `Ok(None)` at a
/// clean end of stream, `truncated` if the stream ends mid-line, `too_long`
/// if the line does not end within `max`.
fn read_line<R: BufRead>(
    conn: &mut R,
    max: usize,
    too_long: impl FnOnce() -> FetchError,
) -> Result<Option<Vec<u8>>, FetchError> {
    let mut line = Vec::new();
    conn.by_ref()
        .take(max as u64)
        .read_until(b'\n', &mut line)
        .map_err(|e| FetchError::io("io", e))?;
    if line.is_empty() {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        if line.len() >= max {
            return Err(too_long());
        }
        return Err(FetchError::new(
            "truncated",
            "the connection closed mid-line",
        ));
    }
    Ok(Some(line))
}

/// Reads up to and including the empty line that ends a response head. A
/// reply whose first line is not an HTTP status line fails at once
/// (`not-http`), without waiting for an end of head that may never come.
fn read_head<R: BufRead>(conn: &mut R) -> Result<Vec<u8>, FetchError> {
    let mut head = Vec::new();
    loop {
        let room = MAX_HEAD + 1 - head.len();
        let line = read_line(conn, room, || {
            FetchError::new("bad-header", "response head larger than 64 KiB")
        })?;
        let Some(line) = line else {
            return Err(FetchError::new(
                "truncated",
                if head.is_empty() {
                    "connection closed before a response"
                } else {
                    "truncated response head"
                },
            ));
        };
        if head.is_empty() && !line.starts_with(b"HTTP/") {
            return Err(FetchError::new(
                "not-http",
                format!("the reply is not HTTP: {}", preview(&line)),
            ));
        }
        let end = (line == b"\r\n" || line == b"\n") && !head.is_empty();
        head.extend_from_slice(&line);
        if end {
            return Ok(head);
        }
    }
}

/// Decodes a chunked body (chunk extensions ignored, trailers skipped).
fn read_chunked<R: BufRead>(conn: &mut R, max: usize) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(conn, 1024, || {
            FetchError::new("bad-chunk", "chunk-size line longer than 1 KiB")
        })?
        .ok_or_else(|| FetchError::new("truncated", "chunked body truncated"))?;
        // chunk-size = 1*HEXDIG, then optional whitespace and extensions.
        let text = String::from_utf8_lossy(&line);
        let size_text = text.split(';').next().unwrap_or("");
        let size_text = size_text.trim_end_matches([' ', '\t', '\r', '\n']);
        if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FetchError::new(
                "bad-chunk",
                format!("bad chunk size {}", preview(size_text.as_bytes())),
            ));
        }
        // Only hex digits, so the parse fails only by overflow.
        let size = usize::from_str_radix(size_text, 16).map_err(|_| too_large(max))?;
        if size == 0 {
            // Trailer fields up to the empty line, no more than a head's worth.
            let mut trailers = 0usize;
            loop {
                let t = read_line(conn, MAX_HEAD, || {
                    FetchError::new("bad-chunk", "trailer field longer than 64 KiB")
                })?
                .ok_or_else(|| FetchError::new("truncated", "chunked body truncated"))?;
                if t == b"\r\n" || t == b"\n" {
                    return Ok(body);
                }
                trailers += t.len();
                if trailers > MAX_HEAD {
                    return Err(FetchError::new("bad-chunk", "trailers larger than 64 KiB"));
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
        read_exact(conn, &mut body[start..], "chunked body")?;
        let mut crlf = [0u8; 2];
        read_exact(conn, &mut crlf, "chunked body")?;
        if &crlf != b"\r\n" {
            return Err(FetchError::new(
                "bad-chunk",
                "chunk data longer than its size (no CRLF after it)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    //! The response parser against generated responses: valid ones must
    //! parse to exactly what was sent, however the bytes arrive; mutated ones
    //! (cut short, bytes changed, lengths and chunk sizes replaced by hostile
    //! values) must end in a known error kind or a body within the limit,
    //! never a panic or an overlong read. Deterministic: a fixed-seed
    //! generator, a bounded number of cases.

    use super::*;

    /// xorshift64*: small, fast, reproducible.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// Delivers its bytes in pieces of random size, as a socket does.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        rng: Rng,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let left = self.data.len() - self.pos;
            let n = left.min(buf.len()).min(1 + self.rng.below(40));
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    const KINDS: &[&str] = &[
        "not-http",
        "bad-status",
        "bad-header",
        "bad-length",
        "bad-chunk",
        "truncated",
        "too-large",
    ];
    const MAX_BODY: usize = 4096;

    struct Case {
        bytes: Vec<u8>,
        status: u16,
        body: Vec<u8>,
        reusable: bool,
    }

    fn generate(rng: &mut Rng) -> Case {
        let status = *rng.pick(&[200u16, 201, 301, 404, 500, 299, 599]);
        let body_len = rng.below(600);
        let body: Vec<u8> = (0..body_len).map(|_| rng.next() as u8).collect();
        let http10 = rng.below(6) == 0;
        let mut head = format!(
            "HTTP/1.{} {status} {}\r\n",
            if http10 { 0 } else { 1 },
            rng.pick(&["OK", "", "Whatever Reason"])
        );
        for _ in 0..rng.below(5) {
            let header = *rng.pick::<&str>(&[
                "Server: gen\r\n",
                "Content-Type: text/html; charset=utf-8\r\n",
                "X-Empty:\r\n",
                "Set-Cookie: a=b; Path=/\r\n",
                "Cache-Control: no-store\r\n",
            ]);
            head.push_str(header);
        }
        let mut bytes;
        let reusable;
        match rng.below(3) {
            0 => {
                head.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
                bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                reusable = !http10;
            }
            1 if !http10 => {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                bytes = head.into_bytes();
                let mut rest = &body[..];
                while !rest.is_empty() {
                    let n = (1 + rng.below(200)).min(rest.len());
                    let ext = if rng.below(4) == 0 { ";name=value" } else { "" };
                    let size = if rng.below(2) == 0 {
                        format!("{n:x}")
                    } else {
                        format!("{n:X}")
                    };
                    bytes.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    bytes.extend_from_slice(&rest[..n]);
                    bytes.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                bytes.extend_from_slice(b"0\r\n");
                if rng.below(3) == 0 {
                    bytes.extend_from_slice(b"Trailer-Field: x\r\n");
                }
                bytes.extend_from_slice(b"\r\n");
                reusable = true;
            }
            _ => {
                head.push_str("Connection: close\r\n\r\n");
                bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                reusable = false;
            }
        }
        Case {
            bytes,
            status,
            body,
            reusable,
        }
    }

    fn parse(bytes: Vec<u8>, rng: &mut Rng) -> Result<(RawResponse, bool), FetchError> {
        let seed = rng.next() | 1;
        let capacity = 1 + rng.below(64);
        let mut conn = BufReader::with_capacity(
            capacity,
            Trickle {
                data: bytes,
                pos: 0,
                rng: Rng(seed),
            },
        );
        read_response(&mut conn, Method::Get, MAX_BODY, &|_| true)
    }

    #[test]
    fn generated_responses_parse_exactly() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for i in 0..3000 {
            let case = generate(&mut rng);
            let (resp, reusable) = parse(case.bytes.clone(), &mut rng).unwrap_or_else(|e| {
                panic!(
                    "case {i}: {e} for {:?}",
                    String::from_utf8_lossy(&case.bytes)
                )
            });
            assert_eq!(resp.status, case.status, "case {i}");
            assert_eq!(resp.body, case.body, "case {i}");
            assert_eq!(resp.length, Some(case.body.len() as u64), "case {i}");
            assert_eq!(reusable, case.reusable, "case {i}");
        }
    }

    /// Replaces the first `from` in `bytes` with `to`.
    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
        let at = bytes.windows(from.len()).position(|w| w == from)?;
        let mut out = bytes[..at].to_vec();
        out.extend_from_slice(to);
        out.extend_from_slice(&bytes[at + from.len()..]);
        Some(out)
    }

    #[test]
    fn mutated_responses_fail_with_a_kind_and_never_overread() {
        let mut rng = Rng(0x0bad_5eed_0000_0002);
        let hostile_numbers = [
            "-1",
            "+5",
            "0x10",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999",
            "5, 6",
            "1 2",
            "",
            "fffffffffffffffa",
        ];
        let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
        for i in 0..20_000 {
            let case = generate(&mut rng);
            let mut bytes = case.bytes.clone();
            match rng.below(6) {
                0 => bytes.truncate(rng.below(bytes.len())),
                1 => {
                    for _ in 0..1 + rng.below(3) {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                }
                2 => {
                    let at = rng.below(bytes.len() + 1);
                    let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                    bytes.splice(at..at, junk);
                }
                3 => {
                    let n = rng.pick(&hostile_numbers);
                    let to = format!("Content-Length: {n}\r\n");
                    if let Some(b) = replace(&bytes, b"Content-Length: ", to.as_bytes()) {
                        bytes = b;
                    }
                    if rng.below(2) == 0 {
                        let extra = format!("\r\nContent-Length: {}\r\n", rng.below(9));
                        bytes = replace(&bytes, b"\r\n", extra.as_bytes()).unwrap();
                    }
                }
                4 => {
                    // A hostile chunk size after the first chunk.
                    let n = rng.pick(&hostile_numbers);
                    let mut out = Vec::new();
                    let mut lines = bytes.split_inclusive(|&b| b == b'\n');
                    let mut replaced = false;
                    let mut seen_chunk = false;
                    for line in lines.by_ref() {
                        let is_size = line.len() > 2
                            && line[..line.len() - 2].iter().all(u8::is_ascii_hexdigit);
                        if is_size && seen_chunk && !replaced {
                            out.extend_from_slice(format!("{n}\r\n").as_bytes());
                            replaced = true;
                        } else {
                            seen_chunk |= is_size;
                            out.extend_from_slice(line);
                        }
                    }
                    bytes = out;
                }
                _ => {
                    let garbages: [&[u8]; 8] = [
                        b"SSH-2.0-OpenSSH_9.2\r\n",
                        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                        b"HTTP/1.1 2000 OK\r\n\r\n",
                        b"HTTP/1.1 20 OK\r\n\r\n",
                        b"HTTP/2 200\r\n\r\n",
                        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
                        b"<html>hello</html>",
                        b"",
                    ];
                    bytes = rng.pick(&garbages).to_vec();
                }
            }
            let len = bytes.len();
            match parse(bytes.clone(), &mut rng) {
                Ok((resp, _)) => {
                    assert!(resp.body.len() <= MAX_BODY, "case {i}");
                    assert!(resp.body.len() <= len, "case {i}");
                    *outcomes.entry("ok").or_default() += 1;
                }
                Err(e) => {
                    assert!(
                        KINDS.contains(&e.kind),
                        "case {i}: unexpected kind {e} for {:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                    *outcomes.entry(e.kind).or_default() += 1;
                }
            }
        }
        // The mutations reach every way of failing, and many still parse.
        for kind in [
            "ok",
            "not-http",
            "bad-status",
            "bad-length",
            "bad-chunk",
            "truncated",
        ] {
            assert!(
                outcomes.get(kind).copied().unwrap_or(0) > 20,
                "{kind}: {outcomes:?}"
            );
        }
    }

    #[test]
    fn a_body_cut_short_is_truncated_and_a_wrapping_chunk_too_large() {
        let mut rng = Rng(7);
        let e = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            &mut rng,
        )
        .err()
        .unwrap();
        assert_eq!(e.kind, "truncated");
        let wrap = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n{:x}\r\nxx",
            usize::MAX - 5
        );
        assert_eq!(
            parse(wrap.into_bytes(), &mut rng).err().unwrap().kind,
            "too-large"
        );
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello, w";
        assert_eq!(
            parse(two.to_vec(), &mut rng).err().unwrap().kind,
            "bad-length"
        );
        let neg = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(
            parse(neg.to_vec(), &mut rng).err().unwrap().kind,
            "bad-length"
        );
        let garbage = b"\x00\x01 this is not HTTP at all\r\n\r\n";
        let e = parse(garbage.to_vec(), &mut rng).err().unwrap();
        assert_eq!(e.kind, "not-http");
        assert!(e.message.contains("\\x00\\x01 this is not HTTP"), "{e}");
        // HEAD: no body is read, the declared length is reported.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n";
        let mut conn = BufReader::new(&head[..]);
        let (resp, reusable) = read_response(&mut conn, Method::Head, 10, &|_| true).unwrap();
        assert_eq!(
            (resp.length, resp.body.len(), reusable),
            (Some(123456), 0, true)
        );
        // An unwanted large body is left unread; a small one is read.
        let big = b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: 9999999\r\n\r\n%PDF";
        let mut conn = BufReader::new(&big[..]);
        let (resp, reusable) =
            read_response(&mut conn, Method::Get, 100 << 20, &|_| false).unwrap();
        assert_eq!(
            (resp.length, resp.body.len(), reusable),
            (Some(9999999), 0, false)
        );
        let small = b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 4\r\n\r\na{b}";
        let mut conn = BufReader::new(&small[..]);
        let (resp, reusable) = read_response(&mut conn, Method::Get, 100, &|_| false).unwrap();
        assert_eq!((resp.body, reusable), (b"a{b}".to_vec(), true));
    }
}
