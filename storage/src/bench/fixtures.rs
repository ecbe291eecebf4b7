//! Inputs for the micro-benchmarks (`benches/benches/storage_micro.rs` and
//! `storage_callgrind.rs`), shared so both measure the same thing.
use super::key;
use crate::memtable::{Memtable, Value, MEMTABLE_BYTES_DEFAULT};
use crate::rng::SimRng;
use crate::sst::block::{Block, BlockBuilder};
use crate::sst::bloom::{key_hash, Bloom, BloomBuilder, BITS_PER_KEY_DEFAULT};
use crate::sst::RESTART_INTERVAL_DEFAULT;
use crate::timestamp::Timestamp;

/// `n` distinct 16-byte keys in random order.
pub fn random_keys(n: u64, seed: u64) -> Vec<[u8; 16]> {
    let mut rng = SimRng::new(seed);
    let mut nums: Vec<u64> = (0..n).collect();
    for i in (1..nums.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        nums.swap(i, j);
    }
    nums.into_iter().map(key).collect()
}

/// A memtable holding `keys` with 100-byte values.
pub fn memtable_with(keys: &[[u8; 16]]) -> Memtable {
    let mut m = Memtable::new(MEMTABLE_BYTES_DEFAULT, 1);
    for k in keys {
        m.insert(k, Timestamp::new(1, 0), Value::Put(&[7; 100]))
            .expect("fits");
    }
    m
}

/// Sorted versions that fill one 4 KiB data block (16-byte keys, 100-byte values).
pub fn block_versions() -> Vec<([u8; 16], Timestamp)> {
    (0..32)
        .map(|i| (key(i * 7), Timestamp::new(5, 0)))
        .collect()
}

pub fn encode_block(versions: &[([u8; 16], Timestamp)]) -> Vec<u8> {
    let mut b = BlockBuilder::new(RESTART_INTERVAL_DEFAULT);
    for (k, t) in versions {
        b.add(k, *t, Value::Put(&[7; 100]));
    }
    b.finish()
}

/// Decodes (validates) a block and walks every entry; returns the count.
pub fn decode_block(bytes: Vec<u8>) -> usize {
    let block = std::rc::Rc::new(Block::decode(bytes).expect("a valid block"));
    let mut it = crate::sst::block::BlockIter::new(block);
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    n
}

/// A filter over `n` keys and the hashes of `n` other keys to probe.
pub fn bloom_with(n: u64) -> (Bloom, Vec<u64>) {
    let mut b = BloomBuilder::new();
    for k in random_keys(n, 1) {
        b.add(&k);
    }
    let bloom = Bloom::decode(b.finish(BITS_PER_KEY_DEFAULT)).expect("a valid filter");
    let probes = (n..2 * n).map(|i| key_hash(&key(i))).collect();
    (bloom, probes)
}
