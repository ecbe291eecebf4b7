//! The in-memory Raft log: a snapshot-compacted prefix followed by entries,
//! with the cursors that split it into stable and unstable parts.
//!
//! ```text
//!   snapshot.index   applied   persisted  committed   handed     last
//!        |------------|-----------|-----------|---------|----------|
//!   (compacted)   entries kept in memory from snapshot.index + 1
//! ```
//!
//! * `handed`: entries up to here were given to the caller to persist.
//! * `persisted`: entries up to here are durable *and* match this log.
//! * `committed`: known committed; may exceed `persisted` on a follower.
//! * `applied`: handed to the application; `applied <= min(committed, persisted)`.
//!
//! Invariants (checked by `check`): `snapshot.index <= applied`,
//! `committed <= last`, `persisted <= handed <= last`, terms non-decreasing.
//!
//! The log also tracks the group's configuration: the membership as of the
//! snapshot (`conf_base`) and every `ConfChange` entry after it (`confs`).
//! The current configuration is the latest one in the log, committed or not
//! (Raft thesis §4.1); truncating a conflicting suffix reverts it, and
//! compaction records the configuration as of the snapshot index.

use std::collections::VecDeque;

use crate::membership::Membership;
use crate::types::{ConfigError, Entry, EntryKind, Index, Persisted, Snapshot, SnapshotMeta, Term};

/// One outstanding `Ready` that carried something to persist: once it is
/// durable, the log is durable up to `(index, term)`.
#[derive(Clone, Copy, Debug)]
struct PendingPersist {
    number: u64,
    index: Index,
    term: Term,
}

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// Latest snapshot; `snapshot.meta.index` is the compaction offset.
    snapshot: Snapshot,
    entries: VecDeque<Entry>,
    pub(crate) committed: Index,
    pub(crate) applied: Index,
    pub(crate) persisted: Index,
    handed: Index,
    /// A snapshot was installed from the leader and not yet handed out.
    snapshot_unhanded: bool,
    pending: VecDeque<PendingPersist>,
    /// Configuration as of the snapshot index.
    conf_base: Membership,
    /// (index, membership) of every `ConfChange` entry in `entries`, ascending.
    confs: Vec<(Index, Membership)>,
    /// Bumped whenever the current configuration changes.
    conf_version: u64,
}

impl RaftLog {
    /// Rebuilds the log from durable state. `initial` is the bootstrap
    /// configuration, used when there is no snapshot.
    pub(crate) fn recover(
        state: &Persisted,
        applied: Index,
        initial: Membership,
    ) -> Result<RaftLog, ConfigError> {
        let snapshot = state.snapshot.clone().unwrap_or_default();
        let conf_base = match &state.snapshot {
            Some(s) => s.meta.membership.clone(),
            None => initial,
        };
        if conf_base.validate().is_err() {
            return Err(ConfigError::BadMembership {
                index: snapshot.meta.index,
            });
        }
        let mut confs = Vec::new();
        let mut expected = snapshot.meta.index + 1;
        let mut prev_term = snapshot.meta.term;
        for entry in &state.entries {
            if entry.index != expected {
                return Err(ConfigError::LogGap {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term < prev_term {
                return Err(ConfigError::BadTerms);
            }
            if entry.kind == EntryKind::ConfChange {
                let m = Membership::decode(&entry.data)
                    .map_err(|_| ConfigError::BadMembership { index: entry.index })?;
                confs.push((entry.index, m));
            }
            expected += 1;
            prev_term = entry.term;
        }
        let last = expected - 1;
        let commit = state.hard_state.commit.max(snapshot.meta.index);
        if commit > last {
            return Err(ConfigError::CommitOutOfRange { commit, last });
        }
        let offset = snapshot.meta.index;
        let log = RaftLog {
            snapshot,
            entries: state.entries.iter().cloned().collect(),
            committed: commit,
            applied: applied.clamp(offset, commit),
            persisted: last,
            handed: last,
            snapshot_unhanded: false,
            pending: VecDeque::new(),
            conf_base,
            confs,
            conf_version: 0,
        };
        log.check();
        Ok(log)
    }

    /// Asserts the cursor invariants. Cheap; called after every mutation.
    pub(crate) fn check(&self) {
        let last = self.last_index();
        assert!(
            self.committed <= last,
            "commit {} > last {}",
            self.committed,
            last
        );
        assert!(self.persisted <= self.handed && self.handed <= last);
        assert!(self.applied <= self.committed);
        assert!(self.applied <= self.persisted.max(self.snapshot.meta.index));
        if !self.snapshot_unhanded {
            assert!(self.offset() <= self.applied, "compacted past applied");
        }
        // Contiguity and term order are asserted where entries are added
        // (`append`), so the O(1) checks here suffice after every input.
        debug_assert!(self
            .entries
            .front()
            .is_none_or(|e| e.index == self.offset() + 1));
        debug_assert!(self
            .entries
            .front()
            .is_none_or(|e| e.term >= self.snapshot.meta.term));
        debug_assert!(self.confs.first().is_none_or(|(i, _)| *i > self.offset()));
        debug_assert!(self.confs.last().is_none_or(|(i, _)| *i <= last));
    }

    /// The current configuration: the latest in the log.
    pub(crate) fn membership(&self) -> &Membership {
        self.confs.last().map_or(&self.conf_base, |(_, m)| m)
    }

    /// Index of the latest configuration entry (the snapshot index if none
    /// is in the log).
    pub(crate) fn conf_index(&self) -> Index {
        self.confs.last().map_or(self.offset(), |(i, _)| *i)
    }

    /// The configuration before the latest configuration entry.
    pub(crate) fn previous_membership(&self) -> &Membership {
        match self.confs.len() {
            0 | 1 => &self.conf_base,
            n => &self.confs[n - 2].1,
        }
    }

    /// Changes whenever `membership()` changes.
    pub(crate) fn conf_version(&self) -> u64 {
        self.conf_version
    }

    /// The configuration in force at `index` (at or after the offset).
    pub(crate) fn membership_at(&self, index: Index) -> &Membership {
        assert!(index >= self.offset());
        self.confs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.conf_base, |(_, m)| m)
    }

    pub(crate) fn offset(&self) -> Index {
        self.snapshot.meta.index
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub(crate) fn last_index(&self) -> Index {
        self.offset() + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .back()
            .map_or(self.snapshot.meta.term, |e| e.term)
    }

    /// Term of the entry at `index`, or `None` if compacted away or absent.
    pub(crate) fn term(&self, index: Index) -> Option<Term> {
        let offset = self.offset();
        if index == offset {
            return Some(self.snapshot.meta.term);
        }
        if index < offset || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - offset - 1) as usize].term)
    }

