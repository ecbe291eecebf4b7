//! Lock records: write intents and row locks, one unversioned record per
//! locked key at [`crate::keys::lock_key`].
//!
//! - An **exclusive** record has one holder. With a non-empty `history` it
//!   is a write intent: the provisional values the holder wrote, oldest
//!   first, each tagged with the request sequence number that wrote it, at
//!   the timestamp `holder.write_ts`. With an empty history it is a
//!   `FOR UPDATE` lock.
//! - A **shared** record (`FOR SHARE`) has one or more holders and no value.
//!
//! The history exists for batch atomicity within a transaction: a batch that
//! fails is a rolled-back savepoint, its sequence numbers are ignored, and
//! the visible provisional value is the newest entry not ignored. Resolution
//! at commit writes that value (or nothing, if every entry was rolled back).
//!
//! Invariants: holders of a shared record are distinct; an exclusive record's
//! history is in increasing sequence order with distinct sequence numbers;
//! history length is at most [`INTENT_HISTORY_MAX`] (older entries that can
//! no longer be reached by a rollback are dropped: see [`LockRecord::write`]).

use bytes::Bytes;

use crate::codec::{CodecError, Reader, Writer};
use crate::txn::{IgnoredSeqs, TxnId, TxnMeta};

/// Most provisional values one intent keeps. Past it the oldest are dropped,
/// which only matters if many batches of one transaction rewrite one key and
/// then that many batches fail in a row.
pub const INTENT_HISTORY_MAX: usize = 64;

/// Lock strengths a request can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strength {
    /// `FOR SHARE`: excludes writers and exclusive lockers, not other sharers.
    Shared,
    /// `FOR UPDATE`, and every write.
    Exclusive,
}

/// One provisional value of an intent (`None`: a delete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentValue {
    pub seq: u32,
    pub value: Option<Bytes>,
}

/// The lock record of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockRecord {
    Exclusive {
        holder: TxnMeta,
        history: Vec<IntentValue>,
    },
    Shared {
        holders: Vec<TxnMeta>,
    },
}

const LOCK_RECORD_FORMAT: u8 = 1;

impl LockRecord {
    /// Whether `id` holds this lock (in any strength).
    pub fn held_by(&self, id: TxnId) -> bool {
        match self {
            LockRecord::Exclusive { holder, .. } => holder.id == id,
            LockRecord::Shared { holders } => holders.iter().any(|h| h.id == id),
        }
    }

    /// The write intent's holder, if this is an intent (not a bare lock).
    pub fn intent_holder(&self) -> Option<&TxnMeta> {
        match self {
            LockRecord::Exclusive { holder, history } if !history.is_empty() => Some(holder),
            _ => None,
        }
    }

    /// A holder other than `me` that conflicts with an acquisition of
    /// `strength` by `me`.
    pub fn conflicting_holder(&self, me: TxnId, strength: Strength) -> Option<&TxnMeta> {
        match self {
            LockRecord::Exclusive { holder, .. } => (holder.id != me).then_some(holder),
            LockRecord::Shared { holders } => match strength {
                Strength::Shared => None,
                Strength::Exclusive => holders.iter().find(|h| h.id != me),
            },
        }
    }

    /// The provisional value the holder sees: the newest entry not rolled
    /// back. `None`: no such entry (the committed value shows through);
    /// `Some(None)`: the holder deleted the key.
    pub fn visible_value(&self, ignored: &IgnoredSeqs) -> Option<Option<Bytes>> {
        match self {
            LockRecord::Exclusive { history, .. } => history
                .iter()
                .rev()
                .find(|v| !ignored.contains(v.seq))
                .map(|v| v.value.clone()),
            LockRecord::Shared { .. } => None,
        }
    }

