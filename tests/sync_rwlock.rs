//! sylvan::sync::RwLock: the reader/writer invariant under load, fairness in
//! both directions, and hand-off when an admitted waiter is cancelled.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use support::spawn_started;
use sylvan::sync::RwLock;

#[test]
fn readers_and_writers_never_overlap() {
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let lock = Arc::new(RwLock::new(0u64));
    // >0: readers inside; -1: a writer inside.
    let inside = Arc::new(AtomicI64::new(0));
    let body = |writer: bool| {
        let (lock, inside) = (lock.clone(), inside.clone());
        move || {
            for k in 0..60u64 {
                if writer {
                    let mut g = lock.write();
                    assert_eq!(inside.swap(-1, Ordering::SeqCst), 0, "writer overlaps");
                    sylvan::yield_now();
                    *g += 1;
                    assert_eq!(inside.swap(0, Ordering::SeqCst), -1);
                } else {
                    let g = lock.read();
                    assert!(
                        inside.fetch_add(1, Ordering::SeqCst) >= 0,
                        "reader overlaps a writer"
                    );
                    if k % 7 == 0 {
                        sylvan::sleep(Duration::from_micros(50));
                    } else {
                        sylvan::yield_now();
                    }
                    let _ = *g;
                    assert!(inside.fetch_sub(1, Ordering::SeqCst) > 0);
                }
            }
        }
    };
    let mut fibers = Vec::new();
    for i in 0..24 {
        fibers.push(rt.spawn(body(i % 4 == 0)));
    }
    let threads: Vec<_> = (0..2).map(|i| std::thread::spawn(body(i == 0))).collect();
    for f in fibers {
        f.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    // 6 writer fibers + 1 writer thread, 60 writes each.
    assert_eq!(*lock.read(), 7 * 60);
    assert_eq!(inside.load(Ordering::SeqCst), 0);
}

/// Spawns a fiber that logs `tag` once it gets the lock (read or write), and
/// returns after it has queued on the lock (one worker: it runs until it parks).
fn queued(
    lock: &Arc<RwLock<()>>,
    log: &Arc<StdMutex<Vec<&'static str>>>,
    tag: &'static str,
    write: bool,
) -> sylvan::JoinHandle<()> {
    let (l, log) = (lock.clone(), log.clone());
    spawn_started(move || {
        if write {
            let _g = l.write();
            log.lock().unwrap().push(tag);
        } else {
            let _g = l.read();
            log.lock().unwrap().push(tag);
        }
    })
}

#[sylvan::test(workers = 1)]
fn a_waiting_writer_goes_before_new_readers() {
    let lock = Arc::new(RwLock::new(()));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let r1 = lock.read();
    let w = queued(&lock, &log, "writer", true);
    assert!(
        lock.try_read().is_none(),
        "new readers queue behind a waiting writer"
    );
    let r2 = queued(&lock, &log, "late reader", false);
    drop(r1);
    w.join().unwrap();
    r2.join().unwrap();
    assert_eq!(*log.lock().unwrap(), ["writer", "late reader"]);
}

#[sylvan::test(workers = 1)]
fn queued_readers_go_before_the_next_writer() {
    let lock = Arc::new(RwLock::new(()));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let w1 = lock.write();
    let r_a = queued(&lock, &log, "reader a", false);
    let w2 = queued(&lock, &log, "writer 2", true);
    let r_b = queued(&lock, &log, "reader b", false);
    drop(w1);
    for h in [r_a, w2, r_b] {
        h.join().unwrap();
    }
    // Both readers queued while the first writer held the lock are
    // admitted together, before the second writer.
    let got = log.lock().unwrap().clone();
    assert_eq!(got[2], "writer 2", "{got:?}");
}

#[sylvan::test(workers = 1)]
fn an_admitted_reader_that_is_cancelled_lets_the_writer_in() {
    let lock = Arc::new(RwLock::new(0));
    let w1 = lock.write();
    let (l1, l2) = (lock.clone(), lock.clone());
    let reader = spawn_started(move || {
        let _g = l1.read();
        unreachable!("cancelled before it resumes");
    });
    let writer = spawn_started(move || {
        *l2.write() += 1;
    });
    drop(w1); // admits the reader (readers = 1)...
    reader.cancel(); // ...which leaves without running: the writer gets in
    assert!(reader.join().unwrap_err().is_cancelled());
    writer.join().unwrap();
    assert_eq!(*lock.read(), 1);
    assert!(lock.try_write().is_some());
}

#[sylvan::test(workers = 2)]
fn timeouts() {
    let lock = Arc::new(RwLock::new(()));
    let w = lock.write();
    assert!(lock.read_timeout(Duration::from_millis(5)).is_none());
    assert!(lock.write_timeout(Duration::from_millis(5)).is_none());
    drop(w);
    let r = lock.read();
    assert!(lock.read_timeout(Duration::from_millis(5)).is_some());
    assert!(lock.write_timeout(Duration::from_millis(5)).is_none());
    drop(r);
    assert!(lock.write_timeout(Duration::from_millis(5)).is_some());
}

/// A writer that gives up (timeout) while readers hold the lock must not
/// strand the readers that queued behind it (writer preference): with the
/// lock free they get in (found by review: they waited for a writer that
/// never came).
#[test]
fn readers_behind_a_writer_that_timed_out_get_in() {
    let lock = Arc::new(RwLock::new(0u32));
    let held = lock.read();
    let w = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.write_timeout(Duration::from_millis(100)).is_none())
    };
    std::thread::sleep(Duration::from_millis(30)); // the writer queues
    let r = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.read_timeout(Duration::from_secs(10)).is_some())
    };
    assert!(w.join().unwrap(), "the writer timed out");
    drop(held);
    assert!(r.join().unwrap(), "the reader behind the writer got in");
}

/// The same with a writer fiber cancelled while it waits.
#[test]
fn readers_behind_a_cancelled_writer_get_in() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let lock = Arc::new(RwLock::new(0u32));
    let held = lock.read();
    let writer = {
        let lock = lock.clone();
        rt.spawn(move || drop(lock.write()))
    };
    std::thread::sleep(Duration::from_millis(30)); // the writer queues
    let reader = {
        let lock = lock.clone();
        rt.spawn(move || lock.read_timeout(Duration::from_secs(10)).is_some())
    };
    std::thread::sleep(Duration::from_millis(30)); // the reader queues behind it
    writer.cancel();
    assert!(writer.join().unwrap_err().is_cancelled());
    drop(held);
    assert!(
        reader.join().unwrap(),
        "the reader behind the writer got in"
    );
}
