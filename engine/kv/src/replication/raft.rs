//! [`RaftReplication`]: every range of a shard is a Raft group, and the
//! shard's WAL is the log of all of them.
//!
//! On a single node each group has one voter (this shard), so a write is
//! committed once it is durable here; but it takes exactly the replicated
//! path — proposal, append, commit, apply, reply — with nothing skipped, so
//! adding voters changes the membership, not the write path.
//!
//! # The loop
//! One task ([`RaftReplication::run`]) drives the shard's
//! [`MultiRaft`] host. Callers of [`Replication::replicate`] queue a
//! proposal and wake it; per wake-up it:
//! 1. reads the clock, ticks the host if a tick is due;
//! 2. proposes every queued batch (a range without a leader yet keeps its
//!    proposals queued, up to [`LEADER_WAIT`]);
//! 3. for each pass of the host: applies the pass's committed entries to
//!    the LSM (`Engine::apply` with the entry's index) and tells the
//!    store's [`Applier`], then completes their proposals; then appends the
//!    pass's log records (entries, hard states) to the WAL — **one WAL
//!    write and one fdatasync for all groups** when the pass holds entries
//!    or a new term or vote — and reports the pass durable.
//!
//! Committed entries are always durable already (the host hands out only
//! entries at or below its persisted index), so they are applied before the
//! pass's own records are written. A pass whose records only advance commit
//! indexes is appended without a sync: a commit index is recoverable, and
//! the next sync (the next write's, or the next tick's) covers it. So a
//! write costs one fdatasync, shared with every write of the same pass.
//!
//! # Recovery
//! `Engine::open` hands the WAL's Raft records to
//! [`super::recovery::RaftRecovery`]; [`RaftReplication::open`] starts a
//! group per range from that state with `applied` = the LSM's persisted
//! applied index, elects the single voters at once, and re-applies every
//! committed entry after it before returning. Re-applying is safe even when
//! the durable commit index lags the persisted applied index (the commit
//! record of the last pass was not synced): the entries after the commit
//! index are then re-applied in order, and a write batch only sets
//! `(key, ts)` entries, so re-applying a suffix in order ends in the state
//! the first application reached.
//!
//! Different ranges replay independently, which is sound because no two
//! ranges write the same engine key — except around a split, where the left
//! range's log wrote the right half's keys before it. So a new range's log
//! starts only after a flush of the LSM has made everything applied so far
//! durable ([`Replication::create_range`]): no entry of the left range from
//! before the split is ever replayed after one of the right range.
//!
//! # Log truncation
//! After each flush of the LSM, a range whose persisted applied index
//! advanced to `p` gets a *log base* record `(p, term)`, synced; then its
//! entries up to `p` are released ([`Retention`]), its in-memory Raft log
//! is compacted, and the WAL floor moves to the lowest LSN any range still
//! needs. Hard states and bases of idle ranges that hold the floor back
//! are re-appended.
//!
//! # Failures
//! A failed WAL append or apply (EIO, ENOSPC: the LSM is read-only from
//! then on) fails the host: the write that hit it, every queued and every
//! later write gets `KvError::Io` (58030) naming the cause; reads keep
//! working. Writes resume once the node restarts (recovery decides from
//! the disk what is durable).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;
use teller_raft::multi::{HostError, LogRecord, MultiConfig, MultiRaft, RangeId};
use teller_raft::{
    Config, Entry, EntryKind, HardState, Index, ProposeError, Role, SnapshotMeta,
    ENTRY_DATA_BYTES_MAX,
};
use teller_storage::disk::Disk;
use teller_storage::wal::{Lsn, RecordMeta, Retention};
use teller_storage::Engine as Lsm;

use super::log_record::{RaftRecord, SLOT_HARD_STATE, SLOT_LOG_BASE};
use super::recovery::RecoveredLog;
use super::{notify, Applier, Replication};
use crate::engine::lsm::{from_lsm_error, to_lsm_batch};
use crate::engine::{LocalBoxFuture, WriteBatch};
use crate::env::Env;
use crate::error::KvError;
use crate::sync::{oneshot, race, yield_now, OneshotSender, Signal};

