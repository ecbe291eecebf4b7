//! [`Timestamp`]: the MVCC version timestamp of every entry in the engine.
//!
//! The same shape as the hybrid-logical-clock timestamp of `engine/kv`
//! (`wall_nanos`, `logical`), ordered lexicographically, so the transaction
//! layer converts field by field. The storage crate cannot depend on `engine`
//! (dependencies point `kv -> storage`), hence its own definition.
//!
//! On disk (SSTables, WAL batches) a timestamp is 12 bytes: the wall part then
//! the logical part, both big-endian, so that byte order equals timestamp order.

use std::fmt;

/// Bytes of an encoded [`Timestamp`].
pub const TIMESTAMP_BYTES: usize = 12;

/// A version timestamp, ordered by `(wall_nanos, logical)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Nanoseconds since the Unix epoch (physical component).
    pub wall_nanos: u64,
    /// Orders versions sharing a wall time.
    pub logical: u32,
}

impl Timestamp {
    /// The smallest timestamp. Unversioned records (e.g. lock records) live here.
    pub const ZERO: Timestamp = Timestamp::new(0, 0);
    /// The largest timestamp: a read at `MAX` sees the newest version of a key.
    pub const MAX: Timestamp = Timestamp::new(u64::MAX, u32::MAX);

    pub const fn new(wall_nanos: u64, logical: u32) -> Timestamp {
        Timestamp {
            wall_nanos,
            logical,
        }
    }

    /// The 12-byte big-endian encoding (byte order = timestamp order).
    pub fn to_bytes(self) -> [u8; TIMESTAMP_BYTES] {
        let mut out = [0; TIMESTAMP_BYTES];
        out[..8].copy_from_slice(&self.wall_nanos.to_be_bytes());
        out[8..].copy_from_slice(&self.logical.to_be_bytes());
        out
    }

    /// Inverse of [`Timestamp::to_bytes`].
    pub fn from_bytes(bytes: [u8; TIMESTAMP_BYTES]) -> Timestamp {
        let (wall, logical) = bytes.split_at(8);
        Timestamp {
            wall_nanos: u64::from_be_bytes(wall.try_into().expect("8 bytes")),
            logical: u32::from_be_bytes(logical.try_into().expect("4 bytes")),
        }
    }

    /// Decodes the first 12 bytes of `bytes`; `None` if there are fewer.
    pub fn decode(bytes: &[u8]) -> Option<Timestamp> {
        let head: [u8; TIMESTAMP_BYTES] = bytes.get(..TIMESTAMP_BYTES)?.try_into().ok()?;
        Some(Timestamp::from_bytes(head))
    }
}

impl fmt::Display for Timestamp {
    /// `wall,logical`, e.g. `1700000000000000123,4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.wall_nanos, self.logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_encoding_agree() {
        let ts = [
            Timestamp::ZERO,
            Timestamp::new(0, 1),
            Timestamp::new(1, 0),
            Timestamp::new(1, u32::MAX),
            Timestamp::new(u64::MAX - 1, 7),
            Timestamp::MAX,
        ];
        for a in ts {
            assert_eq!(Timestamp::from_bytes(a.to_bytes()), a);
            assert_eq!(Timestamp::decode(&a.to_bytes()), Some(a));
            for b in ts {
                assert_eq!(a.cmp(&b), a.to_bytes().cmp(&b.to_bytes()), "{a} vs {b}");
            }
        }
        assert_eq!(Timestamp::decode(&[0; 11]), None);
    }
}
