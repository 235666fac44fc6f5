//! sylvan::sync::{Barrier, Pool, Group}.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{DropCounter, Signal};
use sylvan::sync::{Barrier, Group, Pool};

#[test]
fn barrier_rounds_across_fibers_and_threads() {
    const PARTIES: usize = 8;
    const ROUNDS: usize = 20;
    let rt = sylvan::Runtime::builder().workers(4).build().unwrap();
    let barrier = Arc::new(Barrier::new(PARTIES));
    let arrivals: Arc<Vec<AtomicUsize>> =
        Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect());
    let leaders: Arc<Vec<AtomicUsize>> =
        Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect());
    let body = {
        let (b, a, l) = (barrier.clone(), arrivals.clone(), leaders.clone());
        move || {
            for r in 0..ROUNDS {
                a[r].fetch_add(1, Ordering::SeqCst);
                let res = b.wait();
                // Nobody passes round r before all parties arrived at it.
                assert_eq!(a[r].load(Ordering::SeqCst), PARTIES, "round {r}");
                if res.is_leader() {
                    l[r].fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    };
    let fibers: Vec<_> = (0..6).map(|_| rt.spawn(body.clone())).collect();
    let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(body.clone())).collect();
    for f in fibers {
        f.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    for r in 0..ROUNDS {
        assert_eq!(
            leaders[r].load(Ordering::SeqCst),
            1,
            "one leader in round {r}"
        );
    }
}

#[sylvan::test(workers = 1)]
fn a_cancelled_party_no_longer_counts_as_arrived() {
    let barrier = Arc::new(Barrier::new(2));
    let started = Arc::new(Signal::new());
    let (b, s) = (barrier.clone(), started.clone());
    let quitter = sylvan::spawn(move || {
        s.notify();
        b.wait();
    });
    started.wait_for(1);
    quitter.cancel();
    assert!(quitter.join().unwrap_err().is_cancelled());
    // Had the quitter still counted, this wait would return at once.
    let b2 = barrier.clone();
    let late = sylvan::spawn(move || b2.wait().is_leader());
    sylvan::sleep(Duration::from_millis(5));
    assert!(
        !late.is_finished(),
        "the barrier must still wait for a second party"
    );
    assert!(barrier.wait().is_leader());
    assert!(!late.join().unwrap());
}

#[sylvan::test(workers = 4)]
fn pool_limits_concurrency_and_joins() {
    let pool = Pool::new(5);
    let inside = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..200u64 {
        let (inside, max_seen, done) = (inside.clone(), max_seen.clone(), done.clone());
        pool.spawn(move || {
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_seen.fetch_max(now, Ordering::SeqCst);
            sylvan::sleep(Duration::from_micros(100 + (i % 5) * 50));
            inside.fetch_sub(1, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
        });
        assert!(pool.running() <= 5);
    }
    pool.join();
    assert_eq!(done.load(Ordering::SeqCst), 200);
    assert!(max_seen.load(Ordering::SeqCst) <= 5);
    assert_eq!(pool.free_count(), 5);
    assert_eq!(pool.running(), 0);
}

#[sylvan::test(workers = 2)]
fn pool_map_and_imap_unordered() {
    let pool = Pool::new(3);
    let out = pool.map(0..50u64, |x| {
        sylvan::sleep(Duration::from_micros((50 - x) * 20));
        x * 2
    });
    assert_eq!(
        out,
        (0..50u64).map(|x| x * 2).collect::<Vec<_>>(),
        "map keeps input order"
    );
    let mut got: Vec<u64> = pool
        .imap_unordered(0..50u64, |x| {
            sylvan::sleep(Duration::from_micros((x % 7) * 30));
            x + 1
        })
        .collect();
    got.sort();
    assert_eq!(got, (1..=50u64).collect::<Vec<_>>());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(
            0..10u32,
            |x| if x == 4 { panic!("item 4 failed") } else { x },
        )
    }));
    assert_eq!(
        panicked.unwrap_err().downcast_ref::<&str>(),
        Some(&"item 4 failed")
    );
    pool.join();
}

#[sylvan::test(workers = 2)]
fn imap_unordered_starts_items_as_its_results_are_taken() {
    let pool = Pool::new(2);
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let gate = Arc::new(sylvan::sync::Event::new());
    let g = gate.clone();
    let mut it = pool.imap_unordered(0..100u32, move |i| {
        s.fetch_add(1, Ordering::SeqCst);
        g.wait();
        i
    });
    // Until the first result is taken, two items (the pool's size) start.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < until);
        sylvan::sleep(Duration::from_millis(1));
    }
    gate.set();
    assert!(it.next().is_some());
    // Each result taken lets one more start: no more than size + taken.
    for _ in 0..20 {
        sylvan::yield_now();
    }
    let n = started.load(Ordering::SeqCst);
    assert!(n <= 3, "one result taken, yet {n} items started");
    // Dropping the iterator early starts no more items.
    drop(it);
    pool.join();
    let after = started.load(Ordering::SeqCst);
    sylvan::sleep(Duration::from_millis(20));
    pool.join();
    assert_eq!(started.load(Ordering::SeqCst), after);
    assert!(
        after <= 4,
        "{after} items started after one result was taken"
    );
}

#[sylvan::test(workers = 2)]
fn imap_unordered_re_raises_an_items_panic_and_ends() {
    let pool = Pool::new(1);
    let mut got = Vec::new();
    let mut it = pool.imap_unordered(0..10u32, |i| {
        if i == 3 {
            panic!("item 3 fails");
        }
        i
    });
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for v in &mut it {
            got.push(v);
        }
    }));
    assert_eq!(
        panicked.unwrap_err().downcast_ref::<&str>(),
        Some(&"item 3 fails")
    );
    assert_eq!(
        got,
        [0, 1, 2],
        "one item at a time, in order, up to the panic"
    );
    assert_eq!(it.next(), None, "the sequence has ended");
    drop(it);
    pool.join();

    // A panic of the items' own iterator ends the sequence the same way.
    let items = (0..5u32).map(|i| if i == 2 { panic!("no item 2") } else { i });
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.imap_unordered(items, |i| i).count()
    }));
    assert_eq!(
        panicked.unwrap_err().downcast_ref::<&str>(),
        Some(&"no item 2")
    );
    pool.join();
}

#[sylvan::test(workers = 4)]
fn group_join_and_cancel() {
    let group = Group::new();
    let finished = Arc::new(AtomicUsize::new(0));
    for i in 0..50u64 {
        let finished = finished.clone();
        group.spawn(move || {
            sylvan::sleep(Duration::from_micros(i * 10));
            finished.fetch_add(1, Ordering::SeqCst);
        });
    }
    group.join();
    assert_eq!(finished.load(Ordering::SeqCst), 50);
    assert!(group.is_empty());

    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Signal::new());
    for _ in 0..30 {
        let (g, s) = (DropCounter(drops.clone()), started.clone());
        group.spawn(move || {
            let _g = g;
            s.notify();
            sylvan::sleep(Duration::from_secs(3600));
        });
    }
    started.wait_for(30);
    assert_eq!(group.len(), 30);
    group.cancel();
    assert!(group.join_timeout(Duration::from_secs(30)));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        30,
        "members unwound, destructors ran"
    );
    assert!(group.is_empty());
}
