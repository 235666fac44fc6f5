//! Fiber stacks: guarded, carved from large slabs, pooled per worker.
//!
//! # Contract
//!
//! * Every [`FiberStack`] is `usable` bytes of read-write memory with one
//!   inaccessible guard page directly below it. Running off the bottom of the
//!   stack touches the guard page and faults; it never corrupts a neighbour.
//! * Stacks are carved out of big `MAP_NORESERVE` slabs. On Linux ≥ 6.13 the
//!   guard page is a page-table marker (`MADV_GUARD_INSTALL`), so a slab of
//!   thousands of guarded stacks stays **one** kernel mapping and the default
//!   `vm.max_map_count` (65530) does not cap the number of fibers. Older kernels
//!   answer `EINVAL`; we then fall back to `mprotect` guards, which cost two
//!   mappings per stack, and report the limit by name when the kernel refuses.
//! * Address space is never returned to the kernel (slabs live for the process),
//!   but memory is: a stack that goes back to the shared free list is first
//!   `MADV_DONTNEED`ed, which keeps its guard. Each worker keeps up to
//!   256 *hot* (still dirty) stacks so spawning does not cost a syscall or a
//!   page fault, and a shared *warm* list of up to 1024 more balances stacks
//!   between workers in batches (fibers often finish on another worker than
//!   the one that spawned them). Past those bounds memory is returned, so a
//!   burst of 100k fibers does not pin its memory forever.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use corosensei::stack::{Stack, StackPointer};
use parking_lot::Mutex;

use crate::sys;

/// Default usable stack size of a fiber (256 KiB of address space; only the
/// pages a fiber touches cost memory).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest stack size a fiber may ask for. Unwinding a panic and formatting its
/// message needs several KiB; below this a panicking fiber would overflow.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Largest stack size a fiber may ask for (1 GiB).
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// How many dirty stacks a worker keeps for reuse without taking a lock.
const HOT_STACKS_PER_WORKER: usize = 256;

/// How many dirty stacks the shared warm list keeps (for workers whose own
/// pool ran dry, e.g. because their fibers finish on another worker). Beyond
/// this, a returned stack's memory goes back to the kernel.
const WARM_STACKS: usize = 1024;

/// Stacks moved between a worker's pool and the warm list per lock.
const BATCH: usize = 64;

/// Largest slab we reserve in one `mmap` (address space only).
const MAX_SLAB_BYTES: usize = 1 << 30;

/// First slab of a size class holds this many stacks; later slabs double.
const FIRST_SLAB_STACKS: usize = 16;

/// One fiber stack. Owns its memory exclusively until dropped back to a pool.
///
/// # Invariant
/// `bottom..bottom+guard` is a guard page (faults on access) and
/// `bottom+guard..bottom+len` is read-write memory owned by this value alone.
pub struct FiberStack {
    bottom: NonNull<u8>,
    len: usize,
    guard: usize,
}

// SAFETY: a FiberStack is a unique owner of plain memory (no thread affinity,
// no shared state); handing that ownership to another thread is sound. It is
// never moved while a coroutine runs on it: corosensei holds it inside the
// coroutine, which is !Send and stays on its worker.
unsafe impl Send for FiberStack {}

impl FiberStack {
    /// Usable bytes (excluding the guard page).
    pub fn usable_size(&self) -> usize {
        self.len - self.guard
    }

    /// The guard page's address range, for the overflow handler.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let lo = self.bottom.as_ptr() as usize;
        (lo, lo + self.guard)
    }

    fn usable_ptr(&self) -> *mut u8 {
        // bottom + guard stays inside the same mapping (see the invariant).
        self.bottom.as_ptr().wrapping_add(self.guard)
    }
}

// SAFETY: base() and limit() describe `usable_size()` bytes of memory that
// this value owns exclusively (struct invariant) and that stay mapped for the
// life of the process; base is page-aligned, hence 16-byte aligned.
unsafe impl Stack for FiberStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.bottom.as_ptr() as usize + self.len).expect("non-null stack")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.usable_ptr() as usize).expect("non-null stack")
    }
}

impl std::fmt::Debug for FiberStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FiberStack")
            .field("bottom", &self.bottom)
            .field("usable", &self.usable_size())
            .finish()
    }
}

/// Rounds a requested stack size up to whole pages and checks its bounds.
pub(crate) fn normalize_size(size: usize) -> io::Result<usize> {
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "sylvan: fiber stack size {size} is out of range; \
                 use between {MIN_STACK_SIZE} and {MAX_STACK_SIZE} bytes"
            ),
        ));
    }
    let page = sys::page_size();
    Ok(size.div_ceil(page) * page)
}

