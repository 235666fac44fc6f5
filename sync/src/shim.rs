//! The concurrency primitives the crate is built from, in one place so that
//! loom can stand in for them.
//!
//! Every module takes its waiter-state lock ([`Mutex`]), its atomics, the
//! hand-over's [`Arc`] and [`UnsafeCell`], and [`park`] (wakers, park,
//! park-until) from here. In every normal build (`cfg(not(all(test, loom)))`)
//! these are the very types the code used before: `parking_lot::Mutex`,
//! std's atomics and `Arc`, `sylvan_runtime::park`, and a zero-cost
//! `UnsafeCell` wrapper whose only method inlines to `UnsafeCell::get`.
//!
//! When this crate's own tests are built with `RUSTFLAGS="--cfg loom"`, they
//! come from [loom] instead, so the models in `loom_models` run the real
//! waiter, queue and select code under every interleaving loom explores
//! (`.ci/loom` runs them). Only the test build of this crate changes: other
//! crates, and this crate as a dependency, still see the normal types.
//!
//! The runtime's park switches fibers on a hub, which loom cannot run, so
//! under loom [`park`] is a small model of its contract instead (see that
//! module).
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(all(test, loom)))]
pub(crate) use self::std_impl::*;

#[cfg(all(test, loom))]
pub(crate) use self::loom_impl::*;

#[cfg(not(all(test, loom)))]
mod std_impl {
    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize};
    pub(crate) use std::sync::Arc;
    pub(crate) use sylvan_runtime::park;

    /// `std::cell::UnsafeCell` with loom's closure-shaped access, so the
    /// same code compiles against both. Adds nothing at run time.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a pointer to the contents; the caller's unsafe
        /// block must justify whatever `f` does with it.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(all(test, loom))]
