//! The write-ahead log of one shard, which is also the Raft log of all its ranges.
//!
//! # Shape
//! A directory of preallocated segment files (`wal-<seq>-<first_lsn>.log`, see
//! [`format`](mod@format)). Records carry a caller-defined kind, the Raft coordinates
//! (range id, term, index) and an opaque payload, and get a log sequence number
//! ([`Lsn`]) rising by one per record across all ranges.
//!
//! # Group commit
//! [`Wal::append`] only encodes into the in-memory batch and returns the record's
//! LSN: header and payload go straight into reused DMA chunks ([`batch`]), the
//! only copy of the payload. [`Wal::sync`] writes the batch — every chunk of it
//! in flight at once, whole chunks without a copy — and issues one `fdatasync`
//! per segment touched (normally one), then reports the durable LSN. The shard loop appends everything its ranges produced in one pass, syncs
//! once, and acknowledges every record with `lsn <= durable`. `sync` takes
//! `&mut self`, so batches are strictly sequential: a batch is never written before
//! the previous one is durable. Recovery relies on that (see [`recovery`]).
//!
//! # Never rewrite a synced block
//! Each batch starts on a 4 KiB block boundary; the rest of its last block is zero
//! padding. A synced block is therefore never written again until its segment is
//! recycled, and a torn write can only damage the batch being written, never
//! records acknowledged earlier. The cost is at most one partly empty block per
//! sync, which group commit amortises.
//!
//! # Truncation and recycling
//! The WAL does not know which records the ranges still need. The owner computes the
//! lowest LSN any range still needs (from each range's persisted applied index and
//! its Raft log start) and calls [`Wal::truncate_before`]; whole segments below it
//! join a pool and are renamed into place when a new segment is needed (overwriting
//! allocated blocks is faster than appending). Truncated segments may remain on disk
//! until recycled, so recovery may return records below the truncation point; the
//! owner skips them. A Raft suffix truncation (a new leader overwriting entries) is
//! an append of the new entries with their (range, index): on replay, the later LSN
//! wins.
//!
//! # Failure
//! Any disk error during `sync`, segment preparation, `prepare_spare` or truncation
//! poisons the log:
//! that call returns the error and every later call returns [`WalError::Failed`].
//! (After a failed fdatasync the kernel may have dropped the dirty data; retrying and
//! trusting the retry is the "fsyncgate" bug.) Records acknowledged before the
//! error stay durable; the owner recovers by reopening ([`Wal::recover`]).

pub mod batch;
pub mod bench;
pub mod format;
pub mod recovery;
pub mod retention;
pub use retention::Retention;
#[cfg(test)]
mod tests;

use crate::disk::{AlignedBuf, Disk, DiskError, DiskFile, OpenMode, BLOCK_SIZE};
use crate::sync::join_all;
use batch::{BatchBuf, WAL_CHUNK_BYTES};
use format::{block_ceil, segment_name, RecordHeader, FORMAT_V1, HEADER_BYTES};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use zerocopy::little_endian::{U32, U64};
use zerocopy::IntoBytes;

/// Default segment size, in bytes.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Largest segment file recovery reads (it reads a whole segment at once).
pub const SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Default bound on the bytes appended between two syncs.
pub const BATCH_BYTES_MAX_DEFAULT: usize = 8 * 1024 * 1024;
/// Most writes of one batch started ahead of its sync and not yet complete
/// ([`Wal::write_ahead`]): enough chunks queued to keep the device busy while
/// the next one is encoded.
pub const WRITES_IN_FLIGHT_MAX: usize = 8;
/// Default number of truncated segments kept for recycling.
pub const SEGMENTS_FREE_MAX_DEFAULT: usize = 4;
/// Size of the zero writes that fill a new segment file, in bytes.
const ZERO_FILL_CHUNK_BYTES: usize = 1024 * 1024;
const _: () = assert!(ZERO_FILL_CHUNK_BYTES.is_multiple_of(BLOCK_SIZE));
/// Largest record payload, in bytes (further bounded by the segment size).
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// A write of the current batch in flight (owns its file and buffer handles).
type WriteFuture = Pin<Box<dyn Future<Output = Result<(), DiskError>>>>;

