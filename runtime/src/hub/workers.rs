//! What a runtime's workers share: their inboxes, the deques of unstarted
//! tasks and the injector for spawns from outside, the spinning count, the
//! shutdown flag.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_deque::{Injector, Stealer};

use crate::record::Task;
use crate::sched::Inbox;
use crate::stack;

/// State shared by a runtime's workers and handles.
pub(crate) struct RuntimeShared {
    /// Each worker's inbox, by index.
    pub(crate) hubs: Vec<Arc<Inbox>>,
    pub(crate) stealers: Vec<Stealer<Task>>,
    /// Tasks spawned from threads that are not workers of this runtime.
    pub(crate) injector: Injector<Task>,
    pub(crate) shutdown: AtomicBool,
    /// How many hubs are spinning for work right now (see
    /// `Hub::spin_for_work`). While one is, queued tasks will be found
    /// without waking a sleeping hub.
    pub(crate) spinning: AtomicUsize,
    /// Default usable stack size (page-rounded).
    pub(crate) stack_size: usize,
    pub(crate) next_hub: AtomicUsize,
    /// Report a fiber that holds its worker longer than this without
    /// parking (`crate::monitor`); `None`: never.
    pub(crate) blocked_warning: Option<std::time::Duration>,
    /// On a detected deadlock, shut the runtime down so that `block_on`
    /// panics (`RuntimeBuilder::panic_on_deadlock`).
    pub(crate) panic_on_deadlock: bool,
    /// A deadlock was detected (and, with `panic_on_deadlock`, ended).
    pub(crate) deadlocked: AtomicBool,
}

impl RuntimeShared {
    /// Makes sure some hub will look at newly queued tasks: if no hub is
    /// spinning for work, wakes one sleeping hub.
    ///
    /// Why no task is stranded: this fence pairs with the one a hub makes
    /// after it stops spinning and announces `sleeping` (`Hub::sleep`). If
    /// that hub's fence comes first, we see its `spinning` decrement and its
    /// `sleeping` flag and wake it; if ours comes first, its re-check after
    /// the fence sees our queued task. (`submit` relies on the fence coming
    /// first, before any early return, for its shutdown check too.)
    pub(crate) fn notify_one(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.spinning.load(Ordering::Relaxed) > 0 {
            return;
        }
        let n = self.hubs.len();
        let start = self.next_hub.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let hub = &self.hubs[(start + i) % n];
            if hub.sleeping.load(Ordering::Relaxed) && hub.wake_if_sleeping() {
                return;
            }
        }
    }

    /// Queues a task: on this runtime's current worker if the caller is one,
    /// otherwise on the global injector.
    pub(crate) fn submit(self: &Arc<Self>, task: Task) {
        if self.shutdown.load(Ordering::Acquire) {
            // Dropping an unstarted task completes its JoinHandle as cancelled.
            drop(task);
            return;
        }
        let mut task = Some(task);
        super::with_hub(|hub| {
            if Arc::ptr_eq(&hub.rt, self) {
                if let Some(t) = task.take() {
                    hub.unstarted.push(t);
                }
            }
        });
        let Some(t) = task else {
            self.notify_one();
            return;
        };
        self.injector.push(t);
        // `notify_one` starts with a SeqCst fence, which also orders the
        // push before the shutdown check below.
        self.notify_one();
        // A shutdown that began meanwhile (the deadlock check's, from the
        // watchdog thread) may have drained the injector before the push:
        // drop what is left there, completing those handles as cancelled,
        // rather than leave a joiner waiting forever.
        if self.shutdown.load(Ordering::Relaxed) {
            loop {
                match self.injector.steal() {
                    crossbeam_deque::Steal::Success(t) => drop(t),
                    crossbeam_deque::Steal::Retry => {}
                    crossbeam_deque::Steal::Empty => break,
                }
            }
        }
    }

    /// A stack for a new fiber: from the current worker's pool when the caller
    /// is a worker of this runtime, else straight from the allocator.
    pub(crate) fn stack(self: &Arc<Self>, size: Option<usize>) -> io::Result<stack::FiberStack> {
        let pooled = super::with_hub(|hub| Arc::ptr_eq(&hub.rt, self).then(|| hub.stack(size)));
        match pooled.flatten() {
            Some(r) => r,
            None => match size {
                Some(s) => stack::allocate(stack::normalize_size(s)?),
                None => stack::allocate(self.stack_size),
            },
        }
    }

    /// Tells every worker to wind down.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for h in &self.hubs {
            h.wake();
        }
    }
}