    /// `me`'s record after writing `value` at `seq` on top of `existing`
    /// (which `me` must hold alone, or not exist). A rewrite at the same
    /// sequence number (a retried request) replaces the entry.
    pub fn write(
        existing: Option<LockRecord>,
        me: &TxnMeta,
        seq: u32,
        value: Option<Bytes>,
    ) -> LockRecord {
        let mut history = match existing {
            Some(LockRecord::Exclusive { holder, history }) => {
                assert_eq!(holder.id, me.id, "intent written over another holder");
                history
            }
            Some(LockRecord::Shared { holders }) => {
                assert!(
                    holders.iter().all(|h| h.id == me.id),
                    "intent over other sharers"
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        history.retain(|v| v.seq < seq);
        history.push(IntentValue { seq, value });
        if history.len() > INTENT_HISTORY_MAX {
            history.drain(..history.len() - INTENT_HISTORY_MAX);
        }
        LockRecord::Exclusive {
            holder: me.clone(),
            history,
        }
    }

    /// `me`'s record after acquiring `strength` on top of `existing` (with
    /// no conflicting holder), `None` if nothing changes.
    pub fn acquire(
        existing: Option<&LockRecord>,
        me: &TxnMeta,
        strength: Strength,
    ) -> Option<LockRecord> {
        match (existing, strength) {
            (None, Strength::Exclusive) => Some(LockRecord::Exclusive {
                holder: me.clone(),
                history: Vec::new(),
            }),
            (None, Strength::Shared) => Some(LockRecord::Shared {
                holders: vec![me.clone()],
            }),
            (Some(LockRecord::Exclusive { holder, .. }), _) => {
                assert_eq!(holder.id, me.id, "lock acquired over another holder");
                None
            }
            (Some(LockRecord::Shared { holders }), Strength::Shared) => {
                if holders.iter().any(|h| h.id == me.id) {
                    None
                } else {
                    let mut holders = holders.clone();
                    holders.push(me.clone());
                    Some(LockRecord::Shared { holders })
                }
            }
            (Some(LockRecord::Shared { holders }), Strength::Exclusive) => {
                assert!(
                    holders.iter().all(|h| h.id == me.id),
                    "upgrade over other sharers"
                );
                Some(LockRecord::Exclusive {
                    holder: me.clone(),
                    history: Vec::new(),
                })
            }
        }
    }

    /// The record without holder `id` (`None`: no holder left).
    pub fn without(self, id: TxnId) -> Option<LockRecord> {
        match self {
            LockRecord::Exclusive { holder, .. } if holder.id == id => None,
            LockRecord::Shared { mut holders } => {
                holders.retain(|h| h.id != id);
                (!holders.is_empty()).then_some(LockRecord::Shared { holders })
            }
            other => Some(other),
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(LOCK_RECORD_FORMAT);
        match self {
            LockRecord::Exclusive { holder, history } => {
                w.u8(0);
                holder.encode(&mut w);
                w.seq(history, |w, v| {
                    w.u32(v.seq);
                    w.opt_bytes(v.value.as_deref());
                });
            }
            LockRecord::Shared { holders } => {
                w.u8(1);
                w.seq(holders, |w, h| h.encode(w));
            }
        }
        Bytes::from(w.finish())
    }

    pub fn decode(bytes: &Bytes) -> Result<LockRecord, CodecError> {
        let mut r = Reader::new(bytes, "lock record");
        r.version(LOCK_RECORD_FORMAT)?;
        let record = match r.u8()? {
            0 => {
                let holder = TxnMeta::decode(&mut r)?;
                let history = r.seq(|r| {
                    Ok(IntentValue {
                        seq: r.u32()?,
                        value: r.opt_bytes()?,
                    })
                })?;
                if !history.windows(2).all(|w| w[0].seq < w[1].seq) {
                    return Err(r.invalid("intent history out of order"));
                }
                LockRecord::Exclusive { holder, history }
            }
            1 => {
                let holders = r.seq(TxnMeta::decode)?;
                if holders.is_empty() {
                    return Err(r.invalid("shared lock without holders"));
                }
                LockRecord::Shared { holders }
            }
            tag => return Err(r.invalid(&format!("unknown lock kind {tag}"))),
        };
        r.finish()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Timestamp;

    fn meta(id: u128) -> TxnMeta {
        TxnMeta {
            id: TxnId(id),
            anchor: Bytes::from_static(b"a"),
            write_ts: Timestamp::new(5, 0),
            min_ts: Timestamp::new(4, 0),
            heartbeat_hint: Timestamp::new(4, 0),
        }
    }

    fn v(s: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn history_respects_ignored_seqs() {
        let rec = LockRecord::write(None, &meta(1), 1, v("one"));
        let rec = LockRecord::write(Some(rec), &meta(1), 3, None);
        let rec = LockRecord::write(Some(rec), &meta(1), 5, v("five"));
        assert_eq!(rec.visible_value(&IgnoredSeqs::default()), Some(v("five")));
        assert_eq!(rec.visible_value(&IgnoredSeqs(vec![(4, 5)])), Some(None));
        assert_eq!(rec.visible_value(&IgnoredSeqs(vec![(1, 9)])), None);
        // A retried request replaces its entry and everything after it.
        let rec = LockRecord::write(Some(rec), &meta(1), 3, v("three"));
        assert_eq!(rec.visible_value(&IgnoredSeqs::default()), Some(v("three")));
        assert_eq!(LockRecord::decode(&rec.encode()).unwrap(), rec);
    }

    #[test]
    fn conflicts_by_strength() {
        let shared = LockRecord::acquire(None, &meta(1), Strength::Shared).unwrap();
        let shared = LockRecord::acquire(Some(&shared), &meta(2), Strength::Shared).unwrap();
        assert!(shared
            .conflicting_holder(TxnId(3), Strength::Shared)
            .is_none());
        assert_eq!(
            shared
                .conflicting_holder(TxnId(1), Strength::Exclusive)
                .unwrap()
                .id,
            TxnId(2)
        );
        assert_eq!(LockRecord::decode(&shared.encode()).unwrap(), shared);
        let one = shared.without(TxnId(2)).unwrap();
        assert!(one
            .conflicting_holder(TxnId(1), Strength::Exclusive)
            .is_none());
        let upgraded = LockRecord::acquire(Some(&one), &meta(1), Strength::Exclusive).unwrap();
        assert!(upgraded.intent_holder().is_none());
        assert_eq!(
            upgraded
                .conflicting_holder(TxnId(2), Strength::Shared)
                .unwrap()
                .id,
            TxnId(1)
        );
        assert!(upgraded.without(TxnId(1)).is_none());
    }

    #[test]
    fn history_is_bounded() {
        let mut rec = None;
        for seq in 0..(INTENT_HISTORY_MAX as u32 + 10) {
            rec = Some(LockRecord::write(rec, &meta(1), seq, None));
        }
        match rec.unwrap() {
            LockRecord::Exclusive { history, .. } => assert_eq!(history.len(), INTENT_HISTORY_MAX),
            other => panic!("{other:?}"),
        }
    }
}
