//! Waiter bookkeeping shared by every primitive in this crate.
//!
//! # Contract
//!
//! * A [`WaitQueue`] lives *inside* the primitive's own `Mutex`, next to the
//!   condition it guards, so "check the condition, else enqueue" is atomic.
//! * A notifier pops waiters in FIFO order, marks each *notified* (under the
//!   lock), optionally handing it a payload (an item, a permit, "closed"),
//!   and wakes it *after* releasing the lock.
//! * The waiter owns what it was handed from the moment it is notified.
//! * A waiter that stops waiting early — timeout, cancellation, a timeout
//!   scope unwinding through it — runs [`wait`]'s cleanup under the lock: if
//!   it is still queued it is removed; if it was notified meanwhile, the
//!   primitive's `pass_on` receives the payload and hands it to the next
//!   waiter (or back to the primitive). Nothing is lost and nothing is
//!   granted twice.
//!
//! * A waiter may belong to a [`select`](crate::select): then it carries a
//!   shared [`SelectToken`] and its case number, and a notifier must win the
//!   token (one compare-and-swap) before handing it anything. A waiter whose
//!   select was already won elsewhere (or gave up) is stale: notifiers drop
//!   it and serve the next one, so a select takes at most one item.
//!
//! Parking follows the runtime's protocol (`sylvan_runtime::park`): the waker
//! is registered before the lock is released, the flag is re-checked after
//! every wake, and spurious wakes are harmless.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::shim::park::{self, Waker};
use crate::shim::{Arc, AtomicUsize, Mutex};

/// Decides which case of one [`select`](crate::select) wins: the first
/// notifier (or the selector itself, for a case found ready while it
/// registers) to move it off `WAITING`.
pub(crate) struct SelectToken {
    state: AtomicUsize,
}

impl SelectToken {
    const WAITING: usize = 0;
    const ABORTED: usize = usize::MAX;

    pub(crate) fn new() -> SelectToken {
        SelectToken {
            state: AtomicUsize::new(Self::WAITING),
        }
    }

