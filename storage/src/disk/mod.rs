//! The disk: every byte TellerDB persists goes through the [`Disk`] trait.
//!
//! Two implementations:
//! - [`DmaDisk`]: the real disk, glommio `DmaFile`s (O_DIRECT through io_uring).
//! - [`SimDisk`]: an in-memory twin, deterministic from a seed, that models what a
//!   crash leaves behind (unsynced writes dropped, kept or torn at sector granularity)
//!   and injects faults (bit flips, EIO/ENOSPC on a countdown).
//!
//! # Contract (both implementations honour it; the simulator asserts it)
//! - Offsets and lengths of `read_at`/`write_at` are multiples of [`BLOCK_SIZE`], and
//!   buffers are [`AlignedBuf`]s (4096-byte aligned). Misalignment is a caller bug and
//!   panics.
//! - A write is durable only after `sync` (fdatasync) of its file returns `Ok`. Until
//!   then a crash may drop it, keep it, or keep any subset of its 4 KiB blocks, and a
//!   kept block may be torn at any 512-byte sector boundary.
//! - A namespace change (create, rename, remove) is durable only after `sync_dir` of
//!   its directory. Unsynced namespace changes survive a crash as a prefix, in order.
//! - A failed `sync` is fatal for the data written since the previous successful sync
//!   (the page cache may have dropped it: "fsyncgate"); callers must not retry it and
//!   assume durability.
//! - Reads of a range past the end of the file fail with [`DiskError::ShortRead`];
//!   reads of allocated but never written blocks return zeros.
//!
//! The futures are `!Send`: one disk per shard, used through generics on the shard's
//! thread.

mod aligned;
pub(crate) mod dma;
mod fault;
mod sim;

pub use aligned::AlignedBuf;
pub use dma::{probe_device, DmaDisk, DmaDiskFile, DMA_READ_CHUNK_BYTES, PROBE_FILE_NAME};
pub use fault::{FaultSwitch, InjectedFault};
pub use sim::{Fault, SimDisk, SimDiskFile, SimDiskOptions};

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Unit of O_DIRECT I/O and of buffer alignment, in bytes.
pub const BLOCK_SIZE: usize = 4096;
/// Unit a crash can tear a write at (the device's atomic write unit), in bytes.
pub const SECTOR_SIZE: usize = 512;

const _: () = assert!(BLOCK_SIZE.is_power_of_two());
const _: () = assert!(BLOCK_SIZE.is_multiple_of(SECTOR_SIZE));

/// How [`Disk::open`] treats a missing or existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing file; [`DiskError::NotFound`] if missing.
    Existing,
    /// Create a new, empty file; [`DiskError::AlreadyExists`] if present.
    CreateNew,
}

/// An operating error of the disk. Misuse (misaligned I/O) panics instead.
#[derive(Debug)]
pub enum DiskError {
    /// The file or directory does not exist.
    NotFound(PathBuf),
    /// The file already exists ([`OpenMode::CreateNew`], rename target).
    AlreadyExists(PathBuf),
    /// ENOSPC: the device is full.
    NoSpace,
    /// The range read lies (partly) past the end of the file.
    ShortRead {
        offset: u64,
        len: usize,
        file_len: u64,
    },
    /// The device accepted fewer bytes than asked.
    ShortWrite {
        offset: u64,
        len: usize,
        written: usize,
    },
    /// Any other I/O error (EIO included), with the operation that failed.
    Io {
        op: &'static str,
        source: std::io::Error,
    },
}

impl DiskError {
    /// An EIO as the simulator reports it.
    pub fn eio(op: &'static str) -> Self {
        DiskError::Io {
            op,
            source: std::io::Error::from_raw_os_error(libc::EIO),
        }
    }

