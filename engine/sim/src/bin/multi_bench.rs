//! `multi-bench`: multi-raft micro-benchmark in the simulator.
//!
//! ```text
//! multi-bench [--quick]
//! ```
//!
//! Three shards (one per node) each host a replica of every range. For 1,
//! 100 and 10,000 ranges, closed-loop clients append to random ranges for
//! a stretch of simulated time; the report gives proposals committed per
//! simulated second, commit latency (proposal to apply on the proposing
//! shard, simulated: 100-400 µs network, 0.3-1.5 ms sync) and the CPU time
//! the simulation took (on-CPU time from `/proc/self/schedstat`, so other
//! load on the machine does not count; it covers all three shards, the
//! network and the clients). Then 10,000 quiesced ranges idle: the CPU time
//! per simulated second, measured as the difference of two otherwise
//! identical runs with and without an hour of simulated idle time (median
//! of 3).
//!
//! Build with `--release`; the figures are in `docs/raft.md`.

use teller_sim::multi::{run_multi, MultiOptions, MultiReport};

const SEED: u64 = 1;
const NODES: u64 = 3;
const CLIENTS: usize = 128;
const WARMUP_US: u64 = 3_000_000;
/// Applied entries between snapshots of a range. The simulated
/// application encodes its whole list into each snapshot, so frequent
/// snapshots of one long list would measure that copy, not Raft.
const COMPACT_EVERY: u64 = 10_000;
/// Idle cost is the median over this many pairs of runs.
const IDLE_RUNS: usize = 3;

fn options(groups: u64, clients: usize, load_us: u64, idle_us: u64) -> MultiOptions {
    MultiOptions {
        nodes: NODES,
        groups,
        clients,
        warmup_us: WARMUP_US,
        load_us,
        idle_us,
        faults: false,
        checks: false,
        quiesce: true,
        compact_every: COMPACT_EVERY,
        trace: false,
    }
}

/// CPU time this process has spent running, in seconds: the first field
/// of `/proc/self/schedstat` (ns on a CPU), so that other load on the
/// machine does not count. The simulation is single-threaded.
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/schedstat").expect("Linux /proc/self/schedstat");
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("schedstat starts with the on-CPU time in ns");
    ns as f64 / 1e9
}

fn timed(opts: MultiOptions) -> (MultiReport, f64) {
    let start = cpu_seconds();
    let (report, _) = run_multi(SEED, opts);
    let secs = cpu_seconds() - start;
    (report.expect("benchmark run passes"), secs)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let load_us = if quick { 1_000_000 } else { 10_000_000 };
    // Long enough that the idle stretch costs well above the run-to-run
    // noise of electing 10,000 ranges (tenths of a second of CPU).
    let idle_us = if quick { 300_000_000 } else { 3_600_000_000 };
    println!(
        "multi-raft in the simulator: {NODES} shards, {CLIENTS} closed-loop clients, seed {SEED}"
    );
    println!(
        "{:>7} {:>10} {:>12} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "ranges", "proposals", "proposals/s", "p50 ms", "p99 ms", "max ms", "cpu s", "cpu us/op"
    );
    for groups in [1u64, 100, 10_000] {
        let (r, cpu) = timed(options(groups, CLIENTS, load_us, 0));
        let mut lat = r.latencies_us.clone();
        lat.sort_unstable();
        let per_s = r.acked as f64 / (load_us as f64 / 1e6);
        println!(
            "{groups:>7} {:>10} {per_s:>12.0} {:>9.2} {:>9.2} {:>9.2} {cpu:>12.2} {:>10.1}",
            r.acked,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            cpu * 1e6 / r.acked.max(1) as f64,
        );
    }
    let groups = 10_000;
    let runs = if quick { 1 } else { IDLE_RUNS };
    let mut diffs = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let (_, cpu_base) = timed(options(groups, 0, 0, 0));
        let (idle, cpu_idle) = timed(options(groups, 0, 0, idle_us));
        diffs.push((cpu_idle - cpu_base).max(0.0));
        last = Some((idle, cpu_base));
    }
    diffs.sort_by(f64::total_cmp);
    let (idle, cpu_base) = last.expect("at least one run");
    let idle_s = idle_us as f64 / 1e6;
    let per_sim_s = diffs[diffs.len() / 2] / idle_s;
    println!(
        "idle: {groups} quiesced ranges x {NODES} shards, {idle_s} s simulated (median of {runs}): \
         {:.2} ms CPU per simulated second in all ({:.3} ms per shard); \
         during it: group ticks {}, heartbeats {}, liveness beats {}; \
         electing and quiescing them first took {:.2} s CPU",
        per_sim_s * 1e3,
        per_sim_s * 1e3 / NODES as f64,
        idle.idle_group_ticks,
        idle.idle_beats,
        idle.idle_liveness_beats,
        cpu_base,
    );
}
