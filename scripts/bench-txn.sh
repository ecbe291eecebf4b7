#!/usr/bin/env bash
# Transaction latency and throughput by placement, on a private TellerDB node:
#
#   update                single-row UPDATE (its own transaction)
#   transfer same-range   two rows in one range: a single-range transaction (one-phase commit)
#   transfer same-shard   two rows on one shard, in two ranges: a multi-range commit
#   transfer cross-shard  two rows on two shards
#
# each at every client count (default 1, 8, 32), each client on its own rows
# (so the figures are the path, not contention), repeated --rounds times
# (the rounds outermost, so that machine noise spreads over every cell); then
# a table of medians (min..max) of throughput, p50 and p99 (HDR histograms of
# the workload driver), with whether each run's placement held.
#
#   scripts/bench-txn.sh [options]
#     --rows N            rows of txn_accounts (default 4000)
#     --clients "1 8 32"  client counts
#     --duration S        measured seconds per run (default 10)
#     --ramp-up S         unmeasured seconds before each run (default 2)
#     --rounds N          runs of each cell (default 3)
#     --shards N          shards of the node (default: online CPUs, at least 2)
#     --split-bytes N     range size while the table is cut up (default 4096)
#     --profile P         release (default) or debug
#     --out DIR           results (default perf/results/txn-<UTC time>)
#     --smoke             debug build, 600 rows, clients "1 2", 1 s runs, 1 round
#
# How placement is made and kept. The node first runs with --split-bytes
# ranges and a rebalancer every 50 ms, so that the loaded table is cut into
# many small ranges spread over the shards (`txn placement` waits until every
# shard owns at least two ranges of it and nothing has changed for 5 s). It
# is then restarted on the same data with the default 64 MiB split size, no
# rebalancer and no load splits, so that nothing moves while the matrix runs;
# every run still reads SHOW RANGES again at its end and reports whether its
# rows stayed put.
#
# Results: $OUT/runs/<op>-<placement>-c<N>-r<R>.{json,log}, $OUT/node-*.log,
# $OUT/context.txt (command, machine, load averages, commit) and
# $OUT/table.md. The node's data directory is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench-txn.sh $*"

rows=4000 clients="1 8 32" duration=10 ramp_up=2 rounds=3 split_bytes=4096 profile=release
shards=$(nproc); if (( shards < 2 )); then shards=2; fi
out="perf/results/txn-$(date -u +%Y%m%dT%H%M%SZ)"
for a in "$@"; do
  if [[ $a == --smoke ]]; then
    rows=600 clients="1 2" duration=1 ramp_up=0 rounds=1 profile=debug
    out="perf/results/txn-smoke-$(date -u +%Y%m%dT%H%M%SZ)"
  fi
