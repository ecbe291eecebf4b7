//! Leader leases: linearizable reads served by the leader with no message
//! round, safe under a configured maximum clock offset. ReadIndex
//! (`read.rs`) stays the fallback whenever the lease is not known valid.
//!
//! # Mechanism
//! Time is the caller's clock, passed in with [`RawNode::set_clock`] and
//! clamped so that it never goes backwards. With `Config::lease` set to
//! `{ election_timeout: E, max_clock_offset: ε }`:
//!
//! * **Followers promise.** A replica that hears from the leader of its
//!   term (an append, heartbeat or snapshot) refuses to vote or pre-vote
//!   for any other candidate, and does not start a campaign of its own
//!   (its vote for itself counts like any other), until `E` has passed on
//!   its own clock since then; only a leadership transfer is exempt. A
//!   replica that (re)starts promises the same for `E` from its first clock
//!   reading: it may have made a promise it no longer remembers. The
//!   promise is kept on the clock, not in ticks: tick-based election
//!   timers run at a skewed rate and may fire before it ends.
//! * **The leader counts rounds.** Every heartbeat broadcast is a round,
//!   numbered by `read_seq` and stamped with the leader's clock when it was
//!   queued (at or before the real send). When a quorum of the current
//!   configuration (of both majorities while joint; the leader counts
//!   itself) has answered round `s` or a later one, the lease runs until
//!   `sent_at(s) + E − 2ε`.
//! * **Reads.** While `now < until`, the leader has committed an entry of
//!   its term, and no transfer was started in this term, [`RawNode::read`]
//!   returns the commit index at once: the read is served when the
//!   application has applied it.
//! * **Revocation.** The lease ends when the leader steps down, when it
//!   starts a leadership transfer (for the rest of the term: a transfer
//!   vote bypasses the followers' promise, and a `TimeoutNow` may arrive
//!   arbitrarily late), and when its configuration changes (rounds sent
//!   before the change were confirmed by a quorum of another
//!   configuration).
//!
//! # Safety argument
//! Let the clocks satisfy |C_a(t) − C_b(t)| ≤ ε for every two replicas a, b
//! at every real time t (the configured bound; each clock is monotonic
//! after clamping). Suppose the leader L of term T serves a lease read at
//! real time t_read, based on round s sent at real time t_s, and another
//! leader L' of a term T' > T is elected at real time t_v. We show
//! t_read < t_v, so the read cannot miss a write of L' (and L' commits
//! nothing before t_v).
//!
//! L' won votes from a quorum Q' of its configuration; round s was
//! answered by a quorum Q of L's configuration at the time. These overlap
//! in some replica f (L' has L's configuration or a later one in its log;
//! configuration changes revoke the lease, and consecutive configurations
//! share quorum members — `membership.rs`). If f = L, then L granted a vote
//! in T' and stopped leading before t_v, so t_read < t_v. Otherwise f
//! answered round s in term T, so it received it at some real t_r ≥ t_s
//! and promised to refuse votes until C_f = C_f(t_r) + E; it granted L' a
//! (non-transfer) vote at t_v, or is L' and voted for itself when it
//! started campaigning at t_v, so C_f(t_v) ≥ C_f(t_r) + E. (A transfer
//! vote needs a `TimeoutNow`, which only a leader sends after revoking its
//! own lease; a vote granted before t_r would have put f in a term above
//! T, and it would not have answered round s.) Then
//!
//! ```text
//! C_L(t_v) ≥ C_f(t_v) − ε ≥ C_f(t_r) + E − ε ≥ C_f(t_s) + E − ε ≥ C_L(t_s) + E − 2ε
//! ```
//!
//! and L serves only while C_L(t_read) < C_L(t_s) + E − 2ε ≤ C_L(t_v), so
//! t_read < t_v. The read returns the commit index, which covers every
//! write acknowledged before the read began (as for ReadIndex: L committed
//! an entry of its term, and no other leader could acknowledge writes in
//! the meantime).
//!
//! What the caller must uphold: the clock bound, and a clock reading taken
//! *after* a message was received when it is stepped (a reading from
//! before the message arrived would start the follower's promise too
//! early). If the offset bound is violated the lease can serve stale reads;
//! the simulator demonstrates it (`tests/lease.rs` in `teller-sim`).

use std::collections::VecDeque;

use crate::config::LEASE_ROUNDS_MAX;
use crate::types::{Index, ProposeError, Role};

use super::RawNode;

/// Where a read was served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// The lease is valid: the read may be served once the application has
    /// applied `index`; no `ReadState` will follow.
    Lease { index: Index },
    /// Fell back to ReadIndex: a `ReadState` carrying the context follows in
    /// a later `Ready` (or never, if leadership is lost).
    ReadIndex,
}

