//! A fiber's run state: the one atomic other threads touch to wake a fiber.
//! It alone makes the parking protocol's promises hold — a wake is never
//! lost, and a park is ended by at most one queueing of the fiber.
//!
//! ```text
//!            unpark (any thread)                 take_token / park
//!  RUNNING ───────────────────────▶ NOTIFIED ───────────────────────────▶ RUNNING
//!     │                                          (token consumed, no switch)
//!     │ park: the fiber itself, then it suspends to its hub
//!     ▼
//!  PARKED ─── unpark (any thread; one winner) ──▶ RUNNING, and the winner queues it
//!
//!  RUNNING ── finish (hub, after the coroutine returned) ──▶ DONE   (unpark: no-op)
//! ```
//!
//! * `RUNNING`: running, or queued to run. Only the fiber moves it to
//!   `PARKED`.
//! * `NOTIFIED`: running with a wake token (an unpark came before it
//!   parked). The next park consumes the token and does not suspend.
//! * `PARKED`: suspended, waiting. Exactly one unparker wins
//!   `PARKED → RUNNING`, and that one queues the fiber on its hub.
//! * `DONE`: finished.
//!
//! Every transition that consumes or leaves a token is a read-modify-write
//! with acquire-release ordering, also `NOTIFIED → NOTIFIED`: the waker's
//! writes before its `unpark` (the condition the fiber waits for) are then
//! visible to the fiber once it has consumed the token or been resumed. With
//! a plain load in the `NOTIFIED` case, the waker's store could be reordered
//! after that load (store→load reordering, allowed even on x86): the fiber
//! would consume the old token, re-check, see the old condition and park,
//! and nobody would wake it again.
//!
//! The `loom` models at the bottom check these promises in every
//! interleaving (`RUSTFLAGS="--cfg loom" cargo test -p sylvan-runtime
//! --release --lib loom`).

// loom is a dev-dependency: only this crate's own tests build with it (a
// crate depending on sylvan-runtime under `--cfg loom` gets std's atomics).
#[cfg(all(loom, test))]
use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicU8, Ordering};

const RUNNING: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;
const DONE: u8 = 3;

/// See the module docs.
pub(crate) struct RunState(AtomicU8);

impl RunState {
    /// A fiber that is about to run (or is queued to).
    pub(crate) fn new() -> RunState {
        RunState(AtomicU8::new(RUNNING))
    }

