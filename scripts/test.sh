#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, then every
# unit, integration and end-to-end test (benchmarks run once with tiny inputs
# in criterion's test mode so they cannot rot).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
# Compiler warnings already failed the clippy step above (it checks every
# target); changing RUSTFLAGS here would rebuild everything a second time.
# cargo builds every target, the `teller` binary included, before it runs
# any test: perf/'s tests start target/debug/teller (perf/tests/common/teller.rs).
cargo test --workspace --all-targets
