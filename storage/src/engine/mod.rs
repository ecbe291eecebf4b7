//! The storage engine of one shard: a WAL, memtables and leveled SSTables of
//! MVCC versions, behind a small API.
//!
//! # Data model
//! Entries are `(user key, Timestamp) -> Value(bytes) | Tombstone`. Writing the
//! same (key, ts) again replaces the earlier entry. A `DeleteRange` removes every
//! version in a span written before it. Reads are at a timestamp: the newest
//! version `<= read_ts` (see [`read`] for the rule across sources).
//!
//! # API (the contract the transaction and Raft layers build on)
//! - [`Engine::write`]: an atomic [`WriteBatch`] of `Put`/`Delete`/`DeleteRange`
//!   through the WAL (group commit) into the memtable; durable on return if
//!   `sync`.
//! - Raft mode — the WAL is the Raft log: [`Engine::append_raft`] logs Raft
//!   entries (kinds below [`ENGINE_KIND_MIN`]) through the same group commit;
//!   [`Engine::apply`] applies a committed batch to the memtable only and notes
//!   `(range, applied index)`; a flush persists it in the manifest, and
//!   [`Engine::open`] hands back each range's persisted applied index and every
//!   Raft record, so the Raft layer replays from there.
//!   [`Engine::set_raft_log_floor`] tells the engine which WAL records Raft still
//!   needs.
//! - [`Engine::get`] / [`Engine::get_version`] (tombstones too, so callers see
//!   the version timestamp for write-too-old and uncertainty checks),
//!   [`Engine::scan`], [`Engine::iter`] (seek/next/prev, bounded), and
//!   [`Engine::snapshot`] (a view that later writes do not change).
//! - [`Engine::flush`], [`Engine::approximate_size`], [`Engine::ingest`] (an SST
//!   stream that atomically replaces a span: Raft snapshots, range moves).
//! - Unversioned records (e.g. lock records) are ordinary versions at a fixed
//!   timestamp — use [`Timestamp::ZERO`] so their tombstones are collected —
//!   under their own key prefix; overwriting the same (key, ts) replaces them.
//!
//! # Concurrency
//! One engine per shard, `!Send`, methods take `&self`: the shard's tasks call
//! it concurrently (interleaved at awaits). State lives in `RefCell`s that are
//! never borrowed across an await; the WAL and background work are serialised
//! by single-threaded async locks ([`crate::sync`]).
//!
//! # Background work and backpressure
//! A full memtable becomes immutable and a new one takes writes. Flushes and
//! compactions run in [`Engine::run_background`] (spawn it in the shard's
//! background task queue) or one step at a time with [`Engine::background_step`]
//! (tests on the simulated disk drive it explicitly). When immutable memtables or
//! L0 tables pile up past their bounds, writers stall: each does background work
//! itself until the bounds hold again (counted in [`EngineMetrics::write_stalls`]).
//!
//! # Failures
//! - A WAL failure (EIO, ENOSPC on the log) fails the writes of that group (not
//!   acknowledged, not applied) and makes the engine read-only: earlier data stays
//!   readable; reopen the engine to resume writing (after ENOSPC clears).
//!   Retrying an fsync in place would be the fsyncgate bug.
//! - A flush or compaction failure before its manifest is replaced leaves the
//!   engine as it was (memtables stay in memory); the step is retried later, and
//!   a writer stalled on it gets the error. A failure while replacing the
//!   manifest makes the engine read-only (which manifest is durable is unknown
//!   until reopened).
//! - Corruption found by a read is an error for that read, never data.

pub mod batch;
pub mod commit;
pub mod compaction;
#[cfg(test)]
mod crash_tests;
pub mod error;
mod flush;
pub mod ingest;
pub mod iter;
pub mod read;
mod recover;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_versions;
pub mod version;
mod write;

pub use batch::{Op, WriteBatch};
pub use error::EngineError;
pub use ingest::Ingest;
pub use iter::{EngineIter, Item, VersionIter};
pub use read::Found;

