//! The hooked descriptor calls: sockets' life cycle (`socket`, `accept`,
//! `connect`, `close`, `close_range`, `closefrom`, `dup`s), their data
//! (`read`... `sendmsg`) and their mode (`fcntl`, `ioctl(FIONBIO)`,
//! `setsockopt` timeouts).
//!
//! Every hook first asks whether the caller is a fiber (one thread-local
//! load). A plain thread's call goes straight to libc (the fiber path is out
//! of line, so it costs the plain one nothing); only `accept` looks further,
//! when it fails: a listener a fiber made non-blocking must still block for
//! a thread (`drive::thread_retry`).

use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::time::{Duration, Instant};

use libc::{iovec, msghdr, sockaddr, socklen_t};

use super::drive::{self, errno, set_errno};
use super::fds::{self, Desc, Mode};
use super::{active, real};
use crate::io::Direction;
use crate::record;

fn in_fiber() -> bool {
    !record::current_ptr().is_null()
}

/// How a fiber's call on `fd` is handled: `Pass` with the patch off, or
/// when the caller asked for `MSG_DONTWAIT` itself.
fn fiber_mode(fd: c_int, flags: c_int) -> Mode {
    if flags & libc::MSG_DONTWAIT == 0 && active() {
        fds::mode_in_fiber(fd)
    } else {
        Mode::Pass
    }
}

/// Runs a data call on `fd` with the patch's semantics (see the module
/// docs). `flags` are the caller's `MSG_*` flags (0 for read/write);
/// `op(extra)` makes the call with `extra` flags added — `MSG_DONTWAIT` on
/// a socket in a fiber, else 0 (the caller's own call). Off fibers this is
/// the thread-local check and the call: the fiber path is kept out of line.
#[inline(always)]
fn data_call(fd: c_int, dir: Direction, flags: c_int, mut op: impl FnMut(c_int) -> isize) -> isize {
    if !in_fiber() {
        return op(0);
    }
    fiber_data_call(fiber_mode(fd, flags), dir, op)
}

#[inline(never)]
fn fiber_data_call(mode: Mode, dir: Direction, mut op: impl FnMut(c_int) -> isize) -> isize {
    match mode {
        Mode::Pass => op(0),
        Mode::Socket(entry) => {
            let until = drive::deadline(&entry, dir);
            drive::on_socket(&entry, dir, until, || op(libc::MSG_DONTWAIT))
        }
        Mode::Pollable(entry) => drive::on_pollable(&entry, dir, || op(0)),
    }
}

/// A write of `len` bytes. In a fiber a blocking stream socket's write
/// writes them all (the rest follows each short `MSG_DONTWAIT` write, under
/// one `SO_SNDTIMEO` deadline), and a pipe's is made in `PIPE_BUF` pieces,
/// each after readiness (which guarantees room for one). `op(done, max,
/// extra)` writes up to `max` bytes from offset `done` with `extra` flags.
#[inline(always)]
fn write_call(
    fd: c_int,
    len: usize,
    flags: c_int,
    op: impl Fn(usize, usize, c_int) -> isize,
) -> isize {
    if !in_fiber() {
        return op(0, usize::MAX, 0);
    }
    fiber_write_call(fd, len, flags, op)
}

#[inline(never)]
fn fiber_write_call(
    fd: c_int,
    len: usize,
    flags: c_int,
    op: impl Fn(usize, usize, c_int) -> isize,
) -> isize {
    match fiber_mode(fd, flags) {
        Mode::Socket(entry) if entry.desc.stream => {
            let until = drive::deadline(&entry, Direction::Write);
            drive::all(len, |done| {
                drive::on_socket(&entry, Direction::Write, until, || {
                    op(done, usize::MAX, libc::MSG_DONTWAIT)
                })
            })
        }
        Mode::Pollable(entry) => drive::all(len, |done| {
            drive::on_pollable(&entry, Direction::Write, || op(done, libc::PIPE_BUF, 0))
        }),
        mode => fiber_data_call(mode, Direction::Write, |extra| op(0, usize::MAX, extra)),
    }
}

/// A read of up to `len` bytes. `MSG_WAITALL` on a stream socket in a fiber
/// waits for all of them (or end of stream), as the kernel would; with
/// `MSG_PEEK` too, the whole length is peeked again after each edge (a peek
/// consumes nothing, so pieces would repeat).
#[inline(always)]
fn recv_call(fd: c_int, len: usize, flags: c_int, op: impl Fn(usize, c_int) -> isize) -> isize {
    if !in_fiber() {
        return op(0, 0);
    }
    fiber_recv_call(fd, len, flags, op)
}

