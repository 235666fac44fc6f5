//! A fiber's identity and its shared header: what its worker, its wakers and
//! its join handle all see.

use std::fmt;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::RunState;
use crate::sched::Inbox;

/// A fiber's unique id (never reused within a process).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::collections::HashMap;
/// let mut names: HashMap<sylvan::FiberId, &str> = HashMap::new();
/// let h = sylvan::spawn(|| ());
/// names.insert(h.id(), "first"); // Hash + Eq: usable as a key
/// assert_eq!(names[&h.id()], "first");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiberId(NonZeroU64);

impl FiberId {
    pub(crate) fn next() -> FiberId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        FiberId(NonZeroU64::new(id).expect("fiber id overflow"))
    }

    /// The id as a number (ids start at 1 and grow).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let id = sylvan::spawn(|| ()).id();
    /// assert!(id.as_u64() >= 1);
    /// ```
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for FiberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The thread-safe part of a fiber, shared by its hub, its wakers and its
/// `JoinHandle`.
///
/// Every spawn allocates one, and a parked fiber's costs memory for as long
/// as it waits, so it is kept small: 48 bytes.
pub(crate) struct Header {
    pub(crate) id: FiberId,
    /// A thin pointer: most fibers have no name, and a `Box<str>` would cost
    /// every one of them 8 more bytes.
    #[allow(clippy::redundant_allocation)]
    name: Option<Box<Box<str>>>,
    /// Running, parked, holding a wake token, or done.
    pub(crate) state: RunState,
    /// Set by `JoinHandle::cancel` (and at runtime shutdown); sticky.
    pub(crate) cancelled: AtomicBool,
    /// The inbox of the worker that started the fiber (null before start).
    ///
    /// # Invariant
    /// Written once, by the starting worker before the fiber first runs
    /// (`Header::set_owner`), and published to other threads by the fiber's
    /// own `RUNNING → PARKED` CAS (release), which unparkers read with acquire
    /// before using it. While the fiber is `PARKED` the inbox is alive: its
    /// worker holds an `Arc` to it until every fiber of the worker is done,
    /// and a worker that abandons parked fibers at shutdown leaks one `Arc`
    /// to it (`Hub::abandon_fibers`).
    owner: AtomicPtr<Inbox>,
    /// The fiber's slot in its worker's fiber table (valid once `owner` is
    /// set).
    slot: AtomicU32,
    /// Usable bytes of the fiber's stack (for overflow reports; at most
    /// `MAX_STACK_SIZE`, 1 GiB).
    stack_size: u32,
    /// Where the fiber was spawned (the caller of `spawn`, `Builder::spawn`,
    /// `Scope::spawn`, `run`...).
    pub(crate) site: &'static Location<'static>,
}

impl Header {
    pub(crate) fn new(
        name: Option<String>,
        stack_size: usize,
        site: &'static Location<'static>,
    ) -> Header {
        Header {
            id: FiberId::next(),
            name: name.map(|n| Box::new(n.into_boxed_str())),
            state: RunState::new(),
            cancelled: AtomicBool::new(false),
            owner: AtomicPtr::new(std::ptr::null_mut()),
            slot: AtomicU32::new(0),
            stack_size: u32::try_from(stack_size).expect("stack sizes are at most 1 GiB"),
            site,
        }
    }

    /// The fiber's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|n| &**n)
    }

    /// Usable bytes of the fiber's stack.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size as usize
    }

    /// Wakes the fiber (see [`RunState::unpark`]). Safe from any thread.
    pub(crate) fn unpark(&self) {
        if self.state.unpark() {
            // We won PARKED → RUNNING: we alone queue the fiber.
            let owner = self.owner.load(Ordering::Relaxed);
            debug_assert!(!owner.is_null(), "a parked fiber was started by a worker");
            // SAFETY: it was PARKED, so `owner` was set and published by its
            // park CAS (acquired by our RMW); see `Header::owner` for why the
            // inbox is alive while the fiber is parked.
            unsafe { &*owner }.schedule(self.slot());
        }
    }

    /// Records the worker that starts this fiber (its inbox) and the fiber's
    /// slot there.
    pub(crate) fn set_owner(&self, inbox: &Arc<Inbox>, slot: usize) {
        let slot = u32::try_from(slot).expect("a worker runs fewer than 2^32 fibers at once");
        self.slot.store(slot, Ordering::Relaxed);
        self.owner
            .store(Arc::as_ptr(inbox).cast_mut(), Ordering::Relaxed);
    }

    /// The fiber's slot in its worker (meaningful once started).
    pub(crate) fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed) as usize
    }

    /// Marks the fiber cancelled and wakes it so it notices.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.unpark();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// "'name' (#7)" or "#7", for messages.
    pub(crate) fn describe(&self) -> String {
        match self.name() {
            Some(n) => format!("'{n}' ({})", self.id),
            None => format!("{}", self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpark_before_park_leaves_a_token_and_done_ignores_wakes() {
        let h = Header::new(Some("x".into()), 0, Location::caller());
        h.unpark();
        h.unpark();
        assert!(h.state.has_token(), "tokens do not stack");
        assert!(h.state.take_token());
        h.state.finish();
        h.unpark();
        h.cancel();
        assert!(h.state.is_done());
        assert!(h.is_cancelled());
        assert_eq!(h.describe(), format!("'x' ({})", h.id));
    }

    #[test]
    fn ids_are_unique_and_increasing() {
        let a = FiberId::next();
        let b = FiberId::next();
        assert!(b > a);
    }
}