use crate::disk::{Disk, DiskFile};
use crate::manifest::{ManifestState, LEVELS};
use crate::memtable::MEMTABLE_BYTES_DEFAULT;
use crate::sst::{BlockCache, TableOptions};
use crate::sync::{LocalMutex, Notify};
use crate::timestamp::Timestamp;
use crate::wal::{Lsn, RecordMeta, Wal, WalConfig};
use commit::CommitQueue;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use version::{MemState, Version, View};

/// WAL record kinds at or above this belong to the engine; Raft uses the rest.
pub const ENGINE_KIND_MIN: u8 = 0xF0;
/// The WAL record kind of an engine [`WriteBatch`].
pub const KIND_WRITE_BATCH: u8 = 0xF0;

/// Default bound on immutable memtables waiting for their flush.
pub const IMMUTABLE_MEMTABLES_MAX_DEFAULT: usize = 4;
/// Default number of L0 tables that triggers a compaction into L1.
pub const L0_COMPACTION_TRIGGER_DEFAULT: usize = 4;
/// Default number of L0 tables at which writers stall.
pub const L0_STALL_TABLES_DEFAULT: usize = 16;
/// Default target size of L1, in bytes; deeper levels grow by the multiplier.
pub const LEVEL1_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
pub const LEVEL_MULTIPLIER_DEFAULT: u64 = 10;
/// Bound on the WAL space one memtable keeps alive, in segments: past it the
/// memtable is frozen and flushed early, so that the log is truncated and its
/// segments recycled (small synced writes take a 4 KiB block of log each, so
/// the log can outgrow the memtable twentyfold). Equal to the default pool of
/// recycled segments, so that steady state never creates a segment file.
pub const WAL_SEGMENTS_PER_MEMTABLE_MAX: u64 = 4;
/// Default target size of a compaction output table, in bytes.
pub const TARGET_FILE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub wal: WalConfig,
    /// A memtable is frozen once its next write would pass this many bytes.
    pub memtable_bytes: usize,
    /// Writers stall beyond this many immutable memtables.
    pub immutable_memtables_max: usize,
    pub table: TableOptions,
    pub block_cache_bytes: usize,
    /// Compaction outputs are cut at about this size.
    pub target_file_bytes: u64,
    pub l0_compaction_trigger: usize,
    pub l0_stall_tables: usize,
    pub level1_bytes: u64,
    pub level_multiplier: u64,
    /// The WAL also holds a Raft log: it is truncated only below the floor the
    /// owner sets with [`Engine::set_raft_log_floor`] (initially nothing).
    pub raft_log: bool,
    /// Seed of the memtables' tower heights (everything replays from seeds).
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            wal: WalConfig::default(),
            memtable_bytes: MEMTABLE_BYTES_DEFAULT,
            immutable_memtables_max: IMMUTABLE_MEMTABLES_MAX_DEFAULT,
            table: TableOptions::default(),
            block_cache_bytes: crate::sst::cache::BLOCK_CACHE_BYTES_DEFAULT,
            target_file_bytes: TARGET_FILE_BYTES_DEFAULT,
            l0_compaction_trigger: L0_COMPACTION_TRIGGER_DEFAULT,
            l0_stall_tables: L0_STALL_TABLES_DEFAULT,
            level1_bytes: LEVEL1_BYTES_DEFAULT,
            level_multiplier: LEVEL_MULTIPLIER_DEFAULT,
            raft_log: false,
            seed: 0,
        }
    }
}

impl EngineConfig {
    fn validate(&self) -> Result<(), EngineError> {
        let bad = |d: &str| Err(EngineError::InvalidArgument(format!("engine config: {d}")));
        if self.memtable_bytes < 4096
            || self.memtable_bytes > crate::memtable::MEMTABLE_BYTES_MAX / 2
        {
            return bad("memtable_bytes out of [4 KiB, 1 GiB]");
        }
        if self.immutable_memtables_max == 0 || self.l0_compaction_trigger == 0 {
            return bad("immutable_memtables_max and l0_compaction_trigger must be positive");
        }
        if self.l0_stall_tables <= self.l0_compaction_trigger {
            return bad("l0_stall_tables must exceed l0_compaction_trigger");
        }
        if self.level_multiplier < 2 || self.level1_bytes == 0 || self.target_file_bytes == 0 {
            return bad("level sizes must grow");
        }
        if self.table.block_bytes < 64 || self.table.restart_interval == 0 {
            return bad("table block options");
        }
        Ok(())
    }
}

