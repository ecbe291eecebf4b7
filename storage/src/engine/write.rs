//! The write path: batches and Raft entries through the group commit
//! ([`commit`](super::commit)) into the WAL, batches into the memtable, and
//! the backpressure that keeps memtables and L0 bounded.

use super::batch::{Op, WriteBatch};
use super::commit::Request;
use super::{
    Engine, EngineError, ENGINE_KIND_MIN, KIND_WRITE_BATCH, WAL_SEGMENTS_PER_MEMTABLE_MAX,
};
use crate::disk::Disk;
use crate::memtable::{Value, MEMTABLE_BYTES_MAX};
use crate::wal::{Lsn, RecordMeta, WalError};
use std::rc::Rc;

impl<D: Disk> Engine<D> {
    /// Applies `batch` atomically: logged in the WAL, then visible to reads.
    /// With `sync`, returns once the batch is durable (it shares one fdatasync
    /// with every write queued meanwhile). Returns the batch's LSN.
    pub async fn write(&self, batch: WriteBatch, sync: bool) -> Result<Lsn, EngineError> {
        self.check_batch(&batch)?;
        let payload = batch.encode();
        if payload.len() > self.record_payload_max {
            return Err(EngineError::InvalidArgument(format!(
                "batch of {} bytes exceeds the WAL record limit of {}",
                payload.len(),
                self.record_payload_max
            )));
        }
        self.check_writable()?;
        self.wait_for_room().await?;
        let records = vec![(Self::wal_meta(KIND_WRITE_BATCH), payload)];
        self.commit(Request::new(records, Some(batch), sync)).await
    }

    /// Raft mode: applies a committed batch of `range` at Raft index `index` to
    /// the memtable only (its bytes are already in the WAL as a Raft entry).
    /// The index becomes durable with the next flush (see [`Engine::open`]).
    ///
    /// A committed entry must be applied: when the background work it waits
    /// for fails (a flush hitting ENOSPC), it is applied anyway, past the
    /// memtable bound. Memory stays bounded by the log: nothing is truncated
    /// while memtables wait, so the WAL soon needs a new segment, and if the
    /// disk is still full that fails the next append (writes stop there, with
    /// the error, before anything more is committed).
    pub async fn apply(
        &self,
        batch: &WriteBatch,
        range_id: u64,
        index: u64,
    ) -> Result<(), EngineError> {
        self.check_batch(batch)?;
        self.check_writable()?;
        // While background steps fail, do not retry one per entry.
        if !self.background_failing.get() {
            if let Err(e) = self.wait_for_room().await {
                self.check_writable()?;
                tracing::warn!(error = %e, range_id, index, "applying past the memtable bound: background work failed");
            }
        }
        self.apply_to_memtable(batch, None, Some((range_id, index)));
        Ok(())
    }

    /// Raft mode: logs Raft records (kinds below [`ENGINE_KIND_MIN`]) through the
    /// group commit. Durable on return if `sync`. Returns the last record's LSN.
    pub async fn append_raft(
        &self,
        records: &[(RecordMeta, &[u8])],
        sync: bool,
    ) -> Result<Lsn, EngineError> {
        for (meta, payload) in records {
            if meta.kind == 0 || meta.kind >= ENGINE_KIND_MIN {
                return Err(EngineError::InvalidArgument(format!(
                    "raft record kind {} outside 1..{ENGINE_KIND_MIN}",
                    meta.kind
                )));
            }
            if payload.len() > self.record_payload_max {
                return Err(EngineError::InvalidArgument(format!(
                    "raft record of {} bytes exceeds {}",
                    payload.len(),
                    self.record_payload_max
                )));
            }
        }
        self.check_writable()?;
        let owned = records.iter().map(|(m, p)| (*m, p.to_vec())).collect();
        self.commit(Request::new(owned, None, sync)).await
    }

    /// Makes every logged record durable; returns the durable LSN.
    pub async fn sync_wal(&self) -> Result<Lsn, EngineError> {
        self.check_writable()?;
        self.commit(Request::new(Vec::new(), None, true)).await
    }

    fn check_batch(&self, batch: &WriteBatch) -> Result<(), EngineError> {
        batch.validate()?;
        if batch.memtable_cost() > MEMTABLE_BYTES_MAX / 2 {
            return Err(EngineError::InvalidArgument(format!(
                "batch needs {} memtable bytes, more than {}",
                batch.memtable_cost(),
                MEMTABLE_BYTES_MAX / 2
            )));
        }
        Ok(())
    }

    /// Queues a request and waits for it; leads a group if it is first.
    async fn commit(&self, request: Rc<Request>) -> Result<Lsn, EngineError> {
        self.commit.borrow_mut().enqueue(&request);
        if request.turn().await {
            let group = self.commit.borrow_mut().take_group();
            let guard = LeaderGuard {
                engine: self,
                group: &group,
                done: false,
            };
            self.commit_group(&group).await;
            guard.finish();
        }
        request.take_result()
    }

