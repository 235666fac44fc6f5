//! loom models of the waiter hand-over, the queue's pass-on and select's
//! token, run on the crate's real code (see `shim` for what loom replaces).
//!
//! Build and run only with `RUSTFLAGS="--cfg loom"`; `.ci/loom` runs them:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p sylvan-sync --release --lib loom
//! ```
//!
//! Each model runs a few loom threads — waiters, notifiers, and the model's
//! clock and canceller (`shim::park::{expire, cancel}`) — and asserts an
//! outcome in *every* schedule loom explores: each payload ends up in exactly
//! one place (received by one waiter, or handed back to the notifier or the
//! primitive), no waiter is left queued, and no thread sleeps for ever (loom
//! fails a model whose threads all block: that is a lost wake). loom also
//! checks every access to the hand-over's cells against the happens-before
//! order (a race is a failure), and that no `Arc` of a waiter leaks.
//!
//! The small models are exhaustive. The others bound preemptions
//! ([`BOUND`], or `LOOM_MAX_PREEMPTIONS`) so the set runs in about half a
//! minute (`LOOM_MAX_PREEMPTIONS=5`: about 8 minutes); their
//! `exhaustive_*` variants (`#[ignore]`d; `.ci/loom --exhaustive`) drop the
//! bound and take hours.
//!
//! Limits of what a pass shows:
//!
//! * the code under test runs as written, but `park` and the state lock are
//!   models (`shim`): the runtime's park/hub and `parking_lot` are not
//!   checked here;
//! * loom treats `SeqCst` accesses as `AcqRel` (stricter for the code, so at
//!   worst false alarms) and does not explore load buffering;
//! * while a cancelled model thread unwinds, loom records no cell access of
//!   *any* thread (it skips recording while `std::thread::panicking()`, which
//!   all loom threads share): the cancellation models check the cells less
//!   strictly during that window; the others check them fully;
//! * a bounded model covers every schedule with at most [`BOUND`]
//!   preemptions, not every schedule.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loom::thread;

use crate::shim::park::{self, Cancelled, Waker};
use crate::shim::Mutex;

/// Preemption bound of the default models, unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise.
const BOUND: usize = 4;

/// Runs `f` under loom with `bound` preemptions (`None`: exhaustive) unless
/// `LOOM_MAX_PREEMPTIONS` sets one, logging as `loom::model` does
/// (`LOOM_LOG`, `LOOM_LOCATION`), and prints how many executions it took.
#[track_caller]
fn check(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use tracing_subscriber::util::SubscriberInitExt;
    let _log = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LOOM_LOG"))
        .with_test_writer()
        .without_time()
        .set_default();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = bound;
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let location = std::panic::Location::caller().to_string();
    eprintln!(
        "{}: {} executions, preemption bound {:?}",
        std::thread::current().name().unwrap_or(&location),
        runs.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}

/// A deadline that only the model's clock makes pass (`park::expire`).
fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Runs `f`; `None` if it unwound with the modelled cancellation.
fn cancellable<R>(f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(e) if e.is::<Cancelled>() => None,
        Err(e) => panic::resume_unwind(e),
    }
}

/// Sorted, so an outcome can be compared with the payloads sent.
fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// `waiters::{WaitQueue, wait}` and the `handoff` cells, driven directly.
mod handoff {
    use super::*;
    use crate::waiters::{self, WaitQueue};

    /// A primitive reduced to a wait queue: what its `pass_on` is handed
    /// back goes to the next waiter, else is kept in `returned`.
    #[derive(Default)]
    struct State {
        q: WaitQueue<u32>,
        returned: Vec<u32>,
    }

    fn queue(s: &mut State) -> &mut WaitQueue<u32> {
        &mut s.q
    }

    fn pass_on(s: &mut State, p: u32) -> Vec<Waker> {
        match s.q.notify_one(p) {
            Ok(w) => vec![w],
            Err(p) => {
                s.returned.push(p);
                Vec::new()
            }
        }
    }