/// Default tick of the shard's Raft groups.
pub const TICK_DEFAULT: Duration = Duration::from_millis(10);
/// Election timeout of a single-voter group, in ticks: nobody else can
/// lead, so it only bounds how long a range waits for its first leader.
pub const SINGLE_VOTER_ELECTION_TICKS: u32 = 3;
pub const SINGLE_VOTER_HEARTBEAT_TICKS: u32 = 1;
/// How long a proposal waits for its range to have a leader.
pub const LEADER_WAIT: Duration = Duration::from_secs(5);
/// Most proposals queued for the loop; beyond it writes are refused
/// (`Unavailable`) rather than queued without bound.
pub const PROPOSALS_QUEUED_MAX: usize = 65_536;
/// Most passes appended without a sync before the loop syncs anyway (the
/// host bounds passes awaiting persistence too).
pub const UNSYNCED_PASSES_MAX: usize = 64;
/// By default, a hard state or log base older than this many records
/// behind the log's end is re-appended, so that idle ranges do not hold
/// truncation back.
pub const STALE_PIN_RECORDS_DEFAULT: u64 = 1 << 16;
/// Most ticks one wake-up catches up on (after a long stall).
pub const TICKS_PER_WAKE_MAX: u32 = 16;
/// Most passes in a row before the loop yields to other tasks.
pub const PASSES_PER_WAKE_MAX: usize = 64;
/// Most wake-ups of the loop to elect the single voters at start-up.
pub const ELECTION_ROUNDS_MAX: usize = 1000;

/// Configuration of a shard's Raft host.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This shard's replica id in every group it is in (non-zero).
    pub replica_id: u64,
    pub tick: Duration,
    /// Seed of the election timeouts (the only randomness of Raft).
    pub seed: u64,
    /// Records behind the log's end past which an idle range's hard state
    /// or log base is re-appended.
    pub stale_pin_records: u64,
}

impl RaftConfig {
    pub fn new(replica_id: u64, seed: u64) -> RaftConfig {
        RaftConfig {
            replica_id,
            tick: TICK_DEFAULT,
            seed,
            stale_pin_records: STALE_PIN_RECORDS_DEFAULT,
        }
    }
}

type Reply = OneshotSender<Result<(), KvError>>;

struct Proposal {
    range: RangeId,
    data: Vec<u8>,
    reply: Reply,
    /// Physical time after which waiting for a leader gives up.
    deadline: u64,
}

/// Per range: what truncation and re-appending need.
struct RangeLog {
    /// The durable log base (index 0: none yet).
    base: SnapshotMeta,
    /// The last hard state appended.
    hard_state: HardState,
    /// `(first index, term)` of each term among applied entries after the
    /// base (plus the one the base is in), for the term of a future base.
    terms: VecDeque<(Index, u64)>,
}

impl RangeLog {
    fn term_at(&self, index: Index) -> Option<u64> {
        self.terms
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map(|&(_, t)| t)
    }

    fn note_applied(&mut self, index: Index, term: u64) {
        if self.terms.back().is_none_or(|&(_, t)| t != term) {
            self.terms.push_back((index, term));
        }
    }

    fn set_base(&mut self, base: SnapshotMeta) {
        while self.terms.len() > 1 && self.terms[1].0 <= base.index {
            self.terms.pop_front();
        }
        self.base = base;
    }
}

struct State {
    host: MultiRaft,
    ranges: BTreeMap<RangeId, RangeLog>,
    queue: VecDeque<Proposal>,
    /// Proposed entries awaiting their apply: `(range, index) -> (term, reply)`.
    waiters: HashMap<(RangeId, Index), (u64, Reply)>,
    /// Ranges waiting for their first leader, and who waits for them.
    electing: BTreeMap<RangeId, Vec<Reply>>,
    retention: Retention,
    /// LSN of the last Raft record appended.
    last_lsn: Lsn,
    /// Passes appended but not yet synced: the newest, and how many.
    unsynced: Option<(u64, usize)>,
    flushes_seen: u64,
    /// Physical time of the next tick.
    next_tick: u64,
    failed: Option<String>,
    stopped: bool,
}

/// The shard's Raft host over its LSM. See the module docs.
pub struct RaftReplication<D: Disk> {
    lsm: Rc<Lsm<D>>,
    env: Rc<dyn Env>,
    cfg: RaftConfig,
    state: RefCell<State>,
    wake: Signal,
    applier: RefCell<Option<Weak<dyn Applier>>>,
    /// Entries applied since open (tests and monitoring).
    applied_entries: Cell<u64>,
    /// WAL fdatasyncs asked for by the loop.
    syncs: Cell<u64>,
}

