#!/usr/bin/env bash
# Builds TellerDB (release) and starts a node with the embedded default
# configuration: 127.0.0.1:5433, data in ./teller-data, one shard per CPU.
# Extra arguments go to `teller start` (see `teller start --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --release --bin teller -- start "$@"
