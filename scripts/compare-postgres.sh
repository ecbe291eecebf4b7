#!/usr/bin/env bash
# Side-by-side comparison: the same workloads, same client, same machine,
# against a TellerDB node and a private PostgreSQL.
#
#   scripts/compare-postgres.sh [options]
#     --workloads "bank ycsb-a ycsb-c tpcc"   which workloads (ycsb-<a..f>)
#     --duration S        measured seconds per run (default 30)
#     --ramp-up S         unmeasured warm-up per run (default 5)
#     --concurrency N     clients (default 16; TPC-C uses 10 per warehouse)
#     --accounts N --records N --warehouses N   scale (defaults 10000 / 100000 / 1)
#     --isolation L       bank and tpcc isolation (default serializable, TellerDB's)
#     --out DIR           results directory (default perf/results/<UTC timestamp>)
#     --postgres-only     skip TellerDB (until its SQL layer stores tables)
#     --teller-url URL    use a running TellerDB instead of starting one
#     --pg-url URL        use a running PostgreSQL instead of starting one
#
# For every workload and side: `init`, `run --json`, `check`. Results land in
# $OUT/<side>-<workload>.json and a summary table is printed at the end
# (needs python3). Both servers run with durable commits (PostgreSQL:
# fsync=on, synchronous_commit=on; TellerDB: its default group commit), on
# loopback, on the same machine as the client: on a small machine the client
# competes with the server for CPU, so compare sides, not absolute figures.
# PostgreSQL is started as in the tests: initdb into $OUT/pg, as the
# `postgres` user when run as root (Debian package `postgresql`).
set -euo pipefail
cd "$(dirname "$0")/.."

workloads="bank ycsb-a ycsb-c tpcc"
duration=30
ramp_up=5
concurrency=16
accounts=10000
records=100000
warehouses=1
isolation=serializable
out="perf/results/$(date -u +%Y%m%dT%H%M%SZ)"
postgres_only=0
teller_url=""
pg_url=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workloads) workloads="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --ramp-up) ramp_up="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --accounts) accounts="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --warehouses) warehouses="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --isolation) isolation="$2"; shift 2 ;;
    --postgres-only) postgres_only=1; shift ;;
    --teller-url) teller_url="$2"; shift 2 ;;
    --pg-url) pg_url="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_bin() {
  if [[ -n "${TELLER_PG_BIN:-}" ]]; then echo "$TELLER_PG_BIN"; return; fi
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$d" ]] || { echo "initdb not found: apt-get install postgresql" >&2; exit 1; }
  echo "$d"
}

as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  if [[ -n "${pg_dir:-}" ]]; then as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true; fi
  if [[ -n "${teller_pid:-}" ]]; then kill "$teller_pid" 2>/dev/null || true; wait "$teller_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "== build (release)"
cargo build --release -p teller-perf --bin teller-workload
driver="target/release/teller-workload"

if [[ -z "$pg_url" ]]; then
  pg_dir="$out/pg"; port=$(free_port); bin=$(pg_bin)
  mkdir -p "$pg_dir"; [[ $(id -u) == 0 ]] && chown postgres "$pg_dir"
  as_pg "$bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_pg "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o \
    "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=300 -c shared_buffers=512MB" start >/dev/null
  pg_url="postgres://postgres@127.0.0.1:$port/postgres"
fi
sides=("postgres=$pg_url")

if [[ $postgres_only == 0 ]]; then
  if [[ -z "$teller_url" ]]; then
    cargo build --release --bin teller
    port=$(free_port)
    target/release/teller start --listen "127.0.0.1:$port" --data-dir "$out/teller-data" \
      >"$out/teller.log" 2>&1 &
    teller_pid=$!
    for _ in $(seq 100); do
      psql -h 127.0.0.1 -p "$port" -U teller -c 'select 1' >/dev/null 2>&1 && break
      sleep 0.1
    done
    teller_url="postgres://teller@127.0.0.1:$port/teller"
  fi
  sides+=("teller=$teller_url")
fi

run_side() {
  local side=$1 url=$2 w=$3 kind init run
  case "$w" in
    bank) kind=bank; init="--accounts $accounts"; run="--isolation $isolation" ;;
    ycsb-?) kind=ycsb; init="--records $records"; run="--workload ${w#ycsb-}" ;;
    tpcc) kind=tpcc; init="--warehouses $warehouses"; run="--terminals --isolation $isolation" ;;
    *) echo "unknown workload $w" >&2; return 1 ;;
  esac
  local log="$out/$side-$w.log" status=ok clients=$concurrency
  # TPC-C: the specification's ten terminals per warehouse, not --concurrency.
  if [[ $run == --terminals* ]]; then run=${run#--terminals }; clients=$((10 * warehouses)); fi
  {
    # YCSB workloads share one load per side.
    if [[ $kind != ycsb || ! -e "$out/$side-ycsb.loaded" ]]; then
      $driver $kind init --url "$url" $init && { [[ $kind != ycsb ]] || touch "$out/$side-ycsb.loaded"; }
    fi &&
    $driver $kind run --url "$url" $run --concurrency "$clients" --duration "$duration" \
      --ramp-up "$ramp_up" --quiet --json "$out/$side-$w.json" &&
    $driver $kind check --url "$url"
  } >"$log" 2>&1 || status=failed
  echo "$status" >"$out/$side-$w.status"
  echo "   $side $w: $status (log $log)"
}

for w in $workloads; do
  echo "== $w"
  for s in "${sides[@]}"; do run_side "${s%%=*}" "${s#*=}" "$w"; done
done

python3 - "$out" $workloads <<'PY'
import json, os, sys
out, workloads = sys.argv[1], sys.argv[2:]
print(f"\n{'workload':<10} {'side':<9} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'errors':>7} {'check':>7}  extra")
for w in workloads:
    for side in ("postgres", "teller"):
        status_file = f"{out}/{side}-{w}.status"
        if not os.path.exists(status_file):
            continue
        status = open(status_file).read().strip()
        try:
            r = json.load(open(f"{out}/{side}-{w}.json"))
        except Exception:
            print(f"{w:<10} {side:<9} {'-':>10} {'-':>8} {'-':>8} {'-':>9} {'-':>7} {status:>7}")
            continue
        extra = f"tpmC {r['tpmC']:.0f}" if "tpmC" in r else ""
        print(f"{w:<10} {side:<9} {r['ops_per_sec']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['p999_ms']:>9.2f} {sum(r['errors'].values()):>7} {status:>7}  {extra}")
PY
echo "results in $out"
