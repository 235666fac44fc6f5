//! A line-based chat room: connect with `nc`/`telnet`, pick a nickname, and
//! every line you type goes to everyone else. Each client has a reader fiber
//! and a writer fiber joined by a bounded queue; a client too slow to keep up
//! with its queue is disconnected instead of stalling the room.
//!
//! Commands: `/nick NAME`, `/who`, `/quit`.
//!
//! ```text
//! cargo run --release --example chat -- [ADDR] [--idle-timeout DURATION] ...
//! ```
//!
//! A client silent for `--idle-timeout` (10 minutes by default) is
//! disconnected; on Ctrl-C everyone leaves the room at once (`--help` lists
//! the other limits).

mod common;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use clap::Parser;
use common::Conn;
use sylvan::sync::channel::{self, Sender, TrySendError};

/// A line chat room for nc and telnet.
#[derive(Parser, Debug)]
#[command(name = "chat")]
struct Args {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1:7070")]
    addr: String,
    #[command(flatten)]
    server: common::ServerArgs,
}

/// How many lines may wait for one client before it counts as too slow.
const QUEUE: usize = 256;
/// The longest line accepted, in bytes.
const MAX_LINE: usize = 4096;

struct Member {
    nick: String,
    tx: Sender<Arc<str>>,
    conn: Arc<Conn>,
}

#[derive(Default)]
struct Room {
    members: Mutex<BTreeMap<u64, Member>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn valid_nick(n: &str) -> bool {
    (1..=16).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Room {
    /// Sends `line` to everyone but `from`; members whose queue is full are
    /// dropped from the room and their connection shut down.
    fn broadcast(&self, from: Option<u64>, line: &str) {
        let line: Arc<str> = Arc::from(format!("{line}\r\n"));
        let mut dropped = Vec::new();
        {
            let mut members = lock(&self.members);
            let full: Vec<u64> = members
                .iter()
                .filter(|(id, _)| Some(**id) != from)
                .filter(|(_, m)| matches!(m.tx.try_send(line.clone()), Err(TrySendError::Full(_))))
                .map(|(id, _)| *id)
                .collect();
            for id in full {
                if let Some(m) = members.remove(&id) {
                    let _ = m.conn.shutdown(Shutdown::Both);
                    dropped.push(m.nick);
                }
            }
        }
        // Tell the others, outside the lock. This recursion ends: every
        // level removes the members it reports.
        for nick in dropped {
            common::log(format_args!(
                "{nick} could not keep up and was disconnected"
            ));
            self.broadcast(None, &format!("* {nick} was disconnected (too slow)"));
        }
    }

    /// Adds a member called `nick` unless that nickname is taken, and
    /// greets it through `tx` before anyone else can send it a line. The
    /// check and the insert are one step under the lock, so two clients
    /// asking for the same name at once cannot both get it.
    fn join(&self, nick: &str, tx: Sender<Arc<str>>, conn: Arc<Conn>) -> Option<u64> {
        let mut members = lock(&self.members);
        if members.values().any(|m| m.nick == nick) {
            return None;
        }
        let hello = format!("Hello {nick}! {}\r\n", who(&members));
        tx.try_send(Arc::from(hello)).ok(); // a new queue has room
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let member = Member {
            nick: nick.to_string(),
            tx,
            conn,
        };
        members.insert(id, member);
        Some(id)
    }

    fn who(&self) -> String {
        who(&lock(&self.members))
    }
}

fn who(members: &BTreeMap<u64, Member>) -> String {
    let nicks: Vec<&str> = members.values().map(|m| m.nick.as_str()).collect();
    format!("* {} here: {}", nicks.len(), nicks.join(", "))
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = Read::take(reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(Some(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    ))
}

fn session(room: &Room, conn: Conn) -> io::Result<()> {
    let conn = Arc::new(conn);
    // Waiting for a line is idle: on Ctrl-C the read ends as if the client
    // had left, and the client leaves the room the usual way.
    let mut reader = BufReader::new(conn.idle_reader());
    (&*conn).write_all(b"Welcome to sylvan chat! Your nickname?\r\n")?;
    let (tx, rx) = channel::bounded::<Arc<str>>(QUEUE);
    let (id, mut nick) = loop {
        let Some(line) = read_line(&mut reader)? else {
            return Ok(());
        };
        let wanted = line.trim();
        if !valid_nick(wanted) {
            (&*conn).write_all(b"Nicknames are 1-16 letters, digits, - or _. Try again:\r\n")?;
        } else if let Some(id) = room.join(wanted, tx.clone(), conn.clone()) {
            break (id, wanted.to_string());
        } else {
            (&*conn).write_all(b"That nickname is taken. Try another:\r\n")?;
        }
    };
    // The room holds our Sender now; the writer fiber drains the queue.
    drop(tx);
    let writer = {
        let conn = conn.clone();
        sylvan::spawn(move || {
            for line in rx {
                if (&*conn).write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    room.broadcast(Some(id), &format!("* {nick} joined"));

    let result = (|| -> io::Result<()> {
        while let Some(line) = read_line(&mut reader)? {
            let mut words = line.splitn(2, ' ');
            match words.next().unwrap_or("") {
                "/quit" => break,
                "/who" => {
                    let who = room.who();
                    let me = lock(&room.members).get(&id).map(|m| m.tx.clone());
                    if let Some(tx) = me {
                        let _ = tx.try_send(Arc::from(format!("{who}\r\n")));
                    }
                }
                "/nick" => {
                    let new = words.next().unwrap_or("").trim().to_string();
                    let mut members = lock(&room.members);
                    let taken = members.values().any(|m| m.nick == new);
                    let ok = valid_nick(&new) && !taken;
                    let Some(me) = members.get_mut(&id) else {
                        break;
                    };
                    if ok {
                        let old = std::mem::replace(&mut me.nick, new.clone());
                        drop(members);
                        nick = new;
                        room.broadcast(None, &format!("* {old} is now {nick}"));
                    } else {
                        let _ = me.tx.try_send(Arc::from("* cannot use that nickname\r\n"));
                    }
                }
                _ if line.trim().is_empty() => {}
                _ => room.broadcast(Some(id), &format!("[{nick}] {line}")),
            }
            // Fibers are cooperative and a fast sender's socket always has
            // another line ready: let the writer fibers run between lines, so
            // a burst is paced by the room rather than overflowing queues.
            // (The runtime's IO budget yields only every 128 reads, and one
            // buffered read can hold hundreds of lines.)
            sylvan::yield_now();
        }
        Ok(())
    })();
    // Leave: dropping our Sender (in the room) ends the writer once it has
    // flushed.
    let was_member = lock(&room.members).remove(&id).is_some();
    if was_member {
        room.broadcast(None, &format!("* {nick} left"));
    }
    let _ = writer.join();
    let _ = conn.shutdown(Shutdown::Both);
    result
}

fn main() {
    let args: Args = common::parse_args(
        "10m",
        "Disconnect a client that sends nothing for this long (e.g. 30m, 90s)",
    );
    let room = Arc::new(Room::default());
    common::serve("chat", &args.addr, &args.server, move |conn| {
        let peer = conn.peer;
        if let Err(e) = session(&room, conn) {
            common::log(format_args!("{peer}: {e}"));
        }
    });
}
