//! Multi-raft: one host per shard running the replicas of thousands of
//! ranges, each its own Raft group, at low idle cost. Sans-I/O like the
//! core: the caller feeds ticks, clock readings and received batches, and
//! carries out each [`Pass`].
//!
//! ```text
//!   loop {                                   // one shard-loop pass
//!       host.set_clock(clock.now());
//!       if tick_due { host.tick() }
//!       for b in received { host.receive(b)? }  // after reading the clock
//!       host.propose(range, data) / read / ...
//!       let pass = host.ready();
//!       send(pass.batches);                      // one batch per peer
//!       if !pass.log.is_empty() { wal.append(&pass.log); wal.sync() }  // one write, one sync
//!       send(host.on_persisted(pass.number));    // acks and votes, after the sync
//!       apply(pass.applies);
//!   }
//! ```
//!
//! What keeps idle groups cheap:
//! * **Quiescence** (`node/quiesce.rs`): an idle group's leader quiesces
//!   it; quiesced replicas are not ticked and send nothing. `tick` costs
//!   O(active groups + peers), not O(groups).
//! * **Node liveness instead of per-group heartbeats**: the host sends each
//!   peer shard an empty batch when it had nothing else for it during a
//!   heartbeat interval, and presumes a peer dead after an election timeout
//!   of silence; then it wakes the quiesced groups that peer led, which
//!   elect a new leader as usual.
//! * **Coalescing and batching** (`batch.rs`): all messages of a pass to one
//!   peer travel in one [`Batch`], heartbeats as compact [`Beat`]s.
//! * **Group commit** (`log_store.rs`): every group's entries and hard
//!   states of a pass form one [`LogBatch`]: one WAL write and one sync.
//!
//! Invariants: a range is in `active` iff its replica is not quiesced; a
//! quiesced follower is listed under exactly the leader it waits for; passes
//! become durable in order (`on_persisted` takes every pass up to the
//! number given), and a group's persisted messages leave only after that.

mod batch;
mod log_store;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use batch::{Batch, Beat, BeatResponse, RangeId, BATCH_ITEMS_MAX};
pub use log_store::{LogBatch, LogRecord, LogStore, MemLogStore};

use crate::config::{Config, ELECTION_TICKS_DEFAULT, HEARTBEAT_TICKS_DEFAULT};
use crate::membership::ConfChange;
use crate::node::{RawNode, ReadPath};
use crate::types::{
    ConfigError, Entry, Index, Message, NodeId, Persisted, ProposeError, ReadState, Role, Snapshot,
    SnapshotMeta,
};

/// Most ranges one host runs.
pub const GROUPS_MAX: usize = 1 << 20;
/// Most passes whose persistence may be outstanding at once.
pub const PASSES_INFLIGHT_MAX: usize = 1024;

/// Configuration of one host.
#[derive(Clone, Copy, Debug)]
pub struct MultiConfig {
    /// This shard's replica id, the same in every group it belongs to.
    pub id: NodeId,
    /// A peer with no other traffic for this many ticks gets an empty
    /// batch (the liveness beat).
    pub beat_ticks: u32,
    /// A peer silent for this many ticks is presumed dead; the quiesced
    /// groups it led wake up.
    pub liveness_ticks: u32,
    /// Let idle groups quiesce.
    pub quiesce: bool,
}

impl MultiConfig {
    pub fn new(id: NodeId) -> MultiConfig {
        MultiConfig {
            id,
            beat_ticks: HEARTBEAT_TICKS_DEFAULT,
            liveness_ticks: ELECTION_TICKS_DEFAULT,
            quiesce: true,
        }
    }
}

/// Why a host operation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    UnknownRange(RangeId),
    RangeExists(RangeId),
    /// `Config::id` is not this host's id.
    WrongId {
        expected: NodeId,
        found: NodeId,
    },
    TooManyGroups {
        max: usize,
    },
    /// A batch not addressed to this host, or from an invalid sender.
    Misrouted {
        from: NodeId,
        to: NodeId,
    },
    /// Too many passes await `on_persisted`: persist before the next pass.
    PassesInflight {
        max: usize,
    },
    Config(ConfigError),
    Propose(ProposeError),
}

