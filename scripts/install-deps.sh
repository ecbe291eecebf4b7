#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and test TellerDB:
# the Rust toolchain components (rustfmt, clippy), PostgreSQL's client tools
# (psql, used by the end-to-end tests) and server (the workload tests compare
# against a private PostgreSQL), pgbench and sysbench (scripts/compare-postgres.sh).
# Idempotent and quick when all is there.
set -euo pipefail

need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# The workload tests (perf/) run a private PostgreSQL server.
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || need_apt+=(postgresql)
command -v pgbench >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 \
  || need_apt+=(postgresql-contrib)
# scripts/compare-postgres.sh also drives sysbench (oltp_point_select,
# oltp_read_write) with its pgsql driver.
command -v sysbench >/dev/null 2>&1 || need_apt+=(sysbench)
# The callgrind benchmarks (benches/, gungraun) run under valgrind.
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
# gungraun's runner must match the gungraun library version in Cargo.lock;
# `cargo test --all-targets` runs the callgrind bench targets through it.
gungraun_version="$(awk '/^name = "gungraun"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
if [ -n "$gungraun_version" ] \
  && ! gungraun-runner --version 2>/dev/null | grep -qF "$gungraun_version"; then
  echo "install-deps: installing gungraun-runner $gungraun_version (a few minutes, once)"
  cargo install gungraun-runner --version "$gungraun_version" --locked --quiet
fi
echo "install-deps: ok ($(cargo --version), $(psql --version))"
