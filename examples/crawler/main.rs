//! A concurrent web crawler and link checker written as plain blocking code
//! on fibers, in the gevent tradition: a fixed number of fetcher fibers, a
//! `Queue` as the frontier, an HTTP/1.1 client on `sylvan::net::TcpStream`,
//! and `sylvan::timeout` around each request.
//!
//! ```text
//! cargo run --release --example crawler                   # crawls the embedded demo site
//! cargo run --release --example crawler -- http://host/   # crawls real sites
//! cargo run --release --example crawler -- --help
//! ```
//!
//! Exit status: 0 when nothing broken was found, 1 when a link is broken (a
//! 4xx/5xx answer) or a fetch failed, 2 for a usage error, 3 when the crawl
//! could not run at all, 130 after Ctrl-C (the output is complete up to
//! there, and the summary is printed).

// The duration parser the server examples use too.
#[path = "../common/duration.rs"]
mod duration;
mod http;
mod links;
mod robots;
mod site;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use regex::Regex;
use sylvan::net::tls::TlsConnector;
use sylvan::sync::{AsyncResult, Event, Group, Queue, Semaphore};
use url::Url;

use crate::http::{Client, FetchError, Hop, Method};
use crate::robots::Robots;

/// Exit status: nothing broken found.
const EXIT_OK: i32 = 0;
/// Exit status: broken links or failed fetches were found.
const EXIT_BROKEN: i32 = 1;
/// Exit status: bad arguments (clap uses 2 as well).
const EXIT_USAGE: i32 = 2;
/// Exit status: the crawl could not run (runtime or demo site failed).
const EXIT_CANNOT_RUN: i32 = 3;
/// Exit status: stopped by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: i32 = 130;

/// Crawl web sites concurrently and report every URL found (a link
/// checker). With no URL, crawls an embedded demo site served on 127.0.0.1.
///
/// Exit status: 0 nothing broken; 1 broken links or failed fetches found;
/// 2 usage error; 3 could not run (or the output could not be written);
/// 130 interrupted by Ctrl-C.
#[derive(Parser, Debug)]
#[command(name = "crawler", version)]
struct Args {
    /// Start URLs (http:// or https://; a URL without a scheme is taken as
    /// http://).
    /// None: start the embedded demo site and crawl it.
    urls: Vec<String>,
    /// How many pages are fetched at once (the number of fetcher fibers).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How many requests may be in flight to any one host at once (also how
    /// many keep-alive connections are kept per host).
    #[arg(long, default_value_t = 8)]
    per_host: usize,
    /// Least time between two requests to one host, e.g. 500ms (robots.txt's
    /// Crawl-delay, up to 60 s, is honoured when it is longer).
    #[arg(long, value_parser = parse_delay)]
    delay: Option<Duration>,
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
    /// Also check links to other hosts (one request each; their pages are
    /// not crawled).
    #[arg(long, conflicts_with = "all_hosts")]
    check_external: bool,
    /// Crawl only URLs matching this regular expression (repeatable: any
    /// may match). Start URLs are always crawled.
    #[arg(long, value_name = "REGEX")]
    include: Vec<Regex>,
    /// Skip URLs matching this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    exclude: Vec<Regex>,
    /// Write one JSON object per URL to FILE ("-" for stdout; the summary
    /// then goes to stderr).
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
    /// Also trust the CA certificates in FILE (PEM) for https, besides the
    /// web's roots (repeatable).
    #[arg(long, value_name = "FILE")]
    ca_file: Vec<PathBuf>,
    /// Do not check https certificates at all. Anyone on the path can then
    /// pose as any site: use it only to look at a test server.
    #[arg(long)]
    insecure: bool,
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

/// A URL waiting in the frontier.
struct Job {
    url: Url,
    depth: usize,
    /// Checked only: its links are not followed (a link to another host
    /// under `--check-external`).
    leaf: bool,
}

/// A page URL shared by every link found on it (one allocation per page,
/// not per link).
type PageRef = Arc<str>;

/// Where a URL was linked from.
#[derive(Default)]
struct Refs {
    /// The first page found linking to it.
    first: Option<PageRef>,
    /// How many links to it were seen in all.
    count: usize,
}

impl Refs {
    fn add(&mut self, from: Option<&PageRef>) {
        if let Some(from) = from {
            self.count += 1;
            if self.first.is_none() {
                self.first = Some(from.clone());
            }
        }
    }
}

/// What happened to one URL.
struct Record {
    url: Url,
    depth: usize,
    method: Option<Method>,
    status: Option<u16>,
    bytes: Option<u64>,
    content_type: Option<String>,
    links: usize,
    ms: u128,
    final_url: Option<Url>,
    /// A redirect not followed: its target and why.
    unfollowed: Option<(Url, &'static str)>,
    noindex: bool,
    outcome: Outcome,
}

enum Outcome {
    Fetched,
    Skipped(&'static str),
    Failed(FetchError),
}

impl Record {
    fn new(url: Url, depth: usize) -> Record {
        Record {
            url,
            depth,
            method: None,
            status: None,
            bytes: None,
            content_type: None,
            links: 0,
            ms: 0,
            final_url: None,
            unfollowed: None,
            noindex: false,
            outcome: Outcome::Fetched,
        }
    }