    pub(crate) fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Raft §5.4.1: is a log ending at (`index`, `term`) at least as
    /// up-to-date as ours?
    pub(crate) fn is_up_to_date(&self, index: Index, term: Term) -> bool {
        term > self.last_term() || (term == self.last_term() && index >= self.last_index())
    }

    /// Leader append. Entries must continue the log.
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1);
        assert!(entry.term >= self.last_term());
        if entry.kind == EntryKind::ConfChange {
            let m = Membership::decode(&entry.data).expect("configuration entries are validated");
            self.confs.push((entry.index, m));
            self.conf_version += 1;
        }
        self.entries.push_back(entry);
    }

    /// Follower append (Raft §5.3). Returns the index of the last entry
    /// known to match the leader, or `None` if (`prev_index`, `prev_term`)
    /// does not match.
    pub(crate) fn try_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        entries: &[Entry],
    ) -> Option<Index> {
        if !self.matches(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + entries.len() as u64;
        let conflict = entries.iter().find(|e| !self.matches(e.index, e.term));
        if let Some(first) = conflict {
            let at = first.index;
            assert!(
                at > self.committed,
                "conflict at {at} would truncate committed {}",
                self.committed
            );
            self.truncate_from(at);
            let skip = (at - prev_index - 1) as usize;
            for e in &entries[skip..] {
                self.append(e.clone());
            }
        }
        self.check();
        Some(last_new)
    }

    fn truncate_from(&mut self, at: Index) {
        assert!(at > self.offset() && at > self.committed);
        if at > self.last_index() {
            return;
        }
        self.entries.truncate((at - self.offset() - 1) as usize);
        if self.confs.last().is_some_and(|(i, _)| *i >= at) {
            self.confs.retain(|(i, _)| *i < at);
            self.conf_version += 1;
        }
        self.handed = self.handed.min(at - 1);
        self.persisted = self.persisted.min(at - 1);
        let clamp_term = self.term(at - 1).expect("truncation point is in the log");
        for p in self.pending.iter_mut().filter(|p| p.index >= at) {
            p.index = at - 1;
            p.term = clamp_term;
        }
    }

    /// Leader's hint search (etcd's findConflictByTerm): the largest index
    /// `<= index` whose term is `<= term`, stopping at the compaction offset.
    pub(crate) fn find_conflict_by_term(&self, index: Index, term: Term) -> (Index, Term) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Some(t) if t <= term => return (i, t),
                Some(_) if i > self.offset() => i -= 1,
                _ => return (self.offset(), self.snapshot.meta.term),
            }
        }
    }

    pub(crate) fn commit_to(&mut self, index: Index) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    /// Entries from `lo` on, at most `count_max` of them and `bytes_max` bytes
    /// (but at least one if any exist). `lo` must be above the offset.
    pub(crate) fn entries_from(&self, lo: Index, count_max: usize, bytes_max: usize) -> Vec<Entry> {
        assert!(lo > self.offset());
        let mut out = Vec::new();
        let mut bytes = 0;
        let start = (lo - self.offset() - 1) as usize;
        for e in self.entries.iter().skip(start).take(count_max) {
            bytes += e.size_bytes();
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Takes the installed-but-unhanded snapshot, if any.
    pub(crate) fn take_unhanded_snapshot(&mut self) -> Option<Snapshot> {
        if !self.snapshot_unhanded {
            return None;
        }
        self.snapshot_unhanded = false;
        self.applied = self.offset();
        Some(self.snapshot.clone())
    }

    /// Entries not yet handed to the caller for persistence.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let last = self.last_index();
        if self.handed == last {
            return Vec::new();
        }
        let out = self.entries_from(self.handed + 1, usize::MAX, usize::MAX);
        self.handed = last;
        out
    }

    /// Records that a `Ready` numbered `number` carries state up to the
    /// current last index.
    pub(crate) fn note_ready(&mut self, number: u64) {
        if let Some(back) = self.pending.back() {
            assert!(back.number < number);
        }
        self.pending.push_back(PendingPersist {
            number,
            index: self.last_index(),
            term: self.last_term(),
        });
    }

    /// The caller made every `Ready` up to `number` durable. Returns true if
    /// the persisted index advanced.
    pub(crate) fn on_persisted(&mut self, number: u64) -> bool {
        let mut best = None;
        while let Some(p) = self.pending.front().copied() {
            if p.number > number {
                break;
            }
            self.pending.pop_front();
            if self.matches(p.index, p.term) {
                best = Some(p.index);
            }
        }
        let advanced = match best {
            Some(index) if index > self.persisted => {
                assert!(index <= self.handed);
                self.persisted = index;
                true
            }
            _ => false,
        };
        self.check();
        advanced
    }

    /// Committed, durable entries not yet applied, up to `bytes_max`.
    pub(crate) fn take_committed(&mut self, bytes_max: usize) -> Vec<Entry> {
        let hi = self.committed.min(self.persisted);
        if self.snapshot_unhanded || hi <= self.applied {
            return Vec::new();
        }
        let count = (hi - self.applied) as usize;
        let out = self.entries_from(self.applied + 1, count, bytes_max);
        self.applied += out.len() as u64;
        self.check();
        out
    }

    pub(crate) fn has_committed_to_apply(&self) -> bool {
        !self.snapshot_unhanded && self.committed.min(self.persisted) > self.applied
    }

    pub(crate) fn has_unhanded(&self) -> bool {
        self.snapshot_unhanded || self.handed < self.last_index()
    }

    /// Installs a leader's snapshot (Raft §7). Returns false if it brings
    /// nothing new. A snapshot whose last entry we already have only
    /// fast-forwards the commit index.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) -> bool {
        let (index, term) = (snapshot.meta.index, snapshot.meta.term);
        if index <= self.committed {
            return false;
        }
        if self.matches(index, term) {
            self.commit_to(index);
            return false;
        }
        self.entries.clear();
        self.conf_base = snapshot.meta.membership.clone();
        self.confs.clear();
        self.conf_version += 1;
        self.snapshot = snapshot;
        self.committed = index;
        self.handed = index;
        self.persisted = self.persisted.min(index);
        self.applied = self.applied.min(index);
        self.snapshot_unhanded = true;
        for p in self.pending.iter_mut() {
            p.index = 0;
            p.term = 0;
        }
        self.check();
        true
    }

    /// The application captured its state at the applied index into `data`:
    /// drop the log prefix it covers. Returns the new snapshot's metadata.
    pub(crate) fn compact(&mut self, data: Vec<u8>) -> Option<SnapshotMeta> {
        let index = self.applied;
        if index <= self.offset() || self.snapshot_unhanded {
            return None;
        }
        assert!(index <= self.persisted && index <= self.committed);
        let term = self.term(index).expect("applied entry is in the log");
        let membership = self.membership_at(index).clone();
        let drop = (index - self.offset()) as usize;
        self.entries.drain(..drop);
        // The current configuration is unchanged: only its history moves
        // into the snapshot.
        self.conf_base = membership.clone();
        self.confs.retain(|(i, _)| *i > index);
        let meta = SnapshotMeta {
            index,
            term,
            membership,
        };
        self.snapshot = Snapshot {
            meta: meta.clone(),
            data,
        };
        self.check();
        Some(meta)
    }
}
