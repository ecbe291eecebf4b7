//! Blocks: sorted runs of versions with prefix-compressed keys and restart points.
//!
//! ```text
//! entry   := shared varint | unshared varint | value_len varint | kind u8 | ts [12]
//!            | key suffix [unshared] | value [value_len]
//! block   := entry* | restart u32le * n | n u32le
//! ```
//! Entries are ordered by (key ascending, timestamp descending), strictly. `shared`
//! is the length of the prefix shared with the previous entry's key; every
//! `restart_interval`-th entry is a restart point with `shared = 0`, so a seek
//! binary-searches the restarts and then scans at most one interval. `kind` is
//! [`KIND_PUT`] or [`KIND_DELETE`] (a tombstone, `value_len = 0`).
//!
//! [`Block::decode`] validates a block completely (every entry in bounds, keys
//! strictly ordered, restarts on entry boundaries) before anyone iterates it, so
//! iteration itself can treat a malformed entry as a broken invariant. The block's
//! checksum was already verified against its handle.

use crate::codec::{put_varint, Reader};
use crate::memtable::Value;
use crate::timestamp::{Timestamp, TIMESTAMP_BYTES};
use std::cmp::Ordering;
use std::rc::Rc;

pub const KIND_PUT: u8 = 0;
pub const KIND_DELETE: u8 = 1;
/// Largest block, in bytes (a single huge entry makes a block of its own).
pub const BLOCK_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Order of versions: key ascending, then timestamp descending.
pub fn cmp_versions(k1: &[u8], t1: Timestamp, k2: &[u8], t2: Timestamp) -> Ordering {
    k1.cmp(k2).then_with(|| t2.cmp(&t1))
}

/// Builds one block in memory.
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    last_ts: Timestamp,
    entries: usize,
}

impl BlockBuilder {
    pub fn new(restart_interval: usize) -> Self {
        assert!(restart_interval > 0);
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            interval: restart_interval,
            since_restart: 0,
            last_key: Vec::new(),
            last_ts: Timestamp::ZERO,
            entries: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    pub fn last_ts(&self) -> Timestamp {
        self.last_ts
    }

    /// The finished size of the block as it stands.
    pub fn size(&self) -> usize {
        self.buf.len() + 4 * (self.restarts.len() + 1)
    }

    /// An upper bound of the finished size after adding an entry of this shape.
    pub fn size_after(&self, key_bytes: usize, value_bytes: usize) -> usize {
        self.size() + 3 * 10 + 1 + TIMESTAMP_BYTES + key_bytes + value_bytes + 4
    }

    /// Appends a version; it must sort strictly after the previous one.
    pub fn add(&mut self, key: &[u8], ts: Timestamp, value: Value<'_>) {
        if self.entries > 0 {
            assert_eq!(
                cmp_versions(&self.last_key, self.last_ts, key, ts),
                Ordering::Less,
                "block entries out of order"
            );
        }
        let shared = if self.since_restart == 0 || self.since_restart == self.interval {
            self.restarts
                .push(u32::try_from(self.buf.len()).expect("block bounded"));
            self.since_restart = 0;
            0
        } else {
            common_prefix(&self.last_key, key)
        };
        let (kind, bytes) = match value {
            Value::Put(v) => (KIND_PUT, v),
            Value::Delete => (KIND_DELETE, &[][..]),
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, bytes.len() as u64);
        self.buf.push(kind);
        self.buf.extend_from_slice(&ts.to_bytes());
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(bytes);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.last_ts = ts;
        self.since_restart += 1;
        self.entries += 1;
    }

    /// The encoded block; the builder is reset for the next one.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        let n = u32::try_from(self.restarts.len()).expect("block bounded");
        out.extend_from_slice(&n.to_le_bytes());
        self.restarts.clear();
        self.since_restart = 0;
        self.entries = 0;
        out
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A decoded, validated block.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    /// Offset of the restart array (= end of the entries).
    entries_end: usize,
    restarts: usize,
}

/// One decoded entry header: where its parts are.
#[derive(Clone, Copy, Debug)]
struct Raw {
    shared: usize,
    suffix: (usize, usize),
    value: (usize, usize),
    kind: u8,
    ts: Timestamp,
    next: usize,
}

impl Block {
    /// Validates `data` as a block; `None` if it is malformed.
    pub fn decode(data: Vec<u8>) -> Option<Block> {
        let len = data.len();
        let n = u32::from_le_bytes(data.get(len.checked_sub(4)?..)?.try_into().ok()?) as usize;
        let entries_end = len.checked_sub(4)?.checked_sub(n.checked_mul(4)?)?;
        let block = Block {
            data,
            entries_end,
            restarts: n,
        };
        block.validate()?;
        Some(block)
    }

    /// The bytes held (for cache accounting).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries_end == 0
    }

