//! Scoped fibers: fibers that may borrow from the caller's stack.
//!
//! [`scope`] returns only after every fiber spawned in it has finished, so
//! those fibers may borrow anything that outlives the call. If the scope's
//! closure unwinds (a panic, a cancellation of the calling fiber, an expired
//! [`timeout`](crate::timeout)) the children are cancelled and still waited
//! for before the unwind continues — structured concurrency; so are children
//! they spawn after that. The wait for the children cannot be interrupted: a
//! cancellation of the caller, or an enclosing `timeout` that expires, during
//! it is passed on to the children, and raised once they have finished.

use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::hub::RuntimeShared;
use crate::join::{JoinCell, JoinError};
use crate::park::{self, Waker};
use crate::record::{self, FiberId};
use crate::record::{Boxed, Task, TaskCell, TaskRef};
use crate::runtime;
use crate::spawn::{Job, Parent};

/// Bookkeeping shared by a scope and its children.
pub(crate) struct ScopeState {
    running: AtomicUsize,
    unjoined_panics: AtomicUsize,
    waiter: Mutex<Option<Waker>>,
    children: Mutex<Children>,
}

/// The children that have not finished, by slot (a slot is freed when its
/// child finishes, so a long-lived scope holds only its live children).
#[derive(Default)]
struct Children {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
    /// The scope cancelled its children: a child spawned from now on is
    /// cancelled as it is added.
    cancelled: bool,
}

/// One child's link to its scope: tells the scope, and frees its slot,
/// when the child finishes.
struct Child {
    state: Arc<ScopeState>,
    slot: usize,
}

impl Parent for Child {
    fn child_done(&self, panicked: bool) {
        let record = {
            let mut children = self.state.children.lock();
            children.free.push(self.slot);
            children.slots[self.slot].take()
        };
        // Dropped outside the lock (the caller holds a reference of its
        // own, so this is never the record's last).
        drop(record);
        self.state.child_done(panicked);
    }
}

impl ScopeState {
    fn child_done(&self, panicked: bool) {
        if panicked {
            self.unjoined_panics.fetch_add(1, Ordering::AcqRel);
        }
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(w) = self.waiter.lock().take() {
                w.wake();
            }
        }
    }

    /// Cancels every child, and every child added from now on.
    fn cancel_children(&self) {
        let mut children = self.children.lock();
        children.cancelled = true;
        for h in children.slots.iter().flatten() {
            h.cancel();
        }
    }

    /// Waits (shielded) until every child has finished. A cancellation of
    /// the caller, or the expiry of its innermost `timeout`, is passed on to
    /// the children if the caller could be interrupted (`interruptible`:
    /// not shielded, not unwinding): the caller raises it once they are
    /// done.
    fn wait_all(&self, interruptible: bool) {
        let mut passed_on = !interruptible;
        let deadline = park::innermost_deadline().filter(|_| interruptible);
        while self.running.load(Ordering::Acquire) != 0 {
            *self.waiter.lock() = Some(park::current_waker());
            if self.running.load(Ordering::Acquire) == 0 {
                break;
            }
            if !passed_on
                && (record::with_current(|c| c.record.is_cancelled()) == Some(true)
                    || deadline.is_some_and(|at| Instant::now() >= at))
            {
                passed_on = true;
                self.cancel_children();
            }
            match deadline {
                Some(at) if !passed_on => {
                    park::park_until(at);
                }
                _ => park::park(),
            }
        }
    }
}

