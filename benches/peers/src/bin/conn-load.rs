//! A load generator for the idle-connections comparison: opens N TCP
//! connections to an echo server and keeps them all open. Each connection
//! sends one byte and reads its echo, so the server has accepted it and
//! started serving it; then it stays idle. THREADS plain OS threads open the
//! connections, each one at a time (so at most THREADS handshakes are in
//! flight and the server's listen backlog never overflows).
//!
//! Prints one line: `MS BYTES_PER_CONN`: milliseconds from the first connect
//! to the last echo, and the server's RSS growth per connection
//! ((VmRSS of SERVER_PID once all N are served − VmRSS before the first
//! connect) / N; 0 when no SERVER_PID is given). Then closes every
//! connection with a reset (SO_LINGER 0), so no TIME_WAIT entries pin the
//! client ports for the next run.
//!
//! Beyond 16,000 connections one source address is not enough (the
//! ephemeral port range is ~28k ports per source address), so connection
//! i binds to 127.0.0.(2 + i mod k), with k = ceil(N / 16,000). Every
//! connect, write and read has a timeout, and the whole run a deadline: it
//! exits 1 with a message instead of hanging.
//!
//! usage: conn-load ADDR N THREADS DEADLINE_SECS [SERVER_PID]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

/// Connections per source address (of the ~28k ephemeral ports each has).
const PER_SOURCE: usize = 16_000;
/// Timeout of each connect, write and read.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

fn vm_rss(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server's /proc status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS in the server's /proc status")
}

/// Opens connection `i`, echoes one byte over it, and hands it back.
fn open(i: usize, sources: usize, server: &SockAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    if sources > 1 {
        let ip = Ipv4Addr::new(127, 0, 0, 2 + (i % sources) as u8);
        socket.bind(&SocketAddr::from((ip, 0)).into())?;
    }
    socket.connect_timeout(server, OP_TIMEOUT)?;
    socket.set_linger(Some(Duration::ZERO))?; // close with a reset
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(OP_TIMEOUT))?;
    s.set_write_timeout(Some(OP_TIMEOUT))?;
    s.write_all(b"x")?;
    let mut back = [0u8; 1];
    s.read_exact(&mut back)?;
    Ok(s)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(5..=6).contains(&args.len()) {
        eprintln!("usage: conn-load ADDR N THREADS DEADLINE_SECS [SERVER_PID]");
        std::process::exit(2);
    }
    let server: SocketAddr = args[1].parse().expect("ADDR is ip:port");
    let server = SockAddr::from(server);
    let n: usize = args[2].parse().expect("N is a number");
    let threads: usize = args[3].parse().expect("THREADS is a number");
    let deadline = Duration::from_secs(args[4].parse().expect("DEADLINE_SECS is a number"));
    let pid: Option<u32> = args
        .get(5)
        .map(|p| p.parse().expect("SERVER_PID is a number"));
    let sources = n.div_ceil(PER_SOURCE).max(1);
    if sources > 250 {
        eprintln!("conn-load: at most {} connections", 250 * PER_SOURCE);
        std::process::exit(2);
    }

    let before = pid.map(vm_rss).unwrap_or(0);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads.clamp(1, n.max(1)))
        .map(|_| {
            let (next, failed, error, server) =
                (next.clone(), failed.clone(), error.clone(), server.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let fail = |what: String| {
                        failed.store(true, Ordering::Relaxed);
                        error.lock().unwrap().get_or_insert(what);
                    };
                    if start.elapsed() > deadline {
                        fail(format!("deadline of {deadline:?} passed at connection {i}"));
                        break;
                    }
                    match open(i, sources, &server) {
                        Ok(s) => held.push(s),
                        Err(e) => {
                            fail(format!("connection {i}: {e}"));
                            break;
                        }
                    }
                }
                held
            })
        })
        .collect();
    let held: Vec<Vec<TcpStream>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let elapsed = start.elapsed();
    if let Some(e) = error.lock().unwrap().take() {
        let open: usize = held.iter().map(Vec::len).sum();
        eprintln!("conn-load: {e} ({open} of {n} connections open)");
        std::process::exit(1);
    }
    let after = pid.map(vm_rss).unwrap_or(0);
    let per_conn = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "conn-load: {n} connections from {sources} source address(es) in {:.1} ms; server RSS {:.1} -> {:.1} MiB",
        elapsed.as_secs_f64() * 1e3,
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64
    );
    println!("{:.1} {:.0}", elapsed.as_secs_f64() * 1e3, per_conn);
}
