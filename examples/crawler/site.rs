//! The embedded demo site: an HTTP/1.1 server (a fiber per connection,
//! keep-alive, httparse) serving a generated site, so the crawler has
//! something real to crawl on a machine without internet.
//!
//! The site, and what a same-host crawl of it must find:
//! * `/`: links to every section, a CSV file, a redirect chain, a slow page,
//!   a redirect loop, a page robots.txt forbids, the https half, another
//!   host and a `mailto:` link;
//! * `/section/{s}` for s < SECTIONS, served chunked: links to its articles;
//! * `/article/{s}/{a}` for a < ARTICLES, served with Content-Length: links
//!   to its section, its neighbours and three related articles; every tenth
//!   article also links to a missing page (404);
//! * `/redirect/1` → `/redirect/2` → `/redirect/3` → `/about` (302s);
//! * `/loop/a` ⇄ `/loop/b` (a redirect loop); `/slow` answers after
//!   SLOW_MS; `/files/report.csv` is HTTP/1.0, delimited by closing the
//!   connection; `/robots.txt` disallows `/private/`;
//! * its https half, on a second port with a certificate made at start:
//!   `/secure` links to `/secure/page` and to `/back-to-http` (302 to the
//!   plain site's `/from-secure`); the plain site's `/to-secure` redirects
//!   to `https://…/secure/landing`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sylvan::net::tls::TlsAcceptor;
use sylvan::net::TcpListener;

pub const SECTIONS: usize = 40;
pub const ARTICLES: usize = 50;
pub const SLOW_MS: u64 = 1500;

/// The running demo site.
pub struct Demo {
    /// Where the plain HTTP site listens.
    pub http: SocketAddr,
    /// Where its https part listens (a certificate for 127.0.0.1 made at
    /// start by rcgen, signed by a CA of its own).
    pub https: SocketAddr,
    /// That CA's certificate (PEM): what a client must trust.
    pub ca_pem: String,
}

/// Starts the site on 127.0.0.1 (any free ports) on the current runtime:
/// plain HTTP on one port, https on another.
pub fn start() -> io::Result<Demo> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let http = listener.local_addr()?;
    let tls_listener = TcpListener::bind("127.0.0.1:0")?;
    let https = tls_listener.local_addr()?;
    let (acceptor, ca_pem) = demo_tls()?;
    let ports = Ports {
        http: http.port(),
        https: https.port(),
    };
    sylvan::Builder::new().name("demo-site").spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    sylvan::spawn(move || serve(conn, ports));
                }
                Err(e) => eprintln!("demo site: accept: {e}"),
            }
        }
    })?;
    sylvan::Builder::new()
        .name("demo-site-tls")
        .spawn(move || {
            for conn in tls_listener.incoming() {
                match conn {
                    Ok(conn) => {
                        let acceptor = acceptor.clone();
                        sylvan::spawn(move || match acceptor.accept(conn) {
                            Ok(tls) => serve(tls, ports),
                            Err(e) => eprintln!("demo site: tls: {e}"),
                        });
                    }
                    Err(e) => eprintln!("demo site: accept: {e}"),
                }
            }
        })?;
    Ok(Demo {
        http,
        https,
        ca_pem,
    })
}

/// A CA and a certificate for 127.0.0.1 signed by it, made now.
fn demo_tls() -> io::Result<(TlsAcceptor, String)> {
    let failed = |e: rcgen::Error| io::Error::other(format!("making the demo certificate: {e}"));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sylvan demo CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(failed)?)
        .map_err(failed)?;
    let key = KeyPair::generate().map_err(failed)?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(failed)?
        .signed_by(&key, &ca)
        .map_err(failed)?;
    let chain = format!("{}{}", cert.pem(), ca.pem());
    let acceptor = TlsAcceptor::from_pem(chain.as_bytes(), key.serialize_pem().as_bytes())?;
    Ok((acceptor, ca.pem()))
}

/// The site's two ports, for absolute links between its halves.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    https: u16,
}

struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Chunked transfer encoding instead of Content-Length.
    chunked: bool,
    /// HTTP/1.0 with the body delimited by closing the connection.
    close_delimited: bool,
}

impl Response {
    fn html(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: body.into_bytes(),
            chunked: false,
            close_delimited: false,
        }
    }

    fn status(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: "text/plain",
            headers: Vec::new(),
            body: text.as_bytes().to_vec(),
            chunked: false,
            close_delimited: false,
        }
    }

    fn redirect(to: &str) -> Response {
        let mut r = Response::status(302, "moved\n");
        r.headers.push(("Location", to.to_string()));
        r
    }
}

fn page(title: &str, links: &[String]) -> String {
    let mut s = format!(
        "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><ul>\n"
    );
    for l in links {
        s.push_str(&format!("<li><a href=\"{l}\">{l}</a></li>\n"));
    }
    s.push_str("</ul></body></html>\n");
    s
}

