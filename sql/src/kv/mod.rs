//! The KV API: everything the SQL layer asks of the storage engine.
//!
//! The SQL layer reads and writes ordered byte keys (see
//! [`crate::encoding::key`]) inside transactions, in **batches**: a statement
//! gathers the gets, scans and writes it needs and sends them in one
//! [`Batch`], which the engine's KV client splits by range and sends to the
//! owning shards at once. One call per key would cost one round trip per key.
//!
//! # Contract
//!
//! - [`Kv::begin`] starts a transaction with [`TxnOptions`]. The handle
//!   ([`KvTxn`]) carries its isolation level and its current timestamp, which
//!   may move forward while it runs (a pushed serializable transaction whose
//!   reads refresh).
//! - [`KvTxn::batch`] evaluates its requests **in order**; a request sees the
//!   writes of earlier requests in the same batch and of earlier batches of
//!   the transaction. The responses line up with the requests.
//! - A batch is **atomic within the transaction**: when it fails, none of its
//!   writes are visible to later batches (the engine implements this with
//!   per-request sequence numbers, like a savepoint). After
//!   [`KvError::ConditionFailed`] or [`KvError::ReadOnly`] the transaction may
//!   go on; after any other error it can only be rolled back
//!   ([`KvError::ends_transaction`]).
//! - Scans are bounded: by the request's `limit_rows` and `limit_bytes`, and
//!   by the engine's own limits. A scan that stops before the end of its span
//!   returns a `resume` span; the caller sends it again to go on. A byte limit
//!   always lets at least one row through, so a scan always makes progress.
//! - [`KvTxn::commit`] and [`KvTxn::rollback`] consume the handle. Dropping a
//!   handle without either is a rollback (the engine cleans up
//!   asynchronously, or by transaction heartbeat expiry).
//! - [`Kv::describe_ranges`] reads placement metadata (which ranges cut a
//!   span, which shard owns each) outside any transaction: a snapshot that
//!   may be out of date as soon as it returns ([`ranges`]).
//!
//! The traits use `async fn` without `Send` bounds on purpose: the engine is
//! thread-per-core, and a shard's futures never leave its thread.
//!
//! [`memory::MemoryKv`] is the single-node, in-memory implementation used as
//! the test double of the SQL layer.

pub mod memory;
mod ranges;

use std::fmt;

use bytes::Bytes;
use teller_net::{PgError, SqlState};

use crate::encoding::key::{prefix_successor, pretty};
pub use ranges::{check_tiling, spans_overlap, RangeDescription};

/// Most requests in one batch; a larger batch is refused as a caller bug.
pub const BATCH_REQUESTS_MAX: usize = 100_000;

/// A half-open key span `[start, end)`. `end: None` runs to the end of the
/// keyspace.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: Bytes,
    pub end: Option<Bytes>,
}

impl Span {
    /// `[start, end)`.
    pub fn new(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Span {
        Span {
            start: start.into(),
            end: Some(end.into()),
        }
    }

    /// `[start, end of keyspace)`.
    pub fn from_key(start: impl Into<Bytes>) -> Span {
        Span {
            start: start.into(),
            end: None,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Span {
        Span {
            start: Bytes::copy_from_slice(prefix),
            end: prefix_successor(prefix).map(Bytes::from),
        }
    }

    /// The one key `key`: `[key, key 0x00)`.
    pub fn point(key: &[u8]) -> Span {
        let mut end = key.to_vec();
        end.push(0);
        Span::new(Bytes::copy_from_slice(key), end)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && self.end.as_ref().is_none_or(|end| key < &end[..])
    }

    /// Whether no key lies in the span (`start >= end`).
    pub fn is_empty(&self) -> bool {
        self.end.as_ref().is_some_and(|end| self.start >= *end)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.end.as_ref().map_or("/Max".to_string(), |e| pretty(e));
        write!(f, "[{}, {})", pretty(&self.start), end)
    }
}

/// A hybrid logical clock timestamp: wall-clock nanoseconds and a logical
/// counter that orders events within one nanosecond.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub wall_nanos: u64,
    pub logical: u32,
}

/// Transaction isolation levels, strongest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    #[default]
    Serializable,
    /// PostgreSQL's `REPEATABLE READ`.
    Snapshot,
    ReadCommitted,
}

/// The strength of a row lock taken by a locking read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockStrength {
    /// `FOR SHARE` / `FOR KEY SHARE`: blocks writers, not other sharers.
    Share,
    /// `FOR UPDATE` / `FOR NO KEY UPDATE`: blocks writers and other lockers.
    Exclusive,
}