#[inline(never)]
fn fiber_recv_call(
    fd: c_int,
    len: usize,
    flags: c_int,
    op: impl Fn(usize, c_int) -> isize,
) -> isize {
    let mode = fiber_mode(fd, flags);
    let waitall = flags & libc::MSG_WAITALL != 0;
    match mode {
        Mode::Socket(entry) if waitall && entry.desc.stream => {
            let until = drive::deadline(&entry, Direction::Read);
            if flags & libc::MSG_PEEK != 0 {
                // Peek the whole length again after each edge, until all
                // of it is there or the peer has closed (then what there is).
                return drive::on_socket(&entry, Direction::Read, until, || {
                    let r = op(0, libc::MSG_DONTWAIT);
                    if r > 0 && (r as usize) < len && !drive::peer_closed(entry.fd()) {
                        set_errno(libc::EAGAIN);
                        return -1;
                    }
                    r
                });
            }
            drive::all(len, |done| {
                drive::on_socket(&entry, Direction::Read, until, || {
                    op(done, libc::MSG_DONTWAIT)
                })
            })
        }
        mode => fiber_data_call(mode, Direction::Read, |extra| op(0, extra)),
    }
}

/// `buf + done` with `max` of the `n - done` bytes left.
fn piece(buf: *const c_void, n: usize, done: usize, max: usize) -> (*const c_void, usize) {
    (
        buf.cast::<u8>().wrapping_add(done).cast(),
        (n - done).min(max),
    )
}

/// A message header for `readv`/`writev` made as `recvmsg`/`sendmsg` (what
/// takes `MSG_DONTWAIT`).
fn iov_msg(iov: *const iovec, cnt: c_int) -> msghdr {
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = cnt.max(0) as _;
    msg
}

/// Hook for `read(2)` (on a socket in a fiber: `recv` with `MSG_DONTWAIT`).
#[export_name = "read"]
pub unsafe extern "C" fn read_hook(fd: c_int, buf: *mut c_void, n: usize) -> isize {
    data_call(fd, Direction::Read, 0, |extra| {
        // SAFETY: forwards the caller's arguments to libc under its contract.
        unsafe {
            match extra {
                0 => real::read(fd, buf, n),
                _ => real::recv(fd, buf, n, extra),
            }
        }
    })
}

/// Hook for `readv(2)` (on a socket in a fiber: `recvmsg`).
#[export_name = "readv"]
pub unsafe extern "C" fn readv_hook(fd: c_int, iov: *const iovec, cnt: c_int) -> isize {
    data_call(fd, Direction::Read, 0, |extra| {
        let mut msg = iov_msg(iov, cnt);
        // SAFETY: forwards the caller's arguments to libc under its contract.
        unsafe {
            match extra {
                0 => real::readv(fd, iov, cnt),
                _ => real::recvmsg(fd, &mut msg, extra),
            }
        }
    })
}

/// Hook for `recv(2)`.
#[export_name = "recv"]
pub unsafe extern "C" fn recv_hook(fd: c_int, buf: *mut c_void, n: usize, flags: c_int) -> isize {
    recv_call(fd, n, flags, |done, extra| {
        let (at, left) = piece(buf, n, done, usize::MAX);
        // SAFETY: `done <= n`, so this stays inside the caller's buffer;
        // forwards to libc under the caller's contract.
        unsafe { real::recv(fd, at.cast_mut(), left, flags | extra) }
    })
}