    fn restart(&self, i: usize) -> usize {
        let at = self.entries_end + 4 * i;
        u32::from_le_bytes(self.data[at..at + 4].try_into().expect("4 bytes")) as usize
    }

    fn parse(&self, pos: usize) -> Option<Raw> {
        let mut r = Reader::at(&self.data[..self.entries_end], pos);
        let shared = r.len(BLOCK_BYTES_MAX)?;
        let unshared = r.len(BLOCK_BYTES_MAX)?;
        let value_len = r.len(BLOCK_BYTES_MAX)?;
        let kind = r.u8()?;
        let ts = Timestamp::decode(r.take(TIMESTAMP_BYTES)?)?;
        let suffix_at = r.pos();
        r.take(unshared)?;
        let value_at = r.pos();
        r.take(value_len)?;
        Some(Raw {
            shared,
            suffix: (suffix_at, unshared),
            value: (value_at, value_len),
            kind,
            ts,
            next: r.pos(),
        })
    }

    /// Parses an entry of a validated block.
    fn raw(&self, pos: usize) -> Raw {
        self.parse(pos).expect("entry of a validated block")
    }

    fn validate(&self) -> Option<()> {
        let mut pos = 0;
        let mut key: Vec<u8> = Vec::new();
        let mut prev_key: Vec<u8> = Vec::new();
        let mut prev_ts = Timestamp::ZERO;
        let mut restart = 0;
        let mut first = true;
        while pos < self.entries_end {
            let raw = self.parse(pos)?;
            let is_restart = restart < self.restarts && self.restart(restart) == pos;
            if is_restart {
                restart += 1;
            }
            let bad_kind = raw.kind > KIND_DELETE || (raw.kind == KIND_DELETE && raw.value.1 > 0);
            if raw.shared > key.len()
                || (is_restart && raw.shared > 0)
                || (first && !is_restart)
                || bad_kind
            {
                return None;
            }
            prev_key.clear();
            prev_key.extend_from_slice(&key);
            key.truncate(raw.shared);
            key.extend_from_slice(&self.data[raw.suffix.0..raw.suffix.0 + raw.suffix.1]);
            if !first && cmp_versions(&prev_key, prev_ts, &key, raw.ts) != Ordering::Less {
                return None;
            }
            prev_ts = raw.ts;
            first = false;
            pos = raw.next;
        }
        // Every restart must have been matched, in order, on an entry boundary.
        (pos == self.entries_end && restart == self.restarts).then_some(())
    }
}

/// A cursor over one block: seek, next and prev. Holds the block alive.
#[derive(Debug)]
pub struct BlockIter {
    block: Rc<Block>,
    /// Offset of the current entry; `entries_end` when past the end.
    pos: usize,
    valid: bool,
    key: Vec<u8>,
    raw: Option<Raw>,
}

impl BlockIter {
    pub fn new(block: Rc<Block>) -> Self {
        let end = block.entries_end;
        BlockIter {
            block,
            pos: end,
            valid: false,
            key: Vec::new(),
            raw: None,
        }
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    pub fn key(&self) -> &[u8] {
        debug_assert!(self.valid);
        &self.key
    }

    pub fn ts(&self) -> Timestamp {
        self.current().ts
    }

    pub fn value(&self) -> Value<'_> {
        let raw = self.current();
        if raw.kind == KIND_DELETE {
            Value::Delete
        } else {
            Value::Put(&self.block.data[raw.value.0..raw.value.0 + raw.value.1])
        }
    }

    fn current(&self) -> Raw {
        assert!(self.valid, "block iterator not positioned");
        self.raw.expect("valid iterator has an entry")
    }

    /// Decodes the entry at `pos`, given that `key` holds the previous key.
    fn load(&mut self, pos: usize) {
        if pos >= self.block.entries_end {
            self.valid = false;
            self.pos = self.block.entries_end;
            self.raw = None;
            return;
        }
        let raw = self.block.raw(pos);
        self.key.truncate(raw.shared);
        self.key
            .extend_from_slice(&self.block.data[raw.suffix.0..raw.suffix.0 + raw.suffix.1]);
        self.pos = pos;
        self.raw = Some(raw);
        self.valid = true;
    }

    fn load_restart(&mut self, i: usize) {
        self.key.clear();
        self.load(self.block.restart(i));
    }

    pub fn seek_to_first(&mut self) {
        if self.block.restarts == 0 {
            self.load(self.block.entries_end);
        } else {
            self.load_restart(0);
        }
    }

    pub fn seek_to_last(&mut self) {
        if self.block.restarts == 0 {
            self.load(self.block.entries_end);
            return;
        }
        self.load_restart(self.block.restarts - 1);
        while self.current().next < self.block.entries_end {
            let next = self.current().next;
            self.load(next);
        }
    }

    pub fn next(&mut self) {
        let next = self.current().next;
        self.load(next);
    }