/// What a locking read does when a row is locked by another transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockWait {
    /// Waits in the lock queue.
    Block,
    /// Fails at once with [`KvError::LockNotAvailable`] (`NOWAIT`).
    NoWait,
    /// Leaves the row out of the result (`SKIP LOCKED`).
    SkipLocked,
}

/// How to start a transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnOptions {
    pub isolation: Isolation,
    /// Writes are refused with [`KvError::ReadOnly`].
    pub read_only: bool,
}

/// A row lock a locking read takes on every row it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowLock {
    pub strength: LockStrength,
    pub wait: LockWait,
}

/// A scan of the keys in `span`, in key order or reversed.
///
/// With `lock`, the scan is a **locking read** (`SELECT ... FOR UPDATE /
/// FOR SHARE`): each row it returns is locked for the rest of the
/// transaction. A row locked (or written) by another open transaction in a
/// conflicting mode makes the scan wait (`LockWait::Block`), fail with
/// [`KvError::LockTimeout`] (`LockWait::NoWait`, reported as `55P03`), or
/// leave the row out (`LockWait::SkipLocked`, which does not count toward
/// `limit_rows`). A row written by a transaction that committed after this
/// one's read timestamp fails the scan with [`KvError::Retry`]. Exclusive
/// locks conflict with every other lock and with writes; share locks
/// conflict with exclusive locks and writes. A point lookup that locks is
/// a scan of [`Span::point`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRequest {
    pub span: Span,
    /// Lock the rows returned (`None`: a plain read).
    pub lock: Option<RowLock>,
    /// Stop after this many rows (`None`: no limit of the caller's).
    pub limit_rows: Option<u64>,
    /// Stop once the rows' keys and values reach this many bytes; the row
    /// that crosses the limit is included, so at least one row comes back.
    pub limit_bytes: Option<u64>,
    /// Highest key first.
    pub reverse: bool,
}

impl ScanRequest {
    /// An unlimited forward scan of `span`.
    pub fn new(span: Span) -> ScanRequest {
        ScanRequest {
            span,
            lock: None,
            limit_rows: None,
            limit_bytes: None,
            reverse: false,
        }
    }
}

/// One request of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Get {
        key: Bytes,
    },
    Scan(ScanRequest),
    Put {
        key: Bytes,
        value: Bytes,
    },
    Delete {
        key: Bytes,
    },
    /// Deletes every key in the span.
    DeleteRange {
        span: Span,
    },
    /// Writes `value` only if the key's current value is `expected` (`None`:
    /// only if the key does not exist). Otherwise the batch fails with
    /// [`KvError::ConditionFailed`]. An `INSERT` uses it for its unique keys.
    ConditionalPut {
        key: Bytes,
        value: Bytes,
        expected: Option<Bytes>,
    },
}

impl Request {
    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Get { .. } | Request::Scan(_))
    }
}

