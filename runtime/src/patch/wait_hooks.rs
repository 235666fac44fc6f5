//! The hooked waits: `poll`, `ppoll` and `select` (C libraries' own event
//! loops), the sleeps (`clock_nanosleep` is what `std::thread::sleep`
//! calls; `nanosleep`, `usleep`, `sleep`) and `getaddrinfo` (run on the
//! blocking pool). In a fiber each parks the fiber; anywhere else, or with
//! the patch off, each is libc's own.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{addrinfo, fd_set, pollfd, sigset_t, timespec, timeval};

use super::drive::{self, guarded, set_errno};
use super::fds::{self, Entry};
use super::{active, real};
use crate::io::IoRegistration;
use crate::io::{self, Direction};
use crate::record;

/// Whether a wait hook should park the calling fiber.
fn patched() -> bool {
    !record::current_ptr().is_null() && active()
}

/// A registration a fiber's `poll` waits on: the patch's own, or one made
/// for this wait only (dropped after it, leaving the `epoll` set).
enum WaitReg {
    Entry(Arc<Entry>),
    Temporary(fds::Temporary),
    Private(Private),
}

impl WaitReg {
    /// A temporary registration that gave its place to its owner's.
    fn stepped_aside(&self) -> bool {
        matches!(self, WaitReg::Temporary(t) if t.evicted())
    }

    fn reg(&self) -> &IoRegistration {
        match self {
            WaitReg::Entry(e) => &e.reg,
            WaitReg::Temporary(t) => t.reg(),
            WaitReg::Private(p) => &p.reg,
        }
    }
}

/// A registration for one wait of a private duplicate of the caller's
/// descriptor (the same open file, so the same readiness), for when the
/// number itself is in the worker's `epoll` set already through its
/// owner's registration (`sylvan::net`'s, say), which `EEXIST` keeps ours
/// from joining: `epoll` keys its entries by file *and* number. Nobody else
/// closes or reuses the duplicate's number while it is open
/// ([`fds::dup_high`] makes it, under the number's slot lock).
struct Private {
    reg: IoRegistration,
    fd: c_int,
}

impl Private {
    /// Waits on `dup`, a duplicate this value now owns.
    fn adopt(dup: c_int) -> Private {
        Private {
            reg: IoRegistration::new(dup),
            fd: dup,
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        // Out of every `epoll` set before the number is free again.
        self.reg.deregister_all();
        // SAFETY: `fd` is a duplicate owned by this value alone (`new`,
        // `adopt`) and closed only here.
        unsafe { real::close(self.fd) };
    }
}

/// The directions to watch for `poll` events `ev`. Errors and hang-ups are
/// reported whatever was asked for and bump both directions, so watching
/// reads is enough for them.
fn directions(ev: libc::c_short) -> impl Iterator<Item = Direction> {
    let read = ev & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) != 0;
    let write = ev & libc::POLLOUT != 0;
    let read = read || !write;
    [
        read.then_some(Direction::Read),
        write.then_some(Direction::Write),
    ]
    .into_iter()
    .flatten()
}