done
while [[ $# -gt 0 ]]; do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --ramp-up) ramp_up=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --split-bytes) split_bytes=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --smoke) shift ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "bench-txn: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if (( shards < 2 )); then echo "bench-txn: cross-shard transfers need --shards 2 or more" >&2; exit 2; fi
# Absolute: the node cannot sync a data directory given as a relative path
# (glommio's Directory::open fails with EBADF).
mkdir -p "$out"; out=$(cd "$out" && pwd)

# The cells of the matrix: op and placement.
cells=("update any" "transfer same-range" "transfer same-shard" "transfer cross-shard")
# How long a node may take to listen before the start is tried again: now and
# then a fresh shard's first storage I/O never completes on small VMs (see
# docs/transactions.md, "A start-up hang"); a restart recovers.
start_timeout=30 start_attempts=3

profile_flag=(); if [[ $profile == release ]]; then profile_flag=(--release); fi
echo "== build ($profile): teller"
cargo build "${profile_flag[@]}" -p teller-node --bin teller
teller="$PWD/target/$profile/teller"

mkdir -p "$out/runs"
data="$out/data"
node_pid=""
stop_node() {
  if [[ -n "$node_pid" ]]; then
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    node_pid=""
  fi
}
cleanup() { stop_node; rm -rf "$data"; }
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "bench-txn: no free port found" >&2; return 1
}

# start_node <name> <config file>: starts the node on $data, waits until every
# shard listens; tries again on the same data when a start hangs.
start_node() {
  local name=$1 config=$2 attempt log
  for attempt in $(seq "$start_attempts"); do
    port=$(free_port)
    log="$out/node-$name-$attempt.log"
    TELLER_LOG=info "$teller" start --config "$config" --listen "127.0.0.1:$port" \
      --data-dir "$data" --shards "$shards" >/dev/null 2>"$log" &
    node_pid=$!
    url="postgres://teller@127.0.0.1:$port/teller"
    for _ in $(seq $((start_timeout * 10))); do
      if ! kill -0 "$node_pid" 2>/dev/null; then
        echo "bench-txn: teller exited at start:" >&2; tail -20 "$log" >&2; exit 1
      fi
      if (( $(grep -c "shard listening" "$log" || true) >= shards )); then return 0; fi
      sleep 0.1
    done
    echo "   start $attempt did not listen within ${start_timeout} s; trying again"
    kill -KILL "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; node_pid=""
  done
  echo "bench-txn: teller did not start in $start_attempts attempts" >&2; exit 1
}

# config_with <file> name=value...: the embedded default with [storage] settings replaced.
config_with() {
  local file=$1; shift
  "$teller" config >"$file"
  for kv in "$@"; do
    local name=${kv%%=*} value=${kv#*=}
    grep -q "^$name = " "$file" || { echo "bench-txn: no setting $name in the default config" >&2; exit 1; }
    sed -i "s/^$name = .*/$name = $value/" "$file"
  done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); command: \`$command_line\`"
  echo "machine: $(nproc) CPUs (${cpu:-unknown}), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r); client and node on the same machine, loopback"
  echo "teller: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes') ($profile build), $shards shards"
  echo "load average at start: $(loadavg)"
  echo "rows $rows; clients $clients; $duration s measured after $ramp_up s ramp-up; $rounds rounds; serializable; each client its own rows (8 per client)"
} >"$out/context.txt"

echo "== cut the table into ranges over $shards shards ($split_bytes-byte splits, rebalancing)"
config_with "$out/split.toml" range_split_bytes="$split_bytes" rebalance_interval_ms=50 range_split_requests_per_sec=0
start_node split "$out/split.toml"
"$teller" workload txn init --url "$url" --rows "$rows"
"$teller" workload txn placement --url "$url" --min-shards "$shards" --min-ranges-per-shard 2 \
  --stable 5 --timeout 300 >"$out/placement-split.txt"
tail -1 "$out/placement-split.txt"
stop_node

echo "== restart without splits or moves; run the matrix"
config_with "$out/measure.toml" rebalance_interval_ms=0 range_split_requests_per_sec=0
start_node measure "$out/measure.toml"
"$teller" workload txn placement --url "$url" --min-shards "$shards" --min-ranges-per-shard 2 >"$out/placement.txt"
tail -1 "$out/placement.txt"

failed=0
for r in $(seq "$rounds"); do
  for cell in "${cells[@]}"; do
    read -r op placement <<<"$cell"
    for c in $clients; do
      name="$op-$placement-c$c-r$r"
      if "$teller" workload txn run --url "$url" --op "$op" --placement "$placement" \
           --concurrency "$c" --duration "$duration" --ramp-up "$ramp_up" --seed "$r" --quiet \
           --json "$out/runs/$name.json" >"$out/runs/$name.log" 2>&1; then
        printf '   %-32s %s | load %s\n' "$name" \
          "$(awk -v op="$op" '$1 == op { printf "%s ops/s, p50 %s ms, p99 %s ms", $3, $5, $7 }' "$out/runs/$name.log")" \
          "$(loadavg)"
      else
        failed=1
        echo "   $name FAILED:"; tail -5 "$out/runs/$name.log"
      fi
    done
  done
done
echo "load average at end: $(loadavg)" >>"$out/context.txt"

"$teller" workload txn check --url "$url" | tail -1
files=()
for cell in "${cells[@]}"; do
  read -r op placement <<<"$cell"
  for c in $clients; do
    for r in $(seq "$rounds"); do
      f="$out/runs/$op-$placement-c$c-r$r.json"
      if [[ -f $f ]]; then files+=("$f"); fi
    done
  done
done
"$teller" workload txn report "${files[@]}" >"$out/table.md"
stop_node

echo
cat "$out/context.txt"
echo
cat "$out/table.md"
echo
echo "results: $out"
exit $failed
