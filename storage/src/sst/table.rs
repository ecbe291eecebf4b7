//! [`Table`]: an open SSTable — its footer, index, bloom filter and range
//! tombstones in memory, data blocks read on demand through the block cache —
//! and [`TableIter`], a cursor over its versions.

use super::block::{Block, BlockIter};
use super::bloom::Bloom;
use super::cache::BlockCache;
use super::format::{BlockHandle, Footer, Header, FOOTER_BYTES, HANDLE_BYTES, HEADER_BYTES};
use super::SstError;
use crate::codec::Reader;
use crate::disk::{AlignedBuf, DiskFile, BLOCK_SIZE};
use crate::memtable::{Value, KEY_BYTES_MAX};
use crate::spans::SpanSet;
use crate::timestamp::Timestamp;
use std::cell::RefCell;
use std::rc::Rc;
use zerocopy::FromBytes;

/// Largest meta region (index + bloom + range tombstones) a table may have.
pub const META_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// An owned version: `None` is a tombstone.
pub type OwnedValue = Option<Vec<u8>>;

pub fn owned(value: Value<'_>) -> OwnedValue {
    match value {
        Value::Put(v) => Some(v.to_vec()),
        Value::Delete => None,
    }
}

/// An open table. Shared (`Rc`) by every version and iterator that uses it.
pub struct Table<F: DiskFile> {
    number: u64,
    file: F,
    size: u64,
    footer: Footer,
    index: Rc<Block>,
    bloom: Bloom,
    range_dels: SpanSet,
}

impl<F: DiskFile> std::fmt::Debug for Table<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({}, {} bytes)", self.number, self.size)
    }
}

