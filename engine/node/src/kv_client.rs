//! The node's side of the KV layer: the host services `teller-kv` asks for
//! ([`GlommioEnv`]), delivery of range batches over the shard mesh
//! ([`MeshTransport`], in [`crate::routing`]), and the adapter that serves
//! the SQL layer's KV API ([`SqlKv`], implementing `teller_sql::kv::Kv`;
//! its placement metadata for `SHOW RANGES` is in [`crate::kv_client_ranges`]).

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use teller_kv::engine::LocalBoxFuture;
use teller_kv::env::Env;
use teller_kv::{BatchOptions, KvClient, KvError, RetryReason, Strength, Txn, WaitPolicy};
use teller_sql::kv as sql;

pub use crate::routing::MeshTransport;

/// Physical time, timers, spawning and randomness from glommio and the OS.
pub struct GlommioEnv;

impl Env for GlommioEnv {
    fn now_nanos(&self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()> {
        Box::pin(glommio::timer::sleep(duration))
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        glommio::spawn_local(task).detach();
    }

    fn random_u64(&self) -> u64 {
        rand::rng().next_u64()
    }
}

/// `teller_sql::kv::Kv` over the node's transactional KV client.
#[derive(Clone)]
pub struct SqlKv {
    client: KvClient,
    /// The shard's routing, for placement metadata (`describe_ranges`).
    transport: Rc<MeshTransport>,
}

impl SqlKv {
    pub fn new(client: KvClient, transport: Rc<MeshTransport>) -> SqlKv {
        SqlKv { client, transport }
    }
}

impl sql::Kv for SqlKv {
    type Txn = SqlTxn;

    async fn begin(&self, options: sql::TxnOptions) -> Result<SqlTxn, sql::KvError> {
        let isolation = match options.isolation {
            sql::Isolation::Serializable => teller_kv::Isolation::Serializable,
            sql::Isolation::Snapshot => teller_kv::Isolation::Snapshot,
            sql::Isolation::ReadCommitted => teller_kv::Isolation::ReadCommitted,
        };
        let txn = self.client.begin(teller_kv::TxnOptions {
            isolation,
            read_only: options.read_only,
            as_of: None,
        });
        Ok(SqlTxn {
            txn,
            isolation: options.isolation,
            lock_timeout: None,
        })
    }

    async fn describe_ranges(
        &self,
        span: &sql::Span,
    ) -> Result<Vec<sql::RangeDescription>, sql::KvError> {
        crate::kv_client_ranges::describe_ranges(&self.transport, span).await
    }
}

/// A transaction of [`SqlKv`].
pub struct SqlTxn {
    txn: Txn,
    isolation: sql::Isolation,
    /// The session's `lock_timeout` for the running statement.
    lock_timeout: Option<Duration>,
}

impl sql::KvTxn for SqlTxn {
    fn timestamp(&self) -> sql::Timestamp {
        let ts = self.txn.timestamp();
        sql::Timestamp {
            wall_nanos: ts.wall_nanos,
            logical: ts.logical,
        }
    }

    fn isolation(&self) -> sql::Isolation {
        self.isolation
    }

    fn set_lock_timeout(&mut self, timeout: Option<Duration>) {
        self.lock_timeout = timeout;
    }

    async fn batch(&mut self, batch: sql::Batch) -> Result<sql::BatchResponse, sql::KvError> {
        batch.validate()?;
        let options = batch_options(&batch, self.lock_timeout);
        let requests = batch.requests.into_iter().map(request).collect();
        let responses = self
            .txn
            .batch_with(requests, options)
            .await
            .map_err(error)?;
        Ok(sql::BatchResponse {
            responses: responses.into_iter().map(response).collect(),
        })
    }

    async fn commit(self) -> Result<sql::Timestamp, sql::KvError> {
        let ts = self.txn.commit().await.map_err(error)?;
        Ok(sql::Timestamp {
            wall_nanos: ts.wall_nanos,
            logical: ts.logical,
        })
    }