/// Clock and lease state of one replica.
#[derive(Debug)]
pub(super) struct LeaseState {
    /// Latest clock reading; never goes backwards.
    now: u64,
    clock_set: bool,
    /// Votes for other candidates are refused while `now < guard_until`.
    guard_until: u64,
    /// Leader: heartbeat rounds not yet confirmed by a quorum, as
    /// (round, clock when queued), ascending.
    rounds: VecDeque<(u64, u64)>,
    /// Leader: lease reads are allowed while `now < until`.
    until: u64,
    /// Leader: a transfer was started in this term.
    revoked: bool,
}

impl LeaseState {
    pub(super) fn new() -> LeaseState {
        LeaseState {
            now: 0,
            clock_set: false,
            // Until the first clock reading, refuse every vote.
            guard_until: u64::MAX,
            rounds: VecDeque::new(),
            until: 0,
            revoked: false,
        }
    }

    /// Forgets the leader's lease (role change, configuration change).
    pub(super) fn reset_leader(&mut self) {
        self.rounds.clear();
        self.until = 0;
        self.revoked = false;
    }
}

impl RawNode {
    /// Sets the current time of this replica's clock. With leases enabled,
    /// call it before every input (and after receiving the messages about
    /// to be stepped). Readings that go backwards are ignored.
    pub fn set_clock(&mut self, now: u64) {
        let lease = &mut self.lease;
        lease.now = lease.now.max(now);
        if !lease.clock_set {
            lease.clock_set = true;
            let timeout = self.cfg.lease.map_or(0, |l| l.election_timeout);
            lease.guard_until = lease.now.saturating_add(timeout);
        }
    }

    /// The latest clock reading given to `set_clock`.
    pub fn clock(&self) -> u64 {
        self.lease.now
    }

    /// Leader: the clock time until which lease reads are served, if the
    /// lease is valid now.
    pub fn lease_until(&self) -> Option<u64> {
        self.lease_valid().then_some(self.lease.until)
    }

    /// A linearizable read: served from the lease when it is valid (no
    /// message round), else by ReadIndex. See [`ReadPath`].
    pub fn read(&mut self, ctx: Vec<u8>) -> Result<ReadPath, ProposeError> {
        if self.lease_valid() {
            return Ok(ReadPath::Lease {
                index: self.log.committed,
            });
        }
        self.read_index(ctx)?;
        Ok(ReadPath::ReadIndex)
    }

    fn lease_valid(&self) -> bool {
        if self.cfg.lease.is_none() || self.role != Role::Leader || self.lease.revoked {
            return false;
        }
        if self.log.term(self.log.committed) != Some(self.term) {
            return false;
        }
        let me = self.cfg.id;
        let alone = self.membership.has_quorum(|id| id == me);
        alone || (self.lease.clock_set && self.lease.now < self.lease.until)
    }

    /// Follower: heard from the leader of this term; renew the promise.
    pub(super) fn renew_guard(&mut self) {
        if let Some(l) = self.cfg.lease {
            let until = self.lease.now.saturating_add(l.election_timeout);
            self.lease.guard_until = self.lease.guard_until.max(until);
        }
    }

    /// Must a non-transfer (pre-)vote request be refused now?
    pub(super) fn guarded(&self) -> bool {
        self.cfg.lease.is_some() && self.lease.now < self.lease.guard_until
    }

    /// Leader: a heartbeat round `read_seq` is being broadcast.
    pub(super) fn note_round(&mut self) {
        if self.cfg.lease.is_none() || self.lease.rounds.back().map(|r| r.0) == Some(self.read_seq)
        {
            return;
        }
        if self.lease.rounds.len() == LEASE_ROUNDS_MAX {
            // Dropping the oldest round only delays a confirmation.
            self.lease.rounds.pop_front();
        }
        self.lease.rounds.push_back((self.read_seq, self.lease.now));
    }

    /// Leader: extends the lease from the latest round a quorum answered.
    pub(super) fn confirm_lease(&mut self) {
        let Some(l) = self.cfg.lease else {
            return;
        };
        let me = self.cfg.id;
        let progress = &self.progress;
        let acked = self.membership.committed_index(|id| {
            if id == me {
                u64::MAX
            } else {
                progress.get(&id).map_or(0, |p| p.read_seq_acked)
            }
        });
        let mut start = None;
        while let Some(&(seq, sent)) = self.lease.rounds.front() {
            if seq > acked {
                break;
            }
            start = Some(sent);
            self.lease.rounds.pop_front();
        }
        if let Some(sent) = start {
            let until = sent.saturating_add(l.duration());
            self.lease.until = self.lease.until.max(until);
        }
    }

    /// Leader: no more lease reads in this term (a transfer started).
    pub(super) fn revoke_lease(&mut self) {
        self.lease.revoked = true;
        self.lease.until = 0;
    }

    /// Leader: the configuration changed; earlier rounds do not count.
    pub(super) fn restart_lease(&mut self) {
        self.lease.rounds.clear();
        self.lease.until = 0;
    }
}
