//! A hub's timer queue: deadline order with O(1) cancellation.
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
//!   queue is rebuilt, so memory stays proportional to live timers even when a
//!   loop keeps arming long timeouts and cancelling them early.
//!
//! # Layout
//!
//! Most timers are armed in deadline order: every `sleep(d)` or IO timeout
//! of one duration adds to a fresh clock reading, so each deadline is at or
//! after the one armed before it. Those go to the back of a *run*, a FIFO
//! that is sorted by construction: arming and firing them is O(1) and walks
//! memory in order. A timer that would break the run's order (a shorter
//! duration after a longer one) goes to a binary min-heap. The front is the
//! earlier of the two fronts. With 100k sleeping fibers the heap's
//! O(log n) pops, each a chain of cache misses, were a tenth of the
//! workload's time; the run costs none of that when durations agree. A
//! long timer at the run's back (even a cancelled one, until it reaches
//! the front or a compaction drops it) sends the shorter ones armed after
//! it to the heap: then the queue costs what the heap alone did.
//!
//! This is pure logic (no clock, no fibers) so it is unit-tested directly.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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

/// An armed timer: (deadline, insertion sequence, slot, generation). Tuple
/// order is firing order: deadline, then FIFO among equal deadlines.
type Entry = (Instant, u64, u32, u32);

/// Which of the two queues holds the front entry.
#[derive(Clone, Copy)]
enum Front {
    Run,
    Heap,
}

/// Deadline-ordered timers with generation-checked keys.
pub(crate) struct TimerQueue<T> {
    /// Entries armed in deadline order, oldest first (see the module docs).
    run: VecDeque<Entry>,
    /// The others, as a min-heap.
    heap: BinaryHeap<Reverse<Entry>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    seq: u64,
    live: usize,
}

impl<T> TimerQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        TimerQueue {
            run: VecDeque::new(),
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
        let armed = (deadline, self.seq, slot, generation);
        // In order after the run's last entry (live or not: the run stays
        // sorted either way), it joins the run.
        if self.run.back().map_or(true, |last| last.0 <= deadline) {
            self.run.push_back(armed);
        } else {
            self.heap.push(Reverse(armed));
        }
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
        let queued = self.run.len() + self.heap.len();
        if queued > 64 && queued > 2 * self.live {
            self.compact();
        }
        value
    }

    /// The earliest live deadline, if any.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_dead();
        self.front().map(|(_, e)| e.0)
    }

    /// The value of the front entry (maybe a cancelled one's: `None`),
    /// without removing it: a hint of what `pop_expired` returns next.
    pub(crate) fn peek_value(&self) -> Option<&T> {
        let (_, (_, _, slot, generation)) = self.front()?;
        let entry = &self.slots[slot as usize];
        (entry.generation == generation).then_some(entry.value.as_ref())?
    }

    /// Removes and returns the earliest live entry whose deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<T> {
        self.skip_dead();
        let (front, (deadline, _, slot, _)) = self.front()?;
        if deadline > now {
            return None;
        }
        match front {
            Front::Run => {
                self.run.pop_front();
            }
            Front::Heap => {
                self.heap.pop();
            }
        }
        let value = self.slots[slot as usize].value.take();
        self.retire(slot);
        value
    }

    /// The earlier of the run's and the heap's fronts (dead or not).
    fn front(&self) -> Option<(Front, Entry)> {
        match (self.run.front(), self.heap.peek()) {
            (Some(r), Some(Reverse(h))) if h < r => Some((Front::Heap, *h)),
            (Some(r), _) => Some((Front::Run, *r)),
            (None, Some(Reverse(h))) => Some((Front::Heap, *h)),
            (None, None) => None,
        }
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

    /// Drops cancelled entries from the front of both queues.
    fn skip_dead(&mut self) {
        while let Some(&(_, _, slot, generation)) = self.run.front() {
            if !self.is_dead(slot, generation) {
                break;
            }
            self.run.pop_front();
        }
        while let Some(&Reverse((_, _, slot, generation))) = self.heap.peek() {
            if !self.is_dead(slot, generation) {
                break;
            }
            self.heap.pop();
        }
    }

    fn compact(&mut self) {
        let mut run = std::mem::take(&mut self.run);
        run.retain(|&(_, _, slot, generation)| !self.is_dead(slot, generation));
        self.run = run;
        let heap = std::mem::take(&mut self.heap);
        let live: Vec<Reverse<Entry>> = heap
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
        let queued = q.run.len() + q.heap.len();
        assert!(queued <= 200, "kept {queued} stale entries");
        assert!(q.slots.len() <= 2);
        assert_eq!(q.len(), 1);
        assert_eq!(q.cancel(keep), Some(0));
    }

    #[test]
    fn in_order_timers_skip_the_heap() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        for i in 0..1_000u64 {
            // Same duration, later clock readings: nondecreasing deadlines.
            q.insert(t0 + Duration::from_micros(i / 3), i);
        }
        assert_eq!((q.run.len(), q.heap.len()), (1_000, 0));
        let fired: Vec<u64> =
            std::iter::from_fn(|| q.pop_expired(t0 + Duration::from_secs(1))).collect();
        assert_eq!(fired, (0..1_000).collect::<Vec<_>>());
    }

    /// Against a sorted list, over a seeded mix of in-order and out-of-order
    /// deadlines, cancels (live, fired and stale keys) and partial firings.
    #[test]
    fn matches_a_sorted_model() {
        let t0 = Instant::now();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let steps = if cfg!(miri) { 2_000 } else { 40_000 };
        let mut q = TimerQueue::new();
        // (deadline, seq, value, key); sorted on demand.
        let mut model: Vec<(Duration, u64, u64, TimerKey)> = Vec::new();
        let mut keys: Vec<TimerKey> = Vec::new();
        let (mut clock, mut seq) = (Duration::ZERO, 0u64);
        for _ in 0..steps {
            match next() % 8 {
                0..=3 => {
                    // Mostly "now + a common duration"; sometimes a shorter
                    // or longer one that breaks the order.
                    clock += Duration::from_micros(next() % 3);
                    let at = match next() % 4 {
                        0 => clock + Duration::from_micros(next() % 500),
                        _ => clock + Duration::from_micros(200),
                    };
                    seq += 1;
                    let key = q.insert(t0 + at, seq);
                    model.push((at, seq, seq, key));
                    keys.push(key);
                }
                4 | 5 if !keys.is_empty() => {
                    let key = keys[(next() % keys.len() as u64) as usize];
                    let expect = model
                        .iter()
                        .position(|m| m.3 == key)
                        .map(|i| model.remove(i).2);
                    assert_eq!(q.cancel(key), expect);
                }
                _ => {
                    let now = clock + Duration::from_micros(next() % 300);
                    model.sort_by_key(|m| (m.0, m.1));
                    let due = model.partition_point(|m| m.0 <= now);
                    let expect: Vec<u64> = model.drain(..due).map(|m| m.2).collect();
                    let fired: Vec<u64> = std::iter::from_fn(|| q.pop_expired(t0 + now)).collect();
                    assert_eq!(fired, expect);
                }
            }
            assert_eq!(q.len(), model.len());
            let earliest = model.iter().map(|m| (m.0, m.1)).min().map(|m| t0 + m.0);
            assert_eq!(q.next_deadline(), earliest);
        }
    }
}