/// Hook for `recvfrom(2)`.
#[export_name = "recvfrom"]
pub unsafe extern "C" fn recvfrom_hook(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> isize {
    recv_call(fd, n, flags, |done, extra| {
        let (at, left) = piece(buf, n, done, usize::MAX);
        // SAFETY: `done <= n`, so this stays inside the caller's buffer;
        // forwards to libc under the caller's contract.
        unsafe { real::recvfrom(fd, at.cast_mut(), left, flags | extra, addr, len) }
    })
}

/// The bytes `msg`'s buffers hold in all.
///
/// # Safety
/// `msg.msg_iov` points to `msg.msg_iovlen` iovecs (`sendmsg`'s and
/// `recvmsg`'s contract), or is null.
unsafe fn iov_total(msg: &msghdr) -> usize {
    // SAFETY: the caller's contract.
    unsafe { iovs(msg) }
        .iter()
        .fold(0usize, |n, v| n.saturating_add(v.iov_len))
}

/// `msg`'s iovecs as a slice.
///
/// # Safety
/// As [`iov_total`].
unsafe fn iovs(msg: &msghdr) -> &[iovec] {
    if msg.msg_iov.is_null() || msg.msg_iovlen == 0 {
        return &[];
    }
    // SAFETY: the caller's contract: `msg_iovlen` valid iovecs.
    unsafe { std::slice::from_raw_parts(msg.msg_iov, msg.msg_iovlen) }
}

/// The iovecs of `msg` past its first `done` bytes: what is left of a
/// message a stream socket moved part of.
///
/// # Safety
/// As [`iov_total`].
unsafe fn iovs_after(msg: &msghdr, done: usize) -> Vec<iovec> {
    let mut skip = done;
    let mut rest = Vec::new();
    // SAFETY: the caller's contract.
    for v in unsafe { iovs(msg) } {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        rest.push(iovec {
            iov_base: v.iov_base.cast::<u8>().wrapping_add(skip).cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    rest
}

/// `msg` for the part after its first `done` bytes, pointing into `rest`
/// ([`iovs_after`]), with no ancillary data (that went with the first
/// part) and no address (a stream socket's is its peer's).
fn msg_rest(msg: &msghdr, rest: &[iovec]) -> msghdr {
    let mut piece = *msg;
    piece.msg_iov = rest.as_ptr().cast_mut();
    piece.msg_iovlen = rest.len() as _;
    piece.msg_control = std::ptr::null_mut();
    piece.msg_controllen = 0;
    piece.msg_name = std::ptr::null_mut();
    piece.msg_namelen = 0;
    piece
}

/// Moves every byte of `msg`'s buffers over a blocking stream socket in a
/// fiber, waiting when it would block: `call(header)` makes one
/// `MSG_DONTWAIT` call; after a short one the next covers the rest
/// ([`msg_rest`]). With `flags_back` the later calls' `msg_flags` go back
/// to the caller's header (`recvmsg`'s output).
///
/// # Safety
/// `msg` is a valid header over valid iovecs (`sendmsg`'s and `recvmsg`'s
/// contract), writable if `flags_back`; `call` passes it to libc.
unsafe fn whole_message(
    entry: &fds::Entry,
    dir: Direction,
    msg: *mut msghdr,
    flags_back: bool,
    call: impl Fn(*mut msghdr) -> isize,
) -> isize {
    // SAFETY: the caller's contract.
    let len = unsafe { iov_total(&*msg) };
    let until = drive::deadline(entry, dir);
    drive::all(len, |done| {
        drive::on_socket(entry, dir, until, || {
            if done == 0 {
                return call(msg);
            }
            // SAFETY: the caller's contract.
            let rest = unsafe { iovs_after(&*msg, done) };
            // SAFETY: as above.
            let mut piece = msg_rest(unsafe { &*msg }, &rest);
            // `piece` points into the caller's buffers, past the bytes
            // already moved, and at `rest`, which outlives the call.
            let r = call(&mut piece);
            if flags_back {
                // SAFETY: the caller's contract: writable with `flags_back`.
                unsafe { (*msg).msg_flags = piece.msg_flags };
            }
            r
        })
    })
}

/// Hook for `recvmsg(2)`. `MSG_WAITALL` on a stream socket in a fiber waits
/// for all the bytes, as for `recv`, unless the caller also asks for
/// ancillary data or peeks (then one call's worth, as documented).
#[export_name = "recvmsg"]
pub unsafe extern "C" fn recvmsg_hook(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize {
    let waitall = flags & (libc::MSG_WAITALL | libc::MSG_PEEK) == libc::MSG_WAITALL;
    if in_fiber() && waitall && !msg.is_null() {
        // SAFETY: recvmsg's contract: a non-null `msg` is a valid header.
        let plain = unsafe { (*msg).msg_controllen } == 0;
        if let Mode::Socket(entry) = fiber_mode(fd, flags) {
            if entry.desc.stream && plain {
                let dontwait = flags | libc::MSG_DONTWAIT;
                // SAFETY: recvmsg's contract: a valid, writable header over
                // valid buffers; each call gets it or a part of it.
                return unsafe {
                    whole_message(&entry, Direction::Read, msg, true, |m| {
                        real::recvmsg(fd, m, dontwait)
                    })
                };
            }
        }
    }
    // SAFETY: forwards the caller's arguments to libc under its contract.
    data_call(fd, Direction::Read, flags, |extra| unsafe {
        real::recvmsg(fd, msg, flags | extra)
    })
}

/// Hook for `write(2)` (on a socket in a fiber: `send` with `MSG_DONTWAIT`).
#[export_name = "write"]
pub unsafe extern "C" fn write_hook(fd: c_int, buf: *const c_void, n: usize) -> isize {
    write_call(fd, n, 0, |done, max, extra| {
        let (at, left) = piece(buf, n, done, max);
        // SAFETY: `done <= n`, inside the caller's buffer; libc's contract.
        unsafe {
            match extra {
                0 => real::write(fd, at, left),
                _ => real::send(fd, at, left, extra),
            }
        }
    })
}

/// Hook for `writev(2)` (a short write is returned as such, as POSIX allows).
#[export_name = "writev"]
pub unsafe extern "C" fn writev_hook(fd: c_int, iov: *const iovec, cnt: c_int) -> isize {
    data_call(fd, Direction::Write, 0, |extra| {
        let msg = iov_msg(iov, cnt);
        // SAFETY: forwards the caller's arguments to libc under its contract.
        unsafe {
            match extra {
                0 => real::writev(fd, iov, cnt),
                _ => real::sendmsg(fd, &msg, extra),
            }
        }
    })
}

/// Hook for `send(2)`.
#[export_name = "send"]
pub unsafe extern "C" fn send_hook(fd: c_int, buf: *const c_void, n: usize, flags: c_int) -> isize {
    write_call(fd, n, flags, |done, max, extra| {
        let (at, left) = piece(buf, n, done, max);
        // SAFETY: `done <= n`, inside the caller's buffer; libc's contract.
        unsafe { real::send(fd, at, left, flags | extra) }
    })
}

/// Hook for `sendto(2)`.
#[export_name = "sendto"]
pub unsafe extern "C" fn sendto_hook(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> isize {
    write_call(fd, n, flags, |done, max, extra| {
        let (at, left) = piece(buf, n, done, max);
        // SAFETY: `done <= n`, inside the caller's buffer; libc's contract.
        unsafe { real::sendto(fd, at, left, flags | extra, addr, len) }
    })
}

/// Hook for `sendmsg(2)`. On a blocking stream socket in a fiber it sends
/// every byte, as `send` does (ancillary data goes with the first part).
#[export_name = "sendmsg"]
pub unsafe extern "C" fn sendmsg_hook(fd: c_int, msg: *const msghdr, flags: c_int) -> isize {
    if in_fiber() && !msg.is_null() {
        if let Mode::Socket(entry) = fiber_mode(fd, flags) {
            if entry.desc.stream {
                let dontwait = flags | libc::MSG_DONTWAIT;
                // SAFETY: sendmsg's contract: a valid header over valid
                // buffers, which is only read (`flags_back` false).
                return unsafe {
                    whole_message(&entry, Direction::Write, msg.cast_mut(), false, |m| {
                        real::sendmsg(fd, m, dontwait)
                    })
                };
            }
        }
    }
    // SAFETY: forwards the caller's arguments to libc under its contract.
    data_call(fd, Direction::Write, flags, |extra| unsafe {
        real::sendmsg(fd, msg, flags | extra)
    })
}

/// Hook for `socket(2)`: the new socket is this process's own.
#[export_name = "socket"]
pub unsafe extern "C" fn socket_hook(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    let fd = unsafe { real::socket(domain, ty, proto) };
    if fd >= 0 && active() {
        fds::insert(fd, Desc::own_socket(ty, ty & libc::SOCK_NONBLOCK != 0));
    }
    fd
}

/// Hook for `socketpair(2)`.
#[export_name = "socketpair"]
pub unsafe extern "C" fn socketpair_hook(
    domain: c_int,
    ty: c_int,
    proto: c_int,
    sv: *mut c_int,
) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    let r = unsafe { real::socketpair(domain, ty, proto, sv) };
    if r == 0 && active() {
        // SAFETY: on success libc wrote two descriptors to `sv`.
        let pair = unsafe { [*sv, *sv.add(1)] };
        for fd in pair {
            fds::insert(fd, Desc::own_socket(ty, ty & libc::SOCK_NONBLOCK != 0));
        }
    }
    r
}

/// `accept`/`accept4` in any context: waits like a read, and records the
/// new socket as this process's own. In a fiber a listener of this process
/// is switched to non-blocking mode (there is no `MSG_DONTWAIT` for
/// `accept`); an inherited one is waited for, then accepted from (which
/// blocks if another process took the connection first).
fn accept_call(fd: c_int, flags: c_int, mut op: impl FnMut() -> isize) -> c_int {
    let mode = if in_fiber() {
        fiber_mode(fd, 0)
    } else {
        Mode::Pass
    };
    let r = match mode {
        // Only a listener is switched: a mistaken `accept` on another socket
        // is the kernel's (`EINVAL` at once), and leaves it blocking.
        Mode::Socket(entry) if entry.desc.own && !entry.desc.switched() && !is_listening(fd) => {
            op()
        }
        Mode::Socket(entry) if entry.desc.own && drive::switch(&entry) => {
            let until = drive::deadline(&entry, Direction::Read);
            drive::on_socket(&entry, Direction::Read, until, op)
        }
        Mode::Socket(entry) | Mode::Pollable(entry) => {
            drive::on_pollable(&entry, Direction::Read, op)
        }
        Mode::Pass => match op() {
            // A plain thread on a listener a fiber switched: block as it
            // expects.
            -1 if !in_fiber() => drive::thread_retry(fd, Direction::Read, op),
            r => r,
        },
    } as c_int;
    if r >= 0 && active() {
        fds::insert(
            r,
            Desc::own_socket(libc::SOCK_STREAM, flags & libc::SOCK_NONBLOCK != 0),
        );
    }
    r
}

/// Hook for `accept(2)`.
#[export_name = "accept"]
pub unsafe extern "C" fn accept_hook(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    accept_call(fd, 0, || unsafe { real::accept(fd, addr, len) } as isize)
}

/// Hook for `accept4(2)` (what std's `TcpListener::accept` calls).
#[export_name = "accept4"]
pub unsafe extern "C" fn accept4_hook(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    accept_call(fd, flags, || unsafe { real::accept4(fd, addr, len, flags) }
        as isize)
}

/// Hook for `connect(2)`. In a fiber the socket is made non-blocking for
/// the length of the call (and back after), the connection started, and the
/// fiber waits for it to finish; its `SO_SNDTIMEO` bounds the wait
/// (`EINPROGRESS` then, as the kernel reports).
#[export_name = "connect"]
pub unsafe extern "C" fn connect_hook(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    let start = || unsafe { real::connect(fd, addr, len) };
    if !in_fiber() {
        return start();
    }
    let Mode::Socket(entry) = fiber_mode(fd, 0) else {
        return start();
    };
    let switched = drive::set_nonblocking(fd, true);
    let r = start();
    let r = match errno() {
        _ if r == 0 => r,
        libc::EINPROGRESS => finish_connect(&entry),
        libc::EAGAIN if is_unix(fd) => retry_unix_connect(&entry, start),
        _ => r,
    };
    if switched {
        let code = errno();
        drive::set_nonblocking(fd, false);
        set_errno(code);
    }
    r
}

/// The `SOL_SOCKET` option `name` of `fd` as an integer (`None` if the
/// call fails). Preserves `errno`.
fn socket_int(fd: c_int, name: c_int) -> Option<c_int> {
    let saved = errno();
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: `value`/`len` are valid out-parameters of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut c_int).cast(),
            &mut len,
        )
    };
    set_errno(saved);
    (r == 0).then_some(value)
}

/// Whether `fd` is a Unix-domain socket. Preserves `errno`.
fn is_unix(fd: c_int) -> bool {
    socket_int(fd, libc::SO_DOMAIN) == Some(libc::AF_UNIX)
}

/// Whether `fd` is a listening socket. Preserves `errno`.
fn is_listening(fd: c_int) -> bool {
    socket_int(fd, libc::SO_ACCEPTCONN).is_some_and(|v| v != 0)
}

/// A Unix-domain `connect` the listener's full backlog refused (`EAGAIN`,
/// where a blocking socket waits for room): retried after a back-off of
/// 1 ms doubling to 50 ms, as `sylvan::net`'s is, until it is not refused
/// or the socket's `SO_SNDTIMEO` runs out (then `EAGAIN`, as the kernel's).
fn retry_unix_connect(entry: &fds::Entry, start: impl Fn() -> c_int) -> c_int {
    let until = drive::deadline(entry, Direction::Write);
    let mut wait = Duration::from_millis(1);
    loop {
        let now = Instant::now();
        if until.is_some_and(|u| now >= u) {
            set_errno(libc::EAGAIN);
            return -1;
        }
        let at = until.map_or(now + wait, |u| u.min(now + wait));
        if let Err(code) = drive::guarded(|| crate::park::park_until(at)) {
            set_errno(code);
            return -1;
        }
        wait = (wait * 2).min(Duration::from_millis(50));
        let r = start();
        if r == 0 || errno() != libc::EAGAIN {
            return r;
        }
    }
}

/// Waits for a connection in progress; its outcome as `connect` reports it.
fn finish_connect(entry: &fds::Entry) -> c_int {
    let until = drive::deadline(entry, Direction::Write);
    match drive::wait_ready(entry, Direction::Write, until) {
        Ok(true) => {}
        Ok(false) => {
            set_errno(libc::EINPROGRESS);
            return -1;
        }
        Err(code) => {
            set_errno(code);
            return -1;
        }
    }
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: `err`/`len` are valid, exclusively borrowed out-parameters of
    // the sizes given.
    let r = unsafe {
        libc::getsockopt(
            entry.fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut c_int).cast(),
            &mut len,
        )
    };
    if r == -1 {
        return -1;
    }
    if err != 0 {
        set_errno(err);
        return -1;
    }
    0
}

/// Hook for `close(2)`: forgets the descriptor (leaving the `epoll` sets it
/// joined) before it is closed.
#[export_name = "close"]
pub unsafe extern "C" fn close_hook(fd: c_int) -> c_int {
    if active() {
        fds::forget(fd);
    }
    // SAFETY: forwards the caller's argument to libc under its contract.
    unsafe { real::close(fd) }
}

/// `close_range(2)`'s flag that unshares the descriptor table first (the
/// range is still closed, in this process; declared here: older `libc`
/// crates lack it). The other, `CLOSE_RANGE_CLOEXEC`, closes nothing.
const CLOSE_RANGE_UNSHARE: c_uint = 1 << 1;

/// Hook for `close_range(2)` (glibc 2.34+): forgets the numbers it closes,
/// as `close` does one.
#[export_name = "close_range"]
pub unsafe extern "C" fn close_range_hook(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // Only for a call that will close the range: not for CLOEXEC, nor for
    // flags this kernel may refuse (`EINVAL`: nothing is closed).
    if active() && first <= last && flags as c_uint & !CLOSE_RANGE_UNSHARE == 0 {
        fds::forget_range(clamp_fd(first), clamp_fd(last));
    }
    // SAFETY: forwards the caller's arguments to libc under its contract.
    unsafe { real::close_range(first, last, flags) }
}

/// Hook for `closefrom(3)` (glibc 2.34+): forgets every number from `low`
/// up, as `close` does one.
#[export_name = "closefrom"]
pub unsafe extern "C" fn closefrom_hook(low: c_int) {
    if active() {
        fds::forget_range(low, c_int::MAX);
    }
    // SAFETY: forwards the caller's argument to libc under its contract.
    unsafe { real::closefrom(low) }
}

/// A `close_range` bound as a descriptor number (`~0U`, "all", is the
/// largest).
fn clamp_fd(n: c_uint) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// Hook for `fclose(3)`: forgets the stream's descriptor before libc closes
/// it (glibc's own close inside `fclose` does not reach the `close` hook).
#[export_name = "fclose"]
pub unsafe extern "C" fn fclose_hook(stream: *mut libc::FILE) -> c_int {
    if active() && !stream.is_null() {
        // SAFETY: fclose's contract: `stream` is an open stream.
        let fd = unsafe { libc::fileno(stream) };
        if fd >= 0 {
            fds::forget(fd);
        }
    }
    // SAFETY: forwards the caller's argument to libc under its contract.
    unsafe { real::fclose(stream) }
}

/// Hook for `dup(2)`.
#[export_name = "dup"]
pub unsafe extern "C" fn dup_hook(fd: c_int) -> c_int {
    // SAFETY: forwards the caller's argument to libc under its contract.
    let new = unsafe { real::dup(fd) };
    if new >= 0 && active() {
        fds::duplicate(fd, new);
    }
    new
}

/// `dup2`/`dup3`: `new` is closed first (so it leaves the `epoll` sets
/// while it still names the old file), then made a copy of `old`.
fn dup_onto(old: c_int, new: c_int, op: impl FnOnce() -> c_int) -> c_int {
    if !active() {
        return op();
    }
    // SAFETY: F_GETFD takes no argument; tells whether `old` is open.
    let old_open = unsafe { real::fcntl(old, libc::F_GETFD, 0) } != -1;
    if old != new && old_open {
        fds::forget(new);
    }
    let r = op();
    if r >= 0 && old != new {
        fds::duplicate(old, r);
    }
    r
}

/// Hook for `dup2(2)`.
#[export_name = "dup2"]
pub unsafe extern "C" fn dup2_hook(old: c_int, new: c_int) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    dup_onto(old, new, || unsafe { real::dup2(old, new) })
}

