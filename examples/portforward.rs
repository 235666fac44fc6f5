//! A TCP port forwarder: every connection to ADDR is relayed to TARGET, both
//! directions at once (a fiber each), with half-close passed through — when
//! one side finishes sending, the other side's write half is shut down and
//! the opposite direction keeps flowing until it finishes too.
//!
//! ```text
//! cargo run --release --example portforward -- ADDR TARGET [--idle-timeout DURATION] ...
//! cargo run --release --example portforward -- 127.0.0.1:8000 example.com:80
//! ```
//!
//! A connection with no data moving either way for `--idle-timeout` (10
//! minutes by default) is closed: that also ends connections left half-closed
//! by one side while the other says nothing. On Ctrl-C, relays in progress
//! get `--grace` to finish (`--help` lists the other limits).

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use sylvan::net::TcpStream;

/// Relay every connection to ADDR to TARGET.
#[derive(Parser, Debug)]
#[command(name = "portforward")]
struct Args {
    /// Address to listen on (e.g. 127.0.0.1:8000).
    addr: String,
    /// Where to relay connections (e.g. example.com:80).
    target: String,
    /// How long to wait for TARGET to accept a connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = common::parse_duration)]
    connect_timeout: Duration,
    #[command(flatten)]
    server: common::ServerArgs,
}

/// When data last moved either way on one relayed connection: it is idle
/// only when both directions are.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last transfer.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis();
        self.last
            .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Copies `from` to `to` until `from` ends, then shuts down `to`'s write half
/// so the far side sees end-of-stream too. Returns the bytes copied.
///
/// `from`'s read timeout is the idle timeout: when it fires, the copy gives
/// up only if the other direction was quiet as long (so a connection closes
/// between one and two idle timeouts after its last byte).
fn pipe(from: &TcpStream, to: &TcpStream, activity: &Activity, idle: Duration) -> io::Result<u64> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0u64;
    loop {
        let n = match (&*from).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut && activity.quiet_for() < idle => {
                continue
            }
            Err(e) => {
                let _ = to.shutdown(Shutdown::Both);
                return Err(match e.kind() {
                    io::ErrorKind::TimedOut => io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("closed after {idle:?} without traffic"),
                    ),
                    _ => e,
                });
            }
        };
        activity.touch();
        if let Err(e) = (&*to).write_all(&buf[..n]) {
            let _ = from.shutdown(Shutdown::Both);
            return Err(e);
        }
        activity.touch();
        total = total.saturating_add(n as u64);
    }
    // Ignore NotConnected: the peer may have closed both halves already.
    let _ = to.shutdown(Shutdown::Write);
    Ok(total)
}

fn forward(client: common::Conn, args: &Args) -> io::Result<(u64, u64)> {
    let target = &args.target;
    let upstream =
        sylvan::timeout(args.connect_timeout, || TcpStream::connect(target)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {target} timed out"),
            )
        })??;
    // The same timeouts and keep-alive as the accepted side.
    args.server.configure(&upstream);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let idle = args.server.idle_timeout;
    let activity = Arc::new(Activity::new());
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let up = {
        let (c, u, a) = (client.clone(), upstream.clone(), activity.clone());
        sylvan::spawn(move || pipe(&c, &u, &a, idle))
    };
    let down = pipe(&upstream, &client, &activity, idle);
    let up = up.join().map_err(|e| io::Error::other(e.to_string()))?;
    Ok((up?, down?))
}

fn main() {
    let args: Args = common::parse_args(
        "10m",
        "Close a connection with no data moving either way for this long (e.g. 1h, 90s)",
    );
    eprintln!("portforward: forwarding to {}", args.target);
    let (addr, server) = (args.addr.clone(), args.server.clone());
    let args = Arc::new(args);
    common::serve("portforward", &addr, &server, move |conn| {
        let peer = conn.peer;
        if let Err(e) = forward(conn, &args) {
            common::log(format_args!("{peer}: {e}"));
        }
    });
}
