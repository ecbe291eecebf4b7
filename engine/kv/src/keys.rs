//! Key spans and the layout of the engine's keyspace.
//!
//! The MVCC layer is the only user of a shard's storage engine, and it keeps
//! four kinds of entries apart by a one-byte namespace prefix:
//!
//! | prefix | entry | versioned |
//! |---|---|---|
//! | [`NS_META`] | per-range metadata: descriptors, GC thresholds | no (timestamp zero) |
//! | [`NS_LOCK`] + user key | the lock record (write intent or row lock) of a key | no |
//! | [`NS_TXN`] + escaped anchor key + `00 01` + txn id | a transaction record | no |
//! | [`NS_DATA`] + user key | committed versions of a key | yes |
//!
//! Why separated lock records rather than intents among the versions: a
//! reader finds every intent of a span with one scan of the lock namespace,
//! committed versions are never provisional, and resolving an intent is one
//! put of a version plus one removal, never a rewrite of history.
//!
//! A transaction record sorts next to its anchor key, so the record lives in
//! the range that holds the anchor even after splits. Its anchor is escaped
//! (every `00` byte written `00 ff`) and ended by `00 01`, the
//! order-preserving encoding of a byte string: with the raw anchor followed
//! by the id, a split key `s` with `anchor < s <= anchor ++ id` (such as
//! `anchor ++ 00`, or any key the anchor is a prefix of) put the record in
//! the right half while the anchor stayed in the left; a move of the right
//! half then took the record along and a push in the left half found none,
//! took the transaction for an abandoned one and aborted its intents.
//!
//! Invariant: user keys are arbitrary bytes; engine keys are `prefix ++ user
//! key` ([`NS_TXN`]: `prefix ++ escaped anchor ++ 00 01 ++ id`), so every
//! namespace is one contiguous engine span and user-key order is engine-key
//! order within a namespace.

use std::fmt;

use bytes::Bytes;

/// Per-range metadata (unversioned).
pub const NS_META: u8 = 0x00;
/// Lock records (unversioned).
pub const NS_LOCK: u8 = 0x01;
/// Transaction records (unversioned).
pub const NS_TXN: u8 = 0x02;
/// Committed MVCC versions.
pub const NS_DATA: u8 = 0x03;

/// Longest user key accepted, in bytes; longer keys are refused as a caller
/// error before they reach the engine.
pub const KEY_BYTES_MAX: usize = 64 * 1024;

/// A half-open span of user keys `[start, end)`; `end: None` runs to the end
/// of the keyspace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: Bytes,
    pub end: Option<Bytes>,
}

