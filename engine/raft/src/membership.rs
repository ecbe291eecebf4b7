//! Group membership and joint consensus (Raft thesis §4.3).
//!
//! A [`Membership`] names the voters and learners of a group. While a change
//! of voters is in progress the group is *joint*: `outgoing` holds the old
//! voters, `voters` the new ones, and every decision (commit, election,
//! CheckQuorum, ReadIndex, leases) needs a majority of **both**. Learners
//! receive the log but never vote and never count.
//!
//! # How a change flows
//! 1. The leader validates a list of [`ConfChange`]s against its current
//!    configuration and appends one `ConfChange` entry carrying the complete
//!    resulting membership (not a delta, so a replica that joins later needs
//!    no earlier configuration to interpret it). A change of voters enters
//!    the joint configuration; a change of learners only takes effect
//!    directly, since learners are in no quorum.
//! 2. Every replica uses the **latest configuration in its log**, committed
//!    or not (thesis §4.1). Truncating a conflicting suffix reverts it.
//! 3. Once the joint entry is committed the leader appends the entry that
//!    leaves the joint configuration (auto-leave). A leader that is not a
//!    voter of the final configuration hands over and steps down once that
//!    entry commits.
//!
//! # Invariants
//! * `voters` is non-empty for any configuration created by a change;
//!   `voters`, `outgoing` and `learners` are sorted and duplicate-free;
//!   learners are disjoint from both voter sets.
//! * At most one change is in flight: a leader accepts a new change only
//!   when the last configuration entry of its log is committed, the
//!   configuration is not joint, and it has committed an entry of its own
//!   term (the fix for the single-server-change bug, kept as defence in
//!   depth).
//!
//! Why it is safe: each step C_old → C_old,new → C_new overlaps the previous
//! one (any majority of C_old,new contains a majority of C_old and of C_new),
//! and at most one step is uncommitted at any time, so two leaders of
//! different configurations can never decide with disjoint quorums.

use std::collections::BTreeMap;

use crate::types::{Index, NodeId};

/// Most members (voters, outgoing voters and learners together) of a group.
pub const MEMBERS_MAX: usize = 64;
/// Version byte of the encoded membership in a `ConfChange` entry.
const ENCODING_VERSION: u8 = 1;
/// Bytes of the fixed header of an encoded membership: version, three u16 counts.
const HEADER_BYTES: usize = 1 + 3 * 2;

/// Who votes and who learns in one Raft group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Voters (the incoming configuration while joint). Sorted.
    pub voters: Vec<NodeId>,
    /// The previous voters while joint; empty otherwise. Sorted.
    pub outgoing: Vec<NodeId>,
    /// Non-voting members that receive the log. Sorted.
    pub learners: Vec<NodeId>,
}

/// One requested change of membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChange {
    AddVoter(NodeId),
    RemoveVoter(NodeId),
    AddLearner(NodeId),
    /// Turn a caught-up learner into a voter.
    PromoteLearner(NodeId),
    RemoveLearner(NodeId),
}

/// Why a configuration change was refused. Operating errors: nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfChangeError {
    /// No changes were given.
    Empty,
    /// Node id 0 is never valid.
    InvalidId,
    /// The node is already a voter or learner (use `PromoteLearner` for a learner).
    AlreadyMember(NodeId),
    /// `RemoveVoter` of a node that is not a voter.
    NotAVoter(NodeId),
    /// `PromoteLearner`/`RemoveLearner` of a node that is not a learner.
    NotALearner(NodeId),
    /// The change would leave the group without voters.
    NoVotersLeft,
    /// The change would exceed `MEMBERS_MAX` members.
    TooManyMembers { max: usize },
    /// An earlier change (the configuration entry at `index`) is not finished:
    /// not yet committed, or the joint configuration not yet left.
    Pending { index: Index },
    /// A new leader must commit an entry of its own term before it changes
    /// the configuration.
    LeaderNotReady,
    /// The learner has not caught up yet: the leader must be streaming
    /// appends to it (no probe or snapshot pending) and its `matched` index
    /// must be within `LEARNER_LAG_ENTRIES_MAX` of `committed`.
    LearnerBehind {
        id: NodeId,
        matched: Index,
        committed: Index,
    },
}

