//! A TCP echo server written as plain blocking code: one fiber per
//! connection, each reading and writing back what it reads.
//!
//! ```text
//! cargo run --release --example echo -- [ADDR] [--idle-timeout DURATION] ...
//! ```
//! ADDR defaults to 127.0.0.1:7000. Try it with `nc 127.0.0.1 7000`;
//! Ctrl-C shuts it down. A client silent for `--idle-timeout` (60 s by
//! default), or one that stops reading what it is sent for
//! `--write-timeout`, is disconnected (`--help` lists the limits).

mod common;

use std::io::{self, Write};

use clap::Parser;
use common::Conn;

/// Echo back whatever each client sends.
#[derive(Parser, Debug)]
#[command(name = "echo")]
struct Args {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1:7000")]
    addr: String,
    #[command(flatten)]
    server: common::ServerArgs,
}

fn echo(mut conn: &Conn) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        // Idle: on Ctrl-C this returns 0 as if the client had left.
        let n = conn.read_idle(&mut buf)?;
        if n == 0 {
            return Ok(()); // the client closed its side
        }
        conn.write_all(&buf[..n])?;
    }
}

fn main() {
    let args: Args = common::parse_args(
        "60s",
        "Disconnect a client that sends nothing for this long (e.g. 30s, 500ms)",
    );
    common::serve("echo", &args.addr, &args.server, |conn| {
        if let Err(e) = echo(&conn) {
            common::log(format_args!("{}: {e}", conn.peer));
        }
    });
}
