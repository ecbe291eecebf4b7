//! The memtable: an arena skiplist of MVCC versions, ordered by
//! (user key ascending, timestamp descending).
//!
//! # Design
//! - Single writer (the owning shard), no atomics, no `unsafe`: nodes live in a
//!   `Vec` and link to each other by `u32` index; keys and values live in one byte
//!   arena. Nothing is ever removed or moved, so an index stays valid for the
//!   memtable's lifetime.
//! - Readers never block the writer: a reader that awaits between steps holds a
//!   [`Cursor`] (a node index, no borrow) and re-borrows the memtable per step, so
//!   the shard may insert meanwhile. The cursor sees a consistent order: an insert
//!   only links a new node between two existing ones. Snapshot isolation comes from
//!   timestamps: MVCC never inserts a version at or below a timestamp already read
//!   (the timestamp cache guarantees it), so reads at `read_ts` are stable.
//!   Non-yielding readers can use the borrowing iterators ([`Iter`], [`VisibleIter`]).
//! - Size accounting counts arena, node and link bytes; `insert` refuses an entry
//!   that would pass the configured bound, and the owner then freezes this memtable
//!   (it becomes immutable, waiting for its flush) and starts a new one.
//! - Tower heights are drawn from a deterministic PRNG (branching factor 4), so the
//!   shape of the list, like everything else, replays from its seed.

#[cfg(test)]
mod tests;

use crate::rng::SimRng;
use crate::timestamp::Timestamp;
use std::cmp::Ordering;
use std::fmt;

/// Tallest tower; with branching 4, enough for ~4^12 = 16M entries per memtable.
pub const HEIGHT_MAX: usize = 12;
/// Probability denominator of growing a tower by one level.
const BRANCHING: u64 = 4;
/// Hard bound on a memtable's bytes: offsets in the arena are `u32`.
pub const MEMTABLE_BYTES_MAX: usize = 1 << 31;
/// Largest key, in bytes.
pub const KEY_BYTES_MAX: usize = 64 * 1024;
/// Largest value, in bytes.
pub const VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Default bound on a memtable's bytes before it must be frozen.
pub const MEMTABLE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

const _: () = assert!(MEMTABLE_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(KEY_BYTES_MAX + VALUE_BYTES_MAX < MEMTABLE_BYTES_MAX);

const HEAD: u32 = 0;
const NIL: u32 = u32::MAX;

/// A version's value: bytes, or a deletion marker (tombstone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Put(&'a [u8]),
    Delete,
}

/// One MVCC version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub ts: Timestamp,
    pub value: Value<'a>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MemtableError {
    /// The entry would take the memtable past its byte bound: freeze and rotate.
    Full { bytes: usize, max: usize },
    /// A version with this key and timestamp is already present.
    Exists,
    /// The key or value exceeds its size limit.
    TooLarge {
        key_bytes: usize,
        value_bytes: usize,
    },
}

impl fmt::Display for MemtableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemtableError::Full { bytes, max } => write!(f, "memtable full: {bytes} > {max} bytes"),
            MemtableError::Exists => write!(f, "memtable already holds this key at this timestamp"),
            MemtableError::TooLarge {
                key_bytes,
                value_bytes,
            } => {
                write!(
                    f,
                    "entry too large: key {key_bytes} bytes, value {value_bytes} bytes"
                )
            }
        }
    }
}

impl std::error::Error for MemtableError {}

#[derive(Clone, Copy, Debug)]
struct Node {
    key_at: u32,
    key_len: u32,
    value_at: u32,
    value_len: u32,
    ts: Timestamp,
    /// Index of this node's first link in `links`; the tower has `height` links.
    tower: u32,
    height: u8,
    tombstone: bool,
}

/// The arena skiplist. See the module docs.
pub struct Memtable {
    arena: Vec<u8>,
    nodes: Vec<Node>,
    links: Vec<u32>,
    height: usize,
    rng: SimRng,
    bytes_max: usize,
    frozen: bool,
}

impl Memtable {
    /// An empty memtable that accepts entries up to `bytes_max` bytes in total.
    pub fn new(bytes_max: usize, seed: u64) -> Self {
        assert!(
            bytes_max <= MEMTABLE_BYTES_MAX,
            "memtable bound {bytes_max} too large"
        );
        let head = Node {
            key_at: 0,
            key_len: 0,
            value_at: 0,
            value_len: 0,
            ts: Timestamp::ZERO,
            tower: 0,
            height: HEIGHT_MAX as u8,
            tombstone: false,
        };
        Memtable {
            arena: Vec::new(),
            nodes: vec![head],
            links: vec![NIL; HEIGHT_MAX],
            height: 1,
            rng: SimRng::new(seed),
            bytes_max,
            frozen: false,
        }
    }

