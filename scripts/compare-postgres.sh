#!/usr/bin/env bash
# Side-by-side comparison: the same workloads, same clients, same machine,
# against a TellerDB node and a private PostgreSQL, in alternating rounds.
#
#   scripts/compare-postgres.sh [options]
#     --workloads "..."   which workloads, in order (default: all below except ycsb-d/e)
#                         ycsb-a ycsb-b ycsb-c ycsb-d ycsb-e ycsb-f tpcc bank
#                         pgbench-select pgbench-tpcb sysbench-point-select sysbench-read-write
#     --rounds N          rounds per workload, sides alternating PG, TellerDB, PG, ... (default 3)
#     --duration S        measured seconds per run (default 30)
#     --ramp-up S         unmeasured warm-up of teller-workload runs (default 5)
#     --concurrency N     clients (default 16; TPC-C uses 10 terminals per warehouse)
#     --records N         YCSB records (default 100000)
#     --accounts N        bank accounts (default 10000)
#     --warehouses N      TPC-C warehouses (default 10)
#     --tpcc-items N --tpcc-customers N   shrink TPC-C's population (smoke only)
#     --pgbench-scale N   pgbench -i -s N (default 10)
#     --pgbench-init-steps S   pgbench -i -I S on both sides (default pgbench's own, dtgvp;
#                         dtgp skips VACUUM where a server lacks it)
#     --sysbench-tables N --sysbench-table-size N   (default 4 x 100000)
#     --bank-isolation L  both sides (default serializable)
#     --tpcc-isolation-pg L      (default read-committed: PostgreSQL's default)
#     --tpcc-isolation-teller L  (default serializable: TellerDB's only level)
#     --seed N            base seed; round r uses N+r on both sides (default 1)
#     --out DIR           results directory (default perf/results/<UTC timestamp>)
#     --postgres-only     skip TellerDB (until its SQL layer stores tables)
#     --teller-url URL    use a running TellerDB instead of starting one
#     --pg-url URL        use a running PostgreSQL instead of starting one
#     --profile P         build profile of the drivers and the node (default release)
#     --progress-every S  print the last progress line of a running step every S s (default 5)
#     --load-timeout S    a load still running after S s is killed and fails (default 3600)
#     --family-load-timeout F=S   override it for one family of tables (ycsb, tpcc, bank,
#                         pgbench, sysbench); repeatable, e.g. --family-load-timeout pgbench=900
#     --round-grace S     a round is killed when it runs S s past ramp-up + duration (default 120);
#                         a check, after the load timeout
#     --smoke             quick check of the whole harness: tiny scale, 2 s runs, 1 round,
#                         debug build (options given after it still apply)
#
# Per workload: each side is loaded once (YCSB, pgbench and sysbench loads
# are shared by their workloads), then the rounds run alternating the sides,
# then each side's consistency check runs. Results:
#   $OUT/runs/<workload>/<side>-r<N>.{json,status,log}, <side>-check.{status,log},
#   <side>-load.{log,seconds} (the load's wall time, also in the table)
#   $OUT/table.md and $OUT/table.json: median (min..max) per side of the
#   throughput, p50 and p99, and the ratios TellerDB / PostgreSQL.
# Throughput is ops/s (teller-workload), tps (pgbench, sysbench) or tpmC
# (TPC-C, with New-Order latency). pgbench and sysbench have no ramp-up.
#
# Both servers commit durably (PostgreSQL: fsync=on, synchronous_commit=on;
# TellerDB: its group commit), on loopback, on the client's machine: on a
# small machine the client competes with the server for CPU, so compare
# sides, not absolute figures. PostgreSQL, pgbench, psql and sysbench are
# installed from the distribution's packages when missing
# (scripts/install-deps.sh). Exits non-zero when any run or check failed,
# after printing the table.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/compare-postgres.sh $*"

all_workloads="ycsb-a ycsb-b ycsb-c ycsb-f tpcc bank pgbench-select pgbench-tpcb sysbench-point-select sysbench-read-write"
workloads=$all_workloads
rounds=3 duration=30 ramp_up=5 concurrency=16
records=100000 accounts=10000 warehouses=10 tpcc_items="" tpcc_customers=""
pgbench_scale=10 pgbench_init_steps="" sysbench_tables=4 sysbench_table_size=100000
bank_isolation=serializable tpcc_isolation_pg=read-committed tpcc_isolation_teller=serializable
seed=1 profile=release progress_every=5 loaders=4 load_timeout=3600 round_grace=120
out="perf/results/$(date -u +%Y%m%dT%H%M%SZ)"
postgres_only=0 teller_url="" pg_url=""
declare -A family_load_timeout=()

