//! What the server examples share, written once so each example can stay
//! about its protocol:
//!
//! - [`ServerArgs`]: the flags every server takes (`--workers`,
//!   `--idle-timeout`, `--write-timeout`, `--max-connections`, `--grace`),
//!   flattened into each example's own clap `Args`; [`parse_args`] reads them
//!   with the example's default idle timeout; [`parse_duration`] reads
//!   `500ms`, `2s`, `1.5s`, `10m`, `1h`.
//! - [`serve`]: the accept loop, a fiber per connection, and everything a
//!   server exposed to the internet needs around it:
//!   * a limit on open connections: at the limit a new connection is closed
//!     as soon as it is accepted, and the log says so once, not once per
//!     connection;
//!   * every connection gets a read timeout (`--idle-timeout`: a peer that
//!     sends nothing for that long is disconnected; a read fails with
//!     [`io::ErrorKind::TimedOut`]), a write timeout (`--write-timeout`: a
//!     peer that takes no data for that long is disconnected) and TCP
//!     keep-alive probes (a peer that vanished is noticed even when neither
//!     side has anything to say);
//!   * graceful drain on Ctrl-C (SIGINT) or SIGTERM: stop accepting, wake
//!     connections that are between requests ([`Conn::read_idle`]) as if
//!     their client had left, give the others `--grace` to finish, then
//!     cancel what is left.
//! - [`log`]: error lines that a hostile peer cannot turn into a flood: at
//!   most [`LOG_BURST`] a second, then one line saying how many were
//!   suppressed.
//!
//! Each example uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use clap::{ArgMatches, Parser};
use sylvan::net::{TcpListener, TcpStream};
use sylvan::sync::Group;

mod duration;
pub use duration::parse_duration;

/// The flags every server example takes; flatten them into the example's
/// `Args` with `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Worker threads of the runtime [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<NonZeroUsize>,
    /// Disconnect a client that sends nothing for this long (each example
    /// sets its default and meaning: see `parse_args`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Disconnect a client that accepts no data for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Most connections open at once; beyond it new ones are closed at once.
    /// (Each needs a file descriptor: see `ulimit -n`.)
    #[arg(long, value_name = "N", default_value = "10000")]
    pub max_connections: NonZeroUsize,
    /// On Ctrl-C, how long open connections get to finish before they are
    /// cut off.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
}

impl ServerArgs {
    /// The per-connection settings [`serve`] gives every accepted socket, for
    /// sockets a server opens itself (portforward's upstream connections).
    pub fn configure(&self, stream: &TcpStream) {
        // Only fails for a zero duration, which parse_duration refuses.
        let _ = stream.set_read_timeout(Some(self.idle_timeout));
        let _ = stream.set_write_timeout(Some(self.write_timeout));
        // sylvan's TcpStream is a plain socket underneath (it implements
        // AsFd), so socket2 can set what it has no method for. The first
        // probe goes out after KEEPALIVE_IDLE of silence.
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL);
        // Fails only if the peer has already reset the connection.
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
    }
}

/// Silence after which TCP keep-alive probes start.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Time between unanswered keep-alive probes (the kernel gives up after
/// `net.ipv4.tcp_keepalive_probes` of them).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Parses the command line into an example's `Args` (which flattens
/// [`ServerArgs`]). What counts as too long a silence depends on the
/// protocol, so each example gives `--idle-timeout` its default and says
/// what it means.
pub fn parse_args<A: Parser>(idle_default: &'static str, idle_help: &'static str) -> A {
    let mut command = A::command().mut_arg("idle_timeout", |a| {
        a.default_value(idle_default).help(idle_help)
    });
    let mut matches: ArgMatches = command.get_matches_mut();
    A::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command).exit())
}

/// One accepted connection as a handler gets it. Read and write it like the
/// [`TcpStream`] it derefs to (through `&Conn`, so several fibers can share
/// an `Arc<Conn>`); what it adds is [`read_idle`](Conn::read_idle) and
/// [`draining`](Conn::draining) for graceful shutdown.
pub struct Conn {
    tracked: Arc<Tracked>,
    server: Arc<Server>,
    /// The client's address.
    pub peer: SocketAddr,
}

/// What the server keeps of each open connection.
struct Tracked {
    stream: TcpStream,
    /// The handler is in [`Conn::read_idle`]: no request is in progress.
    idle: AtomicBool,
}

impl Conn {
    /// Reads like [`Read::read`], as a connection that has no request in
    /// progress: between requests, or waiting for its client to say
    /// something. When the server starts draining, such a read (one already
    /// waiting or one started later) returns `Ok(0)`, end of stream, so the
    /// handler ends the way it ends when its client leaves.
    pub fn read_idle(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.while_idle(|| (&self.tracked.stream).read(buf))
    }

