#[sylvan::main]
fn main() -> Result<(), std::rc::Rc<String>> {
    Ok(())
}