fn route(path: &str, ports: Ports) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => {
            let mut links: Vec<String> = (0..SECTIONS).map(|s| format!("/section/{s}")).collect();
            links.push("/section/0#top".into()); // same page: the fragment goes
            links.extend(
                [
                    "/files/report.csv",
                    "/redirect/1",
                    "/slow",
                    "/loop/a",
                    "/private/secret.html",
                    "mailto:demo@example.invalid",
                    "http://other-host.invalid/",
                ]
                .map(String::from),
            );
            links.push(format!("https://127.0.0.1:{}/secure", ports.https));
            links.push("/to-secure".into());
            Response::html(page("sylvan demo site", &links))
        }
        ["robots.txt"] => {
            let mut r = Response::status(200, "User-agent: *\nDisallow: /private/\n");
            r.chunked = true;
            r
        }
        ["section", s] => match s.parse::<usize>() {
            Ok(s) if s < SECTIONS => {
                let mut links: Vec<String> =
                    (0..ARTICLES).map(|a| format!("/article/{s}/{a}")).collect();
                links.push("/".into());
                let mut r = Response::html(page(&format!("Section {s}"), &links));
                r.chunked = true;
                r
            }
            _ => Response::status(404, "no such section\n"),
        },
        ["article", s, a] => match (s.parse::<usize>(), a.parse::<usize>()) {
            (Ok(s), Ok(a)) if s < SECTIONS && a < ARTICLES => {
                let mut links = vec![format!("../../section/{s}")]; // relative
                if a > 0 {
                    links.push(format!("/article/{s}/{}", a - 1));
                }
                if a + 1 < ARTICLES {
                    links.push(format!("{}", a + 1)); // relative to /article/{s}/
                }
                for k in 1..=3 {
                    let rs = (s * 7 + a * 3 + k * 11) % SECTIONS;
                    let ra = (a * 13 + k * 17) % ARTICLES;
                    links.push(format!("/article/{rs}/{ra}"));
                }
                if a % 10 == 9 {
                    links.push(format!("/article/{s}/missing-{a}"));
                }
                Response::html(page(&format!("Article {s}.{a}"), &links))
            }
            _ => Response::status(404, "no such article\n"),
        },
        ["redirect", n] => match n.parse::<u32>() {
            Ok(n @ 1..=2) => Response::redirect(&format!("/redirect/{}", n + 1)),
            Ok(3) => Response::redirect("/about"),
            _ => Response::status(404, "no such redirect\n"),
        },
        ["about"] => Response::html(page("About", &["/".to_string()])),
        // The https half (served on both ports; linked only over https).
        ["secure"] => Response::html(page(
            "A secure page",
            &["/secure/page".to_string(), "/back-to-http".to_string()],
        )),
        ["secure", "page" | "landing"] => Response::html(page(
            "Another secure page",
            &[format!("http://127.0.0.1:{}/", ports.http)],
        )),
        ["to-secure"] => {
            Response::redirect(&format!("https://127.0.0.1:{}/secure/landing", ports.https))
        }
        ["back-to-http"] => {
            Response::redirect(&format!("http://127.0.0.1:{}/from-secure", ports.http))
        }
        ["from-secure"] => Response::html(page("Back on http", &["/".to_string()])),
        ["loop", "a"] => Response::redirect("/loop/b"),
        ["loop", "b"] => Response::redirect("/loop/a"),
        ["slow"] => {
            sylvan::sleep(Duration::from_millis(SLOW_MS));
            Response::html(page("A slow page", &["/".to_string()]))
        }
        ["files", "report.csv"] => {
            let mut body = String::from("section,articles\n");
            for s in 0..SECTIONS {
                body.push_str(&format!("{s},{ARTICLES}\n"));
            }
            let mut r = Response::status(200, &body);
            r.content_type = "text/csv";
            r.close_delimited = true;
            r
        }
        _ => Response::status(404, "not found\n"),
    }
}

/// One connection (plain or TLS): requests in a loop until the client
/// closes or asks to.
fn serve<S: Read + Write>(conn: S, ports: Ports) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut head = Vec::new();
        loop {
            let before = head.len();
            match reader.read_until(b'\n', &mut head) {
                Ok(0) => return, // closed between requests
                Ok(_) => {}
                Err(_) => return,
            }
            let line = &head[before..];
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            if head.len() > 16 * 1024 {
                let _ = reader.get_mut().write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
                return;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let (path, keep_alive, head_only) = match req.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                let close = req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                });
                let path = req.path.unwrap_or("/").to_string();
                let head_only = req.method == Some("HEAD");
                (path, !close && req.version == Some(1), head_only)
            }
            _ => {
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                );
                return;
            }
        };
        let path = path.split('?').next().unwrap_or("/").to_string();
        let resp = route(&path, ports);
        let keep_alive = keep_alive && !resp.close_delimited;
        if write_response(reader.get_mut(), &resp, keep_alive, head_only).is_err() || !keep_alive {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        _ => "Unknown",
    }
}

/// Writes `r`; for a HEAD request (`head_only`) the head alone, with the
/// Content-Length the body would have had.
fn write_response(
    w: &mut impl Write,
    r: &Response,
    keep_alive: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let version = if r.close_delimited {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut head = format!(
        "{version} {} {}\r\nContent-Type: {}\r\nServer: sylvan-demo\r\n",
        r.status,
        reason(r.status),
        r.content_type
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    let mut out = Vec::with_capacity(head.len() + r.body.len() + 64);
    if head_only {
        if !r.chunked && !r.close_delimited {
            head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
    } else if r.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        out.extend_from_slice(head.as_bytes());
        for chunk in r.body.chunks(1000) {
            out.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else if r.close_delimited {
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&r.body);
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", r.body.len()));
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&r.body);
    }
    w.write_all(&out)
}
