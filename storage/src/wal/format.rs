//! On-disk format of WAL records and segment names.
//!
//! A record is a fixed 64-byte header followed by its payload, little-endian:
//!
//! ```text
//! offset size field
//!      0    8 checksum   xxh3-64 of the payload, seeded by xxh3-64 of bytes 8..64
//!      8    1 format     FORMAT_V1
//!      9    1 kind       caller's record type, never 0 (0 marks padding)
//!     10    2 reserved   zero
//!     12    4 len        payload bytes
//!     16    8 segment    sequence number of the segment written to (rejects stale
//!                        records left in a recycled segment file)
//!     24    8 lsn        log sequence number, +1 per record, no gaps
//!     32    8 batch_lsn  LSN of the first record of this record's sync batch
//!     40    8 range_id   \
//!     48    8 term        } the Raft coordinates of the entry
//!     56    8 index      /
//! ```
//!
//! Records are packed back to back, may cross 4 KiB block boundaries, but a header
//! never does: when less than [`HEADER_BYTES`] remain in a block, the writer pads
//! with zeros to the block end. Every sync batch starts on a block boundary and the
//! unused rest of its last block is zero padding.
//!
//! A segment file is named `wal-<seq>-<first_lsn>.log` (20 decimal digits each); its
//! first record sits at offset 0 and carries `first_lsn`. Spare files, made ahead of
//! need, are named `wal-spare-<n>.tmp` and are not part of the log.

use super::Lsn;
use crate::disk::BLOCK_SIZE;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const FORMAT_V1: u8 = 1;
pub const HEADER_BYTES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RecordHeader {
    pub checksum: U64,
    pub format: u8,
    pub kind: u8,
    pub reserved: [u8; 2],
    pub len: U32,
    pub segment: U64,
    pub lsn: U64,
    pub batch_lsn: U64,
    pub range_id: U64,
    pub term: U64,
    pub index: U64,
}

const _: () = assert!(std::mem::size_of::<RecordHeader>() == HEADER_BYTES);
const _: () = assert!(BLOCK_SIZE.is_multiple_of(HEADER_BYTES));

impl RecordHeader {
    pub fn compute_checksum(&self, payload: &[u8]) -> u64 {
        xxh3_64_with_seed(payload, xxh3_64(&self.as_bytes()[8..]))
    }
}

/// Why the bytes at a position are not the next record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header of zeros: padding, or never written.
    Zero,
    /// Not a well-formed, checksummed record of this segment.
    Invalid,
    /// A valid record of this segment: its header and payload range.
    Valid(RecordHeader),
}

/// Parses the record at `at` of segment `segment` whose bytes are `buf`.
pub fn parse(buf: &[u8], at: usize, segment: u64, payload_max: usize) -> Parsed {
    let Some(bytes) = buf.get(at..at + HEADER_BYTES) else {
        return Parsed::Invalid;
    };
    if bytes.iter().all(|&b| b == 0) {
        return Parsed::Zero;
    }
    let Ok(h) = RecordHeader::read_from_bytes(bytes) else {
        return Parsed::Invalid;
    };
    let len = h.len.get() as usize;
    let well_formed = h.format == FORMAT_V1
        && h.kind != 0
        && h.reserved == [0, 0]
        && len <= payload_max
        && h.segment.get() == segment
        && h.batch_lsn.get() <= h.lsn.get();
    if !well_formed {
        return Parsed::Invalid;
    }
    let payload_at = at + HEADER_BYTES;
    match buf.get(payload_at..payload_at + len) {
        Some(payload) if h.compute_checksum(payload) == h.checksum.get() => Parsed::Valid(h),
        _ => Parsed::Invalid,
    }
}

/// The file name of segment `seq` whose first record is `first_lsn`.
pub fn segment_name(seq: u64, first_lsn: Lsn) -> String {
    format!("wal-{seq:020}-{:020}.log", first_lsn.0)
}

/// Inverse of [`segment_name`]; `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<(u64, Lsn)> {
    let middle = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    let (seq, first) = middle.split_once('-')?;
    if seq.len() != 20 || first.len() != 20 {
        return None;
    }
    Some((seq.parse().ok()?, Lsn(first.parse().ok()?)))
}

/// The file name of a spare segment file: created ahead of need, not yet part of
/// the log, renamed to a segment name when the log rolls.
pub fn spare_name(n: u64) -> String {
    format!("wal-spare-{n:020}.tmp")
}

/// Inverse of [`spare_name`].
pub fn parse_spare_name(name: &str) -> Option<u64> {
    let n = name.strip_prefix("wal-spare-")?.strip_suffix(".tmp")?;
    if n.len() != 20 {
        return None;
    }
    n.parse().ok()
}

pub fn block_floor(offset: usize) -> usize {
    offset / BLOCK_SIZE * BLOCK_SIZE
}

pub fn block_ceil(offset: usize) -> usize {
    offset.next_multiple_of(BLOCK_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let name = segment_name(7, Lsn(12345));
        assert_eq!(name, "wal-00000000000000000007-00000000000000012345.log");
        assert_eq!(parse_segment_name(&name), Some((7, Lsn(12345))));
        assert_eq!(parse_segment_name("probe"), None);
        assert_eq!(parse_segment_name("wal-1-2.log"), None);
        assert_eq!(parse_spare_name(&spare_name(3)), Some(3));
        assert_eq!(parse_segment_name(&spare_name(3)), None);
    }

    #[test]
    fn parse_rejects_damage() {
        let payload = b"hello";
        let mut h = RecordHeader::read_from_bytes(&[0u8; HEADER_BYTES][..]).unwrap();
        h.format = FORMAT_V1;
        h.kind = 3;
        h.len = U32::new(payload.len() as u32);
        h.segment = U64::new(9);
        h.lsn = U64::new(4);
        h.batch_lsn = U64::new(4);
        h.checksum = U64::new(h.compute_checksum(payload));
        let mut buf = h.as_bytes().to_vec();
        buf.extend_from_slice(payload);
        assert!(matches!(parse(&buf, 0, 9, 100), Parsed::Valid(_)));
        assert_eq!(parse(&buf, 0, 8, 100), Parsed::Invalid, "stale segment");
        assert_eq!(parse(&buf, 0, 9, 4), Parsed::Invalid, "too long");
        assert_eq!(
            parse(&buf[..buf.len() - 1], 0, 9, 100),
            Parsed::Invalid,
            "cut"
        );
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(parse(&bad, 0, 9, 100), Parsed::Invalid, "bit {bit}");
        }
        assert_eq!(parse(&[0u8; HEADER_BYTES], 0, 9, 100), Parsed::Zero);
    }
}
