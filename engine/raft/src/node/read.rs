//! ReadIndex (Raft thesis §6.4): linearizable reads confirmed by a quorum
//! heartbeat round. The safety argument is in `docs/raft.md`.

use crate::config::READS_PENDING_MAX;
use crate::types::{Index, ProposeError, ReadState, Role};

use super::RawNode;

/// A ReadIndex request waiting for a quorum of heartbeat acknowledgements.
#[derive(Debug)]
pub(super) struct PendingRead {
    seq: u64,
    index: Index,
    ctx: Vec<u8>,
}

impl RawNode {
    /// Requests a linearizable read point (Raft §6.4 ReadIndex). A
    /// `ReadState` carrying `ctx` appears in a later `Ready` once a quorum
    /// confirmed this leadership; it is silently dropped if leadership is
    /// lost first (the caller times out and retries).
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads_waiting.len() + self.reads_blocked.len() >= READS_PENDING_MAX {
            return Err(ProposeError::Backpressure);
        }
        self.unquiesce();
        if self.log.term(self.log.committed) != Some(self.term) {
            self.reads_blocked.push(ctx);
        } else {
            self.start_read(ctx);
        }
        self.check();
        Ok(())
    }

    pub(super) fn start_read(&mut self, ctx: Vec<u8>) {
        let index = self.log.committed;
        let me = self.cfg.id;
        if self.membership.has_quorum(|id| id == me) {
            self.reads_ready.push(ReadState { index, ctx });
            return;
        }
        self.read_seq += 1;
        self.reads_waiting.push(PendingRead {
            seq: self.read_seq,
            index,
            ctx,
        });
        self.broadcast_heartbeat();
    }

    pub(super) fn release_reads(&mut self) {
        let me = self.cfg.id;
        let mut released = 0;
        for read in &self.reads_waiting {
            let confirmed = self.membership.has_quorum(|id| {
                id == me
                    || self
                        .progress
                        .get(&id)
                        .is_some_and(|p| p.read_seq_acked >= read.seq)
            });
            if !confirmed {
                break;
            }
            released += 1;
        }
        for read in self.reads_waiting.drain(..released) {
            self.reads_ready.push(ReadState {
                index: read.index,
                ctx: read.ctx,
            });
        }
    }
}
