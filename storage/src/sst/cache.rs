//! The block cache: decoded, verified blocks of every table of one shard, keyed by
//! (file number, block offset), evicted least-recently-used beyond a byte budget.
//!
//! Shard-local and lock-free by construction: the engine owns it in a `RefCell`
//! and borrows it only between awaits. File numbers are never reused, so entries
//! of a deleted table are never hit again and simply age out.

use super::block::Block;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Default budget, in bytes.
pub const BLOCK_CACHE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

type Key = (u64, u64);

#[derive(Debug)]
pub struct BlockCache {
    budget: usize,
    used: usize,
    map: HashMap<Key, (Rc<Block>, u64)>,
    /// Last-use tick -> key; the first entry is the least recently used.
    lru: BTreeMap<u64, Key>,
    tick: u64,
    hits: u64,
    misses: u64,
}

impl BlockCache {
    pub fn new(budget_bytes: usize) -> Self {
        BlockCache {
            budget: budget_bytes,
            used: 0,
            map: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            hits: 0,
            misses: 0,
        }
    }

    pub fn get(&mut self, file: u64, offset: u64) -> Option<Rc<Block>> {
        self.tick += 1;
        let tick = self.tick;
        let Some((block, last)) = self.map.get_mut(&(file, offset)) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.lru.remove(last);
        *last = tick;
        self.lru.insert(tick, (file, offset));
        Some(Rc::clone(block))
    }

    /// Caches a block (not if it alone exceeds the budget), evicting as needed.
    pub fn insert(&mut self, file: u64, offset: u64, block: Rc<Block>) {
        let bytes = block.bytes();
        if bytes > self.budget {
            return;
        }
        self.tick += 1;
        if let Some((old, last)) = self.map.insert((file, offset), (block, self.tick)) {
            self.used -= old.bytes();
            self.lru.remove(&last);
        }
        self.lru.insert(self.tick, (file, offset));
        self.used += bytes;
        while self.used > self.budget {
            let (_, key) = self.lru.pop_first().expect("used > 0 implies an entry");
            let (old, _) = self.map.remove(&key).expect("lru and map agree");
            self.used -= old.bytes();
        }
        debug_assert_eq!(self.map.len(), self.lru.len());
    }

    pub fn used_bytes(&self) -> usize {
        self.used
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::Value;
    use crate::sst::block::BlockBuilder;
    use crate::timestamp::Timestamp;

    fn block(n: usize) -> Rc<Block> {
        let mut b = BlockBuilder::new(4);
        b.add(&vec![7; n], Timestamp::ZERO, Value::Delete);
        Rc::new(Block::decode(b.finish()).unwrap())
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let one = block(100).bytes();
        let mut c = BlockCache::new(3 * one);
        for i in 0..3 {
            c.insert(1, i, block(100));
        }
        assert!(c.get(1, 0).is_some(), "touch 0: 1 is now the oldest");
        c.insert(1, 3, block(100));
        assert!(c.get(1, 1).is_none());
        assert!(c.get(1, 0).is_some() && c.get(1, 2).is_some() && c.get(1, 3).is_some());
        assert!(c.used_bytes() <= 3 * one);
        c.insert(2, 0, block(10 * one));
        assert!(c.get(2, 0).is_none(), "bigger than the budget: not cached");
        c.insert(1, 3, block(100));
        assert_eq!(c.used_bytes(), 3 * one, "replacing does not double count");
        assert_eq!(c.stats().0, 4);
    }
}
