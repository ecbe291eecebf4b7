//! Placement metadata: which ranges cut a span of the keyspace and which
//! shard owns each (`SHOW RANGES`).
//!
//! This is read-only metadata, not data: [`super::Kv::describe_ranges`]
//! runs outside any transaction and answers with a snapshot of the
//! placement as the engine knows it at that moment. Ranges may split or
//! move right after; a caller that needs placement to hold (a benchmark
//! choosing rows on one shard) reads it again afterwards to see whether it
//! did.

use super::Span;

/// One range of the keyspace and its owner.
///
/// Invariant (checked by [`check_tiling`] in tests and by the node's
/// adapter): the descriptions returned for a span are in key order, their
/// spans are disjoint and adjacent, and together they cover the span asked
/// about (the first may start before it, the last may end after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeDescription {
    /// The engine's range id (random 64-bit numbers, never reused).
    pub range_id: u64,
    /// The range's keys: `[start, end)`, `end: None` to the end of the
    /// keyspace.
    pub span: Span,
    /// The shard that owns the range: it serves the range's reads and
    /// writes.
    pub shard: usize,
    /// Raised by every split and move of the range.
    pub generation: u64,
    /// The engine's estimate of the range's bytes, when it has one cheaply.
    pub approx_bytes: Option<u64>,
}

/// Whether `ranges` are in key order, disjoint and adjacent, and cover
/// `span`: the contract of [`super::Kv::describe_ranges`]. `Err` names the
/// first violation.
pub fn check_tiling(ranges: &[RangeDescription], span: &Span) -> Result<(), String> {
    let first = ranges
        .first()
        .ok_or_else(|| format!("no range covers {span:?}"))?;
    if first.span.start > span.start {
        return Err(format!("{span:?} starts before range {}", first.range_id));
    }
    for pair in ranges.windows(2) {
        if pair[0].span.end.as_ref() != Some(&pair[1].span.start) {
            return Err(format!(
                "ranges {} and {} are not adjacent: {:?} then {:?}",
                pair[0].range_id, pair[1].range_id, pair[0].span, pair[1].span
            ));
        }
    }
    let last = ranges.last().expect("not empty");
    let covered = match (&last.span.end, &span.end) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(last_end), Some(end)) => last_end >= end,
    };
    if !covered {
        return Err(format!("{span:?} ends after range {}", last.range_id));
    }
    Ok(())
}

/// Whether two spans share a key.
pub fn spans_overlap(a: &Span, b: &Span) -> bool {
    let before_end =
        |key: &[u8], end: &Option<bytes::Bytes>| end.as_ref().is_none_or(|e| key < &e[..]);
    !a.is_empty() && !b.is_empty() && before_end(&a.start, &b.end) && before_end(&b.start, &a.end)
}
