//! How a hub answers `sylvan::dump`: between two resumes, on its own
//! thread, it describes its live fibers (see `crate::dump`).

use std::time::{Duration, Instant};

use super::Hub;
use crate::dump::{FiberDump, FiberState};
use crate::monitor::coarse_since;
use crate::park::WaitLabel;
use crate::record::{wait_labels, WaitOn};

impl Hub {
    /// Answers a pending dump request. Checked when the hub runs out of work
    /// and, while it is busy, with each non-blocking IO poll (every
    /// `IO_POLL_INTERVAL` resumes), not every round: a dump can wait that
    /// long, a round cannot afford the load.
    pub(super) fn serve_dump_if_asked(&self) {
        if let Some(generation) = self.inbox.watch.dump_wanted(self.dump_served.get()) {
            self.serve_dump(generation);
        }
    }

    /// Answers dump request `generation` with this hub's fibers.
    fn serve_dump(&self, generation: u64) {
        self.dump_served.set(generation);
        let now = Instant::now();
        let fibers = self
            .fibers
            .borrow()
            .iter()
            .flatten()
            .map(|f| {
                let ctx = f.ctx();
                let rec = &ctx.record;
                let parked = rec.state.is_parked();
                FiberDump {
                    id: rec.id,
                    name: rec.name().map(str::to_owned),
                    state: if parked {
                        FiberState::Parked
                    } else {
                        FiberState::Ready
                    },
                    waiting_on: ctx
                        .waiting_on
                        .get()
                        .filter(|_| parked)
                        .map(|w| describe_wait(w, now)),
                    spawned_at: rec.site,
                    age: coarse_since(ctx.born.get()),
                    waited: Some(coarse_since(ctx.since.get())),
                    timeout_in: ctx
                        .deadlines
                        .try_borrow()
                        .ok()
                        .and_then(|d| d.last().map(|d| d.at.saturating_duration_since(now))),
                }
            })
            .collect();
        self.inbox
            .watch
            .answer_dump(generation, fibers, self.unstarted.len());
    }
}

/// A wait label as the dump prints it.
fn describe_wait(w: WaitOn, now: Instant) -> String {
    let is = |l: &WaitLabel| std::ptr::eq(w.label, l);
    if is(&wait_labels::JOIN) {
        format!("join fiber #{}", w.detail)
    } else if is(&wait_labels::READABLE) || is(&wait_labels::WRITABLE) {
        format!("{} fd {}", w.label.0, w.detail as u32 as i32)
    } else if is(&wait_labels::SLEEP) {
        let at = crate::monitor::epoch() + Duration::from_nanos(w.detail);
        match at.checked_duration_since(now) {
            Some(left) if left.as_millis() >= 1000 => {
                format!("sleep until +{:.1}s", left.as_secs_f64())
            }
            Some(left) => format!("sleep until +{}ms", left.as_millis()),
            None => "sleep (due)".to_owned(),
        }
    } else {
        w.label.0.to_owned()
    }
}
