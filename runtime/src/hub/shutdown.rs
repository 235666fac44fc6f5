//! How a hub winds down when its runtime shuts down: unstarted tasks are
//! dropped, live fibers cancelled and waited for, and fibers that will not
//! finish are abandoned after [`SHUTDOWN_GRACE`].

use std::time::{Duration, Instant};

use crossbeam_deque::Steal;

use super::Hub;
use crate::record::TaskRef;

/// How long a shutting-down hub waits for its cancelled fibers to finish
/// before it gives up on them (they are leaked, not force-unwound).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How often a shutting-down hub with nothing to do looks at its fibers
/// again.
pub(super) const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

impl Hub {
    /// Runtime shutdown: drop unstarted tasks, cancel every live fiber.
    pub(super) fn begin_shutdown(&self) {
        self.shutting_down.set(true);
        // Dropping unstarted tasks runs user destructors outside any fiber:
        // the monitor must not blame the fiber resumed last for them.
        self.inbox.watch.leave();
        while self.unstarted.pop().is_some() {}
        loop {
            match self.rt.injector.steal() {
                Steal::Success(task) => drop(task),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        let headers: Vec<TaskRef> = self
            .fibers
            .borrow()
            .iter()
            .flatten()
            .map(|f| f.ctx().record.clone())
            .collect();
        for h in headers {
            h.cancel();
        }
    }

    /// Last resort at shutdown: fibers that ignored cancellation (parked while
    /// unwinding, waiting for something that will never come) are leaked, not
    /// force-unwound; their stacks stay allocated.
    fn abandon_fibers(&self) {
        let mut fibers = self.fibers.borrow_mut();
        let mut names = Vec::new();
        // Dropping the pointers leaks the fibers: stacks, records and all.
        for f in fibers.iter_mut().filter_map(Option::take) {
            names.push(f.ctx().record.describe());
        }
        self.live.set(0);
        // Abandoned fibers stay PARKED forever; a late wake must still find
        // this hub's inbox alive (see `Header::owner`).
        std::mem::forget(self.inbox.clone());
        crate::sys::report(format_args!(
            "sylvan: at shutdown, {} fiber(s) did not finish within {:?} of being cancelled \
             and were abandoned: {}",
            names.len(),
            SHUTDOWN_GRACE,
            names.join(", ")
        ));
    }

    /// While shutting down with nothing to run: whether the hub is done —
    /// every fiber finished, or abandoned because their number has not
    /// changed for [`SHUTDOWN_GRACE`]. `progress` keeps (live fibers, when
    /// that count last changed).
    pub(super) fn wound_down(&self, progress: &mut Option<(usize, Instant)>) -> bool {
        let live = self.live.get();
        if live == 0 {
            return true;
        }
        let now = Instant::now();
        match *progress {
            Some((n, since)) if n == live => {
                if now - since > SHUTDOWN_GRACE {
                    self.abandon_fibers();
                    return true;
                }
            }
            _ => *progress = Some((live, now)),
        }
        false
    }
}