impl Span {
    /// `[start, end)`.
    pub fn new(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Span {
        Span {
            start: start.into(),
            end: Some(end.into()),
        }
    }

    /// `[start, end of keyspace)`.
    pub fn from_key(start: impl Into<Bytes>) -> Span {
        Span {
            start: start.into(),
            end: None,
        }
    }

    /// The whole keyspace.
    pub fn all() -> Span {
        Span::from_key(Bytes::new())
    }

    /// The single key `key`: `[key, key ++ 0x00)`.
    pub fn point(key: &[u8]) -> Span {
        Span::new(Bytes::copy_from_slice(key), key_successor(key))
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && self.end.as_ref().is_none_or(|end| key < &end[..])
    }

    /// Whether `other` lies entirely within `self`.
    pub fn covers(&self, other: &Span) -> bool {
        other.start >= self.start
            && match (&self.end, &other.end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => b <= a,
            }
    }

    pub fn is_empty(&self) -> bool {
        self.end.as_ref().is_some_and(|end| self.start >= *end)
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        let starts_before_other_ends = other.end.as_ref().is_none_or(|e| self.start < *e);
        let other_starts_before_end = self.end.as_ref().is_none_or(|e| other.start < *e);
        starts_before_other_ends && other_starts_before_end
    }

    /// The part of `self` inside `other`, `None` when they do not overlap.
    pub fn intersect(&self, other: &Span) -> Option<Span> {
        let start = self.start.clone().max(other.start.clone());
        let end = match (&self.end, &other.end) {
            (None, e) | (e, None) => e.clone(),
            (Some(a), Some(b)) => Some(a.clone().min(b.clone())),
        };
        let span = Span { start, end };
        (!span.is_empty()).then_some(span)
    }

    /// The smallest span covering both.
    pub fn union(&self, other: &Span) -> Span {
        let start = self.start.clone().min(other.start.clone());
        let end = match (&self.end, &other.end) {
            (None, _) | (_, None) => None,
            (Some(a), Some(b)) => Some(a.clone().max(b.clone())),
        };
        Span { start, end }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, ", pretty(&self.start))?;
        match &self.end {
            Some(end) => write!(f, "{})", pretty(end)),
            None => write!(f, "/Max)"),
        }
    }
}

/// The smallest key greater than `key`: `key ++ 0x00`.
pub fn key_successor(key: &[u8]) -> Bytes {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    Bytes::from(next)
}

/// Keys as printable text: ASCII letters, digits and `_-/.` as themselves,
/// other bytes as `\xNN`.
pub fn pretty(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_alphanumeric() || b"_-/.:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn prefixed(ns: u8, key: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(ns);
    out.extend_from_slice(key);
    Bytes::from(out)
}

/// The engine key of `key`'s committed versions.
pub fn data_key(key: &[u8]) -> Bytes {
    prefixed(NS_DATA, key)
}

/// The engine key of `key`'s lock record.
pub fn lock_key(key: &[u8]) -> Bytes {
    prefixed(NS_LOCK, key)
}

/// `key` with every `00` byte written `00 ff`: an order-preserving
/// encoding once ended by `00 01` (see the module's notes).
fn escape_into(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
}

/// The engine key of the record of transaction `id` anchored at `anchor`:
/// `NS_TXN ++ escaped anchor ++ 00 01 ++ id`, inside
/// `engine_span(NS_TXN, span)` exactly when `span` contains `anchor`.
pub fn txn_key(anchor: &[u8], id: u128) -> Bytes {
    let mut out = Vec::with_capacity(1 + anchor.len() + 2 + 16);
    out.push(NS_TXN);
    escape_into(&mut out, anchor);
    out.extend_from_slice(&[0x00, 0x01]);
    out.extend_from_slice(&id.to_be_bytes());
    Bytes::from(out)
}

/// The transaction id at the end of a transaction record's engine key.
pub fn txn_id_of_key(engine_key: &[u8]) -> Option<u128> {
    if engine_key.first() != Some(&NS_TXN) || engine_key.len() < 17 {
        return None;
    }
    let tail: [u8; 16] = engine_key[engine_key.len() - 16..].try_into().ok()?;
    Some(u128::from_be_bytes(tail))
}

/// The engine key of a per-range metadata entry: `NS_META ++ name ++ 0x00 ++
/// range id`.
pub fn meta_key(name: &str, range_id: u64) -> Bytes {
    let mut out = Vec::with_capacity(2 + name.len() + 8);
    out.push(NS_META);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.extend_from_slice(&range_id.to_be_bytes());
    Bytes::from(out)
}

/// The engine span `[ns ++ start, ns ++ end)` of a user span, with an open
/// end mapped to the start of the next namespace. In [`NS_TXN`] the bounds
/// are escaped as anchors are, so the span holds the records of exactly the
/// transactions anchored in `span`.
pub fn engine_span(ns: u8, span: &Span) -> (Bytes, Bytes) {
    let bound = |key: &[u8]| {
        if ns == NS_TXN {
            let mut out = Vec::with_capacity(1 + key.len() + 2);
            out.push(ns);
            escape_into(&mut out, key);
            Bytes::from(out)
        } else {
            prefixed(ns, key)
        }
    };
    let start = bound(&span.start);
    let end = match &span.end {
        Some(end) => bound(end),
        None => Bytes::from(vec![ns + 1]),
    };
    (start, end)
}

/// The user key of an engine key of namespace `ns`.
///
/// # Panics
/// If `engine_key` is not in `ns`: engine keys are only ever produced here.
pub fn user_key(ns: u8, engine_key: &Bytes) -> Bytes {
    assert_eq!(
        engine_key.first(),
        Some(&ns),
        "engine key outside namespace"
    );
    engine_key.slice(1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_disjoint_and_ordered() {
        let (lock_start, lock_end) = engine_span(NS_LOCK, &Span::all());
        let (data_start, _) = engine_span(NS_DATA, &Span::all());
        assert!(lock_key(b"\xff\xff\xff") < lock_end);
        assert!(lock_key(b"") >= lock_start);
        assert!(txn_key(b"", 0) >= lock_end);
        assert!(data_key(b"") >= data_start);
        assert!(data_key(b"a") < data_key(b"b"));
        assert_eq!(user_key(NS_DATA, &data_key(b"k")), Bytes::from_static(b"k"));
    }

    #[test]
    fn txn_key_round_trips_id_and_sorts_by_anchor() {
        let id = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128;
        assert_eq!(txn_id_of_key(&txn_key(b"anchor", id)), Some(id));
        assert!(txn_key(b"a", u128::MAX) < txn_key(b"b", 0));
        assert_eq!(txn_id_of_key(&data_key(b"0123456789abcdef")), None);
    }

    /// A record lies in the engine span of exactly the ranges holding its
    /// anchor, whatever the split keys: among them keys the anchor is a
    /// prefix of, `00` bytes and ids of every first byte.
    #[test]
    fn txn_records_stay_on_their_anchors_side_of_every_split() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"\x00",
            b"\x00\x00",
            b"\x00\x01",
            b"\x00\xff",
            b"k",
            b"k\x00",
            b"k\x00\x00",
            b"k\x00\x01",
            b"k\x00\xff",
            b"k\x01",
            b"k\x80",
            b"k\xff",
            b"k\xff\xff",
            b"ka",
            b"l",
            b"\xff",
        ];
        let ids = [0u128, 1, 0x80 << 120, u128::MAX];
        for &anchor in &keys {
            for &id in &ids {
                let record = txn_key(anchor, id);
                for &split in &keys {
                    let left = Span::new(Bytes::new(), Bytes::copy_from_slice(split));
                    let right = Span::from_key(Bytes::copy_from_slice(split));
                    for span in [left, right] {
                        let (start, end) = engine_span(NS_TXN, &span);
                        let inside = start <= record && record < end;
                        assert_eq!(
                            inside,
                            span.contains(anchor),
                            "anchor {} id {id:x} span {span:?}",
                            pretty(anchor)
                        );
                    }
                }
            }
        }
        // The old layout (raw anchor, then id) failed this: split at
        // `k 00`, the record of a transaction anchored at `k` sorted right.
        let (start, _) = engine_span(NS_TXN, &Span::from_key(&b"k\x00"[..]));
        assert!(txn_key(b"k", u128::MAX) < start);
    }

    #[test]
    fn span_algebra() {
        let ab = Span::new(&b"a"[..], &b"c"[..]);
        let bz = Span::from_key(&b"b"[..]);
        assert!(ab.overlaps(&bz));
        assert_eq!(ab.intersect(&bz), Some(Span::new(&b"b"[..], &b"c"[..])));
        assert_eq!(ab.union(&bz), Span::from_key(&b"a"[..]));
        assert!(Span::all().covers(&ab));
        assert!(!ab.covers(&bz));
        assert!(Span::point(b"k").contains(b"k"));
        assert!(!Span::point(b"k").contains(b"k\0"));
        let cd = Span::new(&b"c"[..], &b"d"[..]);
        assert!(!ab.overlaps(&cd));
        assert_eq!(ab.intersect(&cd), None);
    }
}
