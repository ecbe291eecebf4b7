//! A bloom filter over the user keys of one SSTable (not over versions: a point
//! read asks "does this file hold any version of key k").
//!
//! Hashing: one xxh3-64 of the key, split into two 32-bit halves `h1`, `h2`; probe
//! `i` sets bit `(h1 + i * h2) mod bits` (Kirsch-Mitzenmacher double hashing). The
//! caller hashes a key once with [`key_hash`] and probes every table with it.
//!
//! ```text
//! filter := bit array [bytes] | probes u8
//! ```
//! With 10 bits per key and 7 probes the false-positive rate is about 0.8 %.

use xxhash_rust::xxh3::xxh3_64;

/// Default bits of filter per distinct key.
pub const BITS_PER_KEY_DEFAULT: usize = 10;
/// Most probes per key (more only costs time).
const PROBES_MAX: usize = 30;

/// The hash every filter is probed with.
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Collects key hashes, then builds the filter.
#[derive(Debug, Default)]
pub struct BloomBuilder {
    hashes: Vec<u64>,
}

impl BloomBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key (each distinct key once; duplicates only waste space).
    pub fn add(&mut self, key: &[u8]) {
        self.hashes.push(key_hash(key));
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn finish(&self, bits_per_key: usize) -> Vec<u8> {
        let probes =
            ((bits_per_key as f64 * std::f64::consts::LN_2).round() as usize).clamp(1, PROBES_MAX);
        let bits = (self.hashes.len() * bits_per_key).max(64);
        let bytes = bits.div_ceil(8);
        let bits = bytes * 8;
        let mut out = vec![0u8; bytes + 1];
        for &h in &self.hashes {
            for bit in probe_bits(h, probes, bits) {
                out[bit / 8] |= 1 << (bit % 8);
            }
        }
        out[bytes] = probes as u8;
        out
    }
}

fn probe_bits(hash: u64, probes: usize, bits: usize) -> impl Iterator<Item = usize> {
    let h1 = hash as u32;
    let h2 = (hash >> 32) as u32 | 1;
    (0..probes as u32).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) as usize) % bits)
}

/// A filter as read from a table.
#[derive(Debug, Clone)]
pub struct Bloom {
    bits: Vec<u8>,
    probes: usize,
}

impl Bloom {
    /// Parses a filter block; `None` if malformed. An empty block means "no
    /// filter": everything may be present.
    pub fn decode(mut block: Vec<u8>) -> Option<Bloom> {
        if block.is_empty() {
            return Some(Bloom {
                bits: Vec::new(),
                probes: 0,
            });
        }
        let probes = usize::from(block.pop()?);
        if !(1..=PROBES_MAX).contains(&probes) || block.is_empty() {
            return None;
        }
        Some(Bloom {
            bits: block,
            probes,
        })
    }

    /// False only if no key with this hash was added.
    pub fn may_contain(&self, hash: u64) -> bool {
        if self.bits.is_empty() {
            return true;
        }
        let bits = self.bits.len() * 8;
        probe_bits(hash, self.probes, bits).all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }

    pub fn bytes(&self) -> usize {
        self.bits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut b = BloomBuilder::new();
        for i in 0..10_000u32 {
            b.add(format!("key{i}").as_bytes());
        }
        let bloom = Bloom::decode(b.finish(BITS_PER_KEY_DEFAULT)).unwrap();
        for i in 0..10_000u32 {
            assert!(bloom.may_contain(key_hash(format!("key{i}").as_bytes())));
        }
        let fp = (0..10_000u32)
            .filter(|i| bloom.may_contain(key_hash(format!("other{i}").as_bytes())))
            .count();
        assert!(fp < 200, "false positives {fp} / 10000");
        assert!(Bloom::decode(vec![0, 0, 99]).is_none(), "bad probe count");
        assert!(Bloom::decode(Vec::new()).unwrap().may_contain(1));
        let empty = Bloom::decode(BloomBuilder::new().finish(10)).unwrap();
        assert!(!empty.may_contain(key_hash(b"x")));
    }
}
