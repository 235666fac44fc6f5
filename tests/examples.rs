//! Runs the example programs the way a newcomer does and checks their output.
//! `cargo test` builds the examples next to the test binaries.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    dir.join(name)
}

#[test]
fn hello_example_runs() {
    let path = example("hello");
    let out = Command::new(&path).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e} (build it with `cargo build --examples`)",
            path.display()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("10000 fibers slept 100 ms each"),
        "{stdout}"
    );
    assert!(stdout.contains("(sum of ids 49995000)"), "{stdout}");
    assert!(stdout.contains("hello from fiber greeter"), "{stdout}");
}
