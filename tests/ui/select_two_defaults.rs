use sylvan::sync::channel;

fn main() {
    let (_tx, rx) = channel::unbounded::<u32>();
    sylvan::select! {
        recv(rx) -> _v => {}
        default => {}
        default => {}
    }
}
