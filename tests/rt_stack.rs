//! Fiber stacks: 100,000 live fibers on a stock kernel, overflow reports, and
//! a clear error when the kernel refuses a stack.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use support::{child_role, run_child, Gate, Signal};

#[test]
fn hundred_thousand_live_fibers() {
    const N: usize = 100_000;
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let gate = Arc::new(Gate::new());
    let parked = Arc::new(AtomicUsize::new(0));
    let all_parked = Arc::new(Signal::new());
    let rss_before = support::rss_bytes();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (gate, parked, all_parked) = (gate.clone(), parked.clone(), all_parked.clone());
            rt.spawn(move || {
                if parked.fetch_add(1, Ordering::AcqRel) + 1 == N {
                    all_parked.notify();
                }
                gate.wait();
                i as u64
            })
        })
        .collect();
    all_parked.wait_for(1);
    let per_fiber = support::rss_bytes().saturating_sub(rss_before) / N;
    eprintln!(
        "100k live fibers: {per_fiber} bytes RSS each (debug build), guard markers: {:?}",
        sylvan::uses_guard_markers()
    );
    // The release-build figure is measured by the benches; this bound only
    // catches gross regressions (e.g. every fiber touching its whole stack).
    assert!(per_fiber < 32 * 1024, "{per_fiber} bytes per idle fiber");
    gate.open();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (N as u64 - 1) * N as u64 / 2);
}

#[test]
fn stack_overflow_is_reported_and_aborts() {
    if child_role().as_deref() == Some("overflow") {
        let h = sylvan::Builder::new()
            .name("deep-recursion")
            .stack_size(64 * 1024)
            .spawn(|| {
                #[allow(unconditional_recursion)]
                fn recurse(n: u64) -> u64 {
                    let buf = [n; 32];
                    std::hint::black_box(&buf);
                    recurse(n + 1) + buf[3]
                }
                recurse(0)
            })
            .unwrap();
        let _ = h.join();
        unreachable!("the overflow must abort the process");
    }
    let out = run_child("stack_overflow_is_reported_and_aborts", "overflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("sylvan: fiber 'deep-recursion' (#")
            && stderr.contains("overflowed its stack of 65536 bytes"),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("Builder::stack_size"),
        "the report names the fix:\n{stderr}"
    );
}

#[test]
fn other_segfaults_are_not_reported_as_overflows() {
    if child_role().as_deref() == Some("segv") {
        sylvan::spawn(|| {
            // A real fault outside any guard page: read an inaccessible page.
            // SAFETY: an anonymous PROT_NONE mapping has no preconditions.
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(page, libc::MAP_FAILED);
            // SAFETY: not safe by design: this read faults, which is the point
            // of this child process; nothing runs after it.
            unsafe { std::ptr::read_volatile(page as *const u8) };
        })
        .join()
        .unwrap();
        unreachable!();
    }
    let out = run_child("other_segfaults_are_not_reported_as_overflows", "segv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("overflowed"), "stderr:\n{stderr}");
}

#[test]
fn refused_stack_is_an_error_naming_the_limit() {
    if child_role().as_deref() == Some("refuse") {
        let rt = sylvan::Runtime::builder()
            .workers(1)
            .stack_size(64 << 20)
            .build()
            .unwrap();
        // Start everything that needs memory first, then cap the address space.
        assert_eq!(sylvan::spawn(|| 1).join().unwrap(), 1);
        let vsz: u64 = std::fs::read_to_string("/proc/self/statm")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 4096;
        let lim = libc::rlimit {
            rlim_cur: vsz + (256 << 20),
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
        let err = sylvan::Builder::new()
            .stack_size(512 << 20)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        println!("BUILDER-ERROR: {err}");
        // A default-size fiber gets its stack when it starts: refused then,
        // it does not run, the runtime says why on stderr, and its handle
        // reports it cancelled.
        let err = rt.spawn(|| ()).join().unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        println!("SPAWN-NOT-STARTED");
        // Smaller stacks still work afterwards.
        assert_eq!(sylvan::spawn(|| 2).join().unwrap(), 2);
        println!("CHILD-OK");
        return;
    }
    let out = run_child("refused_stack_is_an_error_naming_the_limit", "refuse");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("CHILD-OK"), "{stdout}");
    assert!(stdout.contains("SPAWN-NOT-STARTED"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (text, tag) in [(&*stdout, "BUILDER-ERROR:"), (&*stderr, "not started:")] {
        let line = text
            .lines()
            .find_map(|l| l.split_once(tag))
            .map(|(_, msg)| msg)
            .unwrap_or_else(|| panic!("no {tag} in {text}"));
        assert!(line.contains("vm.max_map_count"), "{line}");
        assert!(
            line.contains("RLIMIT_AS"),
            "the address-space limit in force is named: {line}"
        );
        assert!(line.contains("sysctl -w vm.max_map_count="), "{line}");
    }
}
