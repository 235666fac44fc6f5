//! A concurrent web crawler written as plain blocking code on fibers, in the
//! gevent tradition: a `Pool` of fetchers, a `Queue` as the frontier, an
//! HTTP/1.1 client on `sylvan::net::TcpStream`, and `sylvan::timeout` around
//! each request.
//!
//! ```text
//! cargo run --release --example crawler                   # crawls the embedded demo site
//! cargo run --release --example crawler -- http://host/   # crawls real sites
//! cargo run --release --example crawler -- --help
//! ```

// The duration parser the server examples use too.
#[path = "../common/duration.rs"]
mod duration;
mod http;
mod links;
mod robots;
mod site;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use sylvan::sync::{AsyncResult, Event, Pool, Queue, Semaphore};
use url::Url;

use crate::http::{Client, FetchError};
use crate::robots::Robots;

/// Crawl web sites concurrently (HTTP/1.1; https is not supported yet).
/// With no URL, crawls an embedded demo site served on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "crawler", version)]
struct Args {
    /// Start URLs (http://...). None: start the embedded demo site and crawl it.
    urls: Vec<String>,
    /// How many pages are fetched at once (the size of the fetcher Pool).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How many requests may be in flight to any one host at once.
    #[arg(long, default_value_t = 8)]
    per_host: usize,
    /// Stop scheduling new URLs after this many.
    #[arg(long, default_value_t = 10_000)]
    max_pages: usize,
    /// How many links deep to follow from the start URLs.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Per request (connect + send + read), e.g. 10s, 500ms.
    #[arg(long, default_value = "10s", value_parser = duration::parse_duration)]
    timeout: Duration,
    /// Follow links only to the start URLs' hosts (the default).
    #[arg(long, conflicts_with = "all_hosts")]
    same_host: bool,
    /// Follow links to any host.
    #[arg(long)]
    all_hosts: bool,
    /// Write one JSON object per URL to FILE (url, status, bytes, links, ms, error).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The User-Agent header (its first word is matched against robots.txt).
    #[arg(long, default_value = "sylvan-crawler/0.1")]
    user_agent: String,
    /// Largest response body accepted, in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_body: usize,
    /// Most redirects followed for one URL.
    #[arg(long, default_value_t = 5)]
    max_redirects: usize,
    /// Worker threads of the runtime (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What happened to one URL.
struct Record {
    url: Url,
    status: Option<u16>,
    bytes: usize,
    links: usize,
    ms: u128,
    final_url: Option<Url>,
    outcome: Outcome,
}

enum Outcome {
    Fetched,
    Skipped(&'static str),
    Failed(FetchError),
}

#[derive(Default)]
struct Stats {
    by_status: BTreeMap<u16, usize>,
    errors: BTreeMap<&'static str, usize>,
    skipped: BTreeMap<&'static str, usize>,
    bytes: usize,
    other_hosts: usize,
    over_limit: usize,
}

/// The shared state of one crawl.
struct Crawl {
    client: Client,
    timeout: Duration,
    depth: usize,
    max_pages: usize,
    per_host: usize,
    user_agent: String,
    /// Hosts links may lead to (None: any).
    hosts: Option<HashSet<String>>,
    frontier: Queue<(Url, usize)>,
    /// URLs queued or being fetched; the crawl ends when it drops to 0.
    outstanding: AtomicUsize,
    scheduled: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    in_flight: AtomicUsize,
    seen: Mutex<HashSet<String>>,
    robots: Mutex<HashMap<String, Arc<AsyncResult<Arc<Robots>>>>>,
    host_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    stats: Mutex<Stats>,
    output: Option<Mutex<BufWriter<File>>>,
}

fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Crawl {
    fn in_scope(&self, url: &Url) -> bool {
        match (&self.hosts, url.host_str()) {
            (None, _) => true,
            (Some(hosts), Some(h)) => hosts.contains(h),
            (Some(_), None) => false,
        }
    }

    /// Schedules `url` unless it was seen, is out of scope or over budget.
    fn offer(&self, url: Url, depth: usize) {
        if !lock(&self.seen).insert(url.as_str().to_string()) {
            return;
        }
        if !self.in_scope(&url) {
            lock(&self.stats).other_hosts += 1;
            return;
        }
        if self.scheduled.fetch_add(1, Ordering::SeqCst) >= self.max_pages {
            self.scheduled.fetch_sub(1, Ordering::SeqCst);
            lock(&self.stats).over_limit += 1;
            return;
        }
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if self.frontier.put((url, depth)).is_err() {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A redirect hop to `next`: follow it only if it is new and in scope.
    fn claim_redirect(&self, next: &Url) -> bool {
        self.in_scope(next) && lock(&self.seen).insert(next.as_str().to_string())
    }

    /// robots.txt of `url`'s origin, fetched once (other fibers wait for it).
    fn robots(&self, url: &Url) -> Arc<Robots> {
        let key = origin(url);
        let (cell, mine) = {
            let mut map = lock(&self.robots);
            match map.get(&key) {
                Some(c) => (c.clone(), false),
                None => {
                    let c = Arc::new(AsyncResult::new());
                    map.insert(key, c.clone());
                    (c, true)
                }
            }
        };
        if mine {
            // Set it however the fetch ends, so no waiter is stranded.
            struct SetOnDrop<'a>(&'a AsyncResult<Arc<Robots>>, Option<Robots>);
            impl Drop for SetOnDrop<'_> {
                fn drop(&mut self) {
                    let r = self.1.take().unwrap_or_else(Robots::allow_all);
                    self.0.set(Arc::new(r));
                }
            }
            let mut guard = SetOnDrop(&cell, None);
            let robots_url = url.join("/robots.txt").expect("an http URL joins a path");
            let fetched = sylvan::timeout(self.timeout, || self.client.get(&robots_url, |_| true));
            guard.1 = Some(match fetched {
                Ok(Ok(r)) if r.status == 200 => {
                    Robots::parse(&String::from_utf8_lossy(&r.body), &self.user_agent)
                }
                // RFC 9309: a server error means "assume everything is disallowed".
                Ok(Ok(r)) if r.status >= 500 => {
                    Robots::parse("User-agent: *\nDisallow: /\n", &self.user_agent)
                }
                // 4xx, or unreachable: the page fetch itself will report why.
                _ => Robots::allow_all(),
            });
        }
        cell.get()
    }

    fn host_limit(&self, url: &Url) -> Arc<Semaphore> {
        lock(&self.host_limits)
            .entry(origin(url))
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Fetches one URL, records the outcome and offers the links it found.
    fn visit(&self, url: Url, depth: usize) {
        // However this ends (even by a bug's panic), the URL is no longer
        // outstanding; the last one closes the frontier.
        struct Finished<'a>(&'a Crawl);
        impl Drop for Finished<'_> {
            fn drop(&mut self) {
                if self.0.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.0.frontier.close();
                }
            }
        }
        let _finished = Finished(self);
        let start = Instant::now();
        let mut record = Record {
            url: url.clone(),
            status: None,
            bytes: 0,
            links: 0,
            ms: 0,
            final_url: None,
            outcome: Outcome::Fetched,
        };
        let mut found = Vec::new();
        if url.scheme() == "https" {
            record.outcome = Outcome::Failed(FetchError::new(
                "https-unsupported",
                "https not supported yet",
            ));
        } else if !self.robots(&url).allowed(&path_and_query(&url)) {
            record.outcome = Outcome::Skipped("robots.txt");
        } else {
            let limit = self.host_limit(&url);
            let _permit = limit.acquire();
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            let fetched = sylvan::timeout(self.timeout, || {
                self.client.get(&url, |next| self.claim_redirect(next))
            });
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            match fetched {
                Err(_) => {
                    let e = FetchError::new(
                        "timeout",
                        format!("no complete response within {:?}", self.timeout),
                    );
                    record.outcome = Outcome::Failed(e);
                }
                Ok(Err(e)) => record.outcome = Outcome::Failed(e),
                Ok(Ok(resp)) => {
                    record.status = Some(resp.status);
                    record.bytes = resp.body.len();
                    let html = resp
                        .content_type
                        .as_deref()
                        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
                    if html && resp.status == 200 {
                        found = links::extract(&resp.body, &resp.final_url);
                        record.links = found.len();
                    }
                    if resp.redirects > 0 {
                        record.final_url = Some(resp.final_url);
                    }
                }
            }
        }
        record.ms = start.elapsed().as_millis();
        self.record(&record);
        if depth < self.depth {
            for link in found {
                self.offer(link, depth + 1);
            }
        }
    }