impl<F: DiskFile> Table<F> {
    /// Opens table `number` from `file`, verifying header, footer and meta blocks.
    pub async fn open(file: F, number: u64) -> Result<Self, SstError> {
        let corrupt = |detail: &str| SstError::corruption(number, detail);
        let size = file.len().await?;
        if size < (2 * BLOCK_SIZE) as u64 || !size.is_multiple_of(BLOCK_SIZE as u64) {
            return Err(corrupt(&format!("file of {size} bytes is not a table")));
        }
        let mut page = AlignedBuf::zeroed(BLOCK_SIZE);
        file.read_at(0, &mut page).await?;
        let header = Header::read_from_bytes(&page.as_slice()[..HEADER_BYTES])
            .map_err(|_| corrupt("header"))?;
        if !header.is_valid_for(number) {
            return Err(corrupt("bad header"));
        }
        file.read_at(size - BLOCK_SIZE as u64, &mut page).await?;
        let footer = Footer::read_from_bytes(&page.as_slice()[BLOCK_SIZE - FOOTER_BYTES..])
            .map_err(|_| corrupt("footer"))?;
        if !footer.is_valid_for(number) {
            return Err(corrupt("bad footer"));
        }
        let handles = [footer.index, footer.bloom, footer.range_dels];
        let meta_start = handles
            .iter()
            .map(BlockHandle::offset)
            .min()
            .expect("three handles");
        let meta_end = handles
            .iter()
            .map(BlockHandle::end)
            .max()
            .expect("three handles");
        let first_page = meta_start / BLOCK_SIZE as u64 * BLOCK_SIZE as u64;
        if meta_start < BLOCK_SIZE as u64
            || meta_end > size - FOOTER_BYTES as u64
            || size - first_page > META_BYTES_MAX
        {
            return Err(corrupt("meta blocks out of bounds"));
        }
        let mut meta = AlignedBuf::zeroed((size - first_page) as usize);
        file.read_at(first_page, &mut meta).await?;
        let block = |h: BlockHandle| -> Result<Vec<u8>, SstError> {
            let at = (h.offset() - first_page) as usize;
            let bytes = &meta.as_slice()[at..at + h.len()];
            if !h.verify(bytes) {
                return Err(corrupt("meta block checksum mismatch"));
            }
            Ok(bytes.to_vec())
        };
        let index =
            Block::decode(block(footer.index)?).ok_or_else(|| corrupt("malformed index block"))?;
        let bloom =
            Bloom::decode(block(footer.bloom)?).ok_or_else(|| corrupt("malformed bloom filter"))?;
        let range_dels = decode_range_dels(&block(footer.range_dels)?)
            .ok_or_else(|| corrupt("malformed range tombstones"))?;
        Ok(Table {
            number,
            file,
            size,
            footer,
            index: Rc::new(index),
            bloom,
            range_dels,
        })
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn entries(&self) -> u64 {
        self.footer.entries.get()
    }

    pub fn min_ts(&self) -> Timestamp {
        self.footer.min_ts()
    }

    pub fn max_ts(&self) -> Timestamp {
        self.footer.max_ts()
    }

    pub fn range_dels(&self) -> &SpanSet {
        &self.range_dels
    }

    pub fn may_contain(&self, key_hash: u64) -> bool {
        self.bloom.may_contain(key_hash)
    }

    /// Where the data blocks end (the meta blocks start).
    pub fn data_end(&self) -> u64 {
        self.footer.bloom.offset()
    }

    /// The file offset of the data block where `key` would be: an estimate of
    /// the bytes stored below `key` (for split decisions).
    pub fn approximate_offset(&self, key: &[u8]) -> u64 {
        let mut index = BlockIter::new(Rc::clone(&self.index));
        index.seek(key, Timestamp::MAX);
        if !index.valid() {
            return self.data_end();
        }
        self.handle_at(&index)
            .map_or(self.data_end(), |h| h.offset())
    }

    /// Memory held by the index and the filter.
    pub fn resident_bytes(&self) -> usize {
        self.index.bytes() + self.bloom.bytes()
    }

    /// Reads, verifies and decodes a data block, through the cache.
    pub async fn block(
        &self,
        handle: BlockHandle,
        cache: &RefCell<BlockCache>,
    ) -> Result<Rc<Block>, SstError> {
        if let Some(b) = cache.borrow_mut().get(self.number, handle.offset()) {
            return Ok(b);
        }
        let corrupt = |detail: &str| SstError::corruption(self.number, detail);
        if handle.end() > self.size || handle.is_empty() {
            return Err(corrupt("block handle out of bounds"));
        }
        let first = handle.offset() / BLOCK_SIZE as u64 * BLOCK_SIZE as u64;
        let last = handle.end().next_multiple_of(BLOCK_SIZE as u64);
        let mut buf = AlignedBuf::zeroed((last - first) as usize);
        self.file.read_at(first, &mut buf).await?;
        let at = (handle.offset() - first) as usize;
        let bytes = &buf.as_slice()[at..at + handle.len()];
        if !handle.verify(bytes) {
            return Err(SstError::corruption(
                self.number,
                &format!("data block at {} fails its checksum", handle.offset()),
            ));
        }
        let block =
            Rc::new(Block::decode(bytes.to_vec()).ok_or_else(|| corrupt("malformed data block"))?);
        cache
            .borrow_mut()
            .insert(self.number, handle.offset(), Rc::clone(&block));
        Ok(block)
    }

    /// The newest version of `key` at or below `read_ts` in this table, tombstones
    /// included. The bloom filter is consulted first with `key_hash`.
    pub async fn get(
        &self,
        key: &[u8],
        key_hash: u64,
        read_ts: Timestamp,
        cache: &RefCell<BlockCache>,
    ) -> Result<Option<(Timestamp, OwnedValue)>, SstError> {
        if !self.bloom.may_contain(key_hash) {
            return Ok(None);
        }
        let mut index = BlockIter::new(Rc::clone(&self.index));
        index.seek(key, read_ts);
        if !index.valid() {
            return Ok(None);
        }
        let block = self.block(self.handle_at(&index)?, cache).await?;
        let mut it = BlockIter::new(block);
        it.seek(key, read_ts);
        Ok((it.valid() && it.key() == key).then(|| (it.ts(), owned(it.value()))))
    }

    fn handle_at(&self, index: &BlockIter) -> Result<BlockHandle, SstError> {
        let bytes = match index.value() {
            Value::Put(b) if b.len() == HANDLE_BYTES => b,
            _ => return Err(SstError::corruption(self.number, "malformed index entry")),
        };
        BlockHandle::read_from_bytes(bytes)
            .map_err(|_| SstError::corruption(self.number, "malformed index entry"))
    }
}

fn decode_range_dels(bytes: &[u8]) -> Option<SpanSet> {
    let mut r = Reader::new(bytes);
    let n = r.varint()?;
    let mut set = SpanSet::new();
    for _ in 0..n {
        let s = r.bytes(KEY_BYTES_MAX)?;
        let e = r.bytes(KEY_BYTES_MAX)?;
        if s >= e {
            return None;
        }
        set.insert(s, e);
    }
    r.is_empty().then_some(set)
}

/// A cursor over a table's versions, in (key asc, ts desc) order.
pub struct TableIter<F: DiskFile> {
    table: Rc<Table<F>>,
    cache: Rc<RefCell<BlockCache>>,
    index: BlockIter,
    data: Option<BlockIter>,
}

impl<F: DiskFile> TableIter<F> {
    pub fn new(table: Rc<Table<F>>, cache: Rc<RefCell<BlockCache>>) -> Self {
        let index = BlockIter::new(Rc::clone(&table.index));
        TableIter {
            table,
            cache,
            index,
            data: None,
        }
    }

