//! Random generators shared by the workloads: YCSB's zipfian, scrambled
//! zipfian and latest distributions, TPC-C's NURand and strings.

use rand::rngs::SmallRng;
use rand::Rng;

/// YCSB's zipfian constant.
pub const ZIPFIAN_THETA: f64 = 0.99;

/// Zipfian over `[0, n)`, item 0 the most popular (Gray et al., "Quickly
/// generating billion-record synthetic databases", as YCSB does it). The item
/// count may grow; zeta is then extended incrementally.
#[derive(Clone, Debug)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zeta2: f64,
    zetan: f64,
    eta: f64,
}

fn zeta(from: u64, to: u64, theta: f64, mut sum: f64) -> f64 {
    for i in from..to {
        sum += 1.0 / ((i + 1) as f64).powf(theta);
    }
    sum
}

impl Zipfian {
    pub fn new(items: u64) -> Self {
        assert!(items > 0, "zipfian over an empty range");
        let theta = ZIPFIAN_THETA;
        let zeta2 = zeta(0, 2, theta, 0.0);
        let zetan = zeta(0, items, theta, 0.0);
        let mut z = Zipfian {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2,
            zetan,
            eta: 0.0,
        };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, n: u64) -> f64 {
        (1.0 - (2.0 / n as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan)
    }

    /// A value in `[0, items)`; `items` may have grown since the last call.
    pub fn next(&mut self, rng: &mut SmallRng, items: u64) -> u64 {
        if items > self.items {
            self.zetan = zeta(self.items, items, self.theta, self.zetan);
            self.items = items;
            self.eta = self.eta_for(items);
        }
        let n = self.items;
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(n - 1);
        }
        let v = (n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(n - 1)
    }
}

/// FNV-1a over the eight little-endian bytes of `v`, as YCSB hashes keys.
pub fn fnv64(v: u64) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for b in v.to_le_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01B3);
    }
    hash
}

/// Request distribution over existing records.
#[derive(Clone, Debug)]
pub enum KeyChooser {
    Uniform,
    /// Zipfian with popular items scattered over the keyspace.
    ScrambledZipfian(Zipfian),
    /// Zipfian anchored at the most recently inserted record.
    Latest(Zipfian),
}

impl KeyChooser {
    /// A record number in `[0, records)`.
    pub fn next(&mut self, rng: &mut SmallRng, records: u64) -> u64 {
        match self {
            KeyChooser::Uniform => rng.random_range(0..records),
            KeyChooser::ScrambledZipfian(z) => fnv64(z.next(rng, records)) % records,
            KeyChooser::Latest(z) => records - 1 - z.next(rng, records),
        }
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random alphanumeric string of exactly `len` characters.
pub fn astring_exact(rng: &mut SmallRng, len: usize) -> String {
    (0..len)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

/// TPC-C a-string: random alphanumeric, length in `[min, max]`.
pub fn astring(rng: &mut SmallRng, min: usize, max: usize) -> String {
    let len = rng.random_range(min..=max);
    astring_exact(rng, len)
}

/// TPC-C n-string: random digits, length in `[min, max]`.
pub fn nstring(rng: &mut SmallRng, min: usize, max: usize) -> String {
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// TPC-C non-uniform random: `NURand(A, x, y)` with run-time constant `c`.
pub fn nurand(rng: &mut SmallRng, a: u64, x: u64, y: u64, c: u64) -> u64 {
    (((rng.random_range(0..=a) | rng.random_range(x..=y)) + c) % (y - x + 1)) + x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipfian_stays_in_range_and_is_skewed() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut z = Zipfian::new(1000);
        let mut hits = vec![0u32; 1000];
        for _ in 0..100_000 {
            hits[z.next(&mut rng, 1000) as usize] += 1;
        }
        assert!(hits[0] > hits[10] && hits[10] > hits[900]);
        // Growing the item count keeps values in range.
        for _ in 0..1000 {
            assert!(z.next(&mut rng, 2000) < 2000);
        }
    }

    #[test]
    fn latest_prefers_recent_records() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut k = KeyChooser::Latest(Zipfian::new(100));
        let recent = (0..10_000).filter(|_| k.next(&mut rng, 100) >= 90).count();
        assert!(recent > 5_000, "{recent}");
    }

    #[test]
    fn nurand_stays_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let v = nurand(&mut rng, 1023, 1, 3000, 259);
            assert!((1..=3000).contains(&v));
        }
    }
}
