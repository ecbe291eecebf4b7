//! Rebuilding each range's Raft state from the WAL at start-up.
//!
//! `teller_storage::Engine::open` hands every Raft record still in the WAL
//! to a visitor, in LSN order; [`RaftRecovery::visit`] is that visitor, and
//! [`RaftRecovery::finish`] combines what it saw with the LSM's persisted
//! applied indexes into one [`RecoveredRange`] per range.
//!
//! Rules, per range:
//! - **Entries**: a record of index `i` replaces any earlier record of `i`
//!   and everything after it (a new leader overwriting a suffix); later LSNs
//!   win.
//! - **Hard state**: the newest record.
//! - **Log base** `(index, term)`: the newest record; every entry up to its
//!   index is dropped. Entries below it may still be handed back (recycled
//!   segments keep stale records below the truncation point); they are
//!   ignored.
//! - The entries left must be contiguous from `base + 1`: a hole is
//!   corruption (entries are released to truncation only after a base
//!   covering them is durable).
//! - The range's applied index is the LSM's persisted one (at least the
//!   base's): the Raft node re-applies committed entries after it.
//! - **Range removed**: every earlier record of the range is dropped and no
//!   group starts for it; the LSM may still hold an applied index for it.
//!
//! [`Retention`] is rebuilt alongside, from the same records and LSNs, so
//! the WAL floor after a restart protects exactly what the ranges need.

use std::collections::{BTreeMap, BTreeSet};

use teller_raft::multi::RangeId;
use teller_raft::{Entry, HardState, Persisted, Snapshot, SnapshotMeta};
use teller_storage::wal::{Lsn, Record, Retention};

use super::log_record::{RaftRecord, SLOT_HARD_STATE, SLOT_LOG_BASE, SLOT_RANGE_REMOVED};

#[derive(Debug, Default)]
struct RangeRecords {
    hard_state: HardState,
    base: Option<SnapshotMeta>,
    entries: BTreeMap<u64, Entry>,
}

/// The visitor of the WAL's Raft records.
#[derive(Debug, Default)]
pub struct RaftRecovery {
    ranges: BTreeMap<RangeId, RangeRecords>,
    removed: BTreeSet<RangeId>,
    retention: Retention,
    last_lsn: Lsn,
    records: u64,
    error: Option<String>,
}

/// One range's recovered state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredRange {
    /// What the Raft node restarts from.
    pub persisted: Persisted,
    /// The index the LSM's applied state reflects durably.
    pub applied: u64,
}

/// Every range's recovered state, and what the WAL must keep for them.
#[derive(Debug, Default)]
pub struct RecoveredLog {
    pub ranges: BTreeMap<RangeId, RecoveredRange>,
    /// Ranges whose log ended with a removal: they no longer live here.
    pub removed: BTreeSet<RangeId>,
    pub retention: Retention,
    /// LSN of the last Raft record seen (`Lsn(0)` if none).
    pub last_lsn: Lsn,
    /// Raft records visited.
    pub records: u64,
}

impl RaftRecovery {
    pub fn new() -> RaftRecovery {
        RaftRecovery::default()
    }