    /// Wakes the fiber. Returns `true` when this call moved it from
    /// `PARKED` to `RUNNING`: the caller must then queue it on its hub (no
    /// other caller will for this park).
    pub(crate) fn unpark(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| match s {
                RUNNING | NOTIFIED => Some(NOTIFIED),
                PARKED => Some(RUNNING),
                _ => None,
            })
            == Ok(PARKED)
    }

    /// For the running fiber: consumes a waiting wake token. `true` if there
    /// was one (the fiber then re-checks instead of parking).
    pub(crate) fn take_token(&self) -> bool {
        // The load is a hint that spares the CAS when no token is there; a
        // token is always consumed by a read-modify-write.
        self.0.load(Ordering::Relaxed) == NOTIFIED
            && self
                .0
                .compare_exchange(NOTIFIED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// For the running fiber: announces that it parks. `true`: it is now
    /// `PARKED` and must suspend (an unparker will queue it); `false`: a
    /// wake token arrived meanwhile and was consumed, so it must not.
    pub(crate) fn park(&self) -> bool {
        match self
            .0
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            // Only a wake can have changed RUNNING (to NOTIFIED): consume it,
            // with a read-modify-write so that a second wake landing in
            // between is synchronised with too.
            Err(_) => {
                self.0.swap(RUNNING, Ordering::AcqRel);
                false
            }
        }
    }

    /// Whether the fiber is suspended waiting for an unpark.
    pub(crate) fn is_parked(&self) -> bool {
        self.0.load(Ordering::Acquire) == PARKED
    }

    /// Whether the fiber holds a wake token (for tests).
    #[cfg(test)]
    pub(crate) fn has_token(&self) -> bool {
        self.0.load(Ordering::Acquire) == NOTIFIED
    }

    /// Whether the fiber has finished (for tests).
    #[cfg(test)]
    pub(crate) fn is_done(&self) -> bool {
        self.0.load(Ordering::Acquire) == DONE
    }

    /// The hub saw the fiber's coroutine return.
    pub(crate) fn finish(&self) {
        self.0.store(DONE, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_stack_and_done_ignores_unparks() {
        let s = RunState::new();
        assert!(!s.unpark(), "a running fiber is not queued by a wake");
        assert!(!s.unpark());
        assert!(s.has_token());
        assert!(s.take_token());
        assert!(!s.take_token(), "one token, however many wakes");
        assert!(s.park());
        assert!(s.unpark(), "the first wake of a parked fiber queues it");
        assert!(!s.unpark(), "the second leaves a token");
        assert!(!s.park(), "a token makes the next park return at once");
        s.finish();
        assert!(!s.unpark());
        assert!(s.is_done());
    }
}

/// Models of the protocol as the runtime drives it, checked in every
/// interleaving by loom. A "fiber" is a loom thread that waits for its
/// condition with register → re-check → park; "suspending" is waiting, on a
/// loom mutex and condvar (its hub), until it has been queued; an unparker
/// that wins queues it by bumping that count. The conditions are relaxed
/// atomics, so only the run state's own orderings make them visible.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// One fiber and what its hub knows of it.
    struct Fiber {
        state: RunState,
        /// Times an unparker queued it; times it was resumed.
        queued: Mutex<(usize, usize)>,
        /// Signalled when it is queued (its hub's ready queue).
        hub: Condvar,
        /// Set by `cancel`.
        cancelled: AtomicBool,
    }

    impl Fiber {
        fn new() -> Arc<Fiber> {
            Arc::new(Fiber {
                state: RunState::new(),
                queued: Mutex::new((0, 0)),
                hub: Condvar::new(),
                cancelled: AtomicBool::new(false),
            })
        }

        /// What `Header::unpark` does.
        fn unpark(&self) {
            if self.state.unpark() {
                self.queued.lock().unwrap().0 += 1;
                self.hub.notify_one();
            }
        }

        /// What `park::fiber_park` does with the state (the hub resumes a
        /// suspended fiber only once it has been queued).
        fn park(&self) {
            if self.state.take_token() {
                return;
            }
            if self.state.park() {
                let mut q = self.queued.lock().unwrap();
                while q.0 == q.1 {
                    q = self.hub.wait(q).unwrap();
                }
                q.1 += 1;
                assert_eq!(q.0, q.1, "queued twice for one park");
            }
        }

        /// Waits until `done()` holds, as every sylvan waiter does.
        fn wait_until(&self, done: impl Fn() -> bool) {
            while !done() {
                self.park();
            }
        }
    }

    /// A condition set with a relaxed store and a wake: the fiber always
    /// sees it and ends (no lost wake).
    #[test]
    fn loom_a_wake_is_never_lost() {
        loom::model(|| {
            let fiber = Fiber::new();
            let flag = Arc::new(AtomicBool::new(false));
            let (f2, flag2) = (fiber.clone(), flag.clone());
            let waker = thread::spawn(move || {
                flag2.store(true, Ordering::Relaxed);
                f2.unpark();
            });
            fiber.wait_until(|| flag.load(Ordering::Relaxed));
            waker.join().unwrap();
            let q = fiber.queued.lock().unwrap();
            assert_eq!(q.0, q.1, "every queueing was a resume");
        });
    }

    /// Two wakers, each with its own condition, race each other and the
    /// fiber's parks: both conditions are seen, and no park is ended by two
    /// queueings (the assertion in `Fiber::park`).
    #[test]
    fn loom_racing_wakers_queue_once_per_park() {
        loom::model(|| {
            let fiber = Fiber::new();
            let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let wakers: Vec<_> = (0..2)
                .map(|i| {
                    let (f, flags) = (fiber.clone(), flags.clone());
                    thread::spawn(move || {
                        flags[i].store(true, Ordering::Relaxed);
                        f.unpark();
                    })
                })
                .collect();
            fiber.wait_until(|| flags.iter().all(|f| f.load(Ordering::Relaxed)));
            for w in wakers {
                w.join().unwrap();
            }
            let q = fiber.queued.lock().unwrap();
            assert_eq!(q.0, q.1);
        });
    }

    /// A timer firing (the hub unparks a fiber it sees `PARKED`: a spurious
    /// wake as far as the condition goes) races a real wake and a
    /// cancellation; the fiber notices both.
    #[test]
    fn loom_timer_and_cancellation_race_a_wake() {
        loom::model(|| {
            let fiber = Fiber::new();
            let flag = Arc::new(AtomicBool::new(false));
            let (f1, flag1) = (fiber.clone(), flag.clone());
            let waker = thread::spawn(move || {
                flag1.store(true, Ordering::Relaxed);
                f1.unpark();
            });
            let f2 = fiber.clone();
            let timer_and_cancel = thread::spawn(move || {
                // Hub::fire_timers
                if f2.state.is_parked() {
                    f2.unpark();
                }
                // Header::cancel
                f2.cancelled.store(true, Ordering::Release);
                f2.unpark();
            });
            fiber.wait_until(|| {
                flag.load(Ordering::Relaxed) && fiber.cancelled.load(Ordering::Acquire)
            });
            waker.join().unwrap();
            timer_and_cancel.join().unwrap();
            let q = fiber.queued.lock().unwrap();
            assert_eq!(q.0, q.1);
        });
    }
}