const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;

/// Which guard mechanism this kernel supports (probed on first use).
static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

/// Whether stacks use page-table guard markers (`MADV_GUARD_INSTALL`).
/// `None` until the first stack has been allocated.
pub fn uses_guard_markers() -> Option<bool> {
    match GUARD_MODE.load(Ordering::Relaxed) {
        GUARD_MADVISE => Some(true),
        GUARD_MPROTECT => Some(false),
        _ => None,
    }
}

fn install_guard(ptr: *mut u8, len: usize) -> io::Result<()> {
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        match sys::madvise(ptr, len, sys::MADV_GUARD_INSTALL) {
            Ok(()) => {
                GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    sys::protect_none(ptr, len)
}

fn refused(op: &str, err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return io::Error::new(
            err.kind(),
            format!("sylvan: {op} for a fiber stack failed: {err}"),
        );
    }
    let maps = sys::max_map_count()
        .map(|n| format!("currently {n}"))
        .unwrap_or_else(|| "value unknown".into());
    let address_space = match sys::address_space_limit() {
        Some(bytes) => format!(
            "; this process also has an address-space limit (ulimit -v / RLIMIT_AS) \
             of {} MiB, which fiber stacks count against",
            bytes >> 20
        ),
        None => String::new(),
    };
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "sylvan: the kernel refused a new fiber stack ({op}: {err}). The process has \
             probably hit the memory-mapping limit vm.max_map_count ({maps}) or run out of \
             address space{address_space}. Raise the limit with \
             `sudo sysctl -w vm.max_map_count=1048576`, or run fewer live fibers or smaller \
             stacks (Builder::stack_size)"
        ),
    )
}

/// Stacks of one total length.
struct SizeClass {
    len: usize,
    /// Clean stacks (memory already returned) ready for reuse.
    free: Vec<FiberStack>,
    /// Unused tail of the newest slab: (next stack's address, stacks left).
    carve: Option<(NonNull<u8>, usize)>,
    /// How many stacks the next slab holds.
    next_slab: usize,
}

// SAFETY: the raw pointers in a SizeClass describe memory owned by the
// allocator; they are only used under the global allocator's mutex.
unsafe impl Send for SizeClass {}

/// The process-wide slab allocator behind the per-worker pools.
static CLASSES: Mutex<Vec<SizeClass>> = Mutex::new(Vec::new());

/// Dirty stacks of the default size class shared between workers:
/// (usable size, stacks). Bounded by `WARM_STACKS`.
static WARM: Mutex<(usize, Vec<FiberStack>)> = Mutex::new((0, Vec::new()));

/// Allocates a stack with `usable` bytes (already page-rounded).
pub(crate) fn allocate(usable: usize) -> io::Result<FiberStack> {
    let guard = sys::page_size();
    let len = usable + guard;
    let mut classes = CLASSES.lock();
    let idx = match classes.iter().position(|c| c.len == len) {
        Some(i) => i,
        None => {
            classes.push(SizeClass {
                len,
                free: Vec::new(),
                carve: None,
                next_slab: FIRST_SLAB_STACKS,
            });
            classes.len() - 1
        }
    };
    let class = &mut classes[idx];
    if let Some(stack) = class.free.pop() {
        return Ok(stack);
    }
    let (next, left) = match class.carve {
        Some(c) => c,
        None => {
            let max = (MAX_SLAB_BYTES / len).max(1);
            let count = class.next_slab.min(max);
            let base = sys::map_reserve(count * len).map_err(|e| refused("mmap", e))?;
            class.next_slab = (count * 2).min(max);
            (NonNull::new(base).expect("mmap returned null"), count)
        }
    };
    if let Err(e) = install_guard(next.as_ptr(), guard) {
        // Keep the slab tail for a later attempt; nothing was handed out.
        class.carve = Some((next, left));
        return Err(refused("guard page install", e));
    }
    class.carve = if left > 1 {
        // The next stack starts right above this one, inside the same slab.
        NonNull::new(next.as_ptr().wrapping_add(len)).map(|p| (p, left - 1))
    } else {
        None
    };
    Ok(FiberStack {
        bottom: next,
        len,
        guard,
    })
}

/// Returns a stack's memory to the kernel and puts it on the shared free list.
pub(crate) fn release(stack: FiberStack) {
    // Dropping the pages of the usable part keeps the guard page intact.
    if sys::madvise(stack.usable_ptr(), stack.usable_size(), libc::MADV_DONTNEED).is_err() {
        // Cannot happen for a range inside our own mapping; if it ever does,
        // keep the address space rather than risk handing out a dirty stack
        // twice: the stack is simply not reused.
        return;
    }
    let mut classes = CLASSES.lock();
    if let Some(class) = classes.iter_mut().find(|c| c.len == stack.len) {
        class.free.push(stack);
    }
}

