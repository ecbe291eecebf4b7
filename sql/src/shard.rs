//! Per-shard state of the SQL layer, shared by the sessions of one shard
//! (never across shards: it is `!Send`, held in an `Rc`; only the
//! statistics inside may be shared, see below).
//!
//! - The catalog cache ([`crate::catalog::cache`]).
//! - Table statistics ([`TableStats`]): row count estimates, refreshed by
//!   full scans and adjusted by writes; the planner uses them to order joins
//!   and choose join strategies. Estimates only: they are never used for
//!   correctness. A node shares one `TableStats` between its shards
//!   ([`SqlShard::with_stats`]), so that rows loaded through one shard count
//!   on every shard (with per-shard counts, a table loaded elsewhere looked
//!   empty next to one loaded here, and joins were planned the wrong way
//!   round).
//! - The `unique_rowid()` generator.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::catalog::cache::CatalogCache;
use crate::catalog::DescId;

/// Bits of a row id holding the shard number.
pub const ROWID_SHARD_BITS: u32 = 6;
/// Bits of a row id holding the sequence within one microsecond.
pub const ROWID_SEQUENCE_BITS: u32 = 6;

/// Row count estimates by table; clones share them, across threads.
#[derive(Clone, Debug, Default)]
pub struct TableStats {
    counts: Arc<Mutex<HashMap<DescId, u64>>>,
}

impl TableStats {
    pub fn new() -> TableStats {
        TableStats::default()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<DescId, u64>> {
        // Estimates only: a panic elsewhere leaves them usable.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct Inner {
    catalog: CatalogCache,
    row_counts: TableStats,
    /// Last row id timestamp (microseconds) and sequence issued.
    rowid_last: Cell<(i64, u64)>,
}

/// The SQL layer's state for one shard; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SqlShard {
    inner: Rc<Inner>,
}

impl SqlShard {
    pub fn new() -> SqlShard {
        SqlShard::default()
    }

    /// A shard whose row count estimates are `stats`, shared with others.
    pub fn with_stats(stats: TableStats) -> SqlShard {
        SqlShard {
            inner: Rc::new(Inner {
                row_counts: stats,
                ..Inner::default()
            }),
        }
    }

    pub fn catalog(&self) -> &CatalogCache {
        &self.inner.catalog
    }

    /// The estimated row count of a table, if known.
    pub fn row_count(&self, table: DescId) -> Option<u64> {
        self.inner.row_counts.counts().get(&table).copied()
    }

    /// Records a row count seen by a full scan.
    pub fn set_row_count(&self, table: DescId, rows: u64) {
        self.inner.row_counts.counts().insert(table, rows);
    }

    /// Adjusts a table's estimate by rows written (+) or deleted (-).
    pub fn adjust_row_count(&self, table: DescId, delta: i64) {
        let mut counts = self.inner.row_counts.counts();
        let count = counts.entry(table).or_insert(0);
        *count = count.saturating_add_signed(delta);
    }

    /// A row id unique on this node: microseconds since the epoch, then the
    /// shard, then a sequence number. Strictly increasing per shard even if
    /// the clock stalls or steps back (the timestamp part then runs ahead).
    pub fn unique_rowid(&self, now_micros: i64, shard: usize) -> i64 {
        let (last, seq) = self.inner.rowid_last.get();
        let seq_max = (1u64 << ROWID_SEQUENCE_BITS) - 1;
        let (micros, seq) = if now_micros > last {
            (now_micros, 0)
        } else if seq < seq_max {
            (last, seq + 1)
        } else {
            (last + 1, 0)
        };
        self.inner.rowid_last.set((micros, seq));
        let shard = (shard as u64) & ((1 << ROWID_SHARD_BITS) - 1);
        let id = ((micros as u64) << (ROWID_SHARD_BITS + ROWID_SEQUENCE_BITS))
            | (shard << ROWID_SEQUENCE_BITS)
            | seq;
        (id & (i64::MAX as u64)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_with_shared_stats_see_each_others_writes() {
        let stats = TableStats::new();
        let (a, b) = (
            SqlShard::with_stats(stats.clone()),
            SqlShard::with_stats(stats),
        );
        a.adjust_row_count(100, 500);
        b.adjust_row_count(100, 250);
        assert_eq!(a.row_count(100), Some(750));
        b.set_row_count(101, 7);
        assert_eq!(a.row_count(101), Some(7));
        // Separate shards keep their own.
        let c = SqlShard::new();
        assert_eq!(c.row_count(100), None);
    }
}