/// A fiber's `poll`: tries `poll(.., 0)`; while nothing is ready, parks
/// until one of the descriptors sees a readiness edge or `deadline`.
/// Returns what `poll` returns (0 at the deadline; -1 and `errno` on an
/// interruption).
fn poll_in_fiber(set: &mut [pollfd], deadline: Option<Instant>) -> c_int {
    if set
        .iter()
        .any(|p| p.fd >= 0 && p.fd as usize >= fds::MAX_FD)
    {
        // Not tracked: libc's own poll, for the whole time.
        let ms = deadline.map_or(-1, |d| {
            let left = d.saturating_duration_since(Instant::now());
            left.as_millis().min(c_int::MAX as u128) as c_int
        });
        // SAFETY: `set` is the caller's pollfd array, exclusively borrowed.
        return unsafe { real::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, ms) };
    }
    let mut regs: Vec<(WaitReg, libc::c_short)> = Vec::with_capacity(set.len());
    // A descriptor none of whose registrations can be watched: look again
    // every millisecond instead.
    let mut unwatched = false;
    for p in set.iter().filter(|p| p.fd >= 0) {
        let reg = match fds::for_wait(p.fd) {
            fds::Wait::Entry(e) => WaitReg::Entry(e),
            fds::Wait::Temporary => match fds::Temporary::new(p.fd) {
                Some(temp) => WaitReg::Temporary(temp),
                None => {
                    unwatched = true;
                    continue;
                }
            },
            fds::Wait::Skip => continue,
        };
        regs.push((reg, p.events));
    }
    // Temporary registrations join the worker's `epoll` set once the poll
    // must wait (a ready poll costs none).
    let mut joined = false;
    loop {
        let seen: Vec<_> = regs
            .iter()
            .flat_map(|(r, ev)| directions(*ev).map(move |d| (r.reg(), d, r.reg().edges(d))))
            .collect();
        // SAFETY: `set` is the caller's pollfd array, exclusively borrowed.
        let r = unsafe { real::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, 0) };
        if r != 0 {
            return r;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        if !joined {
            joined = true;
            drop(seen);
            unwatched |= join_temporaries(&mut regs);
            // Edges count from here: look again before waiting.
            continue;
        }
        let waited = if unwatched {
            Ok(Err(std::io::ErrorKind::Unsupported.into()))
        } else {
            guarded(|| io::wait_any(&seen, deadline, &crate::record::wait_labels::POLL))
        };
        match waited {
            Ok(Ok(_)) => {}
            // A temporary registration stepped aside for its owner's (see
            // `crate::patch::make_room`): wait on a duplicate instead.
            Ok(Err(_)) if regs.iter().any(|(r, _)| r.stepped_aside()) => {
                unwatched |= join_temporaries(&mut regs);
            }
            // A descriptor `epoll` refuses (e.g. one that another
            // registration holds on this worker, or one being closed), or
            // one not watched: look again shortly.
            Ok(Err(_)) => {
                let step = Instant::now() + Duration::from_millis(1);
                let until = deadline.map_or(step, |d| d.min(step));
                if let Err(code) = guarded(|| crate::park::park_until(until)) {
                    set_errno(code);
                    return -1;
                }
            }
            Err(code) => {
                set_errno(code);
                return -1;
            }
        }
    }
}

/// Adds `regs`' temporary registrations to the worker's `epoll` set; one
/// whose number is there already through its owner's registration is
/// replaced by a [`Private`] duplicate. One that can be neither is left
/// out, and `true` returned: the poll then looks again every millisecond.
fn join_temporaries(regs: &mut Vec<(WaitReg, libc::c_short)>) -> bool {
    let mut unwatched = false;
    regs.retain_mut(|(reg, _)| {
        let WaitReg::Temporary(temp) = reg else {
            return true;
        };
        let private = match temp.reg().register_here() {
            Ok(()) => return true,
            // Stepped aside for another registration of the number: the
            // duplicate made for it then (made while the number surely
            // named the same file).
            Err(_) if temp.evicted() => temp.take_dup().map(Private::adopt),
            // The owner's registration holds the number in this set.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                temp.dup_while_open().map(Private::adopt)
            }
            // Closed (EBADF), or refused otherwise.
            Err(_) => None,
        };
        match private {
            Some(private) => {
                *reg = WaitReg::Private(private);
                true
            }
            None => {
                unwatched = true;
                false
            }
        }
    });
    unwatched
}

