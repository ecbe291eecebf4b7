//! Lease reads rely on the clock bound: with clock offsets far beyond the
//! configured maximum, the simulator catches a lease overlapping a newer
//! leader (or the stale read it causes); the same run within the bound
//! passes.

use teller_sim::{run_seed_with, Profile, RunOptions};

/// Short runs, as in the suite's sweep.
const TICKS: u64 = 300;
/// Seeds scanned for a detected violation (the first one is found early;
/// the bound only keeps a regression from spinning for long).
const SEEDS_MAX: u64 = 300;

#[test]
fn violating_the_clock_bound_is_what_breaks_lease_reads() {
    let violating = RunOptions {
        trace: false,
        fault_phase_ticks: TICKS,
        clock_offset_violation: true,
    };
    let detected = (0..SEEDS_MAX).find_map(|seed| {
        let failure = run_seed_with(seed, Profile::Faults, &violating).err()?;
        assert!(
            failure.reason.contains("stale read") || failure.reason.contains("lease overlap"),
            "only leases may go wrong when clocks misbehave: {failure}"
        );
        Some(seed)
    });
    let seed = detected.expect("some run with clocks beyond the bound serves a stale lease read");
    let within = RunOptions {
        clock_offset_violation: false,
        ..violating
    };
    run_seed_with(seed, Profile::Faults, &within).expect("the same seed within the bound passes");
}
