//! Plain data exchanged between the Raft core and its caller: log entries,
//! messages, hard state, snapshots and the `Ready` batch.
//!
//! Every type here is `Clone + Debug + PartialEq` and holds only integers,
//! enums and byte vectors, so a transport or a log store can serialise it
//! without knowing anything about the core.

use crate::membership::{ConfChangeError, Membership};

/// Identifier of a replica within one Raft group. `0` is never a valid id.
pub type NodeId = u64;
/// A Raft term. Starts at 0 and only grows.
pub type Term = u64;
/// A log index. The first real entry has index 1; index 0 is the empty prefix.
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Application command; `data` is opaque to Raft.
    Normal,
    /// Membership change: `data` is the complete resulting [`Membership`],
    /// encoded by [`Membership::encode`]. Takes effect when appended.
    ConfChange,
    /// No-op appended by a new leader to commit entries of earlier terms.
    Empty,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub kind: EntryKind,
    pub data: Vec<u8>,
}

impl Entry {
    /// Bytes this entry counts against batch limits (payload plus a fixed
    /// header estimate).
    pub fn size_bytes(&self) -> usize {
        const ENTRY_HEADER_BYTES: usize = 24;
        ENTRY_HEADER_BYTES + self.data.len()
    }
}

/// State that must be durable before any message that depends on it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
}

/// Describes the log prefix a snapshot replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot covers.
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
    /// Configuration as of `index` (empty on a replica that joined and has
    /// not yet seen a configuration entry).
    pub membership: Membership,
}

/// A snapshot of the application state machine at `meta.index`. The data is
/// produced and consumed by the application; Raft only ships it around.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// A network message between two replicas of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Opaque group tag copied from `Config::group`; the core never reads it
    /// except to check it. Lets the multi-raft layer batch per destination.
    pub group: u64,
    pub from: NodeId,
    pub to: NodeId,
    /// Sender's term (for `VoteResponse { pre: true, .. }`, the term the
    /// pre-vote was asked for).
    pub term: Term,
    pub kind: MessageKind,
}

/// The payload of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Leader → follower: append `entries` after (`prev_index`, `prev_term`).
    Append {
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    /// Follower → leader. On success `index` is the follower's matched index.
    /// On reject `index` is the rejected `prev_index` and (`hint_index`,
    /// `hint_term`) point at where the leader should probe next.
    AppendResponse {
        reject: bool,
        index: Index,
        hint_index: Index,
        hint_term: Term,
    },
    /// Leader → follower: liveness, commit index and ReadIndex round
    /// `read_seq`. With `quiesce`, the group is idle: a caught-up follower
    /// stops ticking until something happens (`node/quiesce.rs`).
    Heartbeat {
        commit: Index,
        read_seq: u64,
        quiesce: bool,
    },
    /// Follower → leader: echoes `read_seq`.
    HeartbeatResponse {
        read_seq: u64,
    },
    /// Candidate (or pre-candidate when `pre`) asks for a vote for `term`.
    /// `transfer` marks a campaign started by leadership transfer, which
    /// bypasses the leader-lease check.
    Vote {
        pre: bool,
        last_index: Index,
        last_term: Term,
        transfer: bool,
    },
    VoteResponse {
        pre: bool,
        granted: bool,
    },
    /// Leader → follower that is behind the leader's compacted prefix.
    InstallSnapshot {
        snapshot: Snapshot,
    },
    /// Leader → transfer target: campaign now.
    TimeoutNow,
}

impl MessageKind {
    /// Short name used in traces and golden output.
    pub fn name(&self) -> &'static str {
        match self {
            MessageKind::Append { .. } => "Append",
            MessageKind::AppendResponse { .. } => "AppendResponse",
            MessageKind::Heartbeat { .. } => "Heartbeat",
            MessageKind::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageKind::Vote { pre: true, .. } => "PreVote",
            MessageKind::Vote { pre: false, .. } => "Vote",
            MessageKind::VoteResponse { pre: true, .. } => "PreVoteResponse",
            MessageKind::VoteResponse { pre: false, .. } => "VoteResponse",
            MessageKind::InstallSnapshot { .. } => "InstallSnapshot",
            MessageKind::TimeoutNow => "TimeoutNow",
        }
    }
}

/// Role of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A linearizable read point: once the application has applied `index`, a
/// read tagged `ctx` may be served from local state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub index: Index,
    pub ctx: Vec<u8>,
}

/// Durable state recovered at start-up: what the caller persisted from
/// earlier `Ready`s (hard state, last snapshot, entries after it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Contiguous entries starting right after the snapshot (or at index 1).
    pub entries: Vec<Entry>,
}

