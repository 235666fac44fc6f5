//! The runtime's monitor, seen from a user's stderr: the blocked-worker
//! warning and a shutdown that names a stuck fiber instead of hanging. Each
//! scenario runs in a child process (this test binary re-run with one test
//! selected), whose stderr the parent reads.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD: &str = "SYLVAN_MONITOR_TEST_CHILD";

/// Re-runs this test binary with only `test` selected and `CHILD` set, and
/// returns its output. Gives up (failing) after `limit`.
fn run_child(test: &str, envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("SYLVAN_BLOCKED_WARNING");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("the child running {test} did not finish within {limit:?}"),
    }
}

/// Runs `test` in a child (see [`run_child`]), requires it to succeed, and
/// returns its stderr and the first stderr line containing `marker`.
fn child_line(test: &str, marker: &str) -> (String, String) {
    let out = run_child(test, &[], Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {err}");
    let line = err
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in: {err}"))
        .to_owned();
    (err, line)
}

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Busy for `d` without parking.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A fiber that computes for 600 ms on a one-worker runtime is named on
/// stderr while it does (with its spawn site and worker), and again when it
/// lets go; a ticker fiber on the same worker could not tick meanwhile.
#[test]
fn a_fiber_that_holds_its_worker_is_named() {
    if in_child() {
        let rt = sylvan::Runtime::builder()
            .workers(1)
            .thread_name("monitored")
            .build()
            .unwrap();
        rt.block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let ticks = Arc::new(AtomicUsize::new(0));
            let (s, t) = (stop.clone(), ticks.clone());
            let ticker = sylvan::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    sylvan::sleep(Duration::from_millis(10));
                    t.fetch_add(1, Ordering::Relaxed);
                }
            });
            sylvan::sleep(Duration::from_millis(30));
            let hog = sylvan::Builder::new()
                .name("hog")
                .spawn(|| spin(Duration::from_millis(600)))
                .unwrap();
            hog.join().unwrap();
            stop.store(true, Ordering::Relaxed);
            ticker.join().unwrap();
        });
        // The end-of-hold line comes at the monitor's next sample (every
        // 20 ms): keep the process (and runtime) alive for a few.
        std::thread::sleep(Duration::from_millis(200));
        drop(rt);
        return;
    }
    let (err, held) = child_line("a_fiber_that_holds_its_worker_is_named", "has held worker");
    assert!(held.contains("'hog' (#"), "{held}");
    assert!(held.contains("spawned at tests/rt_monitor.rs:"), "{held}");
    assert!(held.contains("worker 'monitored-0'"), "{held}");
    let released = err
        .lines()
        .find(|l| l.contains("let worker 'monitored-0' go after holding it for"))
        .unwrap_or_else(|| panic!("no end-of-hold line in: {err}"));
    let ms: u64 = released
        .rsplit("for ")
        .next()
        .and_then(|s| s.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("{released}"));
    assert!((450..5_000).contains(&ms), "{released}");
    // Only the hog was reported (the ticker and the main fiber park often).
    assert_eq!(err.matches("has held worker").count(), 1, "{err}");
}

/// The threshold can be turned off, and short holds are never reported.
#[test]
fn the_warning_can_be_turned_off_and_ignores_short_holds() {
    if in_child() {
        let threshold = std::env::var("THRESHOLD").unwrap();
        let mut b = sylvan::Runtime::builder().workers(1);
        match threshold.as_str() {
            "builder-off" => b = b.blocked_warning(None),
            // Short holds against a threshold a descheduled 20 ms spin on a
            // loaded machine cannot reach.
            "one-second" => b = b.blocked_warning(Some(Duration::from_secs(1))),
            _ => {}
        }
        b.build().unwrap().block_on(|| {
            for _ in 0..5 {
                spin(Duration::from_millis(20));
                sylvan::yield_now();
            }
            if std::env::var("LONG").is_ok() {
                spin(Duration::from_millis(400));
            }
        });
        return;
    }
    let test = "the_warning_can_be_turned_off_and_ignores_short_holds";
    let limit = Duration::from_secs(60);
    // Short holds (20 ms, yielding between) are not reported.
    let out = run_child(test, &[("THRESHOLD", "one-second")], limit);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("has held worker"),
        "{err}"
    );
    // Off by the builder, and off by the environment.
    for envs in [
        &[("THRESHOLD", "builder-off"), ("LONG", "1")][..],
        &[
            ("THRESHOLD", "default"),
            ("LONG", "1"),
            ("SYLVAN_BLOCKED_WARNING", "off"),
        ][..],
    ] {
        let out = run_child(test, envs, limit);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !err.contains("has held worker"),
            "{envs:?}: {err}"
        );
    }
    // And on by default.
    let out = run_child(test, &[("THRESHOLD", "default"), ("LONG", "1")], limit);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has held worker"), "{err}");
}

