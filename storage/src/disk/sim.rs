//! [`SimDisk`]: the in-memory, deterministic, fault-injecting twin of [`DmaDisk`].
//!
//! # Model
//! Each file (inode) keeps its *durable* image (what survives a crash) and its
//! *current* image (what reads see), plus the list of writes since the last `sync`.
//! `sync` makes the current image durable. [`SimDisk::crash`] rebuilds each durable
//! image from the unsynced writes, chosen by the seeded RNG, per crash, among:
//! drop them all, keep them all, or decide per 4 KiB block — keep, drop, tear
//! (the first k 512-byte sectors new, the rest old), or scramble (random bytes: a
//! device that loses power mid-write may leave the block unreadable or garbage). Namespace changes are logged
//! per directory; `sync_dir` makes a directory's changes durable and a crash keeps
//! a random prefix of the unsynced ones.
//!
//! Faults: [`SimDisk::flip_bit`] corrupts a byte on the "media" (both images);
//! [`SimDisk::fail_after`] arms a countdown of operations after which every
//! operation fails with EIO, or every write/allocate/create with ENOSPC, until
//! [`SimDisk::clear_fault`] or a crash.
//!
//! Every future completes at once (unless [`SimDisk::set_sync_yields`] asks syncs
//! to yield): drive them with `futures_lite::future::block_on`.
//!
//! [`DmaDisk`]: super::DmaDisk

use super::{
    assert_aligned, AlignedBuf, Disk, DiskError, DiskFile, OpenMode, BLOCK_SIZE, SECTOR_SIZE,
};
use crate::rng::SimRng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A fault [`SimDisk::fail_after`] injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every operation fails with EIO (a dead device; also models a crash point).
    Eio,
    /// Writes, allocations and creates fail with ENOSPC; reads and syncs succeed.
    NoSpace,
}

#[derive(Clone, Debug)]
pub struct SimDiskOptions {
    pub seed: u64,
}

type InodeId = u64;

/// What a crash may do to an unsynced block: drop, keep, tear, scramble.
const BLOCK_FATES: u64 = 4;

#[derive(Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last sync, in order: (offset, bytes).
    unsynced: Vec<(u64, Vec<u8>)>,
}

#[derive(Clone, Debug)]
enum NsOp {
    Link(PathBuf, InodeId),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
}