mod loom_impl {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize};
    pub(crate) use loom::sync::Arc;

    use std::collections::VecDeque;
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    use std::sync::{PoisonError, TryLockError};

    /// A lock for loom with `parking_lot`'s signature: a loom atomic flag
    /// (acquire to lock, release to unlock) with a FIFO of blocked lockers,
    /// each waiting on its own loom `Notify`, in front of a std mutex that is
    /// therefore never contended.
    ///
    /// Not `loom::sync::Mutex`: the models unwind loom threads (modelled
    /// cancellation), and loom runs all its threads on one OS thread, so
    /// `std::thread::panicking()` is true for *every* loom thread while one
    /// unwinds; a guard another loom thread drops meanwhile poisons the std
    /// mutex inside loom's, whose `lock` then panics. This lock ignores
    /// poisoning. (Not a spin lock either: loom explores two spinners
    /// yielding to each other for ever.) Its waits use their own `Notify`,
    /// never the thread's park token, so they cause no spurious wake-up of
    /// the code under test.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T> {
        locked: AtomicBool,
        lockers: std::sync::Mutex<VecDeque<std::sync::Arc<park::Parker>>>,
        data: std::sync::Mutex<T>,
    }

    pub(crate) struct MutexGuard<'a, T> {
        data: Option<std::sync::MutexGuard<'a, T>>,
        mutex: &'a Mutex<T>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex {
                locked: AtomicBool::new(false),
                lockers: Default::default(),
                data: std::sync::Mutex::new(value),
            }
        }

        fn try_acquire(&self) -> bool {
            self.locked
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok()
        }

        fn lockers(&self) -> std::sync::MutexGuard<'_, VecDeque<std::sync::Arc<park::Parker>>> {
            self.lockers.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            while !self.try_acquire() {
                let me = park::current_parker();
                self.lockers().push_back(me.clone());
                let acquired = self.try_acquire();
                if !acquired {
                    me.lock_notify.wait();
                }
                self.lockers().retain(|p| !std::sync::Arc::ptr_eq(p, &me));
                if acquired {
                    break;
                }
            }
            let data = match self.data.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => panic!("the model lock admitted two holders"),
            };
            MutexGuard {
                data: Some(data),
                mutex: self,
            }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.data.as_ref().expect("held until dropped")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.data.as_mut().expect("held until dropped")
        }
    }

    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            self.data = None;
            self.mutex.locked.store(false, Release);
            let next = self.mutex.lockers().pop_front();
            if let Some(p) = next {
                p.lock_notify.notify();
            }
        }
    }

    /// A model of `sylvan_runtime::park` on loom threads.
    ///
    /// Each loom thread stands for one fiber or thread. What is kept of the
    /// runtime's contract:
    ///
    /// * wakes are tokens: a wake at any time after [`current_waker`] makes
    ///   the next park return. The token is a per-thread loom `Notify`
    ///   (`notify` stores it when the thread is not waiting); like the
    ///   runtime's wake it carries the waker's memory to the woken (release,
    ///   acquire). loom also explores one spurious return of each thread's
    ///   park, which the contract allows;
    /// * a park with a deadline returns once the deadline has passed, with
    ///   `true`. Time is modelled, not read: a thread's deadline passes when
    ///   a model calls [`park::expire`] on it (from another loom thread, so
    ///   at any point of the schedule; the deadline argument is ignored);
    /// * cancellation ([`park::cancel`]) is raised by unwinding with
    ///   [`Cancelled`] when a park is entered and again when it returns,
    ///   exactly as the runtime raises a fiber's cancellation; never while
    ///   already unwinding. An expired `timeout` scope is raised at a subset
    ///   of those points (only by a park that would block), so the
    ///   cancellation model covers it.
    ///
    /// Not modelled: the hub, timers, fiber switches. Caveat: loom runs all
    /// its threads on one OS thread, so `std::thread::panicking()` is true
    /// in every loom thread while one unwinds; a model should cancel only
    /// one thread at a time (all of ours do).
    pub(crate) mod park {
        /// Labelled parks: the labels only matter to `sylvan::dump`.
        pub(crate) fn park_for(_what: &'static WaitLabel) {
            park()
        }

        /// See [`park_for`].
        pub(crate) fn park_until_for(deadline: Instant, _what: &'static WaitLabel) -> bool {
            park_until(deadline)
        }

        /// As the runtime's.
        #[allow(dead_code)]
        pub(crate) struct WaitLabel(pub &'static str);

        use std::sync::atomic::AtomicBool;
        use std::sync::atomic::Ordering::SeqCst;
        use std::time::Instant;

        use loom::thread::Thread;

        /// The unwinding payload of a modelled cancellation.
        pub(crate) struct Cancelled;

        /// What a loom thread's parks consult: whether its deadline has
        /// passed, whether it is cancelled. (Plain std atomics: these flags
        /// are the model's clock and canceller, not code under test; the
        /// schedule decides when they are set, and the wake that follows
        /// gives the woken thread loom's happens-before edge.)
        pub(crate) struct Parker {
            thread: Thread,
            expired: AtomicBool,
            cancelled: AtomicBool,
            /// This thread's park token: `notify` is a wake (stored if the
            /// thread is not waiting), `wait` a park.
            token: loom::sync::Notify,
            /// Where this thread waits for a model [`Mutex`](super::Mutex).
            pub(super) lock_notify: loom::sync::Notify,
        }

        impl std::fmt::Debug for Parker {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Parker")
                    .field("thread", &self.thread)
                    .finish()
            }
        }

        // (std `Arc` and `Mutex` here too: the registry is harness, and
        // nothing yields to loom while its lock is held.)
        loom::lazy_static! {
            /// One parker per loom thread, created on first use; a fresh
            /// registry for every execution of the model.
            static ref PARKERS: std::sync::Mutex<Vec<std::sync::Arc<Parker>>> =
                std::sync::Mutex::new(Vec::new());
        }

        fn parker(thread: &Thread) -> std::sync::Arc<Parker> {
            let mut all = PARKERS.lock().unwrap();
            if let Some(p) = all.iter().find(|p| p.thread.id() == thread.id()) {
                return p.clone();
            }
            let p = std::sync::Arc::new(Parker {
                thread: thread.clone(),
                expired: AtomicBool::new(false),
                cancelled: AtomicBool::new(false),
                token: loom::sync::Notify::new(),
                lock_notify: loom::sync::Notify::new(),
            });
            all.push(p.clone());
            p
        }

        /// Wakes one loom thread.
        #[derive(Clone)]
        pub(crate) struct Waker(std::sync::Arc<Parker>);

        impl Waker {
            pub(crate) fn wake(&self) {
                self.0.token.notify();
            }
        }

        pub(crate) fn current_waker() -> Waker {
            Waker(current_parker())
        }

        pub(super) fn current_parker() -> std::sync::Arc<Parker> {
            parker(&loom::thread::current())
        }

        /// Model: the deadline of `thread`'s timed parks passes now (its
        /// timer fires: the thread is woken and finds it expired).
        pub(crate) fn expire(thread: &Thread) {
            let p = parker(thread);
            p.expired.store(true, SeqCst);
            p.token.notify();
        }

        /// Model: `thread` is cancelled now (its parks unwind from now on).
        pub(crate) fn cancel(thread: &Thread) {
            let p = parker(thread);
            p.cancelled.store(true, SeqCst);
            p.token.notify();
        }

        pub(crate) fn park() {
            park_inner(false);
        }

        pub(crate) fn park_until(_deadline: Instant) -> bool {
            park_inner(true)
        }

        fn park_inner(timed: bool) -> bool {
            let p = current_parker();
            raise_cancellation(&p);
            if !(timed && p.expired.load(SeqCst)) {
                p.token.wait();
            }
            raise_cancellation(&p);
            timed && p.expired.load(SeqCst)
        }

        fn raise_cancellation(p: &Parker) {
            if p.cancelled.load(SeqCst) && !std::thread::panicking() {
                std::panic::resume_unwind(Box::new(Cancelled));
            }
        }
    }
}