    fn skipped(url: Url, depth: usize, why: &'static str) -> Record {
        let mut r = Record::new(url, depth);
        r.outcome = Outcome::Skipped(why);
        r
    }

    /// A broken link: a failed fetch or an error status.
    fn broken(&self) -> Option<String> {
        match (&self.outcome, self.status) {
            // Not a fault of the link: the crawl was stopped.
            (Outcome::Failed(e), _) if e.kind == "interrupted" => None,
            (Outcome::Failed(e), _) => Some(format!("{}: {}", e.kind, e.message)),
            (_, Some(s)) if s >= 400 => Some(format!("status {s}")),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Stats {
    by_status: BTreeMap<u16, usize>,
    errors: BTreeMap<&'static str, usize>,
    skipped: BTreeMap<&'static str, usize>,
    bytes: u64,
    /// Links to hosts not crawled (without --check-external).
    other_hosts: Cut,
    nofollow_links: usize,
    /// Links cut off by --depth: URL → a page linking to it.
    beyond_depth: Cut,
    /// Links not scheduled because --max-pages was reached.
    over_limit: Cut,
    /// Links left out of pages that had more than MAX_LINKS_PER_PAGE.
    links_dropped: usize,
    /// Broken links: URL and what is wrong.
    broken: Vec<(Url, String)>,
}

/// URLs not crawled for one reason, each with a page linking to it: the
/// first [`Crawl::cut_recorded`] are kept (recorded at the end of the
/// crawl), the rest only counted, so hostile pages cannot grow this without
/// bound.
#[derive(Default)]
struct Cut {
    urls: HashMap<String, (Url, PageRef)>,
    /// Links noted after `urls` was full (repeats included).
    more: usize,
}

/// How many URLs of each kind of cut are kept for the records, at least
/// (more with a larger --max-pages).
const CUT_RECORDED: usize = 10_000;
/// Pages larger than this are parsed on the blocking pool.
const PARSE_ON_POOL_OVER: usize = 256 * 1024;
/// Links taken from one page at most; the rest are counted.
const MAX_LINKS_PER_PAGE: usize = 100_000;

impl Cut {
    fn note(&mut self, cap: usize, key: String, url: &Url, from: &PageRef) {
        if self.urls.contains_key(&key) {
            return;
        }
        if self.urls.len() < cap {
            self.urls.insert(key, (url.clone(), from.clone()));
        } else {
            self.more += 1;
        }
    }

    /// The kept URLs not in `seen` (reached another way), sorted.
    fn unreached(&mut self, seen: &HashMap<String, Refs>) -> Vec<(Url, PageRef)> {
        let mut v: Vec<(Url, PageRef)> = std::mem::take(&mut self.urls)
            .into_values()
            .filter(|(u, _)| !seen.contains_key(u.as_str()))
            .collect();
        v.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        v
    }
}

/// Per-host state: a limit on requests in flight and the politeness clock.
struct HostState {
    permits: Semaphore,
    /// When the next request to this host may start (`--delay`, Crawl-delay).
    next_slot: Mutex<Option<Instant>>,
}

type RobotsCell = Arc<AsyncResult<Result<Arc<Robots>, FetchError>>>;

/// Where the JSON lines go.
type Sink = Box<dyn Write + Send>;

/// The shared state of one crawl.
struct Crawl {
    client: Client,
    timeout: Duration,
    depth: usize,
    max_pages: usize,
    per_host: usize,
    delay: Duration,
    user_agent: String,
    /// Hosts links may lead to (None: any).
    hosts: Option<std::collections::HashSet<String>>,
    check_external: bool,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    frontier: Queue<Job>,
    /// The fetcher fibers (cancelled on Ctrl-C).
    fetchers: Group,
    /// URLs queued or being fetched; the crawl ends when it drops to 0.
    outstanding: AtomicUsize,
    scheduled: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    in_flight: AtomicUsize,
    /// Set on Ctrl-C or a closed output: no new fetches start.
    stopping: AtomicBool,
    interrupted: AtomicBool,
    /// The JSON lines could not be written (not a closed pipe).
    output_error: AtomicBool,
    /// Every URL scheduled (or skipped for good), with where it was linked from.
    seen: Mutex<HashMap<String, Refs>>,
    robots: Mutex<HashMap<String, RobotsCell>>,
    hosts_state: Mutex<HashMap<String, Arc<HostState>>>,
    stats: Mutex<Stats>,
    output: Option<Mutex<Sink>>,
}

impl Crawl {
    /// How many URLs of each kind of cut are kept for the records.
    fn cut_recorded(&self) -> usize {
        self.max_pages.max(CUT_RECORDED)
    }

    fn in_scope(&self, url: &Url) -> bool {
        match (&self.hosts, url.host_str()) {
            (None, _) => true,
            (Some(hosts), Some(h)) => hosts.contains(h),
            (Some(_), None) => false,
        }
    }

    /// Why `url` is filtered out by --include/--exclude, if it is.
    fn filtered(&self, url: &Url) -> Option<&'static str> {
        if self.exclude.iter().any(|r| r.is_match(url.as_str())) {
            return Some("excluded by --exclude");
        }
        if !self.include.is_empty() && !self.include.iter().any(|r| r.is_match(url.as_str())) {
            return Some("not matched by --include");
        }
        None
    }

    /// Schedules `url` (linked from `from` at `depth`) unless it was seen,
    /// is filtered, out of scope, too deep or over budget. Each URL gets one
    /// record, whatever happens to it.
    fn offer(&self, url: Url, depth: usize, from: Option<&PageRef>) {
        let key = url.as_str().to_string();
        if let Some(refs) = lock(&self.seen).get_mut(&key) {
            refs.add(from);
            return;
        }
        // What is not crawled is counted (and, up to `cut_recorded` of each
        // kind, recorded at the end) without entering `seen`: a page, or a
        // site, of endless unique links must not grow the crawl's memory
        // past what its --max-pages calls for.
        if depth > self.depth {
            // Not marked seen: a shorter path to it may still come.
            if let Some(from) = from {
                lock(&self.stats)
                    .beyond_depth
                    .note(self.cut_recorded(), key, &url, from);
            }
            return;
        }
        let leaf = !self.in_scope(&url);
        if leaf && !self.check_external {
            if let Some(from) = from {
                lock(&self.stats)
                    .other_hosts
                    .note(self.cut_recorded(), key, &url, from);
            }
            return;
        }
        if let (Some(why), Some(_)) = (self.filtered(&url), from) {
            let mut refs = Refs::default();
            refs.add(from);
            if lock(&self.seen).insert(key, refs).is_none() {
                self.record(&Record::skipped(url, depth, why));
            }
            return;
        }
        if self.scheduled.fetch_add(1, Ordering::SeqCst) >= self.max_pages {
            self.scheduled.fetch_sub(1, Ordering::SeqCst);
            if let Some(from) = from {
                lock(&self.stats)
                    .over_limit
                    .note(self.cut_recorded(), key, &url, from);
            }
            return;
        }
        {
            let mut seen = lock(&self.seen);
            if let Some(refs) = seen.get_mut(&key) {
                // Offered by another fiber meanwhile: one fetch is enough.
                refs.add(from);
                drop(seen);
                self.scheduled.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let mut refs = Refs::default();
            refs.add(from);
            seen.insert(key, refs);
        }
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if self.frontier.put(Job { url, depth, leaf }).is_err() {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A redirect from `from` to `next`: follow it only if it is new, in
    /// scope, not filtered and allowed by robots.txt.
    fn hop(&self, from: &Url, next: &Url, leaf: bool) -> Hop {
        let Some(next) = links::canonical(next.clone()) else {
            return Hop::Stop("not an http(s) URL");
        };
        if leaf {
            // A link only checked (--check-external): its redirects are
            // followed wherever they lead, to see whether it works; nothing
            // is marked crawled, as nothing is crawled.
            return match self.robots(&next) {
                Ok(r) if !r.allowed(&path_and_query(&next)) => Hop::Stop("robots.txt"),
                Ok(_) => Hop::Follow(next),
                Err(_) => Hop::Stop("robots.txt unreachable"),
            };
        }
        if !self.in_scope(&next) {
            return Hop::Stop("another host");
        }
        if self.filtered(&next).is_some() {
            return Hop::Stop("filtered by --include/--exclude");
        }
        match self.robots(&next) {
            Ok(r) if !r.allowed(&path_and_query(&next)) => return Hop::Stop("robots.txt"),
            Ok(_) => {}
            Err(_) => return Hop::Stop("robots.txt unreachable"),
        }
        let from: PageRef = Arc::from(from.as_str());
        let mut seen = lock(&self.seen);
        if let Some(refs) = seen.get_mut(next.as_str()) {
            refs.add(Some(&from));
            return Hop::Stop("crawled already");
        }
        let mut refs = Refs::default();
        refs.add(Some(&from));
        seen.insert(next.as_str().to_string(), refs);
        Hop::Follow(next)
    }

    /// robots.txt of `url`'s origin, fetched once (other fibers wait for
    /// it). An error when it could not be fetched at all (RFC 9309 then
    /// says to assume everything is disallowed: the pages fail with it).
    fn robots(&self, url: &Url) -> Result<Arc<Robots>, FetchError> {
        // A fetch cut short by its caller's cancellation (the caller's
        // --timeout ran out while following a redirect here) says nothing
        // about the site: it is forgotten, and a waiter asks again (within
        // its own time).
        loop {
            match self.robots_once(url) {
                Err(e) if e.kind == "interrupted" && !self.stopping.load(Ordering::SeqCst) => {}
                r => return r,
            }
        }
    }

    fn robots_once(&self, url: &Url) -> Result<Arc<Robots>, FetchError> {
        let key = http::origin(url);
        let (cell, mine) = {
            let mut map = lock(&self.robots);
            match map.get(&key) {
                Some(c) => (c.clone(), false),
                None => {
                    let c: RobotsCell = Arc::new(AsyncResult::new());
                    map.insert(key, c.clone());
                    (c, true)
                }
            }
        };
        if mine {
            // Set it however the fetch ends (even cancelled), so no waiter
            // is stranded.
            struct SetOnDrop<'a>(
                &'a RobotsCell,
                Option<Result<Arc<Robots>, FetchError>>,
                &'a Crawl,
                String,
            );
            impl Drop for SetOnDrop<'_> {
                fn drop(&mut self) {
                    let r = self.1.take().unwrap_or_else(|| {
                        // Cancelled: not a result to keep.
                        lock(&self.2.robots).remove(&self.3);
                        Err(FetchError::new("interrupted", "robots.txt: interrupted"))
                    });
                    self.0.set(r);
                }
            }
            let mut guard = SetOnDrop(&cell, None, self, http::origin(url));
            let mut robots_url = url.clone();
            robots_url.set_path("/robots.txt");
            robots_url.set_query(None);
            let fetched = sylvan::timeout(self.timeout, || {
                self.client.fetch(
                    &robots_url,
                    Method::Get,
                    |u| Hop::Follow(u.clone()),
                    &|_| true,
                )
            });
            guard.1 = Some(match fetched {
                // RFC 9309 asks for at least 500 KiB to be parsed; more is
                // only a way to make every check slow.
                Ok(Ok(r)) if (200..300).contains(&r.status) => Ok(Arc::new(Robots::parse(
                    &String::from_utf8_lossy(&r.body[..r.body.len().min(robots::MAX_SIZE)]),
                    &self.user_agent,
                ))),
                // RFC 9309: a server error means "assume everything is disallowed".
                Ok(Ok(r)) if (500..600).contains(&r.status) => Ok(Arc::new(Robots::parse(
                    "User-agent: *\nDisallow: /\n",
                    &self.user_agent,
                ))),
                // 4xx ("unavailable"), a status no RFC defines (LinkedIn's
                // 999), an unfollowed redirect: no rules.
                Ok(Ok(_)) => Ok(Arc::new(Robots::allow_all())),
                // Too big or too many redirects: unavailable, no rules.
                Ok(Err(e))
                    if matches!(
                        e.kind,
                        "too-large"
                            | "too-many-redirects"
                            | "redirect-loop"
                            | "bad-redirect"
                            | "unsupported"
                    ) =>
                {
                    Ok(Arc::new(Robots::allow_all()))
                }
                Ok(Err(e)) => Err(FetchError::new(
                    e.kind,
                    format!("robots.txt: {}", e.message),
                )),
                Err(_) => Err(FetchError::new(
                    "timeout",
                    format!("robots.txt: no complete response within {:?}", self.timeout),
                )),
            });
        }
        cell.get()
    }

    /// The politeness state of `url`'s host: one per host name, shared by
    /// its schemes and ports (http://x and https://x are one server to be
    /// polite to; keep-alive pools stay per origin).
    fn host(&self, url: &Url) -> Arc<HostState> {
        lock(&self.hosts_state)
            .entry(url.host_str().unwrap_or("").to_ascii_lowercase())
            .or_insert_with(|| {
                Arc::new(HostState {
                    permits: Semaphore::new(self.per_host),
                    next_slot: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits for this host's next request slot (`--delay`, Crawl-delay).
    fn polite(&self, host: &HostState, robots: &Robots) {
        let delay = self.delay.max(robots.crawl_delay.unwrap_or_default());
        if delay.is_zero() {
            return;
        }
        let at = {
            let mut next = lock(&host.next_slot);
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + delay);
            at
        };
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            sylvan::sleep(wait);
        }
    }

    /// Fetches one URL, records the outcome and offers the links it found.
    fn visit(&self, job: Job) {
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
        // A visit cut short (Ctrl-C cancels the fetchers) still gets its
        // record, so the output names every URL that was started.
        struct Recording<'a>(&'a Crawl, Option<Record>, Instant);
        impl Drop for Recording<'_> {
            fn drop(&mut self) {
                if let Some(mut r) = self.1.take() {
                    r.ms = self.2.elapsed().as_millis();
                    r.outcome = Outcome::Failed(FetchError::new(
                        "interrupted",
                        "the crawl was stopped before this URL was fetched",
                    ));
                    self.0.record(&r);
                }
            }
        }
        let mut recording = Recording(
            self,
            Some(Record::new(job.url.clone(), job.depth)),
            Instant::now(),
        );
        let url = job.url;
        let mut record = Record::new(url.clone(), job.depth);
        let mut found = Vec::new();
        match self.robots(&url) {
            Err(e) => record.outcome = Outcome::Failed(e),
            Ok(robots) if !robots.allowed(&path_and_query(&url)) => {
                record.outcome = Outcome::Skipped("robots.txt");
            }
            Ok(robots) => {
                let host = self.host(&url);
                let _permit = host.permits.acquire();
                self.polite(&host, &robots);
                let method = if job.leaf || likely_not_html(&url) {
                    Method::Head
                } else {
                    Method::Get
                };
                let start = Instant::now();
                self.in_flight.fetch_add(1, Ordering::Relaxed);
                let fetched = sylvan::timeout(self.timeout, || {
                    self.client
                        .fetch(&url, method, |next| self.hop(&url, next, job.leaf), &|ct| {
                            ct.map_or(true, |t| links::is_html(Some(t), b""))
                        })
                });
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                match fetched {
                    Err(_) => {
                        let e = FetchError::new(
                            "timeout",
                            format!(
                                "no complete response within {:?} ({} ms)",
                                self.timeout,
                                start.elapsed().as_millis()
                            ),
                        );
                        record.outcome = Outcome::Failed(e);
                    }
                    Ok(Err(e)) => record.outcome = Outcome::Failed(e),
                    Ok(Ok(resp)) => {
                        record.method = Some(resp.method);
                        record.status = Some(resp.status);
                        record.bytes = resp.length;
                        let html = links::is_html(resp.content_type.as_deref(), &resp.body);
                        record.content_type = resp.content_type;
                        if !job.leaf && html && resp.status == 200 {
                            let extract =
                                || links::extract(&resp.body, &resp.final_url, &self.user_agent);
                            // A big page is tens of milliseconds of parsing:
                            // on the blocking pool (lending it the body), so
                            // the worker's other fetchers go on meanwhile.
                            let page = if resp.body.len() > PARSE_ON_POOL_OVER {
                                sylvan::unblock_scoped(extract)
                            } else {
                                extract()
                            };
                            record.links = page.links.len();
                            record.noindex = page.noindex;
                            lock(&self.stats).nofollow_links += page.nofollow_links;
                            if page.nofollow {
                                lock(&self.stats).nofollow_links += page.links.len();
                            } else {
                                found = page.links;
                                if found.len() > MAX_LINKS_PER_PAGE {
                                    lock(&self.stats).links_dropped +=
                                        found.len() - MAX_LINKS_PER_PAGE;
                                    found.truncate(MAX_LINKS_PER_PAGE);
                                }
                            }
                        }
                        if resp.redirects > 0 {
                            record.final_url = Some(resp.final_url);
                        }
                        record.unfollowed = resp.unfollowed;
                    }
                }
            }
        }
        record.ms = recording.2.elapsed().as_millis();
        recording.1 = None;
        self.record(&record);
        let from: PageRef = Arc::from(record.final_url.as_ref().unwrap_or(&record.url).as_str());
        for link in found {
            self.offer(link, job.depth + 1, Some(&from));
        }
    }

    fn record(&self, r: &Record) {
        self.done.fetch_add(1, Ordering::Relaxed);
        {
            let mut stats = lock(&self.stats);
            if let Some(s) = r.status {
                *stats.by_status.entry(s).or_default() += 1;
            }
            stats.bytes = stats.bytes.saturating_add(r.bytes.unwrap_or(0));
            match &r.outcome {
                Outcome::Fetched => {}
                Outcome::Skipped(why) => *stats.skipped.entry(why).or_default() += 1,
                Outcome::Failed(e) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    *stats.errors.entry(e.kind).or_default() += 1;
                }
            }
            if let Some(what) = r.broken() {
                stats.broken.push((r.url.clone(), what));
            }
        }
        let Some(out) = &self.output else {
            return;
        };
        let (error, kind) = match &r.outcome {
            Outcome::Fetched => (None, None),
            Outcome::Skipped(why) => (Some(format!("skipped: {why}")), Some("skipped")),
            Outcome::Failed(e) => (Some(e.message.clone()), Some(e.kind)),
        };
        let (found_on, referrers) = match lock(&self.seen).get(r.url.as_str()) {
            Some(refs) => (refs.first.as_deref().map(str::to_string), refs.count),
            None => (None, 0),
        };
        let line = serde_json::json!({
            "url": r.url.as_str(),
            "depth": r.depth,
            "method": r.method.map(Method::as_str),
            "status": r.status,
            "bytes": r.bytes,
            "content_type": r.content_type,
            "links": r.links,
            "ms": r.ms as u64,
            "error": error,
            "kind": kind,
            "final_url": r.final_url.as_ref().map(Url::as_str),
            "redirect_not_followed": r.unfollowed.as_ref().map(|(to, why)| {
                serde_json::json!({"to": to.as_str(), "why": why})
            }),
            "noindex": r.noindex,
            "found_on": found_on,
            "referrers": referrers,
        });
        let mut out = lock(out);
        if let Err(e) = writeln!(out, "{line}") {
            self.output_failed(e);
        }
    }

    /// The JSON lines cannot be written: a closed pipe (`| head`) ends the
    /// crawl quietly; any other error is reported once and ends it too.
    fn output_failed(&self, e: io::Error) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            self.output_error.store(true, Ordering::SeqCst);
        }
        if !self.stopping.load(Ordering::SeqCst) && e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("crawler: writing the output failed: {e}; stopping");
        }
        self.stop();
    }

