//! `patch`: code never written for sylvan cooperates inside fibers — what
//! gevent's `monkey.patch_all()` does for Python, for Rust (cargo feature
//! `patch`, Linux with glibc on x86_64 or aarch64).
//!
//! Without it, a fiber that calls a blocking crate (an HTTP client, a
//! database driver), `std::net` or `std::thread::sleep` blocks its whole
//! worker: every other fiber of that worker stops until the call returns.
//! With it, the libc functions such code reaches park the calling fiber
//! instead, and the worker runs the others meanwhile:
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! use std::time::{Duration, Instant};
//!
//! let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
//! let start = Instant::now();
//! rt.block_on(|| {
//!     let sleepers: Vec<_> = (0..100)
//!         .map(|_| sylvan::spawn(|| std::thread::sleep(Duration::from_millis(100))))
//!         .collect();
//!     for s in sleepers {
//!         s.join().unwrap();
//!     }
//! });
//! if sylvan::patch::is_active() {
//!     // 100 fibers slept at once on one worker.
//!     assert!(start.elapsed() < Duration::from_secs(5));
//! }
//! ```
//!
//! # How
//!
//! With the feature, the final binary defines the libc entry points itself
//! (`#[export_name]`), so std's calls and those of C libraries linked to it
//! reach sylvan first; each forwards to libc's own definition (found with
//! `dlsym(RTLD_NEXT, ..)`) unless the caller is a fiber and the call would
//! block:
//!
//! * **Sockets**: a fiber's call is made with `MSG_DONTWAIT` (`read` as
//!   `recv`, `writev` as `sendmsg`...), so it cannot block; on `EAGAIN` the
//!   fiber waits for readiness on its worker's reactor (the
//!   [`IoRegistration`](crate::io::IoRegistration) that `sylvan::net` uses)
//!   and retries. The descriptor's own mode is untouched — it belongs to an
//!   open file description that a child process or a plain thread may
//!   share, and they keep seeing a blocking socket. The caller still sees
//!   blocking semantics: a stream write writes everything, `MSG_WAITALL`
//!   waits for all, EOF, `MSG_PEEK` and errors are the kernel's.
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO` (std's `set_read_timeout`) are honoured: the
//!   call fails with `EAGAIN` when the time runs out (std: `WouldBlock`), as
//!   the kernel's would.
//! * **`accept` and `connect`** have no such flag: a listener this process
//!   created is switched to non-blocking mode the first time a fiber accepts
//!   on it (`F_GETFL` and `ioctl(FIONBIO)` keep showing the owner's choice,
//!   and a plain thread's `accept` on it still blocks, in `poll(2)`); a
//!   socket is non-blocking only for the length of a fiber's `connect` (a
//!   Unix-domain `connect` the listener's full backlog refuses is retried
//!   with a back-off, as a blocking one would wait for room). An inherited
//!   listener (socket activation) is waited for, then accepted from.
//! * **Descriptors whose owner chose non-blocking mode** (mio, `sylvan::net`,
//!   anything that handles `EAGAIN` itself) pass straight through.
//! * **Other pollable descriptors** (pipes, terminals, character devices)
//!   are never switched: a fiber waits for readiness on the reactor, then
//!   makes the blocking call (a large write in `PIPE_BUF` pieces, each of
//!   which readiness guarantees room for).
//! * **stdin, stdout and stderr** pass through: std guards them with locks
//!   that are per thread (stdout's is reentrant), and a fiber parked inside
//!   one would share it with the other fibers of its worker. Printing
//!   blocks the worker while the terminal or pipe is full, as before.
//! * **Regular files** are not pollable and pass through: run disk IO with
//!   [`unblock`](crate::unblock), as gevent users do with its thread pool.
//! * **A plain thread** (not a fiber) sees libc unchanged, at the cost of one
//!   thread-local load per call.
//! * `poll`, `ppoll` and `select` park the fiber until a descriptor is ready,
//!   so C libraries with their own event loops cooperate. `clock_nanosleep`
//!   (what `std::thread::sleep` calls), `nanosleep`, `usleep` and `sleep`
//!   park it for the time. `getaddrinfo` (std's `to_socket_addrs`) runs on
//!   the blocking pool while the fiber parks.
//! * A process forked without `exec` turns the patch off in the child.
//!
//! # Interruptions
//!
//! [`JoinHandle::cancel`](crate::JoinHandle::cancel) and
//! [`timeout`](crate::timeout) interrupt a patched call that waits, as they
//! interrupt `sylvan::net` calls — but the call cannot unwind through its C
//! callers, so it returns an error instead, having consumed nothing:
//! `ECANCELED` (std: an `Other` error) for a cancellation, `ETIMEDOUT`
//! (`TimedOut`) for a timeout, `EINTR` with nothing left to sleep for a
//! sleep. The cancellation is raised by the fiber's next park; the
//! `timeout` returns `Err(Elapsed)` even if the code inside carries on and
//! returns.
//!
//! # Not covered
//!
//! * Regular files, `std::process` waits (`waitpid`), `epoll_wait`,
//!   `recvmmsg`/`sendmmsg`, `sendfile`/`splice`, `getnameinfo` and
//!   `gethostbyname`: they block the worker as before.
//! * **OS locks held across a patched call.** A fiber that holds a
//!   `std::sync::Mutex` (or `parking_lot`'s, or any lock that blocks the
//!   thread) while it makes a patched call parks *with the lock held*. If
//!   another fiber of the same worker then takes that lock, it blocks the
//!   worker's thread, and the holder can never be resumed to release it:
//!   a deadlock. Hold `sylvan::sync::Mutex` (which parks) across blocking
//!   calls instead, or release std's lock before them. gevent has the same
//!   rule, and patches Python's locks for it; Rust's cannot be patched.
//! * Sleeps after an interruption: a patched sleep with a cancellation or
//!   an expired `timeout` pending returns at once (so an `EINTR` retry loop
//!   ends); the interruption is raised at the fiber's next park.
//! * Descriptors numbered 1,048,576 and above pass through unpatched.
//! * Calls made with a raw `syscall(2)` instead of libc's functions, and
//!   binaries linked statically (no `dlsym`).
//! * The hooks are not async-signal-safe: a signal handler that calls
//!   `write` or `close` while a fiber runs on its thread goes through them
//!   (sylvan's own handler writes to a descriptor that passes through), and
//!   on any thread `close`, `dup`, `socket` and `accept` update the patch's
//!   descriptor table, which allocates: a handler that calls them may
//!   deadlock on malloc's lock if the signal interrupted malloc.
//! * `recvmsg` with `MSG_WAITALL` on a stream socket in a fiber returns one
//!   call's worth when it also peeks (`MSG_PEEK`) or asks for ancillary
//!   data (a control buffer), where a blocking socket would wait for all;
//!   without those it waits for all. `writev` may return a short count (as
//!   POSIX allows; std's `write_all_vectored` loops).
//! * A listener a fiber accepted on is left non-blocking underneath; a
//!   child process it is handed to (pre-fork servers) sees that.
//!
//! `SYLVAN_PATCH=0` in the environment turns the patch off at start (every
//! call then goes to libc as without the feature); [`is_active`] tells.

#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
mod drive;
#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
mod fds;
#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
mod io_hooks;
#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
mod real;
#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
mod wait_hooks;

#[cfg(all(
    feature = "patch",
    not(all(
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))
))]
compile_error!("sylvan's `patch` feature supports Linux with glibc on x86_64 and aarch64");

/// A registration of `fd` is refused by a worker's `epoll` set (`EEXIST`):
/// if that is a fiber's `poll` waiting on the number for one wait, it
/// steps aside (it moves to a duplicate of its own). Returns whether any
/// did, so the caller tries again.
#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
pub(crate) fn make_room(fd: std::ffi::c_int) -> bool {
    fds::evict_temporaries(fd)
}

/// Whether the patch is on: the `patch` feature is compiled in and
/// `SYLVAN_PATCH=0` did not turn it off at start.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let on = sylvan::patch::is_active();
/// assert_eq!(on, cfg!(feature = "patch") && std::env::var("SYLVAN_PATCH").as_deref() != Ok("0"));
/// ```
pub fn is_active() -> bool {
    #[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
    {
        link();
        active()
    }
    #[cfg(not(all(feature = "patch", target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
pub(crate) use imp::{active, link};

#[cfg(all(feature = "patch", target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::{io_hooks as io, wait_hooks as wait};

    const UNSET: u8 = 0;
    const ON: u8 = 1;
    const OFF: u8 = 2;

    /// Decided once, before `main`, by [`init`].
    static STATE: AtomicU8 = AtomicU8::new(UNSET);

    /// Whether the hooks do anything (else every call goes straight to
    /// libc). Decided before `main`, so a socket created before the first
    /// runtime is known as this process's own.
    #[inline]
    pub(crate) fn active() -> bool {
        STATE.load(Ordering::Relaxed) == ON
    }

    /// Runs before `main` (an `.init_array` constructor): reads
    /// `SYLVAN_PATCH`. Uses libc's `getenv`: std's environment lock is not
    /// for use this early.
    extern "C" fn init() {
        // SAFETY: a NUL-terminated literal; getenv's result is read at once,
        // before anything could change the environment.
        let off = unsafe {
            let v = libc::getenv(c"SYLVAN_PATCH".as_ptr());
            !v.is_null() && std::ffi::CStr::from_ptr(v).to_bytes() == b"0"
        };
        STATE.store(if off { OFF } else { ON }, Ordering::Relaxed);
        if !off {
            // SAFETY: registers a plain function; pthread_atfork keeps it.
            unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        }
    }

    /// In a child made by `fork` (without `exec`): the child has no workers,
    /// and a fiber that forked carries on there as a plain process, so its
    /// calls go straight to libc.
    extern "C" fn forked() {
        STATE.store(OFF, Ordering::Relaxed);
    }

    #[used]
    #[link_section = ".init_array"]
    static INIT: extern "C" fn() = init;

    /// Every hook, so that linking this table links them all.
    struct Hooks(#[allow(dead_code)] [*const (); 34]);
    // SAFETY: function addresses, never dereferenced as data.
    unsafe impl Sync for Hooks {}

    #[used]
    static HOOKS: Hooks = Hooks([
        io::read_hook as *const (),
        io::readv_hook as *const (),
        io::recv_hook as *const (),
        io::recvfrom_hook as *const (),
        io::recvmsg_hook as *const (),
        io::write_hook as *const (),
        io::writev_hook as *const (),
        io::send_hook as *const (),
        io::sendto_hook as *const (),
        io::sendmsg_hook as *const (),
        io::socket_hook as *const (),
        io::socketpair_hook as *const (),
        io::accept_hook as *const (),
        io::accept4_hook as *const (),
        io::connect_hook as *const (),
        io::close_hook as *const (),
        io::close_range_hook as *const (),
        io::closefrom_hook as *const (),
        io::fclose_hook as *const (),
        io::dup_hook as *const (),
        io::dup2_hook as *const (),
        io::dup3_hook as *const (),
        io::fcntl_hook as *const (),
        io::fcntl64_hook as *const (),
        io::ioctl_hook as *const (),
        io::setsockopt_hook as *const (),
        wait::poll_hook as *const (),
        wait::ppoll_hook as *const (),
        wait::select_hook as *const (),
        wait::nanosleep_hook as *const (),
        wait::clock_nanosleep_hook as *const (),
        wait::usleep_hook as *const (),
        wait::sleep_hook as *const (),
        wait::getaddrinfo_hook as *const (),
    ]);

    /// Makes the linker keep the hooks and the constructor: the runtime
    /// calls this when it builds, so any binary that can run a fiber has
    /// them (an archive member nothing refers to would be left out).
    #[inline(never)]
    pub(crate) fn link() {
        std::hint::black_box((&HOOKS, &INIT));
    }
}
