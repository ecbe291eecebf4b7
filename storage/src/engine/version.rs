//! What a read sees: the memtables and the [`Version`] (open tables per level),
//! in precedence order — newest source first.
//!
//! # Sources and precedence
//! `active memtable > immutable memtables (newest first) > L0 tables (newest
//! first) > L1 > ... > L6`. For one (key, timestamp) the newest source wins
//! (writing the same version again replaces it). A source's range tombstones
//! hide the keys of every *older* source. Within L1.. a level is one source: its
//! tables do not overlap (range tombstone extents included).
//!
//! A [`Version`] is immutable and shared (`Rc`): a flush or compaction installs a
//! new one. Readers keep the one they started with, so the tables they use stay
//! open; a table file dropped by a compaction may be unlinked while still open
//! (the data stays readable until the last handle closes: POSIX semantics, which
//! the simulated disk models too).

use crate::disk::DiskFile;
use crate::manifest::LEVELS;
use crate::memtable::Memtable;
use crate::sst::{Table, TableMeta};
use crate::timestamp::Timestamp;
use crate::wal::Lsn;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// A memtable and what the engine tracks about what went into it.
pub struct MemState {
    pub table: RefCell<Memtable>,
    /// Per range: the highest Raft index applied into this memtable.
    pub applied: RefCell<BTreeMap<u64, u64>>,
    /// LSNs of the engine write batches applied here (a contiguous run).
    pub first_lsn: Cell<Option<Lsn>>,
    pub last_lsn: Cell<Option<Lsn>>,
    /// The WAL's consumed log space ([`WalCounters::log_bytes`]) when the first
    /// batch was applied here: how much log this memtable keeps alive.
    ///
    /// [`WalCounters::log_bytes`]: crate::wal::WalCounters::log_bytes
    pub first_log_bytes: Cell<Option<u64>>,
}

impl MemState {
    pub fn new(bytes_max: usize, seed: u64) -> Self {
        MemState {
            table: RefCell::new(Memtable::new(bytes_max, seed)),
            applied: RefCell::new(BTreeMap::new()),
            first_lsn: Cell::new(None),
            last_lsn: Cell::new(None),
            first_log_bytes: Cell::new(None),
        }
    }

    pub fn note_lsn(&self, lsn: Lsn) {
        assert!(
            self.last_lsn.get().is_none_or(|l| l < lsn),
            "batches apply in LSN order"
        );
        self.first_lsn
            .set(Some(self.first_lsn.get().unwrap_or(lsn)));
        self.last_lsn.set(Some(lsn));
    }

    pub fn note_applied(&self, range: u64, index: u64) {
        let mut applied = self.applied.borrow_mut();
        let slot = applied.entry(range).or_insert(index);
        *slot = (*slot).max(index);
    }

    pub fn is_empty(&self) -> bool {
        self.table.borrow().is_empty()
            && self.applied.borrow().is_empty()
            && self.last_lsn.get().is_none()
    }
}

/// An open table with its manifest entry.
#[derive(Debug)]
pub struct LiveTable<F: DiskFile> {
    pub meta: TableMeta,
    pub table: Rc<Table<F>>,
}

/// The live tables, per level.
#[derive(Debug)]
pub struct Version<F: DiskFile> {
    /// `levels[0]` newest first; deeper levels sorted by key, non-overlapping.
    pub levels: Vec<Vec<Rc<LiveTable<F>>>>,
}

impl<F: DiskFile> Version<F> {
    pub fn empty() -> Self {
        Version {
            levels: (0..LEVELS).map(|_| Vec::new()).collect(),
        }
    }

    /// The table of `level` (>= 1) whose bounds contain `key`, if any.
    pub fn find(&self, level: usize, key: &[u8]) -> Option<&Rc<LiveTable<F>>> {
        assert!(level >= 1, "level 0 tables overlap");
        let tables = &self.levels[level];
        let i = tables.partition_point(|t| !t.meta.below_upper(key));
        tables.get(i).filter(|t| t.meta.smallest.as_slice() <= key)
    }

    /// Tables whose bounds intersect `[start, end)` (`None`: unbounded), per level
    /// in level order (L0 newest first).
    pub fn overlapping(
        &self,
        level: usize,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Vec<Rc<LiveTable<F>>> {
        self.levels[level]
            .iter()
            .filter(|t| t.meta.overlaps(start, end))
            .cloned()
            .collect()
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta.size).sum()
    }

    pub fn table_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// The manifest's view of the levels.
    pub fn metas(&self) -> Vec<Vec<TableMeta>> {
        self.levels
            .iter()
            .map(|l| l.iter().map(|t| t.meta.clone()).collect())
            .collect()
    }

    /// The largest timestamp of any table (`ZERO` if none).
    pub fn max_ts(&self) -> Timestamp {
        self.levels
            .iter()
            .flatten()
            .map(|t| t.meta.max_ts)
            .max()
            .unwrap_or(Timestamp::ZERO)
    }
}

/// A consistent set of sources to read from.
pub struct View<F: DiskFile> {
    /// Memtables, newest first (the active one first, unless frozen away).
    pub mems: Vec<Rc<MemState>>,
    pub version: Rc<Version<F>>,
}

impl<F: DiskFile> Clone for View<F> {
    fn clone(&self) -> Self {
        View {
            mems: self.mems.clone(),
            version: Rc::clone(&self.version),
        }
    }
}
