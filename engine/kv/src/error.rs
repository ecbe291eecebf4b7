//! The errors of the KV layer.
//!
//! They mirror `teller_sql::kv::KvError` (which maps them to SQLSTATEs) so
//! the node's adapter is a one-to-one translation; a few variants exist only
//! between the coordinator and the ranges and never reach a client:
//! [`KvError::WriteTooOld`], [`KvError::Uncertain`], [`KvError::Pushed`] and
//! [`KvError::RangeKeyMismatch`] are handled by refreshing, retrying or
//! re-routing, and turn into [`KvError::Retry`] when that fails.

use std::fmt;

use bytes::Bytes;

use crate::codec::CodecError;
use crate::engine::EngineError;
use crate::hlc::Timestamp;
use crate::keys::pretty;

/// Why a transaction must restart (`40001`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// Another transaction committed a write to a key this one wrote after
    /// this one's snapshot (first committer wins), and the snapshot could not
    /// move past it.
    WriteConflict,
    /// The transaction's timestamp was pushed and its reads could not be
    /// refreshed to the new timestamp.
    ReadRefreshFailed,
    /// A value in the read's clock-uncertainty window, and the reads could
    /// not be refreshed past it.
    Uncertainty,
    /// The transaction was aborted by another one (its heartbeat expired).
    Aborted,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::WriteConflict => "write-write conflict",
            RetryReason::ReadRefreshFailed => "read refresh failed",
            RetryReason::Uncertainty => "read within uncertainty interval",
            RetryReason::Aborted => "transaction aborted",
        }
    }
}

/// A KV error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// A conditional put found `actual` instead of what it expected (the
    /// transaction may go on).
    ConditionFailed {
        /// The request's position in its batch.
        index: usize,
        key: Bytes,
        actual: Option<Bytes>,
    },
    /// The transaction must restart (`40001`).
    Retry {
        reason: RetryReason,
        key: Option<Bytes>,
    },
    /// Chosen as a deadlock victim (`40P01`).
    Deadlock { key: Option<Bytes> },
    /// A lock wait passed the lock timeout (`55P03`).
    LockTimeout { key: Bytes },
    /// `NOWAIT` met a held lock (`55P03`).
    LockNotAvailable { key: Bytes },
    /// A write in a read-only transaction (`25006`).
    ReadOnly,
    /// A read below the range's GC threshold (an `AS OF SYSTEM TIME` too far
    /// in the past).
    BelowGcThreshold { ts: Timestamp, threshold: Timestamp },
    /// Internal: a value newer than the transaction's read timestamp at a key
    /// it writes or locks. The coordinator refreshes to `ts` and retries.
    WriteTooOld { key: Bytes, ts: Timestamp },
    /// Internal: a value in the read's uncertainty window. The coordinator
    /// refreshes to `ts` and retries.
    Uncertain { key: Bytes, ts: Timestamp },
    /// Internal: commit found the record pushed to `ts`.
    Pushed { ts: Timestamp },
    /// Internal: the request reached a store that does not hold the key's
    /// range (it split or moved). The client re-routes.
    RangeKeyMismatch { key: Bytes },
    /// The range has no reachable owner (`58000`).
    Unavailable(String),
    /// The disk failed (`58030`).
    Io(String),
    /// Stored bytes failed to decode (`XX001`).
    Corrupt(String),
    /// A caller bug: bad span, oversized request, misuse of a handle.
    Internal(String),
}

impl KvError {
    /// Whether the whole transaction may succeed if run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KvError::Retry { .. } | KvError::Deadlock { .. })
    }

    /// Whether the transaction can only be rolled back after this error.
    pub fn ends_transaction(&self) -> bool {
        !matches!(
            self,
            KvError::ConditionFailed { .. }
                | KvError::ReadOnly
                | KvError::LockNotAvailable { .. }
                | KvError::LockTimeout { .. }
                | KvError::BelowGcThreshold { .. }
        )
    }

    /// The SQLSTATE a client sees (`teller_sql::kv::KvError::to_pg_error`
    /// agrees); internal variants map to `XX000`, as they must never reach a
    /// client.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            KvError::ConditionFailed { .. } => "23505",
            KvError::Retry { .. } => "40001",
            KvError::Deadlock { .. } => "40P01",
            KvError::LockTimeout { .. } | KvError::LockNotAvailable { .. } => "55P03",
            KvError::ReadOnly => "25006",
            KvError::BelowGcThreshold { .. } => "22023",
            KvError::Unavailable(_) => "58000",
            KvError::Io(_) => "58030",
            KvError::Corrupt(_) => "XX001",
            KvError::WriteTooOld { .. }
            | KvError::Uncertain { .. }
            | KvError::Pushed { .. }
            | KvError::RangeKeyMismatch { .. }
            | KvError::Internal(_) => "XX000",
        }
    }

    pub fn retry(reason: RetryReason, key: Option<Bytes>) -> KvError {
        KvError::Retry { reason, key }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |k: &Option<Bytes>| {
            k.as_ref()
                .map_or(String::new(), |k| format!(" on key {}", pretty(k)))
        };
        match self {
            KvError::ConditionFailed { key, .. } => {
                write!(f, "condition failed on key {}", pretty(key))
            }
            KvError::Retry { reason, key: k } => {
                write!(f, "restart transaction: {}{}", reason.as_str(), key(k))
            }
            KvError::Deadlock { key: k } => write!(f, "deadlock detected{}", key(k)),
            KvError::LockTimeout { key } => write!(f, "lock timeout on key {}", pretty(key)),
            KvError::LockNotAvailable { key } => {
                write!(f, "could not obtain lock on key {}", pretty(key))
            }
            KvError::ReadOnly => write!(f, "write in a read-only transaction"),
            KvError::BelowGcThreshold { ts, threshold } => write!(
                f,
                "read at {ts} is below the GC threshold {threshold} of its range"
            ),
            KvError::WriteTooOld { key, ts } => {
                write!(
                    f,
                    "write too old on key {}: newer value at {ts}",
                    pretty(key)
                )
            }
            KvError::Uncertain { key, ts } => {
                write!(f, "uncertain value on key {} at {ts}", pretty(key))
            }
            KvError::Pushed { ts } => write!(f, "transaction pushed to {ts}"),
            KvError::RangeKeyMismatch { key } => {
                write!(f, "key {} is not in the addressed range", pretty(key))
            }
            KvError::Unavailable(why) => write!(f, "unavailable: {why}"),
            KvError::Io(why) => write!(f, "I/O error: {why}"),
            KvError::Corrupt(why) => write!(f, "corruption: {why}"),
            KvError::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<EngineError> for KvError {
    fn from(e: EngineError) -> KvError {
        match e {
            EngineError::Io(why) => KvError::Io(why),
            EngineError::Corrupt(why) => KvError::Corrupt(why),
            EngineError::Invalid(why) => KvError::Internal(why),
        }
    }
}

impl From<CodecError> for KvError {
    fn from(e: CodecError) -> KvError {
        KvError::Corrupt(e.0)
    }
}
