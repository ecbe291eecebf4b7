//! Membership changes on the node: proposing a change, following the log's
//! configuration, leaving the joint configuration, and a removed leader's
//! hand-over. The rules and the safety argument are in `membership.rs`.

use crate::config::LEARNER_LAG_ENTRIES_MAX;
use crate::membership::{ConfChange, ConfChangeError, Membership};
use crate::progress::{Progress, ProgressState};
use crate::types::{Entry, EntryKind, Index, MessageKind, NodeId, ProposeError, Role};

use super::RawNode;

impl RawNode {
    /// Proposes a change of membership (leader only). Voter changes go
    /// through the joint configuration, which the leader leaves on its own
    /// once the joint entry commits. Returns the index of the configuration
    /// entry. Refused while an earlier change is unfinished, before the
    /// leader committed an entry of its term, or when a learner to promote
    /// has not caught up.
    pub fn propose_conf_change(&mut self, changes: &[ConfChange]) -> Result<Index, ProposeError> {
        self.check_can_propose()?;
        self.unquiesce();
        let refuse = |e| Err(ProposeError::ConfChange(e));
        let conf_index = self.log.conf_index();
        if conf_index > self.log.committed || self.membership.is_joint() {
            return refuse(ConfChangeError::Pending { index: conf_index });
        }
        if self.log.term(self.log.committed) != Some(self.term) {
            return refuse(ConfChangeError::LeaderNotReady);
        }
        let next = match self.membership.apply(changes) {
            Ok(next) => next,
            Err(e) => return refuse(e),
        };
        for change in changes {
            if let ConfChange::PromoteLearner(id) = *change {
                self.check_caught_up(id)?;
            }
        }
        let index = self.append_conf(next);
        self.finish_input();
        Ok(index)
    }

    /// A learner may be promoted once the leader streams appends to it
    /// (its position is known and it needs no snapshot) and it matches the
    /// log to within `LEARNER_LAG_ENTRIES_MAX` of the commit index, so the
    /// new voter does not stall commits while it catches up.
    fn check_caught_up(&self, id: NodeId) -> Result<(), ProposeError> {
        let committed = self.log.committed;
        let (matched, replicating) = self.progress.get(&id).map_or((0, false), |p| {
            (p.matched, p.state == ProgressState::Replicate)
        });
        if replicating && matched + LEARNER_LAG_ENTRIES_MAX >= committed {
            return Ok(());
        }
        Err(ProposeError::ConfChange(ConfChangeError::LearnerBehind {
            id,
            matched,
            committed,
        }))
    }

    /// Leader: appends a configuration entry; it takes effect at once.
    fn append_conf(&mut self, next: Membership) -> Index {
        assert_eq!(self.role, Role::Leader);
        let data = next.encode();
        let index = self.log.last_index() + 1;
        self.uncommitted_bytes += data.len();
        self.log.append(Entry {
            term: self.term,
            index,
            kind: EntryKind::ConfChange,
            data,
        });
        self.broadcast_pending = true;
        index
    }

    /// Leader, after its commit index advanced: once the joint entry is
    /// committed, append the entry that leaves the joint configuration.
    pub(super) fn maybe_leave_joint(&mut self) {
        if self.log.membership().is_joint() && self.log.conf_index() <= self.log.committed {
            let next = self.log.membership().leave_joint();
            self.append_conf(next);
        }
    }

    /// Adopts the log's configuration if it changed, and updates the set of
    /// replicas a leader tracks.
    pub(super) fn sync_membership(&mut self) {
        let conf_committed = self.log.conf_index() <= self.log.committed;
        let state = (self.log.conf_version(), conf_committed);
        if state == self.conf_state {
            return;
        }
        let changed = state.0 != self.conf_state.0;
        self.conf_state = state;
        self.membership = self.log.membership().clone();
        if self.role != Role::Leader {
            return;
        }
        if changed {
            self.restart_lease();
        }
        let members = self.tracked_members();
        self.progress
            .retain(|id, _| members.binary_search(id).is_ok());
        let next = self.log.last_index() + 1;
        for id in members.into_iter().filter(|&id| id != self.cfg.id) {
            self.progress.entry(id).or_insert_with(|| {
                let mut pr = Progress::new(next, self.cfg.inflight_appends_max);
                pr.recent_active = true;
                pr
            });
        }
        if let Some((target, _)) = self.transfer {
            if !self.membership.voters.contains(&target) {
                self.transfer = None;
            }
        }
        self.broadcast_pending = true;
    }

    /// The replicas a leader replicates to: the current members and, until
    /// the latest configuration entry commits, the previous ones too, so
    /// that a removed replica receives the entry that removes it (and then
    /// stops campaigning) rather than being cut off just before it.
    pub(super) fn tracked_members(&self) -> Vec<NodeId> {
        let mut members = self.membership.members();
        if self.log.conf_index() > self.log.committed {
            members.extend(self.log.previous_membership().members());
            members.sort_unstable();
            members.dedup();
        }
        members
    }

    /// A leader that is no voter of the committed, final configuration hands
    /// leadership to the most caught-up voter and steps down. It keeps
    /// leading until then (not counting itself), as in thesis §4.2.2.
    pub(super) fn maybe_step_down_removed(&mut self) {
        let removed = self.role == Role::Leader
            && !self.membership.is_joint()
            && !self.membership.is_voter(self.cfg.id)
            && self.log.conf_index() <= self.log.committed;
        if !removed {
            return;
        }
        let last = self.log.last_index();
        let target = self
            .membership
            .voters
            .iter()
            .filter_map(|id| self.progress.get(id).map(|p| (p.matched, *id)))
            .max();
        if let Some((matched, id)) = target {
            if matched == last {
                self.send(id, MessageKind::TimeoutNow);
            }
        }
        self.become_follower(self.term, None);
    }
}
