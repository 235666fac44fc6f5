#[sylvan::test]
async fn my_test() {}

fn main() {}
