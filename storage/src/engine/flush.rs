//! Flushes (immutable memtable -> L0 table), manifest installation, WAL
//! truncation, and the background loop that drives flushes and compactions.
//!
//! # Order of durable steps in a flush
//! 1. The WAL is synced: every batch in the memtable is durable in the log, so
//!    the log's next LSN after any crash is above the flushed LSN recorded next.
//! 2. The table is written and fsynced, and the directory fsynced (its name).
//! 3. The manifest naming the table, with the new flushed LSN and the ranges'
//!    applied indexes, replaces the old one (see [`manifest`](crate::manifest)).
//! 4. Only then is the memtable dropped and the WAL truncated below what the
//!    remaining memtables (and Raft) still need.

use super::compaction::YIELD_EVERY_VERSIONS;
use super::version::{LiveTable, MemState, Version};
use super::{Engine, EngineError};
use crate::disk::{Disk, OpenMode};
use crate::manifest::{self, ManifestState, WritePhase};
use crate::memtable::{Cursor, Value};
use crate::sst::format::table_name;
use crate::sst::table::owned;
use crate::sst::{Table, TableBuilder, TableMeta};
use crate::sync::yield_now;
use crate::wal::{create_segment_file, Lsn};
use std::rc::Rc;

impl<D: Disk> Engine<D> {
    /// Freezes the active memtable and flushes every memtable into L0 tables.
    pub async fn flush(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let _bg = self.background.lock().await;
        self.freeze_active();
        while self.flush_oldest().await? {}
        Ok(())
    }

    /// One unit of background work — the oldest memtable's flush, else one
    /// compaction — and whether there was any.
    pub async fn background_step(&self) -> Result<bool, EngineError> {
        self.check_writable()?;
        let _bg = self.background.lock().await;
        let result = async {
            if self.flush_oldest().await? || self.make_wal_spare().await {
                return Ok(true);
            }
            self.compact_once().await
        }
        .await;
        if result.is_err() {
            self.metric(|m| m.background_errors += 1);
        }
        self.background_failing.set(result.is_err());
        result
    }

    /// Makes the WAL's next segment file if the log wants one (its active
    /// segment is past half full and no recycled file waits), without holding
    /// the log: writers go on meanwhile, and the roll only renames the file.
    /// A failure (e.g. ENOSPC) is logged and counted, not retried until the
    /// log reaches its next segment (that roll then makes the file itself).
    /// Returns whether a spare was made. The caller holds the background lock.
    async fn make_wal_spare(&self) -> bool {
        let path = {
            let mut wal = self.wal.lock().await;
            let failed_here = self.spare_failed_seq.get() == Some(wal.active_seq());
            if failed_here || !wal.wants_spare() || self.check_writable().is_err() {
                return false;
            }
            wal.reserve_spare()
        };
        match create_segment_file(&self.disk, &path, &self.config.wal).await {
            Ok(file) => {
                self.wal.lock().await.adopt_spare(path, file);
                self.metric(|m| m.wal_spares += 1);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not make a WAL spare segment");
                self.metric(|m| m.background_errors += 1);
                self.spare_failed_seq
                    .set(Some(self.wal.lock().await.active_seq()));
                if let Err(e) = self.disk.remove(&path).await {
                    tracing::warn!(error = %e, "could not remove a partial WAL spare");
                }
                false
            }
        }
    }

    /// Whether a flush or a compaction is due.
    pub fn needs_background_work(&self) -> bool {
        !self.state.borrow().immutables.is_empty() || self.plan_compaction().is_some()
    }

