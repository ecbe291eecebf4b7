//! [`EngineError`]: every operating error the engine reports, with the
//! PostgreSQL SQLSTATE a client should see for it.

use crate::disk::DiskError;
use crate::manifest::ManifestError;
use crate::sst::SstError;
use crate::wal::WalError;
use std::fmt;

#[derive(Debug)]
pub enum EngineError {
    /// The request breaks a limit or a precondition (nothing was written).
    InvalidArgument(String),
    /// The disk failed (EIO, ENOSPC, ...); the operation did not happen.
    Disk(DiskError),
    /// Stored data failed a checksum or is malformed. Never returned as data.
    Corruption(String),
    /// An earlier write-path failure (WAL or manifest I/O) stopped all writes;
    /// reads still work. Reopen the engine (`Engine::open`) to resume writing:
    /// recovery decides from the disk what is durable.
    ReadOnly(String),
}

impl EngineError {
    /// A copy for another waiter of the same failed operation.
    pub fn duplicate(&self) -> Self {
        match self {
            EngineError::InvalidArgument(d) => EngineError::InvalidArgument(d.clone()),
            EngineError::Disk(e) => EngineError::Disk(e.duplicate()),
            EngineError::Corruption(d) => EngineError::Corruption(d.clone()),
            EngineError::ReadOnly(d) => EngineError::ReadOnly(d.clone()),
        }
    }

    /// Whether the disk is full (ENOSPC).
    pub fn is_no_space(&self) -> bool {
        matches!(self, EngineError::Disk(DiskError::NoSpace))
    }

    /// The SQLSTATE for a client: `53100` disk_full, `58030` io_error,
    /// `XX001` data_corrupted, `54000` program_limit_exceeded / `22023`.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            EngineError::InvalidArgument(_) => "54000",
            EngineError::Disk(DiskError::NoSpace) => "53100",
            EngineError::Disk(_) | EngineError::ReadOnly(_) => "58030",
            EngineError::Corruption(_) => "XX001",
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::InvalidArgument(d) => write!(f, "invalid storage request: {d}"),
            EngineError::Disk(e) => write!(f, "storage I/O error: {e}"),
            EngineError::Corruption(d) => write!(f, "storage corruption detected: {d}"),
            EngineError::ReadOnly(d) => {
                write!(
                    f,
                    "storage is read-only after an earlier I/O failure ({d}); reopen to resume"
                )
            }
        }
    }
}

impl std::error::Error for EngineError {}

impl From<DiskError> for EngineError {
    fn from(e: DiskError) -> Self {
        EngineError::Disk(e)
    }
}

impl From<SstError> for EngineError {
    fn from(e: SstError) -> Self {
        match e {
            SstError::Disk(e) => EngineError::Disk(e),
            e @ SstError::Corruption { .. } => EngineError::Corruption(e.to_string()),
        }
    }
}

impl From<ManifestError> for EngineError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Disk(e) => EngineError::Disk(e),
            e @ ManifestError::Corruption(_) => EngineError::Corruption(e.to_string()),
        }
    }
}

impl From<WalError> for EngineError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Disk(e) => EngineError::Disk(e),
            e @ WalError::Corruption { .. } => EngineError::Corruption(e.to_string()),
            e @ (WalError::RecordTooLarge { .. } | WalError::BatchFull { .. }) => {
                EngineError::InvalidArgument(e.to_string())
            }
            WalError::Failed => EngineError::ReadOnly("the WAL failed earlier".to_owned()),
        }
    }
}
