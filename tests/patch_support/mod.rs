//! Helpers shared by the `patch` feature's tests (`patch_std`, `patch_edge`).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs `f` on a fresh one-worker runtime; fails the test if it has not
/// finished within `limit` (a blocked worker must fail, not hang CI).
pub fn one_worker<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
        let _ = tx.send(rt.block_on(f));
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("watchdog: the test did not finish within {limit:?} (a blocked worker?)"),
    }
}

/// A connected loopback TCP pair: (client, server side).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// A pipe as (read end, write end).
pub fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int out array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// A fiber that ticks every 10 ms with `std::thread::sleep` (a patched
/// call) until stopped: a blocked worker shows as missing ticks.
pub struct Ticker {
    ticks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    fiber: sylvan::JoinHandle<()>,
}

impl Ticker {
    /// Starts it (call from a fiber of the runtime under test).
    pub fn start() -> Ticker {
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (ticks.clone(), stop.clone());
        let fiber = sylvan::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                t.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ticker { ticks, stop, fiber }
    }

    /// Ticks so far.
    pub fn count(&self) -> usize {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Stops it; returns how often it ticked.
    pub fn stop(self) -> usize {
        let n = self.count();
        self.stop.store(true, Ordering::Relaxed);
        self.fiber.join().unwrap();
        n
    }
}