    /// Runs `read`, a read from this connection or from a stream layered
    /// on it (TLS), as [`read_idle`](Conn::read_idle) runs its read: when
    /// the server drains, it returns `Ok(0)` (the drain ends the socket's
    /// input, which a layered stream may report as an error).
    pub fn while_idle(&self, read: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        // Publish "idle" before looking at the drain flag, and the drain
        // publishes its flag before looking at ours: whichever comes second
        // sees the other (both SeqCst), so no idle read sleeps through it.
        self.tracked.idle.store(true, Ordering::SeqCst);
        let result = if self.draining() {
            Ok(0)
        } else {
            match read() {
                Err(_) if self.draining() => Ok(0),
                result => result,
            }
        };
        self.tracked.idle.store(false, Ordering::SeqCst);
        result
    }

    /// A reader whose every read is [`read_idle`](Conn::read_idle), e.g. to
    /// put a `BufReader` on a line protocol that is idle between lines.
    pub fn idle_reader(&self) -> IdleReader<'_> {
        IdleReader(self)
    }

    /// Whether the server is shutting down: a handler should finish what it
    /// is doing and take no new request.
    pub fn draining(&self) -> bool {
        self.server.draining.load(Ordering::SeqCst)
    }
}

impl Deref for Conn {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.tracked.stream
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.tracked.stream).read(buf)
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.tracked.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// See [`Conn::idle_reader`].
pub struct IdleReader<'a>(&'a Conn);

impl Read for IdleReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_idle(buf)
    }
}

/// The state of a running server, shared by its acceptor, its connections
/// and the shutdown code.
struct Server {
    args: ServerArgs,
    /// Every open connection, by a serial number.
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    /// Set once, when the drain begins.
    draining: AtomicBool,
    /// The connection fibers, to wait for or cancel at shutdown.
    fibers: Group,
}

/// Removes a connection from the server's table when its fiber ends,
/// however it ends.
struct Slot {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let tracked = lock(&self.server.open).remove(&self.id);
        // The socket closes here, after the slot is free, unless a fiber the
        // handler started still holds the connection.
        drop(tracked);
    }
}

impl Server {
    /// Takes a slot for `stream`, or gives it back if the server is full.
    fn admit(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<(Conn, Slot), TcpStream> {
        let mut open = lock(&self.open);
        if open.len() >= self.args.max_connections.get() {
            return Err(stream);
        }
        let tracked = Arc::new(Tracked {
            stream,
            idle: AtomicBool::new(false),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        open.insert(id, tracked.clone());
        drop(open);
        self.args.configure(&tracked.stream);
        let conn = Conn {
            tracked,
            server: self.clone(),
            peer,
        };
        let slot = Slot {
            server: self.clone(),
            id,
        };
        Ok((conn, slot))
    }

    /// Accepts connections until cancelled, each served by `handle` in a
    /// fiber of its own.
    fn accept_loop<H>(self: &Arc<Self>, listener: TcpListener, handle: Arc<H>)
    where
        H: Fn(Conn) + Send + Sync + 'static,
    {
        let max = self.args.max_connections;
        // Connections refused since the limit was last reached.
        let mut refused = 0u64;
        loop {
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) => {
                    log(format_args!("accept failed: {e}"));
                    sylvan::sleep(Duration::from_millis(10)); // not a hot loop
                    continue;
                }
            };
            let (conn, slot) = match self.admit(stream, peer) {
                Ok(admitted) => admitted,
                Err(_closed_on_drop) => {
                    refused += 1;
                    if refused == 1 {
                        log(format_args!(
                            "connection limit reached ({max} open): refusing new connections"
                        ));
                    }
                    continue;
                }
            };
            if refused > 0 {
                log(format_args!(
                    "accepting again; refused {refused} connection(s) at the limit"
                ));
                refused = 0;
            }
            let handle = handle.clone();
            self.fibers.spawn(move || {
                let _slot = slot;
                handle(conn);
            });
        }
    }

    /// Stops new requests: idle connections are woken (their
    /// [`Conn::read_idle`] returns end of stream) and every later
    /// `read_idle` returns it at once. Returns how many connections are open.
    fn begin_drain(&self) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        let open = lock(&self.open);
        for tracked in open.values() {
            if tracked.idle.load(Ordering::SeqCst) {
                // Wakes the blocked read with end of stream; the handler
                // then closes the connection as usual.
                let _ = tracked.stream.shutdown(Shutdown::Read);
            }
        }
        open.len()
    }
}