/// An encoded membership that does not decode (a corrupt entry or snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedMembership;

impl Membership {
    /// A plain (non-joint) configuration of `voters`.
    pub fn new(mut voters: Vec<NodeId>) -> Membership {
        voters.sort_unstable();
        Membership {
            voters,
            outgoing: Vec::new(),
            learners: Vec::new(),
        }
    }

    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Votes in the current configuration (incoming or outgoing).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok() || self.outgoing.binary_search(&id).is_ok()
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member (voters of both configurations and learners), sorted,
    /// without duplicates.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Voters of both configurations, sorted, without duplicates.
    pub fn all_voters(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.voters.iter().chain(&self.outgoing).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The configuration after `changes`, or why they are refused. A change
    /// of voters yields a joint configuration; a change of learners only
    /// does not. Does not check learner catch-up (the leader does).
    pub fn apply(&self, changes: &[ConfChange]) -> Result<Membership, ConfChangeError> {
        if changes.is_empty() {
            return Err(ConfChangeError::Empty);
        }
        assert!(
            !self.is_joint(),
            "changes start from a non-joint configuration"
        );
        let mut voters = self.voters.clone();
        let mut learners = self.learners.clone();
        for &change in changes {
            apply_one(&mut voters, &mut learners, change)?;
        }
        if voters.is_empty() {
            return Err(ConfChangeError::NoVotersLeft);
        }
        voters.sort_unstable();
        learners.sort_unstable();
        let outgoing = if voters == self.voters {
            Vec::new()
        } else {
            self.voters.clone()
        };
        let next = Membership {
            voters,
            outgoing,
            learners,
        };
        if next.members().len() > MEMBERS_MAX {
            return Err(ConfChangeError::TooManyMembers { max: MEMBERS_MAX });
        }
        next.check();
        Ok(next)
    }

    /// The configuration that leaves the joint state: the incoming voters.
    pub fn leave_joint(&self) -> Membership {
        assert!(self.is_joint());
        Membership {
            voters: self.voters.clone(),
            outgoing: Vec::new(),
            learners: self.learners.clone(),
        }
    }

    /// Asserts the structural invariants.
    pub(crate) fn check(&self) {
        assert!(self.validate().is_ok(), "malformed membership {self:?}");
    }

    pub(crate) fn validate(&self) -> Result<(), MalformedMembership> {
        let sorted_unique = |ids: &[NodeId]| ids.windows(2).all(|w| w[0] < w[1]);
        let ok = sorted_unique(&self.voters)
            && sorted_unique(&self.outgoing)
            && sorted_unique(&self.learners)
            && !self.voters.contains(&0)
            && !self.outgoing.contains(&0)
            && !self.learners.contains(&0)
            && self.learners.iter().all(|l| !self.is_voter(*l))
            && (self.outgoing.is_empty() || !self.voters.is_empty())
            && self.members().len() <= MEMBERS_MAX;
        if ok {
            Ok(())
        } else {
            Err(MalformedMembership)
        }
    }

    /// Encodes for a `ConfChange` entry: version, counts, then ids (LE u64).
    pub fn encode(&self) -> Vec<u8> {
        let ids = self.voters.len() + self.outgoing.len() + self.learners.len();
        let mut out = Vec::with_capacity(HEADER_BYTES + 8 * ids);
        out.push(ENCODING_VERSION);
        for set in [&self.voters, &self.outgoing, &self.learners] {
            out.extend_from_slice(&(set.len() as u16).to_le_bytes());
        }
        for set in [&self.voters, &self.outgoing, &self.learners] {
            for id in set {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        out
    }

    /// Decodes and validates what [`Membership::encode`] produced. Never
    /// panics on arbitrary bytes.
    pub fn decode(data: &[u8]) -> Result<Membership, MalformedMembership> {
        let (header, body) = data
            .split_at_checked(HEADER_BYTES)
            .ok_or(MalformedMembership)?;
        if header[0] != ENCODING_VERSION {
            return Err(MalformedMembership);
        }
        let count =
            |i: usize| usize::from(u16::from_le_bytes([header[1 + 2 * i], header[2 + 2 * i]]));
        let counts = [count(0), count(1), count(2)];
        if counts.iter().sum::<usize>() > 3 * MEMBERS_MAX
            || body.len() != 8 * counts.iter().sum::<usize>()
        {
            return Err(MalformedMembership);
        }
        let mut words = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        let mut take = |n: usize| words.by_ref().take(n).collect::<Vec<NodeId>>();
        let m = Membership {
            voters: take(counts[0]),
            outgoing: take(counts[1]),
            learners: take(counts[2]),
        };
        m.validate()?;
        Ok(m)
    }

    /// The highest index that a quorum has reached, given each voter's
    /// `matched` index: the smaller of the two majorities while joint.
    pub(crate) fn committed_index(&self, matched: impl Fn(NodeId) -> Index) -> Index {
        let incoming = majority_index(&self.voters, &matched);
        if self.is_joint() {
            incoming.min(majority_index(&self.outgoing, &matched))
        } else {
            incoming
        }
    }

    /// Do the nodes for which `yes` holds form a quorum (of both
    /// configurations while joint)?
    pub(crate) fn has_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        let majority = |ids: &[NodeId]| ids.iter().filter(|&&id| yes(id)).count() > ids.len() / 2;
        majority(&self.voters) && (!self.is_joint() || majority(&self.outgoing))
    }

    /// Outcome of an election with `votes` (granted or rejected per node).
    pub(crate) fn tally(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let one = |ids: &[NodeId]| {
            let granted = ids.iter().filter(|id| votes.get(id) == Some(&true)).count();
            let rejected = ids
                .iter()
                .filter(|id| votes.get(id) == Some(&false))
                .count();
            if granted > ids.len() / 2 {
                VoteResult::Won
            } else if rejected >= ids.len().div_ceil(2) {
                VoteResult::Lost
            } else {
                VoteResult::Pending
            }
        };
        let incoming = one(&self.voters);
        let outgoing = if self.is_joint() {
            one(&self.outgoing)
        } else {
            VoteResult::Won
        };
        match (incoming, outgoing) {
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            _ => VoteResult::Pending,
        }
    }
}

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Won,
    Lost,
    Pending,
}

fn apply_one(
    voters: &mut Vec<NodeId>,
    learners: &mut Vec<NodeId>,
    change: ConfChange,
) -> Result<(), ConfChangeError> {
    let remove = |set: &mut Vec<NodeId>, id| set.retain(|&x| x != id);
    match change {
        ConfChange::AddVoter(id) | ConfChange::AddLearner(id) => {
            if id == 0 {
                return Err(ConfChangeError::InvalidId);
            }
            if voters.contains(&id) || learners.contains(&id) {
                return Err(ConfChangeError::AlreadyMember(id));
            }
            if matches!(change, ConfChange::AddVoter(_)) {
                voters.push(id);
            } else {
                learners.push(id);
            }
        }
        ConfChange::RemoveVoter(id) => {
            if !voters.contains(&id) {
                return Err(ConfChangeError::NotAVoter(id));
            }
            remove(voters, id);
        }
        ConfChange::PromoteLearner(id) | ConfChange::RemoveLearner(id) => {
            if !learners.contains(&id) {
                return Err(ConfChangeError::NotALearner(id));
            }
            remove(learners, id);
            if matches!(change, ConfChange::PromoteLearner(_)) {
                voters.push(id);
            }
        }
    }
    Ok(())
}

/// The largest index matched by a majority of `ids` (`Index::MAX` for an
/// empty set, which constrains nothing).
fn majority_index(ids: &[NodeId], matched: &impl Fn(NodeId) -> Index) -> Index {
    if ids.is_empty() {
        return Index::MAX;
    }
    let mut indexes: Vec<Index> = ids.iter().map(|&id| matched(id)).collect();
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes[ids.len() / 2]
}

impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |ids: &[NodeId]| {
            ids.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "voters=[{}]", list(&self.voters))?;
        if self.is_joint() {
            write!(f, " outgoing=[{}]", list(&self.outgoing))?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners=[{}]", list(&self.learners))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voter_changes_go_joint_learner_changes_do_not() {
        let m = Membership::new(vec![3, 1, 2]);
        let j = m
            .apply(&[ConfChange::AddVoter(4), ConfChange::RemoveVoter(1)])
            .expect("valid");
        assert_eq!(j.voters, vec![2, 3, 4]);
        assert_eq!(j.outgoing, vec![1, 2, 3]);
        assert!(j.is_voter(1) && j.is_voter(4));
        let left = j.leave_joint();
        assert!(!left.is_joint() && !left.is_voter(1));
        let l = m.apply(&[ConfChange::AddLearner(5)]).expect("valid");
        assert!(!l.is_joint() && l.is_learner(5) && !l.is_voter(5));
        let p = l.apply(&[ConfChange::PromoteLearner(5)]).expect("valid");
        assert_eq!(
            (p.voters.clone(), p.learners.clone()),
            (vec![1, 2, 3, 5], vec![])
        );
        assert!(p.is_joint());
    }

