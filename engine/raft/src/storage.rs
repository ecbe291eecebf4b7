//! The in-memory durable store: what a write-ahead log holds for one group,
//! and how a `Ready` changes it. Tests and the simulator use it as their
//! disk; a real log store (the shard WAL) must behave the same way.

use crate::types::{Entry, HardState, Persisted, Snapshot};

impl Persisted {
    /// Applies one `Ready`'s writes in contract order: the snapshot replaces
    /// the whole log, then each entry at index `i` replaces the stored entry
    /// at `i` and everything after it, then the hard state.
    pub fn write(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) {
        if let Some(s) = snapshot {
            assert!(
                self.snapshot
                    .as_ref()
                    .is_none_or(|old| old.meta.index <= s.meta.index),
                "snapshot goes backwards"
            );
            self.snapshot = Some(s.clone());
            self.entries.clear();
        }
        if let Some(first) = entries.first() {
            let offset = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
            let last = self.entries.last().map_or(offset, |e| e.index);
            assert!(
                first.index > offset && first.index <= last + 1,
                "write leaves a gap at {}",
                first.index
            );
            // Entries are sorted by index: cut at the first one replaced
            // (a binary search, so appending stays cheap on long logs).
            let keep = self.entries.partition_point(|e| e.index < first.index);
            self.entries.truncate(keep);
            self.entries.extend(entries.iter().cloned());
        }
        if let Some(hs) = hard_state {
            assert!(
                hs.term >= self.hard_state.term,
                "durable term goes backwards"
            );
            self.hard_state = hs;
        }
    }

    /// Records an application snapshot and drops the log prefix it covers.
    /// A snapshot not newer than the stored one is ignored.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index >= index)
        {
            return;
        }
        assert!(
            self.entries
                .iter()
                .any(|e| e.index == index && e.term == snapshot.meta.term),
            "compacting past the durable log"
        );
        self.entries.retain(|e| e.index > index);
        self.snapshot = Some(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use crate::membership::Membership;
    use crate::types::{Entry, EntryKind, HardState, Persisted, Snapshot, SnapshotMeta};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data: vec![],
        }
    }

    #[test]
    fn write_truncates_conflicting_suffix_and_compact_drops_prefix() {
        let mut p = Persisted::default();
        p.write(
            None,
            &[entry(1, 1), entry(2, 1), entry(3, 1)],
            Some(HardState {
                term: 1,
                vote: None,
                commit: 1,
            }),
        );
        p.write(
            None,
            &[entry(2, 2)],
            Some(HardState {
                term: 2,
                vote: Some(2),
                commit: 1,
            }),
        );
        assert_eq!(p.entries, vec![entry(1, 1), entry(2, 2)]);
        let meta = SnapshotMeta {
            index: 1,
            term: 1,
            membership: Membership::new(vec![1]),
        };
        p.compact(Snapshot {
            meta,
            data: b"s".to_vec(),
        });
        assert_eq!(p.entries, vec![entry(2, 2)]);
        assert_eq!(p.hard_state.term, 2);
    }
}
