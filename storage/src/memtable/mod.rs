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
//! - Writing a version whose (key, timestamp) is already present replaces its
//!   value in place (the transaction layer overwrites lock records that way);
//!   the old value bytes stay in the arena until the memtable is dropped.
//! - [`Memtable::delete_range`] erases every version in a span (erased nodes stay
//!   linked but are invisible) and records the span as a range tombstone, which
//!   hides the span in *older* sources (older memtables, tables). A version
//!   written into the span afterwards is visible again: the memtable never holds
//!   a visible entry older than its own range tombstones.
//! - Size accounting counts arena, node and link bytes; `insert` refuses an entry
//!   that would pass the configured bound, and the owner then freezes this memtable
//!   (it becomes immutable, waiting for its flush) and starts a new one.
//! - Tower heights are drawn from a deterministic PRNG (branching factor 4), so the
//!   shape of the list, like everything else, replays from its seed.

#[cfg(test)]
mod tests;

use crate::rng::SimRng;
use crate::spans::SpanSet;
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
    /// Removed by a range deletion: skipped by every reader.
    erased: bool,
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
    /// Live (not erased) versions.
    live: usize,
    range_dels: SpanSet,
    /// Bounds of the timestamps ever inserted (erased ones included).
    min_ts: Timestamp,
    max_ts: Timestamp,
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
            erased: false,
        };
        Memtable {
            arena: Vec::new(),
            nodes: vec![head],
            links: vec![NIL; HEIGHT_MAX],
            height: 1,
            rng: SimRng::new(seed),
            bytes_max,
            frozen: false,
            live: 0,
            range_dels: SpanSet::new(),
            min_ts: Timestamp::MAX,
            max_ts: Timestamp::ZERO,
        }
    }

    /// An upper bound of the bytes one insert of this shape costs.
    pub fn entry_cost_max(key_bytes: usize, value_bytes: usize) -> usize {
        key_bytes + value_bytes + size_of::<Node>() + HEIGHT_MAX * size_of::<u32>()
    }

    /// Inserts a version, or replaces the value of the version with the same key
    /// and timestamp. Panics if the memtable is frozen (a caller bug).
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
        let mut preds = [HEAD; HEIGHT_MAX];
        let found = self.find(key, ts, Some(&mut preds));
        if found != NIL && self.cmp_node(found, key, ts) == Ordering::Equal {
            return self.replace(found, value, value_bytes);
        }
        let height = self.random_height();
        let cost = key.len() + value_bytes.len() + size_of::<Node>() + height * size_of::<u32>();
        self.check_room(cost)?;
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
            erased: false,
        };
        self.nodes.push(node);
        for (level, &pred) in preds.iter().enumerate().take(height) {
            let next = self.link(pred, level);
            self.links.push(next);
            self.set_link(pred, level, index);
        }
        self.height = self.height.max(height);
        self.live += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        Ok(())
    }

    fn check_room(&self, cost: usize) -> Result<(), MemtableError> {
        let bytes = self.approximate_bytes() + cost;
        if bytes > self.bytes_max {
            return Err(MemtableError::Full {
                bytes,
                max: self.bytes_max,
            });
        }
        Ok(())
    }

    /// Gives an existing node a new value (and revives it if it was erased).
    fn replace(&mut self, node: u32, value: Value<'_>, bytes: &[u8]) -> Result<(), MemtableError> {
        self.check_room(bytes.len())?;
        let value_at = self.push_bytes(bytes);
        let n = &mut self.nodes[node as usize];
        n.value_at = value_at;
        n.value_len = bytes.len() as u32;
        n.tombstone = value == Value::Delete;
        if n.erased {
            n.erased = false;
            self.live += 1;
        }
        Ok(())
    }

    /// Erases every version with a key in `[start, end)` and records the span as
    /// a range tombstone over older sources. Returns the number of versions erased.
    pub fn delete_range(&mut self, start: &[u8], end: &[u8]) -> usize {
        assert!(!self.frozen, "delete_range on a frozen memtable");
        if start >= end {
            return 0;
        }
        let mut erased = 0;
        let mut x = self.find(start, Timestamp::MAX, None);
        while x != NIL && self.key(x) < end {
            let n = &mut self.nodes[x as usize];
            if !n.erased {
                n.erased = true;
                erased += 1;
            }
            x = self.link(x, 0);
        }
        self.live -= erased;
        self.range_dels.insert(start, end);
        erased
    }

    /// The byte bound given at creation.
    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// Key and value bytes of the live versions in `[start, end)` (`None`:
    /// unbounded), plus a node's overhead each. Walks the span: O(versions in it).
    pub fn approximate_span_bytes(&self, start: &[u8], end: Option<&[u8]>) -> usize {
        let mut bytes = 0;
        let mut c = Cursor::seek(self, start, Timestamp::MAX);
        while let Some(e) = c.entry(self) {
            if end.is_some_and(|end| e.key >= end) {
                break;
            }
            let value = match e.value {
                Value::Put(v) => v.len(),
                Value::Delete => 0,
            };
            bytes += e.key.len() + value + size_of::<Node>();
            c.advance(self);
        }
        bytes
    }

    /// The range tombstones recorded by [`Memtable::delete_range`].
    pub fn range_dels(&self) -> &SpanSet {
        &self.range_dels
    }

    /// The largest timestamp ever inserted (`ZERO` if none).
    pub fn max_ts(&self) -> Timestamp {
        self.max_ts
    }

    /// The smallest timestamp ever inserted (`MAX` if none).
    pub fn min_ts(&self) -> Timestamp {
        self.min_ts
    }

    /// The newest version of `key` with timestamp `<= read_ts` (a tombstone included).
    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Option<Entry<'_>> {
        let mut found = self.find(key, read_ts, None);
        while found != NIL && self.nodes[found as usize].erased && self.key(found) == key {
            found = self.link(found, 0);
        }
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

    /// Live (not erased) versions.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no live version is left.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether nothing was ever written (no version, no range tombstone).
    pub fn is_untouched(&self) -> bool {
        self.nodes.len() == 1 && self.range_dels.is_empty()
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
                assert_eq!(on_level.len(), self.nodes.len() - 1, "level 0 misses nodes");
                let live = on_level.iter().filter(|&&x| !self.nodes[x as usize].erased);
                assert_eq!(live.count(), self.live, "live count");
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

impl Memtable {
    /// The last node before `(key, ts)`, or `NIL`.
    fn find_less(&self, key: &[u8], ts: Timestamp) -> u32 {
        let mut preds = [HEAD; HEIGHT_MAX];
        self.find(key, ts, Some(&mut preds));
        if preds[0] == HEAD {
            NIL
        } else {
            preds[0]
        }
    }

    /// The last node, or `NIL`.
    fn find_last(&self) -> u32 {
        let mut x = HEAD;
        for level in (0..self.height).rev() {
            while self.link(x, level) != NIL {
                x = self.link(x, level);
            }
        }
        if x == HEAD {
            NIL
        } else {
            x
        }
    }
}

/// A position in a memtable that borrows nothing: hold it across awaits and pass
/// the memtable to each step. Valid for the memtable it came from, forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    node: u32,
}