/// Log sequence number: the position of a record in the log. The first record of a
/// new log is `Lsn(1)`; `Lsn(0)` means "none".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// What a record is about. `kind` is the caller's record type and must not be 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    pub kind: u8,
    pub range_id: u64,
    pub term: u64,
    pub index: u64,
}

/// A record handed back by recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub lsn: Lsn,
    pub meta: RecordMeta,
    pub payload: &'a [u8],
}

#[derive(Clone, Debug)]
pub struct WalConfig {
    /// Size of each segment file, in bytes; a multiple of the block size.
    pub segment_bytes: u64,
    /// Bound on the bytes buffered between syncs; `append` fails beyond it.
    pub batch_bytes_max: usize,
    /// Truncated segments kept for recycling; more are removed.
    pub segments_free_max: usize,
    /// Write zeros over new segment files, so that appends overwrite written blocks
    /// (no unwritten-extent conversion at fdatasync).
    pub zero_fill: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            segments_free_max: SEGMENTS_FREE_MAX_DEFAULT,
            zero_fill: true,
        }
    }
}

impl WalConfig {
    fn validate(&self) {
        assert!(
            self.segment_bytes.is_multiple_of(BLOCK_SIZE as u64),
            "segment size not block-aligned"
        );
        assert!(
            self.segment_bytes >= 2 * BLOCK_SIZE as u64,
            "segment smaller than 2 blocks"
        );
        assert!(
            self.batch_bytes_max >= 2 * BLOCK_SIZE,
            "batch bound below 2 blocks"
        );
    }

    fn payload_max(&self) -> usize {
        let segment = usize::try_from(self.segment_bytes).unwrap_or(usize::MAX);
        RECORD_PAYLOAD_BYTES_MAX.min(segment - HEADER_BYTES)
    }
}

#[derive(Debug)]
pub enum WalError {
    Disk(DiskError),
    /// Synced records are damaged or missing (see [`recovery`] for the rule).
    Corruption {
        segment: u64,
        offset: u64,
        detail: String,
    },
    /// The payload exceeds the record size limit.
    RecordTooLarge {
        bytes: usize,
        max: usize,
    },
    /// The batch would exceed `batch_bytes_max`: sync first.
    BatchFull {
        bytes: usize,
        max: usize,
    },
    /// An earlier disk error poisoned the log; reopen it with [`Wal::recover`].
    Failed,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Disk(e) => write!(f, "wal disk error: {e}"),
            WalError::Corruption {
                segment,
                offset,
                detail,
            } => {
                write!(
                    f,
                    "wal corruption in segment {segment} at offset {offset}: {detail}"
                )
            }
            WalError::RecordTooLarge { bytes, max } => {
                write!(f, "wal record of {bytes} bytes exceeds {max}")
            }
            WalError::BatchFull { bytes, max } => {
                write!(
                    f,
                    "wal batch of {bytes} bytes would exceed {max}; sync first"
                )
            }
            WalError::Failed => write!(f, "wal failed after an I/O error; recover to continue"),
        }
    }
}

impl std::error::Error for WalError {}

impl From<DiskError> for WalError {
    fn from(e: DiskError) -> Self {
        WalError::Disk(e)
    }
}

struct Segment<F> {
    seq: u64,
    first_lsn: Lsn,
    /// The LSN after this segment's last record (exclusive end), for the active
    /// segment the next LSN to append.
    next_lsn: Lsn,
    /// `None` until prepared on disk by the sync that first writes to it.
    /// Shared with the writes in flight.
    file: Option<Rc<F>>,
}

/// The write-ahead log. See the module docs.
pub struct Wal<D: Disk> {
    disk: D,
    dir: PathBuf,
    config: WalConfig,
    /// Live segments, oldest first; the last one is active.
    segments: VecDeque<Segment<D::File>>,
    /// Files ready to become the next segment, oldest first: truncated segments
    /// under their old names, and spares.
    free: VecDeque<(PathBuf, Rc<D::File>)>,
    /// Number for the next spare file's name.
    spare_next: u64,
    /// Offset in the active segment where the next record goes.
    tail: u64,
    /// Records appended since the last sync.
    batch: BatchBuf,
    /// Buffer position up to which the batch's writes were started.
    written: usize,
    /// Writes of this batch started ahead of `sync`, oldest first.
    in_flight: VecDeque<WriteFuture>,
    counters: WalCounters,
    batch_lsn: Option<Lsn>,
    durable_lsn: Lsn,
    failed: bool,
}

