//! Transport batches: everything one shard sends one peer in one pass.
//!
//! Heartbeats and their responses, the bulk of idle traffic, are coalesced:
//! each travels as a compact [`Beat`] or [`BeatResponse`] inside the one
//! batch per node pair, not as a message of its own. An empty batch is the
//! node-level liveness beat a host sends a peer it has nothing else for.

use crate::types::{Index, Message, MessageKind, NodeId, Term};

/// Identifier of a range, i.e. of its Raft group (`Message::group`).
pub type RangeId = u64;

/// Most beats plus messages in one batch; a larger pass is split into
/// several batches to the same peer.
pub const BATCH_ITEMS_MAX: usize = 4096;

/// A coalesced heartbeat of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    pub range: RangeId,
    pub term: Term,
    pub commit: Index,
    pub read_seq: u64,
    pub quiesce: bool,
}

/// A coalesced heartbeat response of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeatResponse {
    pub range: RangeId,
    pub term: Term,
    pub read_seq: u64,
}

/// All traffic from shard `from` to shard `to` of one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub from: NodeId,
    pub to: NodeId,
    pub beats: Vec<Beat>,
    pub beat_responses: Vec<BeatResponse>,
    /// Every other message (appends, votes, snapshots, ...).
    pub messages: Vec<Message>,
}

impl Batch {
    pub fn new(from: NodeId, to: NodeId) -> Batch {
        Batch {
            from,
            to,
            ..Batch::default()
        }
    }

    /// Beats, beat responses and messages carried.
    pub fn len(&self) -> usize {
        self.beats.len() + self.beat_responses.len() + self.messages.len()
    }

    /// A liveness beat only.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one outgoing message, coalescing heartbeats.
    pub(crate) fn push(&mut self, m: Message) {
        debug_assert_eq!((m.from, m.to), (self.from, self.to));
        match m.kind {
            MessageKind::Heartbeat {
                commit,
                read_seq,
                quiesce,
            } => self.beats.push(Beat {
                range: m.group,
                term: m.term,
                commit,
                read_seq,
                quiesce,
            }),
            MessageKind::HeartbeatResponse { read_seq } => self.beat_responses.push(BeatResponse {
                range: m.group,
                term: m.term,
                read_seq,
            }),
            _ => self.messages.push(m),
        }
    }

    /// The individual messages again, in order: beats, responses, others.
    pub fn into_messages(self) -> impl Iterator<Item = Message> {
        let (from, to) = (self.from, self.to);
        let beats = self.beats.into_iter().map(move |b| Message {
            group: b.range,
            from,
            to,
            term: b.term,
            kind: MessageKind::Heartbeat {
                commit: b.commit,
                read_seq: b.read_seq,
                quiesce: b.quiesce,
            },
        });
        let responses = self.beat_responses.into_iter().map(move |r| Message {
            group: r.range,
            from,
            to,
            term: r.term,
            kind: MessageKind::HeartbeatResponse {
                read_seq: r.read_seq,
            },
        });
        beats.chain(responses).chain(self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_coalesced_and_restored() {
        let hb = |group| Message {
            group,
            from: 1,
            to: 2,
            term: 3,
            kind: MessageKind::Heartbeat {
                commit: 7,
                read_seq: 1,
                quiesce: group == 9,
            },
        };
        let vote = Message {
            group: 4,
            from: 1,
            to: 2,
            term: 3,
            kind: MessageKind::TimeoutNow,
        };
        let mut b = Batch::new(1, 2);
        for m in [hb(8), vote.clone(), hb(9)] {
            b.push(m);
        }
        assert_eq!((b.beats.len(), b.messages.len()), (2, 1));
        let back: Vec<Message> = b.into_messages().collect();
        assert_eq!(back, vec![hb(8), hb(9), vote]);
    }
}