    fn record(&self, r: &Record) {
        self.done.fetch_add(1, Ordering::Relaxed);
        {
            let mut stats = lock(&self.stats);
            if let Some(s) = r.status {
                *stats.by_status.entry(s).or_default() += 1;
            }
            stats.bytes += r.bytes;
            match &r.outcome {
                Outcome::Fetched => {}
                Outcome::Skipped(why) => *stats.skipped.entry(why).or_default() += 1,
                Outcome::Failed(e) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    *stats.errors.entry(e.kind).or_default() += 1;
                }
            }
        }
        if let Some(out) = &self.output {
            let (error, kind) = match &r.outcome {
                Outcome::Fetched => (None, None),
                Outcome::Skipped(why) => (Some(format!("skipped: {why}")), Some("skipped")),
                Outcome::Failed(e) => (Some(e.message.clone()), Some(e.kind)),
            };
            let line = serde_json::json!({
                "url": r.url.as_str(),
                "status": r.status,
                "bytes": r.bytes,
                "links": r.links,
                "ms": r.ms as u64,
                "error": error,
                "kind": kind,
                "final_url": r.final_url.as_ref().map(Url::as_str),
            });
            let mut out = lock(out);
            if let Err(e) = writeln!(out, "{line}") {
                eprintln!("crawler: writing the output file failed: {e}");
            }
        }
    }
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