impl NsOp {
    fn dir(&self) -> PathBuf {
        let p = match self {
            NsOp::Link(p, _) | NsOp::Remove(p) => p,
            NsOp::Rename(_, to) => to,
        };
        parent(p)
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, InodeId>) {
        match self {
            NsOp::Link(p, ino) => {
                names.insert(p.clone(), *ino);
            }
            NsOp::Rename(from, to) => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            NsOp::Remove(p) => {
                names.remove(p);
            }
        }
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

struct State {
    rng: SimRng,
    inodes: BTreeMap<InodeId, Inode>,
    inode_next: InodeId,
    names: BTreeMap<PathBuf, InodeId>,
    names_durable: BTreeMap<PathBuf, InodeId>,
    /// Namespace changes not yet made durable by `sync_dir`, in order.
    ns_unsynced: Vec<NsOp>,
    countdown: Option<(u64, Fault)>,
    failing: Option<Fault>,
    ops: u64,
    /// Times each `sync` yields to the executor before completing.
    sync_yields: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Read,
    Write,
    Sync,
}

impl State {
    /// Counts an operation and applies the armed fault, if any.
    fn check(&mut self, op: &'static str, kind: OpKind) -> Result<(), DiskError> {
        self.ops += 1;
        if let Some((left, fault)) = self.countdown {
            if left == 0 {
                self.failing = Some(fault);
                self.countdown = None;
            } else {
                self.countdown = Some((left - 1, fault));
            }
        }
        match self.failing {
            Some(Fault::Eio) => Err(DiskError::eio(op)),
            Some(Fault::NoSpace) if kind == OpKind::Write => Err(DiskError::NoSpace),
            _ => Ok(()),
        }
    }

    fn inode(&mut self, id: InodeId) -> &mut Inode {
        self.inodes
            .get_mut(&id)
            .expect("SimDisk: open file without inode")
    }

    fn ns(&mut self, op: NsOp) {
        op.apply(&mut self.names);
        self.ns_unsynced.push(op);
    }

    fn crash(&mut self) {
        // 0: drop all unsynced writes, 1: keep all, 2: per block.
        let mode = self.rng.below(3);
        let ids: Vec<InodeId> = self.inodes.keys().copied().collect();
        for id in ids {
            let mut inode = std::mem::take(self.inode(id));
            let mut image = std::mem::take(&mut inode.durable);
            for (offset, data) in &inode.unsynced {
                for (i, block) in data.chunks(BLOCK_SIZE).enumerate() {
                    let at = *offset as usize + i * BLOCK_SIZE;
                    let choice = match mode {
                        0 => 0,
                        1 => 1,
                        _ => self.rng.below(BLOCK_FATES),
                    };
                    if choice == 0 {
                        continue; // Dropped: the old content stays.
                    }
                    if image.len() < at + block.len() {
                        image.resize(at + block.len(), 0);
                    }
                    let target = &mut image[at..at + block.len()];
                    match choice {
                        1 => target.copy_from_slice(block),
                        2 => {
                            let sectors = (block.len() / SECTOR_SIZE) as u64;
                            let new = self.rng.range(1, sectors.max(2) - 1) as usize * SECTOR_SIZE;
                            target[..new].copy_from_slice(&block[..new]);
                        }
                        _ => self.rng.fill(target), // Scrambled mid-write.
                    }
                }
            }
            inode.current = image.clone();
            inode.durable = image;
            inode.unsynced.clear();
            self.inodes.insert(id, inode);
        }
        let keep = self.rng.below(self.ns_unsynced.len() as u64 + 1) as usize;
        for op in self.ns_unsynced.drain(..keep) {
            op.apply(&mut self.names_durable);
        }
        self.ns_unsynced.clear();
        self.names = self.names_durable.clone();
        self.countdown = None;
        self.failing = None;
    }
}

/// The simulated disk. Cloning shares the same state (one disk, many handles).
#[derive(Clone)]
pub struct SimDisk {
    state: Rc<RefCell<State>>,
}

impl SimDisk {
    pub fn new(options: SimDiskOptions) -> Self {
        let state = State {
            rng: SimRng::new(options.seed),
            inodes: BTreeMap::new(),
            inode_next: 1,
            names: BTreeMap::new(),
            names_durable: BTreeMap::new(),
            ns_unsynced: Vec::new(),
            countdown: None,
            failing: None,
            ops: 0,
            sync_yields: 0,
        };
        SimDisk {
            state: Rc::new(RefCell::new(state)),
        }
    }

    /// Power loss: unsynced writes and namespace changes are dropped, kept or torn
    /// (see the module docs). Open handles must not be used afterwards. Clears faults.
    pub fn crash(&self) {
        self.state.borrow_mut().crash();
    }

    /// After `ops` more operations succeed, every operation fails as `fault` says.
    pub fn fail_after(&self, ops: u64, fault: Fault) {
        let mut s = self.state.borrow_mut();
        s.countdown = Some((ops, fault));
        s.failing = None;
    }

    pub fn clear_fault(&self) {
        let mut s = self.state.borrow_mut();
        s.countdown = None;
        s.failing = None;
    }

    /// Makes every `sync` yield `n` times before it completes, as a real fsync
    /// suspends its task: concurrent tasks (e.g. writers joining a group commit)
    /// then interleave with it.
    pub fn set_sync_yields(&self, n: u32) {
        self.state.borrow_mut().sync_yields = n;
    }

    /// Operations performed so far (each `Disk`/`DiskFile` call counts one).
    pub fn op_count(&self) -> u64 {
        self.state.borrow().ops
    }

    /// Flips bit `bit` (counted from byte 0, LSB first) of the file at `path`, on
    /// the media: in both the durable and the current image. Panics if the file or
    /// the bit does not exist (test misuse).
    pub fn flip_bit(&self, path: &Path, bit: u64) {
        let mut s = self.state.borrow_mut();
        let id = *s.names.get(path).expect("flip_bit: no such file");
        let inode = s.inode(id);
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        for image in [&mut inode.current, &mut inode.durable] {
            if let Some(b) = image.get_mut(byte) {
                *b ^= mask;
            }
        }
    }

    /// The names in `dir`, like [`Disk::list`] but without counting an operation or
    /// triggering a fault (for tests and tracing).
    pub fn peek_names(&self, dir: &Path) -> Vec<String> {
        let s = self.state.borrow();
        let names = s.names.keys().filter(|p| p.parent() == Some(dir));
        names
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect()
    }

    /// The current length of the file at `path`, if it exists (for tests).
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let mut s = self.state.borrow_mut();
        let id = *s.names.get(path)?;
        Some(s.inode(id).current.len() as u64)
    }
}

impl Disk for SimDisk {
    type File = SimDiskFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> Result<SimDiskFile, DiskError> {
        let mut s = self.state.borrow_mut();
        let kind = if mode == OpenMode::CreateNew {
            OpKind::Write
        } else {
            OpKind::Read
        };
        s.check("open", kind)?;
        let inode = match (mode, s.names.get(path).copied()) {
            (OpenMode::Existing, Some(id)) => id,
            (OpenMode::Existing, None) => return Err(DiskError::NotFound(path.to_path_buf())),
            (OpenMode::CreateNew, Some(_)) => {
                return Err(DiskError::AlreadyExists(path.to_path_buf()))
            }
            (OpenMode::CreateNew, None) => {
                let id = s.inode_next;
                s.inode_next += 1;
                s.inodes.insert(id, Inode::default());
                s.ns(NsOp::Link(path.to_path_buf(), id));
                id
            }
        };
        Ok(SimDiskFile {
            state: Rc::clone(&self.state),
            inode,
        })
    }