/// A scope to spawn borrowing fibers in; see [`scope`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let mut words = vec!["fiber", "hub"];
/// let lens = sylvan::scope(|s| {
///     let a = s.spawn(|| words.iter().map(|w| w.len()).sum::<usize>()); // borrows `words`
///     let b = s.spawn(|| words.len());
///     (a.join().unwrap(), b.join().unwrap())
/// });
/// assert_eq!(lens, (8, 2));
/// words.push("worker"); // the borrows ended with the scope
/// ```
///
/// A scoped fiber may only borrow what outlives the scope; a local of the
/// scope's closure does not:
///
/// ```compile_fail,E0373
/// # extern crate sylvan_runtime as sylvan;
/// sylvan::scope(|s| {
///     let local = vec![1, 2, 3];
///     s.spawn(|| local.len()); // error: the closure may outlive `local`
/// });
/// ```
///
/// and the borrow checker still forbids data races between the fibers and
/// the scope's own code:
///
/// ```compile_fail,E0499
/// # extern crate sylvan_runtime as sylvan;
/// let mut data = vec![1];
/// sylvan::scope(|s| {
///     s.spawn(|| data.push(2));
///     data.push(3); // error: `data` is already borrowed mutably by the fiber
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    state: Arc<ScopeState>,
    rt: Arc<RuntimeShared>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a fiber that may borrow from outside the scope. It is joined
    /// automatically when the scope ends if not joined before.
    ///
    /// Like [`spawn`](crate::spawn()), it gets its stack when it starts; if the
    /// system refuses one then, it does not run and its handle reports it
    /// cancelled (the reason is printed).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let words = ["a", "bb", "ccc"];
    /// let total = sylvan::scope(|s| {
    ///     let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(total, 6); // the fibers borrowed `words`
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let site = std::panic::Location::caller();
        self.spawn_with(None, None, site, f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`spawn`](Scope::spawn) with a name and a stack size of its own (as
    /// [`Builder`](crate::Builder) gives): a stack of its own is taken now,
    /// so a size the system refuses is an error here.
    pub(crate) fn spawn_with<F, T>(
        &'scope self,
        name: Option<String>,
        stack_size: Option<usize>,
        site: &'static std::panic::Location<'static>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let stack = match stack_size {
            Some(size) => Some(self.rt.stack(Some(size))?),
            None => None,
        };
        let size = stack
            .as_ref()
            .map_or(self.rt.stack_size, |s| s.usable_size());
        let cell = Arc::new(JoinCell::new());
        self.state.running.fetch_add(1, Ordering::AcqRel);
        let slot = {
            let mut children = self.state.children.lock();
            match children.free.pop() {
                Some(slot) => slot,
                None => {
                    children.slots.push(None);
                    children.slots.len() - 1
                }
            }
        };
        let child = Child {
            state: self.state.clone(),
            slot,
        };
        let job = Job::new(f, cell.clone(), Some(Arc::new(child)));
        let run: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || job.run());
        // Only the lifetime changes. `scope()` does not return (or unwind past
        // its frame) before `running` is zero, and a child decrements it only
        // after its closure, its result reference and every other 'scope
        // borrow are dropped (`Job::finish`, and `Job::drop` for a child
        // dropped unstarted at shutdown).
        // SAFETY: so no 'scope data is used after 'scope ends.
        let run: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(run) };
        let record: TaskRef = Arc::new(TaskCell {
            header: crate::record::Header::new(name, size, site),
            body: Boxed::new(run),
        });
        let cancelled = {
            let mut children = self.state.children.lock();
            children.slots[slot] = Some(record.clone());
            children.cancelled
        };
        if cancelled {
            // Spawned after the scope cancelled its children (by one of
            // them, say): it does not run.
            record.cancel();
        }
        self.rt.submit(Task::new(record.clone(), stack));
        Ok(ScopedJoinHandle {
            record,
            cell,
            state: self.state.clone(),
            _scope: PhantomData,
        })
    }

    /// A fresh scope on the current runtime (see [`scope`]).
    pub(crate) fn new() -> Self {
        Scope {
            state: Arc::new(ScopeState {
                running: AtomicUsize::new(0),
                unjoined_panics: AtomicUsize::new(0),
                waiter: Mutex::new(None),
                children: Mutex::new(Children::default()),
            }),
            rt: runtime::current(),
            scope: PhantomData,
            env: PhantomData,
        }
    }

    /// Ends the scope whose closure returned `result`: cancels the children
    /// if it unwound, waits for all of them, and re-raises the unwind or a
    /// panic of a child nobody joined (see [`scope`]).
    pub(crate) fn finish<R>(&self, result: std::thread::Result<R>) -> R {
        if result.is_err() {
            self.state.cancel_children();
        }
        let interruptible = park::interruptible_here();
        park::shield(|| self.state.wait_all(interruptible));
        if result.is_ok() {
            // A cancellation or an expired timeout that arrived during the
            // wait, and was passed on to the children, is raised now.
            park::checkpoint();
        }
        match result {
            Err(payload) => resume_unwind(payload),
            Ok(_) if self.state.unjoined_panics.load(Ordering::Acquire) > 0 => {
                panic!("a scoped fiber panicked")
            }
            Ok(r) => r,
        }
    }
}

