#!/usr/bin/env bash
# The storage engine beside RocksDB's own db_bench, same parameters, same disk.
#
#   scripts/compare-rocksdb.sh [--keys N] [--writes N] [--ops N] [--sync 0|1]
#                              [--batch N] [--dir PATH] [--benchmarks a,b,...]
#
# Runs fillseq, fillrandom, readrandom, seekrandom and overwrite with 16-byte
# keys and 100-byte values, single-threaded, no compression, direct I/O for
# RocksDB too (both engines bypass the page cache), WAL synced per batch with
# --sync 1. As db_bench does, each fill starts from an empty database and
# writes --keys entries (overwrite too) — or --writes entries over the same
# key space (db_bench's --writes; for synced runs, where 5 M fdatasyncs one
# write at a time take hours); reads do --ops operations. Installs
# Debian's rocksdb-tools if db_bench is missing. Prints both result sets and a
# side-by-side table (ops/s, p50/p99/p99.9 in microseconds). Both run on the
# same directory's device. Our side is the `storage_engine` driver
# (`teller_storage::bench::driver`, the same code as
# `cargo bench -p teller-benches --bench storage_engine`), built as the
# storage crate's example in release so that it needs no build of the rest of
# the workspace; the WAL-vs-raw sequential test is left out (--seq-mb 0; run
# the bench alone for it).
# Defaults: 5,000,000 keys (the figure of record), ops = keys, sync 0, batch 1.
set -euo pipefail

keys=5000000
ops=""
writes=0
sync=0
batch=1
benchmarks=fillseq,fillrandom,readrandom,seekrandom,overwrite
dir="${TMPDIR:-/tmp}/teller-compare-rocksdb"
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --ops) ops="$2"; shift 2 ;;
    --writes) writes="$2"; shift 2 ;;
    --benchmarks) benchmarks="$2"; shift 2 ;;
    --sync) sync="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"

find_db_bench() {
  for b in db_bench rocksdb_db_bench; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

if ! db_bench="$(find_db_bench)"; then
  echo "db_bench not found: installing rocksdb-tools" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq rocksdb-tools >/dev/null
  db_bench="$(find_db_bench)" || { echo "rocksdb-tools has no db_bench" >&2; exit 1; }
fi

ops="${ops:-$keys}"
out="$root/target/compare-rocksdb"
mkdir -p "$out" "$dir"
stamp="$(date +%Y%m%d-%H%M%S)"
ours="$out/teller-keys$keys-writes$writes-ops$ops-sync$sync-batch$batch-$stamp.txt"
theirs="$out/rocksdb-keys$keys-writes$writes-ops$ops-sync$sync-batch$batch-$stamp.txt"

echo "== teller-storage ($keys keys, sync $sync, batch $batch; load: $(cut -d' ' -f1-3 /proc/loadavg))"
(cd "$root" && cargo build -q --release -p teller-storage --example storage_engine)
"$root/target/release/examples/storage_engine" --bench \
  --keys "$keys" --writes "$writes" --ops "$ops" --sync "$sync" --batch "$batch" --seq-mb 0 \
  --benchmarks "$benchmarks" --dir "$dir/teller" | tee "$ours"
echo "load after teller: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$dir/teller"

echo "== rocksdb db_bench ($("$db_bench" --version 2>/dev/null | head -1 || true))"
rm -rf "$dir/rocksdb"
# Fills start from an empty database (use_existing_db=0); the rest use what
# the previous benchmarks left — ours does the same.
db_writes=()
[ "$writes" -gt 0 ] && db_writes=(--writes="$writes")
"$db_bench" --benchmarks="$benchmarks" --num="$keys" --reads="$ops" "${db_writes[@]}" \
  --key_size=16 --value_size=100 --batch_size="$batch" --sync="$sync" \
  --threads=1 --compression_type=none --histogram=1 --statistics=0 \
  --use_direct_reads=1 --use_direct_io_for_flush_and_compaction=1 \
  --write_buffer_size=$((64 << 20)) --cache_size=$((64 << 20)) \
  --db="$dir/rocksdb" --use_existing_db=0 2>&1 \
  | tr '\r' '\n' | grep -v '^\.\.\. finished' | tee "$theirs"
rm -rf "$dir/rocksdb"
echo "load after rocksdb: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== side by side (ops/s; latency in microseconds)"
python3 - "$ours" "$theirs" <<'PY'
import re, sys
ours, theirs = open(sys.argv[1]).read(), open(sys.argv[2]).read()
rows = {}
for m in re.finditer(r"^(\w+)\s+(\d+) ops/s\s+p50\s+([\d.]+) us\s+p99\s+([\d.]+) us\s+p99\.9\s+([\d.]+) us", ours, re.M):
    rows.setdefault(m.group(1), {})["teller"] = [float(x) for x in m.groups()[1:]]
# db_bench: "fillrandom   :  20.1 micros/op 49751 ops/sec; ..." then a histogram
# block with "Percentiles: P50: 1.93 P75: ... P99: 3.85 P99.9: 11.9 P99.99: ..."
blocks = re.split(r"^(?=\w+\s+:\s+[\d.]+ micros/op)", theirs, flags=re.M)
for b in blocks:
    m = re.match(r"(\w+)\s+:\s+[\d.]+ micros/op (\d+) ops/sec", b)
    if not m:
        continue
    p = re.search(r"P50: ([\d.]+) .*?P99: ([\d.]+) P99\.9: ([\d.]+)", b)
    vals = [float(m.group(2))] + ([float(x) for x in p.groups()] if p else [float("nan")] * 3)
    rows.setdefault(m.group(1), {})["rocksdb"] = vals
print(f"{'benchmark':<12}{'teller ops/s':>14}{'rocksdb ops/s':>15}{'teller p50/p99/p99.9':>26}{'rocksdb p50/p99/p99.9':>26}")
for name in ["fillseq", "fillrandom", "readrandom", "seekrandom", "overwrite"]:
    r = rows.get(name, {})
    t, k = r.get("teller"), r.get("rocksdb")
    fmt = lambda v: f"{v[1]:.1f}/{v[2]:.1f}/{v[3]:.1f}" if v else "-"
    print(f"{name:<12}{(t[0] if t else float('nan')):>14.0f}{(k[0] if k else float('nan')):>15.0f}{fmt(t):>26}{fmt(k):>26}")
PY
