//! What the loom models share: running a control that must fail.

/// Runs the `#[ignore]`d control test `name` of the current test binary in
/// a child process (a loom deadlock aborts, so it cannot be caught here)
/// and checks that loom reported a deadlock; returns the child's output.
pub fn assert_deadlocks(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("deadlock"),
        "loom found no deadlock in {name}:\n{text}"
    );
    text.into_owned()
}