/// Counters since the log was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalCounters {
    /// Segment files put in place for new segments (renamed or created);
    /// each costs a directory fsync on the way.
    pub segments_prepared: u64,
    /// Of those, files created then and there (nothing pooled): a whole
    /// segment of zero-fill on the path of the sync that needed it.
    pub segments_created: u64,
    /// Chunk writes started ahead of their sync ([`Wal::write_ahead`]).
    pub early_writes: u64,
    /// Log space consumed: records, and the padding and unused segment tails
    /// around them (a synced batch rounds up to a block).
    pub log_bytes: u64,
}

/// What [`Wal::recover`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records handed to the visitor.
    pub records: u64,
    /// LSN of the first and last record visited, if any.
    pub first_lsn: Option<Lsn>,
    pub last_lsn: Option<Lsn>,
    /// Segments holding only a torn batch, removed.
    pub garbage_segments: usize,
}

impl<D: Disk> Wal<D> {
    /// Opens the log in `dir` (which must exist), creating it if empty: hands every
    /// valid record to `visit` in LSN order, cuts a torn tail, and starts a fresh
    /// segment for new appends. On `Err`, discard whatever was visited.
    pub async fn recover(
        disk: D,
        dir: &Path,
        config: WalConfig,
        mut visit: impl FnMut(Record<'_>),
    ) -> Result<(Self, RecoveryReport), WalError> {
        config.validate();
        let payload_max = config.payload_max();
        let mut names: Vec<(u64, Lsn, String)> = disk
            .list(dir)
            .await?
            .into_iter()
            .filter_map(|n| format::parse_segment_name(&n).map(|(s, l)| (s, l, n)))
            .collect();
        names.sort();
        let mut free = VecDeque::new();
        let mut spare_next = 0;
        for name in disk.list(dir).await? {
            if let Some(n) = format::parse_spare_name(&name) {
                let path = dir.join(&name);
                let file = disk.open(&path, OpenMode::Existing).await?;
                free.push_back((path, Rc::new(file)));
                spare_next = spare_next.max(n + 1);
            }
        }
        let mut report = RecoveryReport {
            records: 0,
            first_lsn: None,
            last_lsn: None,
            garbage_segments: 0,
        };
        let mut replay = recovery::Replay::new(payload_max);
        let mut segments = VecDeque::new();
        let mut garbage = Vec::new();
        let mut seq_max = 0;
        for (seq, first_lsn, name) in names {
            seq_max = seq_max.max(seq);
            let path = dir.join(&name);
            let (file, buf) = read_segment(&disk, &path).await?;
            let scan = match replay.segment(seq, first_lsn, buf.as_slice())? {
                recovery::Verdict::Garbage => {
                    garbage.push(path);
                    continue;
                }
                recovery::Verdict::Live(scan) => scan,
            };
            for (at, h) in &scan.records {
                let payload = &buf.as_slice()[at + HEADER_BYTES..][..h.len.get() as usize];
                let lsn = Lsn(h.lsn.get());
                report.first_lsn.get_or_insert(lsn);
                report.last_lsn = Some(lsn);
                report.records += 1;
                visit(Record {
                    lsn,
                    meta: meta_of(h),
                    payload,
                });
            }
            // What was read may sit in a volatile device cache: make it durable
            // before anyone acts on it.
            file.sync().await?;
            let next_lsn = scan.end_lsn;
            segments.push_back(Segment {
                seq,
                first_lsn,
                next_lsn,
                file: Some(Rc::new(file)),
            });
        }
        report.garbage_segments = garbage.len();
        for path in &garbage {
            tracing::warn!(path = %path.display(), "wal: removing segment of a torn batch");
            disk.remove(path).await?;
        }
        let next_lsn = replay.next_lsn();
        let batch = BatchBuf::new(chunk_bytes(&config));
        let mut wal = Wal {
            disk,
            dir: dir.to_path_buf(),
            config,
            segments,
            free,
            spare_next,
            tail: 0,
            batch,
            written: 0,
            in_flight: VecDeque::new(),
            counters: WalCounters::default(),
            batch_lsn: None,
            durable_lsn: Lsn(next_lsn.0 - 1),
            failed: false,
        };
        wal.segments.push_back(Segment {
            seq: seq_max + 1,
            first_lsn: next_lsn,
            next_lsn,
            file: None,
        });
        wal.prepare_segments().await?;
        wal.assert_invariants();
        tracing::info!(?report, "wal recovered");
        Ok((wal, report))
    }

    /// Buffers a record for the next [`Wal::sync`] and returns its LSN.
    pub fn append(&mut self, meta: RecordMeta, payload: &[u8]) -> Result<Lsn, WalError> {
        assert!(meta.kind != 0, "record kind 0 is reserved for padding");
        if self.failed {
            return Err(WalError::Failed);
        }
        let max = self.config.payload_max();
        if payload.len() > max {
            return Err(WalError::RecordTooLarge {
                bytes: payload.len(),
                max,
            });
        }
        let record_bytes = HEADER_BYTES + payload.len();
        // Worst case adds a block of padding before the record and one after it.
        let need = self.batch.used() + record_bytes + 2 * BLOCK_SIZE;
        if need > self.config.batch_bytes_max {
            let max = self.config.batch_bytes_max;
            return Err(WalError::BatchFull { bytes: need, max });
        }
        let mut at = self.tail;
        if BLOCK_SIZE - (at as usize % BLOCK_SIZE) < HEADER_BYTES {
            at = block_ceil(at as usize) as u64;
        }
        if at + record_bytes as u64 > self.config.segment_bytes {
            self.counters.log_bytes += self.config.segment_bytes - self.tail;
            self.roll();
            at = 0;
        }
        self.counters.log_bytes += at - self.tail + record_bytes as u64;
        let active = self.segments.back_mut().expect("wal has an active segment");
        let lsn = active.next_lsn;
        active.next_lsn = Lsn(lsn.0 + 1);
        let seq = active.seq;
        let batch_lsn = *self.batch_lsn.get_or_insert(lsn);
        let header = encode_header(meta, payload, seq, lsn, batch_lsn);
        if self.batch.parts().last().is_none_or(|p| p.seq != seq) {
            // After a sync the tail is block-aligned; after a roll it is 0.
            assert!(
                self.tail.is_multiple_of(BLOCK_SIZE as u64),
                "batch starts off a block boundary"
            );
            self.batch.ensure_part(seq, self.tail);
        }
        self.batch.put(at, header.as_bytes());
        self.batch.put(at + HEADER_BYTES as u64, payload);
        self.tail = at + record_bytes as u64;
        self.assert_invariants();
        Ok(lsn)
    }

    /// Makes every appended record durable; returns the durable LSN.
    pub async fn sync(&mut self) -> Result<Lsn, WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        if self.batch.is_empty() {
            return Ok(self.durable_lsn);
        }
        let result = self.write_batch().await;
        self.poison_on_error(result)?;
        let active = self.segments.back().expect("wal has an active segment");
        self.durable_lsn = Lsn(active.next_lsn.0 - 1);
        let synced_tail = block_ceil(self.tail as usize) as u64;
        self.counters.log_bytes += synced_tail - self.tail;
        self.tail = synced_tail;
        self.batch.clear();
        self.written = 0;
        self.batch_lsn = None;
        self.assert_invariants();
        Ok(self.durable_lsn)
    }

