#!/usr/bin/env bash
# Same-run comparison of TCP echo throughput: sylvan's examples/echo.rs
# against the idiomatic tokio echo server (benches/peers/tokio), both with 2
# workers, driven by the same std-thread load generator (64 connections,
# 64-byte messages, request/response). Prints the median and spread of
# RUNS runs of SECS seconds each.
# Usage: bash benches/compare-echo.sh [RUNS] [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-5}
CONNS=64
SIZE=64
cargo build --release --quiet --example echo
cargo build --release --quiet --manifest-path benches/peers/tokio/Cargo.toml --bins
PEERS=benches/peers/tokio/target/release
median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%d (min %d, max %d)", m, a[1], a[NR]}'; }
run() { # name port command...
  local name=$1 port=$2; shift 2
  "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local results=()
  for _ in $(seq "$RUNS"); do
    results+=("$($PEERS/echo-load 127.0.0.1:$port $CONNS $SIZE $SECS)")
  done
  kill $pid; wait $pid 2>/dev/null || true
  printf '%-8s %s msg/s\n' "$name" "$(printf '%s\n' "${results[@]}" | median)"
}
echo "TCP echo, $CONNS connections x $SIZE-byte messages, ${SECS}s x $RUNS runs, 2 workers"
run sylvan 7000 target/release/examples/echo 127.0.0.1:7000 --workers 2
run tokio 7001 $PEERS/echo-tokio 127.0.0.1:7001 2