/// Ordered requests sent together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub requests: Vec<Request>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, request: Request) -> &mut Batch {
        self.requests.push(request);
        self
    }

    pub fn get(&mut self, key: impl Into<Bytes>) -> &mut Batch {
        self.push(Request::Get { key: key.into() })
    }

    pub fn scan(&mut self, scan: ScanRequest) -> &mut Batch {
        self.push(Request::Scan(scan))
    }

    pub fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Batch {
        self.push(Request::Put {
            key: key.into(),
            value: value.into(),
        })
    }

    pub fn delete(&mut self, key: impl Into<Bytes>) -> &mut Batch {
        self.push(Request::Delete { key: key.into() })
    }

    pub fn delete_range(&mut self, span: Span) -> &mut Batch {
        self.push(Request::DeleteRange { span })
    }

    pub fn conditional_put(
        &mut self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        expected: Option<Bytes>,
    ) -> &mut Batch {
        self.push(Request::ConditionalPut {
            key: key.into(),
            value: value.into(),
            expected,
        })
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn has_writes(&self) -> bool {
        self.requests.iter().any(Request::is_write)
    }

    /// Checks what the engine would refuse as a caller bug.
    pub fn validate(&self) -> Result<(), KvError> {
        if self.requests.len() > BATCH_REQUESTS_MAX {
            return Err(KvError::Internal(format!(
                "batch of {} requests, at most {BATCH_REQUESTS_MAX}",
                self.requests.len()
            )));
        }
        for request in &self.requests {
            let span = match request {
                Request::Scan(scan) => &scan.span,
                Request::DeleteRange { span } => span,
                _ => continue,
            };
            if span.is_empty() {
                return Err(KvError::Internal(format!("empty span {span:?}")));
            }
        }
        Ok(())
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
}

/// The rows of a scan, in scan order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResponse {
    pub rows: Vec<KeyValue>,
    /// The part of the span not scanned yet, when a limit stopped the scan
    /// before the span's end; `None` when the span is exhausted.
    pub resume: Option<Span>,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Get(Option<Bytes>),
    Scan(ScanResponse),
    /// Put, Delete, DeleteRange and ConditionalPut.
    Written,
}

/// The answers to a batch, one per request, in request order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchResponse {
    pub responses: Vec<Response>,
}

impl BatchResponse {
    /// The value of the Get at `index`.
    pub fn get(&self, index: usize) -> Result<Option<&Bytes>, KvError> {
        match self.responses.get(index) {
            Some(Response::Get(value)) => Ok(value.as_ref()),
            other => Err(KvError::Internal(format!(
                "response {index} is {other:?}, not a get"
            ))),
        }
    }

    /// The scan result at `index`.
    pub fn scan(&self, index: usize) -> Result<&ScanResponse, KvError> {
        match self.responses.get(index) {
            Some(Response::Scan(scan)) => Ok(scan),
            other => Err(KvError::Internal(format!(
                "response {index} is {other:?}, not a scan"
            ))),
        }
    }
}

/// Why a transaction must restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// Another transaction committed a write to a key this one wrote
    /// (first committer wins).
    WriteConflict,
    /// A serializable transaction was pushed and its reads could not be
    /// refreshed to the new timestamp.
    ReadRefreshFailed,
    /// A value written after the read timestamp lies within the clock
    /// uncertainty window.
    Uncertainty,
    /// The transaction was aborted by another one (or expired).
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

/// What can go wrong in the KV layer. [`KvError::to_pg_error`] maps each to
/// the SQLSTATE a client sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// A ConditionalPut found `actual` instead of what it expected.
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
    /// The transaction was chosen as a deadlock victim (`40P01`).
    Deadlock { key: Option<Bytes> },
    /// A lock was not granted in time (`55P03`).
    LockTimeout { key: Bytes },
    /// A write in a read-only transaction (`25006`).
    ReadOnly,
    /// The data's range has no reachable leaseholder (`58000`).
    Unavailable(String),
    /// The disk failed (`58030`).
    Io(String),
    /// Stored bytes failed to decode (`XX001`).
    Corrupt(String),
    /// A caller bug: bad span, oversized batch, misuse of a handle (`XX000`).
    Internal(String),
}

/// `unique_violation`.
pub const UNIQUE_VIOLATION: SqlState = SqlState("23505");
/// `read_only_sql_transaction`.
pub const READ_ONLY_SQL_TRANSACTION: SqlState = SqlState("25006");
/// `lock_not_available`.
pub const LOCK_NOT_AVAILABLE: SqlState = SqlState("55P03");
/// `system_error`.
pub const SYSTEM_ERROR: SqlState = SqlState("58000");

