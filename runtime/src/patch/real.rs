//! The libc functions the hooks stand in front of: the next definition of
//! each symbol after this binary's own (`dlsym(RTLD_NEXT, ..)`), resolved
//! once. Everything in `patch` that needs the real call goes through here;
//! calling `libc::read` and friends instead would re-enter the hooks.

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    addrinfo, fd_set, iovec, msghdr, pollfd, sigset_t, sockaddr, socklen_t, timespec, timeval,
};

/// Looks `name` (NUL-terminated) up past this binary. A libc without the
/// symbol leaves nothing to forward to, so that aborts with a message.
fn resolve(name: &'static str) -> *mut c_void {
    // SAFETY: `name` is a NUL-terminated literal (the macro appends "\0").
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        crate::sys::report(format_args!(
            "sylvan::patch: libc has no `{}`; the patch feature needs glibc",
            name.trim_end_matches('\0')
        ));
        std::process::abort();
    }
    p
}

/// Declares `pub(crate) unsafe fn name(args) -> ret` forwarding to libc's
/// own `name`, whose C prototype must be exactly the one written.
macro_rules! real {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ; )*) => {$(
        #[allow(clippy::missing_safety_doc)]
        pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
            static PTR: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
            let mut p = PTR.load(Ordering::Relaxed);
            if p.is_null() {
                p = resolve(concat!(stringify!($name), "\0"));
                PTR.store(p, Ordering::Relaxed);
            }
            type Real = unsafe extern "C" fn($($ty),*) -> $ret;
            // SAFETY: `p` is libc's definition of this very symbol, and
            // `Real` spells its C prototype.
            let f = unsafe { std::mem::transmute::<*mut c_void, Real>(p) };
            // SAFETY: the caller upholds the C function's own contract.
            unsafe { f($($arg),*) }
        }
    )*};
}

real! {
    read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    readv(fd: c_int, iov: *const iovec, cnt: c_int) -> isize;
    recv(fd: c_int, buf: *mut c_void, n: usize, flags: c_int) -> isize;
    recvfrom(fd: c_int, buf: *mut c_void, n: usize, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> isize;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize;
    write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    writev(fd: c_int, iov: *const iovec, cnt: c_int) -> isize;
    send(fd: c_int, buf: *const c_void, n: usize, flags: c_int) -> isize;
    sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const sockaddr, len: socklen_t) -> isize;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize;
    socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    close(fd: c_int) -> c_int;
    close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    closefrom(low: c_int) -> ();
    fclose(stream: *mut libc::FILE) -> c_int;
    dup(fd: c_int) -> c_int;
    dup2(old: c_int, new: c_int) -> c_int;
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
    poll(fds: *mut pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    ppoll(fds: *mut pollfd, n: libc::nfds_t, ts: *const timespec, mask: *const sigset_t) -> c_int;
    select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, tv: *mut timeval) -> c_int;
    nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;
    usleep(us: libc::useconds_t) -> c_int;
    sleep(secs: c_uint) -> c_uint;
    getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int;
}

/// The variadic ones: `fcntl(fd, cmd, ...)`, `fcntl64` (glibc's name for
/// it under `_FILE_OFFSET_BITS=64`) and `ioctl(fd, request, ...)`, called
/// with the one argument every command of theirs takes.
macro_rules! real_variadic {
    ($( $name:ident ( $a:ident : $at:ty, $b:ident : $bt:ty, $c:ident : $ct:ty ) ; )*) => {$(
        #[allow(clippy::missing_safety_doc)]
        pub(crate) unsafe fn $name($a: $at, $b: $bt, $c: $ct) -> c_int {
            static PTR: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
            let mut p = PTR.load(Ordering::Relaxed);
            if p.is_null() {
                p = resolve(concat!(stringify!($name), "\0"));
                PTR.store(p, Ordering::Relaxed);
            }
            type Real = unsafe extern "C" fn($at, $bt, ...) -> c_int;
            // SAFETY: `p` is libc's definition of this very symbol, whose C
            // prototype is `int name(int, <second>, ...)`, as `Real` spells.
            let f = unsafe { std::mem::transmute::<*mut c_void, Real>(p) };
            // SAFETY: the caller upholds the C function's own contract.
            unsafe { f($a, $b, $c) }
        }
    )*};
}

real_variadic! {
    fcntl(fd: c_int, cmd: c_int, arg: c_ulong);
    fcntl64(fd: c_int, cmd: c_int, arg: c_ulong);
    ioctl(fd: c_int, req: c_ulong, arg: *mut c_void);
}

/// `c_long` is what `timeval`/`timespec` fields are on the targets `patch`
/// supports; checked here so a new target fails to build, not to run.
const _: () = assert!(std::mem::size_of::<c_long>() == 8);
