//! The leader's view of one follower: how far it matches, what to send next,
//! and the flow-control window of appends in flight.

use std::collections::VecDeque;

use crate::types::Index;

/// Replication mode of one follower (as etcd/raft).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Unknown match: send one append at a time and wait for the answer.
    Probe,
    /// Steady state: stream appends optimistically up to the inflight window.
    Replicate,
    /// A snapshot at `index` was sent; wait for it to be acknowledged.
    Snapshot { index: Index },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) matched: Index,
    pub(crate) next: Index,
    pub(crate) state: ProgressState,
    /// Probe: an append was sent and not yet answered.
    pub(crate) probe_sent: bool,
    /// Last index of every append in flight, ascending (Replicate only).
    inflight: VecDeque<Index>,
    inflight_max: usize,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// Ticks since the pending snapshot was sent (Snapshot state only).
    pub(crate) snapshot_ticks: u32,
    /// Heartbeat responses in a row during which the match did not advance
    /// although entries were outstanding (Replicate only).
    pub(crate) stalled_heartbeats: u32,
    /// Highest ReadIndex round this follower has acknowledged this term.
    pub(crate) read_seq_acked: u64,
}

impl Progress {
    pub(crate) fn new(next: Index, inflight_max: usize) -> Progress {
        assert!(next > 0 && inflight_max > 0);
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_max,
            recent_active: false,
            snapshot_ticks: 0,
            read_seq_acked: 0,
            stalled_heartbeats: 0,
        }
    }

    fn check(&self) {
        assert!(
            self.matched < self.next,
            "match {} next {}",
            self.matched,
            self.next
        );
        assert!(self.inflight.len() <= self.inflight_max);
        debug_assert!(self
            .inflight
            .iter()
            .zip(self.inflight.iter().skip(1))
            .all(|(a, b)| a < b));
    }

    /// May the leader send an append now?
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= self.inflight_max,
            ProgressState::Snapshot { .. } => true,
        }
    }

    pub(crate) fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    fn reset(&mut self, state: ProgressState) {
        self.state = state;
        self.probe_sent = false;
        self.inflight.clear();
        self.snapshot_ticks = 0;
        self.stalled_heartbeats = 0;
    }

    pub(crate) fn become_probe(&mut self) {
        if let ProgressState::Snapshot { index } = self.state {
            self.reset(ProgressState::Probe);
            self.next = (self.matched + 1).max(index + 1);
        } else {
            self.reset(ProgressState::Probe);
            self.next = self.matched + 1;
        }
        self.check();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.reset(ProgressState::Replicate);
        self.next = self.matched + 1;
        self.check();
    }

    pub(crate) fn become_snapshot(&mut self, index: Index) {
        self.reset(ProgressState::Snapshot { index });
        self.check();
    }

    /// An append ending at `last` (possibly empty: `last == next - 1`) was sent.
    pub(crate) fn sent_append(&mut self, last: Index, count: usize) {
        match self.state {
            ProgressState::Replicate => {
                if count > 0 {
                    assert_eq!(last + 1 - count as u64, self.next);
                    self.next = last + 1;
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => unreachable!("append while snapshotting"),
        }
        self.check();
    }

    /// The follower acknowledged a match up to `index`. Returns false if the
    /// acknowledgement is stale.
    pub(crate) fn on_ack(&mut self, index: Index) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
            self.stalled_heartbeats = 0;
        }
        self.next = self.next.max(index + 1);
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        self.check();
        updated
    }

    /// The follower rejected an append at `rejected`; the leader computed
    /// `probe` as the next prev index to try. Returns false if stale.
    pub(crate) fn on_reject(&mut self, rejected: Index, probe: Index) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe();
                self.next = (probe + 1).clamp(self.matched + 1, rejected.max(self.matched + 1));
            }
            ProgressState::Probe => {
                if rejected + 1 != self.next {
                    return false;
                }
                self.next = (probe + 1).clamp(self.matched + 1, rejected.max(self.matched + 1));
                self.probe_sent = false;
            }
            ProgressState::Snapshot { .. } => return false,
        }
        self.check();
        true
    }
}
