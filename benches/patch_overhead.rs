//! What the `patch` feature costs a plain thread (not a fiber): the same
//! libc calls, timed with and without the hooks in the binary.
//!
//! ```sh
//! cargo bench --bench patch_overhead                              # no hooks
//! cargo bench --bench patch_overhead --features patch             # hooks on
//! SYLVAN_PATCH=0 cargo bench --bench patch_overhead --features patch  # hooks off at start
//! ```
//!
//! The cases, each on the main thread with a one-worker runtime alive (so
//! the process is multi-threaded in every build, as glibc's cancellation
//! points care, and the hooks are linked):
//!
//! * `read 1 byte from a pipe`: a pipe enlarged to 1 MiB and filled
//!   outside the timing, then read one byte per call;
//! * `read(-1) (EBADF)`: the cheapest syscall round trip through `read`;
//! * `close(-1) (EBADF)`: the same through `close`;
//! * `read of an empty non-blocking pipe (EAGAIN)`: the path a plain
//!   thread's event loop (tokio, mio) takes on every would-block read: with
//!   the hooks, an `EAGAIN` also asks the descriptor table whether the patch
//!   made the descriptor non-blocking behind its owner's back.
//!
//! Wall-clock figures on a shared machine move by more than a few
//! nanoseconds, so the same loops also run a fixed number of times for
//! valgrind's callgrind, which counts instructions exactly:
//!
//! ```sh
//! BIN=$(cargo bench --bench patch_overhead --features patch --no-run 2>&1 \
//!       | sed -n 's/.*Executable .*(\(.*\))/\1/p')
//! valgrind --tool=callgrind --toggle-collect='*patch_overhead::loop_*' \
//!     "$BIN" --fixed read_ebadf 100000
//! ```
//!
//! `--fixed CASE N` (CASE: `read_pipe`, `read_ebadf`, `close_ebadf`,
//! `read_eagain`) runs
//! N calls of one case in a function of its own (`loop_CASE`, never
//! inlined) and exits; with `--toggle-collect` callgrind counts only those
//! functions, so the total divided by N is the instructions per call
//! (user space only: the kernel's share is not counted).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// How many bytes the pipe holds: what `F_SETPIPE_SZ` granted.
struct Pipe {
    rd: libc::c_int,
    wr: libc::c_int,
    cap: usize,
}

impl Pipe {
    fn new() -> Pipe {
        let mut fds = [0; 2];
        // SAFETY: a two-int array for pipe(2) to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        // SAFETY: F_SETPIPE_SZ on the pipe just made; the result is the
        // capacity granted, or -1 (then the default capacity stays).
        let set = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
        // SAFETY: F_GETPIPE_SZ takes no argument.
        let cap = unsafe { libc::fcntl(fds[1], libc::F_GETPIPE_SZ) };
        assert!(cap > 0, "F_GETPIPE_SZ: {set} {cap}");
        Pipe {
            rd: fds[0],
            wr: fds[1],
            cap: cap as usize,
        }
    }

    /// Writes `n` (at most `cap`) bytes into the empty pipe.
    fn fill(&self, n: usize) {
        let buf = vec![7u8; n];
        let mut done = 0;
        while done < n {
            // SAFETY: writes from inside `buf`.
            let w = unsafe { libc::write(self.wr, buf[done..].as_ptr().cast(), n - done) };
            assert!(w > 0, "write to the pipe");
            done += w as usize;
        }
    }
}

/// `n` one-byte reads from a pipe holding at least `n` bytes.
#[inline(never)]
fn loop_read_pipe(fd: libc::c_int, n: usize) {
    let mut b = 0u8;
    for _ in 0..n {
        // SAFETY: one byte into `b`.
        let r = unsafe { libc::read(black_box(fd), (&mut b as *mut u8).cast(), 1) };
        debug_assert_eq!(r, 1);
        black_box(r);
    }
}

