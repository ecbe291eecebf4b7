//! [`TableBuilder`]: streams sorted versions into a new SSTable file.
//!
//! Output is buffered and written in page-aligned chunks of at most
//! [`WRITE_CHUNK_BYTES`]; data blocks are padded to whole pages so that reading
//! one costs one aligned read. `finish` writes the meta blocks and the footer,
//! then fsyncs the file. The file's *name* is durable only after the caller syncs
//! the directory (the engine does so before the manifest names the table).

use super::block::{cmp_versions, BlockBuilder};
use super::bloom::BloomBuilder;
use super::format::{
    BlockHandle, Footer, Header, FOOTER_BYTES, FORMAT_V1, HEADER_PAGE_BYTES, MAGIC,
};
use super::{TableMeta, TableOptions};
use crate::codec::put_bytes;
use crate::codec::put_varint;
use crate::disk::{AlignedBuf, Disk, DiskError, DiskFile, OpenMode, BLOCK_SIZE};
use crate::memtable::Value;
use crate::spans::SpanSet;
use crate::timestamp::Timestamp;
use std::cmp::Ordering;
use std::path::Path;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};

/// Bytes buffered before they are written out.
pub const WRITE_CHUNK_BYTES: usize = 1024 * 1024;
const _: () = assert!(WRITE_CHUNK_BYTES.is_multiple_of(BLOCK_SIZE));

pub struct TableBuilder<F: DiskFile> {
    file: F,
    number: u64,
    options: TableOptions,
    /// Bytes not yet written; they start at file offset `written`.
    out: Vec<u8>,
    written: u64,
    data: BlockBuilder,
    index: BlockBuilder,
    bloom: BloomBuilder,
    range_dels: SpanSet,
    first_key: Option<Vec<u8>>,
    last: Option<(Vec<u8>, Timestamp)>,
    entries: u64,
    tombstones: u64,
    min_ts: Timestamp,
    max_ts: Timestamp,
}

impl<F: DiskFile> TableBuilder<F> {
    /// Creates the file `path` (which must not exist) for table `number`.
    pub async fn create<D: Disk<File = F>>(
        disk: &D,
        path: &Path,
        number: u64,
        options: TableOptions,
    ) -> Result<Self, DiskError> {
        let file = disk.open(path, OpenMode::CreateNew).await?;
        let mut out = Vec::with_capacity(WRITE_CHUNK_BYTES);
        out.extend_from_slice(Header::new(number).as_bytes());
        out.resize(HEADER_PAGE_BYTES, 0);
        Ok(TableBuilder {
            file,
            number,
            data: BlockBuilder::new(options.restart_interval),
            index: BlockBuilder::new(options.restart_interval),
            options,
            out,
            written: 0,
            bloom: BloomBuilder::new(),
            range_dels: SpanSet::new(),
            first_key: None,
            last: None,
            entries: 0,
            tombstones: 0,
            min_ts: Timestamp::MAX,
            max_ts: Timestamp::ZERO,
        })
    }

    /// Appends a version. Versions must come in strictly increasing
    /// (key asc, ts desc) order; anything else is a caller bug and panics.
    pub async fn add(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        value: Value<'_>,
    ) -> Result<(), DiskError> {
        let value_bytes = match value {
            Value::Put(v) => v.len(),
            Value::Delete => 0,
        };
        if !self.data.is_empty()
            && self.data.size_after(key.len(), value_bytes) > self.options.block_bytes
        {
            self.finish_data_block();
        }
        match &mut self.last {
            Some((last_key, last_ts)) => {
                assert_eq!(
                    cmp_versions(last_key, *last_ts, key, ts),
                    Ordering::Less,
                    "table entries out of order"
                );
                if last_key.as_slice() != key {
                    self.bloom.add(key);
                }
                last_key.clear();
                last_key.extend_from_slice(key);
                *last_ts = ts;
            }
            None => {
                self.bloom.add(key);
                self.first_key = Some(key.to_vec());
                self.last = Some((key.to_vec(), ts));
            }
        }
        self.data.add(key, ts, value);
        self.entries += 1;
        self.tombstones += u64::from(value == Value::Delete);
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        if self.out.len() >= WRITE_CHUNK_BYTES {
            self.write_out().await?;
        }
        Ok(())
    }

    /// Adds a range tombstone `[start, end)`. The caller guarantees it hides no
    /// point entry of this table (see [`SpanSet`](crate::spans::SpanSet)).
    pub fn add_range_del(&mut self, start: &[u8], end: &[u8]) {
        self.range_dels.insert(start, end);
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries == 0 && self.range_dels.is_empty()
    }

