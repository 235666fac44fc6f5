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

/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;

fn echo(mut conn: &Conn) -> io::Result<()> {
    loop {
        // Idle: wait for the client without holding a buffer, so that an
        // idle connection costs little more than its fiber's first stack
        // page (a 16 KiB buffer on the stack would keep four more pages
        // resident for as long as the connection lives). On Ctrl-C this
        // returns 0 as if the client had left.
        if conn.while_idle(|| conn.peek(&mut [0u8; 1]))? == 0 {
            return Ok(()); // the client closed its side
        }
        // Busy: a buffer on the heap, freed when the client goes quiet.
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = conn.read_idle(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n])?;
            if n < buf.len() {
                break; // most likely all there was: back to waiting idle
            }
        }
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