    async fn remove(&self, path: &Path) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        s.check("remove", OpKind::Sync)?;
        if !s.names.contains_key(path) {
            return Err(DiskError::NotFound(path.to_path_buf()));
        }
        s.ns(NsOp::Remove(path.to_path_buf()));
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        s.check("rename", OpKind::Sync)?;
        if !s.names.contains_key(from) {
            return Err(DiskError::NotFound(from.to_path_buf()));
        }
        assert_eq!(
            parent(from),
            parent(to),
            "SimDisk: rename across directories"
        );
        s.ns(NsOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    async fn list(&self, dir: &Path) -> Result<Vec<String>, DiskError> {
        let mut s = self.state.borrow_mut();
        s.check("list", OpKind::Read)?;
        let names = s
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect();
        Ok(names)
    }

    async fn sync_dir(&self, dir: &Path) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        s.check("sync_dir", OpKind::Sync)?;
        let (now, later): (Vec<NsOp>, Vec<NsOp>) = std::mem::take(&mut s.ns_unsynced)
            .into_iter()
            .partition(|op| op.dir() == dir);
        for op in now {
            op.apply(&mut s.names_durable);
        }
        s.ns_unsynced = later;
        Ok(())
    }
}

/// An open file of a [`SimDisk`].
pub struct SimDiskFile {
    state: Rc<RefCell<State>>,
    inode: InodeId,
}

impl SimDiskFile {
    fn write_bytes(&self, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        assert_aligned(offset, bytes.len());
        let mut s = self.state.borrow_mut();
        s.check("write_at", OpKind::Write)?;
        let inode = s.inode(self.inode);
        let (start, end) = (offset as usize, offset as usize + bytes.len());
        if inode.current.len() < end {
            inode.current.resize(end, 0);
        }
        inode.current[start..end].copy_from_slice(bytes);
        inode.unsynced.push((offset, bytes.to_vec()));
        Ok(())
    }
}

impl DiskFile for SimDiskFile {
    async fn read_at(&self, offset: u64, buf: &mut AlignedBuf) -> Result<(), DiskError> {
        assert_aligned(offset, buf.len());
        let mut s = self.state.borrow_mut();
        s.check("read_at", OpKind::Read)?;
        let image = &s.inode(self.inode).current;
        let (start, end) = (offset as usize, offset as usize + buf.len());
        if end > image.len() {
            let file_len = image.len() as u64;
            return Err(DiskError::ShortRead {
                offset,
                len: buf.len(),
                file_len,
            });
        }
        buf.as_mut_slice().copy_from_slice(&image[start..end]);
        Ok(())
    }

    async fn write_at(&self, offset: u64, buf: &AlignedBuf) -> Result<(), DiskError> {
        self.write_bytes(offset, buf.as_slice())
    }

    async fn write_range_at(
        &self,
        offset: u64,
        buf: &AlignedBuf,
        range: Range<usize>,
    ) -> Result<(), DiskError> {
        assert_aligned(range.start as u64, range.len());
        self.write_bytes(offset, &buf.as_slice()[range])
    }

