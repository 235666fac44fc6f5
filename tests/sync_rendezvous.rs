//! Zero-capacity (rendezvous) channels and queues where selects wait on
//! both ends: every value whose send reported `Ok` is received exactly
//! once, nothing is buffered, and a waiting receive pairs with any sender,
//! also a non-blocking one (found by reviews of the rendezvous fixes).

mod support;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::bounded;
use sylvan::sync::channel;
use sylvan::sync::select::{Select, Selected};
use sylvan::sync::Queue;

/// Waits until `cond` holds (bounded).
fn until(mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < end, "condition never held");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A select on both ends of a rendezvous channel is parked: it waits to
/// receive. A non-blocking send must pair with its waiting receive (Go's
/// `select { case c <- v: default: }` does), not report Full because the
/// select's own (unservable) send is first in the putters' line.
#[test]
fn try_send_pairs_with_a_parked_both_ends_select() {
    let (a, b) = bounded(Duration::from_secs(20), || {
        let (tx, rx) = channel::bounded::<u32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let parked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let p2 = parked.clone();
        let selector = std::thread::spawn(move || {
            let (a, b) = (Cell::new(None), Cell::new(None));
            let mut sel = Select::new();
            sel.send(&tx2, 7, &a);
            sel.recv(&rx2, &b);
            sel.timeout(Duration::from_secs(5));
            p2.store(true, Ordering::SeqCst);
            let which = sel.wait();
            (which, b.take())
        });
        until(|| parked.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(50)); // registered and parked
        let r = tx.try_send(1);
        let sel = selector.join().unwrap();
        drop(rx);
        (r, sel)
    });
    assert_eq!(
        a,
        Ok(()),
        "try_send failed although a receiver waited: {b:?}"
    );
    assert_eq!(b, (Selected::Case(1), Some(Ok(1))));
}

/// Same with the facade's `select!` default arm.
#[test]
fn select_default_send_pairs_with_a_parked_both_ends_select() {
    let r = bounded(Duration::from_secs(20), || {
        let (tx, rx) = channel::bounded::<u32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let selector = std::thread::spawn(move || {
            let (a, b) = (Cell::new(None), Cell::new(None));
            let mut sel = Select::new();
            sel.send(&tx2, 7, &a);
            sel.recv(&rx2, &b);
            sel.timeout(Duration::from_millis(500));
            sel.wait()
        });
        std::thread::sleep(Duration::from_millis(100));
        let sent = sylvan::select! {
            send(tx, 1) -> r => r.is_ok(),
            default => false,
        };
        let _ = selector.join().unwrap();
        drop(rx);
        sent
    });
    assert!(
        r,
        "the send with a default arm did not pair with the waiting receive"
    );
}

/// Go would not make this Full either: the only waiting putter cannot use
/// the room, a plain `try_put` can.
#[test]
fn try_put_with_a_parked_both_ends_select_on_a_queue() {
    let r = bounded(Duration::from_secs(20), || {
        let q = Arc::new(Queue::<u32>::bounded(0));
        let q2 = q.clone();
        let selector = std::thread::spawn(move || {
            let (a, b) = (Cell::new(None), Cell::new(None));
            let mut sel = Select::new();
            sel.put(&q2, 7, &a);
            sel.get(&q2, &b);
            sel.timeout(Duration::from_millis(500));
            (sel.wait(), b.take())
        });
        std::thread::sleep(Duration::from_millis(100));
        let r = q.try_put(1);
        (
            r.map_err(|e| matches!(e, sylvan::sync::TryPutError::Full(_))),
            selector.join().unwrap(),
        )
    });
    assert_eq!(
        r.0,
        Ok(()),
        "try_put: Full while a getter waits ({:?})",
        r.1
    );
}

