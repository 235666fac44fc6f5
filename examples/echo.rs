//! A TCP echo server written as plain blocking code: one fiber per
//! connection, each reading and writing back what it reads.
//!
//! ```text
//! cargo run --release --example echo -- [ADDR] [--workers N]
//! ```
//! ADDR defaults to 127.0.0.1:7000. Try it with `nc 127.0.0.1 7000`;
//! Ctrl-C shuts it down.

mod common;

use std::io::{Read, Write};

use sylvan::net::TcpStream;

fn echo(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the client closed its side
        }
        conn.write_all(&buf[..n])?;
    }
}

fn main() {
    let args = common::parse_args("echo", "127.0.0.1:7000", "echo [ADDR] [--workers N]");
    common::serve("echo", &args, |conn, peer| {
        if let Err(e) = echo(conn) {
            eprintln!("echo: {peer}: {e}");
        }
    });
}
