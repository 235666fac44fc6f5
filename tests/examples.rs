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

#[test]
fn echo_example_echoes_for_many_clients() {
    use std::io::{BufRead, BufReader, Read, Write};
    let path = example("echo");
    let mut child = Command::new(&path)
        .args(["127.0.0.1:0", "--workers", "2"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    // "echo: listening on 127.0.0.1:PORT"
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let clients: Vec<_> = (0..16u8)
        .map(|c| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                for i in 0..100u8 {
                    let msg = [c, i, c.wrapping_mul(i)];
                    s.write_all(&msg).unwrap();
                    let mut back = [0u8; 3];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                }
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join()).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(results.iter().all(Result::is_ok), "a client failed");
}