# --smoke sets defaults first, so that options after it still apply.
for a in "$@"; do
  if [[ $a == --smoke ]]; then
    rounds=1 duration=2 ramp_up=0 concurrency=4
    records=1000 accounts=100 warehouses=1 tpcc_items=1000 tpcc_customers=30
    pgbench_scale=1 sysbench_tables=1 sysbench_table_size=1000 profile=debug
    out="perf/results/smoke-$(date -u +%Y%m%dT%H%M%SZ)"
  fi
done
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workloads) workloads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --ramp-up) ramp_up="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --accounts) accounts="$2"; shift 2 ;;
    --warehouses) warehouses="$2"; shift 2 ;;
    --tpcc-items) tpcc_items="$2"; shift 2 ;;
    --tpcc-customers) tpcc_customers="$2"; shift 2 ;;
    --pgbench-scale) pgbench_scale="$2"; shift 2 ;;
    --pgbench-init-steps) pgbench_init_steps="$2"; shift 2 ;;
    --sysbench-tables) sysbench_tables="$2"; shift 2 ;;
    --sysbench-table-size) sysbench_table_size="$2"; shift 2 ;;
    --bank-isolation) bank_isolation="$2"; shift 2 ;;
    --tpcc-isolation-pg) tpcc_isolation_pg="$2"; shift 2 ;;
    --tpcc-isolation-teller) tpcc_isolation_teller="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --postgres-only) postgres_only=1; shift ;;
    --teller-url) teller_url="$2"; shift 2 ;;
    --pg-url) pg_url="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    --progress-every) progress_every="$2"; shift 2 ;;
    --load-timeout) load_timeout="$2"; shift 2 ;;
    --family-load-timeout)
      [[ $2 =~ ^(ycsb|tpcc|bank|pgbench|sysbench)=([0-9]+)$ ]] ||
        { echo "--family-load-timeout takes FAMILY=SECONDS (ycsb, tpcc, bank, pgbench, sysbench)" >&2; exit 2; }
      family_load_timeout[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}; shift 2 ;;
    --round-grace) round_grace="$2"; shift 2 ;;
    --smoke) shift ;;
    -h|--help) sed -n '2,/^set -euo pipefail/{/^#/p}' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for n in rounds duration concurrency records accounts warehouses pgbench_scale \
         sysbench_tables sysbench_table_size seed progress_every load_timeout round_grace; do
  [[ ${!n} =~ ^[0-9]+$ && ${!n} -gt 0 ]] || { echo "--${n//_/-} must be a positive integer" >&2; exit 2; }
done
[[ $ramp_up =~ ^[0-9]+$ ]] || { echo "--ramp-up must be a whole number of seconds" >&2; exit 2; }
for w in $workloads; do
  [[ " $all_workloads ycsb-d ycsb-e " == *" $w "* ]] || { echo "unknown workload $w" >&2; exit 2; }
done
case $profile in release) cargo_profile=(--release) ;; debug) cargo_profile=() ;;
  *) echo "--profile must be release or debug" >&2; exit 2 ;; esac
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# ---------------------------------------------------------------- tools

pg_bin() {
  if [[ -n "${TELLER_PG_BIN:-}" ]]; then echo "$TELLER_PG_BIN"; return; fi
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return; fi
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
  echo "initdb not found: apt-get install postgresql" >&2; exit 1
}
need_tools() {
  local missing=0
  command -v psql >/dev/null || missing=1
  command -v pgbench >/dev/null || missing=1
  command -v sysbench >/dev/null || missing=1
  if [[ -z "$pg_url" ]] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
       && ! command -v initdb >/dev/null && [[ -z "${TELLER_PG_BIN:-}" ]]; then missing=1; fi
  if [[ $missing == 1 ]]; then scripts/install-deps.sh; fi
}
need_tools

echo "== build ($profile): teller-workload, teller-compare"
cargo build "${cargo_profile[@]}" -p teller-perf --bins
driver="$PWD/target/$profile/teller-workload"
compare="$PWD/target/$profile/teller-compare"

as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