    /// The notifier's side: hand `p` to the longest waiter (waking it after
    /// the lock is released), or get it back when nobody waits.
    fn notify(state: &Mutex<State>, p: u32) -> Option<u32> {
        let handed = state.lock().q.notify_one(p);
        match handed {
            Ok(w) => {
                w.wake();
                None
            }
            Err(p) => Some(p),
        }
    }

    /// Queues the calling thread and waits on `state`.
    fn wait(state: &Mutex<State>, deadline: Option<Instant>) -> Option<u32> {
        let w = state.lock().q.push();
        waiters::wait(
            &crate::shim::park::WaitLabel("model"),
            state,
            w,
            deadline,
            queue,
            pass_on,
        )
    }

    /// Where every payload went: received, kept by the notifier, or handed
    /// back to the primitive; and that nobody is left queued.
    fn outcome(
        state: &Mutex<State>,
        received: Vec<Option<u32>>,
        kept: Vec<Option<u32>>,
    ) -> Vec<u32> {
        let s = state.lock();
        assert!(s.q.is_empty(), "a waiter is left queued");
        let mut all: Vec<u32> = received.into_iter().chain(kept).flatten().collect();
        all.extend(&s.returned);
        sorted(all)
    }

    /// `notify_one` races a waiter whose deadline passes at any moment
    /// (before it queues, while it parks, between its wake and its lock):
    /// the payload is received exactly once, or given back to the notifier.
    fn timed_wait_races_notify_one(bound: Option<usize>) {
        check(bound, || {
            let state = Arc::new(Mutex::new(State::default()));
            let waiter = {
                let state = state.clone();
                thread::spawn(move || wait(&state, Some(deadline())))
            };
            let clock = {
                let w = waiter.thread().clone();
                thread::spawn(move || park::expire(&w))
            };
            let kept = notify(&state, 7);
            clock.join().unwrap();
            let got = waiter.join().unwrap();
            assert_eq!(outcome(&state, vec![got], vec![kept]), [7]);
        });
    }

    #[test]
    fn loom_timed_wait_races_notify_one() {
        timed_wait_races_notify_one(None); // exhaustive: cheap enough
    }

    /// `notify_one` races the cancellation of a waiter without deadline: a
    /// waiter cancelled after it was handed the payload passes it on (here
    /// back to the primitive, nobody else waits) from its unwinding cleanup;
    /// the payload is never lost and never received twice.
    fn cancelled_wait_races_notify_one(bound: Option<usize>) {
        check(bound, || {
            let state = Arc::new(Mutex::new(State::default()));
            let waiter = {
                let state = state.clone();
                thread::spawn(move || cancellable(|| wait(&state, None)).flatten())
            };
            let canceller = {
                let w = waiter.thread().clone();
                thread::spawn(move || park::cancel(&w))
            };
            let kept = notify(&state, 7);
            canceller.join().unwrap();
            let got = waiter.join().unwrap();
            assert_eq!(outcome(&state, vec![got], vec![kept]), [7]);
        });
    }

    #[test]
    fn loom_cancelled_wait_races_notify_one() {
        cancelled_wait_races_notify_one(None); // exhaustive: cheap enough
    }

    /// Two waiters, two payloads; one waiter is cancelled and the other's
    /// deadline passes, at any point relative to the hand-overs. A payload
    /// handed to the cancelled waiter goes on to the other (`pass_on`) or
    /// back to the primitive: each payload ends up in exactly one place.
    fn pass_on_reaches_the_next_waiter(bound: Option<usize>) {
        check(bound, || {
            let state = Arc::new(Mutex::new(State::default()));
            let a = {
                let state = state.clone();
                thread::spawn(move || cancellable(|| wait(&state, None)).flatten())
            };
            let b = {
                let state = state.clone();
                thread::spawn(move || wait(&state, Some(deadline())))
            };
            let kept1 = notify(&state, 1);
            park::cancel(a.thread());
            let kept2 = notify(&state, 2);
            park::expire(b.thread());
            let (got_a, got_b) = (a.join().unwrap(), b.join().unwrap());
            let all = outcome(&state, vec![got_a, got_b], vec![kept1, kept2]);
            assert_eq!(all, [1, 2]);
        });
    }

