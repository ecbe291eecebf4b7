//! The timestamp cache of a range: the latest timestamp at which each key
//! (or span) was read, and by which transaction.
//!
//! A write below a read would change what that read saw, so a write to a key
//! whose cached read timestamp is `>= write_ts` (by another transaction) is
//! pushed to just above it. This is what makes reads safe without read
//! locks: serializability by timestamp ordering.
//!
//! # Bounds and soundness
//! The cache holds at most [`POINTS_MAX`] point reads and [`SPANS_MAX`] span
//! reads. When full, the older half by timestamp is evicted and the **low
//! water mark** rises to the newest evicted timestamp: every lookup answers
//! at least the low water mark. Forgetting can therefore only make the cache
//! answer higher (push more), never lower, so eviction is always sound.
//! A new store (or one restarted) starts with the low water mark at the
//! clock's reading plus the maximum clock offset, because reads served before
//! the restart are unknown.
//!
//! The owning transaction matters: a transaction's own reads do not push its
//! writes. Recording only the maximum per entry is enough, because a
//! transaction writes at or above its own read timestamps; when two
//! transactions read an entry at the same timestamp, the entry's owner
//! becomes "none" (it pushes everyone).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::hlc::Timestamp;
use crate::keys::Span;
use crate::txn::TxnId;

/// Most point entries before eviction.
pub const POINTS_MAX: usize = 64 * 1024;
/// Most span entries before eviction.
pub const SPANS_MAX: usize = 1024;

/// A cached read: its timestamp and reader (`None`: several or unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMark {
    pub ts: Timestamp,
    pub txn: Option<TxnId>,
}

impl ReadMark {
    fn merge(self, other: ReadMark) -> ReadMark {
        use std::cmp::Ordering::*;
        match self.ts.cmp(&other.ts) {
            Greater => self,
            Less => other,
            Equal if self.txn == other.txn => self,
            Equal => ReadMark {
                ts: self.ts,
                txn: None,
            },
        }
    }
}

/// The timestamp cache of one range.
#[derive(Debug)]
pub struct TsCache {
    low_water: Timestamp,
    points: BTreeMap<Bytes, ReadMark>,
    spans: Vec<(Span, ReadMark)>,
    points_max: usize,
    spans_max: usize,
}

impl TsCache {
    /// An empty cache that answers at least `low_water`.
    pub fn new(low_water: Timestamp) -> TsCache {
        TsCache::with_limits(low_water, POINTS_MAX, SPANS_MAX)
    }

    /// As [`TsCache::new`], with small limits for tests of eviction.
    pub fn with_limits(low_water: Timestamp, points_max: usize, spans_max: usize) -> TsCache {
        assert!(points_max >= 2 && spans_max >= 2);
        TsCache {
            low_water,
            points: BTreeMap::new(),
            spans: Vec::new(),
            points_max,
            spans_max,
        }
    }

    pub fn low_water(&self) -> Timestamp {
        self.low_water
    }

    /// Records a read of `span` at `ts` by `txn`.
    pub fn record(&mut self, span: &Span, ts: Timestamp, txn: Option<TxnId>) {
        if ts <= self.low_water {
            return;
        }
        let mark = ReadMark { ts, txn };
        if is_point(span) {
            let entry = self.points.entry(span.start.clone()).or_insert(mark);
            *entry = entry.merge(mark);
            if self.points.len() > self.points_max {
                self.evict_points();
            }
            return;
        }
        if let Some((_, existing)) = self.spans.iter_mut().find(|(s, _)| s == span) {
            *existing = existing.merge(mark);
            return;
        }
        self.spans.push((span.clone(), mark));
        if self.spans.len() > self.spans_max {
            self.evict_spans();
        }
    }

    /// The latest read of any key in `span` (at least the low water mark).
    pub fn max_read(&self, span: &Span) -> ReadMark {
        let mut best = ReadMark {
            ts: self.low_water,
            txn: None,
        };
        let end = span.end.clone();
        let range = match end {
            Some(end) => self.points.range(span.start.clone()..end),
            None => self.points.range(span.start.clone()..),
        };
        for (_, mark) in range {
            best = best.merge(*mark);
        }
        for (s, mark) in &self.spans {
            if s.overlaps(span) {
                best = best.merge(*mark);
            }
        }
        best
    }

