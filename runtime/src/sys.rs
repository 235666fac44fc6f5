//! Thin helpers over `libc`: the one place raw system calls are made from.
//!
//! Contract: every function here either succeeds or returns the `errno` of the
//! failing call as an `io::Error`; none of them retains pointers it is given.

use std::io;
use std::sync::OnceLock;

/// Calls a libc function and turns a `-1` result into `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: every call site passes arguments that satisfy the libc
        // function's contract; see the comment at the call site.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Asks the CPU to start loading the cache line at `p` (a hint: never
/// faults, whatever the address; a no-op where no prefetch instruction is
/// wired up).
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it reads nothing into the program
    // and does not fault, even for an unmapped address (SSE, which every
    // x86_64 CPU has).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The system page size in bytes (cached after the first call).
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size <= 0 {
            4096
        } else {
            size as usize
        }
    })
}

/// Reads `/proc/sys/vm/max_map_count` for error messages (None when unreadable).
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The soft address-space limit (RLIMIT_AS) in bytes, if one is set.
pub(crate) fn address_space_limit() -> Option<u64> {
    soft_limit(libc::RLIMIT_AS)
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`), if finite.
#[cfg(feature = "patch")]
pub(crate) fn open_files_limit() -> Option<u64> {
    soft_limit(libc::RLIMIT_NOFILE)
}

/// What `getrlimit` takes for a resource (glibc has a type of its own).
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// The soft limit on `resource`, if finite.
fn soft_limit(resource: Resource) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // getrlimit writes into the struct we own.
    syscall!(getrlimit(resource, &mut lim)).ok()?;
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Reserves `len` bytes of private, anonymous, read-write memory without
/// committing swap for it (`MAP_NORESERVE`). Pages cost memory only once touched.
pub(crate) fn map_reserve(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous private mapping with a null hint has no
    // preconditions; the result is checked against MAP_FAILED below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        // Never merged with malloc's arenas: their heaps are anonymous,
        // private, `MAP_NORESERVE` mappings like ours, and a slab mapped next
        // to one became one VMA with it. Then every growth of that arena (an
        // `mprotect` per page malloc adds) write-locked the VMA that holds
        // thousands of stacks, and their page faults queued on the
        // address-space lock: a third of the time of starting a million
        // fibers. `MADV_NOHUGEPAGE` (what `MAP_STACK` implies since Linux
        // 6.7) gives our mappings a flag arenas lack, so they stay apart;
        // and a stack never wants a huge page. A refusal changes nothing
        // that matters for correctness.
        let _ = madvise(ptr.cast(), len, libc::MADV_NOHUGEPAGE);
        Ok(ptr.cast())
    }
}

/// Unmaps a region returned by [`map_reserve`].
///
/// # Safety
/// `ptr..ptr+len` must be a mapping (or part of one) this process owns and no
/// live reference may point into it.
pub(crate) unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees the region is ours and unused; munmap of
    // such a region cannot fail in a way we could act on.
    unsafe { libc::munmap(ptr.cast(), len) };
}

/// `madvise(MADV_GUARD_INSTALL)`: Linux ≥ 6.13 installs guard markers in the
/// page tables, so touching the range faults, without creating a new mapping.
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Applies `madvise(advice)` to a page-aligned range inside one of our mappings.
pub(crate) fn madvise(ptr: *mut u8, len: usize, advice: libc::c_int) -> io::Result<()> {
    // madvise only changes paging state of memory we own; callers pass ranges
    // inside a live mapping created by `map_reserve`.
    syscall!(madvise(ptr.cast(), len, advice)).map(drop)
}

/// `process_madvise`'s name for the calling process (Linux ≥ 6.15).
const PIDFD_SELF: libc::c_int = -10000;

/// Applies `advice` to many page-aligned ranges inside our own mappings in one
/// `process_madvise(2)` call (the kernel takes the address-space lock once
/// for all of them). Returns how many bytes were advised, which is less than
/// the total if the kernel stopped early; `Err` if the call itself was
/// refused (older kernels: `EBADF` for the self-pidfd, `EINVAL` for the
/// advice, `ENOSYS`), when the caller applies them one by one instead.
pub(crate) fn madvise_many(ranges: &[libc::iovec], advice: libc::c_int) -> io::Result<usize> {
    // process_madvise only changes paging state of the listed ranges, which
    // callers take from live mappings created by `map_reserve`; the kernel
    // only reads the iovec array, which `ranges` lends for the call.
    let n = syscall!(syscall(
        libc::SYS_process_madvise,
        PIDFD_SELF,
        ranges.as_ptr(),
        ranges.len(),
        advice,
        0
    ))?;
    Ok(n as usize)
}

/// Makes a page-aligned range inaccessible (the pre-6.13 guard page).
pub(crate) fn protect_none(ptr: *mut u8, len: usize) -> io::Result<()> {
    // mprotect on a range inside our own mapping; no Rust reference covers a
    // guard page, so revoking access cannot invalidate one.
    syscall!(mprotect(ptr.cast(), len, libc::PROT_NONE)).map(drop)
}

/// Waits up to `timeout_ms` (-1: forever) for `events` on `fd` with `poll(2)`.
/// Returns whether the descriptor reported anything (an error or hang-up
/// counts: the caller's retried syscall will report it). `EINTR` counts as
/// "nothing yet".
pub(crate) fn poll_one(
    fd: libc::c_int,
    events: libc::c_short,
    timeout_ms: libc::c_int,
) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1
    // for the duration of the call; poll does not keep the pointer.
    let res = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if res == -1 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(res > 0)
}

/// Writes a line to stderr for the runtime's own reports (a contained
/// panic, an abandoned fiber...). Unlike `eprintln!` it never panics: with
/// stderr closed or a broken pipe the report is lost, not turned into a
/// panic inside a worker.
pub(crate) fn report(msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
