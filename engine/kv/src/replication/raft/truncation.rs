//! WAL truncation for the Raft logs: log bases once applied state is
//! flushed, re-appended pins of idle ranges, and the WAL floor.

use std::collections::{BTreeSet, VecDeque};

use teller_raft::{HardState, Index, SnapshotMeta};
use teller_storage::disk::Disk;
use teller_storage::wal::Lsn;

use super::{RaftReplication, State};
use crate::replication::log_record::{
    RaftRecord, SLOT_HARD_STATE, SLOT_LOG_BASE, SLOT_RANGE_REMOVED,
};

pub(super) struct RangeLog {
    /// The durable log base (index 0: none yet).
    pub(super) base: SnapshotMeta,
    /// The last hard state appended.
    pub(super) hard_state: HardState,
    /// `(first index, term)` of each term among applied entries after the
    /// base (plus the one the base is in), for the term of a future base.
    pub(super) terms: VecDeque<(Index, u64)>,
}

impl RangeLog {
    pub(super) fn term_at(&self, index: Index) -> Option<u64> {
        self.terms
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map(|&(_, t)| t)
    }

    pub(super) fn note_applied(&mut self, index: Index, term: u64) {
        if self.terms.back().is_none_or(|&(_, t)| t != term) {
            self.terms.push_back((index, term));
        }
    }

    pub(super) fn set_base(&mut self, base: SnapshotMeta) {
        while self.terms.len() > 1 && self.terms[1].0 <= base.index {
            self.terms.pop_front();
        }
        self.base = base;
    }
}

impl<D: Disk + 'static> RaftReplication<D> {
    /// After a flush: log bases for ranges whose applied state became
    /// durable, re-appended pins of idle ranges, then a new WAL floor.
    pub(super) async fn maintain(&self) -> Result<(), String> {
        let flushes = self.lsm.metrics().flushes;
        let records = {
            let mut st = self.state.borrow_mut();
            if flushes == st.flushes_seen {
                return Ok(());
            }
            st.flushes_seen = flushes;
            self.truncation_records(&st)
        };
        if !records.is_empty() {
            self.append(&records, true).await?;
            let mut st = self.state.borrow_mut();
            for r in &records {
                if let RaftRecord::LogBase { range, .. } = r {
                    // In memory, the log may go up to the applied index: the
                    // entries after the base stay in the WAL for recovery,
                    // and there is no follower to send them to.
                    let _ = st.host.compact(*range, Vec::new());
                }
            }
        }
        self.set_floor();
        Ok(())
    }

    fn truncation_records(&self, st: &State) -> Vec<RaftRecord> {
        let mut records = Vec::new();
        let mut based = BTreeSet::new();
        for (&range, log) in &st.ranges {
            let persisted = self.lsm.applied_index(range).unwrap_or(0);
            if persisted <= log.base.index {
                continue;
            }
            let (Some(term), Some(group)) = (log.term_at(persisted), st.host.group(range)) else {
                continue;
            };
            let base = SnapshotMeta {
                index: persisted,
                term,
                membership: group.committed_membership().clone(),
            };
            records.push(RaftRecord::LogBase { range, base });
            based.insert(range);
        }
        let stale_below = Lsn(st.last_lsn.0.saturating_sub(self.cfg.stale_pin_records));
        for (range, slot) in st.retention.stale_pins(stale_below) {
            if slot == SLOT_RANGE_REMOVED {
                if st.removed.contains(&range) {
                    records.push(RaftRecord::RangeRemoved { range });
                }
                continue;
            }
            let Some(log) = st.ranges.get(&range) else {
                continue;
            };
            match slot {
                SLOT_HARD_STATE => records.push(RaftRecord::HardState {
                    range,
                    hard_state: log.hard_state,
                }),
                SLOT_LOG_BASE if !based.contains(&range) => records.push(RaftRecord::LogBase {
                    range,
                    base: log.base.clone(),
                }),
                _ => {}
            }
        }
        records
    }

    pub(super) fn set_floor(&self) {
        let st = self.state.borrow();
        let floor = st.retention.min_needed(Lsn(st.last_lsn.0 + 1));
        self.lsm.set_raft_log_floor(floor);
    }
}