impl KvError {
    /// Whether the whole transaction can succeed if run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KvError::Retry { .. } | KvError::Deadlock { .. })
    }

    /// Whether the transaction can only be rolled back after this error.
    pub fn ends_transaction(&self) -> bool {
        !matches!(self, KvError::ConditionFailed { .. } | KvError::ReadOnly)
    }

    /// The error as the client sees it. The SQL layer refines some of them
    /// (a unique violation names its constraint and columns).
    pub fn to_pg_error(&self) -> PgError {
        let with_key = |e: PgError, key: &Option<Bytes>| match key {
            Some(key) => e.with_detail(format!("key {}", pretty(key))),
            None => e,
        };
        match self {
            KvError::ConditionFailed { key, .. } => PgError::new(
                UNIQUE_VIOLATION,
                "duplicate key value violates unique constraint",
            )
            .with_detail(format!("Key {} already exists.", pretty(key))),
            KvError::Retry { reason, key } => with_key(
                PgError::new(
                    SqlState::SERIALIZATION_FAILURE,
                    format!(
                        "could not serialize access: restart transaction ({})",
                        reason.as_str()
                    ),
                ),
                key,
            )
            .with_hint("The transaction might succeed if retried."),
            KvError::Deadlock { key } => with_key(
                PgError::new(SqlState::DEADLOCK_DETECTED, "deadlock detected"),
                key,
            ),
            KvError::LockTimeout { key } => PgError::new(
                LOCK_NOT_AVAILABLE,
                "canceling statement due to lock timeout",
            )
            .with_detail(format!("key {}", pretty(key))),
            KvError::ReadOnly => PgError::new(
                READ_ONLY_SQL_TRANSACTION,
                "cannot execute a write in a read-only transaction",
            ),
            KvError::Unavailable(why) => {
                PgError::new(SYSTEM_ERROR, format!("data unavailable: {why}"))
                    .with_hint("The request might succeed if retried.")
            }
            KvError::Io(why) => PgError::new(SqlState::IO_ERROR, format!("I/O error: {why}")),
            KvError::Corrupt(why) => PgError::new(
                crate::encoding::DATA_CORRUPTED,
                format!("data corrupted: {why}"),
            ),
            KvError::Internal(why) => PgError::internal(format!("KV: {why}")),
        }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_pg_error())
    }
}

impl std::error::Error for KvError {}

impl From<KvError> for PgError {
    fn from(e: KvError) -> PgError {
        e.to_pg_error()
    }
}

/// A KV store: the engine's per-shard client, or [`memory::MemoryKv`].
// Shard-local by design: these futures never cross threads.
#[allow(async_fn_in_trait)]
pub trait Kv: 'static {
    /// Transaction handles are shard-local values (no borrowed state), so
    /// a portal may keep one across client round trips.
    type Txn: KvTxn + 'static;

    /// Starts a transaction.
    async fn begin(&self, options: TxnOptions) -> Result<Self::Txn, KvError>;

    /// The ranges that overlap `span`, in key order, with their owners
    /// (`SHOW RANGES`): read-only placement metadata, outside any
    /// transaction, as of now. They tile `span` (see [`check_tiling`]).
    async fn describe_ranges(&self, span: &Span) -> Result<Vec<RangeDescription>, KvError>;
}

/// An open transaction.
#[allow(async_fn_in_trait)]
pub trait KvTxn {
    /// The timestamp reads are served at now (it may move forward).
    fn timestamp(&self) -> Timestamp;

    fn isolation(&self) -> Isolation;

    /// How long a later batch may wait for a lock held by another
    /// transaction before it fails with [`KvError::LockTimeout`] (`None`: no
    /// limit). The session sets it from `lock_timeout` before each
    /// statement. Implementations that never wait may ignore it.
    fn set_lock_timeout(&mut self, _timeout: Option<std::time::Duration>) {}

    /// Runs the requests in order (see the module docs for the contract).
    async fn batch(&mut self, batch: Batch) -> Result<BatchResponse, KvError>;

    /// Commits; returns the commit timestamp.
    async fn commit(self) -> Result<Timestamp, KvError>;

    /// Discards the transaction's writes.
    async fn rollback(self) -> Result<(), KvError>;
}

#[cfg(test)]
mod tests;