impl Cursor {
    /// At the first live version.
    pub fn first(memtable: &Memtable) -> Self {
        Self::forward(memtable, memtable.link(HEAD, 0))
    }

    /// At the first live version at or after `(key, ts)`.
    pub fn seek(memtable: &Memtable, key: &[u8], ts: Timestamp) -> Self {
        Self::forward(memtable, memtable.find(key, ts, None))
    }

    /// At the last live version.
    pub fn last(memtable: &Memtable) -> Self {
        Self::backward(memtable, memtable.find_last())
    }

    /// At the last live version strictly before `(key, ts)`.
    pub fn seek_before(memtable: &Memtable, key: &[u8], ts: Timestamp) -> Self {
        Self::backward(memtable, memtable.find_less(key, ts))
    }

    /// Skips erased nodes forwards from `node`.
    fn forward(memtable: &Memtable, mut node: u32) -> Self {
        while node != NIL && memtable.nodes[node as usize].erased {
            node = memtable.link(node, 0);
        }
        Cursor { node }
    }

    /// Skips erased nodes backwards from `node`.
    fn backward(memtable: &Memtable, mut node: u32) -> Self {
        while node != NIL && memtable.nodes[node as usize].erased {
            let n = &memtable.nodes[node as usize];
            node = memtable.find_less(memtable.key(node), n.ts);
        }
        Cursor { node }
    }

    pub fn is_valid(&self) -> bool {
        self.node != NIL
    }

    /// The version under the cursor, if any. (It may have been erased by a range
    /// deletion since the cursor moved onto it.)
    pub fn entry<'a>(&self, memtable: &'a Memtable) -> Option<Entry<'a>> {
        self.is_valid().then(|| memtable.entry(self.node))
    }

    /// Moves to the next live version (including ones inserted since the last step).
    pub fn advance(&mut self, memtable: &Memtable) {
        if self.is_valid() {
            *self = Self::forward(memtable, memtable.link(self.node, 0));
        }
    }

    /// Moves to the previous live version; O(log n), the list has no back links.
    pub fn retreat(&mut self, memtable: &Memtable) {
        if self.is_valid() {
            let n = &memtable.nodes[self.node as usize];
            *self = Self::backward(memtable, memtable.find_less(memtable.key(self.node), n.ts));
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