    /// Logs a group's records (one fdatasync if any asked for a sync), applies
    /// its batches in LSN order, and completes every request.
    async fn commit_group(&self, group: &[Rc<Request>]) {
        if let Err(e) = self.check_writable() {
            for r in group {
                r.finish(Err(e.duplicate()));
            }
            return;
        }
        let mut wal = self.wal.lock().await;
        let mut lsns: Vec<Option<Lsn>> = vec![None; group.len()];
        let sync = group.iter().any(|r| r.sync);
        let mut syncs = 0;
        let logged: Result<(), WalError> = async {
            for (i, request) in group.iter().enumerate() {
                for (meta, payload) in &request.records {
                    let lsn = match wal.append(*meta, payload) {
                        Err(WalError::BatchFull { .. }) => {
                            wal.sync().await?;
                            syncs += 1;
                            wal.append(*meta, payload)?
                        }
                        other => other?,
                    };
                    lsns[i] = Some(lsn);
                    // Large groups: full chunks go to the device while the
                    // rest is encoded (a no-op for small ones).
                    wal.write_ahead().await?;
                }
            }
            if sync {
                wal.sync().await?;
                syncs += 1;
            }
            Ok(())
        }
        .await;
        let counters = wal.counters();
        self.metric(|m| {
            m.write_groups += 1;
            m.wal_syncs += syncs;
            m.wal_rolls = counters.segments_prepared;
            m.wal_segments_created_inline = counters.segments_created;
        });
        if wal.wants_spare() && self.spare_failed_seq.get() != Some(wal.active_seq()) {
            self.work.notify_all();
        }
        if let Err(e) = logged {
            let error = EngineError::from(e);
            self.poison(format!("WAL write failed: {error}"));
            for r in group {
                r.finish(Err(error.duplicate()));
            }
            return;
        }
        // Still holding the WAL: nothing can truncate records not yet applied.
        let durable = wal.durable_lsn();
        let log_bytes = wal.counters().log_bytes;
        for (request, lsn) in group.iter().zip(lsns) {
            if let (Some(batch), Some(lsn)) = (&request.batch, lsn) {
                self.apply_to_memtable(batch, Some(lsn), None);
                let active = Rc::clone(&self.state.borrow().active);
                let first = active.first_log_bytes.get().unwrap_or(log_bytes);
                active.first_log_bytes.set(Some(first));
                let max = WAL_SEGMENTS_PER_MEMTABLE_MAX * self.config.wal.segment_bytes;
                if log_bytes - first > max {
                    self.freeze_active();
                }
            }
            self.metric(|m| m.writes += u64::from(!request.records.is_empty()));
            request.finish(Ok(lsn.unwrap_or(durable)));
        }
        drop(wal);
    }

    /// Applies a validated batch to the active memtable, first freezing it if
    /// the batch might not fit (a batch never spans two memtables, so a flush
    /// never splits one).
    pub(super) fn apply_to_memtable(
        &self,
        batch: &WriteBatch,
        lsn: Option<Lsn>,
        applied: Option<(u64, u64)>,
    ) {
        let cost = batch.memtable_cost();
        let (fits, empty) = {
            let st = self.state.borrow();
            let m = st.active.table.borrow();
            (
                m.approximate_bytes() + cost <= m.bytes_max(),
                st.active.is_empty(),
            )
        };
        if !fits {
            if !empty {
                self.freeze_active();
            }
            let bytes_max = self.config.memtable_bytes.max(cost + 4096);
            let mut st = self.state.borrow_mut();
            if st.active.table.borrow().approximate_bytes() + cost
                > st.active.table.borrow().bytes_max()
            {
                st.active = self.new_memstate(bytes_max);
            }
        }
        let active = Rc::clone(&self.state.borrow().active);
        {
            let mut m = active.table.borrow_mut();
            for op in batch.ops() {
                match op {
                    Op::Put { key, ts, value } => m.insert(key, *ts, Value::Put(value)),
                    Op::Delete { key, ts } => m.insert(key, *ts, Value::Delete),
                    Op::DeleteRange { start, end } => {
                        m.delete_range(start, end);
                        Ok(())
                    }
                }
                .expect("a validated batch fits the memtable it was sized for");
            }
        }
        if let Some(lsn) = lsn {
            active.note_lsn(lsn);
        }
        if let Some((range, index)) = applied {
            active.note_applied(range, index);
        }
        let full = {
            let m = active.table.borrow();
            m.approximate_bytes() >= m.bytes_max().min(self.config.memtable_bytes)
        };
        if full {
            self.freeze_active();
        }
    }

    /// Backpressure: while too many memtables wait for their flush or too many
    /// tables sit in L0, the writer does background work itself.
    pub(super) async fn wait_for_room(&self) -> Result<(), EngineError> {
        let mut stalled = false;
        loop {
            let over = {
                let st = self.state.borrow();
                st.immutables.len() >= self.config.immutable_memtables_max
                    || st.version.levels[0].len() >= self.config.l0_stall_tables
            };
            if !over {
                return Ok(());
            }
            if !stalled {
                stalled = true;
                self.metric(|m| m.write_stalls += 1);
            }
            self.check_writable()?;
            if !self.background_step().await? {
                return Ok(());
            }
        }
    }
}

/// Fails the group and passes the lead on if the leader's future is dropped
/// before it finished (the WAL state is then unknown: the engine goes
/// read-only rather than guess).
struct LeaderGuard<'a, D: Disk> {
    engine: &'a Engine<D>,
    group: &'a [Rc<Request>],
    done: bool,
}

impl<D: Disk> LeaderGuard<'_, D> {
    fn finish(mut self) {
        self.done = true;
        self.engine.commit.borrow_mut().hand_off();
    }
}

impl<D: Disk> Drop for LeaderGuard<'_, D> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.engine
            .poison("a group commit was cancelled mid-way".to_owned());
        for r in self.group {
            r.finish(Err(EngineError::ReadOnly(
                "group commit cancelled".to_owned(),
            )));
        }
        self.engine.commit.borrow_mut().hand_off();
    }
}
