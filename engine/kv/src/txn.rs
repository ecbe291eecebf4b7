//! Transaction identity and the transaction record.
//!
//! Every transaction that writes or locks has a **record** in the range of
//! its anchor key (its first write or lock), at [`crate::keys::txn_key`]. The
//! record, not the coordinator's memory, decides the transaction's fate: a
//! reader or writer that meets an intent reads or pushes the record, so a
//! coordinator that dies leaves nothing stuck — once its heartbeat expires,
//! whoever meets its intents aborts it through the record.
//!
//! # State machine
//! ```text
//!   (none) ──create/heartbeat──▶ PENDING ──commit──▶ COMMITTED
//!     │                            │  ▲
//!     │                            │  └── push timestamp (write_ts raised)
//!     └──push, hint expired──▶ ABORTED ◀──abort, or push after expiry
//! ```
//! COMMITTED and ABORTED are final: no transition leaves them. A record that
//! does not exist is treated as PENDING with the heartbeat of the intent's
//! hint; a pusher that finds it expired writes an ABORTED record, which makes
//! a late creation by the coordinator fail.
//!
//! `write_ts` only grows. The commit timestamp is the record's `write_ts`
//! when it commits, so a push is never lost: the coordinator must commit at
//! or above every push it was subjected to.

use std::fmt;

use bytes::Bytes;

use crate::codec::{CodecError, Reader, Writer};
use crate::hlc::Timestamp;
use crate::keys::Span;

/// A transaction's identity: 128 random bits from the host.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TxnId(pub u128);

impl fmt::Debug for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", (self.0 >> 96) as u32)
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What every intent and lock carries about its transaction: enough to find
/// the record and to decide visibility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMeta {
    pub id: TxnId,
    /// The key whose range holds the transaction record.
    pub anchor: Bytes,
    /// The provisional commit timestamp when this was written; an intent's
    /// own timestamp.
    pub write_ts: Timestamp,
    /// The timestamp the transaction started at.
    pub min_ts: Timestamp,
    /// The coordinator's clock when it sent the request that wrote this: a
    /// liveness hint for pushers that find no record yet.
    pub heartbeat_hint: Timestamp,
}

impl TxnMeta {
    pub fn encode(&self, w: &mut Writer) {
        w.u128(self.id.0);
        w.bytes(&self.anchor);
        w.ts(self.write_ts);
        w.ts(self.min_ts);
        w.ts(self.heartbeat_hint);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<TxnMeta, CodecError> {
        Ok(TxnMeta {
            id: TxnId(r.u128()?),
            anchor: r.bytes()?,
            write_ts: r.ts()?,
            min_ts: r.ts()?,
            heartbeat_hint: r.ts()?,
        })
    }
}

/// Inclusive ranges of request sequence numbers whose writes were rolled
/// back (a failed batch is a savepoint rolled back): sorted, disjoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoredSeqs(pub Vec<(u32, u32)>);

impl IgnoredSeqs {
    pub fn contains(&self, seq: u32) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= seq && seq <= hi)
    }

    /// Adds `[lo, hi]`, keeping the list sorted and merged.
    pub fn add(&mut self, lo: u32, hi: u32) {
        assert!(lo <= hi, "ignored seq range [{lo}, {hi}] reversed");
        self.0.push((lo, hi));
        self.0.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.0.len());
        for &(lo, hi) in &self.0 {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.0 = merged;
    }

    pub fn encode(&self, w: &mut Writer) {
        w.seq(&self.0, |w, &(lo, hi)| {
            w.u32(lo);
            w.u32(hi);
        });
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<IgnoredSeqs, CodecError> {
        Ok(IgnoredSeqs(r.seq(|r| Ok((r.u32()?, r.u32()?)))?))
    }
}

/// The state of a transaction record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    Pending,
    Committed,
    Aborted,
}

impl TxnStatus {
    pub fn is_final(self) -> bool {
        self != TxnStatus::Pending
    }
}

const TXN_RECORD_FORMAT: u8 = 1;

/// A transaction record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    /// `meta.write_ts` is the commit timestamp once COMMITTED.
    pub meta: TxnMeta,
    pub status: TxnStatus,
    /// The coordinator's clock at its latest heartbeat.
    pub last_heartbeat: Timestamp,
    /// Final records only: spans that may still hold this transaction's
    /// intents outside the record's range, for whoever resolves them.
    pub lock_spans: Vec<Span>,
    /// Final records only: sequence numbers whose writes were rolled back.
    pub ignored: IgnoredSeqs,
}