/// A worker's cache of hot stacks of the runtime's default size.
pub(crate) struct StackPool {
    default_usable: usize,
    hot: Vec<FiberStack>,
}

impl StackPool {
    /// A pool for stacks of `default_usable` bytes (page-rounded).
    pub(crate) fn new(default_usable: usize) -> StackPool {
        StackPool {
            default_usable,
            hot: Vec::new(),
        }
    }

    /// Takes a stack of `usable` bytes (page-rounded): a hot one, else a
    /// batch from the warm list, else a clean or new one from the allocator.
    pub(crate) fn get(&mut self, usable: usize) -> io::Result<FiberStack> {
        if usable != self.default_usable {
            return allocate(usable);
        }
        if let Some(stack) = self.hot.pop() {
            return Ok(stack);
        }
        {
            let mut warm = WARM.lock();
            if warm.0 == usable {
                let keep = warm.1.len().saturating_sub(BATCH);
                self.hot.extend(warm.1.drain(keep..));
            }
        }
        match self.hot.pop() {
            Some(stack) => Ok(stack),
            None => allocate(usable),
        }
    }

    /// Gives a stack back: kept hot if it has the default size and there is
    /// room; a full pool moves a batch to the warm list; past both bounds the
    /// memory is returned to the kernel.
    pub(crate) fn put(&mut self, stack: FiberStack) {
        if stack.usable_size() != self.default_usable {
            return release(stack);
        }
        if self.hot.len() < HOT_STACKS_PER_WORKER {
            return self.hot.push(stack);
        }
        let start = self.hot.len() - BATCH;
        let mut spill: Vec<FiberStack> = self.hot.drain(start..).collect();
        self.hot.push(stack);
        {
            let mut warm = WARM.lock();
            if warm.1.is_empty() {
                warm.0 = self.default_usable;
            }
            if warm.0 == self.default_usable {
                while warm.1.len() < WARM_STACKS {
                    match spill.pop() {
                        Some(s) => warm.1.push(s),
                        None => break,
                    }
                }
            }
        }
        for s in spill {
            release(s);
        }
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        for stack in self.hot.drain(..) {
            release(stack);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_page_rounded_and_bounded() {
        let page = sys::page_size();
        assert_eq!(normalize_size(MIN_STACK_SIZE + 1).unwrap() % page, 0);
        assert!(normalize_size(MIN_STACK_SIZE + 1).unwrap() > MIN_STACK_SIZE);
        let err = normalize_size(100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("out of range"));
        assert!(normalize_size(MAX_STACK_SIZE + 1).is_err());
    }

    #[test]
    fn stacks_are_disjoint_writable_and_reused() {
        let usable = normalize_size(64 * 1024).unwrap();
        let stacks: Vec<_> = (0..40).map(|_| allocate(usable).unwrap()).collect();
        let mut ranges: Vec<(usize, usize)> = stacks
            .iter()
            .map(|s| (s.limit().get() - s.guard, s.base().get()))
            .collect();
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "stacks overlap: {w:?}");
        }
        for s in &stacks {
            assert_eq!(s.usable_size(), usable);
            assert_eq!(s.base().get() % 16, 0);
            // Touch the first and last usable byte.
            // SAFETY: both addresses lie inside the stack's usable range.
            unsafe {
                *(s.limit().get() as *mut u8) = 1;
                *((s.base().get() - 1) as *mut u8) = 2;
            }
        }
        let first = stacks[0].bottom;
        let mut pool = StackPool::new(usable);
        for s in stacks {
            pool.put(s);
        }
        // Hot stacks come back dirty and first; the rest were released.
        let again = pool.get(usable).unwrap();
        assert_eq!(again.usable_size(), usable);
        drop(pool);
        release(again);
        // A released stack is reused by the allocator and reads as zero.
        let reused = allocate(usable).unwrap();
        // SAFETY: the address is inside the stack's usable range.
        let byte = unsafe { *(reused.limit().get() as *const u8) };
        assert_eq!(byte, 0, "released stack memory must be returned (zeroed)");
        let _ = first;
        release(reused);
    }

    #[test]
    fn guard_mode_is_probed() {
        let s = allocate(normalize_size(MIN_STACK_SIZE).unwrap()).unwrap();
        assert!(uses_guard_markers().is_some());
        let (lo, hi) = s.guard_range();
        assert_eq!(hi - lo, sys::page_size());
        release(s);
    }
}
