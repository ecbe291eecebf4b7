#!/usr/bin/env bash
# Runs the deterministic Raft simulator.
#
#   scripts/sim.sh <seeds> [profile] [extra teller-sim flags...]
#
# <seeds> is N (seeds 0..N), A..B, or a single seed with --trace to replay:
#   scripts/sim.sh 1000 faults          # sweep seeds 0..1000
#   scripts/sim.sh 5000..6000 calm      # sweep a range
#   scripts/sim.sh 42 faults --trace    # replay seed 42 with its event trace
# Profiles: calm (delays only), faults (crashes, partitions, loss, clock skew
# and jumps, membership churn, leases), multi (the multi-raft host: many
# ranges per shard, quiescence, crashes losing unsynced passes).
# --violate-clock-bound lets clocks exceed the configured offset (expect
# stale lease reads to be reported).
# Set SIM_BUILD=debug to use a debug build (default: release, for speed).
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="${1:?usage: scripts/sim.sh <seeds> [profile] [--trace] [--ticks T]}"
profile="${2:-faults}"
shift $(( $# >= 2 ? 2 : 1 ))

build_flag="--release"
[[ "${SIM_BUILD:-release}" == "debug" ]] && build_flag=""
cargo build -q -p teller-sim $build_flag
bin="target/$([[ -z "$build_flag" ]] && echo debug || echo release)/teller-sim"

trace=0
for arg in "$@"; do [[ "$arg" == "--trace" ]] && trace=1; done
if [[ $trace == 1 && "$seeds" =~ ^[0-9]+$ ]]; then
    exec "$bin" --seed "$seeds" --profile "$profile" "$@"
fi
exec "$bin" --seeds "$seeds" --profile "$profile" "$@"
