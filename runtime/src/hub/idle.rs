//! What a hub does when it is out of work: watch its queues for a moment,
//! take tasks from the injector or other hubs, and sleep in `poll`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_deque::{Steal, Stealer};

use super::shutdown::SHUTDOWN_POLL;
use super::Hub;
use crate::record::Task;
use crate::sched;

/// How long an out-of-work hub watches its queues before blocking in poll.
const SPIN_TIME: Duration = Duration::from_micros(50);

/// Another hub's queue is left to its owner (see [`Hub::leave_to_owner`])
/// only while it holds at most this many tasks: a longer queue is a burst
/// its owner cannot start soon.
const FRESH_QUEUE_MAX: usize = 64;

/// How long a hub leaves another hub's queued tasks to their owner in any
/// case.
const FRESH_GRACE: Duration = Duration::from_micros(5);

/// How long it leaves them after the owner's last sign of starting them
/// (see [`Sighting::leave`]).
const OWNER_SIGN_GRACE: Duration = Duration::from_micros(50);

/// How long a hub leaves another hub's queued tasks to their owner at most.
const FRESH_PATIENCE: Duration = Duration::from_millis(1);

/// What a hub has seen of another hub's non-empty queue of unstarted tasks.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sighting {
    /// When this hub first saw the queue non-empty.
    since: Instant,
    /// The owner's resume counter then.
    resumes: u64,
    /// The owner's count of started fibers as last seen, and when this hub
    /// last saw it move (if it has).
    started: u64,
    sign: Option<Instant>,
    /// When this hub last looked: a sighting not renewed for
    /// [`FRESH_PATIENCE`] is forgotten once the owner has moved on (the
    /// queue may hold other tasks by now). While the owner is in the same
    /// resume it is kept however seldom this hub looks, so that a hub the
    /// OS runs seldom still steals once the patience is over.
    look: Instant,
}

/// The owner's side of a look at its queue: its resume counter and its
/// count of started fibers (`WorkerWatch::resumes`, `WorkerWatch::started`).
#[derive(Clone, Copy, Debug)]
pub(super) struct OwnerCounts {
    resumes: u64,
    started: u64,
}

impl Sighting {
    /// The rule of [`Hub::leave_to_owner`], as a pure function: given what
    /// was seen before (`seen`), a queue of `len` tasks and the owner's
    /// counts at `now`, whether to leave the queue alone, and what to
    /// remember.
    ///
    /// An empty queue is left alone (nothing to steal). A queue of at most
    /// [`FRESH_QUEUE_MAX`] tasks is left for up to [`FRESH_PATIENCE`] from
    /// the first sight, while less than [`FRESH_GRACE`] has passed, or while
    /// the owner is bound to start the tasks soon: it is still in the resume
    /// it was in at first sight (its resume counter has not moved: the
    /// fiber that spawned them has not given the worker back yet, or the OS
    /// has not run the worker), or it started a fiber within the last
    /// [`OWNER_SIGN_GRACE`] (it is working through its queue).
    pub(super) fn leave(
        seen: Option<Sighting>,
        len: usize,
        now: Instant,
        owner: OwnerCounts,
    ) -> (bool, Option<Sighting>) {
        if len == 0 || len > FRESH_QUEUE_MAX {
            return (len == 0, None);
        }
        let Some(mut s) = seen.filter(|s| {
            owner.resumes == s.resumes || now.saturating_duration_since(s.look) < FRESH_PATIENCE
        }) else {
            let first = Sighting {
                since: now,
                resumes: owner.resumes,
                started: owner.started,
                sign: None,
                look: now,
            };
            return (true, Some(first));
        };
        s.look = now;
        if owner.started != s.started {
            s.started = owner.started;
            s.sign = Some(now);
        }
        let waited = now.saturating_duration_since(s.since);
        let leave = waited < FRESH_PATIENCE
            && (waited < FRESH_GRACE
                || owner.resumes == s.resumes
                || s.sign
                    .is_some_and(|t| now.saturating_duration_since(t) < OWNER_SIGN_GRACE));
        (leave, leave.then_some(s))
    }
}

/// Queue checks between clock reads while spinning.
const SPIN_CHECK_EVERY: u32 = 32;