    async fn rollback(self) -> Result<(), sql::KvError> {
        self.txn.rollback().await.map_err(error)
    }
}

fn span(s: sql::Span) -> teller_kv::Span {
    teller_kv::Span {
        start: s.start,
        end: s.end,
    }
}

fn sql_span(s: teller_kv::Span) -> sql::Span {
    sql::Span {
        start: s.start,
        end: s.end,
    }
}

/// The wait policy of a batch's locking reads. The SQL layer gives each
/// locking scan its own; the scans of one batch come from one plan node and
/// agree, and if they did not the least waiting one would win (NOWAIT over
/// SKIP LOCKED over waiting), so no statement waits where it asked not to.
fn batch_options(batch: &sql::Batch, lock_timeout: Option<Duration>) -> BatchOptions {
    let mut wait = WaitPolicy::Block;
    for r in &batch.requests {
        if let sql::Request::Scan(sql::ScanRequest {
            lock: Some(lock), ..
        }) = r
        {
            match lock.wait {
                sql::LockWait::NoWait => wait = WaitPolicy::NoWait,
                sql::LockWait::SkipLocked if wait == WaitPolicy::Block => {
                    wait = WaitPolicy::SkipLocked
                }
                _ => {}
            }
        }
    }
    BatchOptions { wait, lock_timeout }
}

fn lock_strength(lock: sql::RowLock) -> Strength {
    match lock.strength {
        sql::LockStrength::Share => Strength::Shared,
        sql::LockStrength::Exclusive => Strength::Exclusive,
    }
}

fn request(r: sql::Request) -> teller_kv::Request {
    match r {
        sql::Request::Get { key } => teller_kv::Request::Get { key, lock: None },
        sql::Request::Scan(s) => teller_kv::Request::Scan(teller_kv::ScanRequest {
            span: span(s.span),
            limit_rows: s.limit_rows,
            limit_bytes: s.limit_bytes,
            reverse: s.reverse,
            lock: s.lock.map(lock_strength),
        }),
        sql::Request::Put { key, value } => teller_kv::Request::Put { key, value },
        sql::Request::Delete { key } => teller_kv::Request::Delete { key },
        sql::Request::DeleteRange { span: s } => teller_kv::Request::DeleteRange { span: span(s) },
        sql::Request::ConditionalPut {
            key,
            value,
            expected,
        } => teller_kv::Request::ConditionalPut {
            key,
            value,
            expected,
        },
    }
}

fn response(r: teller_kv::Response) -> sql::Response {
    match r {
        teller_kv::Response::Get(v) => sql::Response::Get(v),
        teller_kv::Response::Scan(s) => sql::Response::Scan(sql::ScanResponse {
            rows: s
                .rows
                .into_iter()
                .map(|kv| sql::KeyValue {
                    key: kv.key,
                    value: kv.value,
                })
                .collect(),
            resume: s.resume.map(sql_span),
        }),
        teller_kv::Response::Written => sql::Response::Written,
    }
}

/// The KV layer's error as the SQL layer's (which maps it to a SQLSTATE).
pub fn error(e: KvError) -> sql::KvError {
    let reason = |r: RetryReason| match r {
        RetryReason::WriteConflict => sql::RetryReason::WriteConflict,
        RetryReason::ReadRefreshFailed => sql::RetryReason::ReadRefreshFailed,
        RetryReason::Uncertainty => sql::RetryReason::Uncertainty,
        RetryReason::Aborted => sql::RetryReason::Aborted,
    };
    match e {
        KvError::ConditionFailed { index, key, actual } => {
            sql::KvError::ConditionFailed { index, key, actual }
        }
        KvError::Retry { reason: r, key } => sql::KvError::Retry {
            reason: reason(r),
            key,
        },
        KvError::Deadlock { key } => sql::KvError::Deadlock { key },
        KvError::LockTimeout { key } | KvError::LockNotAvailable { key } => {
            sql::KvError::LockTimeout { key }
        }
        KvError::ReadOnly => sql::KvError::ReadOnly,
        KvError::Unavailable(why) => sql::KvError::Unavailable(why),
        KvError::Io(why) => sql::KvError::Io(why),
        KvError::Corrupt(why) => sql::KvError::Corrupt(why),
        other @ (KvError::BelowGcThreshold { .. }
        | KvError::WriteTooOld { .. }
        | KvError::Uncertain { .. }
        | KvError::Pushed { .. }
        | KvError::RangeKeyMismatch { .. }
        | KvError::Internal(_)) => sql::KvError::Internal(other.to_string()),
    }
}