/// Counters for monitoring. Cumulative since the engine was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineMetrics {
    /// Engine batches and Raft appends committed.
    pub writes: u64,
    /// Leader passes of the group commit (each at most one fdatasync).
    pub write_groups: u64,
    pub wal_syncs: u64,
    /// Writes that had to wait for (and do) background work first.
    pub write_stalls: u64,
    pub flushes: u64,
    pub flush_bytes: u64,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub compaction_bytes_read: u64,
    pub compaction_bytes_written: u64,
    /// Versions dropped by compaction (shadowed, deleted, or below the GC horizon).
    pub compaction_versions_dropped: u64,
    pub ingests: u64,
    /// WAL segment files made ahead of need in the background.
    pub wal_spares: u64,
    /// WAL segments begun (each a rename or a creation, and a directory
    /// fsync, on a commit's path).
    pub wal_rolls: u64,
    /// Of those, segment files created on the commit path (no spare ready).
    pub wal_segments_created_inline: u64,
    pub background_errors: u64,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
}

/// What [`Engine::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Per range: the Raft index up to which applied state is in tables. The
    /// Raft layer re-applies committed entries after it.
    pub applied: BTreeMap<u64, u64>,
    /// Engine batches replayed from the WAL into memtables.
    pub batches_replayed: u64,
    /// Raft records handed to the visitor.
    pub raft_records: u64,
    pub tables: usize,
    /// Leftover files of interrupted flushes or compactions that were removed.
    pub orphans_removed: usize,
}

/// Sizes per level, for monitoring and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelStats {
    pub tables: Vec<usize>,
    pub bytes: Vec<u64>,
    pub immutable_memtables: usize,
    pub memtable_bytes: usize,
}

struct State<F: DiskFile> {
    active: Rc<MemState>,
    /// Oldest first (flush order).
    immutables: VecDeque<Rc<MemState>>,
    version: Rc<Version<F>>,
    /// The durable manifest as last written.
    manifest: ManifestState,
    next_file: u64,
    read_only: Option<String>,
    raft_floor: Lsn,
    gc_horizon: Timestamp,
    /// Per level: where the next compaction of that level starts (round robin).
    compact_pointers: Vec<Vec<u8>>,
}

/// The engine of one shard. See the module docs.
pub struct Engine<D: Disk> {
    disk: D,
    dir: PathBuf,
    config: EngineConfig,
    wal: LocalMutex<Wal<D>>,
    commit: RefCell<CommitQueue>,
    state: RefCell<State<D::File>>,
    cache: Rc<RefCell<BlockCache>>,
    /// One flush or compaction at a time.
    background: LocalMutex<()>,
    /// Raised when background work may be due.
    work: Notify,
    metrics: RefCell<EngineMetrics>,
    /// The active WAL segment when making a spare last failed: no retry until
    /// the log moves to the next segment.
    spare_failed_seq: Cell<Option<u64>>,
    /// The last background step failed (Raft applies then stop waiting for
    /// one; see [`Engine::apply`]).
    background_failing: Cell<bool>,
    mem_seed: Cell<u64>,
    record_payload_max: usize,
}

/// A stable view: reads through it see the engine as of [`Engine::snapshot`].
pub struct Snapshot<F: DiskFile> {
    view: View<F>,
    cache: Rc<RefCell<BlockCache>>,
}

impl<F: DiskFile> Snapshot<F> {
    pub async fn get_version(
        &self,
        key: &[u8],
        read_ts: Timestamp,
    ) -> Result<Option<Found>, EngineError> {
        read::get_version(&self.view, &self.cache, key, read_ts).await
    }

    pub async fn get(
        &self,
        key: &[u8],
        read_ts: Timestamp,
    ) -> Result<Option<(Timestamp, Vec<u8>)>, EngineError> {
        Ok(visible(self.get_version(key, read_ts).await?))
    }

    pub fn iter(&self, lower: &[u8], upper: Option<&[u8]>, read_ts: Timestamp) -> EngineIter<F> {
        EngineIter::new(&self.view, &self.cache, lower, upper, read_ts, false)
    }

