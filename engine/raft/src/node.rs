//! `RawNode`: one replica of one Raft group as a pure state machine.
//!
//! Inputs: `tick`, `step`, `propose`, `propose_conf_change`, `read_index`,
//! `transfer_leader`, `on_persisted`, `compact`. Output: `ready`. Nothing here reads a clock,
//! touches a socket or a disk, or draws randomness other than the seeded
//! election-timeout generator.

mod conf;
mod election;
mod lease;
mod quiesce;
mod read;
mod replication;

use std::collections::BTreeMap;

use crate::config::{Config, SplitMix64, ENTRY_DATA_BYTES_MAX};
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::progress::{Progress, ProgressState};
use crate::types::{
    ConfigError, Entry, EntryKind, HardState, Index, Message, MessageKind, NodeId, Persisted,
    ProposeError, ReadState, Ready, Role, SnapshotMeta, StepError, Term,
};
use election::Campaign;
use lease::LeaseState;
pub use lease::ReadPath;
use read::PendingRead;

/// One replica of one Raft group. See the crate docs for the contract.
#[derive(Debug)]
pub struct RawNode {
    cfg: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// The current configuration (a copy of the log's latest one).
    membership: Membership,
    /// (`log.conf_version()`, latest configuration entry committed) that
    /// `membership` and `progress` reflect.
    conf_state: (u64, bool),
    rng: SplitMix64,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    election_timeout: u32,
    /// (Pre)candidate: votes received.
    votes: BTreeMap<NodeId, bool>,
    /// Leader: one entry per other member (voters of both configurations
    /// and learners).
    progress: BTreeMap<NodeId, Progress>,
    /// Leader: transfer target and ticks since the transfer began.
    transfer: Option<(NodeId, u32)>,
    uncommitted_bytes: usize,
    read_seq: u64,
    reads_waiting: Vec<PendingRead>,
    /// Leader: reads received before the first commit of this term.
    reads_blocked: Vec<Vec<u8>>,
    reads_ready: Vec<ReadState>,
    broadcast_pending: bool,
    msgs: Vec<Message>,
    msgs_after_persist: Vec<Message>,
    hard_state_handed: HardState,
    ready_number: u64,
    /// Highest commit index ever observed, for the monotonicity assertion.
    commit_high_water: Index,
    lease: LeaseState,
    /// Idle: the host does not tick this replica (`node/quiesce.rs`).
    quiesced: bool,
}

