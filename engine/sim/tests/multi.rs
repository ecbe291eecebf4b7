//! The multi-raft simulator in the suite: a short sweep of the `multi`
//! profile (faults and checkers on), and the benchmark's scenario with tiny
//! inputs, so that neither can rot.

use teller_sim::multi::{run_multi, MultiOptions};
use teller_sim::{run_seed_with, Profile, RunOptions};

/// `multi` seeds in the suite, each with a short load phase.
const SWEEP_SEEDS: u64 = 8;
const SWEEP_TICKS: u64 = 300;

#[test]
fn sweep_multi() {
    let opts = RunOptions {
        fault_phase_ticks: SWEEP_TICKS,
        ..RunOptions::default()
    };
    let failures: Vec<String> = (0..SWEEP_SEEDS)
        .filter_map(|seed| run_seed_with(seed, Profile::Multi, &opts).err())
        .map(|f| f.to_string())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn benchmark_scenario_with_tiny_inputs() {
    let opts = MultiOptions {
        nodes: 3,
        groups: 40,
        clients: 8,
        warmup_us: 2_000_000,
        load_us: 500_000,
        idle_us: 2_000_000,
        faults: false,
        checks: true,
        quiesce: true,
        compact_every: teller_sim::multi::COMPACT_EVERY_SWEEP,
        trace: false,
    };
    let (report, _) = run_multi(1, opts);
    let r = report.expect("passes");
    assert!(r.acked > 100, "clients made progress: {}", r.acked);
    assert_eq!(r.latencies_us.len() as u64, r.acked);
    assert!(r.latencies_us.iter().all(|&l| l > 0));
    // 2 s idle is 40 ticks of 3 shards x 40 ranges = 4800 group ticks
    // without quiescence; with it, only the few ticks until ranges go quiet.
    assert!(
        r.idle_group_ticks < 4800 / 10,
        "idle ranges are quiesced, not ticked: {}",
        r.idle_group_ticks
    );
    // Without quiescence: 20 heartbeat rounds x 40 ranges x 2 followers,
    // each a beat and a response = 3200.
    assert!(
        r.idle_beats < 3200 / 10,
        "and send no heartbeats: {}",
        r.idle_beats
    );
    assert!(r.idle_liveness_beats > 0, "shards still beat to each other");
    assert!(
        r.syncs < r.hosts.passes,
        "one sync covers several passes' groups"
    );
}
