//! Cluster-wide safety invariants, checked after every simulator event.
//!
//! * Election safety: at most one leader per term.
//! * Log matching: an entry is identified by (index, term); every copy of it
//!   anywhere has the same payload and the same previous term.
//! * Leader completeness: a new leader holds every entry known committed.
//! * State machine safety: no two replicas apply different entries at one
//!   index.
//! * Durability: every committed entry is held by a quorum of *durable*
//!   stores (log or snapshot), so no crash pattern can lose it. The quorum
//!   is that of the configuration the committing leader counted with (its
//!   latest appended one when the checker first sees the commit: a
//!   configuration takes effect when appended, so entries before a new
//!   configuration entry may be committed by the new voters alone).

use std::collections::BTreeMap;

use teller_raft::{Entry, EntryKind, Index, Membership, NodeId, Persisted, RawNode, Term};

/// Identity and payload of one log entry as first observed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EntryFingerprint {
    prev_term: Term,
    kind: EntryKind,
    data: Vec<u8>,
}

pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    entries: BTreeMap<(Index, Term), EntryFingerprint>,
    /// Index -> (term, configuration it was committed under, as an index
    /// into `confs`) of every entry some node has reported committed.
    committed: BTreeMap<Index, (Term, usize)>,
    /// Configurations that committed entries, in order of first use.
    confs: Vec<Membership>,
    /// Index -> (term, payload) of every entry some node applied.
    applied: BTreeMap<Index, (Term, Vec<u8>)>,
    /// Per node: the commit index already folded into `committed`.
    commit_seen: BTreeMap<NodeId, Index>,
    /// Committed entries up to here are covered by a quorum of durable
    /// snapshots.
    durable_floor: Index,
    /// The configuration as of the highest commit index seen on any node.
    conf_committed: (Index, Membership),
}

pub type Violation = String;

impl Checker {
    /// A checker for a group founded with `voters`.
    pub fn new(voters: Vec<NodeId>) -> Checker {
        Checker {
            leaders: BTreeMap::new(),
            entries: BTreeMap::new(),
            committed: BTreeMap::new(),
            confs: Vec::new(),
            applied: BTreeMap::new(),
            commit_seen: BTreeMap::new(),
            durable_floor: 0,
            conf_committed: (0, Membership::new(voters)),
        }
    }

    /// The latest committed configuration seen.
    pub fn committed_membership(&self) -> &Membership {
        &self.conf_committed.1
    }

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
                Some(&(t, _)) if t != term => {
                    return Err(format!(
                        "commit safety: node {id} committed {index}@{term}, elsewhere {index}@{t}"
                    ));
                }
                Some(_) => {}
                None => {
                    let conf = self.conf_id(node);
                    self.committed.insert(index, (term, conf));
                }
            }
        }
        self.commit_seen.insert(id, commit.max(seen));
        if commit > self.conf_committed.0 {
            self.conf_committed.0 = commit;
            let m = node.committed_membership();
            if *m != self.conf_committed.1 {
                self.conf_committed.1 = m.clone();
            }
        }
        Ok(())
    }

    /// The configuration a commit first seen on `node` was counted with: a
    /// leader's current one (commits are first seen on the leader, since
    /// the simulator checks a node before it compacts); otherwise, as a
    /// fallback, the node's latest committed one.
    fn conf_id(&mut self, node: &RawNode) -> usize {
        let m = if node.role() == teller_raft::Role::Leader {
            node.membership()
        } else {
            node.committed_membership()
        };
        if self.confs.last() != Some(m) {
            self.confs.push(m.clone());
        }
        self.confs.len() - 1
    }

    /// A node restarted: its commit index restarts from its durable state.
    pub fn on_restart(&mut self, id: NodeId) {
        self.commit_seen.remove(&id);
    }

    fn check_leader_completeness(&self, leader: &RawNode) -> Result<(), Violation> {
        for (&index, &(term, _)) in self.committed.range(leader.first_index()..) {
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

    /// Every committed entry is durable on a quorum of the configuration
    /// that committed it. `all` holds every node's durable store.
    pub fn check_durability(&mut self, all: &[(NodeId, &Persisted)]) -> Result<(), Violation> {
        // Durable snapshots only move forward, so entries covered by a
        // quorum of them stay safe for good: skip past those once.
        let snapshot_index = |id: NodeId| {
            all.iter()
                .find(|(n, _)| *n == id)
                .and_then(|(_, p)| p.snapshot.as_ref())
                .map_or(0, |s| s.meta.index)
        };
        while let Some((&index, &(_, conf))) = self.committed.range(self.durable_floor + 1..).next()
        {
            if !quorum_holds(&self.confs[conf], |id| snapshot_index(id) >= index) {
                break;
            }
            self.durable_floor = index;
        }
        for (&index, &(term, conf)) in self.committed.range(self.durable_floor + 1..) {
            let holds_it = |id: NodeId| {
                all.iter()
                    .find(|(n, _)| *n == id)
                    .is_some_and(|(_, p)| holds(p, index, term))
            };
            if !quorum_holds(&self.confs[conf], holds_it) {
                return Err(format!(
                    "durability: committed {index}@{term} is not durable on a quorum of {}",
                    self.confs[conf]
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

/// Do the nodes for which `yes` holds form a quorum of `m` (a majority of
/// both voter sets while joint)?
fn quorum_holds(m: &Membership, yes: impl Fn(NodeId) -> bool) -> bool {
    let majority = |ids: &[NodeId]| ids.iter().filter(|&&id| yes(id)).count() > ids.len() / 2;
    majority(&m.voters) && (!m.is_joint() || majority(&m.outgoing))
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