/// Hook for `poll(2)`.
#[export_name = "poll"]
pub unsafe extern "C" fn poll_hook(fds: *mut pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 || !patched() || fds.is_null() && n > 0 {
        // SAFETY: forwards the caller's arguments to libc under its contract.
        return unsafe { real::poll(fds, n, timeout) };
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    let set = if n == 0 {
        &mut []
    } else {
        // SAFETY: poll's contract: `fds` points to `n` pollfds the call may
        // write (checked non-null above).
        unsafe { std::slice::from_raw_parts_mut(fds, n as usize) }
    };
    poll_in_fiber(set, deadline)
}

/// Hook for `ppoll(2)`. In a fiber the signal mask is not swapped for the
/// wait (the worker's signals are its own).
#[export_name = "ppoll"]
pub unsafe extern "C" fn ppoll_hook(
    fds: *mut pollfd,
    n: libc::nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: ppoll's contract: `ts` is null or points to a timespec.
    // An invalid one counts as zero: libc's own call reports EINVAL.
    let timeout = unsafe { ts.as_ref() }.map(|ts| duration_of(ts).unwrap_or(Duration::ZERO));
    if !patched() || timeout == Some(Duration::ZERO) || fds.is_null() && n > 0 {
        // SAFETY: forwards the caller's arguments to libc under its contract.
        return unsafe { real::ppoll(fds, n, ts, mask) };
    }
    let set = if n == 0 {
        &mut []
    } else {
        // SAFETY: `fds` points to `n` pollfds the call may write.
        unsafe { std::slice::from_raw_parts_mut(fds, n as usize) }
    };
    poll_in_fiber(set, timeout.and_then(|t| Instant::now().checked_add(t)))
}

/// Which of `select`'s sets (read, write, except) a `poll` result marks,
/// as Linux maps them: readable on data, hang-up or error; writable on
/// room or error; exceptional on priority data.
fn select_marks(p: &pollfd) -> [bool; 3] {
    let err = p.revents & libc::POLLERR != 0;
    let hup = p.revents & libc::POLLHUP != 0;
    [
        p.events & libc::POLLIN != 0 && (p.revents & libc::POLLIN != 0 || err || hup),
        p.events & libc::POLLOUT != 0 && (p.revents & libc::POLLOUT != 0 || err),
        p.events & libc::POLLPRI != 0 && p.revents & libc::POLLPRI != 0,
    ]
}

/// Hook for `select(2)`: converted to a fiber's `poll` and back. On Linux
/// the timeout is updated to the time not slept.
#[export_name = "select"]
pub unsafe extern "C" fn select_hook(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    // SAFETY: select's contract: `tv` is null or points to a timeval.
    let tv_in = unsafe { tv.as_ref() };
    // A timeout too long to add up waits forever (the kernel saturates).
    let timeout = tv_in.map(|t| {
        let usec = Duration::from_micros(t.tv_usec.clamp(0, 999_999) as u64);
        Duration::from_secs(t.tv_sec.max(0) as u64).saturating_add(usec)
    });
    if !patched()
        || timeout == Some(Duration::ZERO)
        || !(0..=libc::FD_SETSIZE as c_int).contains(&nfds)
    {
        // SAFETY: forwards the caller's arguments to libc under its contract.
        return unsafe { real::select(nfds, r, w, e, tv) };
    }
    let has = |set: *mut fd_set, fd: c_int| {
        // SAFETY: a non-null set is the caller's fd_set; `fd < nfds <= FD_SETSIZE`.
        !set.is_null() && unsafe { libc::FD_ISSET(fd, set) }
    };
    let mut set: Vec<pollfd> = (0..nfds)
        .filter_map(|fd| {
            let mut events = 0;
            if has(r, fd) {
                events |= libc::POLLIN;
            }
            if has(w, fd) {
                events |= libc::POLLOUT;
            }
            if has(e, fd) {
                events |= libc::POLLPRI;
            }
            (events != 0).then_some(pollfd {
                fd,
                events,
                revents: 0,
            })
        })
        .collect();
    let start = Instant::now();
    let deadline = timeout.and_then(|t| start.checked_add(t));
    loop {
        let n = poll_in_fiber(&mut set, deadline);
        if n < 0 {
            return n;
        }
        if set.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
            set_errno(libc::EBADF);
            return -1;
        }
        // `poll` reports hang-ups and errors whatever was asked; `select`
        // maps a hang-up to nothing in the write and except sets, and an
        // error to nothing in the except set, and goes on waiting. Stop
        // watching descriptors whose report marks nothing (they would
        // report again at once) and wait on.
        let mut unasked = false;
        for p in set.iter_mut() {
            if p.revents != 0 && select_marks(p).iter().all(|&hit| !hit) {
                p.fd = !p.fd; // negative: poll ignores it
                unasked = true;
            }
        }
        if n == 0 || !unasked || set.iter().any(|p| p.fd >= 0 && p.revents != 0) {
            break;
        }
    }
    for p in set.iter_mut().filter(|p| p.fd < 0) {
        p.fd = !p.fd;
        p.revents = 0;
    }
    for s in [r, w, e] {
        if !s.is_null() {
            // SAFETY: a non-null set is the caller's fd_set, ours to rewrite.
            unsafe { libc::FD_ZERO(s) };
        }
    }
    let mut count = 0;
    for p in &set {
        for (s, hit) in [r, w, e].into_iter().zip(select_marks(p)) {
            if hit {
                // SAFETY: `s` was non-null for this fd to be asked about.
                unsafe { libc::FD_SET(p.fd, s) };
                count += 1;
            }
        }
    }
    // SAFETY: select's contract: `tv` is null or points to a writable timeval.
    let out = unsafe { tv.as_mut() };
    if let (Some(t), Some(out)) = (timeout, out) {
        let left = t.saturating_sub(start.elapsed());
        out.tv_sec = left.as_secs() as libc::time_t;
        out.tv_usec = left.subsec_micros() as libc::suseconds_t;
    }
    count
}