    /// Inserts a version. Panics if the memtable is frozen (a caller bug).
    pub fn insert(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        value: Value<'_>,
    ) -> Result<(), MemtableError> {
        assert!(!self.frozen, "insert into a frozen memtable");
        let value_bytes = match value {
            Value::Put(v) => v,
            Value::Delete => &[],
        };
        if key.len() > KEY_BYTES_MAX || value_bytes.len() > VALUE_BYTES_MAX {
            let (key_bytes, value_bytes) = (key.len(), value_bytes.len());
            return Err(MemtableError::TooLarge {
                key_bytes,
                value_bytes,
            });
        }
        let height = self.random_height();
        let cost = key.len() + value_bytes.len() + size_of::<Node>() + height * size_of::<u32>();
        let bytes = self.approximate_bytes() + cost;
        if bytes > self.bytes_max {
            return Err(MemtableError::Full {
                bytes,
                max: self.bytes_max,
            });
        }
        let mut preds = [HEAD; HEIGHT_MAX];
        let found = self.find(key, ts, Some(&mut preds));
        if found != NIL && self.cmp_node(found, key, ts) == Ordering::Equal {
            return Err(MemtableError::Exists);
        }
        let index = u32::try_from(self.nodes.len()).expect("node count bounded by bytes_max");
        let node = Node {
            key_at: self.push_bytes(key),
            key_len: key.len() as u32,
            value_at: self.push_bytes(value_bytes),
            value_len: value_bytes.len() as u32,
            ts,
            tower: u32::try_from(self.links.len()).expect("links bounded by bytes_max"),
            height: height as u8,
            tombstone: value == Value::Delete,
        };
        self.nodes.push(node);
        for (level, &pred) in preds.iter().enumerate().take(height) {
            let next = self.link(pred, level);
            self.links.push(next);
            self.set_link(pred, level, index);
        }
        self.height = self.height.max(height);
        Ok(())
    }

