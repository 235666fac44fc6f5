//! `signal::wait_for` when the reader thread's wake-up socket fails under
//! it (a program closed or replaced a descriptor it does not own): the
//! reader says so, stops, and wakes every waiter; the waits make a new pair
//! and reader, and later deliveries reach them. A test binary of its own:
//! it replaces one of sylvan's descriptors.
use std::time::{Duration, Instant};

/// This process's sockets, by number (the signal pair's two ends are the
/// only ones: this test opens none).
fn sockets() -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|d| {
            let d = d.ok()?;
            let target = std::fs::read_link(d.path()).ok()?;
            target
                .to_string_lossy()
                .starts_with("socket:")
                .then(|| d.file_name().to_string_lossy().parse().ok())?
        })
        .collect();
    v.sort();
    v
}

/// Raises `sig` every 5 ms until `done`, for at most 10 s.
fn raise_until(sig: i32, done: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "not done after 10 s of deliveries");
        // SAFETY: raise has no memory-safety preconditions.
        unsafe { libc::raise(sig) };
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn waits_carry_on_after_the_wake_up_socket_fails() {
    // Until sylvan installs its handler, a raise is ignored (not fatal).
    // SAFETY: SIG_IGN for signals this test owns.
    unsafe {
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
    }
    assert!(sockets().is_empty());
    // Start the machinery, with the handler on both signals: one delivery
    // of each seen by a thread.
    for sig in [libc::SIGUSR1, libc::SIGUSR2] {
        let first = std::thread::spawn(move || sylvan::signal::wait_for(&[sig]).unwrap());
        raise_until(sig, || first.is_finished());
        assert_eq!(first.join().unwrap(), sig);
    }
    let pair = sockets();
    assert_eq!(pair.len(), 2, "the wake-up pair: {pair:?}");
    // `UnixStream::pair` gives the read end the lower number.
    let read_end = pair[0];

    // Two waiters, a fiber and a plain thread.
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let fiber = rt.spawn(|| sylvan::signal::wait_for(&[libc::SIGUSR1]).unwrap());
    let thread = std::thread::spawn(|| sylvan::signal::wait_for(&[libc::SIGUSR1]).unwrap());
    // Not needed for the outcome (a wait that starts after the failure
    // makes the new pair itself); it makes the likelier case the one
    // tested: both already parked when the reader stops.
    std::thread::sleep(Duration::from_millis(50));

    // Replace the read end with /dev/null: the reader's next read on the
    // number fails (not a socket).
    // SAFETY: a NUL-terminated path; dup2 onto a number that is open.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        assert!(null >= 0);
        assert_eq!(libc::dup2(null, read_end), read_end);
        libc::close(null);
    }
    // The reader notices at its next wake-up: a delivery of SIGUSR2, which
    // nobody waits for (so the waits cannot end on it). The stopping reader
    // wakes the waiters, which make a new pair and reader (the old write
    // end stays open: a handler may still hold its number).
    raise_until(libc::SIGUSR2, || sockets().len() == 3);
    assert!(!fiber.is_finished() && !thread.is_finished());
    raise_until(libc::SIGUSR1, || {
        fiber.is_finished() && thread.is_finished()
    });
    assert_eq!(fiber.join().unwrap(), libc::SIGUSR1);
    assert_eq!(thread.join().unwrap(), libc::SIGUSR1);

    // A wait started now works too.
    let late = std::thread::spawn(|| sylvan::signal::wait_for(&[libc::SIGUSR1]).unwrap());
    raise_until(libc::SIGUSR1, || late.is_finished());
    assert_eq!(late.join().unwrap(), libc::SIGUSR1);
}
