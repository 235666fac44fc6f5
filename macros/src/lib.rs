//! Procedural macros for sylvan: `#[sylvan::main]`, `#[sylvan::test]` and
//! `select!`. Not built yet (the macros issue).