impl TxnRecord {
    /// A fresh PENDING record.
    pub fn pending(meta: TxnMeta, heartbeat: Timestamp) -> TxnRecord {
        TxnRecord {
            meta,
            status: TxnStatus::Pending,
            last_heartbeat: heartbeat,
            lock_spans: Vec::new(),
            ignored: IgnoredSeqs::default(),
        }
    }

    /// Whether the coordinator has not heartbeated for more than
    /// `expiry_nanos` at `now`. Final records never expire.
    pub fn is_expired(&self, now: Timestamp, expiry_nanos: u64) -> bool {
        self.status == TxnStatus::Pending
            && heartbeat_expired(
                self.last_heartbeat.max(self.meta.heartbeat_hint),
                now,
                expiry_nanos,
            )
    }

    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(TXN_RECORD_FORMAT);
        self.meta.encode(&mut w);
        w.u8(match self.status {
            TxnStatus::Pending => 0,
            TxnStatus::Committed => 1,
            TxnStatus::Aborted => 2,
        });
        w.ts(self.last_heartbeat);
        w.seq(&self.lock_spans, |w, s| w.span(s));
        self.ignored.encode(&mut w);
        Bytes::from(w.finish())
    }

    pub fn decode(bytes: &Bytes) -> Result<TxnRecord, CodecError> {
        let mut r = Reader::new(bytes, "transaction record");
        r.version(TXN_RECORD_FORMAT)?;
        let meta = TxnMeta::decode(&mut r)?;
        let status = match r.u8()? {
            0 => TxnStatus::Pending,
            1 => TxnStatus::Committed,
            2 => TxnStatus::Aborted,
            tag => return Err(r.invalid(&format!("unknown status {tag}"))),
        };
        let last_heartbeat = r.ts()?;
        let lock_spans = r.seq(|r| r.span())?;
        let ignored = IgnoredSeqs::decode(&mut r)?;
        r.finish()?;
        Ok(TxnRecord {
            meta,
            status,
            last_heartbeat,
            lock_spans,
            ignored,
        })
    }
}

/// Whether a heartbeat at `last` is older than `expiry_nanos` at `now`.
pub fn heartbeat_expired(last: Timestamp, now: Timestamp, expiry_nanos: u64) -> bool {
    now.wall_nanos > last.wall_nanos.saturating_add(expiry_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TxnMeta {
        TxnMeta {
            id: TxnId(42),
            anchor: Bytes::from_static(b"anchor"),
            write_ts: Timestamp::new(10, 1),
            min_ts: Timestamp::new(9, 0),
            heartbeat_hint: Timestamp::new(9, 5),
        }
    }

    #[test]
    fn record_round_trips() {
        let mut rec = TxnRecord::pending(meta(), Timestamp::new(11, 0));
        rec.status = TxnStatus::Committed;
        rec.lock_spans = vec![Span::point(b"x"), Span::from_key(&b"y"[..])];
        rec.ignored.add(3, 4);
        assert_eq!(TxnRecord::decode(&rec.encode()).unwrap(), rec);
        let mut bad = rec.encode().to_vec();
        bad.push(0);
        assert!(TxnRecord::decode(&Bytes::from(bad)).is_err());
    }

    #[test]
    fn expiry_uses_latest_of_heartbeat_and_hint() {
        let rec = TxnRecord::pending(meta(), Timestamp::new(100, 0));
        assert!(!rec.is_expired(Timestamp::new(150, 0), 50));
        assert!(rec.is_expired(Timestamp::new(151, 0), 50));
        let mut done = rec.clone();
        done.status = TxnStatus::Aborted;
        assert!(!done.is_expired(Timestamp::new(1_000, 0), 50));
    }

    #[test]
    fn ignored_seqs_merge() {
        let mut ig = IgnoredSeqs::default();
        ig.add(5, 6);
        ig.add(1, 2);
        ig.add(3, 4);
        assert_eq!(ig.0, vec![(1, 6)]);
        ig.add(10, 10);
        assert!(ig.contains(10) && ig.contains(1) && !ig.contains(7));
    }
}