    /// Moves to the previous entry (invalid before the first).
    pub fn prev(&mut self) {
        let here = self.pos;
        assert!(self.valid, "block iterator not positioned");
        // The last restart before the current entry.
        let r = (0..self.block.restarts)
            .rev()
            .find(|&i| self.block.restart(i) < here);
        let Some(r) = r else {
            self.valid = false;
            self.raw = None;
            return;
        };
        self.load_restart(r);
        while self.current().next < here {
            let next = self.current().next;
            self.load(next);
        }
    }

    /// Positions at the first entry at or after `(key, ts)`.
    pub fn seek(&mut self, key: &[u8], ts: Timestamp) {
        // Last restart whose entry sorts before the target.
        let (mut lo, mut hi) = (0, self.block.restarts);
        while lo < hi {
            let mid = (lo + hi) / 2;
            self.load_restart(mid);
            if cmp_versions(&self.key, self.ts(), key, ts) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            self.seek_to_first();
        } else {
            self.load_restart(lo - 1);
        }
        while self.valid && cmp_versions(&self.key, self.ts(), key, ts) == Ordering::Less {
            self.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;

    type Version = (Vec<u8>, Timestamp, Option<Vec<u8>>);

    fn random_versions(rng: &mut SimRng, n: usize) -> Vec<Version> {
        let mut v: Vec<Version> = (0..n)
            .map(|_| {
                let key: Vec<u8> = (0..rng.below(6))
                    .map(|_| b'a' + rng.below(3) as u8)
                    .collect();
                let ts = Timestamp::new(rng.below(4), rng.below(3) as u32);
                let value = rng
                    .chance(80)
                    .then(|| vec![rng.below(256) as u8; rng.below(30) as usize]);
                (key, ts, value)
            })
            .collect();
        v.sort_by(|a, b| cmp_versions(&a.0, a.1, &b.0, b.1));
        v.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        v
    }

    fn build(versions: &[Version], interval: usize) -> Vec<u8> {
        let mut b = BlockBuilder::new(interval);
        for (k, t, v) in versions {
            b.add(k, *t, v.as_deref().map_or(Value::Delete, Value::Put));
        }
        let size = b.size();
        let out = b.finish();
        assert_eq!(out.len(), size);
        out
    }

    fn at(it: &BlockIter) -> Version {
        let v = match it.value() {
            Value::Put(v) => Some(v.to_vec()),
            Value::Delete => None,
        };
        (it.key().to_vec(), it.ts(), v)
    }

    #[test]
    fn round_trip_seek_next_prev() {
        for seed in 0..150 {
            let mut rng = SimRng::new(seed);
            let n = rng.below(80) as usize;
            let versions = random_versions(&mut rng, n);
            let interval = rng.range(1, 5) as usize;
            let block = Rc::new(Block::decode(build(&versions, interval)).expect("valid"));
            let mut it = BlockIter::new(Rc::clone(&block));
            it.seek_to_first();
            let mut all = Vec::new();
            while it.valid() {
                all.push(at(&it));
                it.next();
            }
            assert_eq!(all, versions, "seed {seed}");
            it.seek_to_last();
            let mut back = Vec::new();
            while it.valid() {
                back.push(at(&it));
                it.prev();
            }
            back.reverse();
            assert_eq!(back, versions, "seed {seed}: backwards");
            for _ in 0..30 {
                let key: Vec<u8> = (0..rng.below(6))
                    .map(|_| b'a' + rng.below(3) as u8)
                    .collect();
                let ts = Timestamp::new(rng.below(4), rng.below(3) as u32);
                it.seek(&key, ts);
                let want = versions
                    .iter()
                    .find(|v| cmp_versions(&v.0, v.1, &key, ts) != Ordering::Less);
                assert_eq!(
                    it.valid().then(|| at(&it)).as_ref(),
                    want,
                    "seed {seed}: seek"
                );
            }
        }
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let mut rng = SimRng::new(5);
        let versions = random_versions(&mut rng, 40);
        let good = build(&versions, 4);
        assert!(Block::decode(good.clone()).is_some());
        assert!(Block::decode(Vec::new()).is_none());
        assert!(
            Block::decode(vec![9, 0, 0, 0]).is_none(),
            "restart count past the data"
        );
        // Checksums catch damage first; decode must still never panic on it.
        for i in 0..good.len() {
            for bit in [0, 3, 7] {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                if let Some(b) = Block::decode(bad) {
                    let mut it = BlockIter::new(Rc::new(b));
                    it.seek_to_first();
                    while it.valid() {
                        it.next();
                    }
                }
            }
        }
        let empty = BlockBuilder::new(4).finish();
        let block = Rc::new(Block::decode(empty).expect("empty block"));
        assert!(block.is_empty());
        let mut it = BlockIter::new(block);
        it.seek(b"x", Timestamp::MAX);
        assert!(!it.valid());
    }
}
