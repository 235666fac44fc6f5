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
//! * Address space is never returned to the kernel (slabs live for the
//!   process), but memory is. Each worker keeps up to
//!   [`HOT_STACKS_PER_WORKER`] *hot* (dirty) stacks, so spawning costs no
//!   syscall and no page fault. Beyond that, stacks move in batches of
//!   [`BATCH`] to a shared *dirty* pool, which also balances stacks between
//!   workers (fibers often finish on another worker than the one that
//!   spawned them). A worker out of both takes up to [`BATCH`] stacks in
//!   one trip to the allocator's lock ([`allocate_batch`]): released ones
//!   first, else new ones, whose guard pages it installs after the lock
//!   (one stack only when it opens a slab, or with `mprotect` guards): a
//!   burst of fibers on several workers does not queue them on that lock
//!   behind each other's system calls. Once the
//!   dirty pool has gone unused for [`TRIM_AFTER`],
//!   an idle hub returns its memory with `MADV_DONTNEED`, sorted and
//!   coalesced so that adjacent stacks cost one call: a `madvise` that zaps
//!   pages costs a TLB-shootdown IPI to every core, so one call per stack
//!   would dominate the teardown of a burst. `MADV_DONTNEED` keeps guard
//!   markers, so returned stacks stay guarded. A burst of fibers therefore
//!   does not pin its memory for longer than [`TRIM_AFTER`].

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use corosensei::stack::{Stack, StackPointer};
use parking_lot::Mutex;

use crate::sys;

/// Default usable stack size of a fiber (256 KiB of address space; only the
/// pages a fiber touches cost memory).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// // A fiber that needs more than the default asks for it:
/// let h = sylvan::Builder::new().stack_size(4 * sylvan::DEFAULT_STACK_SIZE).spawn(|| ()).unwrap();
/// h.join().unwrap();
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest stack size a fiber may ask for. Unwinding a panic and formatting its
/// message needs several KiB; below this a panicking fiber would overflow.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let err = sylvan::Builder::new().stack_size(sylvan::MIN_STACK_SIZE - 1).spawn(|| ()).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Largest stack size a fiber may ask for (1 GiB).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let err = sylvan::Builder::new().stack_size(sylvan::MAX_STACK_SIZE + 1).spawn(|| ()).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// How many dirty stacks a worker keeps for reuse without taking a lock.
const HOT_STACKS_PER_WORKER: usize = 256;

/// Stacks moved between a worker's pool and the shared dirty pool per lock.
const BATCH: usize = 64;

/// How long the dirty pool must go unused before its memory is returned.
pub(crate) const TRIM_AFTER: Duration = Duration::from_secs(1);

/// Largest slab we reserve in one `mmap` (address space only).
const MAX_SLAB_BYTES: usize = 1 << 30;

/// First slab of a size class holds this many stacks; later slabs double.
const FIRST_SLAB_STACKS: usize = 16;

/// Guard pages are installed for up to this many new stacks at once.
const GUARD_BATCH: usize = 64;

/// One fiber stack. Owns its memory exclusively until dropped back to a pool.
///
/// # Invariant
/// `bottom..bottom+guard` is a guard page (faults on access) and
/// `bottom+guard..bottom+len` is read-write memory owned by this value alone,
/// except its top `reserved` bytes while they are lent out
/// ([`FiberStack::reserve_top`]): the coroutine running on the stack sees
/// only `bottom+guard..bottom+len-reserved` (`Stack::base`), so whoever
/// reserved the top may keep data there (a fiber's own record lives there:
/// its stack's first page is touched anyway, so the record costs no memory
/// of its own).
pub struct FiberStack {
    bottom: NonNull<u8>,
    len: usize,
    guard: usize,
    reserved: usize,
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

