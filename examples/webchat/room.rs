//! The chat room: who is in it, the recent history, and the one sequence in
//! which every event reaches every member.
//!
//! **Contract.** Every event (a message, a join, a leave, a rename) gets the
//! next sequence number, goes into the history and into the outgoing queue of
//! every member in one step under the room's lock, so all members and
//! `GET /api/history` see the events in the same order. Publishing never
//! waits: a member whose bounded queue (holding [`QUEUE`] events) is full is
//! too slow, is removed from the room and has its socket shut down, and the
//! others are told it left. The lock is a `std` mutex because nothing done
//! under it can park (`try_send` never blocks).

use std::collections::{BTreeMap, VecDeque};
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sylvan::sync::channel::{Sender, TrySendError};
use tungstenite::Utf8Bytes;

use crate::common::{self, Conn};

/// How many events may wait for one member before it counts as too slow.
pub const QUEUE: usize = 256;
/// How many events `GET /api/history` returns (the most recent ones).
pub const HISTORY: usize = 100;
/// The longest message, in characters.
pub const MAX_TEXT: usize = 1000;
/// The longest nickname, in characters.
pub const MAX_NAME: usize = 24;

/// One member: where its events go, and its socket (to cut it off).
struct Member {
    name: String,
    tx: Sender<Utf8Bytes>,
    conn: Arc<Conn>,
}

/// What the lock protects.
#[derive(Default)]
struct State {
    members: BTreeMap<u64, Member>,
    /// The last [`HISTORY`] events, as the JSON text sent to members.
    history: VecDeque<Utf8Bytes>,
    next_member: u64,
    /// The sequence number of the next event.
    next_seq: u64,
}

/// The one room of the server, shared by every connection.
#[derive(Default)]
pub struct Room {
    state: Mutex<State>,
}

impl Room {
    /// The room's state (a panic elsewhere does not poison the room: every
    /// step under the lock leaves it consistent).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a member that wants to be called `wanted`. It gets a unique,
    /// sanitised name; its first event (queued through `tx` before any
    /// other) is a `welcome` with that name and who is here, then everyone,
    /// itself included, gets its `join`. Returns the member's key.
    pub fn join(&self, wanted: &str, tx: Sender<Utf8Bytes>, conn: Arc<Conn>) -> u64 {
        let mut state = self.lock();
        let name = unique_name(&state, &sanitize_name(wanted));
        let online: Vec<&str> = state.members.values().map(|m| m.name.as_str()).collect();
        let welcome = json!({"type": "welcome", "name": name, "online": online});
        // A new queue has room.
        let _ = tx.try_send(Utf8Bytes::from(welcome.to_string()));
        let id = state.next_member;
        state.next_member += 1;
        state.members.insert(
            id,
            Member {
                name: name.clone(),
                tx,
                conn,
            },
        );
        let dropped = publish(&mut state, json!({"type": "join", "name": name}));
        drop(state);
        report(dropped);
        id
    }

    /// Posts `text` from `name` (a member's, or one given to the HTTP API),
    /// returning the event's sequence number; `text` must have passed
    /// [`clean_text`].
    pub fn say(&self, name: &str, text: &str) -> u64 {
        post(self.lock(), name, text)
    }

    /// Renames member `id` to (a sanitised, unique form of) `wanted`;
    /// returns the new name, or `None` if `id` is no longer in the room.
    pub fn rename(&self, id: u64, wanted: &str) -> Option<String> {
        let mut state = self.lock();
        let old = state.members.get(&id)?.name.clone();
        let wanted = sanitize_name(wanted);
        if wanted == old {
            return Some(old);
        }
        let name = unique_name(&state, &wanted);
        state.members.get_mut(&id)?.name = name.clone();
        let dropped = publish(
            &mut state,
            json!({"type": "rename", "old": old, "name": name}),
        );
        drop(state);
        report(dropped);
        Some(name)
    }

    /// Posts `text` from member `id` under its current name; `None` if it
    /// is no longer in the room. `text` must have passed [`clean_text`].
    pub fn member_says(&self, id: u64, text: &str) -> Option<u64> {
        let state = self.lock();
        let name = state.members.get(&id)?.name.clone();
        Some(post(state, &name, text))
    }

