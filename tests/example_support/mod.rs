//! Running the example programs from the tests: where cargo put them, and a
//! server example as a child process on a free loopback port, with its
//! stderr collected as it comes (so a chatty server never blocks on a full
//! pipe, and a test can wait for a line).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The example binary `name` (`cargo test` builds the examples next to the
/// test binaries).
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test>-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    dir.join(name)
}

/// How long a test waits for anything a correct server does at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server example running as a child process on a free loopback port.
pub struct Server {
    child: Child,
    pub addr: String,
    stderr: Arc<Stderr>,
    stopped: bool,
}

/// The lines the server has written to stderr so far.
#[derive(Default)]
struct Stderr {
    lines: Mutex<(Vec<String>, bool)>, // (lines, closed)
    grew: Condvar,
}

impl Drop for Server {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// Starts example `name` on 127.0.0.1:0 with `args` after the address
    /// (and `--workers 2` unless `args` choose).
    pub fn start(name: &str, args: &[&str]) -> Server {
        let path = example(name);
        let mut command = Command::new(&path);
        command.arg("127.0.0.1:0").args(args);
        if !args.contains(&"--workers") {
            command.args(["--workers", "2"]);
        }
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        let stderr = Arc::new(Stderr::default());
        {
            let stderr = stderr.clone();
            let pipe = BufReader::new(child.stderr.take().unwrap());
            std::thread::spawn(move || {
                for line in pipe.lines() {
                    let Ok(line) = line else { break };
                    stderr.lines.lock().unwrap().0.push(line);
                    stderr.grew.notify_all();
                }
                stderr.lines.lock().unwrap().1 = true;
                stderr.grew.notify_all();
            });
        }
        let mut server = Server {
            child,
            addr: String::new(),
            stderr,
            stopped: false,
        };
        // "<name>: listening on 127.0.0.1:PORT" (after any other start-up line)
        let line = server.wait_for_line("listening on");
        server.addr = line.trim().rsplit(' ').next().unwrap().to_string();
        server
    }

    /// A connection to the server whose reads and writes give up after
    /// [`PATIENCE`].
    /// The server's resident memory now, in bytes (Linux: /proc).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kb * 1024
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_write_timeout(Some(PATIENCE)).unwrap();
        s
    }

    /// Waits (at most [`PATIENCE`]) for a stderr line containing `pattern`
    /// and returns it.
    pub fn wait_for_line(&self, pattern: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.stderr.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.0.iter().find(|l| l.contains(pattern)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !lines.1 && !left.is_zero(),
                "no stderr line with {pattern:?}; stderr so far:\n{}",
                lines.0.join("\n")
            );
            lines = self.stderr.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Everything on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lines.lock().unwrap().0.join("\n")
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // live child's.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0);
    }

    /// Waits (at most `limit`) for the server to exit; returns its status
    /// and all it wrote to stderr.
    pub fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String) {
        self.stopped = true;
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                panic!(
                    "the server did not exit within {limit:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The pipe closes when the process is gone; take every line.
        let mut lines = self.stderr.lines.lock().unwrap();
        while !lines.1 {
            lines = self.stderr.grew.wait(lines).unwrap();
        }
        (status, lines.0.join("\n"))
    }

    /// Ctrl-C: the server must shut down cleanly and promptly. Returns its
    /// stderr.
    pub fn stop(self) -> String {
        self.interrupt();
        let (status, stderr) = self.wait_exit(PATIENCE);
        assert!(status.success(), "exit status {status}: {stderr}");
        assert!(stderr.contains("shutting down"), "{stderr}");
        stderr
    }
}
