//! #[sylvan::test] and #[sylvan::main] used the way users use them.

use std::time::Duration;

#[sylvan::test]
fn the_body_runs_in_a_fiber_of_a_one_worker_runtime() {
    assert!(sylvan::try_current().is_some());
    let me = std::thread::current().id();
    let other = sylvan::spawn(|| std::thread::current().id())
        .join()
        .unwrap();
    assert_eq!(me, other, "one worker by default");
}

#[sylvan::test(workers = 3, stack_size = 131072)]
fn arguments_configure_the_runtime() {
    let hs: Vec<_> = (0..300)
        .map(|_| {
            sylvan::spawn(|| {
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_micros(200) {
                    std::hint::spin_loop();
                }
                std::thread::current().name().map(String::from)
            })
        })
        .collect();
    let mut names: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    names.sort();
    names.dedup();
    assert!(names.len() > 1, "several workers ran fibers: {names:?}");
    assert!(names
        .iter()
        .all(|n| n.as_deref().unwrap_or("").starts_with("sylvan-worker-")));
}

#[sylvan::test]
#[should_panic(expected = "the original message")]
fn a_panic_fails_the_test_with_its_message() {
    sylvan::sleep(Duration::from_millis(1));
    panic!("the original message");
}

#[sylvan::test]
fn tests_may_return_results() -> Result<(), String> {
    let v: u32 = "42".parse().map_err(|e| format!("{e}"))?;
    assert_eq!(v, 42);
    Ok(())
}
