//! Waiting for Unix signals (Ctrl-C, `kill`) from fibers and threads.
//!
//! The first wait on a signal installs a handler for it that only counts the
//! delivery and writes one byte to a process-wide non-blocking socketpair
//! (both async-signal-safe). One thread of sylvan's, started with the pair,
//! reads those bytes and then wakes every waiter; waiters (fibers and
//! threads) park on a list, and return once a count has moved past what
//! they saw when they started waiting. Only that thread reads the pair (a
//! waiter that drained it could take the byte another waiter's wake-up
//! depended on), so every waiter sees every delivery that happens while it
//! waits, however many fibers and threads wait at once.
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
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::park::{self, WaitLabel, Waker};

/// Signals numbers 1..=64 (Linux's range, real-time signals included).
const MAX_SIGNAL: usize = 64;

/// Deliveries per signal, counted by the handler.
static COUNTS: [AtomicU64; MAX_SIGNAL + 1] = [const { AtomicU64::new(0) }; MAX_SIGNAL + 1];

/// The write end of the wake-up pair, read by the handler (-1 until set up).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// The process whose reader thread serves the wake-up pair (0: none yet).
/// Threads do not survive `fork`: a child forked without `exec` makes a
/// pair and reader of its own at its first wait.
static READER_PID: AtomicU32 = AtomicU32::new(0);

/// How many threads of sylvan's own are blocked outside its waits for
/// signals (the reader thread): the monitor's deadlock check counts them
/// as sylvan's.
pub(crate) static LISTENERS: AtomicUsize = AtomicUsize::new(0);

/// Everyone waiting for a delivery; the reader thread wakes them all after
/// each batch of wake-up bytes.
static WAITERS: parking_lot::Mutex<Vec<Waker>> = parking_lot::Mutex::new(Vec::new());

/// How many [`wait_for`] calls are waiting: the monitor's deadlock check
/// does not report fibers a signal may still wake.
pub(crate) static WAITING: AtomicUsize = AtomicUsize::new(0);

/// The reader thread: reads the wake-up bytes as they come and wakes every
/// waiter (they re-check the counts). Stops, saying why, if the pair fails
/// (only if the program closed a descriptor it does not own).
fn read_wakeups(read: &UnixStream) {
    let failed = loop {
        // A plain thread: poll(2) blocks it (the patch passes it through).
        if let Err(e) = crate::sys::poll_one(read.as_raw_fd(), libc::POLLIN, -1) {
            break e;
        }
        let mut buf = [0u8; 64];
        let drained = loop {
            match std::io::Read::read(&mut &*read, &mut buf) {
                Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let woken = std::mem::take(&mut *WAITERS.lock());
        for w in woken {
            w.wake();
        }
        if let Err(e) = drained {
            break e;
        }
    };
    crate::sys::report(format_args!(
        "sylvan: the signal reader thread stopped: its wake-up socket failed ({failed}); \
         a new one is made for the waits"
    ));
    // The next wait (and every waiter, woken to look) makes a new pair
    // and reader.
    LISTENERS.store(0, Ordering::SeqCst);
    READER_PID.store(0, Ordering::SeqCst);
    for w in std::mem::take(&mut *WAITERS.lock()) {
        w.wake();
    }
}

/// Parks the caller until `fired` has an answer (register, re-check, park:
/// a wake-up after the registration is never missed). A cancellation point;
/// the caller leaves the list however it returns.
fn wait_until<T>(label: &'static WaitLabel, fired: impl Fn() -> Option<T>) -> T {
    struct Leave(Waker);
    impl Drop for Leave {
        fn drop(&mut self) {
            WAITERS.lock().retain(|w| !w.will_wake(&self.0));
        }
    }
    let leave = Leave(park::current_waker());
    loop {
        {
            let mut list = WAITERS.lock();
            if !list.iter().any(|w| w.will_wake(&leave.0)) {
                list.push(leave.0.clone());
            }
        }
        if let Some(v) = fired() {
            return v;
        }
        park::park_for(label);
        // A reader that stopped is replaced (a failure to make one is
        // retried at the next wake-up: the counts still move).
        let _ = pipe();
    }
}

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
        // SAFETY: `fd` is the write end of a wake-up pair, never closed
        // (`pipe` leaks it on purpose); the buffer is one valid byte. A
        // full pair (EAGAIN) is fine: a wake-up is pending anyway.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // Restore errno for the interrupted code.
    if let Some(e) = errno {
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { *libc::__errno_location() = e };
    }
}

/// `pthread_atfork` child handler: the parent's waits and reader thread did
/// not come along.
extern "C" fn forked_child() {
    WAITING.store(0, Ordering::SeqCst);
    LISTENERS.store(0, Ordering::SeqCst);
}

/// Makes sure this process has the wake-up pair and its reader thread.
fn pipe() -> io::Result<()> {
    let pid = std::process::id();
    if READER_PID.load(Ordering::Acquire) == pid {
        return Ok(());
    }
    // Under the lock handlers are installed under, so the write end is
    // published before any handler can run.
    let _guard = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if READER_PID.load(Ordering::Acquire) == pid {
        return Ok(());
    }
    if READER_PID.load(Ordering::Acquire) != 0 {
        // A child forked after the parent waited for signals: the parent's
        // waiters are not in this process (forgotten, not dropped: their
        // records belong to the parent's runtime), nor is its reader.
        std::mem::forget(std::mem::take(&mut *WAITERS.lock()));
    } else {
        // A child forked later starts with no waiter and no reader in the
        // monitor's counts (threads do not survive fork; these atomics do).
        static AT_FORK: std::sync::Once = std::sync::Once::new();
        AT_FORK.call_once(|| {
            // SAFETY: registers a handler that only stores to atomics
            // (allowed in a forked child of a threaded process).
            unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
        });
    }
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("sylvan-signal".into())
        .spawn(move || read_wakeups(&read))?;
    // The reader is sylvan's own thread, blocked outside its waits.
    LISTENERS.store(1, Ordering::SeqCst);
    // The write end stays open for the life of the process: a handler may
    // write to it at any moment (a child's old one stays open too).
    WAKE_FD.store(write.into_raw_fd(), Ordering::SeqCst);
    READER_PID.store(pid, Ordering::Release);
    Ok(())
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
    pipe()?;
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            // Saturating: a fork zeroes the count (`forked_child`), and a
            // fiber of the forking worker may have been waiting then.
            let _ = WAITING.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
    }
    WAITING.fetch_add(1, Ordering::SeqCst);
    let _waiting = Waiting;
    static LABEL: WaitLabel = WaitLabel("signal::wait_for");
    Ok(wait_until(&LABEL, || {
        watched
            .iter()
            .find(|(_, idx, seen)| COUNTS[*idx].load(Ordering::SeqCst) != *seen)
            .map(|&(sig, _, _)| sig)
    }))
}