    /// Claims the select for `case`; `false` if it is already decided.
    pub(crate) fn try_claim(&self, case: usize) -> bool {
        self.state
            .compare_exchange(Self::WAITING, case + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives up (timeout, cancellation); `false` if a case won first.
    pub(crate) fn try_abort(&self) -> bool {
        self.state
            .compare_exchange(
                Self::WAITING,
                Self::ABORTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The winning case, if one has won.
    pub(crate) fn winner(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            Self::WAITING | Self::ABORTED => None,
            n => Some(n - 1),
        }
    }
}

/// What registering one case of a select in a primitive found.
pub(crate) enum Registered<R, P> {
    /// The case was ready: it claimed the select and its operation is done.
    Won(R),
    /// Another case of the select has already won.
    Lost,
    /// Queued; the waiter is later either claimed and notified, or withdrawn.
    Waiting(Waiter<P>),
    /// The case claimed the select but could not complete after all (a
    /// rendezvous put whose getters had left): the select starts over.
    Retry,
}

pub(crate) use handoff::{Queued, Waiter};

/// The two ends of one waiter: [`Waiter`], held by the blocked fiber or
/// thread, and [`Queued`], held by the primitive's [`WaitQueue`]. Neither end
/// is `Clone`, and the queue end is consumed when it hands something over;
/// that uniqueness is what lets the hand-over go through two plain cells and
/// one release/acquire flag instead of a lock on each side. This is the only
/// `unsafe` in the crate.
mod handoff {
    #![allow(unsafe_code)]

    use std::sync::atomic::Ordering;

    use crate::shim::park::{self, Waker};
    use crate::shim::{Arc, AtomicBool, UnsafeCell};

    use super::SelectToken;

    struct Shared<P> {
        /// For a select's waiter: its token and case number.
        select: Option<(Arc<SelectToken>, usize)>,
        /// Set (release) by `Queued::hand_over` after its last access to the
        /// cells below.
        notified: AtomicBool,
        /// Whom to wake: written when the pair is made, before it is shared;
        /// afterwards only `Queued::hand_over` touches it (it takes it).
        waker: UnsafeCell<Option<Waker>>,
        /// What was handed over: written only by `Queued::hand_over`, read
        /// only by `Waiter::take_payload` once `notified` is seen.
        payload: UnsafeCell<Option<P>>,
    }

    // SAFETY: the cells are never accessed from two threads at once. The
    // waker cell is touched only by the one `Queued` end, in `hand_over`,
    // which consumes it. The payload cell is written there too, before the
    // release store to `notified`, and read only through the one `Waiter`
    // end (`&mut self`) after an acquire load of `notified` returned true —
    // by which time `hand_over` has returned and will never run again. The
    // payload moves from the notifier's thread to the waiter's, hence
    // `P: Send`; `Waker` and `SelectToken` are `Send + Sync`. (Under
    // `--cfg loom` the cells are loom's, which check this claim in every
    // interleaving the loom models explore.)
    unsafe impl<P: Send> Sync for Shared<P> {}

    /// The blocked party's end: whether it was notified, and what it was
    /// handed.
    pub(crate) struct Waiter<P>(Arc<Shared<P>>);

    /// The primitive's end, queued in a [`WaitQueue`](super::WaitQueue).
    pub(crate) struct Queued<P>(Arc<Shared<P>>);

    /// A new waiter for the caller (its current waker), and its queue end.
    pub(crate) fn pair<P>(select: Option<(Arc<SelectToken>, usize)>) -> (Waiter<P>, Queued<P>) {
        let shared = Arc::new(Shared {
            select,
            notified: AtomicBool::new(false),
            waker: UnsafeCell::new(Some(park::current_waker())),
            payload: UnsafeCell::new(None),
        });
        (Waiter(shared.clone()), Queued(shared))
    }

    impl<P> Queued<P> {
        /// Whether a notifier may hand this waiter something: always for a
        /// plain waiter; for a select's, only if this claims its token.
        pub(crate) fn claim(&self) -> bool {
            match &self.0.select {
                None => true,
                Some((token, case)) => token.try_claim(*case),
            }
        }

        /// Whether this waits for the select that owns `token`.
        pub(crate) fn of_select(&self, token: &SelectToken) -> bool {
            matches!(&self.0.select, Some((t, _)) if std::ptr::eq(&**t, token))
        }

        /// The token of the select this waits for, if it is a select's.
        pub(crate) fn select_token(&self) -> Option<&SelectToken> {
            self.0.select.as_ref().map(|(t, _)| &**t)
        }

        /// Whether this is the queue end of `w`.
        pub(crate) fn is(&self, w: &Waiter<P>) -> bool {
            Arc::ptr_eq(&self.0, &w.0)
        }

        /// Hands `payload` over and marks the waiter notified; returns its
        /// waker (to wake once the primitive's lock is released).
        pub(crate) fn hand_over(self, payload: P) -> Waker {
            let shared = &*self.0;
            // This is the only queue end and the call consumes it: no other
            // write to these cells, now or later. The waiter end reads the
            // payload only after it sees `notified`, stored below.
            shared.payload.with_mut(|cell| {
                // SAFETY: so this access is exclusive (see the `Sync` impl).
                unsafe { *cell = Some(payload) }
            });
            let waker = shared.waker.with_mut(|cell| {
                // SAFETY: as above: only this consumed queue end touches the
                // waker once the pair is shared.
                unsafe { (*cell).take() }
            });
            shared.notified.store(true, Ordering::Release);
            waker.expect("a waiter keeps its waker until it is handed something")
        }
    }

    impl<P> Waiter<P> {
        /// Whether something was handed over.
        pub(crate) fn is_notified(&self) -> bool {
            self.0.notified.load(Ordering::Acquire)
        }

        /// What was handed over; `None` if nothing was (yet).
        pub(crate) fn take_payload(&mut self) -> Option<P> {
            if !self.is_notified() {
                return None;
            }
            // `hand_over` stored `notified` (release, paired with the acquire
            // above) after its last access and consumed the only queue end;
            // `&mut self` on the only waiter end rules out a second reader.
            self.0.payload.with_mut(|cell| {
                // SAFETY: so this access is exclusive (see the `Sync` impl).
                unsafe { (*cell).take() }
            })
        }
    }
}

/// FIFO queue of waiters; see the module docs.
pub(crate) struct WaitQueue<P = ()> {
    waiters: VecDeque<Queued<P>>,
}

impl<P> Default for WaitQueue<P> {
    fn default() -> Self {
        WaitQueue {
            waiters: VecDeque::new(),
        }
    }
}

impl<P> WaitQueue<P> {
    /// Enqueues the caller (its current waker) at the back.
    pub(crate) fn push(&mut self) -> Waiter<P> {
        self.push_waiter(None)
    }

    /// Enqueues the caller as case `case` of the select that owns `token`.
    pub(crate) fn push_select(&mut self, token: &Arc<SelectToken>, case: usize) -> Waiter<P> {
        self.push_waiter(Some((token.clone(), case)))
    }

    /// Enqueues the caller at the front: for a waiter that was served and
    /// must wait again through no doing of its own (its place is kept).
    pub(crate) fn push_front(&mut self) -> Waiter<P> {
        let (waiter, queued) = handoff::pair(None);
        self.waiters.push_front(queued);
        waiter
    }

    fn push_waiter(&mut self, select: Option<(Arc<SelectToken>, usize)>) -> Waiter<P> {
        let (waiter, queued) = handoff::pair(select);
        self.waiters.push_back(queued);
        waiter
    }

    /// Whether nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Number of waiters.
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Hands `payload` to the longest-waiting waiter and returns its waker (to
    /// wake after the lock is released), or gives `payload` back if nobody
    /// waits. Stale select waiters are dropped on the way.
    pub(crate) fn notify_one(&mut self, payload: P) -> Result<Waker, P> {
        while let Some(w) = self.waiters.pop_front() {
            if w.claim() {
                let waker = w.hand_over(payload);
                return Ok(waker);
            }
        }
        Err(payload)
    }

    /// [`notify_one`](WaitQueue::notify_one) to the longest-waiting waiter
    /// that `servable` accepts (given its select's token, `None` for a plain
    /// waiter), passing over (and leaving queued) those it does not.
    pub(crate) fn notify_first(
        &mut self,
        mut servable: impl FnMut(Option<&SelectToken>) -> bool,
        payload: P,
    ) -> Result<Waker, P> {
        let mut i = 0;
        while i < self.waiters.len() {
            if !servable(self.waiters[i].select_token()) {
                i += 1;
                continue;
            }
            let w = self.waiters.remove(i).expect("in range");
            if w.claim() {
                return Ok(w.hand_over(payload));
            }
        }
        Err(payload)
    }

    /// Whether `servable` accepts any waiter (given its select's token,
    /// `None` for a plain waiter).
    pub(crate) fn any(&self, mut servable: impl FnMut(Option<&SelectToken>) -> bool) -> bool {
        self.waiters.iter().any(|w| servable(w.select_token()))
    }

    /// Whether anyone waits who could serve a waiter of the other side that
    /// belongs to the select owning `token` (`None`: a plain waiter, whom
    /// anyone serves): a select must not be served by its own other case
    /// (a send to itself on a rendezvous channel).
    pub(crate) fn serves(&self, token: Option<&SelectToken>) -> bool {
        match token {
            None => !self.waiters.is_empty(),
            Some(t) => self.waiters.iter().any(|w| !w.of_select(t)),
        }
    }

    /// Notifies every waiter, each with a payload from `payload`.
    pub(crate) fn notify_all(&mut self, mut payload: impl FnMut() -> P) -> Vec<Waker> {
        self.waiters
            .drain(..)
            .filter(|w| w.claim())
            .map(|w| w.hand_over(payload()))
            .collect()
    }

    /// Removes `w` if it is still queued (not yet notified).
    pub(crate) fn remove(&mut self, w: &Waiter<P>) -> bool {
        match self.waiters.iter().position(|x| x.is(w)) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
    }
}

impl WaitQueue<()> {
    /// [`notify_one`](WaitQueue::notify_one) without a payload.
    pub(crate) fn wake_one(&mut self) -> Option<Waker> {
        self.notify_one(()).ok()
    }

    /// [`notify_all`](WaitQueue::notify_all) without a payload.
    pub(crate) fn wake_every(&mut self) -> Vec<Waker> {
        self.notify_all(|| ())
    }
}

/// Why a waiter found missing from its queue holds a payload: notifiers remove
/// it and hand it over in one critical section.
pub(crate) const NOTIFIED: &str = "a waiter no longer queued was handed something";

/// Wakes every waker in `wakers` (call after releasing the lock).
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// Waits until `waiter` (already queued in the `WaitQueue` that `queue`
/// selects inside `lock`) is notified, or `deadline` passes. `what` names
/// the wait for `sylvan::dump` ("Queue::get").
///
/// Returns the payload when notified, `None` on timeout (the waiter was
/// removed; nothing was lost). If the wait unwinds (cancellation, an
/// enclosing `timeout`), the waiter is removed, or — when it had been
/// notified already — its payload goes to `pass_on` under the lock, which
/// hands it on and returns the wakers to wake.
pub(crate) fn wait<S, P>(
    what: &'static park::WaitLabel,
    lock: &Mutex<S>,
    waiter: Waiter<P>,
    deadline: Option<Instant>,
    queue: fn(&mut S) -> &mut WaitQueue<P>,
    pass_on: fn(&mut S, P) -> Vec<Waker>,
) -> Option<P> {
    struct Cleanup<'a, S, P> {
        lock: &'a Mutex<S>,
        waiter: Waiter<P>,
        queue: fn(&mut S) -> &mut WaitQueue<P>,
        pass_on: fn(&mut S, P) -> Vec<Waker>,
        armed: bool,
    }
    impl<S, P> Drop for Cleanup<'_, S, P> {
        fn drop(&mut self) {
            if !self.armed {
                return;
            }
            // Unwinding out of the wait: give back anything we were handed.
            let wakers = {
                let mut s = self.lock.lock();
                if (self.queue)(&mut s).remove(&self.waiter) {
                    Vec::new()
                } else {
                    // Not queued, so handed over (under this lock, earlier).
                    let payload = self.waiter.take_payload().expect(NOTIFIED);
                    (self.pass_on)(&mut s, payload)
                }
            };
            wake_all(wakers);
        }
    }
    let mut cleanup = Cleanup {
        lock,
        waiter,
        queue,
        pass_on,
        armed: true,
    };
    loop {
        if let Some(payload) = cleanup.waiter.take_payload() {
            cleanup.armed = false;
            return Some(payload);
        }
        // `what`: what `sylvan::dump` shows while the fiber is parked here.
        let timed_out = match deadline {
            None => {
                park::park_for(what);
                false
            }
            Some(at) => park::park_until_for(at, what),
        };
        if timed_out && !cleanup.waiter.is_notified() {
            cleanup.armed = false;
            let mut s = lock.lock();
            if queue(&mut s).remove(&cleanup.waiter) {
                return None;
            }
            // Notified between the deadline and the lock: take it.
            drop(s);
            return Some(cleanup.waiter.take_payload().expect(NOTIFIED));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The queue alone, on one thread: FIFO order, withdrawal, one hand-over
    /// per waiter, stale select waiters skipped, and a payload handed to a
    /// waiter that never takes it is dropped with the waiter (Miri's leak
    /// check sees it otherwise).
    #[test]
    fn queue_is_fifo_hands_over_once_and_skips_decided_selects() {
        let mut q = WaitQueue::<String>::default();
        let mut first = q.push();
        let second = q.push();
        let mut third = q.push();
        let token = Arc::new(SelectToken::new());
        let mut lost = q.push_select(&token, 1);
        let untaken = q.push();
        assert_eq!(q.len(), 5);
        assert!(q.remove(&second));
        assert!(!q.remove(&second), "removed once");
        assert!(token.try_claim(0), "another case of the select wins");

        let waker = q.notify_one("a".to_owned()).unwrap();
        assert!(waker.will_wake(&park::current_waker()));
        assert!(first.is_notified() && !third.is_notified());
        assert_eq!(first.take_payload().as_deref(), Some("a"));
        assert_eq!(first.take_payload(), None, "handed over once");

        let mut n = 0;
        let wakers = q.notify_all(|| {
            n += 1;
            format!("b{n}")
        });
        assert_eq!(wakers.len(), 2, "the decided select's waiter is dropped");
        assert_eq!(third.take_payload().as_deref(), Some("b1"));
        assert_eq!(lost.take_payload(), None);
        assert!(untaken.is_notified());
        drop(untaken);
        assert_eq!(token.winner(), Some(0));
        assert!(q.is_empty());
        assert_eq!(q.notify_one("c".to_owned()).err().as_deref(), Some("c"));
    }

    /// Waiters (every other one a fiber when `fibers`, the rest plain
    /// threads) wait in one queue while two notifier threads hand them
    /// numbered payloads, every third wait giving up almost at once: every
    /// payload is received exactly once or given back, none is lost.
    fn hand_overs_race(waiters: u64, rounds: u64, fibers: bool) {
        struct State {
            q: WaitQueue<u64>,
            returned: Vec<u64>,
        }
        let state = Arc::new(Mutex::new(State {
            q: WaitQueue::default(),
            returned: Vec::new(),
        }));
        fn pass_on(s: &mut State, p: u64) -> Vec<Waker> {
            s.returned.push(p);
            Vec::new()
        }
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..waiters {
            let (state, received) = (state.clone(), received.clone());
            let body = move || {
                for r in 0..rounds {
                    let w = state.lock().q.push();
                    let deadline = (r % 3 == 0).then(|| Instant::now() + Duration::from_micros(20));
                    if let Some(p) = wait(
                        &crate::shim::park::WaitLabel("test"),
                        &state,
                        w,
                        deadline,
                        |s| &mut s.q,
                        pass_on,
                    ) {
                        received.lock().push(p);
                    }
                }
            };
            handles.push(if fibers && i % 2 == 1 {
                std::thread::spawn(move || sylvan_runtime::run(body))
            } else {
                std::thread::spawn(body)
            });
        }
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let notifiers: Vec<_> = (0..2u64)
            .map(|n| {
                let (state, sent, stop) = (state.clone(), sent.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut next = n;
                    while !stop.load(Ordering::Acquire) {
                        let woken = state.lock().q.notify_one(next);
                        if let Ok(w) = woken {
                            w.wake();
                            sent.fetch_add(1, Ordering::Relaxed);
                            next += 2;
                        }
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        for n in notifiers {
            n.join().unwrap();
        }
        let mut all = received.lock().clone();
        all.extend(state.lock().returned.iter().copied());
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(all.len(), before, "no payload is received twice");
        assert_eq!(all.len(), sent.load(Ordering::Relaxed), "none is lost");
        assert!(state.lock().q.is_empty());
    }

    /// Fibers and plain threads in one queue.
    #[test]
    #[cfg_attr(miri, ignore = "fibers: corosensei switches stacks with inline asm")]
    fn hand_overs_race_waits_and_timeouts_without_losing_payloads() {
        hand_overs_race(6, 2_000, true);
    }

    /// Plain threads only, parking with `std::thread::park`: the hand-off
    /// cells under Miri's data-race detector.
    #[test]
    fn hand_overs_between_plain_threads_lose_nothing() {
        let rounds = if cfg!(miri) { 40 } else { 2_000 };
        hand_overs_race(3, rounds, false);
    }
}
