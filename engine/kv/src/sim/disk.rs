//! [`StoreDisk`]: one life of a simulated store's disk.
//!
//! A crashed store's tasks die, but futures elsewhere in the simulation
//! (a gateway that was executing a request on the store in place, say a
//! split's flush) may still hold its LSM. In a real crash the process is
//! gone; here its handle is *fenced*: every later operation through it or
//! its open files fails with EIO, so the dead incarnation can never touch
//! the files the restarted one owns.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use teller_storage::disk::{AlignedBuf, Disk, DiskError, DiskFile, OpenMode, SimDisk, SimDiskFile};

/// A store's handle on its [`SimDisk`] for one life of the store.
#[derive(Clone)]
pub struct StoreDisk {
    disk: SimDisk,
    alive: Rc<Cell<bool>>,
}

impl StoreDisk {
    pub fn new(disk: SimDisk) -> StoreDisk {
        StoreDisk {
            disk,
            alive: Rc::new(Cell::new(true)),
        }
    }

    /// The store died: every later operation through this handle fails.
    pub fn fence(&self) {
        self.alive.set(false);
    }

    fn check(&self, op: &'static str) -> Result<(), DiskError> {
        check(&self.alive, op)
    }
}

fn check(alive: &Cell<bool>, op: &'static str) -> Result<(), DiskError> {
    if alive.get() {
        Ok(())
    } else {
        Err(DiskError::eio(op))
    }
}

/// A file opened through a [`StoreDisk`].
pub struct StoreFile {
    file: SimDiskFile,
    alive: Rc<Cell<bool>>,
}

impl Disk for StoreDisk {
    type File = StoreFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> Result<StoreFile, DiskError> {
        self.check("open")?;
        let file = self.disk.open(path, mode).await?;
        Ok(StoreFile {
            file,
            alive: self.alive.clone(),
        })
    }

    async fn remove(&self, path: &Path) -> Result<(), DiskError> {
        self.check("remove")?;
        self.disk.remove(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), DiskError> {
        self.check("rename")?;
        self.disk.rename(from, to).await
    }

    async fn list(&self, dir: &Path) -> Result<Vec<String>, DiskError> {
        self.check("list")?;
        self.disk.list(dir).await
    }

    async fn sync_dir(&self, dir: &Path) -> Result<(), DiskError> {
        self.check("sync_dir")?;
        self.disk.sync_dir(dir).await
    }
}

impl DiskFile for StoreFile {
    async fn read_at(&self, offset: u64, buf: &mut AlignedBuf) -> Result<(), DiskError> {
        check(&self.alive, "read_at")?;
        self.file.read_at(offset, buf).await
    }

    async fn write_at(&self, offset: u64, buf: &AlignedBuf) -> Result<(), DiskError> {
        check(&self.alive, "write_at")?;
        self.file.write_at(offset, buf).await
    }

    async fn sync(&self) -> Result<(), DiskError> {
        check(&self.alive, "sync")?;
        self.file.sync().await
    }

    async fn allocate(&self, len: u64) -> Result<(), DiskError> {
        check(&self.alive, "allocate")?;
        self.file.allocate(len).await
    }

    async fn len(&self) -> Result<u64, DiskError> {
        check(&self.alive, "len")?;
        self.file.len().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teller_storage::disk::SimDiskOptions;

    fn now<T>(f: impl std::future::Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("simulated disk pending"),
        }
    }

    #[test]
    fn a_fenced_handle_and_its_files_fail_and_a_new_one_works() {
        let sim = SimDisk::new(SimDiskOptions { seed: 1 });
        let old = StoreDisk::new(sim.clone());
        let path = Path::new("/d/f");
        let file = now(old.open(path, OpenMode::CreateNew)).unwrap();
        let buf = AlignedBuf::zeroed(4096);
        now(file.write_at(0, &buf)).unwrap();
        old.fence();
        assert!(now(file.write_at(0, &buf)).is_err());
        assert!(now(old.list(Path::new("/d"))).is_err());
        let new = StoreDisk::new(sim);
        assert_eq!(
            now(new.list(Path::new("/d"))).unwrap(),
            vec!["f".to_string()]
        );
    }
}
