//! Profiling driver (temporary).
fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(move || {
        if what == "yield" {
            for _ in 0..50_000_000 {
                sylvan::yield_now();
            }
            return;
        }
        for _ in 0..3000 {
            let hs: Vec<_> = (0..1000).map(|_| sylvan::spawn(|| ())).collect();
            for h in hs {
                h.join().unwrap();
            }
        }
    });
}