    /// A copy of this error for another waiter (`io::Error` is not `Clone`):
    /// same variant, same errno when there is one.
    pub fn duplicate(&self) -> Self {
        match self {
            DiskError::NotFound(p) => DiskError::NotFound(p.clone()),
            DiskError::AlreadyExists(p) => DiskError::AlreadyExists(p.clone()),
            DiskError::NoSpace => DiskError::NoSpace,
            DiskError::ShortRead {
                offset,
                len,
                file_len,
            } => DiskError::ShortRead {
                offset: *offset,
                len: *len,
                file_len: *file_len,
            },
            DiskError::ShortWrite {
                offset,
                len,
                written,
            } => DiskError::ShortWrite {
                offset: *offset,
                len: *len,
                written: *written,
            },
            DiskError::Io { op, source } => DiskError::Io {
                op,
                source: match source.raw_os_error() {
                    Some(errno) => std::io::Error::from_raw_os_error(errno),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
        }
    }

    fn from_io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ENOENT) => DiskError::NotFound(path.to_path_buf()),
            Some(libc::EEXIST) => DiskError::AlreadyExists(path.to_path_buf()),
            Some(libc::ENOSPC) => DiskError::NoSpace,
            _ => DiskError::Io { op, source },
        }
    }
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::NotFound(p) => write!(f, "not found: {}", p.display()),
            DiskError::AlreadyExists(p) => write!(f, "already exists: {}", p.display()),
            DiskError::NoSpace => write!(f, "no space left on device"),
            DiskError::ShortRead {
                offset,
                len,
                file_len,
            } => {
                write!(
                    f,
                    "short read: {len} bytes at {offset}, file is {file_len} bytes"
                )
            }
            DiskError::ShortWrite {
                offset,
                len,
                written,
            } => {
                write!(f, "short write: {written} of {len} bytes at {offset}")
            }
            DiskError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

impl std::error::Error for DiskError {}

/// A file system of one shard. See the module docs for the durability contract.
/// Handles are cheap to clone and share the same disk.
// The futures are deliberately `!Send` (thread-per-core); the trait is used through
// generics only, so the missing `Send` bound the lint warns about is intended.
#[allow(async_fn_in_trait)]
pub trait Disk: Clone {
    type File: DiskFile + 'static;

    /// Opens (or creates) a file for reading and writing.
    async fn open(&self, path: &Path, mode: OpenMode) -> Result<Self::File, DiskError>;
    /// Removes a file. Durable after `sync_dir` of its directory.
    async fn remove(&self, path: &Path) -> Result<(), DiskError>;
    /// Renames a file, replacing `to` if it exists. Durable after `sync_dir`.
    async fn rename(&self, from: &Path, to: &Path) -> Result<(), DiskError>;
    /// The names (not paths) of the files in a directory, sorted.
    async fn list(&self, dir: &Path) -> Result<Vec<String>, DiskError>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    async fn sync_dir(&self, dir: &Path) -> Result<(), DiskError>;
    /// Lets I/O that was started but not awaited reach the device now. The
    /// real disk's runtime submits requests only when the task waits, so a
    /// task that queues writes and goes on computing calls this to overlap
    /// the two. The default does nothing (a disk whose I/O starts at once).
    async fn kick(&self) {}
}

/// An open file. Offsets and lengths are multiples of [`BLOCK_SIZE`].
// `len` is a file length query, not a collection size: no `is_empty` needed.
#[allow(async_fn_in_trait, clippy::len_without_is_empty)]
pub trait DiskFile {
    /// Fills `buf` from `offset`.
    async fn read_at(&self, offset: u64, buf: &mut AlignedBuf) -> Result<(), DiskError>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    async fn write_at(&self, offset: u64, buf: &AlignedBuf) -> Result<(), DiskError>;
    /// Writes `buf[range]` at `offset` (`range` block-aligned). The real disk
    /// writes a whole buffer without copying it; a part of one costs a copy
    /// (this default: into a new buffer).
    async fn write_range_at(
        &self,
        offset: u64,
        buf: &AlignedBuf,
        range: Range<usize>,
    ) -> Result<(), DiskError> {
        assert_aligned(range.start as u64, range.len());
        if range == (0..buf.len()) {
            return self.write_at(offset, buf).await;
        }
        let mut part = AlignedBuf::zeroed(range.len());
        part.as_mut_slice().copy_from_slice(&buf.as_slice()[range]);
        self.write_at(offset, &part).await
    }
    /// fdatasync: makes every completed write (and the file length) durable.
    async fn sync(&self) -> Result<(), DiskError>;
    /// Preallocates the file to at least `len` bytes (reads there return zeros).
    async fn allocate(&self, len: u64) -> Result<(), DiskError>;
    /// The file length in bytes.
    async fn len(&self) -> Result<u64, DiskError>;
}

/// Panics unless `offset` and `len` are aligned to [`BLOCK_SIZE`].
fn assert_aligned(offset: u64, len: usize) {
    assert!(
        offset.is_multiple_of(BLOCK_SIZE as u64) && len.is_multiple_of(BLOCK_SIZE),
        "misaligned direct I/O: offset {offset}, len {len}"
    );
}
