//! The shard log: one persistence batch per pass for all groups of a shard.
//!
//! A [`LogBatch`] holds the records of every `Ready` of one multi-raft pass,
//! in order; each record names its range, and an entry record carries its
//! (term, index), which is all a write-ahead log multiplexing many groups
//! needs. The caller appends the batch and syncs once (group commit), then
//! reports the pass durable. [`LogStore`] is the interface the storage
//! engine's WAL will implement; [`MemLogStore`] is the in-memory twin used
//! by tests and the simulator, with the same crash semantics: what was not
//! synced is lost.

use std::collections::BTreeMap;

use super::batch::RangeId;
use crate::types::{Entry, HardState, Persisted, Snapshot};

/// One durable change to one range's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogRecord {
    /// Replaces the range's whole log (installed from the leader).
    Snapshot { range: RangeId, snapshot: Snapshot },
    /// Replaces the entry at `entry.index` and everything after it.
    Entry { range: RangeId, entry: Entry },
    HardState {
        range: RangeId,
        hard_state: HardState,
    },
}

impl LogRecord {
    pub fn range(&self) -> RangeId {
        match self {
            LogRecord::Snapshot { range, .. }
            | LogRecord::Entry { range, .. }
            | LogRecord::HardState { range, .. } => *range,
        }
    }
}

/// The records of one pass, in the order they must be written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogBatch {
    /// The pass that produced it (for `MultiRaft::on_persisted`).
    pub pass: u64,
    pub records: Vec<LogRecord>,
}

impl LogBatch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A write-ahead log shared by all ranges of a shard.
pub trait LogStore {
    type Error: std::fmt::Debug;
    /// Appends a batch's records after everything appended before. They are
    /// durable only after the next `sync`.
    fn append(&mut self, batch: &LogBatch) -> Result<(), Self::Error>;
    /// Makes everything appended so far durable, with one device sync.
    fn sync(&mut self) -> Result<(), Self::Error>;
    /// The durable state of `range` (empty if it has none), for restart.
    fn load(&self, range: RangeId) -> Result<Persisted, Self::Error>;
    /// Records an application snapshot of `range` and drops the log prefix
    /// it covers (`RawNode::compact` decides when).
    fn compact(&mut self, range: RangeId, snapshot: Snapshot) -> Result<(), Self::Error>;
}

/// In-memory `LogStore` with crash semantics: `crash` loses everything
/// appended since the last `sync` (or keeps a prefix of it, as a torn
/// write would).
#[derive(Clone, Debug, Default)]
pub struct MemLogStore {
    durable: BTreeMap<RangeId, Persisted>,
    unsynced: Vec<LogRecord>,
    /// Device syncs so far (one per non-empty pass when used as intended).
    pub syncs: u64,
}

impl MemLogStore {
    /// Simulates a crash: of the unsynced records, only the first
    /// `survivors` reach the disk.
    pub fn crash(&mut self, survivors: usize) {
        let kept: Vec<LogRecord> = self.unsynced.drain(..).take(survivors).collect();
        for record in kept {
            self.write(record);
        }
    }

    /// Records appended and not yet synced.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    /// Ranges with durable state.
    pub fn ranges(&self) -> Vec<RangeId> {
        self.durable.keys().copied().collect()
    }

    fn write(&mut self, record: LogRecord) {
        let p = self.durable.entry(record.range()).or_default();
        match record {
            LogRecord::Snapshot { snapshot, .. } => p.write(Some(&snapshot), &[], None),
            LogRecord::Entry { entry, .. } => p.write(None, std::slice::from_ref(&entry), None),
            LogRecord::HardState { hard_state, .. } => p.write(None, &[], Some(hard_state)),
        }
    }
}

impl LogStore for MemLogStore {
    type Error = std::convert::Infallible;

    fn append(&mut self, batch: &LogBatch) -> Result<(), Self::Error> {
        self.unsynced.extend(batch.records.iter().cloned());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        for record in std::mem::take(&mut self.unsynced) {
            self.write(record);
        }
        self.syncs += 1;
        Ok(())
    }

    fn load(&self, range: RangeId) -> Result<Persisted, Self::Error> {
        Ok(self.durable.get(&range).cloned().unwrap_or_default())
    }

    fn compact(&mut self, range: RangeId, snapshot: Snapshot) -> Result<(), Self::Error> {
        self.durable.entry(range).or_default().compact(snapshot);
        Ok(())
    }
}
