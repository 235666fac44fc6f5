//! A TCP port forwarder: every connection to ADDR is relayed to TARGET, both
//! directions at once (a fiber each), with half-close passed through — when
//! one side finishes sending, the other side's write half is shut down and
//! the opposite direction keeps flowing until it finishes too.
//!
//! ```text
//! cargo run --release --example portforward -- ADDR TARGET [--workers N]
//! cargo run --release --example portforward -- 127.0.0.1:8000 example.com:80
//! ```

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use sylvan::net::TcpStream;

/// Copies `from` to `to` until `from` ends, then shuts down `to`'s write half
/// so the far side sees end-of-stream too. Returns the bytes copied.
fn pipe(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0u64;
    loop {
        let n = match (&*from).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = to.shutdown(Shutdown::Both);
                return Err(e);
            }
        };
        if let Err(e) = (&*to).write_all(&buf[..n]) {
            let _ = from.shutdown(Shutdown::Both);
            return Err(e);
        }
        total += n as u64;
    }
    // Ignore NotConnected: the peer may have closed both halves already.
    let _ = to.shutdown(Shutdown::Write);
    Ok(total)
}

fn forward(client: TcpStream, target: &str) -> io::Result<(u64, u64)> {
    let upstream = sylvan::timeout(Duration::from_secs(10), || TcpStream::connect(target))
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {target} timed out"),
            )
        })??;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let up = {
        let (c, u) = (client.clone(), upstream.clone());
        sylvan::spawn(move || pipe(&c, &u))
    };
    let down = pipe(&upstream, &client);
    let up = up.join().map_err(|e| io::Error::other(e.to_string()))?;
    Ok((up?, down?))
}

fn main() {
    let usage = "portforward ADDR TARGET [--workers N]   (e.g. 127.0.0.1:8000 example.com:80)";
    let args = common::parse_args("portforward", "127.0.0.1:8000", usage);
    let Some(target) = args.rest.first().cloned() else {
        eprintln!("portforward: missing TARGET\nusage: {usage}");
        std::process::exit(2)
    };
    let shown = target.clone();
    eprintln!("portforward: forwarding to {shown}");
    common::serve("portforward", &args, move |conn, peer| {
        if let Err(e) = forward(conn, &target) {
            eprintln!("portforward: {peer}: {e}");
        }
    });
}
