#[sylvan::main]
async fn main() {}