/// Dropping a runtime whose fiber never comes back to sylvan (a loop here;
/// a blocking call that is not sylvan's does the same) returns after a
/// bounded wait, naming the fiber and its worker, instead of hanging.
#[test]
fn shutdown_names_a_stuck_fiber_instead_of_hanging() {
    if in_child() {
        let rt = sylvan::Runtime::builder()
            .workers(2)
            .thread_name("stuck")
            .blocked_warning(None)
            .build()
            .unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let _stuck = rt.spawn_named("spinner", move || {
            s.store(true, Ordering::SeqCst);
            let never = AtomicBool::new(false);
            while !never.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let start = Instant::now();
        drop(rt);
        eprintln!("dropped after {} ms", start.elapsed().as_millis());
        return;
    }
    let (err, line) = child_line(
        "shutdown_names_a_stuck_fiber_instead_of_hanging",
        "did not stop within",
    );
    assert!(line.contains("'spinner' (#"), "{line}");
    assert!(line.contains("spawned at tests/rt_monitor.rs:"), "{line}");
    assert!(line.contains("worker 'stuck-"), "{line}");
    let ms: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("dropped after "))
        .and_then(|s| s.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(ms < 10_000, "the drop took {ms} ms");
}

/// Spawning a named fiber on a given runtime (the test's shorthand).
trait SpawnNamed {
    fn spawn_named<F: FnOnce() + Send + 'static>(&self, name: &str, f: F)
        -> sylvan::JoinHandle<()>;
}

impl SpawnNamed for sylvan::Runtime {
    #[track_caller]
    fn spawn_named<F: FnOnce() + Send + 'static>(
        &self,
        name: &str,
        f: F,
    ) -> sylvan::JoinHandle<()> {
        let name = name.to_owned();
        self.spawn(move || {
            sylvan::Builder::new()
                .name(name)
                .spawn(f)
                .unwrap()
                .join()
                .unwrap()
        })
    }
}

/// A panic in a fiber is reported with the fiber's name, id and spawn site
/// (std's own line names only the worker thread).
#[test]
fn panic_messages_name_the_fiber() {
    if in_child() {
        sylvan::Runtime::builder()
            .workers(1)
            .build()
            .unwrap()
            .block_on(|| {
                let parser = sylvan::Builder::new()
                    .name("parser")
                    .spawn(|| panic!("boom at line 3"))
                    .unwrap();
                assert!(parser.join().unwrap_err().is_panic());
            });
        return;
    }
    let out = run_child(
        "panic_messages_name_the_fiber",
        &[],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("fiber 'parser' (#"))
        .unwrap_or_else(|| panic!("no fiber line in: {err}"));
    assert!(line.contains("spawned at tests/rt_monitor.rs:"), "{line}");
    assert!(
        line.contains("panicked (on worker thread 'sylvan-worker-0'"),
        "{line}"
    );
    assert!(
        err.contains("boom at line 3"),
        "std's report follows: {err}"
    );
}

/// `SYLVAN_DUMP_SIGNAL=USR1`: the signal prints the dump to stderr, naming
/// the fibers and what they wait on, and the program carries on.
#[test]
fn a_signal_prints_the_dump() {
    if in_child() {
        let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
        let gate = Arc::new(sylvan::sync::Event::new());
        let g = gate.clone();
        let waiter = rt.block_on(move || {
            sylvan::Builder::new()
                .name("patient")
                .spawn(move || g.wait())
                .unwrap()
        });
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: sends a signal to this process; its handler is installed.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        // The dump thread prints within a moment (250 ms at most for the
        // workers to answer); then carry on.
        std::thread::sleep(Duration::from_secs(2));
        gate.set();
        waiter.join().unwrap();
        eprintln!("still running after the dump");
        return;
    }
    let out = run_child(
        "a_signal_prints_the_dump",
        &[("SYLVAN_DUMP_SIGNAL", "usr1")],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {err}");
    assert!(err.contains("sylvan dump: "), "{err}");
    assert!(err.contains("'patient' parked on Event::wait"), "{err}");
    assert!(err.contains("still running after the dump"), "{err}");
}
