//! Porting a std-threads program by changing imports (issue 20): the same
//! program written for std (tests/port/std_version.rs) and for sylvan
//! (tests/port/sylvan_version.rs) differ only in `use` lines and
//! `thread_local!` → `fiber_local!`, and compute the same thing. The sylvan
//! version runs on one worker: 40 connections, 6 client workers and a
//! server are all fibers on one thread, so nothing in it may block the
//! worker.

#[path = "port/std_version.rs"]
mod std_version;
#[path = "port/sylvan_version.rs"]
mod sylvan_version;

#[test]
fn the_port_changes_only_use_lines() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/port");
    let original = std::fs::read_to_string(dir.join("std_version.rs")).unwrap();
    let port = std::fs::read_to_string(dir.join("sylvan_version.rs")).unwrap();
    let allowed = |l: &&str| !(l.starts_with("use ") || l.ends_with("_local! {"));
    let a: Vec<&str> = original.lines().filter(allowed).collect();
    let b: Vec<&str> = port.lines().filter(allowed).collect();
    assert_eq!(a, b, "the port changed more than use lines");
    assert!(original.contains("thread_local! {") && port.contains("sylvan::fiber_local! {"));
}

#[test]
fn the_ported_program_computes_what_the_original_does() {
    let expected: u64 = (0..std_version::CLIENTS as u64).map(|n| n * 2).sum();
    let on_threads = std_version::main();
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let on_fibers = rt.block_on(sylvan_version::main);
    assert_eq!(on_threads.0, expected);
    // Every connection saw its own first request: with `thread_local!` the
    // fibers of one worker would share the counter (1, 2, … 40).
    assert_eq!(on_threads.1, vec![1; std_version::CLIENTS as usize]);
    assert_eq!(on_threads.2, std_version::CLIENTS);
    assert_eq!(on_fibers, on_threads);
}
