#[sylvan::main]
fn start() {}

fn main() {
    start();
}
