//! A range replica: the descriptor of a range and the in-memory state that
//! serves it on its shard — latches, timestamp cache, lock table, waits-for
//! edges (deadlock detection) — plus the apply step of evaluated batches.
//!
//! Evaluate-then-apply: [`crate::eval`] turns a batch into responses and a
//! [`WriteBatch`]; the range's log ([`crate::replication`]) applies that
//! batch to the engine, then [`Replica::on_applied`] updates the in-memory
//! state from it. The write batch is exactly what a Raft log entry carries:
//! `on_applied` derives everything it needs (lock-table wake-ups, record
//! cleanup, range size) from the mutations alone, so a follower applying the
//! same entry reaches the same state.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use bytes::Bytes;

use crate::codec::{Reader, Writer};
use crate::engine::{Mutation, WriteBatch};
use crate::error::KvError;
use crate::hlc::Timestamp;
use crate::keys::{self, Span, NS_DATA, NS_LOCK, NS_TXN};
use crate::latch::{LatchSpan, Latches};
use crate::lock::LockRecord;
use crate::locktable::LockTable;
use crate::tscache::TsCache;
use crate::txn::{TxnId, TxnMeta, TxnRecord};

/// A range: its id and span of user keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeDesc {
    pub id: u64,
    pub span: Span,
}

const RANGE_DESC_FORMAT: u8 = 1;

impl RangeDesc {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(RANGE_DESC_FORMAT);
        w.u64(self.id);
        w.span(&self.span);
        Bytes::from(w.finish())
    }

    pub fn decode(bytes: &Bytes) -> Result<RangeDesc, KvError> {
        let mut r = Reader::new(bytes, "range descriptor");
        r.version(RANGE_DESC_FORMAT)?;
        let desc = RangeDesc {
            id: r.u64()?,
            span: r.span()?,
        };
        r.finish()?;
        Ok(desc)
    }
}

/// The serving state of one range on its shard.
#[derive(Debug)]
pub struct Replica {
    desc: RefCell<RangeDesc>,
    pub(crate) latches: Latches,
    pub(crate) tscache: RefCell<TsCache>,
    pub(crate) locks: LockTable,
    /// What transactions anchored here wait for (deadlock detection).
    pub(crate) waits_for: RefCell<HashMap<TxnId, TxnMeta>>,
    gc_threshold: Cell<Timestamp>,
    approx_bytes: Cell<u64>,
}

impl Replica {
    /// A replica of `desc` whose timestamp cache answers at least
    /// `low_water`.
    pub fn new(desc: RangeDesc, low_water: Timestamp, gc_threshold: Timestamp) -> Replica {
        Replica {
            desc: RefCell::new(desc),
            latches: Latches::new(),
            tscache: RefCell::new(TsCache::new(low_water)),
            locks: LockTable::new(),
            waits_for: RefCell::new(HashMap::new()),
            gc_threshold: Cell::new(gc_threshold),
            approx_bytes: Cell::new(0),
        }
    }

    pub fn desc(&self) -> RangeDesc {
        self.desc.borrow().clone()
    }

    pub fn id(&self) -> u64 {
        self.desc.borrow().id
    }

    pub fn span(&self) -> Span {
        self.desc.borrow().span.clone()
    }

    pub fn gc_threshold(&self) -> Timestamp {
        self.gc_threshold.get()
    }

    pub(crate) fn set_gc_threshold(&self, ts: Timestamp) {
        self.gc_threshold.set(self.gc_threshold.get().max(ts));
    }

    pub fn approx_bytes(&self) -> u64 {
        self.approx_bytes.get()
    }

    pub(crate) fn set_approx_bytes(&self, bytes: u64) {
        self.approx_bytes.set(bytes);
    }

    pub(crate) fn set_span(&self, span: Span) {
        self.desc.borrow_mut().span = span;
    }

    /// Updates the in-memory state from a batch the engine has applied.
    pub fn on_applied(&self, batch: &WriteBatch) {
        let mut added = 0u64;
        for m in &batch.mutations {
            added += m.size() as u64;
            match m.key().first() {
                Some(&NS_LOCK) => self.on_lock_mutation(m),
                Some(&NS_TXN) => self.on_txn_mutation(m),
                _ => {}
            }
        }
        self.approx_bytes
            .set(self.approx_bytes.get().saturating_add(added));
    }

    fn on_lock_mutation(&self, m: &Mutation) {
        let key = keys::user_key(NS_LOCK, m.key());
        match m {
            Mutation::Put { value, .. } => match LockRecord::decode(value) {
                Ok(record) => self.locks.on_lock_change(&key, Some(&record)),
                // Evaluation encoded it; a failure here is a bug.
                Err(e) => panic!("applied lock record does not decode: {e}"),
            },
            Mutation::Delete { .. } | Mutation::Clear { .. } => {
                self.locks.on_lock_change(&key, None)
            }
        }
    }

    fn on_txn_mutation(&self, m: &Mutation) {
        let Some(id) = keys::txn_id_of_key(m.key()) else {
            return;
        };
        let finished = match m {
            Mutation::Put { value, .. } => {
                TxnRecord::decode(value).is_ok_and(|r| r.status.is_final())
            }
            Mutation::Delete { .. } | Mutation::Clear { .. } => true,
        };
        if finished {
            self.waits_for.borrow_mut().remove(&TxnId(id));
        }
    }
}

/// Latch spans for reading or writing the user span `span`: its versions
/// and its lock records.
pub(crate) fn latch_user_span(span: &Span, write: bool) -> [LatchSpan; 2] {
    let (ds, de) = keys::engine_span(NS_DATA, span);
    let (ls, le) = keys::engine_span(NS_LOCK, span);
    [
        LatchSpan {
            start: ds,
            end: de,
            write,
        },
        LatchSpan {
            start: ls,
            end: le,
            write,
        },
    ]
}

/// The write latch of one transaction record.
pub(crate) fn latch_txn_record(anchor: &[u8], id: TxnId) -> LatchSpan {
    let key = keys::txn_key(anchor, id.0);
    LatchSpan {
        end: keys::key_successor(&key),
        start: key,
        write: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trips() {
        let d = RangeDesc {
            id: 7,
            span: Span::new(&b"a"[..], &b"m"[..]),
        };
        assert_eq!(RangeDesc::decode(&d.encode()).unwrap(), d);
    }
}