/// Hook for `dup3(2)`.
#[export_name = "dup3"]
pub unsafe extern "C" fn dup3_hook(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    dup_onto(old, new, || unsafe { real::dup3(old, new, flags) })
}

/// `fcntl`/`fcntl64`: remembers the owner's own `O_NONBLOCK` choice, keeps
/// a switched socket non-blocking underneath and hides that from `F_GETFL`.
fn fcntl_call(fd: c_int, cmd: c_int, arg: c_ulong, op: impl Fn(c_ulong) -> c_int) -> c_int {
    if !active() {
        return op(arg);
    }
    match cmd {
        libc::F_GETFL => {
            let r = op(arg);
            match fds::get(fd) {
                Some(e) if r != -1 && e.desc.hides_nonblock() => r & !libc::O_NONBLOCK,
                _ => r,
            }
        }
        libc::F_SETFL => {
            let mut arg = arg;
            if let Some(e) = fds::set_user_nonblock(fd, arg & libc::O_NONBLOCK as c_ulong != 0) {
                if e.desc.switched() {
                    arg |= libc::O_NONBLOCK as c_ulong;
                }
            }
            op(arg)
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let r = op(arg);
            if r >= 0 {
                fds::duplicate(fd, r);
            }
            r
        }
        _ => op(arg),
    }
}

