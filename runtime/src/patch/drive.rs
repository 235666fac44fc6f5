//! How a hooked call gets blocking semantics without blocking the worker:
//! try the call on the (non-blocking underneath) descriptor, wait for
//! readiness through its [`IoRegistration`](crate::io::IoRegistration) on
//! `EAGAIN`, retry. The same code serves a plain thread that calls on a
//! socket the patch switched: there the wait is `poll(2)`.
//!
//! Interruptions cannot unwind out of a hook (std and C libraries call libc
//! through frames that must not be unwound), so a cancellation or an expired
//! `sylvan::timeout` that is raised while a hook waits ends the call with an
//! error instead: `ECANCELED` or `ETIMEDOUT`, before anything was consumed.
//! Cancellation stays pending and is raised by the fiber's next park; the
//! timeout's scope returns `Elapsed` when the code inside returns.

use std::ffi::c_int;
use std::io;
use std::time::Instant;

use super::fds::Entry;
use super::real;
use crate::io::Direction;
use crate::park::{self, Interrupt};

/// The calling thread's `errno`.
pub(crate) fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for
    // the thread's lifetime.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e };
}

/// A libc-style result as `io::Result`.
fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Sets `errno` for a failed wait and returns -1. `on_timeout` is what the
/// kernel reports when a socket timeout (`SO_RCVTIMEO`...) runs out.
fn fail(e: &io::Error, on_timeout: c_int) -> isize {
    let code = match e.raw_os_error() {
        Some(code) => code,
        None if e.kind() == io::ErrorKind::TimedOut => on_timeout,
        None => libc::EIO,
    };
    set_errno(code);
    -1
}

/// Runs `f`; an interruption raised inside becomes `Err(errno)`. Any other
/// panic cannot unwind through a hook's C callers, so it aborts with a
/// report (it would be a bug in sylvan).
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, c_int> {
    match park::catch_interrupt(f) {
        Ok(v) => Ok(v),
        Err(Ok(Interrupt::Cancelled)) => Err(libc::ECANCELED),
        Err(Ok(Interrupt::TimedOut)) => Err(libc::ETIMEDOUT),
        Err(Err(payload)) => {
            let msg = crate::record::panic_message(&*payload).unwrap_or("(not a string)");
            crate::sys::report(format_args!(
                "sylvan::patch: a panic inside a patched libc call cannot unwind through its \
                 caller; aborting: {msg}"
            ));
            std::process::abort();
        }
    }
}

/// Makes a socket of this process non-blocking underneath, once. `false`
/// if that failed (the caller then makes the plain blocking call).
pub(crate) fn switch(entry: &Entry) -> bool {
    if entry.desc.switched() {
        return true;
    }
    let fd = entry.fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor number; errors come back as -1.
    let ok = unsafe {
        let flags = real::fcntl(fd, libc::F_GETFL, 0);
        flags != -1
            && (flags & libc::O_NONBLOCK != 0
                || real::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as _) != -1)
    };
    if ok {
        entry.desc.mark_switched();
    }
    ok
}

fn deadline(entry: &Entry, dir: Direction) -> Option<Instant> {
    entry
        .desc
        .timeout(dir)
        .and_then(|t| Instant::now().checked_add(t))
}

/// `op` (a libc call on `entry`'s socket returning -1 and `errno` on
/// failure) with blocking semantics: retried after each readiness edge in
/// `dir` until it does not report `EAGAIN`, honouring the socket's timeout
/// for `dir` as the kernel would (`EAGAIN` when it runs out).
pub(crate) fn on_socket(entry: &Entry, dir: Direction, mut op: impl FnMut() -> isize) -> isize {
    if !switch(entry) {
        return op();
    }
    let until = deadline(entry, dir);
    match guarded(|| entry.reg.io(dir, until, || cvt(op()))) {
        Ok(Ok(n)) => n as isize,
        Ok(Err(e)) => fail(&e, libc::EAGAIN),
        Err(code) => {
            set_errno(code);
            -1
        }
    }
}

/// Like [`on_socket`] for a stream write of `len` bytes: a blocking socket
/// writes them all unless an error (or a timeout) stops it, so the rest is
/// written after each short write. `op(done)` writes from offset `done`.
/// Returns the bytes written if any were, else -1 and `errno`.
pub(crate) fn write_all(entry: &Entry, len: usize, mut op: impl FnMut(usize) -> isize) -> isize {
    let mut done = 0usize;
    loop {
        let n = on_socket(entry, Direction::Write, || op(done));
        if n < 0 {
            return if done > 0 { done as isize } else { -1 };
        }
        done += n as usize;
        if done >= len || n == 0 {
            return done as isize;
        }
    }
}

/// Like [`on_socket`] for `MSG_WAITALL` reads: reads until `len` bytes, end
/// of stream or an error. `op(done)` reads into offset `done`.
pub(crate) fn read_all(entry: &Entry, len: usize, mut op: impl FnMut(usize) -> isize) -> isize {
    let mut done = 0usize;
    loop {
        let n = on_socket(entry, Direction::Read, || op(done));
        if n < 0 {
            return if done > 0 { done as isize } else { -1 };
        }
        done += n as usize;
        if done >= len || n == 0 {
            return done as isize;
        }
    }
}

/// Whether `fd` is ready for `events` right now (or in error).
pub(crate) fn ready_now(fd: c_int, events: libc::c_short) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid, exclusively borrowed pollfd; zero timeout.
    unsafe { real::poll(&mut pfd, 1, 0) > 0 }
}

fn events(dir: Direction) -> libc::c_short {
    match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    }
}

/// Waits until `entry` is ready for `dir` (or its socket timeout runs
/// out). `Ok(true)`: ready; `Ok(false)`: timed out; `Err(errno)`: an
/// interruption. A descriptor `epoll` cannot watch counts as ready (the
/// caller's blocking call then does the waiting).
pub(crate) fn wait_ready(entry: &Entry, dir: Direction) -> Result<bool, c_int> {
    let until = deadline(entry, dir);
    let fd = entry.fd();
    let probe = || {
        if ready_now(fd, events(dir)) {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        }
    };
    match guarded(|| entry.reg.io(dir, until, probe)) {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut && e.raw_os_error().is_none() => {
            Ok(false)
        }
        Ok(Err(_)) => Ok(true),
        Err(code) => Err(code),
    }
}

/// A fiber's call on a pollable descriptor the patch must not switch (a
/// pipe, a terminal, an inherited socket): waits for readiness on the
/// reactor, then makes the call, which then does not block (unless another
/// reader took the data first).
pub(crate) fn on_pollable(entry: &Entry, dir: Direction, op: impl FnOnce() -> isize) -> isize {
    match wait_ready(entry, dir) {
        Ok(true) => op(),
        Ok(false) => {
            set_errno(libc::EAGAIN);
            -1
        }
        Err(code) => {
            set_errno(code);
            -1
        }
    }
}

/// After a plain thread's call returned -1: if it failed with `EAGAIN` on
/// a socket that the patch made non-blocking and its owner did not, waits
/// as the blocking call would have (in `poll(2)`) and retries. Otherwise
/// returns the failure as it was.
pub(crate) fn thread_retry(fd: c_int, dir: Direction, op: impl FnMut() -> isize) -> isize {
    let code = errno();
    if code == libc::EAGAIN {
        if let Some(entry) = super::fds::hiding_nonblock(fd) {
            return on_socket(&entry, dir, op);
        }
    }
    set_errno(code);
    -1
}
