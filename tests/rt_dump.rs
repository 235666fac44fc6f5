//! `sylvan::dump()`: every live fiber, named, with what it waits on and where
//! it was spawned.

use std::sync::Arc;
use std::time::Duration;

use sylvan::sync::{Event, Queue};

/// Fibers each waiting on a different thing all appear with their name, the
/// right wait and this file as their spawn site.
#[test]
fn dump_names_every_fiber_and_what_it_waits_on() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let event = Arc::new(Event::new());
    let queue: Arc<Queue<u32>> = Arc::new(Queue::unbounded());
    let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        let name = name.to_owned();
        rt.block_on(move || sylvan::Builder::new().name(name).spawn(f).unwrap())
    };
    let e = event.clone();
    let waiter = spawn("on-event", Box::new(move || e.wait()));
    let q = queue.clone();
    let getter = spawn(
        "on-queue",
        Box::new(move || {
            let _ = q.get();
        }),
    );
    let sleeper = spawn(
        "sleeper",
        Box::new(|| sylvan::sleep(Duration::from_secs(60))),
    );
    let acceptor = spawn("acceptor", Box::new(move || drop(listener.accept())));
    let e2 = event.clone();
    let joiner = spawn(
        "joiner",
        Box::new(move || {
            let inner = sylvan::spawn(move || e2.wait());
            inner.join().unwrap();
        }),
    );
    // Wait (bounded) until all five are parked where expected.
    let want = [
        ("on-event", "Event::wait"),
        ("on-queue", "Queue::get"),
        ("sleeper", "sleep until +"),
        ("acceptor", "wait readable fd "),
        ("joiner", "join fiber #"),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = sylvan::dump().to_string();
        let all = want.iter().all(|(name, on)| {
            text.lines()
                .any(|l| l.contains(&format!("'{name}' parked on {on}")))
        });
        if all || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("{text}");
    for (name, on) in want {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("'{name}'")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        assert!(
            line.contains(&format!("parked on {on}")),
            "{name}: {line}\n{text}"
        );
        assert!(line.contains("spawned at tests/rt_dump.rs:"), "{line}");
    }
    // Structured access agrees with the text.
    // (Other tests' runtimes may be in the dump too.)
    let dump = sylvan::dump();
    let named: Vec<_> = dump
        .runtimes
        .iter()
        .flat_map(|r| &r.workers)
        .flat_map(|w| &w.fibers)
        .filter_map(|f| f.name.clone())
        .collect();
    for (name, _) in want {
        assert!(named.iter().any(|n| n == name), "{name} not in {named:?}");
    }
    assert!(text.starts_with("sylvan dump: "), "{text}");
    event.set();
    queue.put(1).unwrap();
    sleeper.cancel();
    acceptor.cancel();
    for h in [waiter, getter, joiner] {
        h.join().unwrap();
    }
    drop(rt);
}

/// A dump taken from inside a fiber lists that fiber (waiting on the dump)
/// and its siblings on the same worker.
#[test]
fn dump_from_a_fiber_of_a_one_worker_runtime() {
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let text = rt.block_on(|| {
        let e = Arc::new(Event::new());
        let e2 = e.clone();
        let sibling = sylvan::Builder::new()
            .name("sibling")
            .spawn(move || e2.wait())
            .unwrap();
        sylvan::yield_now();
        let text = sylvan::dump().to_string();
        e.set();
        sibling.join().unwrap();
        text
    });
    assert!(text.contains("'sibling' parked on Event::wait"), "{text}");
    assert!(text.contains("parked on sylvan::dump"), "{text}");
}

/// A worker held by a fiber that does not park is reported as busy, naming
/// that fiber, and the dump does not hang.
#[test]
fn dump_names_the_fiber_holding_a_busy_worker() {
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .blocked_warning(None)
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let started = Arc::new(Event::new());
    let st = started.clone();
    let hog = rt.block_on(move || {
        sylvan::Builder::new()
            .name("hog")
            .spawn(move || {
                st.set();
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
    });
    started.wait();
    let dump = sylvan::dump();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hog.join().unwrap();
    let busy = dump
        .runtimes
        .iter()
        .flat_map(|r| &r.workers)
        .filter_map(|w| w.busy.clone())
        .find(|b| b.contains("'hog'"))
        .unwrap_or_else(|| panic!("no worker busy with the hog in:\n{dump}"));
    assert!(busy.contains("'hog' (#"), "{busy}");
    assert!(busy.contains("spawned at tests/rt_dump.rs:"), "{busy}");
}
