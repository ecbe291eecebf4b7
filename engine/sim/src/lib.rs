//! teller-sim: a deterministic whole-cluster simulator for `teller-raft`.
//!
//! One thread, one seed. Three or five nodes, each hosting a replica of one
//! to three Raft groups (one disk per node, shared by its groups), run over a
//! simulated network (delay, loss, duplication, reordering, symmetric and
//! asymmetric partitions), simulated disks (asynchronous fsync; a crash
//! loses unacknowledged writes, or keeps a prefix of them) and skewed,
//! jittery clocks with bounded offsets and jumps. Clients append to a
//! replicated list with retries and issue reads, served from the leader's
//! lease or by ReadIndex. After every event the [`checker`] verifies the
//! Raft safety properties; at the end every replica must hold the same list
//! containing every acknowledged append exactly once.
//!
//! Everything derives from the seed, so a failure replays exactly:
//! `cargo run -p teller-sim -- --seed N --profile faults --trace`.

pub mod app;
pub mod checker;
pub mod multi;
pub mod profile;
pub mod rng;
mod sim;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use profile::{Knobs, Profile};

/// One `multi` profile seed: knobs drawn from the seed, the load phase
/// scaled from `fault_phase_ticks`.
fn run_multi_seed(seed: u64, opts: &RunOptions) -> (Result<Stats, String>, Vec<String>) {
    let mut rng = rng::Rng::new(seed ^ MULTI_SEED_SALT);
    let mut mo = multi::MultiOptions::sweep(&mut rng);
    mo.load_us = opts.fault_phase_ticks * multi::TICK_US / MULTI_LOAD_TICKS_DIVISOR;
    mo.trace = opts.trace;
    let (groups, nodes) = (mo.groups, mo.nodes);
    let (outcome, trace) = multi::run_multi(seed, mo);
    let outcome = outcome.map(|r| Stats {
        nodes,
        groups,
        events: r.events,
        acked_appends: r.acked,
        crashes: r.crashes,
        ..Stats::default()
    });
    (outcome, trace)
}

/// Keeps the `multi` profile's knob stream apart from its run's stream.
const MULTI_SEED_SALT: u64 = 0x6d75_6c74_6921;
/// The `multi` load phase lasts `fault_phase_ticks / 5` shard ticks (a
/// multi-raft tick is 50 ms of simulated time).
const MULTI_LOAD_TICKS_DIVISOR: u64 = 5;

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub nodes: u64,
    pub groups: u64,
    pub events: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub acked_appends: u64,
    pub reads_served: u64,
    /// Reads served from a leader lease (included in `reads_served`).
    pub lease_reads: u64,
    pub clock_jumps: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_sent: u64,
    pub transfers: u64,
    /// Membership changes accepted by a leader.
    pub conf_changes: u64,
    pub leaders: u64,
    pub max_term: u64,
    pub committed: u64,
    pub final_len: u64,
}

/// A failed run: the invariant (or panic) and how to replay it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub profile: Profile,
    pub reason: String,
    /// The event trace, if the run was traced.
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} profile {} failed: {}\n  replay: scripts/sim.sh {} {} --trace",
            self.seed,
            self.profile.name(),
            self.reason,
            self.seed,
            self.profile.name()
        )
    }
}

/// How to run one seed.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Record a readable event trace (returned in a `Failure`).
    pub trace: bool,
    /// Length of the fault phase in ticks (the run adds a settle phase).
    pub fault_phase_ticks: u64,
    /// Break the clock bound on purpose: leases on, and clock offsets (and
    /// jumps) far beyond the configured maximum. For the test that shows
    /// the bound is what lease reads rely on; such runs may fail.
    pub clock_offset_violation: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            trace: false,
            fault_phase_ticks: profile::FAULT_PHASE_TICKS_DEFAULT,
            clock_offset_violation: false,
        }
    }
}

/// Runs one simulation. Deterministic in (`seed`, `profile`).
pub fn run_seed(seed: u64, profile: Profile) -> Result<Stats, Failure> {
    run_seed_with(seed, profile, &RunOptions::default())
}

/// As [`run_seed`] with explicit options. The same seed, profile and
/// options always produce the same run.
pub fn run_seed_with(seed: u64, profile: Profile, opts: &RunOptions) -> Result<Stats, Failure> {
    run_seed_traced(seed, profile, opts).0
}

/// As [`run_seed_with`], also returning the event trace (empty unless
/// `opts.trace`), whether the run passed or failed.
pub fn run_seed_traced(
    seed: u64,
    profile: Profile,
    opts: &RunOptions,
) -> (Result<Stats, Failure>, Vec<String>) {
    let (outcome, trace) = if profile == Profile::Multi {
        run_multi_seed(seed, opts)
    } else {
        let mut sim = sim::Sim::new(seed, profile, opts);
        let outcome = catch_unwind(AssertUnwindSafe(|| sim.run()));
        let trace = sim.trace.take().unwrap_or_default();
        let outcome = match outcome {
            Ok(Ok(())) => Ok(sim.stats.clone()),
            Ok(Err(violation)) => Err(violation),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(format!("panic: {msg}"))
            }
        };
        (outcome, trace)
    };
    let reason = match outcome {
        Ok(stats) => return (Ok(stats), trace),
        Err(reason) => reason,
    };
    let failure = Failure {
        seed,
        profile,
        reason,
        trace: trace.clone(),
    };
    (Err(failure), trace)
}