    /// Takes one record (call in LSN order, as `Engine::open` does).
    pub fn visit(&mut self, record: Record<'_>) {
        if self.error.is_some() {
            return;
        }
        let decoded = match RaftRecord::decode(&record.meta, record.payload) {
            Ok(r) => r,
            Err(e) => {
                self.error = Some(format!("{e} (at {:?})", record.lsn));
                return;
            }
        };
        let lsn = record.lsn;
        self.last_lsn = self.last_lsn.max(lsn);
        self.records += 1;
        let range = decoded.range();
        if let RaftRecord::RangeRemoved { .. } = decoded {
            self.ranges.remove(&range);
            self.removed.insert(range);
            self.retention.remove_range(range);
            self.retention.pin(range, SLOT_RANGE_REMOVED, lsn);
            return;
        }
        if self.removed.remove(&range) {
            // Ids are never reused; a record after the removal starts a new
            // life of the range rather than reviving the old one.
            self.retention.remove_range(range);
        }
        let state = self.ranges.entry(range).or_default();
        match decoded {
            RaftRecord::Entry { entry, .. } => {
                let index = entry.index;
                state.entries.split_off(&index);
                state.entries.insert(index, entry);
                self.retention.entry(range, index, lsn);
            }
            RaftRecord::HardState { hard_state, .. } => {
                state.hard_state = hard_state;
                self.retention.pin(range, SLOT_HARD_STATE, lsn);
            }
            RaftRecord::LogBase { base, .. } => {
                let index = base.index;
                if state.base.as_ref().is_none_or(|b| b.index <= index) {
                    state.base = Some(base);
                }
                self.retention.pin(range, SLOT_LOG_BASE, lsn);
                self.retention.release(range, index);
            }
            RaftRecord::RangeRemoved { .. } => unreachable!("handled above"),
        }
    }

    /// Combines the records with the LSM's persisted applied indexes.
    pub fn finish(self, applied: &BTreeMap<u64, u64>) -> Result<RecoveredLog, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut ranges = BTreeMap::new();
        for (range, records) in self.ranges {
            let applied_index = applied.get(&range).copied().unwrap_or(0);
            ranges.insert(range, recover_range(range, records, applied_index)?);
        }
        let missing = applied
            .iter()
            .find(|(r, _)| !ranges.contains_key(r) && !self.removed.contains(r));
        if let Some((range, index)) = missing {
            return Err(format!(
                "range {range} has state applied up to index {index} but no Raft log in the WAL"
            ));
        }
        Ok(RecoveredLog {
            ranges,
            removed: self.removed,
            retention: self.retention,
            last_lsn: self.last_lsn,
            records: self.records,
        })
    }
}

fn recover_range(
    range: RangeId,
    mut records: RangeRecords,
    applied: u64,
) -> Result<RecoveredRange, String> {
    let base_index = records.base.as_ref().map_or(0, |b| b.index);
    let entries: Vec<Entry> = records
        .entries
        .split_off(&(base_index + 1))
        .into_values()
        .collect();
    for (expected, entry) in (base_index + 1..).zip(&entries) {
        if entry.index != expected {
            return Err(format!(
                "range {range}: the Raft log has a hole at index {expected} (next entry {})",
                entry.index
            ));
        }
    }
    let last = entries.last().map_or(base_index, |e| e.index);
    if applied > last.max(records.hard_state.commit) {
        return Err(format!(
            "range {range}: applied index {applied} is beyond its log (last {last})"
        ));
    }
    let persisted = Persisted {
        hard_state: records.hard_state,
        snapshot: records.base.map(|meta| Snapshot {
            meta,
            data: Vec::new(),
        }),
        entries,
    };
    Ok(RecoveredRange {
        persisted,
        applied: applied.max(base_index),
    })
}

#[cfg(test)]
mod tests {
    use teller_raft::{EntryKind, Membership};
    use teller_storage::wal::RecordMeta;

    use super::*;

    fn feed(rec: &mut RaftRecovery, lsn: u64, r: RaftRecord) {
        let (meta, payload): (RecordMeta, Vec<u8>) = r.encode();
        rec.visit(Record {
            lsn: Lsn(lsn),
            meta,
            payload: &payload,
        });
    }

    fn entry(range: RangeId, term: u64, index: u64) -> RaftRecord {
        RaftRecord::Entry {
            range,
            entry: Entry {
                term,
                index,
                kind: EntryKind::Normal,
                data: vec![index as u8],
            },
        }
    }

    fn base(range: RangeId, term: u64, index: u64) -> RaftRecord {
        RaftRecord::LogBase {
            range,
            base: SnapshotMeta {
                index,
                term,
                membership: Membership::new(vec![1]),
            },
        }
    }

