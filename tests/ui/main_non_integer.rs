#[sylvan::main(workers = "four")]
fn main() {}
