//! Requests and responses: what a transaction asks of the KV layer
//! ([`Request`], mirroring `teller_sql::kv::Request`) and what travels to a
//! range ([`RangeBatch`]: user operations plus the transaction protocol).
//!
//! Every [`RangeBatch`] carries the sender's HLC timestamp and every
//! response the receiver's, so clocks advance on every message.

use std::time::Duration;

use bytes::Bytes;

use crate::hlc::Timestamp;
use crate::keys::Span;
use crate::lock::Strength;
use crate::txn::{IgnoredSeqs, TxnId, TxnMeta, TxnRecord};

/// Transaction isolation levels, strongest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Reads and writes at one timestamp; a pushed transaction refreshes its
    /// reads or restarts.
    #[default]
    Serializable,
    /// PostgreSQL's `REPEATABLE READ`: one snapshot for all reads; writes may
    /// commit above it; a write to a key changed after the snapshot fails
    /// (first committer wins) unless the snapshot can move past the change.
    Snapshot,
    /// A new snapshot for each batch (statement).
    ReadCommitted,
}

/// What a request does when it meets a lock held by another transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Wait in the key's queue.
    #[default]
    Block,
    /// Fail with `LockNotAvailable` (`NOWAIT`).
    NoWait,
    /// Locking reads skip locked keys (`SKIP LOCKED`); writes still wait.
    SkipLocked,
}

/// A scan of the keys in `span`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRequest {
    pub span: Span,
    /// Stop after this many rows.
    pub limit_rows: Option<u64>,
    /// Stop once keys and values reach this many bytes; the row that crosses
    /// the limit is included.
    pub limit_bytes: Option<u64>,
    pub reverse: bool,
    /// Lock every returned row (`FOR SHARE` / `FOR UPDATE`).
    pub lock: Option<Strength>,
}

impl ScanRequest {
    pub fn new(span: Span) -> ScanRequest {
        ScanRequest {
            span,
            limit_rows: None,
            limit_bytes: None,
            reverse: false,
            lock: None,
        }
    }

    fn is_limited(&self) -> bool {
        self.limit_rows.is_some() || self.limit_bytes.is_some()
    }

    /// Whether the scan can be split across ranges and concatenated (no
    /// caller limits; engine limits still apply per range).
    pub fn is_splittable(&self) -> bool {
        !self.is_limited()
    }
}

/// One operation of a transaction's batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Get {
        key: Bytes,
        lock: Option<Strength>,
    },
    Scan(ScanRequest),
    Put {
        key: Bytes,
        value: Bytes,
    },
    Delete {
        key: Bytes,
    },
    DeleteRange {
        span: Span,
    },
    /// Writes `value` only if the key's current value is `expected` (`None`:
    /// only if absent); otherwise the batch fails with `ConditionFailed`.
    ConditionalPut {
        key: Bytes,
        value: Bytes,
        expected: Option<Bytes>,
    },
}

impl Request {
    /// Whether the request writes (or locks, for locking reads).
    pub fn acquires_locks(&self) -> bool {
        match self {
            Request::Get { lock, .. } => lock.is_some(),
            Request::Scan(scan) => scan.lock.is_some(),
            _ => true,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Get { .. } | Request::Scan(_))
    }

    /// The span the request touches.
    pub fn span(&self) -> Span {
        match self {
            Request::Get { key, .. }
            | Request::Put { key, .. }
            | Request::Delete { key }
            | Request::ConditionalPut { key, .. } => Span::point(key),
            Request::Scan(scan) => scan.span.clone(),
            Request::DeleteRange { span } => span.clone(),
        }
    }

    /// The first key the request touches.
    pub fn first_key(&self) -> Bytes {
        self.span().start
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
}

/// The rows of a scan, in scan order, and where to go on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResponse {
    pub rows: Vec<KeyValue>,
    /// The part of the span not scanned yet; `None` when exhausted.
    pub resume: Option<Span>,
}