    fn hs(range: RangeId, term: u64, commit: u64) -> RaftRecord {
        RaftRecord::HardState {
            range,
            hard_state: HardState {
                term,
                vote: Some(1),
                commit,
            },
        }
    }

    #[test]
    fn overwrites_bases_and_stale_records() {
        let mut rec = RaftRecovery::new();
        // Stale entries of an old life (recycled segment), then the live log.
        feed(&mut rec, 1, entry(5, 1, 1));
        feed(&mut rec, 2, entry(5, 1, 2));
        feed(&mut rec, 10, entry(5, 1, 3));
        feed(&mut rec, 11, entry(5, 1, 4));
        feed(&mut rec, 12, hs(5, 1, 4));
        feed(&mut rec, 13, base(5, 1, 3));
        // A new term overwrites index 4 onwards.
        feed(&mut rec, 14, entry(5, 2, 4));
        feed(&mut rec, 15, entry(5, 2, 5));
        feed(&mut rec, 16, hs(5, 2, 5));
        let applied = BTreeMap::from([(5, 4)]);
        let log = rec.finish(&applied).unwrap();
        let r = &log.ranges[&5];
        assert_eq!(r.applied, 4);
        assert_eq!(r.persisted.snapshot.as_ref().unwrap().meta.index, 3);
        let got: Vec<(u64, u64)> = r
            .persisted
            .entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect();
        assert_eq!(got, vec![(4, 2), (5, 2)]);
        assert_eq!(r.persisted.hard_state.commit, 5);
        // Entries 1..=3 are released; the first still needed is entry 4.
        assert_eq!(log.retention.min_needed(Lsn(100)), Lsn(13));
        assert_eq!(log.last_lsn, Lsn(16));
    }

    #[test]
    fn a_removed_range_starts_no_group_and_keeps_only_its_removal_pinned() {
        let mut rec = RaftRecovery::new();
        feed(&mut rec, 1, entry(3, 1, 1));
        feed(&mut rec, 2, hs(3, 1, 1));
        feed(&mut rec, 3, entry(4, 1, 1));
        feed(&mut rec, 4, RaftRecord::RangeRemoved { range: 3 });
        feed(&mut rec, 5, hs(4, 1, 1));
        // The LSM still knows range 3's applied index: not a missing log.
        let applied = BTreeMap::from([(3, 1), (4, 1)]);
        let log = rec.finish(&applied).unwrap();
        assert!(!log.ranges.contains_key(&3));
        assert!(log.ranges.contains_key(&4));
        assert_eq!(log.removed, BTreeSet::from([3]));
        // Range 3 needs only its removal record (LSN 4); range 4 its entry.
        assert_eq!(log.retention.min_needed(Lsn(100)), Lsn(3));
        let mut rec = RaftRecovery::new();
        feed(&mut rec, 1, entry(3, 1, 1));
        feed(&mut rec, 2, RaftRecord::RangeRemoved { range: 3 });
        let log = rec.finish(&BTreeMap::from([(3, 1)])).unwrap();
        assert_eq!(log.retention.min_needed(Lsn(100)), Lsn(2));
    }

    #[test]
    fn holes_missing_logs_and_bad_records_are_errors() {
        let mut rec = RaftRecovery::new();
        feed(&mut rec, 1, entry(1, 1, 1));
        feed(&mut rec, 2, entry(1, 1, 3));
        assert!(rec.finish(&BTreeMap::new()).unwrap_err().contains("hole"));

        let rec = RaftRecovery::new();
        let applied = BTreeMap::from([(9, 4)]);
        assert!(rec.finish(&applied).unwrap_err().contains("no Raft log"));

        let mut rec = RaftRecovery::new();
        rec.visit(Record {
            lsn: Lsn(1),
            meta: RecordMeta {
                kind: 2,
                range_id: 1,
                term: 1,
                index: 1,
            },
            payload: &[1],
        });
        assert!(rec.finish(&BTreeMap::new()).is_err());
    }
}