    #[test]
    fn loom_pass_on_reaches_the_next_waiter() {
        pass_on_reaches_the_next_waiter(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_pass_on_reaches_the_next_waiter() {
        pass_on_reaches_the_next_waiter(None);
    }
}

/// The real [`Queue`](crate::Queue): getters' and putters' pass-on.
mod queue {
    use super::*;
    use crate::Queue;

    /// A `put` races two getters, one cancelled and one timing out at any
    /// moment: the item is received by exactly one getter or stays queued.
    fn cancelled_getter_passes_the_item_on(bound: Option<usize>) {
        check(bound, || {
            let q = Arc::new(Queue::<u32>::unbounded());
            let a = {
                let q = q.clone();
                thread::spawn(move || cancellable(|| q.get()).flatten())
            };
            let b = {
                let q = q.clone();
                thread::spawn(move || q.get_timeout(Duration::from_secs(3600)))
            };
            q.put(1).unwrap();
            park::cancel(a.thread());
            park::expire(b.thread());
            let got = vec![a.join().unwrap(), b.join().unwrap(), q.try_get()];
            assert_eq!(sorted(got.into_iter().flatten().collect()), [1]);
            assert_eq!(q.waiting_getters(), 0);
        });
    }

    #[test]
    fn loom_cancelled_getter_passes_the_item_on() {
        cancelled_getter_passes_the_item_on(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_cancelled_getter_passes_the_item_on() {
        cancelled_getter_passes_the_item_on(None);
    }

    /// A putter waiting on a full bounded(1) queue is granted the room a
    /// `get` frees, and is cancelled at any moment: either its put happened,
    /// or it unwound and the room it was granted is free again.
    fn cancelled_putter_passes_the_room_on(bound: Option<usize>) {
        check(bound, || {
            let q = Arc::new(Queue::<u32>::bounded(1));
            q.put(0).unwrap();
            let p = {
                let q = q.clone();
                thread::spawn(move || cancellable(|| q.put(1)))
            };
            assert_eq!(q.get(), Some(0));
            park::cancel(p.thread());
            let put = p.join().unwrap();
            assert_eq!(
                q.waiting_putters(),
                (0, 0),
                "no putter queued, no room reserved"
            );
            match put {
                Some(Ok(())) => assert_eq!(q.try_get(), Some(1)),
                Some(Err(_)) => unreachable!("the queue is never closed"),
                None => assert_eq!(q.len(), 0),
            }
            // The room is there for the next put.
            assert!(q.try_put(2).is_ok());
        });
    }

    #[test]
    fn loom_cancelled_putter_passes_the_room_on() {
        cancelled_putter_passes_the_room_on(None); // exhaustive: cheap enough
    }
}

/// [`Select`](crate::select::Select) over real queues: the token, claim,
/// abort, finish, withdraw and abandon.
mod select {
    use std::cell::Cell;

    use super::*;
    use crate::select::{Select, Selected};
    use crate::Queue;

    /// What a select of `get(q1)`, `get(q2)` returned, with the item its
    /// winning case took.
    type Outcome = (Selected, Option<u32>);

    /// Selects `get(q1)` or `get(q2)`, with a deadline (passed by the
    /// model's clock) if `timed`.
    fn select_get(q1: &Queue<u32>, q2: &Queue<u32>, timed: bool) -> Outcome {
        let (a, b) = (Cell::new(None), Cell::new(None));
        let mut sel = Select::new();
        sel.get(q1, &a);
        sel.get(q2, &b);
        if timed {
            sel.deadline(deadline());
        }
        let which = sel.wait();
        let item = match which {
            Selected::Case(0) => a.take().flatten(),
            Selected::Case(1) => b.take().flatten(),
            _ => None,
        };
        assert!(
            a.take().is_none() && b.take().is_none(),
            "a losing case ran"
        );
        (which, item)
    }

    /// Checks one select's outcome against the items put into `q1` (1) and
    /// `q2` (2): the winning case took its queue's item, every other item is
    /// still queued, and no getter is left behind.
    fn assert_exactly_once(out: Option<Outcome>, q1: &Queue<u32>, q2: &Queue<u32>) {
        let (which, item) = out.unwrap_or((Selected::Timeout, None));
        match which {
            Selected::Case(0) => assert_eq!(item, Some(1)),
            Selected::Case(1) => assert_eq!(item, Some(2)),
            Selected::Timeout => assert_eq!(item, None),
            Selected::Default => unreachable!("wait never returns Default"),
            Selected::Case(_) => unreachable!("two cases"),
        }
        let left = [q1.try_get(), q2.try_get()];
        let all = sorted(left.into_iter().chain([item]).flatten().collect());
        assert_eq!(all, [1, 2], "every item taken once or still queued");
        assert_eq!((q1.waiting_getters(), q2.waiting_getters()), (0, 0));
    }

    /// Two notifiers put into the two queues of one waiting select: exactly
    /// one case wins (the loser's notifier finds the token taken and queues
    /// its item, or the select withdraws first), nothing is lost.
    fn two_notifiers_race_one_select(bound: Option<usize>) {
        check(bound, || {
            let (q1, q2) = (Arc::new(Queue::unbounded()), Arc::new(Queue::unbounded()));
            let sel = {
                let (q1, q2) = (q1.clone(), q2.clone());
                thread::spawn(move || select_get(&q1, &q2, false))
            };
            let p2 = {
                let q2 = q2.clone();
                thread::spawn(move || q2.put(2).unwrap())
            };
            q1.put(1).unwrap();
            p2.join().unwrap();
            let out = sel.join().unwrap();
            assert!(matches!(out.0, Selected::Case(_)));
            assert_exactly_once(Some(out), &q1, &q2);
        });
    }

    #[test]
    fn loom_two_notifiers_race_one_select() {
        two_notifiers_race_one_select(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_two_notifiers_race_one_select() {
        two_notifiers_race_one_select(None);
    }

    /// The same race while the select's deadline passes at any moment: it
    /// either aborts its token (and takes nothing) or a case has won.
    fn select_timeout_races_two_notifiers(bound: Option<usize>) {
        check(bound, || {
            let (q1, q2) = (Arc::new(Queue::unbounded()), Arc::new(Queue::unbounded()));
            let sel = {
                let (q1, q2) = (q1.clone(), q2.clone());
                thread::spawn(move || select_get(&q1, &q2, true))
            };
            let p2 = {
                let q2 = q2.clone();
                thread::spawn(move || q2.put(2).unwrap())
            };
            q1.put(1).unwrap();
            park::expire(sel.thread());
            p2.join().unwrap();
            let out = sel.join().unwrap();
            assert_exactly_once(Some(out), &q1, &q2);
        });
    }

    #[test]
    fn loom_select_timeout_races_two_notifiers() {
        select_timeout_races_two_notifiers(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_select_timeout_races_two_notifiers() {
        select_timeout_races_two_notifiers(None);
    }

    /// The same race while the select is cancelled at any moment: when it
    /// unwinds after a case won, that case abandons its item (back to the
    /// queue); otherwise it aborts its token and withdraws every waiter.
    fn cancelled_select_races_two_notifiers(bound: Option<usize>) {
        check(bound, || {
            let (q1, q2) = (Arc::new(Queue::unbounded()), Arc::new(Queue::unbounded()));
            let sel = {
                let (q1, q2) = (q1.clone(), q2.clone());
                thread::spawn(move || cancellable(|| select_get(&q1, &q2, false)))
            };
            let p2 = {
                let q2 = q2.clone();
                thread::spawn(move || q2.put(2).unwrap())
            };
            q1.put(1).unwrap();
            park::cancel(sel.thread());
            p2.join().unwrap();
            let out = sel.join().unwrap();
            assert_exactly_once(out, &q1, &q2);
        });
    }

    #[test]
    fn loom_cancelled_select_races_two_notifiers() {
        cancelled_select_races_two_notifiers(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_cancelled_select_races_two_notifiers() {
        cancelled_select_races_two_notifiers(None);
    }

    /// A cancelled select and a plain getter (whose deadline passes) wait on
    /// one queue; one item is put. An item the select's case won and then
    /// abandoned goes on to the getter, or back to the queue.
    fn abandoned_item_reaches_the_next_getter(bound: Option<usize>) {
        check(bound, || {
            let (q1, q2) = (Arc::new(Queue::unbounded()), Arc::new(Queue::unbounded()));
            let sel = {
                let (q1, q2) = (q1.clone(), q2.clone());
                thread::spawn(move || cancellable(|| select_get(&q1, &q2, false)))
            };
            let getter = {
                let q1 = q1.clone();
                thread::spawn(move || q1.get_timeout(Duration::from_secs(3600)))
            };
            q1.put(1).unwrap();
            park::cancel(sel.thread());
            park::expire(getter.thread());
            let (out, got) = (sel.join().unwrap(), getter.join().unwrap());
            let (which, item) = out.unwrap_or((Selected::Timeout, None));
            assert!(matches!(which, Selected::Case(0) | Selected::Timeout));
            let all = sorted([item, got, q1.try_get()].into_iter().flatten().collect());
            assert_eq!(all, [1]);
            assert_eq!((q1.waiting_getters(), q2.waiting_getters()), (0, 0));
        });
    }

    #[test]
    fn loom_abandoned_item_reaches_the_next_getter() {
        abandoned_item_reaches_the_next_getter(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_abandoned_item_reaches_the_next_getter() {
        abandoned_item_reaches_the_next_getter(None);
    }

    /// A select of `put(q1, 1)` (q1 full, bounded(1)) and `get(q2)` while a
    /// getter frees q1's room and a putter fills q2: exactly one case runs;
    /// room granted to the losing put case is not kept reserved.
    fn select_put_or_get(bound: Option<usize>) {
        check(bound, || {
            let q1 = Arc::new(Queue::bounded(1));
            let q2 = Arc::new(Queue::unbounded());
            q1.put(0).unwrap();
            let sel = {
                let (q1, q2) = (q1.clone(), q2.clone());
                thread::spawn(move || {
                    let (put, got) = (Cell::new(None), Cell::new(None));
                    let mut sel = Select::new();
                    sel.put(&q1, 1, &put);
                    sel.get(&q2, &got);
                    (sel.wait(), put.take(), got.take().flatten())
                })
            };
            let p2 = {
                let q2 = q2.clone();
                thread::spawn(move || q2.put(2).unwrap())
            };
            assert_eq!(q1.get(), Some(0));
            p2.join().unwrap();
            let (which, put, got) = sel.join().unwrap();
            match which {
                Selected::Case(0) => {
                    assert_eq!((put, got), (Some(Ok(())), None));
                    assert_eq!((q1.try_get(), q2.try_get()), (Some(1), Some(2)));
                }
                Selected::Case(1) => {
                    assert_eq!((put, got), (None, Some(2)));
                    assert_eq!((q1.len(), q2.len()), (0, 0));
                }
                other => unreachable!("{other:?}"),
            }
            assert_eq!(
                q1.waiting_putters(),
                (0, 0),
                "no putter queued, no room reserved"
            );
            assert_eq!(q2.waiting_getters(), 0);
            assert!(q1.try_put(3).is_ok(), "q1's room is free");
        });
    }

    #[test]
    fn loom_select_put_or_get() {
        select_put_or_get(Some(BOUND));
    }

    #[test]
    #[ignore = "exhaustive: hours (not finished in 15 min here); .ci/loom --exhaustive"]
    fn exhaustive_loom_select_put_or_get() {
        select_put_or_get(None);
    }
}
