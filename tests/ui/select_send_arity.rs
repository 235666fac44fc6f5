use sylvan::sync::channel;

fn main() {
    let (tx, _rx) = channel::unbounded::<u32>();
    sylvan::select! {
        send(tx) -> _r => {}
    }
}
