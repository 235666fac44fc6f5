//! The crawler example, run as a newcomer runs it: against its embedded demo
//! site (exact counts from the site's generator, examples/crawler/site.rs)
//! and against a deliberately broken server (every failure reported per URL,
//! the crawl goes on, nothing hangs past its timeout).

// The crawler's HTTP client, robots.txt and link-extraction modules, compiled here so
// their unit tests run with `cargo test` (an example's own tests would need
// `test = true`, which stops cargo from building the runnable binary).
#[allow(dead_code)]
#[path = "../examples/crawler/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../examples/crawler/links.rs"]
mod links;
#[allow(dead_code)]
#[path = "../examples/crawler/robots.rs"]
mod robots;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The demo site's shape (examples/crawler/site.rs).
const SECTIONS: usize = 40;
const ARTICLES: usize = 50;

fn crawler() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("crawler")
}

fn out_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sylvan-crawl-{tag}-{}.jsonl", std::process::id()))
}

/// Runs the crawler with `args`, expecting exit status `code`.
fn run(args: &[&str], out: &PathBuf, code: i32) -> (String, Vec<serde_json::Value>, Duration) {
    let start = Instant::now();
    let res = Command::new(crawler())
        .args(args)
        .arg("--quiet")
        .arg("--output")
        .arg(out)
        .output()
        .expect("run the crawler example (cargo builds it for `cargo test`)");
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&res.stdout).to_string();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(
        res.status.code(),
        Some(code),
        "crawler's exit status:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let text = std::fs::read_to_string(out).unwrap();
    std::fs::remove_file(out).unwrap();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    (stdout, records, took)
}

fn path_of(r: &serde_json::Value) -> String {
    let url = url::Url::parse(r["url"].as_str().unwrap()).unwrap();
    url.path().to_string()
}

#[test]
fn crawls_the_demo_site_and_finds_exactly_its_pages() {
    let out = out_file("demo");
    // The site has broken links (404s, a redirect loop): exit status 1.
    let (stdout, records, _) = run(&["--concurrency", "16"], &out, 1);
    let by_path: HashMap<String, &serde_json::Value> =
        records.iter().map(|r| (path_of(r), r)).collect();
    assert_eq!(by_path.len(), records.len(), "every URL is recorded once");

    let status = |code: u64| records.iter().filter(|r| r["status"] == code).count();
    // index + sections + articles + /slow + /redirect/1 (ends at /about) + CSV
    // + the https half: /secure, /secure/page, and the redirects between
    // the schemes /to-secure and /back-to-http
    assert_eq!(status(200), 1 + SECTIONS + SECTIONS * ARTICLES + 2 + 1 + 4);
    // every tenth article links to a missing page
    assert_eq!(status(404), SECTIONS * ARTICLES / 10);
    for s in 0..SECTIONS {
        assert_eq!(by_path[&format!("/section/{s}")]["status"], 200);
        for a in 0..ARTICLES {
            let r = by_path[&format!("/article/{s}/{a}")];
            assert_eq!(r["status"], 200, "{r}");
            let links = 1 + usize::from(a > 0) + usize::from(a + 1 < ARTICLES) + 3;
            let links = links + usize::from(a % 10 == 9);
            assert!(r["links"].as_u64().unwrap() as usize <= links, "{r}");
        }
    }
    let redirect = by_path["/redirect/1"];
    assert_eq!(redirect["status"], 200);
    assert!(redirect["final_url"].as_str().unwrap().ends_with("/about"));
    assert!(
        !by_path.contains_key("/redirect/2"),
        "followed within the chain"
    );
    assert_eq!(by_path["/loop/a"]["kind"], "redirect-loop");
    // https, with a certificate the crawler was told to trust (the demo's
    // CA), and redirects both ways between http and https.
    let secure = by_path["/secure"];
    assert_eq!(secure["status"], 200, "{secure}");
    assert!(secure["url"].as_str().unwrap().starts_with("https://"));
    assert_eq!(by_path["/secure/page"]["status"], 200);
    let to = by_path["/to-secure"];
    assert!(to["url"].as_str().unwrap().starts_with("http://"));
    assert!(
        to["final_url"].as_str().unwrap().starts_with("https://")
            && to["final_url"]
                .as_str()
                .unwrap()
                .ends_with("/secure/landing"),
        "{to}"
    );
    let back = by_path["/back-to-http"];
    assert!(back["url"].as_str().unwrap().starts_with("https://"));
    assert!(
        back["final_url"].as_str().unwrap().starts_with("http://")
            && back["final_url"]
                .as_str()
                .unwrap()
                .ends_with("/from-secure"),
        "{back}"
    );
    assert_eq!(by_path["/private/secret.html"]["kind"], "skipped");
    assert_eq!(
        by_path["/private/secret.html"]["status"],
        serde_json::Value::Null
    );
    assert_eq!(by_path["/slow"]["status"], 200);
    assert_eq!(by_path["/files/report.csv"]["status"], 200);
    assert_eq!(by_path["/files/report.csv"]["links"], 0);
    assert!(records
        .iter()
        .all(|r| !r["url"].as_str().unwrap().contains("other-host")));
    assert_eq!(records.len(), 2043 + 1 + 200 + 3 + 3);
    assert!(stdout.contains("status   200: 2048, 404: 200"), "{stdout}");
    assert!(stdout.contains("errors   redirect-loop: 1"), "{stdout}");
}