    /// Declares every record below `lsn` unneeded: whole segments below it are
    /// recycled (or removed beyond the pool bound). On `Err` part of the truncation
    /// may have happened.
    pub async fn truncate_before(&mut self, lsn: Lsn) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        let result = self.truncate_inner(lsn).await;
        self.assert_invariants();
        self.poison_on_error(result)
    }

    /// Makes sure a file is ready for the next segment roll, so that the `sync`
    /// that rolls only renames it: if no recyclable file is pooled, creates a spare
    /// (preallocated, zero-filled if configured). Holds the log meanwhile; an
    /// owner with concurrent writers makes the spare without it instead
    /// ([`Wal::wants_spare`], [`Wal::reserve_spare`], [`create_segment_file`],
    /// [`Wal::adopt_spare`]).
    pub async fn prepare_spare(&mut self) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        if !self.free.is_empty() {
            return Ok(());
        }
        let path = self.reserve_spare();
        let result = create_segment_file(&self.disk, &path, &self.config).await;
        let file = self.poison_on_error(result)?;
        self.adopt_spare(path, file);
        Ok(())
    }

    /// Whether a spare should be made now: the active segment is past half
    /// full and no file waits for the next roll (so that roll would create one
    /// on the commit path).
    pub fn wants_spare(&self) -> bool {
        !self.failed
            && self.free.is_empty()
            && self.active_segment_free_bytes() < self.config.segment_bytes / 2
    }

    /// A fresh name for a spare file (not part of the log until adopted and
    /// renamed by a roll; recovery adopts spares it finds).
    pub fn reserve_spare(&mut self) -> PathBuf {
        let path = self.dir.join(format::spare_name(self.spare_next));
        self.spare_next += 1;
        path
    }

    /// Pools a spare made by [`create_segment_file`] at a reserved name.
    pub fn adopt_spare(&mut self, path: PathBuf, file: D::File) {
        self.free.push_back((path, Rc::new(file)));
    }

    /// The log's configuration.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// The largest payload `append` accepts into an empty batch.
    pub fn record_payload_max(&self) -> usize {
        let batch_room = self
            .config
            .batch_bytes_max
            .saturating_sub(HEADER_BYTES + 2 * BLOCK_SIZE);
        self.config.payload_max().min(batch_room)
    }

    /// Bytes left in the active segment (a hint for when to call `prepare_spare`).
    pub fn active_segment_free_bytes(&self) -> u64 {
        self.config.segment_bytes.saturating_sub(self.tail)
    }

    /// The highest LSN known durable (`Lsn(0)` if none).
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// The LSN the next appended record will get (unless a roll changes nothing:
    /// LSNs do not depend on segments).
    pub fn next_lsn(&self) -> Lsn {
        self.segments
            .back()
            .expect("wal has an active segment")
            .next_lsn
    }

    /// Lowest LSN still held by a live segment.
    pub fn first_lsn(&self) -> Lsn {
        self.segments
            .front()
            .expect("wal has an active segment")
            .first_lsn
    }

    /// Whether records were appended since the last sync (the shard loop syncs
    /// at the end of a pass only if so).
    pub fn has_unsynced(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Whether an I/O error has poisoned the log.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Sequence number of the active segment.
    pub fn active_seq(&self) -> u64 {
        self.segments.back().expect("wal has an active segment").seq
    }

    /// Number of live segments (for tests and metrics).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Checks the structural invariants (debug builds; every mutation ends here).
    fn assert_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let active = self.segments.back().expect("wal has an active segment");
        for (a, b) in self.segments.iter().zip(self.segments.iter().skip(1)) {
            assert!(a.seq < b.seq, "segment sequence numbers rise");
            assert_eq!(a.next_lsn, b.first_lsn, "segments are LSN-contiguous");
        }
        assert!(self.segments.iter().all(|s| s.first_lsn <= s.next_lsn));
        assert!(
            self.durable_lsn < active.next_lsn,
            "durable LSN beyond the log"
        );
        assert!(
            self.tail <= self.config.segment_bytes,
            "tail beyond the segment"
        );
        assert!(self
            .batch
            .parts()
            .iter()
            .all(|p| p.offset % BLOCK_SIZE as u64 == 0));
        assert_eq!(self.batch.is_empty(), self.batch_lsn.is_none());
        if self.batch.is_empty() && !self.failed {
            assert!(
                self.tail.is_multiple_of(BLOCK_SIZE as u64),
                "a synced tail is block-aligned"
            );
            assert_eq!(
                self.durable_lsn.0 + 1,
                active.next_lsn.0,
                "all appended is durable"
            );
        }
    }

    fn poison_on_error<T>(&mut self, result: Result<T, WalError>) -> Result<T, WalError> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn roll(&mut self) {
        let active = self.segments.back().expect("wal has an active segment");
        let (seq, first_lsn) = (active.seq + 1, active.next_lsn);
        self.segments.push_back(Segment {
            seq,
            first_lsn,
            next_lsn: first_lsn,
            file: None,
        });
        self.tail = 0;
    }

    fn segment_path(&self, seq: u64, first_lsn: Lsn) -> PathBuf {
        self.dir.join(segment_name(seq, first_lsn))
    }

    /// Gives every segment without a file one (recycled or new), durably named.
    async fn prepare_segments(&mut self) -> Result<(), WalError> {
        let mut prepared = false;
        for i in 0..self.segments.len() {
            if self.segments[i].file.is_some() {
                continue;
            }
            let path = self.segment_path(self.segments[i].seq, self.segments[i].first_lsn);
            let file = match self.free.pop_front() {
                Some((old, file)) => {
                    self.disk.rename(&old, &path).await?;
                    file
                }
                None => {
                    self.counters.segments_created += 1;
                    Rc::new(create_segment_file(&self.disk, &path, &self.config).await?)
                }
            };
            self.segments[i].file = Some(file);
            self.counters.segments_prepared += 1;
            prepared = true;
        }
        if prepared {
            self.disk.sync_dir(&self.dir).await?;
        }
        Ok(())
    }

    /// Starts the writes of the batch's chunks that are complete (no later
    /// record can change them) while the caller goes on appending: the
    /// encoding of the rest overlaps the device. At most
    /// [`WRITES_IN_FLIGHT_MAX`] writes are in flight; past that this waits for
    /// the oldest. Cheap when no chunk completed since the last call (small
    /// batches never get here). Errors poison the log, as in `sync`.
    pub async fn write_ahead(&mut self) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        let upto = self.batch.final_upto();
        if upto <= self.written {
            return Ok(());
        }
        let result = self.start_writes(upto).await;
        self.poison_on_error(result)
    }

    /// Writes started by [`Wal::write_ahead`] since the log was opened.
    pub fn early_writes(&self) -> u64 {
        self.counters.early_writes
    }

    /// Counters since the log was opened (for metrics).
    pub fn counters(&self) -> WalCounters {
        self.counters
    }

    /// Starts the writes of buffer positions `[written, upto)` and waits for
    /// the oldest writes while more than [`WRITES_IN_FLIGHT_MAX`] are in flight.
    async fn start_writes(&mut self, upto: usize) -> Result<(), WalError> {
        self.prepare_segments().await?;
        let mut queued = false;
        for piece in self.batch.pieces(self.written, upto) {
            self.counters.early_writes += 1;
            let file = Rc::clone(self.file_of(piece.seq));
            let buf = self.batch.chunk(piece.chunk).share();
            let mut write: WriteFuture =
                Box::pin(async move { file.write_range_at(piece.offset, &buf, piece.range).await });
            // One poll queues the I/O with the runtime; it is submitted to the
            // device as soon as this task next waits.
            if let Some(done) = futures_lite::future::poll_once(&mut write).await {
                done?;
            } else {
                self.in_flight.push_back(write);
                queued = true;
            }
            while self.in_flight.len() > WRITES_IN_FLIGHT_MAX {
                let oldest = self.in_flight.pop_front().expect("len > max");
                oldest.await?;
            }
        }
        self.written = upto.max(self.written);
        if queued {
            self.disk.kick().await;
        }
        Ok(())
    }

    /// Writes the rest of the batch (every piece in flight at once), waits for
    /// every write, then fdatasyncs each segment touched.
    async fn write_batch(&mut self) -> Result<(), WalError> {
        self.batch.seal();
        let end = self.batch.used().next_multiple_of(BLOCK_SIZE);
        self.start_writes_all(end).await?;
        let writes: Vec<WriteFuture> = self.in_flight.drain(..).collect();
        for result in join_all(writes).await {
            result?;
        }
        for part in self.batch.parts() {
            self.file_of(part.seq).sync().await?;
        }
        Ok(())
    }

    /// Starts every remaining write without a bound on those in flight (the
    /// batch itself is bounded by `batch_bytes_max`).
    async fn start_writes_all(&mut self, end: usize) -> Result<(), WalError> {
        self.prepare_segments().await?;
        for piece in self.batch.pieces(self.written, end) {
            let file = Rc::clone(self.file_of(piece.seq));
            let buf = self.batch.chunk(piece.chunk).share();
            self.in_flight.push_back(Box::pin(async move {
                file.write_range_at(piece.offset, &buf, piece.range).await
            }));
        }
        self.written = end;
        Ok(())
    }

    fn file_of(&self, seq: u64) -> &Rc<D::File> {
        let segment = self.segments.iter().rev().find(|s| s.seq == seq);
        segment
            .and_then(|s| s.file.as_ref())
            .expect("pending write to a prepared segment")
    }

    async fn truncate_inner(&mut self, lsn: Lsn) -> Result<(), WalError> {
        while self.segments.len() > 1 {
            let front = &self.segments[0];
            let unneeded = front.next_lsn <= lsn && front.next_lsn.0 <= self.durable_lsn.0 + 1;
            // The next segment must be on disk: its name keeps the log's position
            // (the next LSN) should every record before it go.
            if !unneeded || self.segments[1].file.is_none() {
                break;
            }
            let segment = self.segments.pop_front().expect("len > 1");
            let path = self.segment_path(segment.seq, segment.first_lsn);
            let file = segment
                .file
                .expect("a segment before the active one is on disk");
            self.free.push_back((path, file));
        }
        while self.free.len() > self.config.segments_free_max {
            let (path, file) = self.free.pop_front().expect("len > max");
            drop(file);
            self.disk.remove(&path).await?;
        }
        Ok(())
    }
}

