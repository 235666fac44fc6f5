use std::time::Duration;
use sylvan::sync::channel;

fn main() {
    let (_tx, rx) = channel::unbounded::<u32>();
    sylvan::select! {
        recv(rx) -> _v => {}
        timeout(Duration::from_secs(1)) => {}
        default => {}
    }
}