    /// Lends out the top `bytes` of the stack (rounded up to 64 bytes) and
    /// returns their address, 64-byte aligned; the coroutine's stack then
    /// ends below them. Give them back ([`FiberStack::unreserve`]) before the
    /// stack is pooled.
    ///
    /// # Panics
    /// If a reservation is already made, or `bytes` exceeds a page.
    pub(crate) fn reserve_top(&mut self, bytes: usize) -> NonNull<u8> {
        let bytes = bytes.next_multiple_of(64);
        assert!(
            self.reserved == 0 && bytes <= sys::page_size(),
            "a stack lends out at most one page, once"
        );
        self.reserved = bytes;
        // The top of the mapping is page-aligned; `bytes` is at most a page
        // and at least a page of usable memory lies below (MIN_STACK_SIZE).
        NonNull::new(self.bottom.as_ptr().wrapping_add(self.len - bytes)).expect("non-null stack")
    }

    /// Takes back what [`FiberStack::reserve_top`] lent out.
    pub(crate) fn unreserve(&mut self) {
        self.reserved = 0;
    }

    fn usable_ptr(&self) -> *mut u8 {
        // bottom + guard stays inside the same mapping (see the invariant).
        self.bottom.as_ptr().wrapping_add(self.guard)
    }
}

// SAFETY: base() and limit() describe the memory below the reserved top
// that this value owns exclusively (struct invariant) and that stays mapped
// for the life of the process; base is page-aligned less a multiple of 64
// bytes, hence 16-byte aligned.
unsafe impl Stack for FiberStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.bottom.as_ptr() as usize + self.len - self.reserved)
            .expect("non-null stack")
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
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// sylvan::spawn(|| ()).join().unwrap(); // a stack has been allocated now
/// assert!(sylvan::uses_guard_markers().is_some());
/// ```
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

/// Set once `process_madvise` refused a batch of guard installs (Linux <
/// 6.15): guards are then installed one call each.
static BATCH_REFUSED: AtomicBool = AtomicBool::new(false);

/// Installs the guard pages of `count` adjacent stacks of `len` bytes from
/// `first` on (each stack's first `guard` bytes). With guard markers, up to
/// [`GUARD_BATCH`] of them cost one `process_madvise` call (one syscall and
/// one trip through the address-space lock, instead of one per stack: the
/// lock is what other workers' page faults and allocations contend on when a
/// burst of fibers starts); else one call per stack.
fn install_guards(first: *mut u8, len: usize, guard: usize, count: usize) -> io::Result<()> {
    if (2..=GUARD_BATCH).contains(&count)
        && GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE
        && !BATCH_REFUSED.load(Ordering::Relaxed)
    {
        let mut ranges = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; GUARD_BATCH];
        for (i, range) in ranges[..count].iter_mut().enumerate() {
            *range = libc::iovec {
                iov_base: first.wrapping_add(i * len).cast(),
                iov_len: guard,
            };
        }
        match sys::madvise_many(&ranges[..count], sys::MADV_GUARD_INSTALL) {
            Ok(done) if done == count * guard => return Ok(()),
            // Stopped early: install them one by one (installing a marker
            // twice is harmless).
            Ok(_) => {}
            Err(_) => BATCH_REFUSED.store(true, Ordering::Relaxed),
        }
    }
    (0..count).try_for_each(|i| install_guard(first.wrapping_add(i * len), guard))
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
    /// Unused tail of the newest slab: (next stack's address, stacks left,
    /// how many of those from the next on have their guard page already).
    carve: Option<(NonNull<u8>, usize, usize)>,
    /// How many stacks the next slab holds.
    next_slab: usize,
}

// SAFETY: the raw pointers in a SizeClass describe memory owned by the
// allocator; they are only used under the global allocator's mutex.
unsafe impl Send for SizeClass {}

/// The process-wide slab allocator behind the per-worker pools.
static CLASSES: Mutex<Vec<SizeClass>> = Mutex::new(Vec::new());

/// Dirty (not yet returned) stacks shared between workers, per usable size.
static DIRTY: Mutex<Vec<(usize, Vec<FiberStack>)>> = Mutex::new(Vec::new());

/// Bumped on every use of `DIRTY`, so idle hubs can tell it has gone quiet.
static DIRTY_ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// What the last trim check saw: (activity count, when it last changed).
static TRIM_WATCH: Mutex<Option<(u64, Instant)>> = Mutex::new(None);

