//! The loop of [`RaftReplication`]: ticks, proposals, passes (apply what
//! is committed, then append and sync what is new), elections.

use std::time::Duration;

use bytes::Bytes;
use teller_raft::multi::{HostError, LogRecord, RangeId};
use teller_raft::{Entry, EntryKind, Index, ProposeError, Role};
use teller_storage::disk::Disk;
use teller_storage::wal::{Lsn, RecordMeta};

use super::{
    is_leader, nanos, propose_error, RaftReplication, ELECTION_ROUNDS_MAX, PASSES_PER_WAKE_MAX,
    TICKS_PER_WAKE_MAX, UNSYNCED_PASSES_MAX,
};
use crate::engine::lsm::{from_lsm_error, to_lsm_batch};
use crate::engine::WriteBatch;
use crate::error::KvError;
use crate::replication::log_record::{
    RaftRecord, SLOT_HARD_STATE, SLOT_LOG_BASE, SLOT_RANGE_REMOVED,
};
use crate::replication::notify;
use crate::sync::{race, yield_now};

impl<D: Disk + 'static> RaftReplication<D> {
    pub(super) async fn catch_up(&self) -> Result<(), KvError> {
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

    pub(super) async fn wait_for_work(&self) {
        let (idle, deadline) = {
            let st = self.state.borrow();
            let idle = st.host.active_count() == 0
                && st.unsynced.is_none()
                && st.queue.is_empty()
                && st.electing.is_empty()
                && st.removals.is_empty();
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
    pub(super) async fn drive(&self) -> Result<(), String> {
        self.remove_queued().await?;
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

    /// Removes the ranges queued for removal: between passes, so that no
    /// pass holds records of a removed range.
    async fn remove_queued(&self) -> Result<(), String> {
        let (records, replies) = {
            let mut st = self.state.borrow_mut();
            if st.removals.is_empty() {
                return Ok(());
            }
            let removals = std::mem::take(&mut st.removals);
            let mut records = Vec::with_capacity(removals.len());
            let mut replies = Vec::with_capacity(removals.len());
            for (range, reply) in removals {
                let _ = st.host.remove_group(range);
                st.ranges.remove(&range);
                let gone = || KvError::Unavailable(format!("range {range} left this shard"));
                for reply in st.electing.remove(&range).unwrap_or_default() {
                    reply.send(Err(gone()));
                }
                let waiting: Vec<_> = st
                    .waiters
                    .keys()
                    .filter(|(r, _)| *r == range)
                    .copied()
                    .collect();
                for key in waiting {
                    if let Some((_, reply)) = st.waiters.remove(&key) {
                        reply.send(Err(gone()));
                    }
                }
                let (gone_proposals, kept): (
                    std::collections::VecDeque<_>,
                    std::collections::VecDeque<_>,
                ) = std::mem::take(&mut st.queue)
                    .into_iter()
                    .partition(|p| p.range == range);
                st.queue = kept;
                for p in gone_proposals {
                    p.reply.send(Err(gone()));
                }
                records.push(RaftRecord::RangeRemoved { range });
                replies.push(reply);
            }
            (records, replies)
        };
        self.append(&records, true).await?;
        self.set_floor();
        for reply in replies {
            reply.send(Ok(()));
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
    pub(super) async fn append(&self, records: &[RaftRecord], sync: bool) -> Result<(), String> {
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
                RaftRecord::RangeRemoved { range } => {
                    st.retention.remove_range(*range);
                    st.retention.pin(*range, SLOT_RANGE_REMOVED, lsn);
                    st.removed.insert(*range);
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
}