fn main() {
    let args = Args::parse();
    if args.concurrency == 0 || args.per_host == 0 {
        eprintln!("crawler: --concurrency and --per-host must be at least 1");
        std::process::exit(2);
    }
    let mut builder = sylvan::Runtime::builder();
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crawler: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(move || run(args));
    std::process::exit(code);
}

fn run(args: Args) -> i32 {
    let mut starts = args.urls.clone();
    if starts.is_empty() {
        match site::start() {
            Ok(addr) => {
                eprintln!(
                    "crawler: no URL given; crawling the embedded demo site at http://{addr}/ \
                     ({} sections x {} articles, 404s, redirects, a slow page, robots.txt)",
                    site::SECTIONS,
                    site::ARTICLES
                );
                starts.push(format!("http://{addr}/"));
            }
            Err(e) => {
                eprintln!("crawler: cannot start the demo site: {e}");
                return 1;
            }
        }
    }
    let output = match &args.output {
        None => None,
        Some(path) => match File::create(path) {
            Ok(f) => Some(Mutex::new(BufWriter::new(f))),
            Err(e) => {
                eprintln!("crawler: cannot create {}: {e}", path.display());
                return 1;
            }
        },
    };
    let mut start_urls = Vec::new();
    let mut bad = Vec::new();
    for s in &starts {
        match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                start_urls.push(u)
            }
            Ok(u) => bad.push((
                s.clone(),
                format!("unsupported URL scheme {:?}", u.scheme()),
            )),
            Err(e) => bad.push((s.clone(), format!("malformed URL: {e}"))),
        }
    }
    let hosts = (!args.all_hosts).then(|| {
        start_urls
            .iter()
            .filter_map(|u| u.host_str().map(str::to_string))
            .collect::<HashSet<_>>()
    });
    let crawl = Arc::new(Crawl {
        client: Client::new(
            args.user_agent.clone(),
            args.max_body,
            args.max_redirects,
            args.timeout,
        ),
        timeout: args.timeout,
        depth: args.depth,
        max_pages: args.max_pages,
        per_host: args.per_host,
        user_agent: args.user_agent.clone(),
        hosts,
        frontier: Queue::unbounded(),
        outstanding: AtomicUsize::new(0),
        scheduled: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        seen: Mutex::new(HashSet::new()),
        robots: Mutex::new(HashMap::new()),
        host_limits: Mutex::new(HashMap::new()),
        stats: Mutex::new(Stats::default()),
        output,
    });
    for (s, why) in &bad {
        eprintln!("crawler: skipping {s:?}: {why}");
        *lock(&crawl.stats).errors.entry("bad-url").or_default() += 1;
    }
    let started = Instant::now();
    for u in start_urls {
        crawl.offer(u, 0);
    }
    if crawl.outstanding.load(Ordering::SeqCst) == 0 {
        crawl.frontier.close();
    }

    let finished = Arc::new(Event::new());
    let progress = (std::io::stderr().is_terminal() && !args.quiet).then(|| {
        let (crawl, finished) = (crawl.clone(), finished.clone());
        sylvan::spawn(move || {
            while !finished.wait_timeout(Duration::from_millis(200)) {
                let secs = started.elapsed().as_secs_f64();
                let done = crawl.done.load(Ordering::Relaxed);
                eprint!(
                    "\r\x1b[2K{done} done, {} in flight, {} queued, {} errors, {:.0} pages/s",
                    crawl.in_flight.load(Ordering::Relaxed),
                    crawl.frontier.len(),
                    crawl.failed.load(Ordering::Relaxed),
                    done as f64 / secs.max(1e-9)
                );
            }
            eprint!("\r\x1b[2K");
        })
    });

    let pool = Pool::new(args.concurrency);
    while let Some((url, depth)) = crawl.frontier.get() {
        let crawl = crawl.clone();
        pool.spawn(move || crawl.visit(url, depth));
    }
    pool.join();
    let elapsed = started.elapsed();
    finished.set();
    if let Some(p) = progress {
        let _ = p.join();
    }
    if let Some(out) = &crawl.output {
        if let Err(e) = lock(out).flush() {
            eprintln!("crawler: writing the output file failed: {e}");
        }
    }
    print_summary(&crawl, elapsed);
    0
}

