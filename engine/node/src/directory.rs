//! A shard's routing table: which range holds a key, and which shard owns
//! it.
//!
//! Every shard keeps its own copy (nothing is shared between cores). It
//! learns descriptors from its own store at start-up, from every peer's
//! store while the node joins, from the broadcast that follows each split
//! and move, and from a peer's table when a batch it routed there came back
//! as addressed to the wrong range.
//!
//! **Merging.** Ranges only split and move, and each change raises the
//! generation of the ranges it produces, so of two descriptors that share a
//! key the newer has the higher generation. [`Directory::learn`] therefore
//! drops whatever a newer descriptor overlaps and ignores a descriptor that
//! anything newer overlaps: the table never goes back in time, whatever
//! order it hears things in. A change is always announced as the complete
//! set of ranges it produced (both halves of a split), so no hole opens in
//! a table that heard it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use bytes::Bytes;
use teller_kv::keys::Span;
use teller_kv::replica::RangeDesc;

use crate::mesh::ShardId;

/// A range as routing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub desc: RangeDesc,
    pub generation: u64,
    pub owner: ShardId,
}

/// What [`Directory::learn`] made of a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// New: it replaced the older descriptors it overlaps.
    Added,
    /// Known already.
    Known,
    /// Older than something known: ignored.
    Stale,
}

/// A shard's routing table. See the module docs.
#[derive(Debug, Default)]
pub struct Directory {
    by_start: BTreeMap<Bytes, DirEntry>,
    start_of: HashMap<u64, Bytes>,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// The range holding `key`, if known.
    pub fn route(&self, key: &[u8]) -> Option<&DirEntry> {
        let (_, e) = self.by_start.range::<[u8], _>(at_most(key)).next_back()?;
        e.desc.span.contains(key).then_some(e)
    }

    /// The range with id `id`, if known.
    pub fn get(&self, id: u64) -> Option<&DirEntry> {
        self.start_of.get(&id).and_then(|s| self.by_start.get(s))
    }

    /// Merges `entry` in (see the module docs).
    pub fn learn(&mut self, entry: DirEntry) -> Learned {
        let overlapping = self.overlapping(&entry.desc.span);
        if overlapping.contains(&entry) {
            return Learned::Known;
        }
        if overlapping.iter().any(|e| e.generation >= entry.generation) {
            return Learned::Stale;
        }
        for old in overlapping {
            self.by_start.remove(&old.desc.span.start);
            self.start_of.remove(&old.desc.id);
        }
        self.start_of
            .insert(entry.desc.id, entry.desc.span.start.clone());
        self.by_start.insert(entry.desc.span.start.clone(), entry);
        Learned::Added
    }

    /// Every entry whose span overlaps `span`, in key order.
    pub fn overlapping(&self, span: &Span) -> Vec<DirEntry> {
        let first = self
            .by_start
            .range::<[u8], _>(at_most(&span.start))
            .next_back()
            .map(|(start, _)| start.clone())
            .unwrap_or_else(|| span.start.clone());
        self.by_start
            .range(first..)
            .take_while(|&(start, _)| span.end.as_ref().is_none_or(|end| start < end))
            .filter(|(_, e)| e.desc.span.overlaps(span))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Vec<DirEntry> {
        self.by_start.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    /// Whether the known ranges cover the whole keyspace without a hole.
    pub fn covers_keyspace(&self) -> bool {
        let mut next = Bytes::new();
        for (start, e) in &self.by_start {
            if *start != next {
                return false;
            }
            match &e.desc.span.end {
                Some(end) => next = end.clone(),
                None => return true,
            }
        }
        false
    }
}

/// Keys up to and including `key`.
fn at_most(key: &[u8]) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (Bound::Unbounded, Bound::Included(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, start: &str, end: Option<&str>, generation: u64, owner: usize) -> DirEntry {
        DirEntry {
            desc: RangeDesc {
                id,
                span: Span {
                    start: Bytes::copy_from_slice(start.as_bytes()),
                    end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
                },
            },
            generation,
            owner,
        }
    }

    #[test]
    fn routes_by_start_and_reports_holes() {
        let mut d = Directory::new();
        assert_eq!(d.learn(entry(1, "", Some("m"), 0, 0)), Learned::Added);
        assert!(!d.covers_keyspace());
        assert_eq!(d.route(b"a").map(|e| e.desc.id), Some(1));
        assert_eq!(d.route(b"m"), None);
        assert_eq!(d.learn(entry(2, "m", None, 0, 1)), Learned::Added);
        assert!(d.covers_keyspace());
        assert_eq!(d.route(b"zz").map(|e| e.owner), Some(1));
        assert_eq!(d.get(2).map(|e| e.desc.id), Some(2));
        assert_eq!(d.learn(entry(2, "m", None, 0, 1)), Learned::Known);
    }

    #[test]
    fn newer_generations_win_in_any_order() {
        // Range 1 [a, z) splits into 1 [a, m) and 3 [m, z); 3 moves to
        // shard 1 as 4. Every order of hearing it ends the same.
        let old = entry(1, "a", Some("z"), 5, 0);
        let left = entry(1, "a", Some("m"), 6, 0);
        let right = entry(3, "m", Some("z"), 6, 0);
        let moved = entry(4, "m", Some("z"), 7, 1);
        let events = [old.clone(), left.clone(), right.clone(), moved.clone()];
        let orders = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
        for order in orders {
            let mut d = Directory::new();
            for i in order {
                d.learn(events[i].clone());
            }
            assert_eq!(d.entries(), vec![left.clone(), moved.clone()], "{order:?}");
            assert_eq!(d.get(3), None);
            assert_eq!(d.get(1), Some(&left));
        }
        let mut d = Directory::new();
        d.learn(moved.clone());
        assert_eq!(d.learn(right), Learned::Stale);
        assert_eq!(d.learn(old), Learned::Stale);
        // The older range stays out even though nothing covers [a, m) yet.
        assert_eq!(d.route(b"b"), None);
    }

    #[test]
    fn overlapping_finds_the_range_containing_the_start() {
        let mut d = Directory::new();
        d.learn(entry(1, "", Some("f"), 0, 0));
        d.learn(entry(2, "f", Some("p"), 0, 0));
        d.learn(entry(3, "p", None, 0, 1));
        let span = Span::new(&b"g"[..], &b"q"[..]);
        let ids: Vec<u64> = d.overlapping(&span).iter().map(|e| e.desc.id).collect();
        assert_eq!(ids, vec![2, 3]);
        let ids: Vec<u64> = d
            .overlapping(&Span::all())
            .iter()
            .map(|e| e.desc.id)
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
