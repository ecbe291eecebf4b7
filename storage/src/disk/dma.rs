//! [`DmaDisk`]: the real disk — glommio `DmaFile`s, O_DIRECT through io_uring.
//!
//! Must be used inside a glommio `LocalExecutor`. Quirks of glommio 0.9 on this
//! class of machine, and how this module handles them:
//! - `DmaFile::create` opens write-only; files are opened read-write through
//!   `OpenOptions` instead.
//! - glommio decides per device whether to use polled I/O from the first file it
//!   opens, and the probe misfires on an empty file. Call [`probe_device`] on the
//!   data directory once per executor, before any other I/O on that device.
//! - Executors must set `io_memory` explicitly (e.g. 4 MiB) since the default
//!   locked-memory limit (8 MiB) is shared by everything locked in the process.
//!   Reads are split into chunks of at most [`DMA_READ_CHUNK_BYTES`] (glommio
//!   allocates each read's buffer from that arena).
//!
//! Writes copy nothing: an [`AlignedBuf`] *is* a glommio `DmaBuffer` (behind an
//! `Rc`), handed to io_uring as it is, one I/O per call whatever its size (the
//! block layer splits it across the device queue). Only
//! [`DiskFile::write_range_at`] of a part of a buffer copies that part, into a
//! buffer from glommio's registered arena. Reads copy once, from glommio's
//! buffer into the caller's.
//!
//! `list` and `probe_device` use blocking `std::fs` calls: they are for startup and
//! recovery only, never the request path.
//!
//! glommio 0.9 opens paths with `openat(-1, ..)` rather than `AT_FDCWD`
//! (`Directory::open` at least), so a relative path fails with EBADF:
//! directories are made absolute (against the working directory) before they
//! reach glommio.

