//! Quiescence: an idle group stops ticking and heartbeating, so that a shard
//! can host thousands of groups at almost no idle cost (the multi-raft host
//! in `multi/` only ticks groups that are not quiesced).
//!
//! * The leader quiesces ([`RawNode::quiesce`]) when nothing is in flight:
//!   everything is committed, durable and handed out, no proposal, read,
//!   transfer or configuration change is pending, and every member matches
//!   its whole log. It sends a last heartbeat with the `quiesce` flag and
//!   the full commit index.
//! * A follower that receives it and holds exactly the leader's log (its
//!   last index equals that commit index) quiesces as well; one that does
//!   not stays awake, times out as usual and so wakes the group.
//! * Any input wakes a replica: a proposal, read, transfer, configuration
//!   change, or any message other than a quiescing heartbeat (follower) or
//!   a heartbeat response (leader). A woken replica starts a fresh election
//!   timer (and a leader a fresh CheckQuorum window), so no one campaigns
//!   or steps down merely because it was quiet.
//! * While quiesced nobody watches the leader, so the host watches the
//!   leader's *node* instead (node-level liveness, one beat per node pair)
//!   and calls [`RawNode::wake`] on the groups a dead node led.
//!
//! Leases are unaffected in safety: a quiet leader sends no rounds, so its
//! lease runs out and reads fall back to ReadIndex, which wakes the group.

use crate::progress::ProgressState;
use crate::types::{Message, MessageKind, Role};

use super::RawNode;

impl RawNode {
    /// Is this replica quiesced (the host need not tick it)?
    pub fn is_quiesced(&self) -> bool {
        self.quiesced
    }

    /// Leader: quiesces the group if it is idle. Returns whether it did.
    pub fn quiesce(&mut self) -> bool {
        if !self.can_quiesce() {
            return false;
        }
        let commit = self.log.committed;
        let peers: Vec<_> = self.progress.keys().copied().collect();
        for to in peers {
            let read_seq = self.read_seq;
            self.send(
                to,
                MessageKind::Heartbeat {
                    commit,
                    read_seq,
                    quiesce: true,
                },
            );
        }
        self.quiesced = true;
        self.check();
        true
    }

    /// Wakes a quiesced replica (the host saw its leader's node die).
    pub fn wake(&mut self) {
        self.unquiesce();
        self.check();
    }

    fn can_quiesce(&self) -> bool {
        let last = self.log.last_index();
        self.role == Role::Leader
            && !self.quiesced
            && !self.has_ready()
            && self.transfer.is_none()
            && self.reads_waiting.is_empty()
            && self.reads_blocked.is_empty()
            && self.log.committed == last
            && self.log.persisted == last
            && self.log.applied == last
            && self.log.conf_index() <= self.log.committed
            && !self.membership.is_joint()
            && self
                .progress
                .values()
                .all(|p| p.matched == last && p.state == ProgressState::Replicate)
    }

    /// Follower, on a quiescing heartbeat: go quiet if our log is exactly
    /// the leader's (all of it committed at `commit`).
    pub(super) fn maybe_quiesce_follower(&mut self, commit: crate::types::Index) {
        if self.role == Role::Follower
            && self.log.last_index() == commit
            && self.log.committed == commit
        {
            self.quiesced = true;
        }
    }

    /// Does `m` leave a quiesced replica quiet?
    pub(super) fn keeps_quiet(&self, m: &Message) -> bool {
        match m.kind {
            MessageKind::Heartbeat { quiesce, .. } => quiesce && m.term == self.term,
            MessageKind::HeartbeatResponse { .. } => {
                self.role == Role::Leader && m.term == self.term
            }
            _ => false,
        }
    }

    pub(super) fn unquiesce(&mut self) {
        if !self.quiesced {
            return;
        }
        self.quiesced = false;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        for pr in self.progress.values_mut() {
            pr.recent_active = true;
        }
    }
}