/// Creates a segment file of `segment_bytes` at `path`: preallocated,
/// zero-filled if configured, and synced. Its name is durable only after a
/// `sync_dir`. Needs no access to the log, so an owner can make a spare
/// while writers use the log ([`Wal::adopt_spare`]).
pub async fn create_segment_file<D: Disk>(
    disk: &D,
    path: &Path,
    config: &WalConfig,
) -> Result<D::File, WalError> {
    let file = disk.open(path, OpenMode::CreateNew).await?;
    file.allocate(config.segment_bytes).await?;
    if config.zero_fill {
        let chunk = config.segment_bytes.min(ZERO_FILL_CHUNK_BYTES as u64);
        let zeros = AlignedBuf::zeroed(chunk as usize);
        let mut at = 0;
        while at < config.segment_bytes {
            let len = (config.segment_bytes - at).min(chunk);
            file.write_range_at(at, &zeros, 0..len as usize).await?;
            at += len;
        }
    }
    file.sync().await?;
    Ok(file)
}

/// The batch chunk size: [`WAL_CHUNK_BYTES`], or a segment if smaller.
fn chunk_bytes(config: &WalConfig) -> usize {
    usize::try_from(config.segment_bytes)
        .unwrap_or(usize::MAX)
        .min(WAL_CHUNK_BYTES)
}

