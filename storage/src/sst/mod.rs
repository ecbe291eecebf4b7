//! SSTables: immutable sorted files of MVCC versions.
//!
//! # Layout
//! ```text
//! page 0          header (magic, format, file number, checksum), zero padded
//! data blocks     each padded to whole 4 KiB pages (one aligned read per block)
//! bloom block     \
//! range-del block  } packed, read once when the table is opened
//! index block     /
//! padding
//! footer          last 144 bytes of the last page: counts, ts bounds, handles
//! ```
//! Every block is addressed by a [`format::BlockHandle`] (offset, length, xxh3-64
//! checksum) and verified against it on every read from disk: a mismatch is
//! [`SstError::Corruption`], never data. Header and footer carry their own
//! checksums and the file number, so a misplaced or stale file is refused too.
//!
//! Data and index blocks share one format ([`block`]): prefix-compressed keys
//! with restart points. The index holds, per data block, its last version and
//! its handle. The bloom filter ([`bloom`]) is over user keys. Range tombstones
//! ([`SpanSet`](crate::spans::SpanSet)) are stored whole and loaded at open.
//!
//! # Invariants
//! - Versions are strictly increasing in (key asc, ts desc) order.
//! - No point entry of a table lies under one of its own range tombstones: a
//!   table's tombstones hide older sources only.

pub mod block;
pub mod bloom;
pub mod builder;
pub mod cache;
pub mod format;
pub mod table;
#[cfg(test)]
mod tests;

pub use builder::TableBuilder;
pub use cache::BlockCache;
pub use table::{Table, TableIter};

use crate::disk::DiskError;
use crate::timestamp::Timestamp;
use std::fmt;

/// Default target size of a data block, in bytes (one page).
pub const BLOCK_BYTES_DEFAULT: usize = 4096;
/// Default number of entries between restart points.
pub const RESTART_INTERVAL_DEFAULT: usize = 16;

/// How tables are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// A data block is cut before an entry would take it past this many bytes.
    pub block_bytes: usize,
    pub restart_interval: usize,
    pub bloom_bits_per_key: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_bytes: BLOCK_BYTES_DEFAULT,
            restart_interval: RESTART_INTERVAL_DEFAULT,
            bloom_bits_per_key: bloom::BITS_PER_KEY_DEFAULT,
        }
    }
}

/// What the manifest records about a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    pub number: u64,
    /// File size in bytes.
    pub size: u64,
    /// Smallest key of any point entry or range tombstone (inclusive).
    pub smallest: Vec<u8>,
    /// Largest point key (inclusive) or range tombstone end (exclusive).
    pub largest: Vec<u8>,
    pub largest_exclusive: bool,
    pub entries: u64,
    pub tombstones: u64,
    pub range_dels: u64,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
}

impl TableMeta {
    /// Whether `key` lies within the table's key bounds.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.smallest.as_slice() <= key && self.below_upper(key)
    }

    /// Whether `key` is below the upper bound.
    pub fn below_upper(&self, key: &[u8]) -> bool {
        if self.largest_exclusive {
            key < self.largest.as_slice()
        } else {
            key <= self.largest.as_slice()
        }
    }

    /// Whether the table's bounds intersect `[start, end)` (`end = None`: unbounded).
    pub fn overlaps(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        let starts_before_end = end.is_none_or(|end| self.smallest.as_slice() < end);
        let ends_after_start = if self.largest_exclusive {
            self.largest.as_slice() > start
        } else {
            self.largest.as_slice() >= start
        };
        starts_before_end && ends_after_start
    }

    /// Whether the bounds of two tables intersect.
    pub fn overlaps_table(&self, other: &TableMeta) -> bool {
        let (a, b) = if self.smallest <= other.smallest {
            (self, other)
        } else {
            (other, self)
        };
        // `a` starts first: they overlap iff `b` starts within `a`.
        a.below_upper(&b.smallest)
    }
}

#[derive(Debug)]
pub enum SstError {
    Disk(DiskError),
    /// The file is damaged: a checksum mismatch or a malformed structure.
    Corruption {
        file: u64,
        detail: String,
    },
}

impl SstError {
    pub fn corruption(file: u64, detail: &str) -> Self {
        SstError::Corruption {
            file,
            detail: detail.to_owned(),
        }
    }
}

impl From<DiskError> for SstError {
    fn from(e: DiskError) -> Self {
        SstError::Disk(e)
    }
}

impl fmt::Display for SstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SstError::Disk(e) => write!(f, "sstable disk error: {e}"),
            SstError::Corruption { file, detail } => {
                write!(f, "sstable {file:020} corrupt: {detail}")
            }
        }
    }
}

impl std::error::Error for SstError {}
