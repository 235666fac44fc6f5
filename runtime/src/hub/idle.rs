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

/// How long a hub leaves another hub's lone queued task to its owner before
/// stealing it (see [`Hub::leave_to_owner`]).
const LONE_TASK_GRACE: Duration = Duration::from_micros(5);

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
        // A spawn that saw us spinning woke nobody, counting on us; but what
        // ended the spin may be other work (our inbox), which this hub now
        // runs first, perhaps for long. If new fibers are still queued,
        // pass the duty on: wake a sleeping hub for them (the last spinner
        // to stop does, as in tokio's searching workers).
        if found
            && spinning.load(Ordering::SeqCst) == 0
            && (!self.rt.injector.is_empty() || self.rt.stealers.iter().any(|s| !s.is_empty()))
        {
            self.rt.notify_one();
        }
        found
    }

    /// Takes a task from the global injector or another hub.
    pub(super) fn find_task(&self) -> Option<Task> {
        if self.shutting_down.get() {
            return None;
        }
        let rt = &*self.rt;
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
                // One look at the length decides: a queue seen empty is
                // skipped, not raided (a task pushed a moment later would be
                // taken without its grace; while this hub spins that moment
                // is a good part of every pass, and it split a ping-pong pair
                // across the workers in 6 runs of 100).
                let queued = victim.len();
                if queued == 0 {
                    // A lone task seen earlier is gone (started): the next
                    // one gets its own grace.
                    self.lone_since[v].set(None);
                    continue;
                }
                if self.leave_to_owner(v, queued) {
                    continue;
                }
                match victim.steal_batch_and_pop(&self.unstarted) {
                    Steal::Success(t) => return Some(self.after_steal(t)),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether to leave hub `v`'s queue alone for now: it holds a single task
    /// that has not been there for [`LONE_TASK_GRACE`] (as far as this hub
    /// has watched). A lone fresh task is typically the partner of the fiber
    /// that just spawned it and is about to park (a request handed to a
    /// worker fiber, the other end of a channel); started on the spawner's
    /// hub, every later hand-off between the two stays on one thread, while
    /// a fiber never moves once started, so a steal here would make each of
    /// them a cross-thread wake-up. Go's scheduler leaves its `runnext` slot
    /// alone for the same reason. A task still waiting after the grace is
    /// stolen: its owner is busy.
    fn leave_to_owner(&self, v: usize, queued: usize) -> bool {
        let seen = &self.lone_since[v];
        if queued != 1 {
            seen.set(None);
            return false;
        }
        let now = Instant::now();
        match seen.get() {
            Some(since) if now - since < LONE_TASK_GRACE => true,
            // Watched throughout the grace: steal it.
            Some(since) if now - since < 4 * LONE_TASK_GRACE => {
                seen.set(None);
                false
            }
            // First sight, or an old sighting (we were away; it may be
            // another task by now): start watching.
            _ => {
                seen.set(Some(now));
                true
            }
        }
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