/// Installs the handler for `sig` now, then calls `on_delivery` on a thread
/// of its own each time `sig` arrives (deliveries that arrive while it runs
/// are seen on its return, never missed). For the runtime's own listeners
/// (`RuntimeBuilder::dump_on_signal`).
pub(crate) fn on_each(
    sig: i32,
    thread_name: &str,
    on_delivery: impl Fn() + Send + 'static,
) -> io::Result<()> {
    let idx = install(sig)?;
    pipe()?;
    let mut seen = COUNTS[idx].load(Ordering::SeqCst);
    static LABEL: WaitLabel = WaitLabel("signal::on_each");
    // Parked in sylvan's own wait between deliveries, so the deadlock
    // check counts it as sylvan's (and, not being a `wait_for`, as nothing
    // that keeps fibers from being deadlocked).
    std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || loop {
            seen = wait_until(&LABEL, || {
                let now = COUNTS[idx].load(Ordering::SeqCst);
                (now != seen).then_some(now)
            });
            on_delivery();
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

    /// A thread waiting for one signal sees every delivery while a fiber
    /// waits for another (found by review: every waiter drained the shared
    /// wake-up socket, so the fiber could take the byte the thread's poll
    /// was waiting for, and the thread slept through its signal).
    #[test]
    #[cfg_attr(miri, ignore = "sigaction; fibers switch stacks with inline asm")]
    fn a_thread_waiter_sees_each_delivery_beside_another_waiter() {
        let (sig, other_sig) = (libc::SIGUSR1, libc::SIGURG);
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        install(other_sig).unwrap();
        let other = rt.spawn(move || wait_for(&[other_sig]));
        install(sig).unwrap();
        for round in 0..15 {
            let (ready_tx, ready) = std::sync::mpsc::channel();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                ready_tx.send(()).unwrap();
                let _ = tx.send(wait_for(&[sig]).map_err(|e| e.to_string()));
            });
            ready.recv().unwrap();
            // Let the thread park (a delivery before that is seen too).
            std::thread::sleep(std::time::Duration::from_millis(20));
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(sig) };
            let got = rx.recv_timeout(std::time::Duration::from_secs(10));
            assert_eq!(got, Ok(Ok(sig)), "round {round}: the delivery was seen");
        }
        other.cancel();
        assert!(other.join().unwrap_err().is_cancelled());
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