/// Opens a segment and reads all of it (its length rounded down to a block).
async fn read_segment<D: Disk>(disk: &D, path: &Path) -> Result<(D::File, AlignedBuf), WalError> {
    let file = disk.open(path, OpenMode::Existing).await?;
    let len = file.len().await? / BLOCK_SIZE as u64 * BLOCK_SIZE as u64;
    if len > SEGMENT_BYTES_MAX {
        let detail = format!("segment file of {len} bytes exceeds {SEGMENT_BYTES_MAX}");
        return Err(WalError::Corruption {
            segment: 0,
            offset: 0,
            detail,
        });
    }
    let mut buf = AlignedBuf::zeroed(len as usize);
    if !buf.is_empty() {
        file.read_at(0, &mut buf).await?;
    }
    Ok((file, buf))
}

fn encode_header(
    meta: RecordMeta,
    payload: &[u8],
    seq: u64,
    lsn: Lsn,
    batch_lsn: Lsn,
) -> RecordHeader {
    let mut h = RecordHeader {
        checksum: U64::new(0),
        format: FORMAT_V1,
        kind: meta.kind,
        reserved: [0; 2],
        len: U32::new(
            u32::try_from(payload.len()).expect("payload bounded by RECORD_PAYLOAD_BYTES_MAX"),
        ),
        segment: U64::new(seq),
        lsn: U64::new(lsn.0),
        batch_lsn: U64::new(batch_lsn.0),
        range_id: U64::new(meta.range_id),
        term: U64::new(meta.term),
        index: U64::new(meta.index),
    };
    h.checksum = U64::new(h.compute_checksum(payload));
    h
}

fn meta_of(h: &RecordHeader) -> RecordMeta {
    RecordMeta {
        kind: h.kind,
        range_id: h.range_id.get(),
        term: h.term.get(),
        index: h.index.get(),
    }
}
