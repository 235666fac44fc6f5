//! sylvan::sync::Condvar with sylvan::sync::Mutex.

mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::Signal;
use sylvan::sync::{Condvar, Mutex};

/// A bounded buffer built from one Mutex and two Condvars.
struct Buffer {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
}

impl Buffer {
    fn put(&self, v: u64) {
        let mut q = self
            .not_full
            .wait_while(self.items.lock(), |q| q.len() >= 8);
        q.push_back(v);
        drop(q);
        self.not_empty.notify_one();
    }
    fn get(&self) -> u64 {
        let mut q = self
            .not_empty
            .wait_while(self.items.lock(), |q| q.is_empty());
        let v = q.pop_front().unwrap();
        drop(q);
        self.not_full.notify_one();
        v
    }
}

#[test]
fn bounded_buffer_between_fibers_and_threads() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let buf = Arc::new(Buffer {
        items: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    const PER_PRODUCER: u64 = 2_000;
    let sum = Arc::new(AtomicU64::new(0));
    // 4 fiber producers + 2 thread producers; 4 fiber consumers + 2 thread consumers.
    let mut fibers = Vec::new();
    let mut threads = Vec::new();
    for p in 0..6u64 {
        let buf = buf.clone();
        let body = move || {
            for k in 0..PER_PRODUCER {
                buf.put(p * PER_PRODUCER + k);
            }
        };
        if p < 4 {
            fibers.push(rt.spawn(body));
        } else {
            threads.push(std::thread::spawn(body));
        }
    }
    for c in 0..6u64 {
        let (buf, sum) = (buf.clone(), sum.clone());
        let body = move || {
            for _ in 0..PER_PRODUCER {
                sum.fetch_add(buf.get(), Ordering::Relaxed);
            }
        };
        if c < 4 {
            fibers.push(rt.spawn(body));
        } else {
            threads.push(std::thread::spawn(body));
        }
    }
    for f in fibers {
        f.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let n = 6 * PER_PRODUCER;
    assert_eq!(
        sum.load(Ordering::Relaxed),
        n * (n - 1) / 2,
        "every item exactly once"
    );
    assert!(buf.items.lock().is_empty());
}

#[sylvan::test(workers = 1)]
fn notify_one_reaching_a_cancelled_waiter_is_passed_on() {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let spawn_waiter = |tag: u32| {
        let p = pair.clone();
        let started = Arc::new(Signal::new());
        let s2 = started.clone();
        let h = sylvan::spawn(move || {
            let (m, c) = &*p;
            let mut g = m.lock();
            s2.notify();
            while *g == 0 {
                g = c.wait(g);
            }
            *g += tag;
        });
        started.wait_for(1); // it runs on until it parks in wait()
        h
    };
    let first = spawn_waiter(10);
    let second = spawn_waiter(100);
    {
        let (m, c) = &*pair;
        *m.lock() = 1;
        c.notify_one(); // goes to `first`...
    }
    first.cancel(); // ...which is cancelled before it runs
    assert!(first.join().unwrap_err().is_cancelled());
    second.join().unwrap();
    assert_eq!(
        *pair.0.lock(),
        101,
        "the notification reached the second waiter"
    );
}

#[sylvan::test(workers = 2)]
fn timed_waits() {
    let m = Mutex::new(5);
    let c = Condvar::new();
    let (g, r) = c.wait_timeout(m.lock(), Duration::from_millis(5));
    assert!(r.timed_out());
    assert_eq!(*g, 5);
    let (g, r) = c.wait_timeout_while(g, Duration::from_millis(5), |v| *v == 5);
    assert!(r.timed_out());
    let (g, r) = c.wait_timeout_while(g, Duration::from_millis(5), |v| *v != 5);
    assert!(!r.timed_out());
    drop(g);
    assert!(!m.is_locked());
}

/// A waiter notified by `notify_one` and cancelled while it takes the
/// mutex back passes the notification on: the other waiter gets the item
/// (found by review: the notification was swallowed).
#[test]
fn a_notified_waiter_cancelled_while_relocking_passes_the_notify_on() {
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let got = rt.block_on(|| {
        let pair = Arc::new((Mutex::new(VecDeque::<u32>::new()), Condvar::new()));
        let consumer = || {
            let pair = pair.clone();
            sylvan::spawn(move || {
                let (m, cv) = &*pair;
                let mut g = m.lock();
                loop {
                    if let Some(v) = g.pop_front() {
                        return v;
                    }
                    g = cv.wait(g);
                }
            })
        };
        let w1 = consumer();
        sylvan::sleep(Duration::from_millis(20)); // w1 waits on the condvar
        let w2 = consumer();
        sylvan::sleep(Duration::from_millis(20)); // w2 waits too
        let (m, cv) = &*pair;
        let mut g = m.lock();
        g.push_back(7);
        cv.notify_one(); // w1, the longest waiting, is notified…
        sylvan::sleep(Duration::from_millis(20)); // …and waits for the mutex
        w1.cancel();
        assert!(w1.join().unwrap_err().is_cancelled());
        drop(g);
        sylvan::timeout(Duration::from_secs(10), || w2.join().unwrap())
            .expect("the other waiter was notified")
    });
    assert_eq!(got, 7);
}
