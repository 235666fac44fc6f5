//! Shared helpers for the integration tests, built only on sylvan's public API.

#![allow(dead_code)]

use std::sync::Mutex;

use sylvan::park::{self, Waker};

/// Runs `f` on a fresh runtime with `workers` workers: the suites use it to
/// run the same test on one worker and on several.
pub fn on_workers<T: Send + 'static>(workers: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    sylvan::Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A counting signal with one waiter, written with the register → re-check →
/// park protocol. Usable from fibers and plain threads alike.
#[derive(Default)]
pub struct Signal {
    state: Mutex<(u64, Option<Waker>)>,
}

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Adds one to the count and wakes the waiter.
    pub fn notify(&self) {
        let waiter = {
            let mut s = self.state.lock().unwrap();
            s.0 += 1;
            s.1.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Waits until the count reaches `n`.
    pub fn wait_for(&self, n: u64) {
        loop {
            {
                let mut s = self.state.lock().unwrap();
                if s.0 >= n {
                    return;
                }
                s.1 = Some(park::current_waker());
            }
            park::park();
        }
    }

    pub fn count(&self) -> u64 {
        self.state.lock().unwrap().0
    }
}

/// Number of sylvan worker threads (named `sylvan-worker-N`) in this process
/// (Linux). Other threads, like the test harness's, come and go on their own.
pub fn worker_thread_count() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    // A thread that has exited (joined) can linger in /proc for a moment as
    // a zombie or dead task: count only the living.
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                return false;
            };
            let name = &stat[open + 1..close];
            let state = stat[close + 1..].trim_start().chars().next();
            name.starts_with("sylvan-worker") && !matches!(state, Some('Z' | 'X' | 'x'))
        })
        .count()
}

/// Waits (bounded, 10 s) until the number of sylvan worker threads is
/// `expected`, and returns the last count seen. Thread names appear only once a
/// new thread has started running, and an exited thread can linger in /proc
/// for a moment after `join`, so this OS-level observation needs a short poll.
pub fn settle_worker_threads(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = worker_thread_count();
        if n == expected || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Resident set size of this process in bytes (Linux).
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Re-runs the current test binary for one test in a child process with
/// `SYLVAN_CHILD=<role>` set, returning its output.
pub fn run_child(test_name: &str, role: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SYLVAN_CHILD", role)
        .output()
        .expect("spawn child test process")
}

/// The role this process plays when started by [`run_child`].
pub fn child_role() -> Option<String> {
    std::env::var("SYLVAN_CHILD").ok()
}

/// A gate many fibers/threads wait on until it is opened once.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, Vec<Waker>)>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    pub fn open(&self) {
        let waiters = {
            let mut s = self.state.lock().unwrap();
            s.0 = true;
            std::mem::take(&mut s.1)
        };
        for w in waiters {
            w.wake();
        }
    }

    pub fn wait(&self) {
        loop {
            {
                let mut s = self.state.lock().unwrap();
                if s.0 {
                    return;
                }
                s.1.push(park::current_waker());
            }
            park::park();
        }
    }
}

/// Counts its drops, so tests can see that destructors ran when a fiber
/// unwound (cancellation, timeout, shutdown).
pub struct DropCounter(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Spawns `f` as a fiber on the current runtime and returns once it has
/// started. On a one-worker runtime the new fiber runs on until its first
/// park, so on return it is blocked wherever `f` first blocks (a lock, a
/// queue...): tests use this to line waiters up deterministically.
pub fn spawn_started<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> sylvan::JoinHandle<T> {
    let started = std::sync::Arc::new(Signal::new());
    let s2 = started.clone();
    let h = sylvan::spawn(move || {
        s2.notify();
        f()
    });
    started.wait_for(1);
    h
}

/// Raises this process's soft `RLIMIT_NOFILE` to the hard limit (tests with
/// thousands of sockets), returning the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, exclusively borrowed rlimit for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above; setrlimit only reads `lim`.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    lim.rlim_cur
}

/// How many descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Starts an echo server on 127.0.0.1 (a fiber per connection, on the
/// current runtime) and returns its address.
pub fn echo_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    sylvan::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            sylvan::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Runs `f` on its own thread and returns its result (re-raising its
/// panic); fails the test if it takes longer than `limit`, so a hang shows
/// as a failure.
pub fn bounded<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("watchdog: the test hung for {limit:?}"),
    }
}