/// Moves up to `max` dirty stacks of `usable` bytes into `out`.
fn take_dirty(usable: usize, max: usize, out: &mut Vec<FiberStack>) {
    let mut dirty = DIRTY.lock();
    if let Some((_, list)) = dirty
        .iter_mut()
        .find(|(u, l)| *u == usable && !l.is_empty())
    {
        let keep = list.len().saturating_sub(max);
        out.extend(list.drain(keep..));
        DIRTY_ACTIVITY.fetch_add(1, Ordering::Relaxed);
    }
}

/// Adds dirty stacks (all of `usable` bytes) to the shared pool.
fn give_dirty(usable: usize, stacks: impl IntoIterator<Item = FiberStack>) {
    let mut dirty = DIRTY.lock();
    let idx = match dirty.iter().position(|(u, _)| *u == usable) {
        Some(i) => i,
        None => {
            dirty.push((usable, Vec::new()));
            dirty.len() - 1
        }
    };
    dirty[idx].1.extend(stacks);
    DIRTY_ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// Takes back a stack that no fiber will run on (the own stack of a fiber
/// dropped before it started): it joins the shared dirty pool for reuse.
pub(crate) fn recycle(stack: FiberStack) {
    give_dirty(stack.usable_size(), [stack]);
}

/// Called by a hub about to sleep: returns the dirty pool's memory if the
/// pool has been unused for [`TRIM_AFTER`]. Returns when to check again
/// (`None`: nothing left to trim).
pub(crate) fn trim_if_quiet(now: Instant) -> Option<Instant> {
    let activity = DIRTY_ACTIVITY.load(Ordering::Relaxed);
    let mut watch = TRIM_WATCH.lock();
    if DIRTY.lock().iter().all(|(_, l)| l.is_empty()) {
        *watch = None;
        return None;
    }
    match *watch {
        Some((seen, since)) if seen == activity => {
            if now.saturating_duration_since(since) < TRIM_AFTER {
                return Some(since + TRIM_AFTER);
            }
        }
        _ => {
            *watch = Some((activity, now));
            return Some(now + TRIM_AFTER);
        }
    }
    *watch = None;
    let taken: Vec<FiberStack> = DIRTY
        .lock()
        .iter_mut()
        .flat_map(|(_, l)| std::mem::take(l))
        .collect();
    drop(watch);
    release_all(taken);
    None
}

/// Returns the memory of many stacks, one `madvise` per run of adjacent
/// stacks, and files them as clean.
pub(crate) fn release_all(mut stacks: Vec<FiberStack>) {
    if stacks.is_empty() {
        return;
    }
    stacks.sort_by_key(|s| s.bottom.as_ptr() as usize);
    let mut run_start = 0;
    for i in 1..=stacks.len() {
        let adjacent = i < stacks.len() && {
            let prev = &stacks[i - 1];
            prev.bottom.as_ptr() as usize + prev.len == stacks[i].bottom.as_ptr() as usize
        };
        if !adjacent {
            // Zap from the first usable byte to the end of the run; guard
            // pages inside the run keep their markers (or PROT_NONE).
            let first = &stacks[run_start];
            let last = &stacks[i - 1];
            let end = last.bottom.as_ptr() as usize + last.len;
            let start = first.usable_ptr();
            if sys::madvise(start, end - start as usize, libc::MADV_DONTNEED).is_err() {
                // Cannot happen for ranges inside our own mappings; if it
                // does, do not hand these stacks out again as clean.
                stacks.drain(run_start..i).for_each(std::mem::forget);
                return release_all(stacks);
            }
            run_start = i;
        }
    }
    let mut classes = CLASSES.lock();
    for stack in stacks {
        if let Some(class) = classes.iter_mut().find(|c| c.len == stack.len) {
            class.free.push(stack);
        }
    }
}

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
    let (next, left, mut guarded) = match class.carve {
        Some(c) => c,
        None => {
            let max = (MAX_SLAB_BYTES / len).max(1);
            let count = class.next_slab.min(max);
            let base = sys::map_reserve(count * len).map_err(|e| refused("mmap", e))?;
            class.next_slab = (count * 2).min(max);
            (NonNull::new(base).expect("mmap returned null"), count, 0)
        }
    };
    if guarded == 0 {
        // Batches with guard markers only: the first stack alone probes
        // which guards this kernel has, and `mprotect` guards cost two
        // mappings each, so they are made one at a time, as needed.
        let batch = if GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE {
            left.min(GUARD_BATCH)
        } else {
            1
        };
        if let Err(e) = install_guards(next.as_ptr(), len, guard, batch) {
            // Keep the slab tail for a later attempt; nothing was handed out.
            class.carve = Some((next, left, 0));
            return Err(refused("guard page install", e));
        }
        guarded = batch;
    }
    class.carve = if left > 1 {
        // The next stack starts right above this one, inside the same slab.
        NonNull::new(next.as_ptr().wrapping_add(len)).map(|p| (p, left - 1, guarded - 1))
    } else {
        None
    };
    Ok(FiberStack {
        bottom: next,
        len,
        guard,
        reserved: 0,
    })
}

