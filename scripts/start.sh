#!/usr/bin/env bash
# Builds TellerDB (release) and starts a node with the embedded default
# configuration: 127.0.0.1:5433, data in ./teller-data, one shard per CPU.
# Extra arguments go to `teller start` (see `teller start --help`).
# Needs only a Rust toolchain; the test dependencies are scripts/install-deps.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "start: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
exec cargo run --release --bin teller -- start "$@"