    /// The newest version of `key` with timestamp `<= read_ts` (a tombstone included).
    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Option<Entry<'_>> {
        let found = self.find(key, read_ts, None);
        (found != NIL && self.key(found) == key).then(|| self.entry(found))
    }

    /// All versions in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            memtable: self,
            cursor: Cursor::first(self),
        }
    }

    /// Versions from the first one at or after `(key, ts)` in (key asc, ts desc) order.
    pub fn seek(&self, key: &[u8], ts: Timestamp) -> Iter<'_> {
        Iter {
            memtable: self,
            cursor: Cursor::seek(self, key, ts),
        }
    }

    /// For each key `>= start`, its newest version visible at `read_ts`
    /// (tombstones included, so a merge with older layers can hide deleted keys).
    pub fn scan_at(&self, start: &[u8], read_ts: Timestamp) -> VisibleIter<'_> {
        VisibleIter {
            memtable: self,
            cursor: Cursor::seek(self, start, Timestamp::MAX),
            read_ts,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes used by keys, values, nodes and links (not counting spare capacity).
    pub fn approximate_bytes(&self) -> usize {
        self.arena.len()
            + self.nodes.len() * size_of::<Node>()
            + self.links.len() * size_of::<u32>()
    }

    /// Makes the memtable immutable (it awaits its flush); later inserts panic.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Checks the skiplist structure: every level is sorted, every node of a level
    /// is on the level below, level 0 holds every node. O(n log n); for tests.
    pub fn assert_invariants(&self) {
        let mut below: Option<std::collections::HashSet<u32>> = None;
        for level in 0..HEIGHT_MAX {
            let mut on_level = std::collections::HashSet::new();
            let mut x = self.link(HEAD, level);
            let mut prev: Option<u32> = None;
            while x != NIL {
                let n = &self.nodes[x as usize];
                assert!(level < usize::from(n.height), "node linked above its tower");
                if let Some(p) = prev {
                    let order = self.cmp_node(p, self.key(x), n.ts);
                    assert_eq!(order, Ordering::Less, "level {level} out of order");
                }
                assert!(
                    below.as_ref().is_none_or(|b| b.contains(&x)),
                    "level {level} skips"
                );
                on_level.insert(x);
                prev = Some(x);
                x = self.link(x, level);
            }
            if level == 0 {
                assert_eq!(on_level.len(), self.len(), "level 0 misses nodes");
            }
            assert!(
                level < self.height || on_level.is_empty(),
                "links above height"
            );
            below = Some(on_level);
        }
    }

    fn random_height(&mut self) -> usize {
        let mut height = 1;
        while height < HEIGHT_MAX && self.rng.below(BRANCHING) == 0 {
            height += 1;
        }
        height
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> u32 {
        let at = u32::try_from(self.arena.len()).expect("arena bounded by bytes_max");
        self.arena.extend_from_slice(bytes);
        at
    }

    fn link(&self, node: u32, level: usize) -> u32 {
        let n = &self.nodes[node as usize];
        debug_assert!(level < usize::from(n.height));
        self.links[n.tower as usize + level]
    }

    fn set_link(&mut self, node: u32, level: usize, to: u32) {
        let n = self.nodes[node as usize];
        assert!(level < usize::from(n.height), "link above tower");
        self.links[n.tower as usize + level] = to;
    }

    fn key(&self, node: u32) -> &[u8] {
        let n = &self.nodes[node as usize];
        &self.arena[n.key_at as usize..(n.key_at + n.key_len) as usize]
    }

    fn entry(&self, node: u32) -> Entry<'_> {
        let n = &self.nodes[node as usize];
        let value = if n.tombstone {
            Value::Delete
        } else {
            Value::Put(&self.arena[n.value_at as usize..(n.value_at + n.value_len) as usize])
        };
        Entry {
            key: self.key(node),
            ts: n.ts,
            value,
        }
    }

    /// Order of `node` against `(key, ts)`: key ascending, then timestamp descending.
    fn cmp_node(&self, node: u32, key: &[u8], ts: Timestamp) -> Ordering {
        self.key(node)
            .cmp(key)
            .then_with(|| ts.cmp(&self.nodes[node as usize].ts))
    }

    /// The first node at or after `(key, ts)`, or `NIL`; fills the predecessor at
    /// every level when asked.
    fn find(&self, key: &[u8], ts: Timestamp, mut preds: Option<&mut [u32; HEIGHT_MAX]>) -> u32 {
        let mut x = HEAD;
        for level in (0..HEIGHT_MAX).rev() {
            if level < self.height {
                loop {
                    let next = self.link(x, level);
                    if next != NIL && self.cmp_node(next, key, ts) == Ordering::Less {
                        x = next;
                    } else {
                        break;
                    }
                }
            }
            if let Some(p) = preds.as_deref_mut() {
                p[level] = x;
            }
        }
        self.link(x, 0)
    }
}

/// A position in a memtable that borrows nothing: hold it across awaits and pass
/// the memtable to each step. Valid for the memtable it came from, forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    node: u32,
}

impl Cursor {
    /// At the first version.
    pub fn first(memtable: &Memtable) -> Self {
        Cursor {
            node: memtable.link(HEAD, 0),
        }
    }

    /// At the first version at or after `(key, ts)`.
    pub fn seek(memtable: &Memtable, key: &[u8], ts: Timestamp) -> Self {
        Cursor {
            node: memtable.find(key, ts, None),
        }
    }

    pub fn is_valid(&self) -> bool {
        self.node != NIL
    }

    /// The version under the cursor, if any.
    pub fn entry<'a>(&self, memtable: &'a Memtable) -> Option<Entry<'a>> {
        self.is_valid().then(|| memtable.entry(self.node))
    }

    /// Moves to the next version (including ones inserted since the last step).
    pub fn advance(&mut self, memtable: &Memtable) {
        if self.is_valid() {
            self.node = memtable.link(self.node, 0);
        }
    }
}

/// Borrowing iterator over versions in order.
pub struct Iter<'a> {
    memtable: &'a Memtable,
    cursor: Cursor,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let entry = self.cursor.entry(self.memtable)?;
        self.cursor.advance(self.memtable);
        Some(entry)
    }
}

/// Borrowing iterator over the newest visible version of each key.
pub struct VisibleIter<'a> {
    memtable: &'a Memtable,
    cursor: Cursor,
    read_ts: Timestamp,
}

impl<'a> Iterator for VisibleIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        loop {
            let entry = self.cursor.entry(self.memtable)?;
            if entry.ts <= self.read_ts {
                // The newest visible version of this key: skip its older ones.
                self.cursor = Cursor::seek(self.memtable, entry.key, Timestamp::ZERO);
                while self
                    .cursor
                    .entry(self.memtable)
                    .is_some_and(|e| e.key == entry.key)
                {
                    self.cursor.advance(self.memtable);
                }
                return Some(entry);
            }
            self.cursor.advance(self.memtable);
        }
    }
}
