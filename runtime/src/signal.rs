//! Waiting for Unix signals (Ctrl-C, `kill`) from fibers and threads.
//!
//! The first wait on a signal installs a handler for it that only counts the
//! delivery and writes one byte to a process-wide non-blocking socketpair
//! (both async-signal-safe). Waiters park on the pair's read end through
//! [`IoRegistration`] and return once the count has moved past what they saw
//! when they started waiting, so every waiter sees every delivery that
//! happens while it waits, however many fibers and threads wait at once.
//!
//! Once a signal has a waiter its default action (for `SIGINT` and
//! `SIGTERM`: terminate the process) is replaced for the rest of the
//! process's life — the program has said it will handle it.
//!
//! A server that stops accepting on Ctrl-C or `kill` and lets its
//! connections finish (not run here: it waits for a signal):
//!
//! ```no_run
//! # extern crate sylvan_runtime as sylvan;
//! sylvan::run(|| {
//!     let server = sylvan::spawn(|| loop {
//!         sylvan::sleep(std::time::Duration::from_secs(1)); // accept and serve…
//!     });
//!     let sig = sylvan::signal::wait_for(&[libc::SIGINT, libc::SIGTERM]).unwrap();
//!     eprintln!("signal {sig}: shutting down");
//!     server.cancel(); // the server unwinds at its next park
//!     let _ = server.join();
//! });
//! ```

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::io::{Direction, IoRegistration};

/// Signals numbers 1..=64 (Linux's range, real-time signals included).
const MAX_SIGNAL: usize = 64;

/// Deliveries per signal, counted by the handler.
static COUNTS: [AtomicU64; MAX_SIGNAL + 1] = [const { AtomicU64::new(0) }; MAX_SIGNAL + 1];

/// The write end of the wake-up pair, read by the handler (-1 until set up).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// The read end of the wake-up pair (the write end lives beside it).
struct Pipe {
    read: UnixStream,
    _write: UnixStream,
    reg: IoRegistration,
}

static PIPE: OnceLock<Pipe> = OnceLock::new();

/// Which signals have our handler installed.
static INSTALLED: Mutex<[bool; MAX_SIGNAL + 1]> = Mutex::new([false; MAX_SIGNAL + 1]);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe operations: an atomic add and write(2).
    let errno = io::Error::last_os_error().raw_os_error();
    if let Some(count) = usize::try_from(sig).ok().and_then(|s| COUNTS.get(s)) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `fd` is the write end of the pipe, kept open for the life
        // of the process (PIPE is never dropped); the buffer is one valid
        // byte. A full pipe (EAGAIN) is fine: a wake-up is pending anyway.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // Restore errno for the interrupted code.
    if let Some(e) = errno {
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { *libc::__errno_location() = e };
    }
}

fn pipe() -> io::Result<&'static Pipe> {
    if let Some(p) = PIPE.get() {
        return Ok(p);
    }
    // Create it once, under the lock, and publish the write end before any
    // handler can be installed (handlers are installed under the same lock).
    let _guard = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = PIPE.get() {
        return Ok(p);
    }
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    let reg = IoRegistration::new(read.as_raw_fd());
    let fd: RawFd = write.as_raw_fd();
    let _ = PIPE.set(Pipe {
        read,
        _write: write,
        reg,
    });
    WAKE_FD.store(fd, Ordering::SeqCst);
    Ok(PIPE.get().expect("set above under the lock"))
}

fn install(sig: i32) -> io::Result<usize> {
    let idx = usize::try_from(sig)
        .ok()
        .filter(|&s| (1..=MAX_SIGNAL).contains(&s))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no such signal: {sig}"),
            )
        })?;
    if matches!(
        sig,
        libc::SIGKILL | libc::SIGSTOP | libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
    ) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {sig} cannot be waited for (it cannot be caught or means a crash)"),
        ));
    }
    pipe()?;
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !installed[idx] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value
        // that we fill in before use.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid sigset_t owned by us.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // `action` is fully initialised and `on_signal` only does
        // async-signal-safe work; the old action is not asked for (null).
        crate::sys::syscall!(sigaction(sig, &action, std::ptr::null_mut()))?;
        installed[idx] = true;
    }
    Ok(idx)
}

