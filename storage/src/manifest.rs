//! The manifest: which tables are live at which level, each range's applied Raft
//! index as of the last flush, the WAL position up to which engine batches are in
//! tables, and the next file number.
//!
//! # Atomic replacement
//! The whole state is small (a few hundred bytes per table), so every change
//! writes it whole: `MANIFEST.tmp` is created, written, fsynced, renamed over
//! `MANIFEST`, and the directory is fsynced. A crash leaves either the old or the
//! new manifest, both complete. A rename is atomic, so there is no third state.
//! A stale `MANIFEST.tmp` is removed on open.
//!
//! The order of durable steps around a change is what makes recovery correct:
//! new tables are fsynced and their names made durable (directory fsync) *before*
//! the manifest names them; tables a change drops are deleted, and the WAL
//! truncated, only *after* the manifest that no longer needs them is durable.
//! Tables on disk that the manifest does not name are leftovers of an interrupted
//! change and are deleted on open.
//!
//! # Format
//! ```text
//! header (zerocopy, 40 bytes): magic, format, reserved, body_len, xxh3(body), xxh3(header)
//! body: next_file_number, flushed_lsn          varints
//!       n_ranges, (range_id, applied_index)*   varints
//!       n_levels, per level: n_tables, table*  (see encode_table)
//! ```
//! written as one zero-padded, page-aligned buffer.

use crate::codec::{put_bytes, put_varint, Reader};
use crate::disk::{AlignedBuf, Disk, DiskError, DiskFile, OpenMode, BLOCK_SIZE};
use crate::memtable::KEY_BYTES_MAX;
use crate::sst::TableMeta;
use crate::timestamp::{Timestamp, TIMESTAMP_BYTES};
use crate::wal::Lsn;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const MANIFEST_NAME: &str = "MANIFEST";
pub const MANIFEST_TMP_NAME: &str = "MANIFEST.tmp";
/// Number of levels: L0 (overlapping tables, newest first) and L1..L6 (each a
/// sorted run of non-overlapping tables).
pub const LEVELS: usize = 7;
/// Largest manifest accepted on read, in bytes.
pub const MANIFEST_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Most ranges a shard's manifest records.
pub const RANGES_MAX: u64 = 1 << 24;
/// Most tables per level.
pub const TABLES_PER_LEVEL_MAX: u64 = 1 << 20;

const MAGIC: u64 = u64::from_le_bytes(*b"TLRMANI1");
const FORMAT_V1: u32 = 1;
const HEADER_BYTES: usize = 40;

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Header {
    magic: U64,
    format: U32,
    reserved: U32,
    body_len: U64,
    body_checksum: U64,
    header_checksum: U64,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_BYTES);

/// The engine's durable state besides the WAL and the tables themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// Never reused: every table gets a fresh number.
    pub next_file_number: u64,
    /// Engine write batches with an LSN at or below this are in tables.
    pub flushed_lsn: Lsn,
    /// Per range: the Raft index up to which applied state is in tables.
    pub applied: BTreeMap<u64, u64>,
    /// `levels[0]` newest first (by position); deeper levels sorted by key,
    /// non-overlapping.
    pub levels: Vec<Vec<TableMeta>>,
}

impl ManifestState {
    /// The state of a fresh engine.
    pub fn empty() -> Self {
        ManifestState {
            next_file_number: 1,
            flushed_lsn: Lsn(0),
            applied: BTreeMap::new(),
            levels: vec![Vec::new(); LEVELS],
        }
    }