step_pid=""
cleanup() {
  if [[ -n "$step_pid" ]]; then kill -- "-$step_pid" 2>/dev/null || true; fi
  if [[ -n "${pg_dir:-}" ]]; then as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true; fi
  if [[ -n "${teller_pid:-}" ]]; then kill "$teller_pid" 2>/dev/null || true; wait "$teller_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# Runs "$@" with its output in $log; every $progress_every seconds prints
# the last line the step wrote (the drivers report once per second). A step
# still running after $step_limit seconds is killed (its whole process
# group: a load is a shell function running pgbench or the driver) and
# fails with status 124, so a server that stops answering costs one step,
# not the whole run; the log ends with "TIMEOUT".
step_limit=3600
run_step() {
  local label=$1 log=$2; shift 2
  local start=$SECONDS next=$((SECONDS + progress_every)) rc=0
  set -m  # the step gets its own process group
  "$@" >"$log" 2>&1 &
  step_pid=$!
  set +m
  while kill -0 "$step_pid" 2>/dev/null; do
    sleep 0.1
    if (( SECONDS - start >= step_limit )); then
      kill -TERM -- "-$step_pid" 2>/dev/null || true
      sleep 1
      kill -KILL -- "-$step_pid" 2>/dev/null || true
      wait "$step_pid" 2>/dev/null || true
      step_pid=""
      echo "TIMEOUT: killed after ${step_limit} s" >>"$log"
      printf '      %-28s %4ds  TIMEOUT: killed after %s s\n' "$label" $((SECONDS - start)) "$step_limit"
      return 124
    fi
    if (( SECONDS >= next )) && kill -0 "$step_pid" 2>/dev/null; then
      next=$((SECONDS + progress_every))
      printf '      %-28s %4ds  %s\n' "$label" $((SECONDS - start)) \
        "$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-140)"
    fi
  done
  wait "$step_pid" || rc=$?
  step_pid=""
  return $rc
}

# ---------------------------------------------------------------- servers

pg_version="PostgreSQL: given by --pg-url"
if [[ -z "$pg_url" ]]; then
  pg_dir="$out/pg"; port=$("$compare" free-port); bin=$(pg_bin)
  mkdir -p "$pg_dir"; if [[ $(id -u) == 0 ]]; then chown postgres "$pg_dir"; fi
  echo "== PostgreSQL: initdb and start on 127.0.0.1:$port ($pg_dir)"
  as_pg "$bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_pg "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o \
    "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=300 -c shared_buffers=512MB" start >/dev/null
  pg_url="postgres://postgres@127.0.0.1:$port/postgres"
  pg_version="PostgreSQL: $("$bin/postgres" --version | sed "s/.*) //"), private instance: fsync=on, synchronous_commit=on, shared_buffers=512MB, max_connections=300"
fi
sides=("postgres=$pg_url")