impl RawNode {
    /// Starts a replica from its recovered durable state.
    pub fn new(cfg: Config, state: Persisted) -> Result<RawNode, ConfigError> {
        cfg.validate()?;
        let mut voters = cfg.voters.clone();
        voters.sort_unstable();
        if let Some(w) = voters.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateVoter(w[0]));
        }
        if voters.contains(&0) {
            return Err(ConfigError::InvalidId);
        }
        let log = RaftLog::recover(&state, cfg.applied, Membership::new(voters))?;
        // A crash between writing a Ready's entries and its hard state leaves
        // entries of a newer term than the durable term. Adopt that term with
        // no vote: any vote cast in it was never sent, since votes leave only
        // once the whole Ready is durable.
        let (term, vote) = if log.last_term() > state.hard_state.term {
            (log.last_term(), None)
        } else {
            (state.hard_state.term, state.hard_state.vote)
        };
        let mut node = RawNode {
            rng: SplitMix64::new(cfg.seed ^ cfg.id.wrapping_mul(0x2545_F491_4F6C_DD1D)),
            term,
            vote,
            role: Role::Follower,
            leader: None,
            commit_high_water: log.committed,
            hard_state_handed: HardState {
                term: state.hard_state.term,
                vote: state.hard_state.vote,
                commit: log.committed,
            },
            membership: log.membership().clone(),
            conf_state: (log.conf_version(), log.conf_index() <= log.committed),
            log,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            election_timeout: cfg.election_ticks,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            transfer: None,
            uncommitted_bytes: 0,
            read_seq: 0,
            reads_waiting: Vec::new(),
            reads_blocked: Vec::new(),
            reads_ready: Vec::new(),
            broadcast_pending: false,
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            ready_number: 0,
            lease: LeaseState::new(),
            quiesced: false,
            cfg,
        };
        node.reset_election_timer();
        node.check();
        Ok(node)
    }

    // ----- observers -------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// Voters of the current (incoming, while joint) configuration.
    pub fn voters(&self) -> &[NodeId] {
        &self.membership.voters
    }
    /// The current configuration: the latest one in the log.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// The configuration as of the commit index: the latest committed one.
    pub fn committed_membership(&self) -> &Membership {
        self.log.membership_at(self.log.committed)
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }
    pub fn commit_index(&self) -> Index {
        self.log.committed
    }
    pub fn applied_index(&self) -> Index {
        self.log.applied
    }
    pub fn persisted_index(&self) -> Index {
        self.log.persisted
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    /// First index still held in the log (entries before it are compacted).
    pub fn first_index(&self) -> Index {
        self.log.offset() + 1
    }
    /// Term of the entry at `index`, if it is in the log or is the snapshot's.
    pub fn log_term(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }
    /// The entry at `index`, if held in memory.
    pub fn log_entry(&self, index: Index) -> Option<Entry> {
        if index <= self.log.offset() || index > self.log.last_index() {
            return None;
        }
        self.log.entries_from(index, 1, usize::MAX).pop()
    }
    /// Leader only: (matched, next, state, inflight count) of a follower.
    pub fn progress(&self, id: NodeId) -> Option<(Index, Index, ProgressState, usize)> {
        self.progress
            .get(&id)
            .map(|p| (p.matched, p.next, p.state, p.inflight_len()))
    }
    /// Leader only: the node a leadership transfer is heading to.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|(t, _)| t)
    }

    /// May this replica campaign? Voters (of either configuration) can;
    /// learners and not-yet-added replicas never do. A replica that its
    /// latest, still uncommitted configuration removes also can, if it
    /// voted in the previous one (thesis §4.2.2): it may hold the only copy
    /// of that entry a quorum needs, and must be able to finish the change.
    /// Its own vote does not count, since tallies use the current
    /// configuration.
    fn promotable(&self) -> bool {
        let me = self.cfg.id;
        self.membership.is_voter(me)
            || (self.log.conf_index() > self.log.committed
                && self.log.previous_membership().is_voter(me))
    }

    /// Core invariants, asserted after every input.
    fn check(&mut self) {
        self.log.check();
        assert!(
            self.log.committed >= self.commit_high_water,
            "commit index went backwards"
        );
        self.commit_high_water = self.log.committed;
        assert!(
            self.log.last_term() <= self.term,
            "log term ahead of current term"
        );
        assert!(
            self.term >= self.hard_state_handed.term,
            "term went backwards"
        );
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader, Some(self.cfg.id));
                assert_eq!(self.vote, Some(self.cfg.id));
                debug_assert!(self.progress.keys().copied().eq(self
                    .tracked_members()
                    .into_iter()
                    .filter(|&m| m != self.cfg.id)));
                assert!(self.votes.is_empty());
            }
            Role::Candidate => {
                assert_eq!(self.vote, Some(self.cfg.id));
                assert!(self.leader.is_none() && self.progress.is_empty());
            }
            Role::PreCandidate | Role::Follower => {
                assert!(self.progress.is_empty() && self.transfer.is_none());
                assert!(self.reads_waiting.is_empty() && self.reads_blocked.is_empty());
            }
        }
    }

    // ----- role transitions --------------------------------------------------

    fn reset_role_state(&mut self) {
        self.quiesced = false;
        self.votes.clear();
        self.progress.clear();
        self.transfer = None;
        self.reads_waiting.clear();
        self.reads_blocked.clear();
        self.uncommitted_bytes = 0;
        self.broadcast_pending = false;
        self.heartbeat_elapsed = 0;
        self.lease.reset_leader();
    }

    // ----- inputs ------------------------------------------------------------

    /// Advances logical time by one tick. A quiesced replica ignores ticks.
    pub fn tick(&mut self) {
        if self.quiesced {
            return;
        }
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.election_elapsed = self.election_elapsed.saturating_add(1);
            // A replica bound by a lease promise does not campaign either:
            // its vote for itself counts like any other (`node/lease.rs`).
            if self.election_elapsed >= self.election_timeout
                && self.promotable()
                && !self.guarded()
            {
                let kind = if self.cfg.pre_vote {
                    Campaign::PreElection
                } else {
                    Campaign::Election
                };
                self.campaign(kind);
            }
        }
        self.finish_input();
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if let Some((target, elapsed)) = self.transfer {
            self.transfer = if elapsed + 1 >= self.cfg.election_ticks {
                None
            } else {
                Some((target, elapsed + 1))
            };
        }
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            let me = self.cfg.id;
            let progress = &self.progress;
            let active = self
                .membership
                .has_quorum(|id| id == me || progress.get(&id).is_some_and(|p| p.recent_active));
            if self.cfg.check_quorum && !active {
                self.become_follower(self.term, None);
                return;
            }
            for pr in self.progress.values_mut() {
                pr.recent_active = false;
            }
        }
        let retry_ticks = self.cfg.election_ticks;
        for pr in self.progress.values_mut() {
            if let ProgressState::Snapshot { .. } = pr.state {
                pr.snapshot_ticks += 1;
                if pr.snapshot_ticks >= retry_ticks {
                    pr.become_probe();
                }
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            if self.cfg.lease.is_some() {
                // Every heartbeat is a new round that can extend the lease.
                self.read_seq += 1;
            }
            self.broadcast_heartbeat();
        }
    }

    /// Refuses proposals unless this replica leads and no transfer runs.
    fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        Ok(())
    }

    /// Proposes `data` as a new entry. Returns its index; the entry may still
    /// be lost if leadership changes before it commits.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<Index, ProposeError> {
        self.check_can_propose()?;
        self.unquiesce();
        if data.len() > ENTRY_DATA_BYTES_MAX {
            return Err(ProposeError::TooLarge {
                bytes: data.len(),
                max: ENTRY_DATA_BYTES_MAX,
            });
        }
        if self.uncommitted_bytes > 0
            && self.uncommitted_bytes + data.len() > self.cfg.uncommitted_bytes_max
        {
            return Err(ProposeError::Backpressure);
        }
        let index = self.log.last_index() + 1;
        self.uncommitted_bytes += data.len();
        self.log.append(Entry {
            term: self.term,
            index,
            kind: EntryKind::Normal,
            data,
        });
        self.broadcast_pending = true;
        self.check();
        Ok(index)
    }

    /// The application captured its state machine at the applied index into
    /// `data`: compact the log prefix up to it. Returns the new snapshot's
    /// metadata (index, term and the configuration as of that index), or
    /// `None` if there is nothing new to compact. The caller stores
    /// `Snapshot { meta, data }` and drops its log prefix the same way.
    pub fn compact(&mut self, data: Vec<u8>) -> Option<SnapshotMeta> {
        let out = self.log.compact(data);
        self.check();
        out
    }

    /// Every `Ready` up to `number` is durable.
    pub fn on_persisted(&mut self, number: u64) {
        assert!(
            number <= self.ready_number,
            "persisted a Ready not yet handed out"
        );
        if self.log.on_persisted(number) && self.role == Role::Leader && self.maybe_commit() {
            self.broadcast_pending = true;
        }
        self.finish_input();
    }

    /// Brings role state in line with the log's configuration after an
    /// input, then asserts the invariants. Configuration changes are
    /// applied here, not mid-input, so handlers never see a follower's
    /// progress vanish under them.
    fn finish_input(&mut self) {
        self.sync_membership();
        self.maybe_step_down_removed();
        self.check();
    }

    // ----- output ------------------------------------------------------------

    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.msgs_after_persist.is_empty()
            || !self.reads_ready.is_empty()
            || self.log.has_unhanded()
            || self.log.has_committed_to_apply()
            || self.hard_state() != self.hard_state_handed
            || (self.broadcast_pending && self.role == Role::Leader)
    }

    /// Takes everything the caller must persist, send and apply. The caller
    /// must eventually call `on_persisted(ready.number)` (see [`Ready`]).
    pub fn ready(&mut self) -> Ready {
        if self.broadcast_pending && self.role == Role::Leader {
            self.broadcast_append();
        }
        self.broadcast_pending = false;
        self.ready_number += 1;
        let snapshot = self.log.take_unhanded_snapshot();
        let entries = self.log.take_unstable();
        let hs = self.hard_state();
        let hard_state = (hs != self.hard_state_handed).then_some(hs);
        self.hard_state_handed = hs;
        let committed_entries = self.log.take_committed(self.cfg.apply_bytes_max);
        self.log.note_ready(self.ready_number);
        let ready = Ready {
            number: self.ready_number,
            hard_state,
            snapshot,
            entries,
            messages: std::mem::take(&mut self.msgs),
            persisted_messages: std::mem::take(&mut self.msgs_after_persist),
            committed_entries,
            read_states: std::mem::take(&mut self.reads_ready),
        };
        self.check();
        ready
    }

    // ----- messages ----------------------------------------------------------

    fn send(&mut self, to: NodeId, kind: MessageKind) {
        self.send_with_term(to, self.term, kind);
    }

    /// Queues a message. Anything that vouches for durable state (an append
    /// or snapshot acknowledgement, a vote or a vote request, which both
    /// rely on the persisted term and vote) waits until the current `Ready`
    /// is persisted.
    fn send_with_term(&mut self, to: NodeId, term: Term, kind: MessageKind) {
        assert_ne!(to, self.cfg.id);
        let after_persist = matches!(
            kind,
            MessageKind::AppendResponse { .. }
                | MessageKind::Vote { pre: false, .. }
                | MessageKind::VoteResponse { pre: false, .. }
        );
        let msg = Message {
            group: self.cfg.group,
            from: self.cfg.id,
            to,
            term,
            kind,
        };
        if after_persist {
            self.msgs_after_persist.push(msg);
        } else {
            self.msgs.push(msg);
        }
    }

    /// Feeds one message from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        if m.group != self.cfg.group || m.to != self.cfg.id {
            return Err(StepError::Misrouted);
        }
        // Senders are not checked against the configuration: a replica may
        // hear from members of a configuration it has not seen yet.
        if m.from == self.cfg.id || m.from == 0 {
            return Err(StepError::UnknownSender(m.from));
        }
        validate_configurations(&m.kind)?;
        if self.quiesced && !self.keeps_quiet(&m) {
            self.unquiesce();
        }
        if m.term > self.term {
            if !self.on_higher_term(&m) {
                return Ok(());
            }
        } else if m.term < self.term {
            self.on_lower_term(&m);
            self.check();
            return Ok(());
        }
        self.dispatch(m);
        self.finish_input();
        Ok(())
    }

    /// A message from a higher term. Returns false if it must be ignored.
    fn on_higher_term(&mut self, m: &Message) -> bool {
        match m.kind {
            MessageKind::Vote { pre, transfer, .. } => {
                // Leader lease (thesis §4.2.3): while we hear from a live
                // leader, a vote request is a disruption, not an election.
                // With leader leases, also the clock-based promise
                // (`node/lease.rs`).
                let in_lease = self.cfg.check_quorum
                    && self.leader.is_some()
                    && self.election_elapsed < self.cfg.election_ticks;
                if (in_lease || self.guarded()) && !transfer {
                    return false;
                }
                if !pre {
                    self.become_follower(m.term, None);
                }
            }
            MessageKind::VoteResponse {
                pre: true,
                granted: true,
            } => {}
            MessageKind::Append { .. }
            | MessageKind::Heartbeat { .. }
            | MessageKind::InstallSnapshot { .. } => {
                self.become_follower(m.term, Some(m.from));
            }
            _ => self.become_follower(m.term, None),
        }
        true
    }

    fn on_lower_term(&mut self, m: &Message) {
        match m.kind {
            // Tell a stale leader about the newer term so it steps down
            // (Raft §5.1). Without this a replica whose term rose while the
            // leader's did not, such as a learner (which never campaigns to
            // force a new term), would ignore the leader forever.
            MessageKind::Append { .. } | MessageKind::Heartbeat { .. } => {
                self.send(m.from, MessageKind::HeartbeatResponse { read_seq: 0 });
            }
            // Tell a candidate of a stale term about ours (Raft §5.1): a
            // candidate whose term lags can otherwise never win, e.g. when
            // it alone holds the newest log while a removed replica keeps
            // raising everyone else's term.
            MessageKind::Vote { pre, .. } => {
                self.send(
                    m.from,
                    MessageKind::VoteResponse {
                        pre,
                        granted: false,
                    },
                );
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, m: Message) {
        let from = m.from;
        match m.kind {
            MessageKind::Vote {
                pre,
                last_index,
                last_term,
                ..
            } => {
                self.on_vote_request(from, m.term, pre, last_index, last_term);
            }
            MessageKind::VoteResponse { pre, granted } => {
                self.on_vote_response(from, m.term, pre, granted)
            }
            MessageKind::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.follow(from);
                self.on_append(from, prev_index, prev_term, &entries, commit);
            }
            MessageKind::Heartbeat {
                commit,
                read_seq,
                quiesce,
            } => {
                self.follow(from);
                self.log.commit_to(commit);
                self.send(from, MessageKind::HeartbeatResponse { read_seq });
                if quiesce {
                    self.maybe_quiesce_follower(commit);
                }
            }
            MessageKind::InstallSnapshot { snapshot } => {
                self.follow(from);
                let index = if self.log.restore(snapshot) {
                    self.log.last_index()
                } else {
                    self.log.committed
                };
                self.send(
                    from,
                    MessageKind::AppendResponse {
                        reject: false,
                        index,
                        hint_index: 0,
                        hint_term: 0,
                    },
                );
            }
            MessageKind::TimeoutNow => {
                if self.role != Role::Leader && self.promotable() {
                    self.campaign(Campaign::Transfer);
                }
            }
            MessageKind::AppendResponse {
                reject,
                index,
                hint_index,
                hint_term,
            } => {
                if self.role == Role::Leader {
                    self.on_append_response(from, reject, index, hint_index, hint_term);
                }
            }
            MessageKind::HeartbeatResponse { read_seq } => {
                if self.role == Role::Leader {
                    self.on_heartbeat_response(from, read_seq);
                }
            }
        }
    }

    /// A message from the leader of our term: follow it.
    fn follow(&mut self, leader: NodeId) {
        assert_ne!(self.role, Role::Leader, "two leaders in term {}", self.term);
        if self.role != Role::Follower || self.leader != Some(leader) {
            self.become_follower(self.term, Some(leader));
        }
        self.election_elapsed = 0;
        self.renew_guard();
    }
}

/// Configurations carried by a message must decode before anything is
/// applied: they come from the network.
fn validate_configurations(kind: &MessageKind) -> Result<(), StepError> {
    let ok = match kind {
        MessageKind::Append { entries, .. } => entries
            .iter()
            .filter(|e| e.kind == EntryKind::ConfChange)
            .all(|e| Membership::decode(&e.data).is_ok()),
        MessageKind::InstallSnapshot { snapshot } => snapshot.meta.membership.validate().is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(StepError::Malformed)
    }
}