    async fn sync(&self) -> Result<(), DiskError> {
        let yields = self.state.borrow().sync_yields;
        for _ in 0..yields {
            crate::sync::yield_now().await;
        }
        let mut s = self.state.borrow_mut();
        s.check("sync", OpKind::Sync)?;
        let inode = s.inode(self.inode);
        inode.durable = inode.current.clone();
        inode.unsynced.clear();
        Ok(())
    }

    async fn allocate(&self, len: u64) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        s.check("allocate", OpKind::Write)?;
        let inode = s.inode(self.inode);
        if (inode.current.len() as u64) < len {
            inode.current.resize(len as usize, 0);
        }
        Ok(())
    }

    async fn len(&self) -> Result<u64, DiskError> {
        let mut s = self.state.borrow_mut();
        s.check("len", OpKind::Read)?;
        Ok(s.inode(self.inode).current.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn disk(seed: u64) -> SimDisk {
        SimDisk::new(SimDiskOptions { seed })
    }

    fn block(byte: u8) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(BLOCK_SIZE);
        b.as_mut_slice().fill(byte);
        b
    }

    #[test]
    fn synced_data_survives_unsynced_may_not() {
        block_on(async {
            // Fates of the unsynced block seen: dropped, kept, torn, scrambled.
            let mut seen = [0; 4];
            for seed in 0..200 {
                let d = disk(seed);
                let p = Path::new("/d/f");
                let f = d.open(p, OpenMode::CreateNew).await.unwrap();
                f.write_at(0, &block(1)).await.unwrap();
                f.sync().await.unwrap();
                d.sync_dir(Path::new("/d")).await.unwrap();
                f.write_at(BLOCK_SIZE as u64, &block(2)).await.unwrap();
                d.crash();
                let f = d.open(p, OpenMode::Existing).await.unwrap();
                let mut b = AlignedBuf::zeroed(BLOCK_SIZE);
                f.read_at(0, &mut b).await.unwrap();
                assert!(b.as_slice().iter().all(|&x| x == 1), "synced block damaged");
                if f.len().await.unwrap() == BLOCK_SIZE as u64 {
                    seen[0] += 1;
                    continue;
                }
                f.read_at(BLOCK_SIZE as u64, &mut b).await.unwrap();
                let new = b.as_slice().iter().take_while(|&&x| x == 2).count();
                let torn = new % SECTOR_SIZE == 0 && b.as_slice()[new..].iter().all(|&x| x == 0);
                let fate = match (new, torn) {
                    (0, true) => 0,
                    (BLOCK_SIZE, _) => 1,
                    (_, true) => 2,
                    _ => 3,
                };
                seen[fate] += 1;
            }
            assert!(seen.iter().all(|&n| n > 5), "fates {seen:?}");
        });
    }

    #[test]
    fn unsynced_create_and_rename_may_vanish() {
        block_on(async {
            let mut seen = [false; 2];
            for seed in 0..32 {
                let d = disk(seed);
                d.open(Path::new("/d/a"), OpenMode::CreateNew)
                    .await
                    .unwrap();
                d.sync_dir(Path::new("/d")).await.unwrap();
                d.rename(Path::new("/d/a"), Path::new("/d/b"))
                    .await
                    .unwrap();
                d.crash();
                let names = d.list(Path::new("/d")).await.unwrap();
                assert!(names == ["a"] || names == ["b"], "{names:?}");
                seen[usize::from(names == ["b"])] = true;
            }
            assert_eq!(seen, [true, true]);
        });
    }

    #[test]
    fn faults_on_countdown() {
        block_on(async {
            let d = disk(1);
            let f = d
                .open(Path::new("/d/f"), OpenMode::CreateNew)
                .await
                .unwrap();
            d.fail_after(1, Fault::NoSpace);
            f.write_at(0, &block(1)).await.unwrap();
            assert!(matches!(
                f.write_at(0, &block(1)).await,
                Err(DiskError::NoSpace)
            ));
            f.sync().await.unwrap();
            d.fail_after(0, Fault::Eio);
            assert!(matches!(f.sync().await, Err(DiskError::Io { .. })));
            d.clear_fault();
            f.sync().await.unwrap();
            d.flip_bit(Path::new("/d/f"), 9);
            let mut b = AlignedBuf::zeroed(BLOCK_SIZE);
            f.read_at(0, &mut b).await.unwrap();
            assert_eq!(b.as_slice()[1], 1 ^ 2);
            let short = f.read_at(BLOCK_SIZE as u64, &mut b).await;
            assert!(matches!(short, Err(DiskError::ShortRead { .. })));
        });
    }
}