    /// Removes member `id` (if the room has not already dropped it) and
    /// tells the others. Its queue's sender is dropped here, so its writer
    /// ends once it has sent what is queued.
    pub fn leave(&self, id: u64) {
        let mut state = self.lock();
        let Some(member) = state.members.remove(&id) else {
            return;
        };
        let dropped = publish(
            &mut state,
            json!({"type": "leave", "name": member.name, "reason": "left"}),
        );
        drop(state);
        report(dropped);
    }

    /// The history as a JSON array, oldest first.
    pub fn history_json(&self) -> String {
        let state = self.lock();
        let mut out = String::from("[");
        for (i, event) in state.history.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(event.as_str());
        }
        out.push(']');
        out
    }
}

/// Publishes a message from `name` under the lock `state`, then lets the
/// lock go before reporting who was dropped; returns its sequence number.
fn post(mut state: MutexGuard<'_, State>, name: &str, text: &str) -> u64 {
    let seq = state.next_seq;
    let dropped = publish(
        &mut state,
        json!({"type": "message", "name": name, "text": text}),
    );
    drop(state);
    report(dropped);
    seq
}

/// Gives `event` the next sequence number and the time, appends it to the
/// history and queues it for every member. Members whose queue is full are
/// removed and cut off, and their leaving is published in turn. Returns the
/// names of the members dropped.
fn publish(state: &mut State, event: Value) -> Vec<String> {
    let mut dropped = Vec::new();
    let mut pending = vec![event];
    while let Some(mut event) = pending.pop() {
        let seq = state.next_seq;
        state.next_seq += 1;
        event["seq"] = seq.into();
        event["time"] = unix_millis().into();
        let text = Utf8Bytes::from(event.to_string());
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(text.clone());
        // A closed queue (its writer has ended) is left alone: its
        // connection's fiber removes the member as it ends.
        let full: Vec<u64> = state
            .members
            .iter()
            .filter(|(_, m)| matches!(m.tx.try_send(text.clone()), Err(TrySendError::Full(_))))
            .map(|(id, _)| *id)
            .collect();
        for id in full {
            if let Some(m) = state.members.remove(&id) {
                // Wakes its reader (end of stream) and fails its writer.
                let _ = m.conn.shutdown(Shutdown::Both);
                pending.push(json!({"type": "leave", "name": m.name, "reason": "too slow"}));
                dropped.push(m.name);
            }
        }
    }
    dropped
}

/// Logs the members [`publish`] dropped (outside the room's lock).
fn report(dropped: Vec<String>) {
    for name in dropped {
        common::log(format_args!(
            "{name:?} could not keep up and was disconnected"
        ));
    }
}

/// Now, in milliseconds since the Unix epoch (what JavaScript's `Date` takes).
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A nickname anyone can read: letters, digits, `-`, `_`, `.` and single
/// spaces, at most [`MAX_NAME`] characters; `guest` if nothing is left.
pub fn sanitize_name(wanted: &str) -> String {
    let kept: String = wanted
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        .collect();
    let name = kept
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name: String = name.chars().take(MAX_NAME).collect();
    match name.trim() {
        "" => "guest".to_string(),
        name => name.to_string(),
    }
}

/// `name`, or `name-2`, `name-3`... : the first that no member has.
fn unique_name(state: &State, name: &str) -> String {
    let taken = |n: &str| state.members.values().any(|m| m.name == n);
    if !taken(name) {
        return name.to_string();
    }
    (2..)
        .map(|i| {
            let suffix = format!("-{i}");
            let stem: String = name.chars().take(MAX_NAME - suffix.len()).collect();
            format!("{stem}{suffix}")
        })
        .find(|n| !taken(n))
        .expect("fewer members than numbers")
}

/// A message as the room shows it: one line (control characters become
/// spaces), trimmed, 1 to [`MAX_TEXT`] characters; otherwise why not.
pub fn clean_text(text: &str) -> Result<String, String> {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    match line.chars().count() {
        0 => Err("empty message".to_string()),
        n if n > MAX_TEXT => Err(format!(
            "message too long ({n} characters, at most {MAX_TEXT})"
        )),
        _ => Ok(line.to_string()),
    }
}