    /// Bytes the file has so far (data blocks; meta blocks not counted).
    pub fn estimated_bytes(&self) -> u64 {
        self.written + self.out.len() as u64 + self.data.size() as u64
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    fn finish_data_block(&mut self) {
        let (last_key, last_ts) = (self.data.last_key().to_vec(), self.data.last_ts());
        let bytes = self.data.finish();
        let handle = BlockHandle::new(self.offset(), &bytes);
        self.out.extend_from_slice(&bytes);
        self.pad_to_page();
        self.index
            .add(&last_key, last_ts, Value::Put(handle.as_bytes()));
    }

    fn offset(&self) -> u64 {
        self.written + self.out.len() as u64
    }

    fn pad_to_page(&mut self) {
        let len = self.out.len().next_multiple_of(BLOCK_SIZE);
        self.out.resize(len, 0);
    }

    /// Writes the buffered whole pages.
    async fn write_out(&mut self) -> Result<(), DiskError> {
        let whole = self.out.len() / BLOCK_SIZE * BLOCK_SIZE;
        if whole == 0 {
            return Ok(());
        }
        let mut buf = AlignedBuf::zeroed(whole);
        buf.as_mut_slice().copy_from_slice(&self.out[..whole]);
        self.file.write_at(self.written, &buf).await?;
        self.out.drain(..whole);
        self.written += whole as u64;
        Ok(())
    }

    fn put_block(&mut self, bytes: &[u8]) -> BlockHandle {
        let handle = BlockHandle::new(self.offset(), bytes);
        self.out.extend_from_slice(bytes);
        handle
    }

    /// Writes the rest, the meta blocks and the footer; fsyncs the file.
    pub async fn finish(mut self) -> Result<TableMeta, DiskError> {
        assert!(!self.is_empty(), "finishing an empty table");
        if !self.data.is_empty() {
            self.finish_data_block();
        }
        let bloom = self.bloom.finish(self.options.bloom_bits_per_key);
        let bloom = self.put_block(&bloom);
        let mut rd = Vec::new();
        put_varint(&mut rd, self.range_dels.len() as u64);
        for (s, e) in self.range_dels.iter() {
            put_bytes(&mut rd, s);
            put_bytes(&mut rd, e);
        }
        let range_dels = self.put_block(&rd);
        let index = self.index.finish();
        let index = self.put_block(&index);
        let end = (self.offset() as usize + FOOTER_BYTES).next_multiple_of(BLOCK_SIZE);
        let footer_at = end - FOOTER_BYTES - self.written as usize;
        self.out.resize(footer_at, 0);
        let (min_ts, max_ts) = if self.entries == 0 {
            (Timestamp::ZERO, Timestamp::ZERO)
        } else {
            (self.min_ts, self.max_ts)
        };
        let mut footer = Footer::read_from_bytes(&[0u8; FOOTER_BYTES][..]).expect("footer size");
        footer.magic = U64::new(MAGIC);
        footer.format = U32::new(FORMAT_V1);
        footer.file_number = U64::new(self.number);
        footer.entries = U64::new(self.entries);
        footer.tombstones = U64::new(self.tombstones);
        footer.min_ts_wall = U64::new(min_ts.wall_nanos);
        footer.min_ts_logical = U32::new(min_ts.logical);
        footer.max_ts_wall = U64::new(max_ts.wall_nanos);
        footer.max_ts_logical = U32::new(max_ts.logical);
        footer.index = index;
        footer.bloom = bloom;
        footer.range_dels = range_dels;
        footer.seal();
        self.out.extend_from_slice(footer.as_bytes());
        debug_assert!(self.out.len().is_multiple_of(BLOCK_SIZE));
        self.write_out().await?;
        self.file.sync().await?;
        Ok(self.meta(min_ts, max_ts))
    }

    fn meta(&self, min_ts: Timestamp, max_ts: Timestamp) -> TableMeta {
        let point = self
            .first_key
            .as_ref()
            .zip(self.last.as_ref().map(|(k, _)| k));
        let (smallest, largest, largest_exclusive) = match (point, self.range_dels.bounds()) {
            (Some((first, last)), Some((rs, re))) => {
                let smallest = first.as_slice().min(rs).to_vec();
                if re > last.as_slice() {
                    (smallest, re.to_vec(), true)
                } else {
                    (smallest, last.clone(), false)
                }
            }
            (Some((first, last)), None) => (first.clone(), last.clone(), false),
            (None, Some((rs, re))) => (rs.to_vec(), re.to_vec(), true),
            (None, None) => unreachable!("finish refuses an empty table"),
        };
        TableMeta {
            number: self.number,
            size: self.written,
            smallest,
            largest,
            largest_exclusive,
            entries: self.entries,
            tombstones: self.tombstones,
            range_dels: self.range_dels.len() as u64,
            min_ts,
            max_ts,
        }
    }
}
