//! Networking for sylvan fibers: `TcpListener`, `TcpStream`, `UdpSocket`, unix
//! sockets and DNS that park the calling fiber instead of blocking the worker.
//!
//! Not built yet: this crate is the place for the net issue's work, which
//! builds on the runtime's parking protocol (`sylvan_runtime::park`).

#![forbid(unsafe_code)]