/// Parks the caller until one of `signals` is delivered to the process after
/// this call began, and returns which one. Works from fibers (the worker runs
/// other fibers meanwhile) and from plain threads.
///
/// The first wait on a signal replaces its default action for the rest of the
/// process's life (see the module docs). `SIGKILL`, `SIGSTOP` and the crash
/// signals are an `InvalidInput` error.
///
/// ```no_run
/// # extern crate sylvan_runtime as sylvan;
/// let sig = sylvan::signal::wait_for(&[libc::SIGINT, libc::SIGTERM]).unwrap();
/// eprintln!("got signal {sig}, shutting down");
/// ```
pub fn wait_for(signals: &[i32]) -> io::Result<i32> {
    if signals.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no signals to wait for",
        ));
    }
    let mut watched = Vec::with_capacity(signals.len());
    for &sig in signals {
        let idx = install(sig)?;
        watched.push((sig, idx, COUNTS[idx].load(Ordering::SeqCst)));
    }
    let pipe = pipe()?;
    let fired = || {
        watched
            .iter()
            .find(|(_, idx, seen)| COUNTS[*idx].load(Ordering::SeqCst) != *seen)
    };
    pipe.reg.io(Direction::Read, None, || {
        // Drain wake-up bytes (every waiter checks the counts, so it does not
        // matter who reads them), then decide on the counts alone.
        let mut buf = [0u8; 64];
        while let Ok(1..) = std::io::Read::read(&mut &pipe.read, &mut buf) {}
        match fired() {
            Some(&(sig, _, _)) => Ok(sig),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    })
}

/// Installs the handler for `sig` now, then calls `on_delivery` on a thread
/// of its own each time `sig` arrives (deliveries that arrive while it runs
/// are seen on its return, never missed). For the runtime's own listeners
/// (`RuntimeBuilder::dump_on_signal`).
/// How many `on_each` listener threads are running (the monitor's
/// deadlock check counts them as sylvan's own).
pub(crate) static LISTENERS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn on_each(
    sig: i32,
    thread_name: &str,
    on_delivery: impl Fn() + Send + 'static,
) -> io::Result<()> {
    let idx = install(sig)?;
    let pipe = pipe()?;
    let mut seen = COUNTS[idx].load(Ordering::SeqCst);
    struct Listening;
    impl Drop for Listening {
        fn drop(&mut self) {
            LISTENERS.fetch_sub(1, Ordering::SeqCst);
        }
    }
    LISTENERS.fetch_add(1, Ordering::SeqCst);
    let listening = Listening;
    std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || loop {
            let _listening = &listening;
            let got = pipe.reg.io(Direction::Read, None, || {
                let mut buf = [0u8; 64];
                while let Ok(1..) = std::io::Read::read(&mut &pipe.read, &mut buf) {}
                let now = COUNTS[idx].load(Ordering::SeqCst);
                if now != seen {
                    Ok(now)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            });
            match got {
                Ok(now) => {
                    seen = now;
                    on_delivery();
                }
                Err(e) => {
                    crate::sys::report(format_args!(
                        "sylvan: stopped listening for signal {sig}: {e}"
                    ));
                    return;
                }
            }
        })?;
    Ok(())
}

/// Parks the caller until the process receives `SIGINT` (Ctrl-C) or
/// `SIGTERM` (what `kill` and service managers send), the usual "shut down
/// cleanly" request. See [`wait_for`].
///
/// ```no_run
/// # extern crate sylvan_runtime as sylvan;
/// sylvan::run(|| {
///     let server = sylvan::spawn(|| { /* accept loop */ });
///     sylvan::signal::ctrl_c().unwrap();
///     server.cancel(); // stop accepting; dropping the runtime ends the rest
/// });
/// ```
pub fn ctrl_c() -> io::Result<()> {
    wait_for(&[libc::SIGINT, libc::SIGTERM]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "sigaction; fibers switch stacks with inline asm")]
    fn a_raised_signal_wakes_fiber_and_thread_waiters() {
        let sig = libc::SIGUSR2;
        let rt = crate::Runtime::builder().workers(2).build().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let fibers: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                rt.spawn(move || {
                    install(sig).unwrap();
                    tx.send(()).unwrap();
                    wait_for(&[sig]).unwrap()
                })
            })
            .collect();
        let thread = std::thread::spawn(move || {
            tx.send(()).unwrap();
            wait_for(&[sig]).unwrap()
        });
        for _ in 0..5 {
            rx.recv().unwrap();
        }
        // Waiters may still be between "ready" and counting: keep raising
        // until all have returned (each raise is a new delivery).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(fibers.iter().all(|f| f.is_finished()) && thread.is_finished()) {
            assert!(
                std::time::Instant::now() < deadline,
                "a waiter missed the signal"
            );
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(sig) };
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for f in fibers {
            assert_eq!(f.join().unwrap(), sig);
        }
        assert_eq!(thread.join().unwrap(), sig);
    }

    #[test]
    fn uncatchable_signals_are_refused() {
        assert_eq!(
            wait_for(&[libc::SIGKILL]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            wait_for(&[0]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            wait_for(&[]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