    /// Runs background work forever: spawn it in the shard's background task
    /// queue. Sleeps until a memtable is frozen or a flush or compaction ends.
    /// Errors are logged and counted; the step is retried at the first wake-up
    /// *after* the failure (e.g. the next memtable frozen), never in a loop.
    /// Returns when the engine becomes read-only.
    pub async fn run_background(&self) {
        loop {
            let mut seen = self.work.generation();
            match self.background_step().await {
                Ok(true) => {
                    yield_now().await;
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "storage background step failed");
                    if self.read_only_reason().is_some() {
                        return;
                    }
                    seen = self.work.generation();
                }
            }
            self.work.wait(seen).await;
        }
    }

    /// Flushes the oldest immutable memtable into an L0 table; `false` if none.
    /// The caller holds the background lock.
    pub(super) async fn flush_oldest(&self) -> Result<bool, EngineError> {
        let Some(mem) = self.state.borrow().immutables.front().cloned() else {
            return Ok(false);
        };
        if mem.last_lsn.get().is_some() {
            self.sync_wal().await?;
        }
        let live = {
            let m = mem.table.borrow();
            !m.is_empty() || !m.range_dels().is_empty()
        };
        let table = if live {
            let number = self.alloc_file_number();
            Some(self.write_memtable(&mem, number).await?)
        } else {
            None
        };
        let mut manifest = self.state.borrow().manifest.clone();
        if let Some(lsn) = mem.last_lsn.get() {
            manifest.flushed_lsn = manifest.flushed_lsn.max(lsn);
        }
        for (&range, &index) in mem.applied.borrow().iter() {
            let slot = manifest.applied.entry(range).or_insert(index);
            *slot = (*slot).max(index);
        }
        let mut levels = self.state.borrow().version.levels.clone();
        if let Some(t) = &table {
            levels[0].insert(0, Rc::clone(t));
        }
        let bytes = table.as_ref().map_or(0, |t| t.meta.size);
        if let Err(e) = self.install(manifest, Version { levels }).await {
            if let Some(t) = table {
                self.remove_table_files(&[t.meta.number], false).await;
            }
            return Err(e);
        }
        {
            let mut st = self.state.borrow_mut();
            let flushed = st.immutables.pop_front().expect("the flushed memtable");
            assert!(Rc::ptr_eq(&flushed, &mem), "memtables flush in order");
        }
        self.metric(|m| {
            m.flushes += 1;
            m.flush_bytes += bytes;
        });
        self.work.notify_all();
        self.truncate_wal().await?;
        Ok(true)
    }

    /// Writes a memtable into table `number` and opens it.
    async fn write_memtable(
        &self,
        mem: &MemState,
        number: u64,
    ) -> Result<Rc<LiveTable<D::File>>, EngineError> {
        let path = self.dir.join(table_name(number));
        let result = async {
            let mut b =
                TableBuilder::create(&self.disk, &path, number, self.config.table.clone()).await?;
            let mut cursor = Cursor::first(&mem.table.borrow());
            let mut versions = 0u64;
            loop {
                versions += 1;
                if versions.is_multiple_of(YIELD_EVERY_VERSIONS) {
                    // Give foreground tasks their turn between CPU bursts.
                    yield_now().await;
                }
                let entry = {
                    let m = mem.table.borrow();
                    let e = cursor
                        .entry(&m)
                        .map(|e| (e.key.to_vec(), e.ts, owned(e.value)));
                    cursor.advance(&m);
                    e
                };
                let Some((key, ts, value)) = entry else { break };
                b.add(&key, ts, value.as_deref().map_or(Value::Delete, Value::Put))
                    .await?;
            }
            for (s, e) in mem.table.borrow().range_dels().iter() {
                b.add_range_del(s, e);
            }
            let meta = b.finish().await?;
            self.open_new_table(meta).await
        }
        .await;
        if result.is_err() {
            self.remove_table_files(&[number], false).await;
        }
        result
    }

    /// Makes a just-written table's name durable and opens it.
    pub(super) async fn open_new_table(
        &self,
        meta: TableMeta,
    ) -> Result<Rc<LiveTable<D::File>>, EngineError> {
        self.disk.sync_dir(&self.dir).await?;
        let path = self.dir.join(table_name(meta.number));
        let file = self.disk.open(&path, OpenMode::Existing).await?;
        let table = Table::open(file, meta.number).await?;
        Ok(Rc::new(LiveTable {
            meta,
            table: Rc::new(table),
        }))
    }

    /// Best-effort removal of table files no manifest names (or no longer
    /// names); leftovers are removed on the next open anyway.
    pub(super) async fn remove_table_files(&self, numbers: &[u64], sync: bool) {
        for &n in numbers {
            if let Err(e) = self.disk.remove(&self.dir.join(table_name(n))).await {
                tracing::warn!(table = n, error = %e, "could not remove table file");
            }
        }
        if sync && !numbers.is_empty() {
            if let Err(e) = self.disk.sync_dir(&self.dir).await {
                tracing::warn!(error = %e, "could not sync the directory after removals");
            }
        }
    }

    /// Replaces the manifest with `manifest` and, once it is durable, installs
    /// `version`. A failure from the rename on leaves the durable manifest
    /// unknown: the engine goes read-only (nothing is deleted).
    pub(super) async fn install(
        &self,
        mut manifest: ManifestState,
        version: Version<D::File>,
    ) -> Result<(), EngineError> {
        manifest.next_file_number = self.state.borrow().next_file;
        manifest.levels = version.metas();
        match manifest::write(&self.disk, &self.dir, &manifest).await {
            Ok(()) => {
                let mut st = self.state.borrow_mut();
                st.manifest = manifest;
                st.version = Rc::new(version);
                Ok(())
            }
            Err((e, WritePhase::BeforeRename)) => Err(e.into()),
            Err((e, WritePhase::AfterRename)) => {
                self.poison(format!("manifest replacement failed: {e}"));
                Err(e.into())
            }
        }
    }

    /// Truncates the WAL below the oldest record still needed: by a memtable's
    /// unflushed batches, or by Raft (in raft_log mode).
    pub(super) async fn truncate_wal(&self) -> Result<(), EngineError> {
        let mut wal = self.wal.lock().await;
        let floor = {
            let st = self.state.borrow();
            let mems = std::iter::once(&st.active).chain(st.immutables.iter());
            let needed = mems
                .filter_map(|m| m.first_lsn.get())
                .min()
                .unwrap_or(wal.next_lsn());
            needed.min(st.raft_floor)
        };
        if floor <= Lsn(1) {
            return Ok(());
        }
        if let Err(e) = wal.truncate_before(floor).await {
            let error = EngineError::from(e);
            self.poison(format!("WAL truncation failed: {error}"));
            return Err(error);
        }
        Ok(())
    }
}