    pub fn table(&self) -> &Rc<Table<F>> {
        &self.table
    }

    pub fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(BlockIter::valid)
    }

    pub fn key(&self) -> &[u8] {
        self.cur().key()
    }

    pub fn ts(&self) -> Timestamp {
        self.cur().ts()
    }

    pub fn value(&self) -> Value<'_> {
        self.cur().value()
    }

    fn cur(&self) -> &BlockIter {
        self.data
            .as_ref()
            .filter(|d| d.valid())
            .expect("table iterator not positioned")
    }

    /// Loads the data block the index cursor points at (none if it is invalid).
    async fn load_block(&mut self) -> Result<(), SstError> {
        self.data = None;
        if self.index.valid() {
            let handle = self.table.handle_at(&self.index)?;
            let block = self.table.block(handle, &self.cache).await?;
            self.data = Some(BlockIter::new(block));
        }
        Ok(())
    }

    pub async fn seek_to_first(&mut self) -> Result<(), SstError> {
        self.index.seek_to_first();
        self.load_block().await?;
        if let Some(d) = &mut self.data {
            d.seek_to_first();
        }
        self.skip_empty_forward().await
    }

    pub async fn seek_to_last(&mut self) -> Result<(), SstError> {
        self.index.seek_to_last();
        self.load_block().await?;
        if let Some(d) = &mut self.data {
            d.seek_to_last();
        }
        self.skip_empty_backward().await
    }

    /// Positions at the first version at or after `(key, ts)`.
    pub async fn seek(&mut self, key: &[u8], ts: Timestamp) -> Result<(), SstError> {
        self.index.seek(key, ts);
        self.load_block().await?;
        if let Some(d) = &mut self.data {
            d.seek(key, ts);
        }
        self.skip_empty_forward().await
    }

    /// Positions at the last version strictly before `(key, ts)`.
    pub async fn seek_before(&mut self, key: &[u8], ts: Timestamp) -> Result<(), SstError> {
        self.seek(key, ts).await?;
        if self.valid() {
            self.prev().await
        } else {
            self.seek_to_last().await
        }
    }

    pub async fn next(&mut self) -> Result<(), SstError> {
        if let Some(d) = &mut self.data {
            d.next();
        }
        self.skip_empty_forward().await
    }

    pub async fn prev(&mut self) -> Result<(), SstError> {
        if let Some(d) = &mut self.data {
            d.prev();
        }
        self.skip_empty_backward().await
    }

    /// While the data cursor ran off its block, moves to the next block.
    async fn skip_empty_forward(&mut self) -> Result<(), SstError> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            self.index.next();
            self.load_block().await?;
            if let Some(d) = &mut self.data {
                d.seek_to_first();
            }
        }
        Ok(())
    }

    async fn skip_empty_backward(&mut self) -> Result<(), SstError> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            self.index.prev();
            self.load_block().await?;
            if let Some(d) = &mut self.data {
                d.seek_to_last();
            }
        }
        Ok(())
    }
}