/// What the application must apply for one range after a pass (in order:
/// the snapshot, then the entries), and the reads it may serve once applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Apply {
    pub range: RangeId,
    pub snapshot: Option<Snapshot>,
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
}

/// The output of one pass. See the module docs for the order of work.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    pub number: u64,
    /// To append and sync (skip both if empty), then `on_persisted(number)`.
    pub log: LogBatch,
    /// To send now, at most one batch per peer (more only beyond
    /// `BATCH_ITEMS_MAX`).
    pub batches: Vec<Batch>,
    pub applies: Vec<Apply>,
    /// Ranges polled in this pass (given input since the last one).
    pub touched: Vec<RangeId>,
}

/// Counters, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// `RawNode::tick` calls (quiesced groups are not ticked).
    pub group_ticks: u64,
    pub passes: u64,
    pub batches_sent: u64,
    /// Beats carried in batches (coalesced heartbeats).
    pub beats_sent: u64,
    /// Non-heartbeat messages carried in batches.
    pub messages_sent: u64,
    /// Empty batches sent as node-level liveness beats.
    pub liveness_beats: u64,
    /// Quiesced groups woken because the node leading them went silent.
    pub woken_by_liveness: u64,
    /// Messages for a range this host does not run, or refused by it.
    pub messages_dropped: u64,
}

struct Group {
    raft: RawNode,
    /// Quiesced follower: the leader it waits for (key in `quiet_by_leader`).
    quiet_leader: Option<NodeId>,
}

struct Peer {
    heard_tick: u64,
    sent_tick: u64,
    alive: bool,
}

struct InflightPass {
    number: u64,
    readies: Vec<(RangeId, u64)>,
    messages: Vec<Message>,
}

/// The multi-raft host of one shard.
pub struct MultiRaft {
    cfg: MultiConfig,
    groups: BTreeMap<RangeId, Group>,
    /// Ranges whose replica is not quiesced: ticked every tick.
    active: BTreeSet<RangeId>,
    /// Ranges touched since the last pass: polled for output.
    dirty: BTreeSet<RangeId>,
    /// Quiesced followers by the node whose leadership they wait on.
    quiet_by_leader: BTreeMap<NodeId, BTreeSet<RangeId>>,
    peers: BTreeMap<NodeId, Peer>,
    ticks: u64,
    now: u64,
    pass: u64,
    inflight: VecDeque<InflightPass>,
    stats: HostStats,
}

impl MultiRaft {
    pub fn new(cfg: MultiConfig) -> MultiRaft {
        assert!(cfg.id != 0 && cfg.beat_ticks > 0 && cfg.liveness_ticks > cfg.beat_ticks);
        MultiRaft {
            cfg,
            groups: BTreeMap::new(),
            active: BTreeSet::new(),
            dirty: BTreeSet::new(),
            quiet_by_leader: BTreeMap::new(),
            peers: BTreeMap::new(),
            ticks: 0,
            now: 0,
            pass: 0,
            inflight: VecDeque::new(),
            stats: HostStats::default(),
        }
    }

