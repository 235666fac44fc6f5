//! A program written for OS threads, as people write them: a server with a
//! thread per connection, client workers fed through `sync_channel(8)`,
//! results back over `mpsc`, a `Mutex` counter, a `Condvar` for "ready",
//! `thread::scope`, `thread::sleep`, a named `Builder`, and a thread-local
//! per-connection request counter. `std_version.rs` is written for std;
//! `sylvan_version.rs` is the same program with only its `use` lines
//! changed (and `thread_local!` → `fiber_local!`): tests/port_std.rs checks
//! that, runs both, and compares what they computed.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;
use sylvan::net::{TcpListener, TcpStream};
use sylvan::sync::mpsc;
use sylvan::sync::poison::{Condvar, Mutex};
use sylvan::thread;

pub const CLIENTS: u32 = 40;
const WORKERS: usize = 6;

sylvan::fiber_local! {
    static REQUESTS: Cell<u32> = const { Cell::new(0) };
}

/// What the program computed: the sum of the doubled numbers, each
/// connection's request count as it saw it, and how many the server served.
pub type Summary = (u64, Vec<u32>, u32);

fn handle(conn: TcpStream, served: &Mutex<u32>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        let n: u64 = line.trim().parse().unwrap();
        let seen = REQUESTS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        thread::sleep(Duration::from_millis(2));
        *served.lock().unwrap() += 1;
        writeln!(conn, "{} {seen}", n * 2).unwrap();
        line.clear();
    }
}

pub fn main() -> Summary {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(0u32));
    let ready = Arc::new((Mutex::new(false), Condvar::new()));
    let server = {
        let (served, ready) = (served.clone(), ready.clone());
        thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                let (lock, cvar) = &*ready;
                *lock.lock().unwrap() = true;
                cvar.notify_all();
                let mut connections = Vec::new();
                for conn in listener.incoming().take(CLIENTS as usize) {
                    let (conn, served) = (conn.unwrap(), served.clone());
                    connections.push(thread::spawn(move || handle(conn, &served)));
                }
                for c in connections {
                    c.join().unwrap();
                }
            })
            .unwrap()
    };
    {
        let (lock, cvar) = &*ready;
        let mut up = lock.lock().unwrap();
        while !*up {
            up = cvar.wait(up).unwrap();
        }
    }

    let (jobs, job_rx) = mpsc::sync_channel::<u64>(8);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (results, result_rx) = mpsc::channel();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (job_rx, results) = (job_rx.clone(), results.clone());
            thread::spawn(move || loop {
                let job = job_rx.lock().unwrap().recv();
                let Ok(n) = job else { break };
                let mut conn = TcpStream::connect(addr).unwrap();
                writeln!(conn, "{n}").unwrap();
                let mut reply = String::new();
                BufReader::new(conn).read_line(&mut reply).unwrap();
                let mut words = reply.split_whitespace();
                let doubled: u64 = words.next().unwrap().parse().unwrap();
                let seen: u32 = words.next().unwrap().parse().unwrap();
                results.send((doubled, seen)).unwrap();
            })
        })
        .collect();
    drop(results);
    for n in 0..CLIENTS as u64 {
        jobs.send(n).unwrap();
    }
    drop(jobs);
    let replies: Vec<(u64, u32)> = result_rx.iter().collect();
    for w in workers {
        w.join().unwrap();
    }
    server.join().unwrap();

    // Add up in two scoped threads that borrow the replies.
    let (left, right) = replies.split_at(replies.len() / 2);
    let total = thread::scope(|s| {
        let a = s.spawn(|| left.iter().map(|r| r.0).sum::<u64>());
        let b = s.spawn(|| right.iter().map(|r| r.0).sum::<u64>());
        a.join().unwrap() + b.join().unwrap()
    });
    let mut seen: Vec<u32> = replies.iter().map(|r| r.1).collect();
    seen.sort();
    let served = *served.lock().unwrap();
    (total, seen, served)
}
