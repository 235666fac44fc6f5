//! [`Barrier`]: wait until a number of parties have arrived (reusable).

use crate::shim::park::Waker;
use crate::shim::Mutex;
use crate::waiters::{self, WaitQueue};

/// Lets `n` fibers or threads wait for each other; reusable for any number
/// of rounds. A party that is cancelled while waiting stops counting as
/// arrived, so the others keep waiting for a real `n`-th party.
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let parties: Vec<_> = (0..3)
///     .map(|_| {
///         let b = barrier.clone();
///         sylvan::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = parties.into_iter().filter_map(|p| p.join().ok()).filter(|&l| l).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    state: Mutex<State>,
}

struct State {
    parties: usize,
    arrived: usize,
    generation: u64,
    waiters: WaitQueue,
}

/// Returned by [`Barrier::wait`].
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let parties: Vec<_> = (0..3)
///     .map(|_| {
///         let b = barrier.clone();
///         sylvan::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = parties.into_iter().map(|p| p.join().unwrap()).filter(|&l| l).count();
/// assert_eq!(leaders, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// `true` for exactly one party per round (the last to arrive).
    ///
    /// ```
    /// let solo = sylvan::sync::Barrier::new(1);
    /// assert!(solo.wait().is_leader()); // the last (and only) party to arrive
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

fn queue(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

fn nothing_to_pass_on(_: &mut State, (): ()) -> Vec<Waker> {
    Vec::new()
}

impl Barrier {
    /// A barrier for `parties` parties (0 and 1 never wait).
    ///
    /// ```
    /// let b = sylvan::sync::Barrier::new(1);
    /// b.wait(); // one party: never waits
    /// b.wait(); // and the barrier is reusable
    /// ```
    pub fn new(parties: usize) -> Barrier {
        Barrier {
            state: Mutex::new(State {
                parties,
                arrived: 0,
                generation: 0,
                waiters: WaitQueue::default(),
            }),
        }
    }

    /// Arrives and waits until all parties of this round have arrived. A
    /// cancellation point.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Barrier, Mutex};
    ///
    /// let (barrier, log) = (Arc::new(Barrier::new(2)), Arc::new(Mutex::new(Vec::new())));
    /// let other = {
    ///     let (barrier, log) = (barrier.clone(), log.clone());
    ///     sylvan::spawn(move || {
    ///         log.lock().push("other arrived");
    ///         barrier.wait();
    ///     })
    /// };
    /// barrier.wait(); // returns only once the other fiber has arrived too
    /// assert_eq!(*log.lock(), ["other arrived"]);
    /// other.join().unwrap();
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let (waiter, generation) = {
            let mut s = self.state.lock();
            s.arrived += 1;
            if s.arrived >= s.parties {
                s.arrived = 0;
                s.generation += 1;
                let wakers = s.waiters.wake_every();
                drop(s);
                waiters::wake_all(wakers);
                return BarrierWaitResult(true);
            }
            (s.waiters.push(), s.generation)
        };
        /// Takes back this party's arrival if it leaves before the round ends.
        struct Leave<'a> {
            barrier: &'a Barrier,
            generation: u64,
            armed: bool,
        }
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                if self.armed {
                    let mut s = self.barrier.state.lock();
                    if s.generation == self.generation {
                        s.arrived -= 1;
                    }
                }
            }
        }
        let mut leave = Leave {
            barrier: self,
            generation,
            armed: true,
        };
        waiters::wait(
            &crate::shim::park::WaitLabel("Barrier::wait"),
            &self.state,
            waiter,
            None,
            queue,
            nothing_to_pass_on,
        );
        leave.armed = false;
        BarrierWaitResult(false)
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Barrier")
            .field("parties", &s.parties)
            .field("arrived", &s.arrived)
            .finish()
    }
}