/// Everything the caller must do after feeding input to a `RawNode`.
///
/// Contract (see `docs/raft.md`):
/// 1. `messages` may be sent at once.
/// 2. Persist, in this order and after all earlier `Ready`s: `snapshot`
///    (replacing the whole log), then `entries` (an entry at index `i`
///    replaces any stored entry at `i` and everything after it), then
///    `hard_state`.
/// 3. Once that is durable, send `persisted_messages` and call
///    `RawNode::on_persisted(number)`. Persistence may be asynchronous and
///    several `Ready`s may be outstanding, but they must become durable in
///    `number` order.
/// 4. Apply `snapshot` (if any) and then `committed_entries` to the state
///    machine, in order. `read_states` may be served once the applied index
///    reaches their `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Sequence number of this `Ready`, for `on_persisted`.
    pub number: u64,
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub messages: Vec<Message>,
    pub persisted_messages: Vec<Message>,
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// True if the caller has something to persist.
    pub fn must_persist(&self) -> bool {
        self.hard_state.is_some() || self.snapshot.is_some() || !self.entries.is_empty()
    }
}

/// Why a proposal, read or transfer request was refused. Operating errors:
/// the caller retries elsewhere or later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This replica is not the leader; `leader` is a hint.
    NotLeader { leader: Option<NodeId> },
    /// A leadership transfer is in progress; proposals are paused.
    TransferInProgress,
    /// The payload exceeds `ENTRY_DATA_BYTES_MAX`.
    TooLarge { bytes: usize, max: usize },
    /// Too many proposals are waiting for commit (`UNCOMMITTED_BYTES_MAX`).
    Backpressure,
    /// The target of a transfer is not a voter or is this node.
    InvalidTarget(NodeId),
    /// A configuration change was refused.
    ConfChange(ConfChangeError),
}

/// Why `step` refused a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// Message addressed to another group or replica.
    Misrouted,
    /// Sender id is 0 or this replica's own id.
    UnknownSender(NodeId),
    /// The message carries a configuration that does not decode (a
    /// `ConfChange` entry or a snapshot's membership).
    Malformed,
}

/// Why a `Config` or `Persisted` state was rejected at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    InvalidId,
    /// `Config::voters` lists a node twice.
    DuplicateVoter(NodeId),
    InvalidTicks,
    InvalidLimits,
    /// `2 * max_clock_offset` must be below the lease's election timeout.
    InvalidLease,
    /// Persisted entries are not contiguous after the snapshot.
    LogGap {
        expected: Index,
        found: Index,
    },
    /// Persisted commit index lies outside the persisted log.
    CommitOutOfRange {
        commit: Index,
        last: Index,
    },
    /// Persisted entry terms decrease.
    BadTerms,
    /// A persisted `ConfChange` entry (or the snapshot's membership) does
    /// not decode.
    BadMembership {
        index: Index,
    },
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.index, self.term)?;
        match self.kind {
            EntryKind::Normal if self.data.iter().all(u8::is_ascii_graphic) => {
                write!(f, ":{}", String::from_utf8_lossy(&self.data))
            }
            EntryKind::Normal => {
                write!(f, ":0x")?;
                self.data
                    .iter()
                    .take(16)
                    .try_for_each(|b| write!(f, "{b:02x}"))
            }
            EntryKind::ConfChange => match Membership::decode(&self.data) {
                Ok(m) => write!(f, ":conf({m})"),
                Err(_) => write!(f, ":conf(malformed)"),
            },
            EntryKind::Empty => Ok(()),
        }
    }
}

/// One line per message, used by golden tests and simulator traces.
impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}->{} {} t{}",
            self.from,
            self.to,
            self.kind.name(),
            self.term
        )?;
        match &self.kind {
            MessageKind::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                write!(f, " prev={prev_index}@{prev_term} commit={commit} [")?;
                for (i, e) in entries.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { " " } else { "" })?;
                }
                write!(f, "]")
            }
            MessageKind::AppendResponse {
                reject: false,
                index,
                ..
            } => write!(f, " ack={index}"),
            MessageKind::AppendResponse {
                reject: true,
                index,
                hint_index,
                hint_term,
            } => {
                write!(f, " reject={index} hint={hint_index}@{hint_term}")
            }
            MessageKind::Heartbeat {
                commit,
                read_seq,
                quiesce,
            } => {
                write!(f, " commit={commit} seq={read_seq}")?;
                if *quiesce {
                    write!(f, " quiesce")?;
                }
                Ok(())
            }
            MessageKind::HeartbeatResponse { read_seq } => write!(f, " seq={read_seq}"),
            MessageKind::Vote {
                last_index,
                last_term,
                transfer,
                ..
            } => {
                write!(
                    f,
                    " last={last_index}@{last_term}{}",
                    if *transfer { " transfer" } else { "" }
                )
            }
            MessageKind::VoteResponse { granted, .. } => {
                write!(f, " {}", if *granted { "granted" } else { "rejected" })
            }
            MessageKind::InstallSnapshot { snapshot } => {
                write!(f, " snap={}@{}", snapshot.meta.index, snapshot.meta.term)
            }
            MessageKind::TimeoutNow => Ok(()),
        }
    }
}