impl<D: Disk + 'static> RaftReplication<D> {
    /// Starts a group per recovered range, elects them, re-applies their
    /// committed entries after the LSM's persisted applied index, and
    /// returns once every range is caught up. Spawn [`Self::run`] next.
    pub async fn open(
        lsm: Rc<Lsm<D>>,
        recovered: RecoveredLog,
        env: Rc<dyn Env>,
        cfg: RaftConfig,
    ) -> Result<Rc<RaftReplication<D>>, KvError> {
        let mut host = MultiRaft::new(MultiConfig::new(cfg.replica_id));
        let mut ranges = BTreeMap::new();
        let mut electing = BTreeMap::new();
        for (range, r) in recovered.ranges {
            let base = r
                .persisted
                .snapshot
                .as_ref()
                .map(|s| s.meta.clone())
                .unwrap_or_default();
            let hard_state = r.persisted.hard_state;
            host.add_group(group_config(&cfg, range, r.applied), r.persisted)
                .map_err(|e| KvError::Corrupt(format!("range {range}: {e:?}")))?;
            let terms = VecDeque::from([(base.index, base.term)]);
            ranges.insert(
                range,
                RangeLog {
                    base,
                    hard_state,
                    terms,
                },
            );
            electing.insert(range, Vec::new());
        }
        let now = env.now_nanos();
        let state = State {
            host,
            ranges,
            queue: VecDeque::new(),
            waiters: HashMap::new(),
            electing,
            retention: recovered.retention,
            last_lsn: recovered.last_lsn,
            unsynced: None,
            flushes_seen: lsm.metrics().flushes,
            next_tick: now.saturating_add(nanos(cfg.tick)),
            failed: None,
            stopped: false,
        };
        let replication = Rc::new(RaftReplication {
            lsm,
            env,
            cfg,
            state: RefCell::new(state),
            wake: Signal::new(),
            applier: RefCell::new(None),
            applied_entries: Cell::new(0),
            syncs: Cell::new(0),
        });
        // Nothing else appends yet: the WAL's next LSN is above the last
        // recovered record, so the floor protects what the ranges need.
        replication.set_floor();
        replication.catch_up().await?;
        Ok(replication)
    }

    /// The loop: runs until [`Self::stop`] or a storage failure.
    pub async fn run(self: Rc<Self>) {
        loop {
            if self.state.borrow().stopped || self.failure().is_some() {
                return;
            }
            self.wait_for_work().await;
            if let Err(e) = self.drive().await {
                self.fail(e);
                return;
            }
        }
    }

    /// Stops the loop; queued and waiting writes fail as unavailable.
    pub fn stop(&self) {
        let mut st = self.state.borrow_mut();
        st.stopped = true;
        let error = || KvError::Unavailable("the shard's replication stopped".into());
        drain(&mut st, error);
        drop(st);
        self.wake.fire();
    }

    /// Why writes are refused, if the host failed.
    pub fn failure(&self) -> Option<String> {
        self.state.borrow().failed.clone()
    }

    /// The LSM underneath.
    pub fn lsm(&self) -> &Rc<Lsm<D>> {
        &self.lsm
    }

    /// Entries applied since open.
    pub fn applied_entries(&self) -> u64 {
        self.applied_entries.get()
    }

    /// WAL fdatasyncs the loop asked for since open.
    pub fn syncs(&self) -> u64 {
        self.syncs.get()
    }

    /// Ranges with a Raft group here.
    pub fn ranges(&self) -> Vec<RangeId> {
        self.state.borrow().host.ranges().collect()
    }

    /// `(applied, committed, last)` Raft indexes of a range.
    pub fn indexes(&self, range: RangeId) -> Option<(Index, Index, Index)> {
        let st = self.state.borrow();
        st.host
            .group(range)
            .map(|g| (g.applied_index(), g.commit_index(), g.last_index()))
    }

    // ----- the loop ----------------------------------------------------------

    /// Elects every range still electing and applies what is committed,
    /// without waiting for ticks (single voters only: nobody else can win).
    async fn catch_up(&self) -> Result<(), KvError> {
        for _ in 0..ELECTION_ROUNDS_MAX {
            {
                let st = self.state.borrow();
                let caught_up = st.host.ranges().all(|r| {
                    let g = st.host.group(r).expect("listed range");
                    g.role() == Role::Leader && g.applied_index() >= g.commit_index()
                });
                if caught_up && st.electing.is_empty() {
                    return Ok(());
                }
            }
            if let Err(e) = self.drive().await {
                self.fail(e.clone());
                return Err(KvError::Io(e));
            }
        }
        Err(KvError::Unavailable(format!(
            "the shard's ranges did not elect a leader in {ELECTION_ROUNDS_MAX} rounds"
        )))
    }

    async fn wait_for_work(&self) {
        let (idle, deadline) = {
            let st = self.state.borrow();
            let idle = st.host.active_count() == 0
                && st.unsynced.is_none()
                && st.queue.is_empty()
                && st.electing.is_empty();
            (idle, st.next_tick)
        };
        if idle {
            self.wake.wait().await;
        } else {
            let wait = deadline.saturating_sub(self.env.now_nanos());
            race(self.wake.wait(), self.env.sleep(Duration::from_nanos(wait))).await;
        }
    }

    /// One round of work: ticks, proposals, passes, syncs, truncation.
    async fn drive(&self) -> Result<(), String> {
        let ticked = self.tick();
        self.propose_queued();
        let mut passes = 0;
        while self.state.borrow().host.has_ready() {
            if passes == PASSES_PER_WAKE_MAX {
                self.wake.fire();
                yield_now().await;
                break;
            }
            self.pass().await?;
            passes += 1;
        }
        self.finish_elections();
        if ticked && self.state.borrow().unsynced.is_some() {
            self.sync().await?;
        }
        self.maintain().await?;
        let more = {
            let st = self.state.borrow();
            !st.electing.is_empty()
                || st.host.has_ready()
                || st.queue.iter().any(|p| is_leader(&st.host, p.range))
        };
        if more {
            self.wake.fire();
            yield_now().await;
        }
        Ok(())
    }

    /// Ticks the host if a tick is due (and at once while a range is
    /// electing). Returns whether it ticked.
    fn tick(&self) -> bool {
        let now = self.env.now_nanos();
        let tick = nanos(self.cfg.tick).max(1);
        let mut st = self.state.borrow_mut();
        st.host.set_clock(now);
        let mut ticks = 0;
        while now >= st.next_tick && ticks < TICKS_PER_WAKE_MAX {
            st.host.tick();
            st.next_tick = st.next_tick.saturating_add(tick);
            ticks += 1;
        }
        if now >= st.next_tick {
            st.next_tick = now.saturating_add(tick);
        }
        if !st.electing.is_empty() {
            st.host.tick();
            ticks += 1;
        }
        ticks > 0
    }

    fn propose_queued(&self) {
        let now = self.env.now_nanos();
        let mut st = self.state.borrow_mut();
        let queued = std::mem::take(&mut st.queue);
        for p in queued {
            match st.host.propose(p.range, p.data.clone()) {
                Ok(index) => {
                    let term = st.host.group(p.range).map_or(0, |g| g.term());
                    st.waiters.insert((p.range, index), (term, p.reply));
                }
                Err(HostError::Propose(ProposeError::NotLeader { .. }))
                | Err(HostError::Propose(ProposeError::TransferInProgress))
                | Err(HostError::Propose(ProposeError::Backpressure))
                    if now < p.deadline =>
                {
                    st.queue.push_back(p);
                }
                Err(e) => p.reply.send(Err(propose_error(p.range, e))),
            }
        }
    }

    /// One pass of the host: apply what is committed, persist what is new.
    async fn pass(&self) -> Result<(), String> {
        if self
            .state
            .borrow()
            .unsynced
            .is_some_and(|(_, n)| n >= UNSYNCED_PASSES_MAX)
        {
            self.sync().await?;
        }
        let pass = self
            .state
            .borrow_mut()
            .host
            .ready()
            .map_err(|e| format!("raft pass: {e:?}"))?;
        if !pass.batches.is_empty() {
            return Err("raft messages for other replicas, but this host has no peers".into());
        }
        for apply in pass.applies {
            if apply.snapshot.is_some() {
                return Err(format!(
                    "range {}: installing a Raft snapshot is not supported",
                    apply.range
                ));
            }
            for entry in apply.committed_entries {
                self.apply_entry(apply.range, entry).await?;
            }
        }
        let mut records = Vec::with_capacity(pass.log.records.len());
        let mut sync = false;
        {
            let st = self.state.borrow();
            for record in pass.log.records {
                let r = match record {
                    LogRecord::Entry { range, entry } => {
                        sync = true;
                        RaftRecord::Entry { range, entry }
                    }
                    LogRecord::HardState { range, hard_state } => {
                        let old = st.ranges.get(&range).map(|r| r.hard_state);
                        sync |= old
                            .is_none_or(|o| (o.term, o.vote) != (hard_state.term, hard_state.vote));
                        RaftRecord::HardState { range, hard_state }
                    }
                    LogRecord::Snapshot { range, .. } => {
                        return Err(format!(
                            "range {range}: persisting a Raft snapshot is not supported"
                        ))
                    }
                };
                records.push(r);
            }
        }
        if !records.is_empty() {
            self.append(&records, sync).await?;
        }
        let mut st = self.state.borrow_mut();
        if sync || (records.is_empty() && st.unsynced.is_none()) {
            st.host.on_persisted(pass.number);
            st.unsynced = None;
        } else {
            let count = st.unsynced.map_or(0, |(_, n)| n);
            st.unsynced = Some((pass.number, count + 1));
        }
        Ok(())
    }

    /// Applies one committed (and durable) entry and completes its proposal.
    async fn apply_entry(&self, range: RangeId, entry: Entry) -> Result<(), String> {
        let mut batch = None;
        if entry.kind == EntryKind::Normal && !entry.data.is_empty() {
            let decoded = WriteBatch::decode(&Bytes::from(entry.data)).map_err(|e| {
                format!(
                    "range {range}: committed entry {} does not decode: {e}",
                    entry.index
                )
            })?;
            if let Err(e) = self
                .lsm
                .apply(&to_lsm_batch(&decoded), range, entry.index)
                .await
            {
                let error = from_lsm_error(e);
                self.complete(range, entry.index, entry.term, Err(error.clone().into()));
                return Err(format!(
                    "applying entry {} of range {range}: {error}",
                    entry.index
                ));
            }
            batch = Some(decoded);
        }
        self.applied_entries.set(self.applied_entries.get() + 1);
        if let Some(r) = self.state.borrow_mut().ranges.get_mut(&range) {
            r.note_applied(entry.index, entry.term);
        }
        if let Some(batch) = &batch {
            notify(&self.applier, range, batch);
        }
        self.complete(range, entry.index, entry.term, Ok(()));
        Ok(())
    }

    /// Completes the proposal at `(range, index)`, if it is ours: with
    /// `result` if the applied entry is the one proposed (same term), else
    /// it lost to a leadership change.
    fn complete(&self, range: RangeId, index: Index, term: u64, result: Result<(), KvError>) {
        let waiter = self.state.borrow_mut().waiters.remove(&(range, index));
        if let Some((proposed_term, reply)) = waiter {
            if proposed_term == term {
                reply.send(result);
            } else {
                reply.send(Err(KvError::Unavailable(format!(
                    "range {range}: the write was lost to a leadership change"
                ))));
            }
        }
    }

    /// Appends records (one group commit; one fdatasync if `sync`) and
    /// notes their LSNs for truncation.
    async fn append(&self, records: &[RaftRecord], sync: bool) -> Result<(), String> {
        let encoded: Vec<(RecordMeta, Vec<u8>)> = records.iter().map(RaftRecord::encode).collect();
        let refs: Vec<(RecordMeta, &[u8])> =
            encoded.iter().map(|(m, p)| (*m, p.as_slice())).collect();
        let last = match self.lsm.append_raft(&refs, sync).await {
            Ok(lsn) => lsn,
            Err(e) => return Err(format!("appending to the Raft log: {}", from_lsm_error(e))),
        };
        if sync {
            self.syncs.set(self.syncs.get() + 1);
        }
        let mut st = self.state.borrow_mut();
        let first = last.0 + 1 - records.len() as u64;
        for (i, record) in records.iter().enumerate() {
            let lsn = Lsn(first + i as u64);
            match record {
                RaftRecord::Entry { range, entry } => st.retention.entry(*range, entry.index, lsn),
                RaftRecord::HardState { range, hard_state } => {
                    st.retention.pin(*range, SLOT_HARD_STATE, lsn);
                    if let Some(r) = st.ranges.get_mut(range) {
                        r.hard_state = *hard_state;
                    }
                }
                RaftRecord::LogBase { range, base } => {
                    st.retention.pin(*range, SLOT_LOG_BASE, lsn);
                    st.retention.release(*range, base.index);
                    if let Some(r) = st.ranges.get_mut(range) {
                        r.set_base(base.clone());
                    }
                }
            }
        }
        st.last_lsn = last;
        if sync {
            if let Some((pass, _)) = st.unsynced.take() {
                st.host.on_persisted(pass);
            }
        }
        Ok(())
    }

    /// Makes every appended record durable and reports the passes.
    async fn sync(&self) -> Result<(), String> {
        if let Err(e) = self.lsm.sync_wal().await {
            return Err(format!("syncing the Raft log: {}", from_lsm_error(e)));
        }
        self.syncs.set(self.syncs.get() + 1);
        let mut st = self.state.borrow_mut();
        if let Some((pass, _)) = st.unsynced.take() {
            st.host.on_persisted(pass);
        }
        Ok(())
    }

    fn finish_elections(&self) {
        let mut st = self.state.borrow_mut();
        let led: Vec<RangeId> = st
            .electing
            .keys()
            .copied()
            .filter(|&r| is_leader(&st.host, r))
            .collect();
        for range in led {
            for reply in st.electing.remove(&range).unwrap_or_default() {
                reply.send(Ok(()));
            }
        }
    }

    /// After a flush: log bases for ranges whose applied state became
    /// durable, re-appended pins of idle ranges, then a new WAL floor.
    async fn maintain(&self) -> Result<(), String> {
        let flushes = self.lsm.metrics().flushes;
        let records = {
            let mut st = self.state.borrow_mut();
            if flushes == st.flushes_seen {
                return Ok(());
            }
            st.flushes_seen = flushes;
            self.truncation_records(&st)
        };
        if !records.is_empty() {
            self.append(&records, true).await?;
            let mut st = self.state.borrow_mut();
            for r in &records {
                if let RaftRecord::LogBase { range, .. } = r {
                    // In memory, the log may go up to the applied index: the
                    // entries after the base stay in the WAL for recovery,
                    // and there is no follower to send them to.
                    let _ = st.host.compact(*range, Vec::new());
                }
            }
        }
        self.set_floor();
        Ok(())
    }

    fn truncation_records(&self, st: &State) -> Vec<RaftRecord> {
        let mut records = Vec::new();
        let mut based = BTreeSet::new();
        for (&range, log) in &st.ranges {
            let persisted = self.lsm.applied_index(range).unwrap_or(0);
            if persisted <= log.base.index {
                continue;
            }
            let (Some(term), Some(group)) = (log.term_at(persisted), st.host.group(range)) else {
                continue;
            };
            let base = SnapshotMeta {
                index: persisted,
                term,
                membership: group.committed_membership().clone(),
            };
            records.push(RaftRecord::LogBase { range, base });
            based.insert(range);
        }
        let stale_below = Lsn(st.last_lsn.0.saturating_sub(self.cfg.stale_pin_records));
        for (range, slot) in st.retention.stale_pins(stale_below) {
            let Some(log) = st.ranges.get(&range) else {
                continue;
            };
            match slot {
                SLOT_HARD_STATE => records.push(RaftRecord::HardState {
                    range,
                    hard_state: log.hard_state,
                }),
                SLOT_LOG_BASE if !based.contains(&range) => records.push(RaftRecord::LogBase {
                    range,
                    base: log.base.clone(),
                }),
                _ => {}
            }
        }
        records
    }

    fn set_floor(&self) {
        let st = self.state.borrow();
        let floor = st.retention.min_needed(Lsn(st.last_lsn.0 + 1));
        self.lsm.set_raft_log_floor(floor);
    }

    fn fail(&self, reason: String) {
        tracing::error!(%reason, "the shard's Raft log failed: writes are refused until restart");
        let mut st = self.state.borrow_mut();
        if st.failed.is_none() {
            st.failed = Some(reason.clone());
        }
        drain(&mut st, || KvError::Io(reason.clone()));
    }

    fn refusal(&self) -> Option<KvError> {
        let st = self.state.borrow();
        if let Some(reason) = &st.failed {
            return Some(KvError::Io(reason.clone()));
        }
        st.stopped
            .then(|| KvError::Unavailable("the shard's replication stopped".into()))
    }

    async fn replicate_async(&self, range_id: u64, batch: WriteBatch) -> Result<(), KvError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let data = batch.encode();
        if data.len() > ENTRY_DATA_BYTES_MAX {
            return Err(KvError::Internal(format!(
                "a write batch of {} bytes exceeds the Raft entry limit of {ENTRY_DATA_BYTES_MAX}",
                data.len()
            )));
        }
        let (reply, rx) = oneshot();
        {
            let mut st = self.state.borrow_mut();
            if st.queue.len() >= PROPOSALS_QUEUED_MAX {
                return Err(KvError::Unavailable(format!(
                    "{PROPOSALS_QUEUED_MAX} writes are already queued on this shard"
                )));
            }
            st.queue.push_back(Proposal {
                range: range_id,
                data,
                reply,
                deadline: self.env.now_nanos().saturating_add(nanos(LEADER_WAIT)),
            });
        }
        self.wake.fire();
        rx.await.unwrap_or_else(|| {
            Err(KvError::Unavailable(
                "the shard's replication stopped".into(),
            ))
        })
    }

    async fn create_range_async(&self, range_id: u64) -> Result<(), KvError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        if self.state.borrow().host.group(range_id).is_some() {
            return Ok(());
        }
        // Everything applied so far becomes durable before the new range's
        // log starts (see "Recovery" in the module docs).
        self.lsm.flush().await.map_err(from_lsm_error)?;
        let (reply, rx) = oneshot();
        {
            let mut st = self.state.borrow_mut();
            if st.host.group(range_id).is_none() {
                let cfg = group_config(&self.cfg, range_id, 0);
                st.host
                    .add_group(cfg, Default::default())
                    .map_err(|e| KvError::Internal(format!("range {range_id}: {e:?}")))?;
                st.ranges.insert(
                    range_id,
                    RangeLog {
                        base: SnapshotMeta::default(),
                        hard_state: HardState::default(),
                        terms: VecDeque::from([(0, 0)]),
                    },
                );
            }
            st.electing.entry(range_id).or_default().push(reply);
        }
        self.wake.fire();
        rx.await.unwrap_or_else(|| {
            Err(KvError::Unavailable(
                "the shard's replication stopped".into(),
            ))
        })
    }
}