fn print_summary(crawl: &Crawl, elapsed: Duration) {
    let stats = lock(&crawl.stats);
    let done = crawl.done.load(Ordering::Relaxed);
    let fetched: usize = stats.by_status.values().sum();
    let secs = elapsed.as_secs_f64();
    println!(
        "crawled {done} URLs in {secs:.2} s ({:.0} pages/s): {fetched} responses, {:.1} MB",
        fetched as f64 / secs.max(1e-9),
        stats.bytes as f64 / 1e6
    );
    let statuses: Vec<String> = stats
        .by_status
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    println!(
        "  status   {}",
        if statuses.is_empty() {
            "-".into()
        } else {
            statuses.join(", ")
        }
    );
    let errors: Vec<String> = stats
        .errors
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    println!(
        "  errors   {}",
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(", ")
        }
    );
    let mut skipped: Vec<String> = stats
        .skipped
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    if stats.other_hosts > 0 {
        skipped.push(format!("other hosts: {}", stats.other_hosts));
    }
    if stats.over_limit > 0 {
        skipped.push(format!("over --max-pages: {}", stats.over_limit));
    }
    println!(
        "  skipped  {}",
        if skipped.is_empty() {
            "none".into()
        } else {
            skipped.join(", ")
        }
    );
    if let Some(n) = stats.errors.get("https-unsupported") {
        println!("  note     {n} https:// URL(s) were not fetched: https is not supported yet");
    }
}
