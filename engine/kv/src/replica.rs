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
//!
//! **Generations.** A range's descriptor is stored with a generation that
//! every change of the range raises: both halves of a split get the parent's
//! generation plus one, and a range moved to another shard is re-created
//! there (under a fresh id) one generation above the source. Ranges only
//! split and move, never merge, so of two descriptors that claim the same
//! key the newer one always has the higher generation: that is how routing
//! tables merge what they hear, and how a restart after a crash in the
//! middle of a move picks the one owner of a span.

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

/// The first descriptor format, without a generation (read as generation 0).
const RANGE_DESC_FORMAT_V1: u8 = 1;
/// The current format: id, span, generation.
const RANGE_DESC_FORMAT: u8 = 2;

impl RangeDesc {
    /// The stored form of the descriptor at `generation`.
    pub fn encode(&self, generation: u64) -> Bytes {
        let mut w = Writer::new();
        w.u8(RANGE_DESC_FORMAT);
        w.u64(self.id);
        w.span(&self.span);
        w.u64(generation);
        Bytes::from(w.finish())
    }

    /// A stored descriptor and its generation.
    pub fn decode(bytes: &Bytes) -> Result<(RangeDesc, u64), KvError> {
        let mut r = Reader::new(bytes, "range descriptor");
        let format = r.u8()?;
        if format != RANGE_DESC_FORMAT && format != RANGE_DESC_FORMAT_V1 {
            return Err(r
                .invalid(&format!("unknown format version {format}"))
                .into());
        }
        let desc = RangeDesc {
            id: r.u64()?,
            span: r.span()?,
        };
        let generation = if format == RANGE_DESC_FORMAT {
            r.u64()?
        } else {
            0
        };
        r.finish()?;
        Ok((desc, generation))
    }
}

/// The serving state of one range on its shard.
#[derive(Debug)]
pub struct Replica {
    desc: RefCell<RangeDesc>,
    generation: Cell<u64>,
    /// Set once the range stops serving here (it is moving away or being
    /// dropped): every request is refused as addressed to the wrong range,
    /// and the client re-routes.
    closed: Cell<bool>,
    /// A split of this range is in progress (at most one at a time).
    splitting: Cell<bool>,
    pub(crate) latches: Latches,
    pub(crate) tscache: RefCell<TsCache>,
    pub(crate) locks: LockTable,
    /// What transactions anchored here wait for (deadlock detection).
    pub(crate) waits_for: RefCell<HashMap<TxnId, TxnMeta>>,
    gc_threshold: Cell<Timestamp>,
    approx_bytes: Cell<u64>,
    load: RefCell<LoadWindow>,
}

/// Length of a load window: a range splits by load when a whole window's
/// request rate passes the threshold.
pub const LOAD_WINDOW_NANOS: u64 = 1_000_000_000;
/// Keys of a window's requests kept to choose a load split point.
pub const LOAD_SAMPLE_KEYS: usize = 32;

/// The requests a range served in the current load window, with a uniform
/// sample of their keys (a deterministic reservoir: no randomness needed).
#[derive(Debug, Default)]
struct LoadWindow {
    start_nanos: u64,
    requests: u64,
    keys: Vec<Bytes>,
}

impl LoadWindow {
    fn add(&mut self, key: &Bytes) {
        let n = self.requests;
        self.requests += 1;
        if self.keys.len() < LOAD_SAMPLE_KEYS {
            self.keys.push(key.clone());
            return;
        }
        let slot = (mix(n) % (n + 1)) as usize;
        if slot < LOAD_SAMPLE_KEYS {
            self.keys[slot] = key.clone();
        }
    }

    /// The sampled key with half the sampled requests below it, if the
    /// sample holds two distinct keys and it lies inside `span` (after its
    /// start).
    fn middle(&mut self, span: &Span) -> Option<Bytes> {
        self.keys.sort();
        let key = self.keys.get(self.keys.len() / 2)?.clone();
        let distinct = self.keys.first() != self.keys.last();
        (distinct && key > span.start && span.contains(&key)).then_some(key)
    }
}