/// Moves up to `max` (≥ 1) new stacks of `usable` bytes into `out`, taking
/// the allocator's lock once: clean ones first, then adjacent ones carved
/// from the newest slab. Their guard pages are installed *after* the lock
/// is released (the carved run is this caller's alone by then), so a
/// worker that installs guards never makes another wait for the lock
/// through a system call. Until the kernel's guard mechanism is known to
/// be markers (`MADV_GUARD_INSTALL`), or with `mprotect` guards (two
/// mappings each, so made as needed), it takes one stack, as [`allocate`].
pub(crate) fn allocate_batch(
    usable: usize,
    max: usize,
    out: &mut Vec<FiberStack>,
) -> io::Result<()> {
    let guard = sys::page_size();
    let len = usable + guard;
    let batching = max > 1 && GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE;
    let carved = if !batching {
        None
    } else {
        let mut classes = CLASSES.lock();
        match classes.iter_mut().find(|c| c.len == len) {
            Some(class) if !class.free.is_empty() => {
                let keep = class.free.len().saturating_sub(max);
                out.extend(class.free.drain(keep..));
                return Ok(());
            }
            Some(class) => class.carve.map(|(next, left, guarded)| {
                let count = left.min(max);
                class.carve = NonNull::new(next.as_ptr().wrapping_add(count * len))
                    .filter(|_| left > count)
                    .map(|p| (p, left - count, guarded.saturating_sub(count)));
                (next, count, guarded.min(count))
            }),
            None => None,
        }
    };
    // Not batching, or no class or slab yet (the slab is made, and its
    // first guards installed, under the lock): one stack; later batches
    // carve the rest.
    let Some((first, count, guarded)) = carved else {
        out.push(allocate(usable)?);
        return Ok(());
    };
    // The carved run: stacks `0..guarded` have their guards already.
    let stack = |i: usize| FiberStack {
        bottom: NonNull::new(first.as_ptr().wrapping_add(i * len)).expect("inside a slab"),
        len,
        guard,
        reserved: 0,
    };
    out.extend((0..guarded).map(stack));
    let mut done = guarded;
    while done < count {
        let batch = (count - done).min(GUARD_BATCH);
        if let Err(e) = install_guards(first.as_ptr().wrapping_add(done * len), len, guard, batch) {
            // The unguarded rest is never handed out: its address space
            // is lost (memory is not: it was never touched).
            return if done > 0 {
                Ok(())
            } else {
                Err(refused("guard page install", e))
            };
        }
        out.extend((done..done + batch).map(stack));
        done += batch;
    }
    Ok(())
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
    /// batch from the shared dirty pool, else a clean or new one.
    pub(crate) fn get(&mut self, usable: usize) -> io::Result<FiberStack> {
        if usable != self.default_usable {
            let mut one = Vec::new();
            take_dirty(usable, 1, &mut one);
            return match one.pop() {
                Some(stack) => Ok(stack),
                None => allocate(usable),
            };
        }
        if let Some(stack) = self.hot.pop() {
            return Ok(stack);
        }
        take_dirty(usable, BATCH, &mut self.hot);
        if self.hot.is_empty() {
            // A burst: a batch of new stacks for one trip to the allocator.
            allocate_batch(usable, BATCH, &mut self.hot)?;
        }
        Ok(self.hot.pop().expect("a batch holds at least one stack"))
    }

    /// Gives a stack back: kept hot if it has the default size and there is
    /// room, else (with a batch of hot ones) handed to the shared dirty pool.
    pub(crate) fn put(&mut self, stack: FiberStack) {
        debug_assert_eq!(stack.reserved, 0, "a pooled stack lends nothing out");
        let usable = stack.usable_size();
        if usable != self.default_usable {
            return give_dirty(usable, [stack]);
        }
        if self.hot.len() < HOT_STACKS_PER_WORKER {
            return self.hot.push(stack);
        }
        let start = self.hot.len() - BATCH;
        let spill: Vec<FiberStack> = self.hot.drain(start..).collect();
        self.hot.push(stack);
        give_dirty(usable, spill);
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        release_all(std::mem::take(&mut self.hot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `addr` can be read, asked of the kernel without faulting:
    /// process_vm_readv fails with EFAULT on a guard page.
    fn readable(addr: usize) -> bool {
        let mut byte = 0u8;
        let local = libc::iovec {
            iov_base: (&mut byte as *mut u8).cast(),
            iov_len: 1,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: reads one byte from our own address space into `byte`; the
        // kernel validates the remote address and reports EFAULT instead of
        // faulting.
        unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) == 1 }
    }

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

    /// Checks that `stacks` do not overlap, each has `usable` bytes and a
    /// guard page, and their top and bottom bytes can be written (marks
    /// them 1 and 2).
    fn check_disjoint_guarded(stacks: &[FiberStack], usable: usize) {
        let mut ranges: Vec<(usize, usize)> = stacks
            .iter()
            .map(|s| (s.guard_range().0, s.base().get()))
            .collect();
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "stacks overlap: {w:?}");
        }
        for s in stacks {
            assert_eq!(s.usable_size(), usable);
            assert_eq!(s.base().get() % 16, 0);
            let (lo, hi) = s.guard_range();
            assert_eq!(hi - lo, sys::page_size());
            assert!(
                !readable(lo) && !readable(hi - 1),
                "guard page is inaccessible"
            );
            // SAFETY: both addresses lie inside the stack's usable range.
            unsafe {
                *(s.limit().get() as *mut u8) = 1;
                *((s.base().get() - 1) as *mut u8) = 2;
            }
        }
    }

    /// Checks that the marks `check_disjoint_guarded` wrote are gone.
    fn check_zeroed(stacks: &[FiberStack]) {
        for s in stacks {
            // SAFETY: the addresses are inside the stack's usable range.
            let (a, b) = unsafe {
                (
                    *(s.limit().get() as *const u8),
                    *((s.base().get() - 1) as *const u8),
                )
            };
            assert_eq!(
                (a, b),
                (0, 0),
                "released stack memory must come back zeroed"
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap with MAP_NORESERVE, mprotect, madvise")]
    fn stacks_are_disjoint_guarded_and_come_back_clean() {
        // A size no other test uses, so the class is ours alone.
        let usable = normalize_size(72 * 1024).unwrap();
        let stacks: Vec<_> = (0..40).map(|_| allocate(usable).unwrap()).collect();
        check_disjoint_guarded(&stacks, usable);
        let guards: Vec<_> = stacks.iter().map(|s| s.guard_range().0).collect();
        // One coalesced release for all 40 (mostly adjacent) stacks.
        release_all(stacks);
        for g in guards {
            assert!(!readable(g), "a coalesced MADV_DONTNEED must keep guards");
        }
        let reused: Vec<_> = (0..40).map(|_| allocate(usable).unwrap()).collect();
        check_zeroed(&reused);
        release_all(reused);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap with MAP_NORESERVE, mprotect, madvise")]
    fn batches_are_disjoint_guarded_and_span_slabs() {
        // A size no other test uses, so the class is ours alone.
        let usable = normalize_size(88 * 1024).unwrap();
        let mut stacks = Vec::new();
        // Probes the guard mechanism and opens the first slab (16 stacks).
        stacks.push(allocate(usable).unwrap());
        // Batches run over the first slab's end into the next ones.
        for _ in 0..5 {
            let before = stacks.len();
            allocate_batch(usable, 24, &mut stacks).unwrap();
            let got = stacks.len() - before;
            assert!((1..=24).contains(&got), "a batch of {got}");
        }
        check_disjoint_guarded(&stacks, usable);
        // Released stacks come back clean, by the batch too.
        let n = stacks.len();
        release_all(stacks);
        let mut again = Vec::new();
        while again.len() < n {
            allocate_batch(usable, 64, &mut again).unwrap();
        }
        check_zeroed(&again);
        release_all(again);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap with MAP_NORESERVE, mprotect, madvise")]
    fn a_reserved_top_is_lent_out_below_the_top_and_given_back() {
        let usable = normalize_size(MIN_STACK_SIZE).unwrap();
        let mut s = allocate(usable).unwrap();
        let top = s.base().get();
        let lent = s.reserve_top(100);
        // Rounded to 64 bytes, 64-aligned, and the coroutine's stack ends
        // below it.
        assert_eq!(lent.as_ptr() as usize, top - 128);
        assert_eq!(s.base().get(), top - 128);
        assert_eq!(s.base().get() % 16, 0);
        assert_eq!(s.usable_size(), usable, "the size class is unchanged");
        s.unreserve();
        assert_eq!(s.base().get(), top);
        release_all(vec![s]);
    }

    /// Tests that look at or trim the shared dirty pool run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    #[cfg_attr(miri, ignore = "mmap with MAP_NORESERVE, mprotect, madvise")]
    fn pool_reuses_hot_stacks_and_spills_to_the_dirty_pool() {
        let _serial = SERIAL.lock();
        let usable = normalize_size(80 * 1024).unwrap();
        let mut pool = StackPool::new(usable);
        let stacks: Vec<_> = (0..HOT_STACKS_PER_WORKER + 1)
            .map(|_| pool.get(usable).unwrap())
            .collect();
        let first = stacks[0].bottom;
        // New stacks come a batch at a time: the last batch's rest is hot.
        let left_over = pool.hot.len();
        assert!(left_over < BATCH);
        for s in stacks {
            pool.put(s);
        }
        assert!(pool.hot.len() <= HOT_STACKS_PER_WORKER);
        let spilled = DIRTY
            .lock()
            .iter()
            .find(|(u, _)| *u == usable)
            .map_or(0, |(_, l)| l.len());
        assert!(spilled > 0 && spilled % BATCH == 0, "spilled {spilled}");
        assert_eq!(
            pool.hot.len() + spilled,
            left_over + HOT_STACKS_PER_WORKER + 1
        );
        // A second pool (another worker) takes a batch from the dirty pool.
        let mut other = StackPool::new(usable);
        let s = other.get(usable).unwrap();
        assert_eq!(other.hot.len(), BATCH - 1);
        other.put(s);
        // Hot stacks are still dirty (no syscall on reuse).
        let again = pool.get(usable).unwrap();
        let _ = first;
        pool.put(again);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap with MAP_NORESERVE, mprotect, madvise")]
    fn trim_waits_for_quiet_then_returns_memory() {
        let _serial = SERIAL.lock();
        let t0 = Instant::now();
        let usable = normalize_size(88 * 1024).unwrap();
        let s = allocate(usable).unwrap();
        give_dirty(usable, [s]);
        // First look: activity changed, come back later.
        let again = trim_if_quiet(t0).expect("something to trim");
        assert!(again > t0);
        // Not quiet long enough yet (unless another test touched the pool,
        // which only postpones the trim).
        let later = trim_if_quiet(t0 + TRIM_AFTER / 2);
        assert!(later.is_some());
        // After the quiet period everything is returned.
        let mut done = false;
        for k in 2..10u32 {
            if trim_if_quiet(t0 + TRIM_AFTER * k).is_none() {
                done = true;
                break;
            }
        }
        assert!(done, "the dirty pool was trimmed");
        assert!(DIRTY.lock().iter().all(|(_, l)| l.is_empty()));
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap with MAP_NORESERVE, mprotect, madvise")]
    fn guard_mode_is_probed() {
        let s = allocate(normalize_size(MIN_STACK_SIZE).unwrap()).unwrap();
        assert!(uses_guard_markers().is_some());
        release_all(vec![s]);
    }
}
