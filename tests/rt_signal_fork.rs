//! `signal::wait_for` in a child forked (without exec) after the parent
//! waited for signals, as pre-fork servers do: threads do not survive
//! fork, so the child makes its own wake-up pair and reader (found by
//! review: the child waited forever). A test binary of its own: it forks.
use std::time::{Duration, Instant};

#[test]
fn wait_for_works_in_a_forked_child() {
    // Until sylvan installs its handler, a raise is ignored (not fatal).
    // SAFETY: SIG_IGN for a signal this test owns.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
    // Start the machinery in the parent: one delivery seen by a thread.
    let t = std::thread::spawn(|| sylvan::signal::wait_for(&[libc::SIGUSR1]).unwrap());
    let until = Instant::now() + Duration::from_secs(10);
    while !t.is_finished() {
        assert!(Instant::now() < until);
        // SAFETY: raise has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(t.join().unwrap(), libc::SIGUSR1);

    // SAFETY: the child only waits for a signal and then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // Child: a helper thread sends SIGUSR1 to this process every 10 ms.
        std::thread::spawn(|| loop {
            // SAFETY: kill/getpid have no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
            std::thread::sleep(Duration::from_millis(10));
        });
        let got = sylvan::signal::wait_for(&[libc::SIGUSR1]);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe {
            libc::_exit(if matches!(got, Ok(s) if s == libc::SIGUSR1) {
                0
            } else {
                2
            })
        };
    }
    let until = Instant::now() + Duration::from_secs(5);
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if Instant::now() > until {
            // SAFETY: kill our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: reap it.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the forked child's wait_for did not return within 5 s (10 ms deliveries)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
}