/// SplitMix64: a well-mixed hash of a counter.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Replica {
    /// A replica of `desc` whose timestamp cache answers at least
    /// `low_water`.
    pub fn new(desc: RangeDesc, low_water: Timestamp, gc_threshold: Timestamp) -> Replica {
        Replica::with_generation(desc, 0, low_water, gc_threshold)
    }

    /// [`Replica::new`] for a descriptor of generation `generation`.
    pub fn with_generation(
        desc: RangeDesc,
        generation: u64,
        low_water: Timestamp,
        gc_threshold: Timestamp,
    ) -> Replica {
        Replica {
            desc: RefCell::new(desc),
            generation: Cell::new(generation),
            closed: Cell::new(false),
            splitting: Cell::new(false),
            latches: Latches::new(),
            tscache: RefCell::new(TsCache::new(low_water)),
            locks: LockTable::new(),
            waits_for: RefCell::new(HashMap::new()),
            gc_threshold: Cell::new(gc_threshold),
            approx_bytes: Cell::new(0),
            load: RefCell::new(LoadWindow::default()),
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

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub(crate) fn set_generation(&self, generation: u64) {
        assert!(
            generation > self.generation.get(),
            "a range's generation only rises"
        );
        self.generation.set(generation);
    }

    /// Whether the range stopped serving here.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn set_closed(&self, closed: bool) {
        self.closed.set(closed);
    }

    /// Marks a split as started; `false` if one already is.
    pub(crate) fn begin_split(&self) -> bool {
        !self.splitting.replace(true)
    }

    /// Counts a request touching `key` at physical time `now`. When a load
    /// window ends with more than `per_sec` requests a second, returns the
    /// key that splits the window's sampled requests in half (if any).
    pub(crate) fn note_load(&self, now: u64, key: &Bytes, per_sec: u64) -> Option<Bytes> {
        let mut load = self.load.borrow_mut();
        if load.requests == 0 || now < load.start_nanos {
            load.start_nanos = now;
        }
        load.add(key);
        let elapsed = now - load.start_nanos;
        if elapsed < LOAD_WINDOW_NANOS {
            return None;
        }
        let rate = u128::from(load.requests) * 1_000_000_000 / u128::from(elapsed);
        let split = if rate > u128::from(per_sec) {
            load.middle(&self.span())
        } else {
            None
        };
        *load = LoadWindow::default();
        split
    }

    pub(crate) fn end_split(&self) {
        self.splitting.set(false);
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
    fn load_splits_at_the_middle_of_sampled_requests_only_when_busy() {
        let r = Replica::new(
            RangeDesc {
                id: 1,
                span: Span::new(&b"a"[..], &b"z"[..]),
            },
            Timestamp::ZERO,
            Timestamp::ZERO,
        );
        let ms = 1_000_000;
        let key = |i: u32| Bytes::from(format!("k{:04}", i % 1000));
        // 500 requests over a second: below 1000/s, no split.
        for i in 0..500u32 {
            assert_eq!(r.note_load(u64::from(i) * 2 * ms, &key(i), 1000), None);
        }
        assert_eq!(r.note_load(1001 * ms, &key(0), 1000), None);
        // 3000 requests a second over 1000 keys: split near the middle.
        let start = 2000 * ms;
        let mut split = None;
        for i in 0..=3000u32 {
            if let Some(k) = r.note_load(start + u64::from(i) * ms / 3, &key(i * 7), 1000) {
                split = Some(k);
            }
        }
        let k = split.expect("a busy range splits");
        assert!(
            k > Bytes::from_static(b"k0200") && k < Bytes::from_static(b"k0800"),
            "{k:?}"
        );
        // One hot key cannot be split by load.
        let start = 5000 * ms;
        for i in 0..=3000u32 {
            let at = start + u64::from(i) * ms / 3;
            assert_eq!(r.note_load(at, &key(5), 1000), None);
        }
    }

    #[test]
    fn descriptor_round_trips() {
        let d = RangeDesc {
            id: 7,
            span: Span::new(&b"a"[..], &b"m"[..]),
        };
        assert_eq!(RangeDesc::decode(&d.encode(9)).unwrap(), (d.clone(), 9));
        // The first format had no generation: it reads as generation 0.
        let mut w = Writer::new();
        w.u8(RANGE_DESC_FORMAT_V1);
        w.u64(d.id);
        w.span(&d.span);
        let v1 = Bytes::from(w.finish());
        assert_eq!(RangeDesc::decode(&v1).unwrap(), (d.clone(), 0));
        let mut bad = d.encode(1).to_vec();
        bad[0] = 7;
        assert!(RangeDesc::decode(&Bytes::from(bad)).is_err());
        let truncated = d.encode(1).slice(..10);
        assert!(RangeDesc::decode(&truncated).is_err());
    }
}