    /// Stops the crawl: no new fetches start, the ones in flight are
    /// cancelled (each still gets its record).
    fn stop(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            self.frontier.close();
            self.fetchers.cancel();
        }
    }
}

/// `--delay`: a duration, or zero (no spacing, the default).
fn parse_delay(s: &str) -> Result<Duration, String> {
    match s.trim().trim_end_matches(['s', 'm']) {
        "0" | "0.0" => Ok(Duration::ZERO),
        _ => duration::parse_duration(s),
    }
}

/// Whether `url`'s path names a file that is not a web page (by its
/// extension): such links are checked with HEAD instead of downloaded.
fn likely_not_html(url: &Url) -> bool {
    const FILES: &[&str] = &[
        "7z", "avi", "bin", "bz2", "css", "csv", "deb", "dmg", "doc", "docx", "eot", "epub", "exe",
        "flac", "gif", "gz", "ico", "iso", "jar", "jpeg", "jpg", "js", "json", "m4a", "mjs", "mkv",
        "mov", "mp3", "mp4", "msi", "ogg", "otf", "pdf", "png", "ppt", "pptx", "rar", "rpm", "svg",
        "tar", "tgz", "tif", "tiff", "ttf", "wasm", "wav", "webm", "webp", "woff", "woff2", "xls",
        "xlsx", "xz", "zip", "zst",
    ];
    let name = url.path().rsplit('/').next().unwrap_or("");
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| FILES.contains(&ext.to_ascii_lowercase().as_str()))
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
        std::process::exit(EXIT_USAGE);
    }
    let mut builder = sylvan::Runtime::builder();
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crawler: cannot start the runtime: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let code = rt.block_on(move || run(args));
    std::process::exit(code);
}

