//! A neutral load generator for the echo comparison: N connections, each on
//! its own OS thread, sending an M-byte message and reading the echo back,
//! for D seconds. Prints messages per second (round trips completed by all
//! connections / elapsed).
//!
//! usage: echo-load ADDR CONNECTIONS MESSAGE_BYTES SECONDS

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: echo-load ADDR CONNECTIONS MESSAGE_BYTES SECONDS");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let conns: usize = args[2].parse().unwrap();
    let size: usize = args[3].parse().unwrap();
    let secs: f64 = args[4].parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start_gate = Arc::new(std::sync::Barrier::new(conns + 1));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, stop, done, gate) =
                (addr.clone(), stop.clone(), done.clone(), start_gate.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_nodelay(true).unwrap();
                let msg = vec![b'x'; size];
                let mut back = vec![0u8; size];
                gate.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back).unwrap();
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    start_gate.wait();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    let elapsed = t.elapsed().as_secs_f64();
    println!("{:.0}", done.load(Ordering::Relaxed) as f64 / elapsed);
}
