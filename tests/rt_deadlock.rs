//! The deadlock report. A test binary without libtest's harness (its own
//! threads would count as threads sylvan cannot see): `main` re-runs itself
//! with a scenario's name, and reads the child's stderr.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sylvan::sync::{Event, Queue};

const SCENARIO: &str = "SYLVAN_DEADLOCK_SCENARIO";

fn main() {
    match std::env::var(SCENARIO).as_deref() {
        Ok("two-waiters") => two_fibers_wait_for_each_other(),
        Ok("thread-provides") => a_thread_provides_after_a_while(),
        Ok("panic") => block_on_panics_on_a_deadlock(),
        Ok("failed-signal") => a_failed_dump_signal_hides_no_thread(),
        Ok("dump-signal") => a_dump_signal_listener_hides_no_deadlock(),
        Ok("signal-wait") => a_signal_wait_is_no_deadlock(),
        Ok(other) => panic!("unknown scenario {other}"),
        Err(_) => parent(),
    }
}

/// Runs `scenario` in a child process; returns (exit ok, stderr, seconds).
fn run(scenario: &str) -> (bool, String, f64) {
    let start = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .env(SCENARIO, scenario)
        .env_remove("SYLVAN_BLOCKED_WARNING")
        .env_remove("SYLVAN_DUMP_SIGNAL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("scenario {scenario} did not finish within 60 s"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed().as_secs_f64(),
    )
}

fn parent() {
    // Two fibers that each wait for the other: reported within a few
    // seconds, naming both and what they wait on.
    // (The child is ended by SIGALRM after 5 s.)
    let (_, err, _) = run("two-waiters");
    let report = err
        .split("sylvan: deadlock:")
        .nth(1)
        .unwrap_or_else(|| panic!("no deadlock report in:\n{err}"));
    assert!(report.contains("'left' parked on Event::wait"), "{report}");
    assert!(report.contains("'right' parked on Event::wait"), "{report}");
    assert!(
        report.contains("spawned at tests/rt_deadlock.rs:"),
        "{report}"
    );
    assert_eq!(
        err.matches("sylvan: deadlock:").count(),
        1,
        "once per episode:\n{err}"
    );
    println!("deadlock reported: ok");

    // A fiber waiting for an item that a plain thread puts after 3 s: no
    // report (sylvan cannot see what that thread will do).
    let (ok, err, secs) = run("thread-provides");
    assert!(ok, "child failed: {err}");
    assert!(!err.contains("deadlock"), "a false alarm:\n{err}");
    assert!(secs >= 3.0, "the scenario ran {secs} s");
    println!("no false alarm: ok");

    // With panic_on_deadlock (what #[sylvan::test] uses), block_on panics
    // instead of waiting forever.
    let (ok, err, secs) = run("panic");
    assert!(ok, "child failed: {err}");
    assert!(
        err.contains("block_on panicked: sylvan: Runtime::block_on: deadlock"),
        "{err}"
    );
    assert!(secs < 20.0, "took {secs} s");
    println!("block_on panics on a deadlock: ok");

    // A dump signal that cannot be listened for (SIGKILL) must not count as
    // a sylvan thread and so hide a real one (found by review).
    let (ok, err, _) = run("failed-signal");
    assert!(
        ok && !err.contains("sylvan: deadlock:"),
        "false alarm:\n{err}"
    );
    assert!(err.contains("cannot dump on signal"), "{err}");
    println!("no false alarm with a failed dump_on_signal: ok");

    // The dump-signal listener and the signal reader thread are sylvan's
    // own: a deadlock beside them is still one.
    let (ok, err, secs) = run("dump-signal");
    assert!(ok, "child failed: {err}");
    assert!(
        err.contains("block_on panicked: sylvan: Runtime::block_on: deadlock"),
        "{err}"
    );
    assert!(secs < 20.0, "took {secs} s");
    println!("deadlock beside a dump-signal listener: ok");

    // A fiber waiting for a signal is not deadlocked: the signal may come
    // (here SIGALRM, 3 s later).
    let (ok, err, secs) = run("signal-wait");
    assert!(ok && !err.contains("deadlock"), "a false alarm:\n{err}");
    assert!(secs >= 3.0, "the scenario ran {secs} s");
    println!("no false alarm while waiting for a signal: ok");
}