/// Stress: selects on both ends of one rendezvous channel, plain senders and
/// receivers with timeouts, on fibers and plain threads. Every value whose
/// send reported Ok is received exactly once; nothing stays in the buffer;
/// afterwards a plain pair still meets (no room promised for ever).
fn stress(rounds: u64) {
    let q = Arc::new(Queue::<u64>::bounded(0));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for role in 0..6u64 {
        let (q, sent, got, next) = (q.clone(), sent.clone(), got.clone(), next.clone());
        let body = move || {
            for r in 0..rounds {
                let v = next.fetch_add(1, Ordering::Relaxed);
                let to = Duration::from_micros(50 + (r * 37 + role * 11) % 400);
                match role % 3 {
                    0 => {
                        let (a, b) = (Cell::new(None), Cell::new(None));
                        let mut sel = Select::new();
                        sel.put(&q, v, &a);
                        sel.get(&q, &b);
                        sel.timeout(to);
                        match sel.wait() {
                            Selected::Case(0) => {
                                assert_eq!(a.take(), Some(Ok(())));
                                sent.lock().unwrap().push(v);
                            }
                            Selected::Case(1) => {
                                got.lock().unwrap().push(b.take().unwrap().unwrap())
                            }
                            _ => {}
                        }
                    }
                    1 => {
                        if q.put_timeout(v, to).is_ok() {
                            sent.lock().unwrap().push(v);
                        }
                    }
                    _ => {
                        if let Some(x) = q.get_timeout(to) {
                            got.lock().unwrap().push(x);
                        }
                    }
                }
            }
        };
        hs.push(if role % 2 == 0 {
            std::thread::spawn(move || {
                sylvan::Runtime::builder()
                    .workers(1)
                    .build()
                    .unwrap()
                    .block_on(body)
            })
        } else {
            std::thread::spawn(body)
        });
    }
    for h in hs {
        h.join().unwrap();
    }
    let mut s = sent.lock().unwrap().clone();
    let mut g = got.lock().unwrap().clone();
    s.sort_unstable();
    g.sort_unstable();
    assert_eq!(q.len(), 0, "items left in a rendezvous buffer");
    assert_eq!(
        s,
        g,
        "sent-ok and received differ ({} vs {})",
        s.len(),
        g.len()
    );
    // A plain pair still meets.
    let q2 = q.clone();
    let getter = std::thread::spawn(move || q2.get_timeout(Duration::from_secs(2)));
    assert_eq!(
        q.put_timeout(99, Duration::from_secs(2)),
        Ok(()),
        "a put next to a waiting get timed out"
    );
    assert_eq!(getter.join().unwrap(), Some(99));
}

#[test]
fn stress_both_ends_selects_and_plain_parties_with_timeouts() {
    for _ in 0..3 {
        bounded(Duration::from_secs(60), || stress(1000));
    }
}

/// Control: with a plain receiver waiting, try_send succeeds.
#[test]
fn control_try_send_with_a_plain_receiver() {
    let r = bounded(Duration::from_secs(20), || {
        let (tx, rx) = channel::bounded::<u32>(0);
        let h = std::thread::spawn(move || rx.recv_timeout(Duration::from_millis(500)).ok());
        std::thread::sleep(Duration::from_millis(100));
        (tx.try_send(1).is_ok(), h.join().unwrap())
    });
    assert_eq!(r, (true, Some(1)));
}

/// Two parties, each looping over a select on both ends of one rendezvous
/// channel: every round pairs (Go's would), on threads and fibers.
#[test]
fn two_both_ends_selects_ping_pong() {
    let n = bounded(Duration::from_secs(30), || {
        let (tx, rx) = channel::bounded::<u32>(0);
        let rounds = 2000;
        let mk = |tx: channel::Sender<u32>, rx: channel::Receiver<u32>| {
            move || {
                let mut recvd = 0;
                for i in 0..rounds {
                    let (a, b) = (Cell::new(None), Cell::new(None));
                    let mut sel = Select::new();
                    sel.send(&tx, i, &a);
                    sel.recv(&rx, &b);
                    if let Selected::Case(1) = sel.wait() {
                        recvd += 1;
                    }
                }
                recvd
            }
        };
        let f = mk(tx.clone(), rx.clone());
        let h1 = std::thread::spawn(move || {
            sylvan::Runtime::builder()
                .workers(1)
                .build()
                .unwrap()
                .block_on(f)
        });
        let h2 = std::thread::spawn(mk(tx, rx));
        h1.join().unwrap() + h2.join().unwrap()
    });
    assert_eq!(n, 2000);
}
