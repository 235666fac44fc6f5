//! `Runtime::metrics()`: the counters add up after a mixed workload.

use std::sync::Arc;
use std::time::Duration;

use sylvan::sync::Event;

#[test]
fn metrics_add_up_after_a_mixed_workload() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let parked = rt.block_on(move || {
        let yielders: Vec<_> = (0..100)
            .map(|_| {
                sylvan::spawn(|| {
                    for _ in 0..10 {
                        sylvan::yield_now();
                    }
                })
            })
            .collect();
        let sleepers: Vec<_> = (0..20)
            .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_millis(10))))
            .collect();
        // Loopback traffic through sylvan::net.
        let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        {
            use std::io::{Read, Write};
            let mut c = sylvan::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"hello").unwrap();
            let mut back = [0u8; 5];
            c.read_exact(&mut back).unwrap();
        }
        server.join().unwrap();
        for h in yielders.into_iter().chain(sleepers) {
            h.join().unwrap();
        }
        // Five fibers that stay parked.
        (0..5)
            .map(|_| {
                let g = g.clone();
                sylvan::spawn(move || g.wait())
            })
            .collect::<Vec<_>>()
    });
    // Let the five start and block_on's own fiber be counted finished
    // (bounded wait on the counters themselves): 100 + 20 + the server +
    // block_on's fiber + the five have started, all but the five finished.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = rt.metrics();
        let t = m.total();
        let settled = t.fibers_started == 127 && t.fibers_live == 5;
        if settled || std::time::Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    println!("{m}");
    let t = m.total();
    assert_eq!(m.workers.len(), 2);
    assert_eq!(t.fibers_started, t.fibers_finished + t.fibers_live, "{m}");
    assert_eq!(t.fibers_live, 5, "{m}");
    // 100 yielders + 20 sleepers + the server + block_on's own fiber.
    assert!(t.fibers_finished >= 122, "{m}");
    assert!(t.yields >= 1_000, "{m}");
    assert!(t.timers_fired >= 20, "{m}");
    assert!(t.parks >= 20, "{m}");
    assert!(t.resumes >= t.yields + t.parks, "{m}");
    assert!(t.io_events >= 1, "{m}");
    assert_eq!(m.not_started, 0);
    gate.set();
    for p in parked {
        p.join().unwrap();
    }
    // A join returns once the fiber's result is out; its worker counts it
    // finished a moment later, when the fiber's stack is back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let t = rt.metrics().total();
        if t.fibers_live == 0 || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(after.fibers_live, 0);
    assert_eq!(after.fibers_started, after.fibers_finished);
}

/// After each join, the finished count catches up (bounded wait): no fiber
/// is counted live for long after it ended (found by review, as a lag).
#[test]
fn live_count_catches_up_after_each_join() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    for round in 0..200 {
        rt.spawn(sylvan::yield_now).join().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = rt.metrics().total();
            if m.fibers_live == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "round {round}: {m:?}");
            std::thread::yield_now();
        }
    }
}