    /// Like [`Engine::scan`], through the snapshot.
    pub async fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        read_ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Item>, EngineError> {
        scan(self.iter(start, end, read_ts), reverse, limit).await
    }
}

fn visible(found: Option<Found>) -> Option<(Timestamp, Vec<u8>)> {
    found.and_then(|(ts, v)| v.map(|v| (ts, v)))
}

async fn scan<F: DiskFile>(
    mut it: EngineIter<F>,
    reverse: bool,
    limit: usize,
) -> Result<Vec<Item>, EngineError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    if reverse {
        it.seek_to_last().await?;
    } else {
        it.seek_to_first().await?;
    }
    while let Some(item) = it.item() {
        out.push(item.clone());
        if out.len() >= limit {
            break;
        }
        if reverse {
            it.prev().await?;
        } else {
            it.next().await?;
        }
    }
    Ok(out)
}

impl<D: Disk> Engine<D> {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The sources a read sees now: every memtable, newest first, and the version.
    fn view(&self) -> View<D::File> {
        let st = self.state.borrow();
        let mut mems = Vec::with_capacity(st.immutables.len() + 1);
        mems.push(Rc::clone(&st.active));
        mems.extend(st.immutables.iter().rev().cloned());
        View {
            mems,
            version: Rc::clone(&st.version),
        }
    }

    /// The newest version of `key` at or below `read_ts`, tombstones included:
    /// `Some((ts, None))` means the key was deleted at `ts`.
    pub async fn get_version(
        &self,
        key: &[u8],
        read_ts: Timestamp,
    ) -> Result<Option<Found>, EngineError> {
        read::get_version(&self.view(), &self.cache, key, read_ts).await
    }

    /// The newest live value of `key` at or below `read_ts`, with its timestamp.
    pub async fn get(
        &self,
        key: &[u8],
        read_ts: Timestamp,
    ) -> Result<Option<(Timestamp, Vec<u8>)>, EngineError> {
        Ok(visible(self.get_version(key, read_ts).await?))
    }

    /// An MVCC iterator over `[lower, upper)` at `read_ts` (live values only).
    pub fn iter(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        read_ts: Timestamp,
    ) -> EngineIter<D::File> {
        EngineIter::new(&self.view(), &self.cache, lower, upper, read_ts, false)
    }

    /// Like [`Engine::iter`], but deleted keys show as their tombstone version.
    pub fn iter_with_tombstones(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        read_ts: Timestamp,
    ) -> EngineIter<D::File> {
        EngineIter::new(&self.view(), &self.cache, lower, upper, read_ts, true)
    }

    /// Every version of `[lower, upper)`, tombstones included, key ascending
    /// and timestamp descending (see [`VersionIter`]).
    pub fn iter_versions(&self, lower: &[u8], upper: Option<&[u8]>) -> VersionIter<D::File> {
        VersionIter::new(&self.view(), &self.cache, lower, upper)
    }

    /// Up to `limit` live keys of `[start, end)` at `read_ts`, ascending (or
    /// descending if `reverse`), each with its newest visible version.
    pub async fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        read_ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Item>, EngineError> {
        scan(self.iter(start, end, read_ts), reverse, limit).await
    }

    /// A stable view. The active memtable is frozen (if it holds anything) so
    /// that nothing the snapshot sees can change, not even an overwrite of the
    /// same (key, ts) or a range deletion. Meant for Raft snapshots, range moves
    /// and long consistent scans; plain MVCC reads need only a timestamp.
    pub fn snapshot(&self) -> Snapshot<D::File> {
        self.freeze_active();
        let view = self.view();
        let st = self.state.borrow();
        let active_empty = st.active.is_empty();
        drop(st);
        let mems = if active_empty {
            view.mems[1..].to_vec()
        } else {
            view.mems
        };
        Snapshot {
            view: View {
                mems,
                version: view.version,
            },
            cache: Rc::clone(&self.cache),
        }
    }

