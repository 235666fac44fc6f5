//! How a hooked call gets blocking semantics without blocking the worker.
//!
//! * **Sockets**: the call is made with `MSG_DONTWAIT` (the descriptor's
//!   mode, which other processes may share, stays as its owner set it); on
//!   `EAGAIN` the fiber waits for readiness through the descriptor's
//!   [`IoRegistration`](crate::io::IoRegistration) and retries. Only a
//!   listener is switched to non-blocking mode (`accept` has no such flag),
//!   and a socket for the length of its `connect`.
//! * **Other pollable descriptors** (pipes, terminals): the fiber waits for
//!   readiness, then makes the blocking call (writes in `PIPE_BUF` pieces,
//!   which readiness guarantees room for).
//! * A plain thread that gets `EAGAIN` from a listener the patch switched
//!   waits in `poll(2)` as its blocking `accept` would.
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

/// Makes a listener of this process non-blocking underneath, once (for
/// `accept`, which has no `MSG_DONTWAIT`). `false` if that failed (the
/// caller then makes the plain blocking call).
pub(crate) fn switch(entry: &Entry) -> bool {
    if entry.desc.switched() {
        return true;
    }
    if !set_nonblocking(entry.fd(), true) {
        return false;
    }
    entry.desc.mark_switched();
    true
}

/// Sets or clears `O_NONBLOCK` on `fd` with libc's own `fcntl`. Returns
/// whether the flag was *changed* (false if it already was so, or on error).
pub(crate) fn set_nonblocking(fd: c_int, on: bool) -> bool {
    // SAFETY: F_GETFL/F_SETFL on a descriptor number; errors come back as -1.
    unsafe {
        let flags = real::fcntl(fd, libc::F_GETFL, 0);
        if flags == -1 || (flags & libc::O_NONBLOCK != 0) == on {
            return false;
        }
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        real::fcntl(fd, libc::F_SETFL, flags as _) != -1
    }
}

/// When the socket timeout for `dir` (`SO_RCVTIMEO`/`SO_SNDTIMEO`) of a call
/// starting now runs out.
pub(crate) fn deadline(entry: &Entry, dir: Direction) -> Option<Instant> {
    entry
        .desc
        .timeout(dir)
        .and_then(|t| Instant::now().checked_add(t))
}

/// `op`, a call on `entry`'s socket that does not block (made with
/// `MSG_DONTWAIT`, or on a switched listener) and returns -1 and `errno` on
/// failure, with blocking semantics: retried after each readiness edge in
/// `dir` until it does not report `EAGAIN`; gives up with `EAGAIN` at
/// `until`, as the kernel does when a socket timeout runs out.
pub(crate) fn on_socket(
    entry: &Entry,
    dir: Direction,
    until: Option<Instant>,
    mut op: impl FnMut() -> isize,
) -> isize {
    match guarded(|| entry.reg.io_unbudgeted(dir, until, || cvt(op()))) {
        Ok(Ok(n)) => n as isize,
        Ok(Err(e)) => fail(&e, libc::EAGAIN),
        Err(code) => {
            set_errno(code);
            -1
        }
    }
}

/// Repeats `step(done)` — a call that moves bytes from offset `done` and
/// returns how many (or -1 and `errno`) — until `len` bytes moved, a call
/// moves none (end of stream) or fails. Returns the bytes moved if any,
/// else the failure: how a blocking stream socket treats a large write or a
/// `MSG_WAITALL` read.
pub(crate) fn all(len: usize, mut step: impl FnMut(usize) -> isize) -> isize {
    let mut done = 0usize;
    loop {
        let n = step(done);
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

/// Whether the peer of stream socket `fd` has shut down its writing side
/// (no more data will arrive).
pub(crate) fn peer_closed(fd: c_int) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid, exclusively borrowed pollfd; zero timeout.
    let r = unsafe { real::poll(&mut pfd, 1, 0) };
    r > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

fn events(dir: Direction) -> libc::c_short {
    match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    }
}

/// Waits until `entry` is ready for `dir` or `until` passes. `Ok(true)`:
/// ready; `Ok(false)`: timed out; `Err(errno)`: an interruption. A
/// descriptor the reactor cannot watch (`epoll` refuses it) is waited for in
/// a blocking `poll(2)` instead.
pub(crate) fn wait_ready(
    entry: &Entry,
    dir: Direction,
    until: Option<Instant>,
) -> Result<bool, c_int> {
    let fd = entry.fd();
    let probe = || {
        if ready_now(fd, events(dir)) {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        }
    };
    match guarded(|| entry.reg.io_unbudgeted(dir, until, probe)) {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::TimedOut => {
            Ok(false)
        }
        Ok(Err(_)) => {
            let ms = until.map_or(-1, |at| {
                let left = at.saturating_duration_since(Instant::now());
                left.as_millis().min(c_int::MAX as u128) as c_int
            });
            let mut pfd = libc::pollfd {
                fd,
                events: events(dir),
                revents: 0,
            };
            // SAFETY: one valid, exclusively borrowed pollfd.
            Ok(unsafe { real::poll(&mut pfd, 1, ms) } != 0)
        }
        Err(code) => Err(code),
    }
}

/// A fiber's call on a pollable descriptor that is not a socket: waits for
/// readiness on the reactor, then makes the call, which then does not block
/// (unless another reader took the data first).
pub(crate) fn on_pollable(entry: &Entry, dir: Direction, op: impl FnOnce() -> isize) -> isize {
    match wait_ready(entry, dir, None) {
        Ok(_) => op(),
        Err(code) => {
            set_errno(code);
            -1
        }
    }
}

/// After a plain thread's call returned -1: if it failed with `EAGAIN` on
/// a listener that the patch made non-blocking and its owner did not, waits
/// as the blocking call would have (in `poll(2)`) and retries. Otherwise
/// returns the failure as it was.
pub(crate) fn thread_retry(fd: c_int, dir: Direction, op: impl FnMut() -> isize) -> isize {
    let code = errno();
    if code == libc::EAGAIN {
        if let Some(entry) = super::fds::hiding_nonblock(fd) {
            let until = deadline(&entry, dir);
            return on_socket(&entry, dir, until, op);
        }
    }
    set_errno(code);
    -1
}