/// Binds `addr`, serves each connection with `handle` in its own fiber
/// (see the module docs for the limits and timeouts), and returns when the
/// process gets Ctrl-C (SIGINT) or SIGTERM and the open connections have
/// finished or been cut off after `args.grace`.
pub fn serve<H>(name: &'static str, addr: &str, args: &ServerArgs, handle: H)
where
    H: Fn(Conn) + Send + Sync + 'static,
{
    let _ = LOG.name.set(name);
    let mut builder = sylvan::Runtime::builder();
    if let Some(n) = args.workers {
        builder = builder.workers(n.get());
    }
    let rt = builder.build().unwrap_or_else(|e| {
        eprintln!("{name}: cannot start the runtime: {e}");
        std::process::exit(1)
    });
    let addr = addr.to_string();
    let server = Arc::new(Server {
        args: args.clone(),
        open: Mutex::default(),
        next_id: AtomicU64::new(0),
        draining: AtomicBool::new(false),
        fibers: Group::new(),
    });
    let handle = Arc::new(handle);
    rt.block_on(move || {
        let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("{name}: cannot listen on {addr}: {e}");
            std::process::exit(1)
        });
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        // A fiber spawned with spawn_local shares this worker, so it cannot
        // start before this fiber parks in ctrl_c() below, which first
        // installs the signal handler: "listening on" is printed only once
        // Ctrl-C is handled. (Before that, SIGINT's default action kills the
        // process: a script that sends it as soon as it sees the line must
        // not race the handler.)
        let acceptor = {
            let server = server.clone();
            sylvan::spawn_local(move || {
                eprintln!("{name}: listening on {local}");
                server.accept_loop(listener, handle)
            })
        };
        if let Err(e) = sylvan::signal::ctrl_c() {
            eprintln!("{name}: cannot wait for Ctrl-C ({e}); serving until killed");
            let _ = acceptor.join();
            return;
        }
        // The listener closes as the acceptor unwinds: from here on new
        // connections are refused by the kernel.
        acceptor.cancel();
        let _ = acceptor.join();
        let open = server.begin_drain();
        let grace = server.args.grace;
        match open {
            0 => eprintln!("{name}: shutting down"),
            n => eprintln!(
                "{name}: shutting down; waiting up to {grace:?} for {n} connection(s) \
                 (Ctrl-C again to close them now)"
            ),
        }
        let impatient = {
            let fibers = server.fibers.clone();
            sylvan::spawn(move || {
                if sylvan::signal::ctrl_c().is_ok() {
                    eprintln!("{name}: closing {} connection(s) now", fibers.len());
                    fibers.cancel();
                }
            })
        };
        if !server.fibers.join_timeout(grace) {
            let left = server.fibers.len();
            eprintln!("{name}: grace period over; closing {left} connection(s)");
            server.fibers.cancel();
            // Cancellation lands at each fiber's next blocking call; dropping
            // the runtime below ends any that are still unwinding.
            server.fibers.join_timeout(Duration::from_secs(1));
        }
        impatient.cancel();
    });
    drop(rt);
    flush_log();
    eprintln!("{name}: bye");
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The most lines [`log`] prints in one [`LOG_WINDOW`].
pub const LOG_BURST: usize = 10;
/// See [`LOG_BURST`].
pub const LOG_WINDOW: Duration = Duration::from_secs(1);

struct Log {
    /// The server's name, prefixed to every line.
    name: OnceLock<&'static str>,
    state: Mutex<LogState>,
}

struct LogState {
    /// When the current window began (None: no line printed yet).
    window: Option<Instant>,
    printed: usize,
    suppressed: u64,
    /// A fiber will report `suppressed` when the window ends.
    report_scheduled: bool,
}

static LOG: Log = Log {
    name: OnceLock::new(),
    state: Mutex::new(LogState {
        window: None,
        printed: 0,
        suppressed: 0,
        report_scheduled: false,
    }),
};

impl LogState {
    fn report_suppressed(&mut self) {
        if self.suppressed > 0 {
            eprintln!(
                "{}: (suppressed {} more message(s) in {LOG_WINDOW:?})",
                LOG.name.get().unwrap_or(&"server"),
                self.suppressed
            );
            self.suppressed = 0;
        }
    }
}

/// Prints `msg` to stderr, prefixed with the server's name, unless
/// [`LOG_BURST`] lines were printed in this [`LOG_WINDOW`] already; those
/// are counted and the count is printed when the window ends.
///
/// ```ignore
/// common::log(format_args!("{peer}: {e}"));
/// ```
pub fn log(msg: impl fmt::Display) {
    let now = Instant::now();
    let mut s = lock(&LOG.state);
    let window = match s.window {
        Some(start) if now.duration_since(start) < LOG_WINDOW => start,
        _ => {
            s.report_suppressed();
            s.window = Some(now);
            s.printed = 0;
            now
        }
    };
    if s.printed < LOG_BURST {
        s.printed += 1;
        eprintln!("{}: {msg}", LOG.name.get().unwrap_or(&"server"));
        return;
    }
    s.suppressed += 1;
    // Report at the end of the window even if nothing else is logged. (Off
    // the runtime, the next line or the exit reports it.)
    if !s.report_scheduled && sylvan::in_fiber() {
        s.report_scheduled = true;
        sylvan::spawn(move || {
            sylvan::sleep_until(window + LOG_WINDOW);
            flush_log();
        });
    }
}

/// Prints the count of suppressed lines, if any, now.
pub fn flush_log() {
    let mut s = lock(&LOG.state);
    s.report_scheduled = false;
    s.report_suppressed();
}