    /// Checks the structural invariants; a description of the first broken one.
    pub fn check(&self) -> Result<(), String> {
        if self.levels.len() != LEVELS {
            return Err(format!("{} levels, expected {LEVELS}", self.levels.len()));
        }
        let mut numbers = std::collections::BTreeSet::new();
        for (level, tables) in self.levels.iter().enumerate() {
            for t in tables {
                if t.number >= self.next_file_number || !numbers.insert(t.number) {
                    return Err(format!(
                        "table {} duplicated or beyond the next number",
                        t.number
                    ));
                }
                if t.smallest > t.largest || (t.smallest == t.largest && t.largest_exclusive) {
                    return Err(format!("table {} has empty bounds", t.number));
                }
            }
            // Level 0 is ordered newest first by its position (ingested tables
            // may carry lower numbers than older flushes): nothing to check.
            if level > 0
                && tables
                    .windows(2)
                    .any(|w| w[0].overlaps_table(&w[1]) || w[0].smallest >= w[1].smallest)
            {
                return Err(format!("level {level} tables overlap or are unsorted"));
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, self.next_file_number);
        put_varint(&mut out, self.flushed_lsn.0);
        put_varint(&mut out, self.applied.len() as u64);
        for (range, index) in &self.applied {
            put_varint(&mut out, *range);
            put_varint(&mut out, *index);
        }
        put_varint(&mut out, self.levels.len() as u64);
        for tables in &self.levels {
            put_varint(&mut out, tables.len() as u64);
            for t in tables {
                encode_table(&mut out, t);
            }
        }
        out
    }

    pub fn decode(body: &[u8]) -> Option<ManifestState> {
        let mut r = Reader::new(body);
        let next_file_number = r.varint()?;
        let flushed_lsn = Lsn(r.varint()?);
        let mut applied = BTreeMap::new();
        let n = r.varint()?;
        if n > RANGES_MAX {
            return None;
        }
        for _ in 0..n {
            applied.insert(r.varint()?, r.varint()?);
        }
        let levels = r.varint()?;
        if levels != LEVELS as u64 {
            return None;
        }
        let mut out = Vec::with_capacity(LEVELS);
        for _ in 0..levels {
            let n = r.varint()?;
            if n > TABLES_PER_LEVEL_MAX {
                return None;
            }
            let tables: Option<Vec<_>> = (0..n).map(|_| decode_table(&mut r)).collect();
            out.push(tables?);
        }
        r.is_empty().then_some(ManifestState {
            next_file_number,
            flushed_lsn,
            applied,
            levels: out,
        })
    }
}

fn encode_table(out: &mut Vec<u8>, t: &TableMeta) {
    for v in [t.number, t.size, t.entries, t.tombstones, t.range_dels] {
        put_varint(out, v);
    }
    put_bytes(out, &t.smallest);
    put_bytes(out, &t.largest);
    out.push(u8::from(t.largest_exclusive));
    out.extend_from_slice(&t.min_ts.to_bytes());
    out.extend_from_slice(&t.max_ts.to_bytes());
}

fn decode_table(r: &mut Reader<'_>) -> Option<TableMeta> {
    let number = r.varint()?;
    let size = r.varint()?;
    let entries = r.varint()?;
    let tombstones = r.varint()?;
    let range_dels = r.varint()?;
    let smallest = r.bytes(KEY_BYTES_MAX)?.to_vec();
    let largest = r.bytes(KEY_BYTES_MAX)?.to_vec();
    let largest_exclusive = match r.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let min_ts = Timestamp::decode(r.take(TIMESTAMP_BYTES)?)?;
    let max_ts = Timestamp::decode(r.take(TIMESTAMP_BYTES)?)?;
    Some(TableMeta {
        number,
        size,
        smallest,
        largest,
        largest_exclusive,
        entries,
        tombstones,
        range_dels,
        min_ts,
        max_ts,
    })
}

#[derive(Debug)]
pub enum ManifestError {
    Disk(DiskError),
    Corruption(String),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Disk(e) => write!(f, "manifest disk error: {e}"),
            ManifestError::Corruption(d) => write!(f, "manifest corrupt: {d}"),
        }
    }
}

impl std::error::Error for ManifestError {}

impl From<DiskError> for ManifestError {
    fn from(e: DiskError) -> Self {
        ManifestError::Disk(e)
    }
}

/// How far a failed [`write`] got: before the rename, the old manifest is still
/// the durable one for sure; from the rename on, either may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePhase {
    BeforeRename,
    AfterRename,
}

/// Replaces the manifest in `dir` with `state`, durably (see the module docs).
pub async fn write<D: Disk>(
    disk: &D,
    dir: &Path,
    state: &ManifestState,
) -> Result<(), (DiskError, WritePhase)> {
    debug_assert_eq!(state.check(), Ok(()));
    let before = |e| (e, WritePhase::BeforeRename);
    let tmp = dir.join(MANIFEST_TMP_NAME);
    let body = state.encode();
    let mut header = Header {
        magic: U64::new(MAGIC),
        format: U32::new(FORMAT_V1),
        reserved: U32::new(0),
        body_len: U64::new(body.len() as u64),
        body_checksum: U64::new(xxh3_64(&body)),
        header_checksum: U64::new(0),
    };
    header.header_checksum = U64::new(xxh3_64(&header.as_bytes()[..HEADER_BYTES - 8]));
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let buf = AlignedBuf::from_padded(&bytes);
    let file = match disk.open(&tmp, OpenMode::CreateNew).await {
        Err(DiskError::AlreadyExists(_)) => {
            disk.remove(&tmp).await.map_err(before)?;
            disk.open(&tmp, OpenMode::CreateNew).await.map_err(before)?
        }
        other => other.map_err(before)?,
    };
    file.write_at(0, &buf).await.map_err(before)?;
    file.sync().await.map_err(before)?;
    drop(file);
    let after = |e| (e, WritePhase::AfterRename);
    disk.rename(&tmp, &dir.join(MANIFEST_NAME))
        .await
        .map_err(after)?;
    disk.sync_dir(dir).await.map_err(after)
}

