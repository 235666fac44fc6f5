//! A hub's timer queue: a binary min-heap of deadlines with O(1) cancellation.
//!
//! # Contract
//!
//! * `insert` returns a [`TimerKey`]; `cancel(key)` guarantees the entry is never
//!   returned by `pop_expired`, and is a no-op for a key that already fired or
//!   was cancelled (keys are generation-checked, so a stale key never cancels
//!   a newer timer that reuses its slot).
//! * `pop_expired(now)` returns live entries with `deadline <= now` in deadline
//!   order; entries with equal deadlines come out in insertion order.
//! * Cancelled entries are removed lazily; when they outnumber live ones the
//!   heap is rebuilt, so memory stays proportional to live timers even when a
//!   loop keeps arming long timeouts and cancelling them early.
//!
//! This is pure logic (no clock, no fibers) so it is unit-tested directly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Identifies one armed timer for cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    generation: u32,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Heap order: deadline, then insertion sequence (FIFO among equal deadlines).
type HeapEntry = Reverse<(Instant, u64, u32, u32)>;

/// Deadline-ordered timers with generation-checked keys.
pub(crate) struct TimerQueue<T> {
    heap: BinaryHeap<HeapEntry>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    seq: u64,
    live: usize,
}

impl<T> TimerQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            live: 0,
        }
    }

    /// Number of armed (not fired, not cancelled) timers.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Arms a timer that yields `value` once `deadline` has passed.
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.value = Some(value);
        let generation = entry.generation;
        self.seq += 1;
        self.heap
            .push(Reverse((deadline, self.seq, slot, generation)));
        self.live += 1;
        TimerKey { slot, generation }
    }

    /// Disarms a timer; returns its value if it was still armed.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let entry = self.slots.get_mut(key.slot as usize)?;
        if entry.generation != key.generation || entry.value.is_none() {
            return None;
        }
        let value = entry.value.take();
        self.retire(key.slot);
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            self.compact();
        }
        value
    }

    /// The earliest live deadline, if any.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_dead();
        self.heap.peek().map(|Reverse((d, ..))| *d)
    }

    /// Removes and returns the earliest live entry whose deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<T> {
        self.skip_dead();
        let Reverse((deadline, _, slot, _)) = *self.heap.peek()?;
        if deadline > now {
            return None;
        }
        self.heap.pop();
        let value = self.slots[slot as usize].value.take();
        self.retire(slot);
        value
    }

    fn retire(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
    }

    fn is_dead(&self, slot: u32, generation: u32) -> bool {
        let entry = &self.slots[slot as usize];
        entry.generation != generation || entry.value.is_none()
    }

    fn skip_dead(&mut self) {
        while let Some(&Reverse((_, _, slot, generation))) = self.heap.peek() {
            if !self.is_dead(slot, generation) {
                break;
            }
            self.heap.pop();
        }
    }

    fn compact(&mut self) {
        let heap = std::mem::take(&mut self.heap);
        let live: Vec<HeapEntry> = heap
            .into_vec()
            .into_iter()
            .filter(|Reverse((_, _, slot, generation))| !self.is_dead(*slot, *generation))
            .collect();
        self.heap = BinaryHeap::from(live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(t0 + Duration::from_millis(30), "c");
        q.insert(t0 + Duration::from_millis(10), "a1");
        q.insert(t0 + Duration::from_millis(20), "b");
        q.insert(t0 + Duration::from_millis(10), "a2");
        assert_eq!(q.len(), 4);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(q.pop_expired(t0), None);
        let now = t0 + Duration::from_millis(25);
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_expired(now)).collect();
        assert_eq!(fired, ["a1", "a2", "b"]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_expired(t0 + Duration::from_secs(1)), Some("c"));
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancel_is_exact_and_generation_checked() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0, 1);
        let b = q.insert(t0, 2);
        assert_eq!(q.cancel(a), Some(1));
        assert_eq!(q.cancel(a), None, "double cancel is a no-op");
        // Slot of `a` is reused by `c`; the stale key must not cancel `c`.
        let c = q.insert(t0, 3);
        assert_eq!(q.cancel(a), None);
        assert_eq!(q.pop_expired(t0), Some(2));
        assert_eq!(q.cancel(b), None, "cancel after fire is a no-op");
        assert_eq!(q.pop_expired(t0), Some(3));
        assert_eq!(q.cancel(c), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn cancelled_entries_do_not_accumulate() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let keep = q.insert(t0 + Duration::from_secs(3600), 0u32);
        // Many rebuilds either way; Miri runs the smaller count in seconds.
        let rounds = if cfg!(miri) { 1_000 } else { 100_000u32 };
        for i in 0..rounds {
            let k = q.insert(t0 + Duration::from_secs(60), i);
            assert_eq!(q.cancel(k), Some(i));
        }
        assert!(
            q.heap.len() <= 200,
            "heap kept {} stale entries",
            q.heap.len()
        );
        assert!(q.slots.len() <= 2);
        assert_eq!(q.len(), 1);
        assert_eq!(q.cancel(keep), Some(0));
    }
}
