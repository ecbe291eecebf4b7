//! Log replication (Raft §5.3): the follower side of appends and the
//! leader side of flow control, conflict backtracking, snapshots and commit.

use crate::progress::ProgressState;
use crate::types::{Entry, Index, MessageKind, NodeId, Role, Term};

use super::RawNode;

/// Heartbeat rounds without replication progress before the leader assumes
/// an append was lost and re-probes the follower.
pub(super) const STALLED_HEARTBEATS_MAX: u32 = 2;

impl RawNode {
    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: &[Entry],
        commit: Index,
    ) {
        let reply = |index, reject, hint_index, hint_term| MessageKind::AppendResponse {
            reject,
            index,
            hint_index,
            hint_term,
        };
        if prev_index < self.log.offset() {
            let committed = self.log.committed;
            self.send(from, reply(committed, false, 0, 0));
            return;
        }
        match self.log.try_append(prev_index, prev_term, entries) {
            Some(last_new) => {
                self.log.commit_to(commit.min(last_new));
                self.send(from, reply(last_new, false, 0, 0));
            }
            None => {
                let probe_from = prev_index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(probe_from, prev_term);
                self.send(from, reply(prev_index, true, hint_index, hint_term));
            }
        }
    }

    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for to in peers {
            if self.send_append(to, true) {
                self.send_pipeline(to);
            }
        }
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        self.note_round();
        let peers: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(&id, p)| (id, p.matched))
            .collect();
        for (to, matched) in peers {
            let commit = self.log.committed.min(matched);
            self.send(
                to,
                MessageKind::Heartbeat {
                    commit,
                    read_seq: self.read_seq,
                    quiesce: false,
                },
            );
        }
    }

    /// Sends the next append (or a snapshot) to `to` if flow control allows.
    /// With `allow_empty`, sends even without new entries (to carry the
    /// commit index or probe). Returns true if something was sent.
    pub(super) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let pr = &self.progress[&to];
        if pr.is_paused() {
            return false;
        }
        let (next, matched, state) = (pr.next, pr.matched, pr.state);
        let Some(prev_term) = self.log.term(next - 1) else {
            self.send_snapshot(to);
            return true;
        };
        let last = self.log.last_index();
        let entries = if next <= last {
            self.log
                .entries_from(next, self.cfg.append_entries_max, self.cfg.append_bytes_max)
        } else {
            Vec::new()
        };
        let commit = self.log.committed;
        if entries.is_empty() {
            if !allow_empty {
                return false;
            }
            // In Replicate, next - 1 may still be in flight: anchor an empty
            // append at the acknowledged match so it cannot be rejected.
            let prev = if state == ProgressState::Replicate {
                matched
            } else {
                next - 1
            };
            let Some(prev_term) = self.log.term(prev) else {
                return false;
            };
            self.send(
                to,
                MessageKind::Append {
                    prev_index: prev,
                    prev_term,
                    entries,
                    commit,
                },
            );
            self.progress
                .get_mut(&to)
                .expect("peer")
                .sent_append(next - 1, 0);
            return true;
        }
        let count = entries.len();
        let last_sent = entries[count - 1].index;
        self.send(
            to,
            MessageKind::Append {
                prev_index: next - 1,
                prev_term,
                entries,
                commit,
            },
        );
        self.progress
            .get_mut(&to)
            .expect("peer")
            .sent_append(last_sent, count);
        true
    }

    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self.log.snapshot().clone();
        assert!(snapshot.meta.index > 0, "no snapshot to send");
        self.progress
            .get_mut(&to)
            .expect("peer")
            .become_snapshot(snapshot.meta.index);
        self.send(to, MessageKind::InstallSnapshot { snapshot });
    }

    /// Sends as many appends as the window allows.
    pub(super) fn send_pipeline(&mut self, to: NodeId) {
        while self.send_append(to, false) {
            if self.progress[&to].state != ProgressState::Replicate {
                break;
            }
        }
    }

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        reject: bool,
        index: Index,
        hint_index: Index,
        hint_term: Term,
    ) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return; // not (or no longer) a member
        };
        pr.recent_active = true;
        if reject {
            let probe = if hint_term > 0 {
                self.log.find_conflict_by_term(hint_index, hint_term).0
            } else {
                hint_index
            };
            if self
                .progress
                .get_mut(&from)
                .expect("peer")
                .on_reject(index, probe)
            {
                self.send_append(from, true);
            }
            return;
        }
        let pr = self.progress.get_mut(&from).expect("peer");
        let advanced = pr.on_ack(index);
        match pr.state {
            ProgressState::Probe if pr.matched + 1 >= pr.next || advanced => pr.become_replicate(),
            ProgressState::Snapshot { index: snap } if pr.matched >= snap => pr.become_replicate(),
            _ => {}
        }
        if advanced {
            if self.maybe_commit() {
                self.broadcast_pending = true;
            }
            if self.transfer.map(|(t, _)| t) == Some(from)
                && self.progress[&from].matched == self.log.last_index()
            {
                self.send(from, MessageKind::TimeoutNow);
            }
        }
        self.send_pipeline(from);
    }

    pub(super) fn on_heartbeat_response(&mut self, from: NodeId, read_seq: u64) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return; // not (or no longer) a member
        };
        pr.recent_active = true;
        pr.read_seq_acked = pr.read_seq_acked.max(read_seq);
        match pr.state {
            // A probe or its answer may have been lost: allow another.
            ProgressState::Probe => pr.probe_sent = false,
            // No progress for a few heartbeat rounds although entries are
            // outstanding: an append or its ack was lost. Restart from the
            // match point.
            ProgressState::Replicate if pr.matched < last => {
                pr.stalled_heartbeats += 1;
                if pr.stalled_heartbeats >= STALLED_HEARTBEATS_MAX {
                    pr.become_probe();
                }
            }
            _ => {}
        }
        if self.progress[&from].matched < last {
            self.send_append(from, true);
        }
        self.confirm_lease();
        self.release_reads();
    }

    /// Advances the commit index to the highest index stored on a quorum,
    /// if that entry is from the current term (Raft §5.4.2).
    pub(super) fn maybe_commit(&mut self) -> bool {
        assert_eq!(self.role, Role::Leader);
        let (me, persisted) = (self.cfg.id, self.log.persisted);
        let progress = &self.progress;
        // While a configuration entry is in the log but not yet adopted by
        // `sync_membership` (within one input), `self.membership` is the
        // older, joint-or-stricter configuration: counting with it is safe.
        let index = self.membership.committed_index(|id| {
            if id == me {
                persisted
            } else {
                progress.get(&id).map_or(0, |p| p.matched)
            }
        });
        if index <= self.log.committed || self.log.term(index) != Some(self.term) {
            return false;
        }
        let was_current = self.log.term(self.log.committed) == Some(self.term);
        let freed: usize = self
            .log
            .entries_from(
                self.log.committed + 1,
                (index - self.log.committed) as usize,
                usize::MAX,
            )
            .iter()
            .map(|e| e.data.len())
            .sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(freed);
        self.log.commit_to(index);
        if !was_current {
            for ctx in std::mem::take(&mut self.reads_blocked) {
                self.start_read(ctx);
            }
        }
        self.maybe_leave_joint();
        true
    }
}