fn run(args: Args) -> i32 {
    let mut starts = args.urls.clone();
    let mut extra_roots = Vec::new();
    if starts.is_empty() {
        match site::start() {
            Ok(demo) => {
                eprintln!(
                    "crawler: no URL given; crawling the embedded demo site at http://{}/ and \
                     https://{}/ ({} sections x {} articles, 404s, redirects, a slow page, \
                     robots.txt; its https certificate is signed by a CA made at start)",
                    demo.http,
                    demo.https,
                    site::SECTIONS,
                    site::ARTICLES
                );
                starts.push(format!("http://{}/", demo.http));
                extra_roots.push(demo.ca_pem);
            }
            Err(e) => {
                eprintln!("crawler: cannot start the demo site: {e}");
                return EXIT_CANNOT_RUN;
            }
        }
    }
    let tls = match tls_connector(&args, &extra_roots) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("crawler: {e}");
            return EXIT_USAGE;
        }
    };
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    let output: Option<Sink> = match &args.output {
        None => None,
        Some(_) if to_stdout => Some(Box::new(BufWriter::new(io::stdout()))),
        Some(path) => match File::create(path) {
            Ok(f) => Some(Box::new(BufWriter::new(f))),
            Err(e) => {
                eprintln!("crawler: cannot create {}: {e}", path.display());
                return EXIT_USAGE;
            }
        },
    };
    let mut start_urls = Vec::new();
    let mut bad = 0;
    for s in &starts {
        match links::parse_start_url(s) {
            Ok((url, note)) => {
                if let Some(note) = note {
                    eprintln!("crawler: {note}");
                }
                start_urls.push(url);
            }
            Err(why) => {
                eprintln!("crawler: skipping {s:?}: {why}");
                bad += 1;
            }
        }
    }
    if start_urls.is_empty() {
        eprintln!("crawler: no usable start URL");
        return EXIT_USAGE;
    }
    let hosts = (!args.all_hosts).then(|| {
        start_urls
            .iter()
            .filter_map(|u| u.host_str().map(str::to_string))
            .collect()
    });
    let crawl = Arc::new(Crawl {
        client: Client::new(
            args.user_agent.clone(),
            args.max_body,
            args.max_redirects,
            args.timeout,
            args.per_host,
            tls,
        ),
        timeout: args.timeout,
        depth: args.depth,
        max_pages: args.max_pages,
        per_host: args.per_host,
        delay: args.delay.unwrap_or_default(),
        user_agent: args.user_agent.clone(),
        hosts,
        check_external: args.check_external,
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        frontier: Queue::unbounded(),
        fetchers: Group::new(),
        outstanding: AtomicUsize::new(0),
        scheduled: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
        output_error: AtomicBool::new(false),
        seen: Mutex::new(HashMap::new()),
        robots: Mutex::new(HashMap::new()),
        hosts_state: Mutex::new(HashMap::new()),
        stats: Mutex::new(Stats::default()),
        output: output.map(Mutex::new),
    });
    if bad > 0 {
        *lock(&crawl.stats).errors.entry("bad-url").or_default() += bad;
    }

    // Ctrl-C: stop scheduling, cancel the fetches in flight, write the
    // records and the summary. A second Ctrl-C quits at once.
    let on_ctrl_c = {
        let crawl = crawl.clone();
        sylvan::spawn(move || {
            if sylvan::signal::ctrl_c().is_ok() {
                eprintln!(
                    "\ncrawler: interrupted; writing what was found (Ctrl-C again quits at once)"
                );
                crawl.interrupted.store(true, Ordering::SeqCst);
                crawl.stop();
                if sylvan::signal::ctrl_c().is_ok() {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        })
    };

    let started = Instant::now();
    for u in start_urls {
        crawl.offer(u, 0, None);
    }
    if crawl.outstanding.load(Ordering::SeqCst) == 0 {
        crawl.frontier.close();
    }

    let finished = Arc::new(Event::new());
    let progress = (io::stderr().is_terminal() && !args.quiet).then(|| {
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

    // The fetchers: at most --concurrency at once.
    let slots = Arc::new(Semaphore::new(args.concurrency));
    while let Some(job) = crawl.frontier.get() {
        let permit = slots.acquire_owned();
        if crawl.stopping.load(Ordering::SeqCst) {
            break;
        }
        let c = crawl.clone();
        crawl.fetchers.spawn(move || {
            let _permit = permit;
            c.visit(job);
        });
    }
    crawl.fetchers.join();
    let elapsed = started.elapsed();
    finished.set();
    if let Some(p) = progress {
        let _ = p.join();
    }
    on_ctrl_c.cancel();
    let _ = on_ctrl_c.join();

    // Links cut off by --depth or --max-pages and never reached another
    // way: a record each (up to `cut_recorded` of each kind).
    let interrupted = crawl.interrupted.load(Ordering::SeqCst);
    if !interrupted {
        let (beyond, over) = {
            let mut stats = lock(&crawl.stats);
            let seen = lock(&crawl.seen);
            (
                stats.beyond_depth.unreached(&seen),
                stats.over_limit.unreached(&seen),
            )
        };
        let cuts = [
            (beyond, crawl.depth + 1, "beyond --depth"),
            (over, 0, "over --max-pages"),
        ];
        for (urls, depth, why) in cuts {
            for (url, from) in urls {
                let mut refs = Refs::default();
                refs.add(Some(&from));
                lock(&crawl.seen).insert(url.as_str().to_string(), refs);
                crawl.record(&Record::skipped(url, depth, why));
            }
        }
    }
    if let Some(out) = &crawl.output {
        if let Err(e) = lock(out).flush() {
            crawl.output_failed(e);
        }
    }
    let broken =
        !lock(&crawl.stats).broken.is_empty() || lock(&crawl.stats).errors.contains_key("bad-url");
    let code = if crawl.output_error.load(Ordering::SeqCst) {
        // The report is lost: whatever else happened, this is no success.
        EXIT_CANNOT_RUN
    } else if interrupted {
        EXIT_INTERRUPTED
    } else if broken {
        EXIT_BROKEN
    } else {
        EXIT_OK
    };
    let summary = summary(&crawl, elapsed, code);
    // The summary goes where the records do not; a closed pipe ends it
    // quietly.
    let _ = if to_stdout {
        io::stderr().write_all(summary.as_bytes())
    } else {
        io::stdout().write_all(summary.as_bytes())
    };
    code
}

/// The https client settings: the web's roots, plus `--ca-file`s and the
/// demo site's CA; or no checks at all under `--insecure`.
fn tls_connector(args: &Args, extra_roots: &[String]) -> io::Result<TlsConnector> {
    let mut builder = TlsConnector::builder();
    for file in &args.ca_file {
        builder = builder.add_root_certificates_pem_file(file)?;
    }
    for pem in extra_roots {
        builder = builder.add_root_certificates_pem(pem.as_bytes())?;
    }
    if args.insecure {
        eprintln!(
            "crawler: WARNING: --insecure: https certificates are NOT checked; any server, or \
             anyone between you and it, can pose as the sites crawled"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build()
}

/// How many broken links the summary lists (all are in the JSON lines).
const BROKEN_LISTED: usize = 20;

fn summary(crawl: &Crawl, elapsed: Duration, code: i32) -> String {
    use std::fmt::Write as _;
    let stats = lock(&crawl.stats);
    let seen = lock(&crawl.seen);
    let done = crawl.done.load(Ordering::Relaxed);
    let fetched: usize = stats.by_status.values().sum();
    let secs = elapsed.as_secs_f64();
    let mut s = String::new();
    let list = |items: Vec<String>, none: &str| {
        if items.is_empty() {
            none.to_string()
        } else {
            items.join(", ")
        }
    };
    let _ = writeln!(
        s,
        "crawled {done} URLs in {secs:.2} s ({:.0} pages/s): {fetched} responses, {:.1} MB",
        fetched as f64 / secs.max(1e-9),
        stats.bytes as f64 / 1e6
    );
    let statuses = stats.by_status.iter().map(|(s, n)| format!("{s}: {n}"));
    let _ = writeln!(s, "  status   {}", list(statuses.collect(), "-"));
    let errors = stats.errors.iter().map(|(k, n)| format!("{k}: {n}"));
    let _ = writeln!(s, "  errors   {}", list(errors.collect(), "none"));
    let mut skipped: Vec<String> = stats
        .skipped
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let other_hosts = stats.other_hosts.urls.len() + stats.other_hosts.more;
    if other_hosts > 0 {
        skipped.push(format!("other hosts: {other_hosts}"));
    }
    for (cut, why) in [
        (&stats.beyond_depth, "beyond --depth"),
        (&stats.over_limit, "over --max-pages"),
    ] {
        if cut.more > 0 {
            skipped.push(format!("{why} (not recorded): {} more links", cut.more));
        }
    }
    if stats.links_dropped > 0 {
        skipped.push(format!(
            "links over {MAX_LINKS_PER_PAGE} on one page: {}",
            stats.links_dropped
        ));
    }
    if stats.nofollow_links > 0 {
        skipped.push(format!("nofollow links: {}", stats.nofollow_links));
    }
    let _ = writeln!(s, "  skipped  {}", list(skipped, "none"));
    if !stats.broken.is_empty() {
        let _ = writeln!(
            s,
            "  broken   {} (where each was found):",
            stats.broken.len()
        );
        let mut broken: Vec<&(Url, String)> = stats.broken.iter().collect();
        broken.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (url, what) in broken.iter().take(BROKEN_LISTED) {
            let refs = seen.get(url.as_str());
            let on = match refs.and_then(|r| r.first.as_deref()) {
                None => "a start URL".to_string(),
                Some(first) => {
                    let others = refs.map_or(0, |r| r.count.saturating_sub(1));
                    if others > 0 {
                        format!("{first} (+{others} more links)")
                    } else {
                        first.to_string()
                    }
                }
            };
            let _ = writeln!(s, "    {url}  {what}\n      found on {on}");
        }
        if broken.len() > BROKEN_LISTED {
            let _ = writeln!(
                s,
                "    ... and {} more (all in the --output JSON lines)",
                broken.len() - BROKEN_LISTED
            );
        }
    }
    let outcome = match code {
        EXIT_OK => "nothing broken",
        EXIT_BROKEN => "broken links or failed fetches found",
        EXIT_INTERRUPTED => "interrupted: URLs still queued were not fetched",
        EXIT_CANNOT_RUN => "the output could not be written",
        _ => "?",
    };
    let _ = writeln!(s, "  exit     {code} ({outcome})");
    s
}