/// A server that gets everything wrong, one path at a time.
fn hostile_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve_hostile(conn));
        }
    });
    port
}

fn serve_hostile(conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        let html = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let reply = match path.as_str() {
            "/" => html(concat!(
                "<a href=/http10>a</a><a href=/close>b</a><a href=/garbage>c</a>",
                "<a href=/truncated>d</a><a href=/huge>e</a><a href=/hang>f</a>",
                "<a href=/badchunk>g</a><a href=/toomany/0>h</a>",
                "<a href='http://127.0.0.1:1/refused'>i</a><a href='http://[::1'>j</a>",
                "<a href=/badlocation>k</a><a href=/badstatus>l</a><a href=/ftp>m</a>"
            )),
            "/badlocation" => {
                "HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n".into()
            }
            "/badstatus" => "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n".into(),
            "/ftp" => {
                "HTTP/1.1 301 Moved\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n"
                    .into()
            }
            "/robots.txt" => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
            "/http10" => {
                // HTTP/1.0, no length: the body ends when the connection does.
                let _ = conn.write_all(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<a href=/>home</a>",
                );
                return;
            }
            "/close" => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\nbye!");
                return;
            }
            "/garbage" => {
                let _ = conn.write_all(b"\x00\x01 this is not HTTP at all\r\n\r\n");
                return;
            }
            "/truncated" => {
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this much");
                return;
            }
            "/huge" => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 500000000\r\n\r\n");
                let chunk = vec![b'x'; 65536];
                while conn.write_all(&chunk).is_ok() {}
                return;
            }
            "/hang" => {
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            "/badchunk" => {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
                );
                return;
            }
            p if p.starts_with("/toomany/") => {
                let n: u32 = p["/toomany/".len()..].parse().unwrap_or(0);
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: /toomany/{}\r\nContent-Length: 0\r\n\r\n",
                    n + 1
                )
            }
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
        };
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn broken_servers_and_bad_input_are_reported_per_url() {
    let port = hostile_server();
    let base = format!("http://127.0.0.1:{port}/");
    let out = out_file("hostile");
    let (stdout, records, took) = run(
        &[
            &base,
            "not a url",
            "--timeout",
            "1s",
            "--max-body",
            "1000000",
            "--max-redirects",
            "3",
        ],
        &out,
        1,
    );
    let kind: HashMap<String, (serde_json::Value, serde_json::Value)> = records
        .iter()
        .map(|r| (path_of(r), (r["status"].clone(), r["kind"].clone())))
        .collect();
    let ok = |p: &str| {
        assert_eq!(kind[p].0, 200, "{p}: {:?}", kind[p]);
        assert_eq!(kind[p].1, serde_json::Value::Null, "{p}");
    };
    ok("/");
    ok("/http10");
    ok("/close");
    assert_eq!(kind["/garbage"].1, "not-http");
    assert_eq!(kind["/truncated"].1, "truncated");
    assert_eq!(kind["/huge"].1, "too-large");
    assert_eq!(kind["/hang"].1, "timeout");
    assert_eq!(kind["/badchunk"].1, "bad-chunk");
    assert_eq!(kind["/toomany/0"].1, "too-many-redirects");
    assert_eq!(kind["/refused"].1, "connect");
    assert_eq!(kind["/badlocation"].1, "bad-redirect");
    assert_eq!(kind["/badstatus"].1, "bad-status");
    assert_eq!(kind["/ftp"].1, "unsupported");
    assert!(stdout.contains("bad-url: 1"), "{stdout}");
    // The hanging page is cut off by its 1 s timeout; nothing else waits.
    assert!(took < Duration::from_secs(8), "took {took:?}");
}