/// The answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Get(Option<Bytes>),
    Scan(ScanResponse),
    Written,
}

/// How far a push goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushKind {
    /// Move a PENDING pushee's timestamp to at least this (a reader).
    Timestamp(Timestamp),
    /// Abort the pushee if its heartbeat expired; otherwise report it alive.
    Abort,
    /// Only report the record.
    Query,
}

/// What resolving an intent does to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Make the provisional value a committed version at this timestamp.
    Commit(Timestamp),
    /// Remove it.
    Abort,
    /// Move it (still provisional) to at least this timestamp.
    Push(Timestamp),
}

/// A request as a range sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// A transaction's operation (this range's part of it), with the
    /// sequence number its writes carry.
    Op { op: Request, seq: u32 },
    /// Creates or refreshes the record of the header's transaction.
    HeartbeatTxn,
    /// Commits or aborts the header's transaction. Intents in this range are
    /// resolved at once; the record keeps the other spans for resolution.
    EndTxn { commit: bool, lock_spans: Vec<Span> },
    /// Pushes another transaction through its record.
    PushTxn { pushee: TxnMeta, kind: PushKind },
    /// Resolves `txn`'s locks in `span`.
    ResolveIntents {
        span: Span,
        txn: TxnId,
        resolution: Resolution,
        ignored: IgnoredSeqs,
    },
    /// Checks that nothing was written in `span` in `(from, header read_ts]`
    /// by others, and records the reads at the new timestamp.
    Refresh { span: Span, from: Timestamp },
    /// Removes versions no read at or above `threshold` can see, and raises
    /// the range's GC threshold to it.
    Gc { threshold: Timestamp },
    /// Deletes a final transaction record whose locks are all resolved.
    DeleteTxnRecord { txn: TxnMeta },
    /// Records (`Some`) or clears (`None`) what `waiter` waits for, in the
    /// range of `waiter`'s anchor (deadlock detection; not persisted).
    SetWaitsFor {
        waiter: TxnMeta,
        pushee: Option<TxnMeta>,
    },
    /// Asks what `txn` (anchored in this range) waits for.
    QueryWaitsFor { txn: TxnId },
}

impl RangeRequest {
    /// Whether the request only touches in-memory state (no latches, no
    /// evaluation).
    pub fn is_in_memory(&self) -> bool {
        matches!(
            self,
            RangeRequest::SetWaitsFor { .. } | RangeRequest::QueryWaitsFor { .. }
        )
    }
}

/// The answer to one [`RangeRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeResponse {
    Op(Response),
    /// The record after a heartbeat, push or end.
    Txn(TxnRecord),
    /// Resolution stopped at its per-request limit; go on from `resume`.
    Resolved {
        resume: Option<Span>,
    },
    WaitsFor(Option<TxnMeta>),
    Done,
}

/// A transaction as a range sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnCtx {
    /// `meta.write_ts` is where new intents go.
    pub meta: TxnMeta,
    pub read_ts: Timestamp,
    /// Reads treat values in `(read_ts, uncertainty_limit]` as uncertain.
    pub uncertainty_limit: Timestamp,
    pub isolation: Isolation,
    pub ignored: IgnoredSeqs,
    pub read_only: bool,
}

/// What every range batch carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub range_id: u64,
    pub txn: Option<TxnCtx>,
    pub wait: WaitPolicy,
    pub lock_timeout: Option<Duration>,
    /// The sender's HLC timestamp.
    pub clock: Timestamp,
}

/// Requests for one range, evaluated in order and applied atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeBatch {
    pub header: BatchHeader,
    pub requests: Vec<RangeRequest>,
}

/// The answers to a [`RangeBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeBatchResponse {
    pub responses: Vec<RangeResponse>,
    /// The transaction's write timestamp after this batch (it rises when the
    /// timestamp cache or a newer value pushed a write).
    pub write_ts: Option<Timestamp>,
    /// The receiver's HLC timestamp.
    pub clock: Timestamp,
}
