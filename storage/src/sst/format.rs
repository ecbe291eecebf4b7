//! Fixed-layout parts of an SSTable, read and written with zerocopy: the header
//! page, the footer and block handles. All integers are little-endian.

use crate::disk::BLOCK_SIZE;
use crate::timestamp::Timestamp;
use xxhash_rust::xxh3::xxh3_64;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// "TLRSST01" read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TLRSST01");
pub const FORMAT_V1: u32 = 1;
/// The header occupies the whole first page, so data blocks start page-aligned.
pub const HEADER_PAGE_BYTES: usize = BLOCK_SIZE;
pub const HEADER_BYTES: usize = 32;
pub const FOOTER_BYTES: usize = 144;
pub const HANDLE_BYTES: usize = 24;

/// Where a block lives in its file, and the xxh3-64 of its bytes. Every block is
/// verified against its handle's checksum when read.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct BlockHandle {
    pub offset: U64,
    pub len: U32,
    pub reserved: U32,
    pub checksum: U64,
}

const _: () = assert!(std::mem::size_of::<BlockHandle>() == HANDLE_BYTES);

impl BlockHandle {
    pub fn new(offset: u64, bytes: &[u8]) -> Self {
        BlockHandle {
            offset: U64::new(offset),
            len: U32::new(u32::try_from(bytes.len()).expect("block bounded by BLOCK_BYTES_MAX")),
            reserved: U32::new(0),
            checksum: U64::new(xxh3_64(bytes)),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset.get()
    }

    pub fn len(&self) -> usize {
        self.len.get() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn end(&self) -> u64 {
        self.offset() + self.len() as u64
    }

    pub fn verify(&self, bytes: &[u8]) -> bool {
        bytes.len() == self.len() && xxh3_64(bytes) == self.checksum.get()
    }
}

/// The first bytes of the header page (the rest of the page is zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Header {
    pub magic: U64,
    pub format: U32,
    pub reserved: U32,
    pub file_number: U64,
    /// xxh3-64 of the bytes before this field.
    pub checksum: U64,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_BYTES);

impl Header {
    pub fn new(file_number: u64) -> Self {
        let mut h = Header {
            magic: U64::new(MAGIC),
            format: U32::new(FORMAT_V1),
            reserved: U32::new(0),
            file_number: U64::new(file_number),
            checksum: U64::new(0),
        };
        h.checksum = U64::new(xxh3_64(&h.as_bytes()[..HEADER_BYTES - 8]));
        h
    }

    pub fn is_valid_for(&self, file_number: u64) -> bool {
        self.magic.get() == MAGIC
            && self.format.get() == FORMAT_V1
            && self.file_number.get() == file_number
            && self.checksum.get() == xxh3_64(&self.as_bytes()[..HEADER_BYTES - 8])
    }
}

/// The last [`FOOTER_BYTES`] of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Footer {
    pub magic: U64,
    pub format: U32,
    pub reserved: U32,
    pub file_number: U64,
    /// Point entries (values and tombstones).
    pub entries: U64,
    /// Point tombstones among them.
    pub tombstones: U64,
    pub min_ts_wall: U64,
    pub max_ts_wall: U64,
    pub min_ts_logical: U32,
    pub max_ts_logical: U32,
    pub index: BlockHandle,
    pub bloom: BlockHandle,
    pub range_dels: BlockHandle,
    /// xxh3-64 of the bytes before this field.
    pub checksum: U64,
}

const _: () = assert!(std::mem::size_of::<Footer>() == FOOTER_BYTES);
const _: () = assert!(FOOTER_BYTES <= BLOCK_SIZE && HEADER_BYTES <= HEADER_PAGE_BYTES);

impl Footer {
    pub fn seal(&mut self) {
        self.checksum = U64::new(xxh3_64(&self.as_bytes()[..FOOTER_BYTES - 8]));
    }

    pub fn is_valid_for(&self, file_number: u64) -> bool {
        self.magic.get() == MAGIC
            && self.format.get() == FORMAT_V1
            && self.reserved.get() == 0
            && self.file_number.get() == file_number
            && self.checksum.get() == xxh3_64(&self.as_bytes()[..FOOTER_BYTES - 8])
    }

    pub fn min_ts(&self) -> Timestamp {
        Timestamp::new(self.min_ts_wall.get(), self.min_ts_logical.get())
    }

    pub fn max_ts(&self) -> Timestamp {
        Timestamp::new(self.max_ts_wall.get(), self.max_ts_logical.get())
    }
}

/// The file name of SSTable `number`.
pub fn table_name(number: u64) -> String {
    format!("{number:020}.sst")
}

/// Inverse of [`table_name`].
pub fn parse_table_name(name: &str) -> Option<u64> {
    let n = name.strip_suffix(".sst")?;
    (n.len() == 20).then(|| n.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_seals() {
        assert_eq!(parse_table_name(&table_name(42)), Some(42));
        assert_eq!(parse_table_name("42.sst"), None);
        assert!(Header::new(7).is_valid_for(7));
        assert!(!Header::new(7).is_valid_for(8));
        let mut f = Footer::read_from_bytes(&[0u8; FOOTER_BYTES][..]).unwrap();
        f.magic = U64::new(MAGIC);
        f.format = U32::new(FORMAT_V1);
        f.file_number = U64::new(3);
        f.seal();
        assert!(f.is_valid_for(3));
        let mut bytes = f.as_bytes().to_vec();
        bytes[40] ^= 1;
        assert!(!Footer::read_from_bytes(&bytes[..]).unwrap().is_valid_for(3));
    }
}
