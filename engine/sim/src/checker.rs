//! Cluster-wide safety invariants, checked after every simulator event.
//!
//! * Election safety: at most one leader per term.
//! * Log matching: an entry is identified by (index, term); every copy of it
//!   anywhere has the same payload and the same previous term.
//! * Leader completeness: a new leader holds every entry known committed.
//! * State machine safety: no two replicas apply different entries at one
//!   index.
//! * Durability: every committed entry is held by a quorum of *durable*
//!   stores (log or snapshot), so no crash pattern can lose it.

use std::collections::BTreeMap;

use teller_raft::{Entry, EntryKind, Index, NodeId, Persisted, RawNode, Term};

/// Identity and payload of one log entry as first observed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EntryFingerprint {
    prev_term: Term,
    kind: EntryKind,
    data: Vec<u8>,
}

#[derive(Default)]
pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    entries: BTreeMap<(Index, Term), EntryFingerprint>,
    /// Index -> term of every entry some node has reported committed.
    committed: BTreeMap<Index, Term>,
    /// Index -> (term, payload) of every entry some node applied.
    applied: BTreeMap<Index, (Term, Vec<u8>)>,
    /// Per node: the commit index already folded into `committed`.
    commit_seen: BTreeMap<NodeId, Index>,
    /// Committed entries up to here are covered by a quorum of durable
    /// snapshots.
    durable_floor: Index,
}

pub type Violation = String;

impl Checker {
    /// A node handed out `entries` to persist: they are now in its log.
    pub fn on_log_entries(&mut self, node: &RawNode, entries: &[Entry]) -> Result<(), Violation> {
        for e in entries {
            let prev_term = node
                .log_term(e.index - 1)
                .expect("entry follows its predecessor");
            let fp = EntryFingerprint {
                prev_term,
                kind: e.kind,
                data: e.data.clone(),
            };
            match self.entries.get(&(e.index, e.term)) {
                Some(seen) if *seen != fp => {
                    return Err(format!(
                        "log matching: node {} has {}@{} as {fp:?}, seen before as {seen:?}",
                        node.id(),
                        e.index,
                        e.term
                    ));
                }
                Some(_) => {}
                None => {
                    self.entries.insert((e.index, e.term), fp);
                }
            }
        }
        Ok(())
    }

    /// A node applied `entry`.
    pub fn on_applied(&mut self, node: NodeId, entry: &Entry) -> Result<(), Violation> {
        let value = (entry.term, entry.data.clone());
        match self.applied.get(&entry.index) {
            Some(seen) if *seen != value => Err(format!(
                "state machine safety: node {node} applied {}@{} but {}@{} was applied elsewhere",
                entry.index, entry.term, entry.index, seen.0
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(entry.index, value);
                Ok(())
            }
        }
    }

    /// Checks a live node's role and commit index after any event.
    pub fn on_node(&mut self, node: &RawNode) -> Result<(), Violation> {
        let id = node.id();
        if node.role() == teller_raft::Role::Leader {
            match self.leaders.get(&node.term()) {
                Some(&other) if other != id => {
                    return Err(format!(
                        "election safety: nodes {other} and {id} lead term {}",
                        node.term()
                    ));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(node.term(), id);
                    self.check_leader_completeness(node)?;
                }
            }
        }
        let seen = self.commit_seen.get(&id).copied().unwrap_or(0);
        let commit = node.commit_index();
        for index in (seen + 1).max(node.first_index())..=commit {
            let term = node.log_term(index).expect("committed entry in log");
            match self.committed.get(&index) {
                Some(&t) if t != term => {
                    return Err(format!(
                        "commit safety: node {id} committed {index}@{term}, elsewhere {index}@{t}"
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(index, term);
                }
            }
        }
        self.commit_seen.insert(id, commit.max(seen));
        Ok(())
    }

    /// A node restarted: its commit index restarts from its durable state.
    pub fn on_restart(&mut self, id: NodeId) {
        self.commit_seen.remove(&id);
    }

    fn check_leader_completeness(&self, leader: &RawNode) -> Result<(), Violation> {
        for (&index, &term) in self.committed.range(leader.first_index()..) {
            if leader.log_term(index) != Some(term) {
                return Err(format!(
                    "leader completeness: leader {} of term {} lacks committed {index}@{term}",
                    leader.id(),
                    leader.term()
                ));
            }
        }
        if let Some((&index, _)) = self.committed.range(..leader.first_index()).next_back() {
            // Compacted entries are covered by the leader's snapshot, which
            // only ever contains committed entries.
            debug_assert!(index < leader.first_index());
        }
        Ok(())
    }

    /// Every committed entry is durable on a quorum.
    pub fn check_durability(&mut self, stores: &[&Persisted]) -> Result<(), Violation> {
        let quorum = stores.len() / 2 + 1;
        // Durable snapshots only move forward, so entries covered by a quorum
        // of them stay safe for good: check only what lies above.
        let mut snaps: Vec<Index> = stores
            .iter()
            .map(|p| p.snapshot.as_ref().map_or(0, |s| s.meta.index))
            .collect();
        snaps.sort_unstable_by(|a, b| b.cmp(a));
        self.durable_floor = self.durable_floor.max(snaps[quorum - 1]);
        for (&index, &term) in self.committed.range(self.durable_floor + 1..) {
            let holders = stores.iter().filter(|p| holds(p, index, term)).count();
            if holders < quorum {
                return Err(format!(
                    "durability: committed {index}@{term} is durable on {holders} stores only"
                ));
            }
        }
        Ok(())
    }

    pub fn leaders_elected(&self) -> usize {
        self.leaders.len()
    }

    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }
}

fn holds(p: &Persisted, index: Index, term: Term) -> bool {
    if let Some(s) = &p.snapshot {
        if s.meta.index >= index {
            return true;
        }
    }
    let first = p.entries.first().map_or(0, |e| e.index);
    if index < first {
        return false;
    }
    p.entries
        .get((index - first) as usize)
        .is_some_and(|e| e.index == index && e.term == term)
}
