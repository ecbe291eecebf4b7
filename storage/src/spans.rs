//! [`SpanSet`]: a set of key spans `[start, end)`, kept sorted and merged. It holds
//! the range tombstones of one source (a memtable or an SSTable).
//!
//! # Semantics of a range tombstone
//! A `DeleteRange { start, end }` removes every version of every key in the span
//! that was written *before* it. The engine keeps the invariant that a source
//! never holds a point entry older than its own range tombstones (a memtable
//! erases them when the tombstone arrives; flush and compaction drop them), so a
//! source's tombstones hide exactly the matching keys of *older* sources.

/// Sorted, non-overlapping, non-adjacent spans `[start, end)` with `start < end`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanSet {
    spans: Vec<(Vec<u8>, Vec<u8>)>,
}

impl SpanSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Adds `[start, end)`, merging it with the spans it overlaps or touches.
    /// An empty span (`start >= end`) is ignored.
    pub fn insert(&mut self, start: &[u8], end: &[u8]) {
        if start >= end {
            return;
        }
        // First span whose end reaches `start`, last span whose start is <= `end`.
        let lo = self.spans.partition_point(|(_, e)| e.as_slice() < start);
        let hi = self.spans.partition_point(|(s, _)| s.as_slice() <= end);
        let mut merged = (start.to_vec(), end.to_vec());
        if lo < hi {
            if self.spans[lo].0.as_slice() < start {
                merged.0 = self.spans[lo].0.clone();
            }
            if self.spans[hi - 1].1.as_slice() > end {
                merged.1 = self.spans[hi - 1].1.clone();
            }
        }
        self.spans.splice(lo..hi, [merged]);
        self.assert_invariants();
    }

    /// Adds every span of `other`.
    pub fn extend(&mut self, other: &SpanSet) {
        for (s, e) in other.iter() {
            self.insert(s, e);
        }
    }

    /// Whether `key` lies in a span.
    pub fn covers(&self, key: &[u8]) -> bool {
        let i = self.spans.partition_point(|(_, e)| e.as_slice() <= key);
        self.spans.get(i).is_some_and(|(s, _)| s.as_slice() <= key)
    }

    /// Whether some span intersects `[start, end)`; `end = None` means unbounded.
    pub fn overlaps(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        if end.is_some_and(|end| end <= start) {
            return false;
        }
        let i = self.spans.partition_point(|(_, e)| e.as_slice() <= start);
        self.spans
            .get(i)
            .is_some_and(|(s, _)| end.is_none_or(|end| s.as_slice() < end))
    }

    /// The spans intersected with `[lo, hi)`; `hi = None` means unbounded.
    pub fn clip(&self, lo: &[u8], hi: Option<&[u8]>) -> SpanSet {
        let mut out = SpanSet::new();
        for (s, e) in self.iter() {
            let s = s.max(lo);
            let e = match hi {
                Some(hi) => e.min(hi),
                None => e,
            };
            out.insert(s, e);
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|(s, e)| (s.as_slice(), e.as_slice()))
    }

    /// The smallest start and the largest end, if any span exists.
    pub fn bounds(&self) -> Option<(&[u8], &[u8])> {
        let first = self.spans.first()?;
        let last = self.spans.last()?;
        Some((&first.0, &last.1))
    }

    fn assert_invariants(&self) {
        if cfg!(debug_assertions) {
            for (s, e) in &self.spans {
                assert!(s < e, "empty span in a SpanSet");
            }
            for w in self.spans.windows(2) {
                assert!(w[0].1 < w[1].0, "SpanSet spans overlap or touch");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;

    #[test]
    fn matches_a_bitmap_model() {
        for seed in 0..200 {
            let mut rng = SimRng::new(seed);
            let mut set = SpanSet::new();
            let mut model = [false; 32];
            for _ in 0..rng.range(1, 12) {
                let (a, b) = (rng.below(32) as u8, rng.below(33) as u8);
                set.insert(&[a], &[b]);
                for k in a..b {
                    model[k as usize] = true;
                }
            }
            for k in 0..32u8 {
                assert_eq!(set.covers(&[k]), model[k as usize], "seed {seed} key {k}");
                // A longer key sorts after its one-byte prefix.
                assert_eq!(set.covers(&[k, 0]), model[k as usize], "seed {seed}");
            }
            for _ in 0..20 {
                let (a, b) = (rng.below(32) as u8, rng.below(33) as u8);
                let any = (a..b).any(|k| model[k as usize]);
                assert_eq!(set.overlaps(&[a], Some(&[b])), any, "seed {seed}");
                let clipped = set.clip(&[a], Some(&[b]));
                for k in 0..32u8 {
                    let want = model[k as usize] && (a..b).contains(&k);
                    assert_eq!(clipped.covers(&[k]), want, "seed {seed}: clip");
                }
            }
        }
        let mut s = SpanSet::new();
        s.insert(b"b", b"d");
        s.insert(b"d", b"f");
        assert_eq!(s.len(), 1, "touching spans merge");
        assert_eq!(s.bounds(), Some((&b"b"[..], &b"f"[..])));
        assert!(s.overlaps(b"e", None) && !s.overlaps(b"f", None));
    }
}