/// A valid `timespec` as a duration (`None` if out of range: libc reports
/// `EINVAL`).
fn duration_of(ts: &timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Parks the fiber for `dur`. `Err(errno)` if interrupted while asleep.
/// With an interruption already pending it returns at once, successfully:
/// a caller that retries a sleep on `EINTR` (as the `TIMER_ABSTIME` idiom
/// does) would otherwise spin, each retry interrupted at once, and never
/// reach a park that can raise it.
fn fiber_sleep(dur: Duration) -> Result<(), c_int> {
    if crate::park::interrupt_pending() {
        return Ok(());
    }
    match Instant::now().checked_add(dur) {
        Some(until) => guarded(|| crate::sleep_until(until)),
        None => guarded(|| loop {
            crate::park::park();
        }),
    }
}

/// After an interrupted sleep: nothing is left to sleep (so a caller that
/// loops on `EINTR` with the remainder, as std does, stops), and the
/// interruption is raised at the fiber's next park.
fn zero_remainder(rem: *mut timespec) {
    // SAFETY: the sleep's contract: `rem` is null or writable.
    if let Some(rem) = unsafe { rem.as_mut() } {
        rem.tv_sec = 0;
        rem.tv_nsec = 0;
    }
}

/// Hook for `nanosleep(2)`.
#[export_name = "nanosleep"]
pub unsafe extern "C" fn nanosleep_hook(req: *const timespec, rem: *mut timespec) -> c_int {
    // SAFETY: nanosleep's contract: `req` is null or points to a timespec.
    let dur = unsafe { req.as_ref() }.and_then(duration_of);
    let (true, Some(dur)) = (patched(), dur) else {
        // SAFETY: forwards the caller's arguments to libc under its contract.
        return unsafe { real::nanosleep(req, rem) };
    };
    if dur.is_zero() {
        return 0;
    }
    match fiber_sleep(dur) {
        Ok(()) => 0,
        Err(_) => {
            zero_remainder(rem);
            set_errno(libc::EINTR);
            -1
        }
    }
}

/// Hook for `clock_nanosleep(2)`, what `std::thread::sleep` calls. Returns
/// an error number (not `errno`), as it does.
#[export_name = "clock_nanosleep"]
pub unsafe extern "C" fn clock_nanosleep_hook(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    // SAFETY: forwards the caller's arguments to libc under its contract.
    let real = || unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    let known = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME
    );
    // SAFETY: clock_nanosleep's contract: `req` is null or a timespec.
    let want = unsafe { req.as_ref() }.and_then(duration_of);
    let (true, true, Some(want)) = (patched(), known, want) else {
        return real();
    };
    let dur = if flags & libc::TIMER_ABSTIME != 0 {
        // SAFETY: an all-zero timespec is valid for clock_gettime to fill.
        let mut now: timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `now` is a valid, exclusively borrowed out-parameter.
        if unsafe { libc::clock_gettime(clock, &mut now) } == -1 {
            return real();
        }
        match duration_of(&now) {
            Some(now) => want.saturating_sub(now),
            None => return real(),
        }
    } else {
        want
    };
    if dur.is_zero() {
        return 0;
    }
    match fiber_sleep(dur) {
        Ok(()) => 0,
        Err(_) => {
            if flags & libc::TIMER_ABSTIME == 0 {
                zero_remainder(rem);
            }
            libc::EINTR
        }
    }
}