/// `n` calls of `read(-1, ..)`: EBADF.
#[inline(never)]
fn loop_read_ebadf(n: usize) {
    let mut b = 0u8;
    for _ in 0..n {
        // SAFETY: an invalid descriptor: the kernel fails the call.
        let r = unsafe { libc::read(black_box(-1), (&mut b as *mut u8).cast(), 1) };
        black_box(r);
    }
}

/// `n` calls of `close(-1)`: EBADF.
#[inline(never)]
fn loop_close_ebadf(n: usize) {
    for _ in 0..n {
        // SAFETY: an invalid descriptor: the kernel fails the call.
        black_box(unsafe { libc::close(black_box(-1)) });
    }
}

/// `n` one-byte reads from an empty non-blocking pipe: EAGAIN.
#[inline(never)]
fn loop_read_eagain(fd: libc::c_int, n: usize) {
    let mut b = 0u8;
    for _ in 0..n {
        // SAFETY: one byte into `b`.
        let r = unsafe { libc::read(black_box(fd), (&mut b as *mut u8).cast(), 1) };
        debug_assert_eq!(r, -1);
        black_box(r);
    }
}

/// An empty pipe whose read end is non-blocking (set by its owner, so the
/// patch passes it through).
fn empty_nonblocking_pipe() -> Pipe {
    let pipe = Pipe::new();
    // SAFETY: F_GETFL/F_SETFL on the pipe just made.
    unsafe {
        let fl = libc::fcntl(pipe.rd, libc::F_GETFL);
        assert_eq!(
            libc::fcntl(pipe.rd, libc::F_SETFL, fl | libc::O_NONBLOCK),
            0
        );
    }
    pipe
}

/// `n` one-byte pipe reads, the pipe refilled between chunks; returns the
/// time spent in the reads only.
fn timed_pipe_reads(pipe: &Pipe, n: u64) -> Duration {
    let mut left = n as usize;
    let mut total = Duration::ZERO;
    while left > 0 {
        let k = left.min(pipe.cap);
        pipe.fill(k);
        let t = Instant::now();
        loop_read_pipe(pipe.rd, k);
        total += t.elapsed();
        left -= k;
    }
    total
}

fn fixed(case: &str, n: usize) {
    match case {
        "read_pipe" => {
            let pipe = Pipe::new();
            let mut left = n;
            while left > 0 {
                let k = left.min(pipe.cap);
                pipe.fill(k);
                loop_read_pipe(pipe.rd, k);
                left -= k;
            }
        }
        "read_ebadf" => loop_read_ebadf(n),
        "close_ebadf" => loop_close_ebadf(n),
        "read_eagain" => loop_read_eagain(empty_nonblocking_pipe().rd, n),
        _ => {
            eprintln!("--fixed CASE N: CASE is read_pipe, read_ebadf, close_ebadf or read_eagain");
            std::process::exit(2);
        }
    }
    eprintln!(
        "{case}: {n} calls done (patch active: {})",
        sylvan::patch::is_active()
    );
}

fn main() {
    // One runtime, alive throughout: the hooks are linked into any binary
    // that builds one, and every build is multi-threaded alike.
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let active = sylvan::patch::is_active();

    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--fixed") {
        let case = args.get(i + 1).map(String::as_str).unwrap_or("");
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        fixed(case, n);
        drop(rt);
        return;
    }

    eprintln!(
        "patch feature compiled in: {}; patch active: {active}",
        cfg!(feature = "patch")
    );
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let pipe = Pipe::new();
    c.bench_function("read 1 byte from a pipe", |b| {
        b.iter_custom(|iters| timed_pipe_reads(&pipe, iters))
    });
    c.bench_function("read(-1) (EBADF)", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            loop_read_ebadf(iters as usize);
            t.elapsed()
        })
    });
    c.bench_function("close(-1) (EBADF)", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            loop_close_ebadf(iters as usize);
            t.elapsed()
        })
    });
    let empty = empty_nonblocking_pipe();
    c.bench_function("read of an empty non-blocking pipe (EAGAIN)", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            loop_read_eagain(empty.rd, iters as usize);
            t.elapsed()
        })
    });
    c.final_summary();
    drop(rt);
}
