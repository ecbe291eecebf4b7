//! The simulator in the test suite: a short sweep of fresh seeds in both
//! profiles, plus every seed that ever failed (`regressions.txt`).

use teller_sim::{run_seed_with, Profile, RunOptions};

/// Fault-phase length for the in-suite sweep: short enough that the debug
/// build runs the sweep in well under a minute.
const SWEEP_TICKS: u64 = 300;
const SWEEP_SEEDS_PER_PROFILE: u64 = 100;
/// Calm runs find less; half as many keep the suite fast.
const SWEEP_SEEDS_CALM: u64 = 50;

fn sweep(profile: Profile, seeds: std::ops::Range<u64>) {
    let opts = RunOptions {
        fault_phase_ticks: SWEEP_TICKS,
        ..RunOptions::default()
    };
    let failures: Vec<String> = seeds
        .filter_map(|seed| run_seed_with(seed, profile, &opts).err())
        .map(|f| f.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn sweep_calm() {
    sweep(Profile::Calm, 0..SWEEP_SEEDS_CALM);
}

#[test]
fn sweep_faults() {
    sweep(Profile::Faults, 0..SWEEP_SEEDS_PER_PROFILE);
}

/// Every line of `regressions.txt` is `<seed> <profile> [ticks] [# note]`,
/// run with the default length unless `ticks` is given.
#[test]
fn regressions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions.txt");
    let text = std::fs::read_to_string(path).expect("regressions.txt");
    let mut failures = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let seed: u64 = fields[0].parse().expect("seed");
        let profile = Profile::parse(fields[1]).expect("profile");
        let mut opts = RunOptions::default();
        if let Some(t) = fields.get(2) {
            opts.fault_phase_ticks = t.parse().expect("ticks");
        }
        if let Err(f) = run_seed_with(seed, profile, &opts) {
            failures.push(f.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "regressions failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn same_seed_same_run() {
    let opts = RunOptions {
        fault_phase_ticks: 200,
        ..RunOptions::default()
    };
    let a = run_seed_with(7, Profile::Faults, &opts).expect("passes");
    let b = run_seed_with(7, Profile::Faults, &opts).expect("passes");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
