//! teller-raft: Raft consensus as a pure, sans-I/O state machine.
//!
//! One [`RawNode`] is one replica of one Raft group. It never reads a clock
//! (time comes in as `tick()` and, for leases, `set_clock(now)`), touches a
//! disk or a socket, spawns anything or draws randomness other than the
//! seeded election-timeout generator in [`Config::seed`]. The caller drives
//! it:
//!
//! ```text
//!   loop {
//!       node.tick()                      // every tick interval
//!       node.step(msg)                   // for each message received
//!       node.propose(data) / read_index  // client requests (leader only)
//!       if node.has_ready() {
//!           let rd = node.ready();
//!           send(rd.messages);
//!           persist(rd.snapshot, rd.entries, rd.hard_state)  // may be async
//!             .then(|| { send(rd.persisted_messages); node.on_persisted(rd.number) });
//!           apply(rd.snapshot, rd.committed_entries); serve(rd.read_states);
//!       }
//!   }
//! ```
//!
//! Around the core: membership changes by joint consensus with learners
//! (`membership.rs`, `node/conf.rs`), leader leases safe under a configured
//! clock offset (`node/lease.rs`, with the safety argument), quiescence of
//! idle groups (`node/quiesce.rs`), and [`multi::MultiRaft`], the per-shard
//! host of thousands of groups with coalesced heartbeats, per-peer batches
//! and one log batch per pass.
//!
//! # Invariants the core asserts
//! * term never decreases; a log entry's term never exceeds the current term;
//! * the commit index never decreases and never exceeds the last index;
//! * committed entries are never truncated (a conflict below the commit
//!   index panics);
//! * `applied <= min(committed, persisted)`: only durable, committed entries
//!   are handed to the application;
//! * at most one leader per term (a leader receiving an append for its own
//!   term panics);
//! * a leader counts itself toward a quorum only up to its *persisted* index,
//!   and commits by counting only entries of its own term (Raft §5.4.2).
//!
//! # Hazards
//! * Messages in `Ready::persisted_messages` vouch for durable state (an
//!   append acknowledgement, a vote). Sending them before the `Ready` is
//!   durable breaks safety under crashes.
//! * Membership changes take effect when their entry is *appended*, not
//!   when committed (thesis §4.1): every replica uses the latest
//!   configuration in its log, and a truncated configuration entry is
//!   reverted. Voter changes always pass through a joint configuration.
//! * Lease reads are only as safe as the configured maximum clock offset,
//!   and the clock reading given with a message must be taken after the
//!   message was received.
//!
//! See `docs/raft.md` for the full design and the persistence contract.

mod config;
mod log;
mod membership;
pub mod multi;
mod node;
mod progress;
mod storage;
mod types;

#[cfg(test)]
mod tests;

pub use config::{
    Config, LeaseConfig, APPEND_BYTES_MAX, APPEND_ENTRIES_MAX, APPLY_BYTES_MAX,
    ELECTION_TICKS_DEFAULT, ENTRY_DATA_BYTES_MAX, HEARTBEAT_TICKS_DEFAULT, INFLIGHT_APPENDS_MAX,
    LEARNER_LAG_ENTRIES_MAX, LEASE_ROUNDS_MAX, READS_PENDING_MAX, UNCOMMITTED_BYTES_MAX,
};
pub use membership::{ConfChange, ConfChangeError, MalformedMembership, Membership, MEMBERS_MAX};
pub use node::{RawNode, ReadPath};
pub use progress::ProgressState;
pub use types::{
    ConfigError, Entry, EntryKind, HardState, Index, Message, MessageKind, NodeId, Persisted,
    ProposeError, ReadState, Ready, Role, Snapshot, SnapshotMeta, StepError, Term,
};
