//! Configuration of one replica and the named limits of the core.

use crate::types::{ConfigError, NodeId};

/// Leader leases (see `node/lease.rs` for the mechanism and the safety
/// argument). Times are in the caller's clock units (nanoseconds in
/// production), passed in with `RawNode::set_clock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a replica refuses to vote for another candidate after it
    /// heard from its leader, on its own clock. Set it to the election
    /// timeout (election ticks times the tick interval), so that the
    /// promise costs no availability beyond what elections already take.
    pub election_timeout: u64,
    /// The largest difference between any two replicas' clocks (the same
    /// bound as the hybrid logical clock's maximum offset).
    pub max_clock_offset: u64,
}

impl LeaseConfig {
    /// How long a lease lasts, measured from the send time of the heartbeat
    /// round a quorum acknowledged.
    pub fn duration(&self) -> u64 {
        self.election_timeout - 2 * self.max_clock_offset
    }
}

/// Default election timeout. The effective timeout is randomised in
/// `[election_ticks, 2 * election_ticks)`.
pub const ELECTION_TICKS_DEFAULT: u32 = 10;
/// Default heartbeat interval. Must be well below the election timeout.
pub const HEARTBEAT_TICKS_DEFAULT: u32 = 2;
/// Most entries carried by one `Append` message.
pub const APPEND_ENTRIES_MAX: usize = 64;
/// Most payload bytes carried by one `Append` message (at least one entry is
/// always sent, so a single entry up to `ENTRY_DATA_BYTES_MAX` still moves).
pub const APPEND_BYTES_MAX: usize = 1024 * 1024;
/// Most `Append` messages in flight to one follower (flow-control window).
pub const INFLIGHT_APPENDS_MAX: usize = 16;
/// Largest payload of a single proposal.
pub const ENTRY_DATA_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most bytes of proposed-but-uncommitted entries a leader accepts before it
/// pushes back on proposals.
pub const UNCOMMITTED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most bytes of committed entries handed out by one `Ready`.
pub const APPLY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most pending ReadIndex requests a leader queues.
pub const READS_PENDING_MAX: usize = 4096;
/// A learner counts as caught up, and may be promoted, once it matches the
/// leader's log to within this many entries of the commit index.
pub const LEARNER_LAG_ENTRIES_MAX: u64 = 64;
/// Most unconfirmed heartbeat rounds a leader remembers for its lease.
pub const LEASE_ROUNDS_MAX: usize = 32;

const _: () = assert!(HEARTBEAT_TICKS_DEFAULT < ELECTION_TICKS_DEFAULT);
const _: () = assert!(APPEND_ENTRIES_MAX > 0 && INFLIGHT_APPENDS_MAX > 0);
const _: () = assert!(ENTRY_DATA_BYTES_MAX <= UNCOMMITTED_BYTES_MAX);

/// Configuration of one replica of one Raft group.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica's id (non-zero).
    pub id: NodeId,
    /// Opaque group tag stamped on outgoing messages.
    pub group: u64,
    /// Bootstrap configuration: the voters before any configuration entry,
    /// used when the persisted state has no snapshot. Identical on every
    /// founding replica; a replica added later passes an empty list and
    /// learns its configuration from the leader's log or snapshot.
    pub voters: Vec<NodeId>,
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    pub append_entries_max: usize,
    pub append_bytes_max: usize,
    pub inflight_appends_max: usize,
    pub uncommitted_bytes_max: usize,
    pub apply_bytes_max: usize,
    /// Campaign in two phases so a partitioned node cannot disrupt a leader.
    pub pre_vote: bool,
    /// Leader steps down when it has not heard from a quorum for an election
    /// timeout; followers then ignore votes while they have a live leader.
    pub check_quorum: bool,
    /// Index the application has already applied (from its own durable
    /// state); committed entries up to it are not handed out again.
    pub applied: u64,
    /// Seed of the election-timeout randomisation. The only randomness.
    pub seed: u64,
    /// Leader leases; `None` serves every read by ReadIndex.
    pub lease: Option<LeaseConfig>,
}

impl Config {
    /// Configuration with default limits, PreVote and CheckQuorum on.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            group: 0,
            voters,
            election_ticks: ELECTION_TICKS_DEFAULT,
            heartbeat_ticks: HEARTBEAT_TICKS_DEFAULT,
            append_entries_max: APPEND_ENTRIES_MAX,
            append_bytes_max: APPEND_BYTES_MAX,
            inflight_appends_max: INFLIGHT_APPENDS_MAX,
            uncommitted_bytes_max: UNCOMMITTED_BYTES_MAX,
            apply_bytes_max: APPLY_BYTES_MAX,
            pre_vote: true,
            check_quorum: true,
            applied: 0,
            seed,
            lease: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::InvalidId);
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::InvalidTicks);
        }
        if self.append_entries_max == 0
            || self.append_bytes_max == 0
            || self.inflight_appends_max == 0
            || self.apply_bytes_max == 0
            || self.uncommitted_bytes_max < ENTRY_DATA_BYTES_MAX
        {
            return Err(ConfigError::InvalidLimits);
        }
        if let Some(l) = self.lease {
            let shortening = l.max_clock_offset.checked_mul(2);
            if shortening.is_none_or(|s| s >= l.election_timeout) {
                return Err(ConfigError::InvalidLease);
            }
        }
        Ok(())
    }
}

/// SplitMix64: tiny, seedable, good enough to spread election timeouts.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish value in `[0, bound)`; `bound > 0`.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        self.next_u64() % bound
    }
}