impl<D: Disk + 'static> Replication for RaftReplication<D> {
    fn create_range(&self, range_id: u64) -> LocalBoxFuture<'_, Result<(), KvError>> {
        Box::pin(self.create_range_async(range_id))
    }

    fn replicate(
        &self,
        range_id: u64,
        batch: WriteBatch,
    ) -> LocalBoxFuture<'_, Result<(), KvError>> {
        Box::pin(self.replicate_async(range_id, batch))
    }

    fn set_applier(&self, applier: Weak<dyn Applier>) {
        *self.applier.borrow_mut() = Some(applier);
    }
}

/// The Raft configuration of one range: a single voter (this shard).
fn group_config(cfg: &RaftConfig, range: RangeId, applied: u64) -> Config {
    let mut c = Config::new(
        cfg.replica_id,
        vec![cfg.replica_id],
        cfg.seed ^ range.rotate_left(17),
    );
    c.group = range;
    c.applied = applied;
    c.election_ticks = SINGLE_VOTER_ELECTION_TICKS;
    c.heartbeat_ticks = SINGLE_VOTER_HEARTBEAT_TICKS;
    c
}

fn is_leader(host: &MultiRaft, range: RangeId) -> bool {
    host.group(range).is_some_and(|g| g.role() == Role::Leader)
}

fn propose_error(range: RangeId, e: HostError) -> KvError {
    match e {
        HostError::UnknownRange(_) => {
            KvError::Unavailable(format!("range {range} has no Raft group on this shard"))
        }
        HostError::Propose(ProposeError::NotLeader { .. })
        | HostError::Propose(ProposeError::TransferInProgress)
        | HostError::Propose(ProposeError::Backpressure) => KvError::Unavailable(format!(
            "range {range} had no leader able to take the write within {LEADER_WAIT:?}"
        )),
        other => KvError::Internal(format!("range {range}: proposal refused: {other:?}")),
    }
}

/// Fails every queued, proposed and electing request with `error()`.
fn drain(st: &mut State, error: impl Fn() -> KvError) {
    for p in st.queue.drain(..) {
        p.reply.send(Err(error()));
    }
    for (_, (_, reply)) in st.waiters.drain() {
        reply.send(Err(error()));
    }
    for (_, replies) in std::mem::take(&mut st.electing) {
        for reply in replies {
            reply.send(Err(error()));
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
