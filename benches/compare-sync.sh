#!/usr/bin/env bash
# Same-run comparison of the sync workloads: sylvan and std (benches/sync.rs)
# and tokio (benches/peers, its own workspace so the test command never
# builds tokio). Usage: bash benches/compare-sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --manifest-path benches/peers/Cargo.toml --bin sync-tokio
cargo bench --quiet --bench sync 2>/dev/null
benches/peers/target/release/sync-tokio