/// `block_on_panics_on_a_deadlock` with a dump on SIGUSR1 listened for
/// (its thread parks in sylvan between deliveries).
fn a_dump_signal_listener_hides_no_deadlock() {
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .dump_on_signal(libc::SIGUSR1)
        .panic_on_deadlock(true)
        .build()
        .unwrap();
    deadlocked_block_on(&rt);
}

/// The only fiber waits for SIGALRM, which `alarm` raises in 3 s.
fn a_signal_wait_is_no_deadlock() {
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .panic_on_deadlock(true)
        .build()
        .unwrap();
    let sig = rt.block_on(|| {
        // SAFETY: alarm(2) only schedules a signal.
        unsafe { libc::alarm(3) };
        sylvan::signal::wait_for(&[libc::SIGALRM]).unwrap()
    });
    assert_eq!(sig, libc::SIGALRM);
}

/// As `a_thread_provides_after_a_while`, with a dump on a signal that cannot
/// be caught.
fn a_failed_dump_signal_hides_no_thread() {
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .dump_on_signal(libc::SIGKILL)
        .panic_on_deadlock(true)
        .build()
        .unwrap();
    let q: Arc<Queue<u32>> = Arc::new(Queue::unbounded());
    let q2 = q.clone();
    let putter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        q.put(7).unwrap();
    });
    assert_eq!(rt.block_on(move || q2.get()), Some(7));
    putter.join().unwrap();
}

/// The only fiber waits on an event nobody will set.
fn block_on_panics_on_a_deadlock() {
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .panic_on_deadlock(true)
        .build()
        .unwrap();
    deadlocked_block_on(&rt);
}

/// Blocks on a fiber that waits forever; prints how `block_on` panicked.
fn deadlocked_block_on(rt: &sylvan::Runtime) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| Event::new().wait());
    }));
    let payload = outcome.expect_err("block_on must panic");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    eprintln!("block_on panicked: {msg}");
}

/// `left` waits for `right`'s event and `right` for `left`'s; the main
/// thread joins them. The child exits after the report (the fibers would
/// wait forever).
fn two_fibers_wait_for_each_other() {
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let (a, b) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (a2, b2) = (a.clone(), b.clone());
    let left = rt.block_on(move || {
        sylvan::Builder::new()
            .name("left")
            .spawn(move || {
                b2.wait();
                a2.set();
            })
            .unwrap()
    });
    let right = rt.block_on(move || {
        sylvan::Builder::new()
            .name("right")
            .spawn(move || {
                a.wait();
                b.set();
            })
            .unwrap()
    });
    // The main thread joins (a sylvan wait). SIGALRM ends the process once
    // the report had time to appear (a thread sleeping to end it would be a
    // thread sylvan cannot see, which rules the report out).
    // SAFETY: alarm(2) only schedules a signal.
    unsafe { libc::alarm(5) };
    let _ = left.join();
    let _ = right.join();
    unreachable!("the fibers wait forever");
}

/// A fiber waits on a queue that a plain thread fills after 3 s.
fn a_thread_provides_after_a_while() {
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let q: Arc<Queue<u32>> = Arc::new(Queue::unbounded());
    let q2 = q.clone();
    let getter = rt.block_on(move || {
        sylvan::Builder::new()
            .name("getter")
            .spawn(move || q2.get())
            .unwrap()
    });
    let putter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        q.put(7).unwrap();
    });
    assert_eq!(getter.join().unwrap(), Some(7));
    putter.join().unwrap();
}
