//! `teller-sim`: run simulator seeds.
//!
//! ```text
//! teller-sim [--profile calm|faults] [--trace] [--ticks T] [--violate-clock-bound] (--seed N | --seeds A..B | --seeds N)
//! ```
//! `--ticks` sets the length of the fault phase (default 1500 ticks).
//! `--violate-clock-bound` lets clock offsets exceed the configured maximum
//! (leases on): lease reads may then be stale, and the checker should say so.
//! `--seeds N` runs seeds `0..N`. Prints a pass/fail summary and, for each
//! failing seed, the command that replays it. With `--trace`, prints the
//! event trace of a single seed, or of every failing seed of a sweep.

use std::process::ExitCode;

use teller_sim::{run_seed_traced, Profile, RunOptions};

fn usage() -> ExitCode {
    eprintln!("usage: teller-sim [--profile calm|faults] [--trace] [--ticks T] [--violate-clock-bound] (--seed N | --seeds A..B | --seeds N)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut profile = Profile::Faults;
    let mut opts = RunOptions::default();
    let mut seeds: Option<(u64, u64)> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--trace" => opts.trace = true,
            "--violate-clock-bound" => opts.clock_offset_violation = true,
            "--ticks" => {
                i += 1;
                match args.get(i).and_then(|s| s.parse::<u64>().ok()) {
                    Some(t) if t > 0 => opts.fault_phase_ticks = t,
                    _ => return usage(),
                }
            }
            "--profile" => {
                i += 1;
                match args.get(i).and_then(|p| Profile::parse(p)) {
                    Some(p) => profile = p,
                    None => return usage(),
                }
            }
            "--seed" => {
                i += 1;
                match args.get(i).and_then(|s| s.parse::<u64>().ok()) {
                    Some(s) => seeds = Some((s, s + 1)),
                    None => return usage(),
                }
            }
            "--seeds" => {
                i += 1;
                let Some(spec) = args.get(i) else {
                    return usage();
                };
                let parsed = match spec.split_once("..") {
                    Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                    None => spec.parse().ok().map(|n| (0, n)),
                };
                match parsed {
                    Some(range) => seeds = Some(range),
                    None => return usage(),
                }
            }
            _ => return usage(),
        }
        i += 1;
    }
    let Some((lo, hi)) = seeds else {
        return usage();
    };
    let single = hi == lo + 1;
    let (mut passed, mut failed) = (0u64, Vec::new());
    let mut totals = teller_sim::Stats::default();
    for seed in lo..hi {
        let (outcome, trace) = run_seed_traced(seed, profile, &opts);
        if single {
            for line in &trace {
                println!("{line}");
            }
        }
        match outcome {
            Ok(stats) => {
                passed += 1;
                totals.events += stats.events;
                totals.acked_appends += stats.acked_appends;
                totals.reads_served += stats.reads_served;
                totals.lease_reads += stats.lease_reads;
                totals.crashes += stats.crashes;
                totals.partitions += stats.partitions;
                totals.snapshots_sent += stats.snapshots_sent;
                totals.transfers += stats.transfers;
                totals.conf_changes += stats.conf_changes;
                totals.leaders += stats.leaders;
                if single {
                    println!("{stats:?}");
                }
            }
            Err(f) => {
                if !single {
                    for line in &f.trace {
                        println!("{line}");
                    }
                }
                println!("FAIL {f}");
                failed.push(seed);
            }
        }
    }
    println!(
        "profile {}: {passed} passed, {} failed (seeds {lo}..{hi}); totals: {} events, {} acked appends, {} reads ({} by lease), {} crashes, {} partitions, {} snapshots, {} transfers, {} conf changes, {} leaders",
        profile.name(),
        failed.len(),
        totals.events,
        totals.acked_appends,
        totals.reads_served,
        totals.lease_reads,
        totals.crashes,
        totals.partitions,
        totals.snapshots_sent,
        totals.transfers,
        totals.conf_changes,
        totals.leaders
    );
    if !failed.is_empty() {
        println!("failing seeds: {failed:?}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