use super::{assert_aligned, AlignedBuf, Disk, DiskError, DiskFile, FaultSwitch, OpenMode};
use glommio::io::{DmaFile, OpenOptions};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Largest single read submitted to glommio, in bytes (its buffer comes from
/// the executor's `io_memory` arena).
pub const DMA_READ_CHUNK_BYTES: usize = 1024 * 1024;
/// How long [`DmaDisk::kick`](Disk::kick) suspends the task so that the
/// executor submits queued I/O (it does so only when no task is runnable).
pub const KICK_DELAY: std::time::Duration = std::time::Duration::from_micros(10);
/// The file [`probe_device`] creates in the data directory.
pub const PROBE_FILE_NAME: &str = "probe";
const PROBE_FILE_BYTES: usize = 4096;

const _: () = assert!(DMA_READ_CHUNK_BYTES.is_multiple_of(super::BLOCK_SIZE));

/// Makes glommio's per-device polled-I/O detection see a non-empty file: ensures
/// `dir/probe` exists with 4 KiB of data, then opens it with O_DIRECT.
/// Call once per executor before other I/O on the device holding `dir`.
pub async fn probe_device(dir: &Path) -> Result<(), DiskError> {
    let path = dir.join(PROBE_FILE_NAME);
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        std::fs::write(&path, [0xAB_u8; PROBE_FILE_BYTES])
            .map_err(|e| DiskError::from_io("probe write", &path, e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .dma_open(&path)
        .await
        .map_err(|e| glommio_err("probe open", &path, e))?;
    file.close()
        .await
        .map_err(|e| glommio_err("probe close", &path, e))
}

/// Keeps the errno when glommio wraps an `io::Error` with context.
fn glommio_err(op: &'static str, path: &Path, e: glommio::GlommioError<()>) -> DiskError {
    match e.raw_os_error() {
        Some(errno) => DiskError::from_io(op, path, std::io::Error::from_raw_os_error(errno)),
        None => DiskError::from_io(op, path, e.into()),
    }
}

/// The real disk. Every file carries its own descriptor; the disk itself only
/// holds the optional test-only [`FaultSwitch`].
#[derive(Clone, Debug, Default)]
pub struct DmaDisk {
    faults: Option<Rc<FaultSwitch>>,
}

impl DmaDisk {
    pub fn new() -> Self {
        DmaDisk { faults: None }
    }

    /// A disk whose writes fail while `switch` says so (tests only: see
    /// [`FaultSwitch`]).
    pub fn with_fault_switch(switch: FaultSwitch) -> Self {
        DmaDisk {
            faults: Some(Rc::new(switch)),
        }
    }

    fn check(faults: &Option<Rc<FaultSwitch>>, op: &'static str) -> Result<(), DiskError> {
        faults.as_ref().map_or(Ok(()), |f| f.check(op))
    }
}

impl Disk for DmaDisk {
    type File = DmaDiskFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> Result<DmaDiskFile, DiskError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if mode == OpenMode::CreateNew {
            Self::check(&self.faults, "create")?;
            options.create_new(true);
        }
        let file = options
            .dma_open(path)
            .await
            .map_err(|e| glommio_err("open", path, e))?;
        Ok(DmaDiskFile {
            file,
            path: path.to_path_buf(),
            faults: self.faults.clone(),
        })
    }

    async fn remove(&self, path: &Path) -> Result<(), DiskError> {
        glommio::io::remove(path)
            .await
            .map_err(|e| glommio_err("remove", path, e))
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), DiskError> {
        Self::check(&self.faults, "rename")?;
        glommio::io::rename(from, to)
            .await
            .map_err(|e| glommio_err("rename", from, e))
    }

    async fn list(&self, dir: &Path) -> Result<Vec<String>, DiskError> {
        let entries = std::fs::read_dir(dir).map_err(|e| DiskError::from_io("list", dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DiskError::from_io("list", dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    async fn kick(&self) {
        // glommio queues requests and submits them to the ring when the
        // executor polls for I/O, which it does once no task is runnable: a
        // short timer makes this task wait, so the queue goes out now.
        glommio::timer::sleep(KICK_DELAY).await;
    }

    async fn sync_dir(&self, dir: &Path) -> Result<(), DiskError> {
        Self::check(&self.faults, "sync_dir")?;
        let dir = &std::path::absolute(dir).map_err(|e| DiskError::from_io("sync_dir", dir, e))?;
        let d = glommio::io::Directory::open(dir)
            .await
            .map_err(|e| glommio_err("sync_dir open", dir, e))?;
        d.sync()
            .await
            .map_err(|e| glommio_err("sync_dir", dir, e))?;
        d.close()
            .await
            .map_err(|e| glommio_err("sync_dir close", dir, e))
    }
}

/// An open O_DIRECT file.
pub struct DmaDiskFile {
    file: DmaFile,
    path: PathBuf,
    faults: Option<Rc<FaultSwitch>>,
}

impl DmaDiskFile {
    /// After a write of `buf[range]` at `at` that wrote `written` bytes:
    /// writes the rest. The kernel ends a direct write short when the file
    /// system fills up midway; writing the rest then reports why (ENOSPC),
    /// instead of a bare short write. A write of nothing, or of a part that
    /// is not block-aligned, is a [`DiskError::ShortWrite`].
    async fn finish_write(
        &self,
        at: u64,
        buf: &AlignedBuf,
        range: Range<usize>,
        written: usize,
    ) -> Result<(), DiskError> {
        if written == range.len() {
            return Ok(());
        }
        let len = range.len();
        if written == 0 || !written.is_multiple_of(super::BLOCK_SIZE) || written > len {
            return Err(DiskError::ShortWrite {
                offset: at,
                len,
                written,
            });
        }
        let rest = range.start + written..range.end;
        Box::pin(self.write_range_at(at + written as u64, buf, rest)).await
    }

    fn err(&self, op: &'static str) -> impl FnOnce(glommio::GlommioError<()>) -> DiskError + '_ {
        move |e| glommio_err(op, &self.path, e)
    }
}

impl DiskFile for DmaDiskFile {
    async fn read_at(&self, offset: u64, buf: &mut AlignedBuf) -> Result<(), DiskError> {
        assert_aligned(offset, buf.len());
        let len = buf.len();
        for (i, chunk) in buf
            .as_mut_slice()
            .chunks_mut(DMA_READ_CHUNK_BYTES)
            .enumerate()
        {
            let at = offset + (i * DMA_READ_CHUNK_BYTES) as u64;
            let read = self
                .file
                .read_at_aligned(at, chunk.len())
                .await
                .map_err(self.err("read_at"))?;
            if read.len() < chunk.len() {
                let file_len = at + read.len() as u64;
                return Err(DiskError::ShortRead {
                    offset,
                    len,
                    file_len,
                });
            }
            chunk.copy_from_slice(&read[..chunk.len()]);
        }
        Ok(())
    }

    async fn write_at(&self, offset: u64, buf: &AlignedBuf) -> Result<(), DiskError> {
        assert_aligned(offset, buf.len());
        DmaDisk::check(&self.faults, "write_at")?;
        let Some(dma) = buf.dma() else {
            return Ok(());
        };
        let written = self
            .file
            .write_rc_at(Rc::clone(dma), offset)
            .await
            .map_err(self.err("write_at"))?;
        self.finish_write(offset, buf, 0..buf.len(), written).await
    }

    async fn write_range_at(
        &self,
        offset: u64,
        buf: &AlignedBuf,
        range: Range<usize>,
    ) -> Result<(), DiskError> {
        assert_aligned(offset, range.len());
        assert_aligned(range.start as u64, range.len());
        if range == (0..buf.len()) {
            return self.write_at(offset, buf).await;
        }
        if range.is_empty() {
            return Ok(());
        }
        DmaDisk::check(&self.faults, "write_at")?;
        let mut part = self.file.alloc_dma_buffer(range.len());
        part.as_bytes_mut()
            .copy_from_slice(&buf.as_slice()[range.clone()]);
        let written = self
            .file
            .write_at(part, offset)
            .await
            .map_err(self.err("write_at"))?;
        self.finish_write(offset, buf, range, written).await
    }

    async fn sync(&self) -> Result<(), DiskError> {
        DmaDisk::check(&self.faults, "fdatasync")?;
        self.file.fdatasync().await.map_err(self.err("fdatasync"))
    }

    async fn allocate(&self, len: u64) -> Result<(), DiskError> {
        if self.len().await? >= len {
            return Ok(());
        }
        DmaDisk::check(&self.faults, "allocate")?;
        self.file
            .pre_allocate(len, false)
            .await
            .map_err(self.err("allocate"))
    }

    async fn len(&self) -> Result<u64, DiskError> {
        self.file.file_size().await.map_err(self.err("len"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::disk::BLOCK_SIZE;

    /// A fresh directory under the system temp dir, unique per test and process.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("teller-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    /// Runs `f` in a glommio executor sized for this machine's locked-memory limit.
    pub(crate) fn run_in_executor<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default()
            .io_memory(4 << 20)
            .spawn(f)
            .expect("spawn executor")
            .join()
            .expect("executor panicked");
    }

    #[test]
    fn dma_disk_round_trip() {
        let dir = temp_dir("dma");
        let d2 = dir.clone();
        run_in_executor(move || async move {
            let dir = d2;
            probe_device(&dir).await.unwrap();
            let disk = DmaDisk::new();
            let path = dir.join("f");
            let f = disk.open(&path, OpenMode::CreateNew).await.unwrap();
            assert!(matches!(
                disk.open(&path, OpenMode::CreateNew).await,
                Err(DiskError::AlreadyExists(_))
            ));
            f.allocate(4 * BLOCK_SIZE as u64).await.unwrap();
            assert_eq!(f.len().await.unwrap(), 4 * BLOCK_SIZE as u64);
            let mut data = AlignedBuf::zeroed(2 * BLOCK_SIZE);
            for (i, b) in data.as_mut_slice().iter_mut().enumerate() {
                *b = i as u8;
            }
            f.write_at(BLOCK_SIZE as u64, &data).await.unwrap();
            f.sync().await.unwrap();
            let mut back = AlignedBuf::zeroed(3 * BLOCK_SIZE);
            f.read_at(0, &mut back).await.unwrap();
            assert!(back.as_slice()[..BLOCK_SIZE].iter().all(|&b| b == 0));
            assert_eq!(&back.as_slice()[BLOCK_SIZE..], data.as_slice());
            let mut past = AlignedBuf::zeroed(2 * BLOCK_SIZE);
            let short = f.read_at(3 * BLOCK_SIZE as u64, &mut past).await;
            assert!(
                matches!(short, Err(DiskError::ShortRead { .. })),
                "{short:?}"
            );
            drop(f);
            let to = dir.join("g");
            disk.rename(&path, &to).await.unwrap();
            disk.sync_dir(&dir).await.unwrap();
            // A relative directory (glommio alone would fail it with EBADF).
            disk.sync_dir(Path::new(".")).await.unwrap();
            assert_eq!(disk.list(&dir).await.unwrap(), ["g", PROBE_FILE_NAME]);
            let g = disk.open(&to, OpenMode::Existing).await.unwrap();
            let mut again = AlignedBuf::zeroed(2 * BLOCK_SIZE);
            g.read_at(BLOCK_SIZE as u64, &mut again).await.unwrap();
            assert_eq!(again.as_slice(), data.as_slice());
            disk.remove(&to).await.unwrap();
            assert!(matches!(
                disk.open(&to, OpenMode::Existing).await,
                Err(DiskError::NotFound(_))
            ));
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
