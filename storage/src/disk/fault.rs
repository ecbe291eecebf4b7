//! Test-only fault injection for the real disk: a [`FaultSwitch`] names a
//! file; while that file exists and says `eio` or `enospc`, every write,
//! fdatasync, allocation, file creation, rename and directory sync of the
//! [`DmaDisk`](super::DmaDisk) carrying the switch fails with that error.
//! Reads keep working (a device that fails its writes, as after a failed
//! fdatasync, or a full file system).
//!
//! It exists so that a real-process test can make a running node's disk fail
//! and recover at chosen moments (EIO cannot be produced on demand by a real
//! device here). It is armed only by an explicit switch (the node reads the
//! `TELLER_TEST_DISK_FAULT_FILE` environment variable); without one the real
//! disk costs nothing extra. Checking the file is a blocking `read` per
//! operation: acceptable in tests, never enabled in production.

use super::DiskError;
use std::path::PathBuf;

/// What the switch file asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    Eio,
    NoSpace,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct FaultSwitch {
    path: PathBuf,
}

impl FaultSwitch {
    pub fn new(path: PathBuf) -> Self {
        FaultSwitch { path }
    }

    /// The fault in force now: none unless the file exists and says one.
    pub fn current(&self) -> Option<InjectedFault> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        match text.trim() {
            "eio" => Some(InjectedFault::Eio),
            "enospc" => Some(InjectedFault::NoSpace),
            _ => None,
        }
    }

    /// `Err` with the fault in force, if any, for operation `op`.
    pub fn check(&self, op: &'static str) -> Result<(), DiskError> {
        match self.current() {
            None => Ok(()),
            Some(InjectedFault::NoSpace) => Err(DiskError::NoSpace),
            Some(InjectedFault::Eio) => Err(DiskError::eio(op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::dma::tests::temp_dir;

    #[test]
    fn the_switch_file_decides() {
        let dir = temp_dir("fault-switch");
        let path = dir.join("fault");
        let switch = FaultSwitch::new(path.clone());
        assert!(switch.check("write").is_ok(), "no file: no fault");
        std::fs::write(&path, "enospc\n").unwrap();
        assert!(matches!(switch.check("write"), Err(DiskError::NoSpace)));
        std::fs::write(&path, "eio").unwrap();
        let e = switch.check("fdatasync").unwrap_err();
        assert!(e.to_string().contains("fdatasync"), "{e}");
        std::fs::write(&path, "off").unwrap();
        assert!(switch.check("write").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