teller_version="TellerDB: not run (--postgres-only)"
if [[ $postgres_only == 0 ]]; then
  if [[ -z "$teller_url" ]]; then
    echo "== build ($profile): teller"
    cargo build "${cargo_profile[@]}" -p teller-node --bin teller
    port=$("$compare" free-port)
    echo "== TellerDB: start on 127.0.0.1:$port ($out/teller-data)"
    "target/$profile/teller" start --listen "127.0.0.1:$port" --data-dir "$out/teller-data" \
      >"$out/teller.log" 2>&1 &
    teller_pid=$!
    teller_url="postgres://teller@127.0.0.1:$port/teller"
    for _ in $(seq 300); do
      psql "$teller_url" -c 'select 1' >/dev/null 2>&1 && break
      kill -0 "$teller_pid" 2>/dev/null || { echo "teller exited:"; tail -20 "$out/teller.log"; exit 1; }
      sleep 0.1
    done
    psql "$teller_url" -c 'select 1' >/dev/null || { echo "teller not ready:"; tail -20 "$out/teller.log"; exit 1; }
    teller_version="TellerDB: $(git rev-parse --short HEAD) ($profile build), started by the script"
  else
    teller_version="TellerDB: given by --teller-url"
  fi
  sides+=("teller=$teller_url")
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); command: \`$command_line\`"
  echo "machine: $(nproc) CPUs (${cpu:-unknown}), $mem RAM, Linux $(uname -r); client and servers on the same machine, loopback"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$pg_version"
  echo "$teller_version"
  echo "$rounds round(s) per workload, sides alternating; $duration s measured per run; teller-workload ramp-up $ramp_up s (pgbench, sysbench: none); $concurrency clients (TPC-C: $((10 * warehouses)) terminals, 10 per warehouse, no think time); driver build: $profile"
  echo "scale: YCSB $records records; bank $accounts accounts; TPC-C $warehouses warehouses${tpcc_items:+, $tpcc_items items}${tpcc_customers:+, $tpcc_customers customers/district}; pgbench -s $pgbench_scale; sysbench $sysbench_tables x $sysbench_table_size rows"
  echo "isolation: bank $bank_isolation on both sides; TPC-C PostgreSQL $tpcc_isolation_pg, TellerDB $tpcc_isolation_teller; pgbench and sysbench each server's default"
} >"$out/context.txt"

# ---------------------------------------------------------------- workloads

declare -A loaded=()

url_parts() {  # sets u_user u_pass u_host u_port u_db from a postgres:// URL
  local re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))?/([^?]+)'
  [[ $1 =~ $re ]] || { echo "cannot parse URL $1 (postgres://user@host:port/db)" >&2; return 1; }
  u_user=${BASH_REMATCH[2]} u_pass=${BASH_REMATCH[4]} u_host=${BASH_REMATCH[5]}
  u_port=${BASH_REMATCH[7]:-5432} u_db=${BASH_REMATCH[8]}
}
sysbench_args() {
  url_parts "$1"
  echo "--db-driver=pgsql --pgsql-host=$u_host --pgsql-port=$u_port --pgsql-user=$u_user" \
       "--pgsql-db=$u_db ${u_pass:+--pgsql-password=$u_pass}" \
       "--tables=$sysbench_tables --table-size=$sysbench_table_size"
}
family() { case $1 in ycsb-*) echo ycsb ;; pgbench-*) echo pgbench ;; sysbench-*) echo sysbench ;; *) echo "$1" ;; esac; }
isolation_of() {  # side workload
  case $2 in
    bank) echo "$bank_isolation" ;;
    tpcc) if [[ $1 == teller ]]; then echo "$tpcc_isolation_teller"; else echo "$tpcc_isolation_pg"; fi ;;
  esac
}

load() {  # url family
  local url=$1
  case $2 in
    ycsb) "$driver" ycsb init --url "$url" --records "$records" --concurrency "$loaders" ;;
    bank) "$driver" bank init --url "$url" --accounts "$accounts" --concurrency "$loaders" ;;
    tpcc) "$driver" tpcc init --url "$url" --warehouses "$warehouses" --concurrency "$loaders" \
            ${tpcc_items:+--items "$tpcc_items"} ${tpcc_customers:+--customers "$tpcc_customers"} ;;
    pgbench) pgbench -i -s "$pgbench_scale" ${pgbench_init_steps:+-I "$pgbench_init_steps"} "$url" ;;
    sysbench)
      # shellcheck disable=SC2046
      sysbench oltp_point_select $(sysbench_args "$url") cleanup &&
      # shellcheck disable=SC2046
      sysbench oltp_point_select $(sysbench_args "$url") --threads="$loaders" prepare ;;
  esac
}

run_round() {  # side url workload round dir
  local side=$1 url=$2 w=$3 r=$4 dir=$5 json="$5/$1-r$4.json" log="$5/$1-r$4.log"
  local s=$((seed + r)) threads=$(( concurrency < $(nproc) ? concurrency : $(nproc) ))
  local common=(--url "$url" --concurrency "$concurrency" --duration "$duration" --ramp-up "$ramp_up" --seed "$s" --json "$json")
  local label="$side $w r$r/$rounds"
  step_limit=$((ramp_up + duration + round_grace))
  case $w in
    ycsb-?) run_step "$label" "$log" "$driver" ycsb run --workload "${w#ycsb-}" "${common[@]}" ;;
    bank) run_step "$label" "$log" "$driver" bank run --isolation "$(isolation_of "$side" bank)" "${common[@]}" ;;
    tpcc)
      common[3]=$((10 * warehouses))
      run_step "$label" "$log" "$driver" tpcc run --isolation "$(isolation_of "$side" tpcc)" "${common[@]}" ;;
    pgbench-*)
      local script=perf/pgbench/select-only.sql rc=0
      [[ $w == pgbench-tpcb ]] && script=perf/pgbench/tpcb-like.sql
      run_step "$label" "$log" pgbench -n -M prepared -f "$script" -s "$pgbench_scale" \
        -c "$concurrency" -j "$threads" -T "$duration" -P 1 --random-seed="$s" \
        -l --log-prefix="$dir/$side-r$r-txlog" --max-tries=32 --failures-detailed "$url" || rc=$?
      "$compare" pgbench --output "$log" --log-prefix "$dir/$side-r$r-txlog" --json "$json" --remove-logs \
        >>"$log" 2>&1 || rc=1
      return $rc ;;
    sysbench-*)
      local test=oltp_point_select rc=0
      [[ $w == sysbench-read-write ]] && test=oltp_read_write
      # shellcheck disable=SC2046
      run_step "$label" "$log" sysbench "$test" $(sysbench_args "$url") --threads="$concurrency" \
        --time="$duration" --report-interval=1 --histogram=on --rand-seed="$s" run || rc=$?
      "$compare" sysbench --output "$log" --json "$json" >>"$log" 2>&1 || rc=1
      return $rc ;;
  esac
}

sql_value() { psql "$1" -XtAc "$2"; }

check() {  # side url workload
  local url=$2 w=$3
  case $w in
    ycsb-?) "$driver" ycsb check --url "$url" ;;
    bank|tpcc) "$driver" "$w" check --url "$url" ;;
    pgbench-select)
      local n; n=$(sql_value "$url" "SELECT count(*) FROM pgbench_accounts")
      echo "pgbench_accounts: $n rows, expected $((100000 * pgbench_scale))"
      [[ $n == $((100000 * pgbench_scale)) ]] ;;
    pgbench-tpcb)
      local sums; sums=$(sql_value "$url" "SELECT (SELECT COALESCE(sum(abalance), 0) FROM pgbench_accounts) || ' ' || (SELECT COALESCE(sum(bbalance), 0) FROM pgbench_branches) || ' ' || (SELECT COALESCE(sum(tbalance), 0) FROM pgbench_tellers) || ' ' || (SELECT COALESCE(sum(delta), 0) FROM pgbench_history)")
      echo "sum(abalance) sum(bbalance) sum(tbalance) sum(delta): $sums"
      read -r a b t h <<<"$sums"
      [[ $a == "$b" && $b == "$t" && $t == "$h" ]] ;;
    sysbench-*)
      local i n ok=0
      for i in $(seq "$sysbench_tables"); do
        n=$(sql_value "$url" "SELECT count(*) FROM sbtest$i")
        echo "sbtest$i: $n rows, expected $sysbench_table_size"
        [[ $n == "$sysbench_table_size" ]] || ok=1
      done
      return $ok ;;
  esac
}

failures=0
for w in $workloads; do
  dir="$out/runs/$w"; mkdir -p "$dir"
  echo "== $w"
  for s in "${sides[@]}"; do
    side=${s%%=*} url=${s#*=}
    fam=$(family "$w") t=$EPOCHREALTIME
    if [[ ${loaded[$side:$fam]:-} == ok ]]; then
      echo "   $side: $fam tables already loaded"
    elif [[ ${loaded[$side:$fam]:-} == failed ]]; then
      # A failed (or timed-out) load is not retried: the server may still be
      # busy with it, and the family's other workloads would repeat it.
      echo "   $side: $fam load failed earlier: not run"; echo failed >"$dir/$side-load.status"
    elif rc=0; step_limit=${family_load_timeout[$fam]:-$load_timeout}
         run_step "$side $w load" "$dir/$side-load.log" load "$url" "$fam" || rc=$?; [[ $rc == 0 ]]; then
      loaded[$side:$fam]=ok
      awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$dir/$side-load.seconds"
      echo "   $side: loaded in $(cat "$dir/$side-load.seconds") s" \
        "$(grep -m1 -E '^done in |: loaded ' "$dir/$side-load.log" || true)"
    else
      loaded[$side:$fam]=failed status=failed
      [[ $rc == 124 ]] && status=timeout
      echo "   $side: load FAILED ($status, log $dir/$side-load.log)"; echo $status >"$dir/$side-load.status"; failures=$((failures + 1))
    fi
  done
  for r in $(seq "$rounds"); do
    for s in "${sides[@]}"; do
      side=${s%%=*} url=${s#*=}
      if [[ -e "$dir/$side-load.status" ]]; then echo failed >"$dir/$side-r$r.status"; continue; fi
      if run_round "$side" "$url" "$w" "$r" "$dir"; then status=ok; else status=failed; failures=$((failures + 1)); fi
      echo "$status" >"$dir/$side-r$r.status"
      summary=$("$compare" line "$dir/$side-r$r.json" 2>/dev/null || echo "no result")
      echo "   $side r$r: $status: $summary"
    done
  done
  for s in "${sides[@]}"; do
    side=${s%%=*} url=${s#*=}
    if [[ -e "$dir/$side-load.status" ]]; then echo failed >"$dir/$side-check.status"; continue; fi
    step_limit=$load_timeout
    if run_step "$side $w check" "$dir/$side-check.log" check "$side" "$url" "$w"; then status=ok; else status=failed; failures=$((failures + 1)); fi
    echo "$status" >"$dir/$side-check.status"
    echo "   $side check: $status (log $dir/$side-check.log)"
  done
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/context.txt"
echo
"$compare" table --out "$out" --workloads "$workloads"
echo
echo "results in $out (table.md, table.json)"
if [[ $failures -gt 0 ]]; then echo "$failures step(s) failed" >&2; exit 1; fi