    // ----- observers -----------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn stats(&self) -> HostStats {
        self.stats
    }
    pub fn group(&self, range: RangeId) -> Option<&RawNode> {
        self.groups.get(&range).map(|g| &g.raft)
    }
    pub fn ranges(&self) -> impl Iterator<Item = RangeId> + '_ {
        self.groups.keys().copied()
    }
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
    /// Groups that are not quiesced.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }
    /// Is the peer presumed alive (heard from within `liveness_ticks`)?
    pub fn peer_alive(&self, peer: NodeId) -> Option<bool> {
        self.peers.get(&peer).map(|p| p.alive)
    }

    // ----- groups ----------------------------------------------------------

    /// Starts the replica of `cfg.group` from its durable state.
    pub fn add_group(&mut self, cfg: Config, state: Persisted) -> Result<(), HostError> {
        let range = cfg.group;
        if cfg.id != self.cfg.id {
            return Err(HostError::WrongId {
                expected: self.cfg.id,
                found: cfg.id,
            });
        }
        if self.groups.contains_key(&range) {
            return Err(HostError::RangeExists(range));
        }
        if self.groups.len() >= GROUPS_MAX {
            return Err(HostError::TooManyGroups { max: GROUPS_MAX });
        }
        let mut raft = RawNode::new(cfg, state).map_err(HostError::Config)?;
        raft.set_clock(self.now);
        let group = Group {
            raft,
            quiet_leader: None,
        };
        self.groups.insert(range, group);
        self.touch(range);
        Ok(())
    }

    /// Stops and forgets the replica of `range` (its durable state is the
    /// caller's to delete).
    pub fn remove_group(&mut self, range: RangeId) -> Result<(), HostError> {
        let group = self
            .groups
            .remove(&range)
            .ok_or(HostError::UnknownRange(range))?;
        if let Some(l) = group.quiet_leader {
            self.unlist_quiet(l, range);
        }
        self.active.remove(&range);
        self.dirty.remove(&range);
        Ok(())
    }

    // ----- inputs ----------------------------------------------------------

    /// The shard's clock reading, passed to every group it touches.
    pub fn set_clock(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// One tick: ticks every non-quiesced group (leaders quiesce idle
    /// groups here) and watches peer liveness.
    pub fn tick(&mut self) {
        self.ticks += 1;
        let active: Vec<RangeId> = self.active.iter().copied().collect();
        for range in active {
            let quiesce = self.cfg.quiesce;
            let raft = self.raft_mut(range);
            raft.tick();
            if quiesce && raft.role() == Role::Leader {
                raft.quiesce();
            }
            self.stats.group_ticks += 1;
            self.touch(range);
        }
        self.watch_peers();
    }

    /// Steps every message of a batch received from a peer. Returns the
    /// ranges it named that this host does not run (the caller may create
    /// their replicas, e.g. for a learner being added). A batch not
    /// addressed to this host, or from id 0 or from itself, is refused
    /// whole (`HostError::Misrouted`); single messages a group refuses are
    /// counted in `messages_dropped`.
    pub fn receive(&mut self, batch: Batch) -> Result<Vec<RangeId>, HostError> {
        let from = batch.from;
        if batch.to != self.cfg.id || from == 0 || from == self.cfg.id {
            self.stats.messages_dropped += batch.len() as u64;
            return Err(HostError::Misrouted { from, to: batch.to });
        }
        let tick = self.ticks;
        let peer = self.peer(from);
        peer.heard_tick = tick;
        peer.alive = true;
        let mut unknown = Vec::new();
        for m in batch.into_messages() {
            let range = m.group;
            if !self.groups.contains_key(&range) {
                self.stats.messages_dropped += 1;
                unknown.push(range);
                continue;
            }
            if self.raft_mut(range).step(m).is_err() {
                self.stats.messages_dropped += 1;
            }
            self.touch(range);
        }
        unknown.sort_unstable();
        unknown.dedup();
        Ok(unknown)
    }

    pub fn propose(&mut self, range: RangeId, data: Vec<u8>) -> Result<Index, HostError> {
        self.with_group(range, |r| r.propose(data))
    }

    pub fn propose_conf_change(
        &mut self,
        range: RangeId,
        changes: &[ConfChange],
    ) -> Result<Index, HostError> {
        self.with_group(range, |r| r.propose_conf_change(changes))
    }

    /// A linearizable read: from the lease, or by ReadIndex (see `ReadPath`).
    pub fn read(&mut self, range: RangeId, ctx: Vec<u8>) -> Result<ReadPath, HostError> {
        self.with_group(range, |r| r.read(ctx))
    }

    pub fn transfer_leader(&mut self, range: RangeId, target: NodeId) -> Result<(), HostError> {
        self.with_group(range, |r| r.transfer_leader(target))
    }

    /// Compacts `range`'s log up to its applied index (see `RawNode::compact`).
    pub fn compact(
        &mut self,
        range: RangeId,
        data: Vec<u8>,
    ) -> Result<Option<SnapshotMeta>, HostError> {
        if !self.groups.contains_key(&range) {
            return Err(HostError::UnknownRange(range));
        }
        let meta = self.raft_mut(range).compact(data);
        self.touch(range);
        Ok(meta)
    }

    // ----- output ----------------------------------------------------------

    /// Is there anything for a pass to do?
    pub fn has_ready(&self) -> bool {
        !self.dirty.is_empty() || self.beats_due()
    }

    /// Gathers the output of every group touched since the last pass.
    pub fn ready(&mut self) -> Result<Pass, HostError> {
        if self.inflight.len() >= PASSES_INFLIGHT_MAX {
            return Err(HostError::PassesInflight {
                max: PASSES_INFLIGHT_MAX,
            });
        }
        self.pass += 1;
        self.stats.passes += 1;
        let mut pass = Pass {
            number: self.pass,
            log: LogBatch {
                pass: self.pass,
                records: Vec::new(),
            },
            ..Pass::default()
        };
        let mut outbox: BTreeMap<NodeId, Vec<Batch>> = BTreeMap::new();
        let mut inflight = InflightPass {
            number: self.pass,
            readies: Vec::new(),
            messages: Vec::new(),
        };
        let touched: Vec<RangeId> = std::mem::take(&mut self.dirty).into_iter().collect();
        for &range in &touched {
            self.drain_group(range, &mut pass, &mut outbox, &mut inflight);
        }
        pass.touched = touched;
        self.add_liveness_beats(&mut outbox);
        pass.batches = self.seal(outbox);
        self.inflight.push_back(inflight);
        Ok(pass)
    }

    /// Every pass up to `number` is durable: releases the groups'
    /// persisted messages (acknowledgements, votes), batched per peer.
    pub fn on_persisted(&mut self, number: u64) -> Vec<Batch> {
        assert!(number <= self.pass, "pass {number} was never handed out");
        let mut outbox: BTreeMap<NodeId, Vec<Batch>> = BTreeMap::new();
        while self.inflight.front().is_some_and(|p| p.number <= number) {
            let done = self.inflight.pop_front().expect("checked");
            for (range, ready) in done.readies {
                if self.groups.contains_key(&range) {
                    self.raft_mut(range).on_persisted(ready);
                    self.touch(range);
                }
            }
            for m in done.messages {
                push_to(&mut outbox, self.cfg.id, m);
            }
        }
        self.seal(outbox)
    }

    // ----- internals -------------------------------------------------------

    fn raft_mut(&mut self, range: RangeId) -> &mut RawNode {
        let raft = &mut self.groups.get_mut(&range).expect("known range").raft;
        raft.set_clock(self.now);
        raft
    }

    fn with_group<T>(
        &mut self,
        range: RangeId,
        f: impl FnOnce(&mut RawNode) -> Result<T, ProposeError>,
    ) -> Result<T, HostError> {
        if !self.groups.contains_key(&range) {
            return Err(HostError::UnknownRange(range));
        }
        let out = f(self.raft_mut(range)).map_err(HostError::Propose);
        self.touch(range);
        out
    }

    /// A group was given input: poll it in the next pass and keep the
    /// quiescence bookkeeping in line with its state.
    fn touch(&mut self, range: RangeId) {
        self.dirty.insert(range);
        let group = self.groups.get(&range).expect("known range");
        let (quiet, role, leader) = (
            group.raft.is_quiesced(),
            group.raft.role(),
            group.raft.leader(),
        );
        let listed = group.quiet_leader;
        let wanted = match (quiet, role, leader) {
            (true, Role::Follower, Some(l)) => Some(l),
            _ => None,
        };
        if listed != wanted {
            if let Some(l) = listed {
                self.unlist_quiet(l, range);
            }
            if let Some(l) = wanted {
                self.quiet_by_leader.entry(l).or_default().insert(range);
            }
            self.groups
                .get_mut(&range)
                .expect("known range")
                .quiet_leader = wanted;
        }
        if quiet {
            self.active.remove(&range);
        } else {
            self.active.insert(range);
        }
    }

    fn unlist_quiet(&mut self, leader: NodeId, range: RangeId) {
        if let Some(set) = self.quiet_by_leader.get_mut(&leader) {
            set.remove(&range);
            if set.is_empty() {
                self.quiet_by_leader.remove(&leader);
            }
        }
    }

    fn peer(&mut self, id: NodeId) -> &mut Peer {
        let tick = self.ticks;
        self.peers.entry(id).or_insert(Peer {
            heard_tick: tick,
            sent_tick: 0,
            alive: true,
        })
    }

    /// Presumes silent peers dead and wakes the quiesced groups they led.
    fn watch_peers(&mut self) {
        let (tick, limit) = (self.ticks, u64::from(self.cfg.liveness_ticks));
        let mut dead = Vec::new();
        for (&id, p) in self.peers.iter_mut() {
            if p.alive && tick - p.heard_tick > limit {
                p.alive = false;
                dead.push(id);
            }
        }
        for id in dead {
            let ranges = self.quiet_by_leader.remove(&id).unwrap_or_default();
            for range in ranges {
                let group = self.groups.get_mut(&range).expect("listed range");
                group.quiet_leader = None;
                self.stats.woken_by_liveness += 1;
                self.raft_mut(range).wake();
                self.touch(range);
            }
        }
    }

    fn drain_group(
        &mut self,
        range: RangeId,
        pass: &mut Pass,
        outbox: &mut BTreeMap<NodeId, Vec<Batch>>,
        inflight: &mut InflightPass,
    ) {
        let me = self.cfg.id;
        let Some(group) = self.groups.get_mut(&range) else {
            return;
        };
        let mut apply = Apply {
            range,
            ..Apply::default()
        };
        while group.raft.has_ready() {
            let rd = group.raft.ready();
            inflight.readies.push((range, rd.number));
            let records = &mut pass.log.records;
            if let Some(snapshot) = &rd.snapshot {
                let snapshot = snapshot.clone();
                records.push(LogRecord::Snapshot { range, snapshot });
            }
            records.extend(
                rd.entries
                    .into_iter()
                    .map(|entry| LogRecord::Entry { range, entry }),
            );
            if let Some(hard_state) = rd.hard_state {
                records.push(LogRecord::HardState { range, hard_state });
            }
            for m in rd.messages {
                push_to(outbox, me, m);
            }
            inflight.messages.extend(rd.persisted_messages);
            if rd.snapshot.is_some() {
                apply.snapshot = rd.snapshot;
                apply.committed_entries.clear();
            }
            apply.committed_entries.extend(rd.committed_entries);
            apply.read_states.extend(rd.read_states);
        }
        let members = group.raft.membership().members();
        if apply.snapshot.is_some()
            || !apply.committed_entries.is_empty()
            || !apply.read_states.is_empty()
        {
            pass.applies.push(apply);
        }
        for id in members.into_iter().filter(|&id| id != me) {
            self.peer(id);
        }
    }

    fn beats_due(&self) -> bool {
        let beat = u64::from(self.cfg.beat_ticks);
        self.peers
            .values()
            .any(|p| self.ticks.saturating_sub(p.sent_tick) >= beat)
    }

    /// An empty batch for every peer that would otherwise hear nothing
    /// from us for a beat interval.
    fn add_liveness_beats(&mut self, outbox: &mut BTreeMap<NodeId, Vec<Batch>>) {
        let beat = u64::from(self.cfg.beat_ticks);
        for (&id, p) in &self.peers {
            if self.ticks.saturating_sub(p.sent_tick) >= beat && !outbox.contains_key(&id) {
                outbox.insert(id, vec![Batch::new(self.cfg.id, id)]);
                self.stats.liveness_beats += 1;
            }
        }
    }

    /// Finalises batches: counts them and notes the send time per peer.
    fn seal(&mut self, outbox: BTreeMap<NodeId, Vec<Batch>>) -> Vec<Batch> {
        let mut out = Vec::new();
        for (id, batches) in outbox {
            self.peer(id).sent_tick = self.ticks;
            for b in batches {
                self.stats.batches_sent += 1;
                self.stats.beats_sent += (b.beats.len() + b.beat_responses.len()) as u64;
                self.stats.messages_sent += b.messages.len() as u64;
                out.push(b);
            }
        }
        out
    }
}

/// Adds `m` to the batch for its destination, opening a new batch when the
/// current one is full.
fn push_to(outbox: &mut BTreeMap<NodeId, Vec<Batch>>, me: NodeId, m: Message) {
    let batches = outbox.entry(m.to).or_default();
    if batches.last().is_none_or(|b| b.len() >= BATCH_ITEMS_MAX) {
        batches.push(Batch::new(me, m.to));
    }
    batches.last_mut().expect("just ensured").push(m);
}

#[cfg(test)]
mod tests;