/// A handle to join a scoped fiber.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let text = String::from("a b c");
/// let n = sylvan::scope(|s| {
///     let h = s.spawn(|| text.split(' ').count());
///     h.join().unwrap()
/// });
/// assert_eq!(n, 3);
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    record: TaskRef,
    cell: Arc<JoinCell<T>>,
    state: Arc<ScopeState>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the fiber and returns its value or why it has none.
    ///
    /// # Panics
    /// If called from the fiber itself (it would wait forever).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// sylvan::scope(|s| {
    ///     let ok = s.spawn(|| 1);
    ///     let bad = s.spawn(|| -> i32 { panic!("scoped") });
    ///     assert_eq!(ok.join().unwrap(), 1);
    ///     assert!(bad.join().unwrap_err().is_panic()); // joined: the scope does not re-raise it
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        crate::join::refuse_self_join(&self.record);
        let r = self
            .cell
            .wait(crate::record::WaitOn::join(self.record.id.as_u64()))
            .map_err(|f| JoinError::new(f, &self.record));
        if matches!(&r, Err(e) if e.is_panic()) {
            self.state.unjoined_panics.fetch_sub(1, Ordering::AcqRel);
        }
        r
    }

    /// Requests cancellation of the fiber (see [`JoinHandle::cancel`](crate::JoinHandle::cancel)).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| sylvan::sleep(Duration::from_secs(60)));
    ///     h.cancel();
    ///     assert!(h.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) {
        self.record.cancel();
    }

    /// Whether the fiber has finished.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| sylvan::sleep(Duration::from_secs(60)));
    ///     assert!(!h.is_finished());
    ///     h.cancel();
    ///     while !h.is_finished() {
    ///         sylvan::sleep(Duration::from_millis(1));
    ///     }
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.cell.is_done()
    }

    /// The fiber's id.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| sylvan::current().id());
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> FiberId {
        self.record.id
    }

    /// The fiber's identity (name, id, cancel).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)));
    ///     let f = h.fiber(); // can be handed to code that has no handle
    ///     f.cancel();
    ///     assert!(h.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn fiber(&self) -> crate::Fiber {
        crate::Fiber {
            record: self.record.clone(),
        }
    }
}

/// Runs `f` with a [`Scope`] whose fibers may borrow from the caller; returns
/// after all of them have finished.
///
/// # Panics
/// Re-raises a panic of `f`. If a scoped fiber panicked and was not joined,
/// panics after all fibers have finished (like `std::thread::scope`).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let mut data = vec![1, 2, 3, 4];
/// let total = std::sync::atomic::AtomicU32::new(0);
/// sylvan::scope(|s| {
///     for chunk in data.chunks(2) {
///         let total = &total;
///         s.spawn(move || {
///             total.fetch_add(chunk.iter().sum(), std::sync::atomic::Ordering::Relaxed);
///         });
///     }
/// });
/// data.push(5); // the borrows have ended
/// assert_eq!(total.into_inner(), 10);
/// ```
pub fn scope<'env, F, R>(f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope::new();
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.finish(result)
}
