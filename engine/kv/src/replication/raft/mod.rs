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
//! # Removing a range
//! A range that leaves the shard ([`Replication::remove_range`]) is first
//! flushed: recovery will never replay its entries again, so what they
//! applied — the cleared descriptor above all — must be in the LSM's tables.
//! Then the loop removes it between passes, so no pass still holds its
//! records: its group stops, waiting proposals fail, and a *range removed*
//! record (synced) ends its log. Recovery then drops the range's earlier records
//! and starts no group for it. The removal record stays pinned (re-appended
//! like other pins), since the LSM keeps the range's applied index.
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

use teller_raft::multi::{HostError, MultiConfig, MultiRaft, RangeId};
use teller_raft::{
    Config, HardState, Index, ProposeError, Role, SnapshotMeta, ENTRY_DATA_BYTES_MAX,
};
use teller_storage::disk::Disk;
use teller_storage::wal::{Lsn, Retention};
use teller_storage::Engine as Lsm;

mod pass;
mod truncation;

use truncation::RangeLog;

use crate::engine::lsm::from_lsm_error;
use crate::engine::{LocalBoxFuture, WriteBatch};
use crate::env::Env;
use crate::error::KvError;
use crate::replication::recovery::RecoveredLog;
use crate::replication::{Applier, Replication};
use crate::sync::{oneshot, OneshotSender, Signal};

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
struct State {
    host: MultiRaft,
    ranges: BTreeMap<RangeId, RangeLog>,
    queue: VecDeque<Proposal>,
    /// Proposed entries awaiting their apply: `(range, index) -> (term, reply)`.
    waiters: HashMap<(RangeId, Index), (u64, Reply)>,
    /// Ranges waiting for their first leader, and who waits for them.
    electing: BTreeMap<RangeId, Vec<Reply>>,
    /// Ranges to remove at the loop's next round, and who waits for them.
    removals: Vec<(RangeId, Reply)>,
    /// Ranges removed here, whose removal records stay pinned.
    removed: BTreeSet<RangeId>,
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
            removals: Vec::new(),
            removed: recovered.removed,
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

impl<D: Disk + 'static> RaftReplication<D> {
    async fn remove_range_async(&self, range_id: u64) -> Result<(), KvError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        // The range's entries will not be replayed after the removal record:
        // what they applied must be durable in the tables first.
        self.lsm.flush().await.map_err(from_lsm_error)?;
        let (reply, rx) = oneshot();
        self.state.borrow_mut().removals.push((range_id, reply));
        self.wake.fire();
        rx.await.unwrap_or_else(|| {
            Err(KvError::Unavailable(
                "the shard's replication stopped".into(),
            ))
        })
    }

    /// Ranges removed from this shard (their removal records are pinned).
    pub fn removed_ranges(&self) -> Vec<RangeId> {
        self.state.borrow().removed.iter().copied().collect()
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

    fn remove_range(&self, range_id: u64) -> LocalBoxFuture<'_, Result<(), KvError>> {
        Box::pin(self.remove_range_async(range_id))
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
    for (_, reply) in st.removals.drain(..) {
        reply.send(Err(error()));
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
