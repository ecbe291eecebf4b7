//! Elections (Raft §5.2, PreVote, leadership transfer): role transitions,
//! campaigns and vote counting.

use crate::membership::VoteResult;
use crate::progress::{Progress, ProgressState};
use crate::types::{Entry, EntryKind, Index, MessageKind, NodeId, ProposeError, Role, Term};

use super::RawNode;

/// Why a replica campaigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Campaign {
    /// PreVote round: ask without raising the term.
    PreElection,
    /// Real election at term + 1.
    Election,
    /// Election ordered by the leader (`TimeoutNow`); bypasses leases.
    Transfer,
}

impl RawNode {
    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let base = self.cfg.election_ticks;
        self.election_timeout = base + self.rng.below(u64::from(base)) as u32;
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term);
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_role_state();
        self.reset_election_timer();
    }

    pub(super) fn become_pre_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_role_state();
        self.reset_election_timer();
        self.votes.insert(self.cfg.id, true);
    }

    pub(super) fn become_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
        self.term += 1;
        self.vote = Some(self.cfg.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_role_state();
        self.reset_election_timer();
        self.votes.insert(self.cfg.id, true);
    }

    pub(super) fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.reset_role_state();
        self.election_elapsed = 0;
        let next = self.log.last_index() + 1;
        for id in self
            .tracked_members()
            .into_iter()
            .filter(|&v| v != self.cfg.id)
        {
            let mut pr = Progress::new(next, self.cfg.inflight_appends_max);
            pr.recent_active = true;
            self.progress.insert(id, pr);
        }
        // Raft §5.4.2: entries of earlier terms commit only through one of ours.
        let entry = Entry {
            term: self.term,
            index: next,
            kind: EntryKind::Empty,
            data: Vec::new(),
        };
        self.log.append(entry);
        self.broadcast_pending = true;
        self.maybe_commit();
    }

    pub(super) fn campaign(&mut self, kind: Campaign) {
        if kind == Campaign::PreElection {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
        let transfer = kind == Campaign::Transfer;
        let pre = self.role == Role::PreCandidate;
        if self.membership.tally(&self.votes) == VoteResult::Won {
            self.on_election_won(pre);
            return;
        }
        let term = if pre { self.term + 1 } else { self.term };
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let peers: Vec<NodeId> = self
            .membership
            .all_voters()
            .into_iter()
            .filter(|&v| v != self.cfg.id)
            .collect();
        for to in peers {
            self.send_with_term(
                to,
                term,
                MessageKind::Vote {
                    pre,
                    last_index,
                    last_term,
                    transfer,
                },
            );
        }
    }

    pub(super) fn on_election_won(&mut self, pre: bool) {
        if pre {
            self.campaign(Campaign::Election);
        } else {
            self.become_leader();
        }
    }

    pub(super) fn on_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && term > self.term);
        let granted = can_vote && self.log.is_up_to_date(last_index, last_term);
        if granted && !pre {
            self.vote = Some(from);
            self.election_elapsed = 0;
        }
        let reply_term = if granted { term } else { self.term };
        self.send_with_term(from, reply_term, MessageKind::VoteResponse { pre, granted });
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, term: Term, pre: bool, granted: bool) {
        let expected = match self.role {
            Role::PreCandidate if pre => self.term + 1,
            Role::Candidate if !pre => self.term,
            _ => return,
        };
        if term != expected {
            return;
        }
        self.votes.entry(from).or_insert(granted);
        match self.membership.tally(&self.votes) {
            VoteResult::Won => self.on_election_won(pre),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Hands leadership to `target` (Raft thesis §3.10). Proposals are
    /// refused until the transfer completes or aborts after an election
    /// timeout.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if target == self.cfg.id || !self.membership.voters.contains(&target) {
            return Err(ProposeError::InvalidTarget(target));
        }
        self.unquiesce();
        if self.transfer.map(|(t, _)| t) != Some(target) {
            self.transfer = Some((target, 0));
            self.revoke_lease();
            if self.progress[&target].matched == self.log.last_index() {
                self.send(target, MessageKind::TimeoutNow);
            } else {
                // Resend from the match point rather than wait for the
                // pipeline: the transfer blocks proposals until it is done.
                let pr = self.progress.get_mut(&target).expect("voter");
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(target, true);
            }
        }
        self.check();
        Ok(())
    }
}