    /// Estimated bytes stored for keys in `[start, end)`: table data by index
    /// position, plus the memtables' entries in the span.
    pub fn approximate_size(&self, start: &[u8], end: Option<&[u8]>) -> u64 {
        let view = self.view();
        let mut bytes = 0;
        for level in 0..LEVELS {
            for t in view.version.overlapping(level, start, end) {
                let from = t.table.approximate_offset(start);
                let to = end.map_or(t.table.data_end(), |e| t.table.approximate_offset(e));
                bytes += to.saturating_sub(from);
            }
        }
        for mem in &view.mems {
            bytes += mem.table.borrow().approximate_span_bytes(start, end) as u64;
        }
        bytes
    }

    /// The persisted applied index of `range` (as of the last flush).
    pub fn applied_index(&self, range: u64) -> Option<u64> {
        self.state.borrow().manifest.applied.get(&range).copied()
    }

    /// Versions older than `horizon` may be dropped by compactions: for each key
    /// the newest version `<= horizon` is kept (unless it is a tombstone in the
    /// bottom level), so reads at or above the horizon are unaffected. Never
    /// moves backwards.
    pub fn set_gc_horizon(&self, horizon: Timestamp) {
        let mut st = self.state.borrow_mut();
        st.gc_horizon = st.gc_horizon.max(horizon);
    }

    /// WAL records below `lsn` are no longer needed by Raft (raft_log mode).
    pub fn set_raft_log_floor(&self, lsn: Lsn) {
        self.state.borrow_mut().raft_floor = lsn;
    }

    /// The oldest LSN the WAL still holds (truncation moves it up).
    pub async fn wal_first_lsn(&self) -> Lsn {
        self.wal.lock().await.first_lsn()
    }

    /// Whether a flush, compaction or other background step is running.
    pub fn background_busy(&self) -> bool {
        self.background.is_locked()
    }

    /// Whether writes are refused after a write-path failure (see module docs).
    pub fn read_only_reason(&self) -> Option<String> {
        self.state.borrow().read_only.clone()
    }

    pub fn metrics(&self) -> EngineMetrics {
        let mut m = self.metrics.borrow().clone();
        let (hits, misses) = self.cache.borrow().stats();
        m.block_cache_hits = hits;
        m.block_cache_misses = misses;
        m
    }

    pub fn level_stats(&self) -> LevelStats {
        let st = self.state.borrow();
        let mems = std::iter::once(&st.active).chain(st.immutables.iter());
        let memtable_bytes = mems.map(|m| m.table.borrow().approximate_bytes()).sum();
        LevelStats {
            tables: st.version.levels.iter().map(Vec::len).collect(),
            bytes: (0..LEVELS).map(|l| st.version.level_bytes(l)).collect(),
            immutable_memtables: st.immutables.len(),
            memtable_bytes,
        }
    }

    fn metric(&self, f: impl FnOnce(&mut EngineMetrics)) {
        f(&mut self.metrics.borrow_mut());
    }

    fn poison(&self, reason: String) {
        tracing::error!(%reason, dir = %self.dir.display(), "storage engine is now read-only");
        let mut st = self.state.borrow_mut();
        if st.read_only.is_none() {
            st.read_only = Some(reason);
        }
    }

    fn check_writable(&self) -> Result<(), EngineError> {
        match &self.state.borrow().read_only {
            Some(reason) => Err(EngineError::ReadOnly(reason.clone())),
            None => Ok(()),
        }
    }

    fn alloc_file_number(&self) -> u64 {
        let mut st = self.state.borrow_mut();
        let n = st.next_file;
        st.next_file += 1;
        n
    }

    fn new_memstate(&self, bytes_max: usize) -> Rc<MemState> {
        let seed = self.mem_seed.get();
        self.mem_seed.set(seed.wrapping_add(1));
        Rc::new(MemState::new(bytes_max, seed))
    }

    /// Freezes the active memtable if it holds anything; returns whether it did.
    pub fn freeze_active(&self) -> bool {
        let mut st = self.state.borrow_mut();
        if st.active.is_empty() {
            return false;
        }
        let fresh = self.new_memstate(self.config.memtable_bytes);
        let old = std::mem::replace(&mut st.active, fresh);
        old.table.borrow_mut().freeze();
        st.immutables.push_back(old);
        drop(st);
        self.work.notify_all();
        true
    }

    fn wal_meta(kind: u8) -> RecordMeta {
        RecordMeta {
            kind,
            range_id: 0,
            term: 0,
            index: 0,
        }
    }
}