/// Reads the manifest in `dir`; `None` if there is none (a fresh directory).
pub async fn read<D: Disk>(disk: &D, dir: &Path) -> Result<Option<ManifestState>, ManifestError> {
    let file = match disk
        .open(&dir.join(MANIFEST_NAME), OpenMode::Existing)
        .await
    {
        Err(DiskError::NotFound(_)) => return Ok(None),
        other => other?,
    };
    let corrupt = |d: &str| ManifestError::Corruption(d.to_owned());
    let len = file.len().await?;
    if len < BLOCK_SIZE as u64 || len > MANIFEST_BYTES_MAX || !len.is_multiple_of(BLOCK_SIZE as u64)
    {
        return Err(corrupt(&format!("file of {len} bytes")));
    }
    let mut buf = AlignedBuf::zeroed(len as usize);
    file.read_at(0, &mut buf).await?;
    let bytes = buf.as_slice();
    let header = Header::read_from_bytes(&bytes[..HEADER_BYTES]).map_err(|_| corrupt("header"))?;
    let header_ok = header.magic.get() == MAGIC
        && header.format.get() == FORMAT_V1
        && header.reserved.get() == 0
        && header.header_checksum.get() == xxh3_64(&header.as_bytes()[..HEADER_BYTES - 8]);
    if !header_ok {
        return Err(corrupt("bad header"));
    }
    let body_len = usize::try_from(header.body_len.get()).map_err(|_| corrupt("body length"))?;
    let body = bytes
        .get(HEADER_BYTES..HEADER_BYTES.saturating_add(body_len))
        .ok_or_else(|| corrupt("body past the end"))?;
    if xxh3_64(body) != header.body_checksum.get() {
        return Err(corrupt("body checksum mismatch"));
    }
    let state = ManifestState::decode(body).ok_or_else(|| corrupt("malformed body"))?;
    state.check().map_err(|d| corrupt(&d))?;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{SimDisk, SimDiskOptions};
    use futures_lite::future::block_on;

    fn table(number: u64, smallest: &[u8], largest: &[u8]) -> TableMeta {
        TableMeta {
            number,
            size: 8192,
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            largest_exclusive: number.is_multiple_of(2),
            entries: number * 10,
            tombstones: number,
            range_dels: 0,
            min_ts: Timestamp::new(number, 1),
            max_ts: Timestamp::new(number + 5, 0),
        }
    }

    fn sample() -> ManifestState {
        let mut s = ManifestState::empty();
        s.next_file_number = 20;
        s.flushed_lsn = Lsn(77);
        s.applied.insert(3, 99);
        s.applied.insert(1 << 40, 5);
        s.levels[0] = vec![table(9, b"a", b"z"), table(8, b"b", b"c")];
        s.levels[1] = vec![
            table(4, b"a", b"c"),
            table(5, b"c", b"e"),
            table(6, b"x", b"y"),
        ];
        s
    }

    #[test]
    fn write_read_and_crash_atomicity() {
        block_on(async {
            let dir = Path::new("/m");
            for seed in 0..100 {
                let disk = SimDisk::new(SimDiskOptions { seed });
                assert_eq!(read(&disk, dir).await.unwrap(), None);
                let first = ManifestState::empty();
                write(&disk, dir, &first).await.unwrap();
                assert_eq!(read(&disk, dir).await.unwrap(), Some(first.clone()));
                let second = sample();
                // Crash at every point of the second write: old or new, never other.
                disk.fail_after(seed % 7, crate::disk::Fault::Eio);
                let result = write(&disk, dir, &second).await;
                disk.crash();
                let got = read(&disk, dir)
                    .await
                    .unwrap()
                    .expect("a manifest survives");
                assert!(got == first || got == second, "seed {seed}");
                if result.is_ok() {
                    assert_eq!(got, second, "seed {seed}: acknowledged write lost");
                }
                write(&disk, dir, &second).await.unwrap();
                assert_eq!(read(&disk, dir).await.unwrap(), Some(second));
            }
        });
    }

    #[test]
    fn damage_is_detected() {
        block_on(async {
            let dir = Path::new("/m");
            let disk = SimDisk::new(SimDiskOptions { seed: 1 });
            write(&disk, dir, &sample()).await.unwrap();
            let len = sample().encode().len() + HEADER_BYTES;
            for bit in (0..len as u64 * 8).step_by(7) {
                disk.flip_bit(&dir.join(MANIFEST_NAME), bit);
                assert!(
                    matches!(read(&disk, dir).await, Err(ManifestError::Corruption(_))),
                    "bit {bit}"
                );
                disk.flip_bit(&dir.join(MANIFEST_NAME), bit);
            }
            assert_eq!(read(&disk, dir).await.unwrap(), Some(sample()));
            let mut bad = sample();
            bad.levels[1].push(table(7, b"d", b"f"));
            assert!(bad.check().is_err(), "overlap in level 1");
            let mut bad = sample();
            bad.levels[0].push(table(4, b"a", b"b"));
            assert!(bad.check().is_err(), "a table in two levels");
        });
    }
}