/// Hook for `usleep(3)`.
#[export_name = "usleep"]
pub unsafe extern "C" fn usleep_hook(us: libc::useconds_t) -> c_int {
    if !patched() {
        // SAFETY: forwards the caller's argument to libc.
        return unsafe { real::usleep(us) };
    }
    match fiber_sleep(Duration::from_micros(us as u64)) {
        Ok(()) => 0,
        Err(_) => {
            set_errno(libc::EINTR);
            -1
        }
    }
}

/// Hook for `sleep(3)`. An interrupted sleep returns 0 (not the seconds
/// left), so a caller that sleeps off the rest does not spin.
#[export_name = "sleep"]
pub unsafe extern "C" fn sleep_hook(secs: c_uint) -> c_uint {
    if !patched() {
        // SAFETY: forwards the caller's argument to libc.
        return unsafe { real::sleep(secs) };
    }
    let _ = fiber_sleep(Duration::from_secs(secs as u64));
    0
}

/// A `getaddrinfo` result owned across threads; freed unless taken (a
/// fiber interrupted while the pool resolves drops it).
struct AddrList(*mut addrinfo);

// SAFETY: the list is plain heap memory from libc, owned by this value
// alone until `take`; `freeaddrinfo` may run on any thread.
unsafe impl Send for AddrList {}

impl AddrList {
    fn take(mut self) -> *mut addrinfo {
        std::mem::replace(&mut self.0, std::ptr::null_mut())
    }
}

impl Drop for AddrList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list getaddrinfo returned, not freed or handed out.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// Hook for `getaddrinfo(3)`: in a fiber the lookup runs on the blocking
/// pool while the fiber parks.
#[export_name = "getaddrinfo"]
pub unsafe extern "C" fn getaddrinfo_hook(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    if !patched() || res.is_null() {
        // SAFETY: forwards the caller's arguments to libc under its contract.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    // SAFETY: getaddrinfo's contract: `node`/`service` are null or C strings.
    let owned =
        |p: *const c_char| (!p.is_null()).then(|| CString::from(unsafe { CStr::from_ptr(p) }));
    let (node, service) = (owned(node), owned(service));
    // SAFETY: `hints` is null or points to an addrinfo whose pointer
    // fields are null (getaddrinfo's contract); only the flags are copied.
    let hints =
        unsafe { hints.as_ref() }.map(|h| (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol));
    let lookup = move || {
        // SAFETY: all-zero is a valid addrinfo (null pointers, zero fields).
        let mut h: addrinfo = unsafe { std::mem::zeroed() };
        let hint_ptr = match hints {
            Some((flags, family, socktype, protocol)) => {
                (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol) =
                    (flags, family, socktype, protocol);
                &h as *const addrinfo
            }
            None => std::ptr::null(),
        };
        let mut out = std::ptr::null_mut();
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: valid C strings or null, a valid hints struct or null, and
        // a valid out-pointer, as getaddrinfo requires.
        let rc = unsafe { real::getaddrinfo(ptr(&node), ptr(&service), hint_ptr, &mut out) };
        (rc, drive::errno(), AddrList(out))
    };
    match guarded(|| crate::unblock(lookup)) {
        Ok((rc, err, list)) => {
            // SAFETY: `res` is the caller's non-null out-pointer.
            unsafe { *res = list.take() };
            if rc == libc::EAI_SYSTEM {
                set_errno(err);
            }
            rc
        }
        Err(code) => {
            set_errno(code);
            libc::EAI_SYSTEM
        }
    }
}