    /// The latest read of `span` by a transaction other than `me`; reads by
    /// `me` only count when they tie with others'.
    pub fn pushed_write_ts(
        &self,
        span: &Span,
        me: Option<TxnId>,
        write_ts: Timestamp,
    ) -> Timestamp {
        let mark = self.max_read(span);
        if mark.ts >= write_ts && (mark.txn.is_none() || mark.txn != me) {
            mark.ts.next()
        } else {
            write_ts
        }
    }

    fn evict_points(&mut self) {
        let mut stamps: Vec<Timestamp> = self.points.values().map(|m| m.ts).collect();
        stamps.sort_unstable();
        let cut = stamps[stamps.len() / 2];
        self.low_water = self.low_water.max(cut);
        self.points.retain(|_, m| m.ts > cut);
        self.spans.retain(|(_, m)| m.ts > cut);
    }

    fn evict_spans(&mut self) {
        let mut stamps: Vec<Timestamp> = self.spans.iter().map(|(_, m)| m.ts).collect();
        stamps.sort_unstable();
        let cut = stamps[stamps.len() / 2];
        self.low_water = self.low_water.max(cut);
        self.spans.retain(|(_, m)| m.ts > cut);
        self.points.retain(|_, m| m.ts > cut);
    }

    /// A copy for the right half of a split: everything at or above `split`.
    pub fn split_off(&self, split: &[u8]) -> TsCache {
        let right = Span::from_key(Bytes::copy_from_slice(split));
        TsCache {
            low_water: self.low_water,
            points: self
                .points
                .range(right.start.clone()..)
                .map(|(k, m)| (k.clone(), *m))
                .collect(),
            spans: self
                .spans
                .iter()
                .filter(|(s, _)| s.overlaps(&right))
                .cloned()
                .collect(),
            points_max: self.points_max,
            spans_max: self.spans_max,
        }
    }
}

fn is_point(span: &Span) -> bool {
    match &span.end {
        Some(end) => {
            end.len() == span.start.len() + 1
                && end.starts_with(&span.start)
                && end.last() == Some(&0)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(w: u64) -> Timestamp {
        Timestamp::new(w, 0)
    }

    #[test]
    fn reads_push_other_writers_only() {
        let mut c = TsCache::new(ts(1));
        c.record(&Span::point(b"k"), ts(10), Some(TxnId(1)));
        assert_eq!(
            c.pushed_write_ts(&Span::point(b"k"), Some(TxnId(2)), ts(5)),
            ts(10).next()
        );
        assert_eq!(
            c.pushed_write_ts(&Span::point(b"k"), Some(TxnId(1)), ts(5)),
            ts(5)
        );
        assert_eq!(
            c.pushed_write_ts(&Span::point(b"k"), Some(TxnId(2)), ts(11)),
            ts(11)
        );
        assert_eq!(
            c.pushed_write_ts(&Span::point(b"j"), Some(TxnId(2)), ts(5)),
            ts(5)
        );
        // A tie between two readers pushes both.
        c.record(&Span::point(b"k"), ts(10), Some(TxnId(2)));
        assert_eq!(
            c.pushed_write_ts(&Span::point(b"k"), Some(TxnId(1)), ts(5)),
            ts(10).next()
        );
    }

    #[test]
    fn span_reads_cover_keys_inside() {
        let mut c = TsCache::new(ts(1));
        c.record(&Span::new(&b"a"[..], &b"m"[..]), ts(7), None);
        assert_eq!(c.max_read(&Span::point(b"c")).ts, ts(7));
        assert_eq!(c.max_read(&Span::point(b"m")).ts, ts(1));
        assert_eq!(c.max_read(&Span::from_key(&b"l"[..])).ts, ts(7));
    }

    #[test]
    fn eviction_raises_low_water_and_never_lowers_answers() {
        let mut c = TsCache::with_limits(ts(0), 4, 2);
        for i in 0..10u64 {
            c.record(&Span::point(format!("k{i}").as_bytes()), ts(i + 1), None);
        }
        for i in 0..10u64 {
            let got = c.max_read(&Span::point(format!("k{i}").as_bytes())).ts;
            assert!(got >= ts(i + 1), "k{i}: {got} < {}", i + 1);
        }
        assert!(c.low_water() > ts(0));
        for i in 0..5u64 {
            c.record(
                &Span::new(format!("s{i}").into_bytes(), format!("t{i}").into_bytes()),
                ts(20 + i),
                None,
            );
        }
        assert!(c.max_read(&Span::point(b"s0")).ts >= ts(20));
    }
}