impl Hub {
    /// Before blocking in `poll`, watch the queues for a short while: work
    /// that arrives within [`SPIN_TIME`] (the reply in a cross-worker
    /// ping-pong, a burst of spawns) is picked up without the wake-up
    /// syscalls on both sides. Returns whether work showed up. Bounded, so an
    /// idle worker still ends up blocked and uses no CPU.
    pub(super) fn spin_for_work(&self) -> bool {
        let spinning = &self.rt.spinning;
        spinning.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        let due = self.reactor.next_deadline();
        let found = 'spin: loop {
            for _ in 0..SPIN_CHECK_EVERY {
                if self.has_pending_work() {
                    break 'spin true;
                }
                std::hint::spin_loop();
            }
            // Sockets become ready without anyone touching our queues: look
            // at the event loop too, without blocking.
            if self.reactor.has_io() {
                self.reactor.poll_io(Some(Duration::ZERO));
                if sched::ready_len() > 0 {
                    break true;
                }
            }
            let now = Instant::now();
            if due.is_some_and(|d| d <= now) {
                break true;
            }
            if now - start >= SPIN_TIME {
                break false;
            }
        };
        // Stop counting as a spinner before announcing sleep (see
        // `RuntimeShared::notify_one` for the pairing).
        spinning.fetch_sub(1, Ordering::SeqCst);
        found
    }

    /// Takes a task from the global injector or another hub. `idle`: this
    /// hub has nothing else to run, so while it leaves another hub's tasks
    /// to their owner ([`Hub::leave_to_owner`]) it offers its CPU to other
    /// threads instead of watching that queue hot: the owner, about to start
    /// the tasks, may be waiting for this very CPU (the OS tends to run the
    /// hub that a spawn woke on the spawner's core, preempting it).
    pub(super) fn find_task(&self, idle: bool) -> Option<Task> {
        if self.shutting_down.get() {
            return None;
        }
        let rt = &*self.rt;
        let mut left = false;
        loop {
            let mut retry = false;
            match rt.injector.steal_batch_and_pop(&self.unstarted) {
                Steal::Success(t) => return Some(self.after_steal(t)),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = rt.stealers.len();
            let me = self.inbox.index;
            for i in 1..n {
                let v = (me + i) % n;
                let victim: &Stealer<Task> = &rt.stealers[v];
                let len = victim.len();
                if self.leave_to_owner(v, len) {
                    left |= len > 0;
                    continue;
                }
                match victim.steal_batch_and_pop(&self.unstarted) {
                    Steal::Success(t) => return Some(self.after_steal(t)),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                if left && idle {
                    std::thread::yield_now();
                }
                return None;
            }
        }
    }

    /// Whether to leave hub `v`'s queue (`len` tasks, read once) alone for
    /// now (the rule: [`Sighting::leave`]). An empty queue is left alone
    /// without a steal attempt, so a task pushed after the read is not taken
    /// however young.
    ///
    /// Queued tasks are typically the partners of the fiber that just
    /// spawned them and is about to park (the other end of a channel, a
    /// request handed to a helper), or the connections its accept loop just
    /// took. A fiber never moves once started, so a steal decides for good
    /// that every hand-off between them is a cross-thread wake-up, and that
    /// the work is spread over more threads than it needs, each of which the
    /// OS may deschedule while fibers wait on it. Go's scheduler leaves its
    /// `runnext` slot alone for the same reason; a goroutine can move later,
    /// a fiber cannot, so the owner gets as long as it is visibly about to
    /// start them. Once it is busy with other fibers, held past the patience
    /// (a spawner that computes, a descheduled thread), or the queue is a
    /// long burst, the tasks are stolen.
    fn leave_to_owner(&self, v: usize, len: usize) -> bool {
        let watch = &self.rt.hubs[v].watch;
        let owner = OwnerCounts {
            resumes: watch.resumes(),
            started: watch.started(),
        };
        let seen = &self.sightings[v];
        let (leave, remember) = Sighting::leave(seen.get(), len, Instant::now(), owner);
        seen.set(remember);
        leave
    }

    /// After a successful steal, pass the baton so remaining work spreads.
    fn after_steal(&self, t: Task) -> Task {
        crate::monitor::bump(&self.inbox.watch.counters.steals, 1);
        if !self.unstarted.is_empty() || !self.rt.injector.is_empty() {
            self.rt.notify_one();
        }
        t
    }

    /// Blocks in poll until woken, a timer is due, or IO is ready.
    pub(super) fn sleep(&self) {
        let deadline = self.reactor.next_deadline();
        let timeout = match deadline {
            Some(at) => Some(at.saturating_duration_since(Instant::now())),
            None if self.shutting_down.get() => Some(SHUTDOWN_POLL),
            None => None,
        };
        if timeout == Some(Duration::ZERO) {
            return;
        }
        let timeout = if self.shutting_down.get() {
            timeout.map(|t| t.min(SHUTDOWN_POLL))
        } else {
            timeout
        };
        // Idle: a good moment to return the memory of unused stacks; come
        // back when the dirty pool will have been quiet long enough.
        let now = Instant::now();
        let timeout = match crate::stack::trim_if_quiet(now) {
            Some(at) => {
                let until = at.saturating_duration_since(now);
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        };
        self.inbox.sleeping.store(true, Ordering::SeqCst);
        // Re-check after announcing sleep. The fence pairs with the one in
        // `RuntimeShared::notify_one` (and the SeqCst inbox flag): either we
        // see the queued work here, or the waker sees `sleeping` and wakes us.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.has_pending_work() {
            self.inbox.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        let blocked = Instant::now();
        self.reactor.poll_io(timeout);
        self.inbox.sleeping.store(false, Ordering::SeqCst);
        let ns = blocked.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        crate::monitor::bump(&self.inbox.watch.counters.poll_blocked_ns, ns);
    }

    fn has_pending_work(&self) -> bool {
        let rt = &*self.rt;
        self.inbox.has_pending()
            || self
                .inbox
                .watch
                .dump_wanted(self.dump_served.get())
                .is_some()
            || (rt.shutdown.load(Ordering::SeqCst) && !self.shutting_down.get())
            || !self.unstarted.is_empty()
            || (!self.shutting_down.get()
                && (!rt.injector.is_empty() || rt.stealers.iter().any(|s| !s.is_empty())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(resumes: u64, started: u64) -> OwnerCounts {
        OwnerCounts { resumes, started }
    }

    /// Looks at a queue of `len` tasks every `step` from `t0` while the
    /// owner's counts are `owner(elapsed)`; returns when the rule first says
    /// steal (`None`: it never did within `until`).
    fn first_steal(
        len: usize,
        step: Duration,
        until: Duration,
        owner: impl Fn(Duration) -> OwnerCounts,
    ) -> Option<Duration> {
        let t0 = Instant::now();
        let mut seen = None;
        let mut at = Duration::ZERO;
        while at <= until {
            let (leave, remember) = Sighting::leave(seen, len, t0 + at, owner(at));
            if !leave {
                return Some(at);
            }
            seen = remember;
            at += step;
        }
        None
    }

    const STEP: Duration = Duration::from_micros(1);

    #[test]
    fn an_empty_queue_is_left_and_a_long_one_is_stolen_at_once() {
        let now = Instant::now();
        assert!(matches!(
            Sighting::leave(None, 0, now, counts(0, 0)),
            (true, None)
        ));
        let long = Sighting::leave(None, FRESH_QUEUE_MAX + 1, now, counts(0, 0));
        assert!(matches!(long, (false, None)));
    }

    /// The spawner has not given its worker back (a partner spawned just
    /// before a park, or a descheduled owner): its tasks are left well past
    /// the grace, up to the patience.
    #[test]
    fn tasks_are_left_while_their_owner_is_in_the_same_resume() {
        let stolen = first_steal(1, STEP, 2 * FRESH_PATIENCE, |_| counts(7, 3));
        assert_eq!(stolen, Some(FRESH_PATIENCE));
    }

    /// The owner moved on to other fibers and starts none: the grace only.
    #[test]
    fn tasks_of_a_busy_owner_are_stolen_after_the_grace() {
        let stolen = first_steal(1, STEP, FRESH_PATIENCE, |at| {
            counts(7 + at.as_nanos() as u64, 3)
        });
        assert_eq!(stolen, Some(FRESH_GRACE));
    }

    /// An accept burst: the owner starts one queued task every few
    /// microseconds (one per round, the first within the grace); it is left
    /// to do so, however many rounds it takes, up to the patience.
    #[test]
    fn a_queue_its_owner_works_through_is_left() {
        let stolen = first_steal(20, STEP, 2 * FRESH_PATIENCE, |at| {
            let t = at.as_micros() as u64;
            counts(100 + t, 3 + t.div_ceil(10))
        });
        assert_eq!(stolen, Some(FRESH_PATIENCE));
    }

    /// The owner started one task (a CPU-bound one) and then none: the rest
    /// are stolen once [`OWNER_SIGN_GRACE`] has passed since that start.
    #[test]
    fn a_queue_its_owner_stopped_starting_is_stolen() {
        let start_at = Duration::from_micros(10);
        let stolen = first_steal(8, STEP, FRESH_PATIENCE, |at| {
            if at < start_at {
                counts(1, 1)
            } else {
                counts(2, 2)
            }
        });
        assert_eq!(stolen, Some(start_at + OWNER_SIGN_GRACE));
    }

    /// A hub that stays away longer than the patience steals on its next
    /// look if the owner is still in the same resume (however seldom the OS
    /// runs it, the patience ends)...
    #[test]
    fn a_hub_that_looks_seldom_still_steals_from_a_stuck_owner() {
        let step = FRESH_PATIENCE + STEP;
        let stolen = first_steal(1, step, 10 * step, |_| counts(7, 3));
        assert_eq!(stolen, Some(step));
    }

    /// ... but forgets what it saw if the owner has moved on meanwhile: the
    /// queue may hold other tasks by now, which get a fresh grace.
    #[test]
    fn an_old_sighting_is_forgotten() {
        let t0 = Instant::now();
        let (_, seen) = Sighting::leave(None, 1, t0, counts(1, 1));
        let later = t0 + 2 * FRESH_PATIENCE;
        let (leave, again) = Sighting::leave(seen, 1, later, counts(9, 9));
        assert!(leave, "a new sighting starts a new grace");
        assert_eq!(again.map(|s| s.since), Some(later));
    }
}
