//! sylvan::sync::channel: mpmc between fibers and threads, disconnection in
//! both directions, rendezvous, try_ and timeout forms.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::Signal;
use sylvan::sync::channel::{
    self, RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError,
};

#[test]
fn mpmc_between_fibers_and_threads() {
    for capacity in [0usize, 1, 8] {
        let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
        let (tx, rx) = channel::bounded::<u64>(capacity);
        let sum = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let mut fibers = Vec::new();
        let mut threads = Vec::new();
        for p in 0..6u64 {
            let tx = tx.clone();
            let body = move || {
                for i in 0..2_000 {
                    tx.send(p * 10_000 + i).unwrap();
                }
            };
            if p < 4 {
                fibers.push(rt.spawn(body));
            } else {
                threads.push(std::thread::spawn(body));
            }
        }
        drop(tx);
        for c in 0..4 {
            let (rx, sum, count) = (rx.clone(), sum.clone(), count.clone());
            let body = move || {
                for v in rx.iter() {
                    sum.fetch_add(v, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            };
            if c < 3 {
                fibers.push(rt.spawn(body));
            } else {
                threads.push(std::thread::spawn(body));
            }
        }
        drop(rx);
        for f in fibers {
            f.join().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        let expected: u64 = (0..6u64)
            .map(|p| (0..2_000).map(|i| p * 10_000 + i).sum::<u64>())
            .sum();
        assert_eq!(count.load(Ordering::Relaxed), 12_000, "capacity {capacity}");
        assert_eq!(sum.load(Ordering::Relaxed), expected, "capacity {capacity}");
    }
}

#[test]
fn receivers_see_disconnection_after_draining() {
    let (tx, rx) = channel::unbounded();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[sylvan::test(workers = 2)]
fn senders_get_their_value_back_when_receivers_are_gone() {
    let (tx, rx) = channel::bounded(1);
    tx.send(String::from("queued")).unwrap();
    // A sender blocked on the full channel...
    let started = Arc::new(Signal::new());
    let (tx2, s2) = (tx.clone(), started.clone());
    let blocked = sylvan::spawn(move || {
        s2.notify();
        tx2.send(String::from("blocked"))
    });
    started.wait_for(1);
    sylvan::sleep(Duration::from_millis(2));
    // ...fails with its value when the last receiver goes away.
    drop(rx);
    assert_eq!(
        blocked.join().unwrap(),
        Err(SendError(String::from("blocked")))
    );
    assert_eq!(
        tx.send(String::from("late")).unwrap_err().into_inner(),
        "late"
    );
    assert_eq!(
        tx.try_send(String::from("x")).unwrap_err().into_inner(),
        "x"
    );
}

#[test]
fn rendezvous_between_a_thread_and_a_fiber() {
    let (tx, rx) = channel::bounded(0);
    assert_eq!(
        tx.try_send(7),
        Err(TrySendError::Full(7)),
        "no receiver waiting"
    );
    let consumer = sylvan::spawn(move || rx.iter().collect::<Vec<u32>>());
    for i in 0..50 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(consumer.join().unwrap(), (0..50).collect::<Vec<_>>());
}

#[sylvan::test(workers = 2)]
fn timeouts_and_cancellation() {
    let (tx, rx) = channel::bounded::<u8>(1);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(2)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(1).unwrap();
    assert!(matches!(
        tx.send_timeout(2, Duration::from_millis(2)),
        Err(channel::SendTimeoutError::Timeout(2))
    ));
    // A cancelled receiver does not swallow a value meant for it.
    let (rx2, started) = (rx.clone(), Arc::new(Signal::new()));
    assert_eq!(rx.recv(), Ok(1));
    let s2 = started.clone();
    let victim = sylvan::spawn(move || {
        s2.notify();
        rx2.recv()
    });
    started.wait_for(1);
    sylvan::sleep(Duration::from_millis(2));
    victim.cancel();
    assert!(victim.join().unwrap_err().is_cancelled());
    tx.send(3).unwrap();
    assert_eq!(rx.recv(), Ok(3));
}

/// `try_recv` racing the last sender's send-and-drop: `Disconnected` only
/// once the channel is drained (found by review: "empty" and "closed" were
/// read under two locks, so the item sent in between was reported gone).
#[test]
fn try_recv_says_disconnected_only_when_drained() {
    /// `send` on a thread of its own, racing the drain; `try_recv` gives
    /// `Err(true)` for "disconnected", `Err(false)` for "empty". Returns
    /// (items drained before "disconnected", items found after it).
    fn round(
        send: impl FnOnce() + Send + 'static,
        mut try_recv: impl FnMut() -> Result<u64, bool>,
    ) -> (u64, u64) {
        let go = Arc::new(std::sync::Barrier::new(2));
        let go2 = go.clone();
        let t = std::thread::spawn(move || {
            go2.wait();
            send();
        });
        go.wait();
        let mut got = 0;
        loop {
            match try_recv() {
                Ok(_) => got += 1,
                Err(false) => std::hint::spin_loop(),
                Err(true) => break,
            }
        }
        t.join().unwrap();
        (got, try_recv().is_ok() as u64)
    }
    use sylvan::sync::mpsc;
    for n in 0..400 {
        let (tx, rx) = channel::unbounded::<u64>();
        let got = round(
            move || tx.send(n).unwrap(),
            || rx.try_recv().map_err(|e| e == TryRecvError::Disconnected),
        );
        assert_eq!(
            got,
            (1, 0),
            "round {n}: the item is received before Disconnected"
        );
        let (tx, rx) = mpsc::channel::<u64>();
        let got = round(
            move || tx.send(n).unwrap(),
            || {
                rx.try_recv()
                    .map_err(|e| matches!(e, mpsc::TryRecvError::Disconnected))
            },
        );
        assert_eq!(
            got,
            (1, 0),
            "round {n} (mpsc): the item is received before Disconnected"
        );
    }
}