/// Hook for `fcntl(2)` (variadic in C; every command takes at most one
/// integer or pointer argument, passed where this reads it).
#[export_name = "fcntl"]
pub unsafe extern "C" fn fcntl_hook(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    fcntl_call(fd, cmd, arg, |arg| unsafe { real::fcntl(fd, cmd, arg) })
}

/// Hook for `fcntl64`, glibc's name for `fcntl` under `_FILE_OFFSET_BITS=64`.
#[export_name = "fcntl64"]
pub unsafe extern "C" fn fcntl64_hook(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    fcntl_call(fd, cmd, arg, |arg| unsafe { real::fcntl64(fd, cmd, arg) })
}

/// Hook for `ioctl(2)`: `FIONBIO` (std's `set_nonblocking`) records the
/// owner's choice; turning it off on a switched socket keeps it on
/// underneath.
#[export_name = "ioctl"]
pub unsafe extern "C" fn ioctl_hook(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    if req == libc::FIONBIO as c_ulong && !arg.is_null() && active() {
        // SAFETY: FIONBIO's argument points to an int (the caller's
        // contract with ioctl); checked non-null above.
        let on = unsafe { *arg.cast::<c_int>() } != 0;
        if let Some(e) = fds::set_user_nonblock(fd, on) {
            if e.desc.switched() && !on {
                return 0;
            }
        }
    }
    // SAFETY: forwards the caller's arguments to libc under its contract.
    unsafe { real::ioctl(fd, req, arg) }
}

/// Hook for `setsockopt(2)`: remembers `SO_RCVTIMEO`/`SO_SNDTIMEO`, which a
/// switched socket's kernel no longer applies, so the patch applies them.
#[export_name = "setsockopt"]
pub unsafe extern "C" fn setsockopt_hook(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    let dir = match name {
        libc::SO_RCVTIMEO => Direction::Read,
        libc::SO_SNDTIMEO => Direction::Write,
        _ => return r,
    };
    if r == 0 && level == libc::SOL_SOCKET && active() {
        if let Some(e) = fds::get(fd) {
            // SAFETY: the kernel accepted the option, so `val` points to a
            // `timeval` of `len` bytes; read unaligned to be safe.
            let tv = unsafe { val.cast::<libc::timeval>().read_unaligned() };
            e.desc.set_timeout(dir, fds::socket_timeout(&tv));
        }
    }
    r
}