    #[test]
    fn invalid_changes_are_refused() {
        let m = Membership::new(vec![1, 2]);
        let err = |c: &[ConfChange]| m.apply(c).expect_err("refused");
        assert_eq!(err(&[]), ConfChangeError::Empty);
        assert_eq!(err(&[ConfChange::AddVoter(0)]), ConfChangeError::InvalidId);
        assert_eq!(
            err(&[ConfChange::AddLearner(2)]),
            ConfChangeError::AlreadyMember(2)
        );
        assert_eq!(
            err(&[ConfChange::RemoveVoter(9)]),
            ConfChangeError::NotAVoter(9)
        );
        assert_eq!(
            err(&[ConfChange::PromoteLearner(2)]),
            ConfChangeError::NotALearner(2)
        );
        assert_eq!(
            err(&[ConfChange::RemoveVoter(1), ConfChange::RemoveVoter(2)]),
            ConfChangeError::NoVotersLeft
        );
        let many: Vec<ConfChange> = (10..10 + MEMBERS_MAX as u64)
            .map(ConfChange::AddLearner)
            .collect();
        assert_eq!(
            err(&many),
            ConfChangeError::TooManyMembers { max: MEMBERS_MAX }
        );
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let m = Membership {
            voters: vec![2, 3, 4],
            outgoing: vec![1, 2, 3],
            learners: vec![7],
        };
        assert_eq!(Membership::decode(&m.encode()), Ok(m.clone()));
        let bytes = m.encode();
        for cut in 0..bytes.len() {
            assert!(Membership::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut unsorted = m.clone();
        unsorted.voters = vec![3, 2];
        assert!(Membership::decode(&unsorted.encode()).is_err());
        let mut overlap = m;
        overlap.learners = vec![2];
        assert!(Membership::decode(&overlap.encode()).is_err());
        assert!(Membership::decode(&[9, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn joint_quorums_need_both_majorities() {
        let j = Membership {
            voters: vec![3, 4, 5],
            outgoing: vec![1, 2, 3],
            learners: vec![6],
        };
        // Matched: 1,2 far ahead; 4,5 behind.
        let matched = |id| match id {
            1 | 2 => 10,
            3 => 7,
            _ => 2,
        };
        assert_eq!(j.committed_index(matched), 2);
        assert!(!j.has_quorum(|id| id <= 3));
        assert!(j.has_quorum(|id| id <= 4));
        let votes: BTreeMap<NodeId, bool> = [(1, true), (2, true), (4, false), (5, false)].into();
        assert_eq!(j.tally(&votes), VoteResult::Lost);
        let votes: BTreeMap<NodeId, bool> = [(1, true), (3, true), (4, true), (6, true)].into();
        assert_eq!(j.tally(&votes), VoteResult::Won);
        let votes: BTreeMap<NodeId, bool> = [(1, true), (2, true), (6, true)].into();
        assert_eq!(j.tally(&votes), VoteResult::Pending);
    }
}
