//! Fault profiles and the per-seed tuning knobs drawn from them.

use crate::rng::Rng;

/// Simulated time unit. A node ticks about every `TICK_UNITS`.
pub const TICK_UNITS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Random delays and reordering only.
    Calm,
    /// Crashes (with torn pending writes), symmetric and asymmetric
    /// partitions, loss, duplication, long delays, clock skew, and
    /// membership churn (adding, removing and promoting replicas).
    Faults,
    /// The multi-raft host (`multi.rs`): 1-24 ranges per shard with
    /// quiescence, crashes that lose unsynced passes, isolation, loss.
    Multi,
}

impl Profile {
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "calm" => Some(Profile::Calm),
            "faults" => Some(Profile::Faults),
            "multi" => Some(Profile::Multi),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Calm => "calm",
            Profile::Faults => "faults",
            Profile::Multi => "multi",
        }
    }
}

/// Everything tunable about one run, drawn from the seed.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Founding voters of every group (node ids `1..=nodes`).
    pub nodes: u64,
    /// Further nodes (ids after the founders) that start outside every
    /// group, with an empty configuration, until churn adds them.
    pub spare_nodes: u64,
    /// Mean units between membership changes (0 = none).
    pub churn_interval: u64,
    /// Leader leases on (reads without a message round when valid).
    pub lease: bool,
    /// The configured maximum clock offset between two nodes, in units;
    /// node clocks stay within it (offsets in `[0, bound]`) unless a run
    /// violates it on purpose.
    pub clock_offset_max: u64,
    /// Mean units between clock jumps of a random node (0 = none).
    pub clock_jump_interval: u64,
    /// Raft groups, each with a replica on every node.
    pub groups: usize,
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    /// Network delay is uniform in `[1, delay_max]` units.
    pub delay_max: u64,
    pub disk_delay_max: u64,
    /// Per-node tick period deviates up to this many percent from nominal.
    pub tick_skew_pct: u64,
    /// Extra random delay per tick, in units.
    pub tick_jitter: u64,
    /// Mean units between fault events (0 = no faults).
    pub fault_interval: u64,
    pub compact_every: u64,
    pub inflight_max: usize,
    pub append_entries_max: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub clients: usize,
    pub client_interval: u64,
    /// Client request timeout before retrying elsewhere.
    pub client_timeout: u64,
    pub read_pct: u64,
    /// Chance that a node crashes right after it voted or acknowledged an
    /// append, before that is durable (aims crashes at the windows where
    /// persistence ordering matters).
    pub buggify_crash_ppm: u32,
    /// Mean units between leadership-transfer requests.
    pub transfer_interval: u64,
    /// Faults stop (network heals, nodes restart) at this time.
    pub faults_end: u64,
    /// Clients stop issuing requests at this time.
    pub clients_end: u64,
    /// The run ends (and final checks run) at this time.
    pub end: u64,
}

/// Default length of the fault phase of a run, in ticks (a hundred
/// election timeouts or so).
pub const FAULT_PHASE_TICKS_DEFAULT: u64 = 1500;
/// Ticks after the fault phase during which clients still run.
const CLIENT_TAIL_TICKS: u64 = 200;
/// Ticks after clients stop for the cluster to converge.
const SETTLE_TICKS: u64 = 400;

impl Knobs {
    /// Draws the knobs of one run; `fault_phase_ticks` sets its length.
    pub fn draw(profile: Profile, fault_phase_ticks: u64, rng: &mut Rng) -> Knobs {
        let faults = profile == Profile::Faults;
        let faults_end = fault_phase_ticks * TICK_UNITS;
        let mut knobs = Knobs {
            nodes: if rng.flip() { 3 } else { 5 },
            groups: if rng.flip() {
                1
            } else {
                rng.range(2, 3) as usize
            },
            loss_ppm: if faults {
                rng.range(0, 100_000) as u32
            } else {
                0
            },
            dup_ppm: if faults {
                rng.range(0, 50_000) as u32
            } else {
                0
            },
            delay_max: if faults {
                rng.range(1, 4 * TICK_UNITS)
            } else {
                rng.range(1, TICK_UNITS)
            },
            disk_delay_max: rng.range(1, 2 * TICK_UNITS),
            tick_skew_pct: if faults { rng.range(0, 25) } else { 0 },
            tick_jitter: if faults {
                rng.range(0, TICK_UNITS / 2)
            } else {
                0
            },
            fault_interval: if faults {
                rng.range(5, 200) * TICK_UNITS
            } else {
                0
            },
            compact_every: rng.range(5, 60),
            inflight_max: rng.range(1, 16) as usize,
            append_entries_max: rng.range(1, 32) as usize,
            pre_vote: !faults || rng.below(4) != 0,
            check_quorum: !faults || rng.below(4) != 0,
            clients: rng.range(1, 6) as usize,
            client_interval: rng.range(1, 10) * TICK_UNITS,
            client_timeout: 60 * TICK_UNITS,
            read_pct: rng.range(0, 30),
            faults_end,
            transfer_interval: rng.range(100, 400) * TICK_UNITS,
            buggify_crash_ppm: if faults && rng.flip() {
                rng.range(0, 100_000) as u32
            } else {
                0
            },
            clients_end: faults_end + CLIENT_TAIL_TICKS * TICK_UNITS,
            end: faults_end + (CLIENT_TAIL_TICKS + SETTLE_TICKS) * TICK_UNITS,
            spare_nodes: 0,
            churn_interval: 0,
            lease: false,
            clock_offset_max: 0,
            clock_jump_interval: 0,
        };
        // Drawn last so that the knobs above keep their per-seed values.
        if faults && rng.below(4) != 0 {
            knobs.spare_nodes = rng.range(0, 2);
            knobs.churn_interval = rng.range(20, 150) * TICK_UNITS;
        }
        knobs.lease = rng.below(4) != 0;
        knobs.clock_offset_max = rng.range(0, if faults { 2 } else { 1 } * TICK_UNITS);
        if faults {
            knobs.clock_jump_interval = rng.range(20, 200) * TICK_UNITS;
        }
        knobs
    }

    /// Every node id of the run: founders, then spares.
    pub fn total_nodes(&self) -> u64 {
        self.nodes + self.spare_nodes
    }
}
