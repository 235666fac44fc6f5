use sylvan::sync::channel;

fn main() {
    let (tx, _rx) = channel::unbounded::<u32>();
    // A Sender where a Receiver belongs.
    sylvan::select! {
        recv(tx) -> _v => {}
    }
}
