//! Misuse of #[sylvan::main] / #[sylvan::test] is a compile error with a span
//! at the problem and a message saying what is allowed (trybuild snapshots in
//! tests/ui). Refresh the snapshots with `TRYBUILD=overwrite cargo test --test macros_ui`.

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
