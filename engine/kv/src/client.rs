//! The transaction coordinator: the client side of a transaction, on the
//! gateway shard.
//!
//! A [`Txn`] keeps the transaction's timestamps, the spans it read (for
//! refresh) and locked (for resolution), and drives the protocol:
//!
//! - **Batches** are split by range and sent concurrently. A write makes the
//!   first locked key the **anchor**; the first batch that locks also
//!   creates the transaction record in the anchor's range, after which a
//!   background task heartbeats it every `heartbeat_interval`.
//! - **Timestamps.** Reads happen at `read_ts`, writes at `write_ts >=
//!   read_ts`. When a range reports a newer value at a written key
//!   (write-too-old) or an uncertain value, a SERIALIZABLE or SNAPSHOT
//!   transaction **refreshes**: it checks that nothing it read changed up to
//!   the new timestamp, moves `read_ts` there and retries the batch; if the
//!   refresh fails the transaction ends with `40001`, naming the reason and
//!   the key. READ COMMITTED takes a new snapshot per batch and simply
//!   retries the batch at the newer timestamp.
//! - **Commit.** A SERIALIZABLE transaction whose `write_ts` moved above
//!   `read_ts` (pushed by the timestamp cache or by a reader) refreshes to
//!   `write_ts` first. Then one `EndTxn` to the anchor's range commits the
//!   record and resolves the intents of that range in the same write batch;
//!   when every intent is in that range this is the whole commit (one
//!   phase, and the record is never left behind). Otherwise the record stays
//!   COMMITTED with the remaining spans, and the intents elsewhere are
//!   resolved asynchronously; anyone meeting them first resolves them from
//!   the record. If the record was pushed, the commit moves up (refreshing
//!   first when SERIALIZABLE).
//! - **Commit wait.** A commit timestamp ahead of the local clock (pushed
//!   into the future by uncertainty) is waited out before `commit` returns,
//!   so a later transaction on any gateway reads it.
//! - **Batch atomicity.** Each write carries a sequence number; when a batch
//!   fails, its sequence numbers are ignored from then on (a savepoint rolled
//!   back), both for the transaction's own reads and at resolution.
//! - **Failure.** After an error that ends the transaction, the coordinator
//!   aborts at once (releasing locks promptly, which is what lets the other
//!   side of a deadlock proceed). A dropped [`Txn`] is rolled back in the
//!   background; a crashed gateway's transaction is aborted by others once
//!   its heartbeat expires.

pub(crate) mod split;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::api::{
    BatchHeader, Isolation, RangeBatch, RangeRequest, RangeResponse, Request, Resolution, Response,
    TxnCtx, WaitPolicy,
};
use crate::config::{KvConfig, BATCH_ATTEMPTS_MAX, TRACKED_SPANS_MAX};
use crate::env::Env;
use crate::error::{KvError, RetryReason};
use crate::hlc::{Hlc, Timestamp};
use crate::keys::{self, Span};
use crate::sync::join_all;
use crate::transport::Transport;
use crate::txn::{IgnoredSeqs, TxnId, TxnMeta, TxnRecord, TxnStatus};

use split::{condense, cut, merge, pieces, Groups, Piece};

/// How to start a transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnOptions {
    pub isolation: Isolation,
    /// Writes and locking reads fail with [`KvError::ReadOnly`].
    pub read_only: bool,
    /// Read at this past timestamp (`AS OF SYSTEM TIME`); implies read-only.
    pub as_of: Option<Timestamp>,
}

/// Per-batch options (a statement's `NOWAIT`, `SKIP LOCKED`,
/// `lock_timeout`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOptions {
    pub wait: WaitPolicy,
    pub lock_timeout: Option<Duration>,
}

struct ClientInner {
    transport: Rc<dyn Transport>,
    env: Rc<dyn Env>,
    clock: Rc<RefCell<Hlc>>,
    cfg: KvConfig,
}

/// The KV client of a gateway shard; clones share it.
#[derive(Clone)]
pub struct KvClient {
    inner: Rc<ClientInner>,
}

impl KvClient {
    pub fn new(
        transport: Rc<dyn Transport>,
        env: Rc<dyn Env>,
        clock: Rc<RefCell<Hlc>>,
        cfg: KvConfig,
    ) -> KvClient {
        KvClient {
            inner: Rc::new(ClientInner {
                transport,
                env,
                clock,
                cfg,
            }),
        }
    }

    fn now(&self) -> Timestamp {
        self.inner
            .clock
            .borrow_mut()
            .now(self.inner.env.now_nanos())
    }

    /// Starts a transaction.
    pub fn begin(&self, options: TxnOptions) -> Txn {
        let now = self.now();
        let env = &self.inner.env;
        let id = TxnId((u128::from(env.random_u64()) << 64) | u128::from(env.random_u64()));
        let (read_ts, limit) = match options.as_of {
            Some(ts) => (ts, ts),
            None => (now, self.inner.clock.borrow().uncertainty_limit(now)),
        };
        let state = TxnState {
            meta: TxnMeta {
                id,
                anchor: Bytes::new(),
                write_ts: read_ts,
                min_ts: read_ts,
                heartbeat_hint: now,
            },
            anchored: false,
            record_created: false,
            read_ts,
            uncertainty_limit: limit,
            isolation: options.isolation,
            read_only: options.read_only || options.as_of.is_some(),
            read_spans: Vec::new(),
            lock_spans: Vec::new(),
            next_seq: 1,
            ignored: IgnoredSeqs::default(),
            status: Status::Open,
            heartbeating: false,
        };
        Txn {
            client: self.clone(),
            state: Rc::new(RefCell::new(state)),
            finished: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Open,
    /// Aborted by others (seen by a heartbeat) or after an error.
    Aborted,
    Committed,
}

struct TxnState {
    meta: TxnMeta,
    anchored: bool,
    record_created: bool,
    read_ts: Timestamp,
    uncertainty_limit: Timestamp,
    isolation: Isolation,
    read_only: bool,
    read_spans: Vec<Span>,
    lock_spans: Vec<Span>,
    next_seq: u32,
    ignored: IgnoredSeqs,
    status: Status,
    heartbeating: bool,
}

impl TxnState {
    fn ctx(&self, now: Timestamp) -> TxnCtx {
        let mut meta = self.meta.clone();
        meta.heartbeat_hint = now;
        TxnCtx {
            meta,
            read_ts: self.read_ts,
            uncertainty_limit: self.uncertainty_limit.max(self.read_ts),
            isolation: self.isolation,
            ignored: self.ignored.clone(),
            read_only: self.read_only,
        }
    }

    fn track(spans: &mut Vec<Span>, span: Span) {
        spans.push(span);
        if spans.len() > TRACKED_SPANS_MAX {
            condense(spans, TRACKED_SPANS_MAX / 2);
        }
    }

    fn bump_write_ts(&mut self, ts: Timestamp) {
        self.meta.write_ts = self.meta.write_ts.max(ts);
    }
}

/// An open transaction. Commit or roll back; dropping it rolls back in the
/// background.
pub struct Txn {
    client: KvClient,
    state: Rc<RefCell<TxnState>>,
    finished: bool,
}

impl Txn {
    pub fn id(&self) -> TxnId {
        self.state.borrow().meta.id
    }

    /// The timestamp reads are served at now (it may move forward).
    pub fn timestamp(&self) -> Timestamp {
        self.state.borrow().read_ts
    }

    /// The provisional commit timestamp.
    pub fn write_timestamp(&self) -> Timestamp {
        self.state.borrow().meta.write_ts
    }

    pub fn isolation(&self) -> Isolation {
        self.state.borrow().isolation
    }

    /// Runs `requests` in order with default options.
    pub async fn batch(&mut self, requests: Vec<Request>) -> Result<Vec<Response>, KvError> {
        self.batch_with(requests, BatchOptions::default()).await
    }

    /// Runs `requests` in order: each sees the writes of the ones before it.
    /// On failure none of its writes stay visible to later batches.
    pub async fn batch_with(
        &mut self,
        requests: Vec<Request>,
        options: BatchOptions,
    ) -> Result<Vec<Response>, KvError> {
        self.check_open()?;
        validate(&requests)?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let locking = requests.iter().any(Request::acquires_locks);
        if locking && self.state.borrow().read_only {
            return Err(KvError::ReadOnly);
        }
        let (mut first_seq, mut last_seq) = self.prepare(&requests);
        let mut last_error = None;
        for attempt in 0..BATCH_ATTEMPTS_MAX {
            if attempt > 0 && locking {
                // A retried attempt must not see what the failed one wrote:
                // its sequence numbers are rolled back, the retry takes new
                // ones.
                let mut st = self.state.borrow_mut();
                st.ignored.add(first_seq, last_seq);
                first_seq = st.next_seq;
                st.next_seq += requests.len() as u32;
                last_seq = st.next_seq - 1;
            }
            match self
                .send_once(&requests, &options, locking, first_seq)
                .await
            {
                Ok(responses) => {
                    self.track_reads(&requests);
                    self.start_heartbeat();
                    return Ok(responses);
                }
                Err(KvError::WriteTooOld { key, ts }) => {
                    self.move_forward(ts, RetryReason::WriteConflict, key)
                        .await?;
                }
                Err(KvError::Uncertain { key, ts }) => {
                    self.move_forward(ts, RetryReason::Uncertainty, key).await?;
                }
                Err(KvError::RangeKeyMismatch { key }) => last_error = Some(key),
                Err(e) => return Err(self.fail_batch(e, locking, first_seq, last_seq).await),
            }
        }
        let e = KvError::Unavailable(format!(
            "batch not done after {BATCH_ATTEMPTS_MAX} attempts (last re-route at {})",
            keys::pretty(&last_error.unwrap_or_default())
        ));
        Err(self.fail_batch(e, locking, first_seq, last_seq).await)
    }

    fn check_open(&self) -> Result<(), KvError> {
        match self.state.borrow().status {
            Status::Open => Ok(()),
            Status::Aborted => Err(KvError::retry(RetryReason::Aborted, None)),
            Status::Committed => Err(KvError::Internal("transaction already committed".into())),
        }
    }

    /// Takes a new snapshot (READ COMMITTED), assigns sequence numbers,
    /// picks the anchor and tracks spans. Returns the batch's sequence range.
    fn prepare(&self, requests: &[Request]) -> (u32, u32) {
        let now = self.client.now();
        let mut st = self.state.borrow_mut();
        if st.isolation == Isolation::ReadCommitted {
            st.read_ts = st.read_ts.max(now);
            st.uncertainty_limit = self
                .client
                .inner
                .clock
                .borrow()
                .uncertainty_limit(st.read_ts);
            let read_ts = st.read_ts;
            st.bump_write_ts(read_ts);
        }
        let first_seq = st.next_seq;
        st.next_seq += requests.len() as u32;
        for request in requests {
            if request.acquires_locks() {
                if !st.anchored {
                    st.meta.anchor = request.first_key();
                    st.anchored = true;
                }
                TxnState::track(&mut st.lock_spans, request.span());
            }
        }
        (first_seq, st.next_seq - 1)
    }

    /// Records what a successful batch read, for later refreshes. (Reads of
    /// a batch still being retried are not refreshed: the retry redoes them.)
    fn track_reads(&self, requests: &[Request]) {
        let mut st = self.state.borrow_mut();
        for request in requests {
            if !matches!(request, Request::Put { .. } | Request::Delete { .. }) {
                TxnState::track(&mut st.read_spans, request.span());
            }
        }
    }

    /// Handles a newer value at `ts`: READ COMMITTED retries the batch above
    /// it; the others refresh their reads to it first.
    async fn move_forward(
        &mut self,
        ts: Timestamp,
        reason: RetryReason,
        key: Bytes,
    ) -> Result<(), KvError> {
        let isolation = self.state.borrow().isolation;
        if isolation == Isolation::ReadCommitted {
            let mut st = self.state.borrow_mut();
            st.read_ts = st.read_ts.max(ts);
            st.bump_write_ts(ts);
            return Ok(());
        }
        match self.refresh_to(ts).await {
            Ok(()) => Ok(()),
            Err(KvError::Retry { key: failed, .. }) => {
                let e = KvError::retry(reason, failed.or(Some(key)));
                self.abort_quietly().await;
                Err(e)
            }
            Err(e) => {
                self.abort_quietly().await;
                Err(e)
            }
        }
    }

    async fn fail_batch(
        &mut self,
        e: KvError,
        locking: bool,
        first_seq: u32,
        last_seq: u32,
    ) -> KvError {
        if locking {
            self.state.borrow_mut().ignored.add(first_seq, last_seq);
        }
        if e.ends_transaction() {
            self.abort_quietly().await;
        }
        e
    }

    /// Sends one attempt of the batch to every range it touches.
    async fn send_once(
        &self,
        requests: &[Request],
        options: &BatchOptions,
        locking: bool,
        first_seq: u32,
    ) -> Result<Vec<Response>, KvError> {
        let transport = &*self.client.inner.transport;
        let all: Vec<Vec<Piece>> = requests
            .iter()
            .map(|r| pieces(transport, r))
            .collect::<Result<_, _>>()?;
        let mut groups: Groups = BTreeMap::new();
        for (ri, ps) in all.iter().enumerate() {
            for (pi, piece) in ps.iter().enumerate() {
                groups
                    .entry(piece.desc.id)
                    .or_insert_with(|| (piece.desc.clone(), Vec::new()))
                    .1
                    .push((ri, pi));
            }
        }
        let now = self.client.now();
        let (ctx, create_record, anchor) = {
            let st = self.state.borrow();
            (
                st.ctx(now),
                locking && !st.record_created,
                st.meta.anchor.clone(),
            )
        };
        let mut batches = Vec::with_capacity(groups.len());
        let mut create_in = None;
        if create_record {
            let desc = transport.route(&anchor)?;
            groups
                .entry(desc.id)
                .or_insert_with(|| (desc.clone(), Vec::new()));
            create_in = Some(desc.id);
        }
        for (range_id, (_, members)) in &groups {
            let mut reqs = Vec::with_capacity(members.len() + 1);
            if create_in == Some(*range_id) {
                reqs.push(RangeRequest::HeartbeatTxn);
            }
            for &(ri, pi) in members {
                reqs.push(RangeRequest::Op {
                    op: all[ri][pi].request.clone(),
                    seq: first_seq + ri as u32,
                });
            }
            batches.push(RangeBatch {
                header: BatchHeader {
                    range_id: *range_id,
                    txn: Some(ctx.clone()),
                    wait: options.wait,
                    lock_timeout: options.lock_timeout,
                    clock: now,
                },
                requests: reqs,
            });
        }
        let sent = join_all(batches.into_iter().map(|b| transport.send(b)).collect()).await;
        let mut answers: Vec<Vec<Option<Response>>> =
            all.iter().map(|ps| vec![None; ps.len()]).collect();
        let mut first_error = None;
        for ((range_id, (_, members)), result) in groups.iter().zip(sent) {
            let resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    let e = remap_condition(e, create_in == Some(*range_id), members);
                    first_error = Some(pick_error(first_error, e));
                    continue;
                }
            };
            self.observe_clock(resp.clock);
            if let Some(ts) = resp.write_ts {
                self.state.borrow_mut().bump_write_ts(ts);
            }
            let mut responses = resp.responses.into_iter();
            if create_in == Some(*range_id) {
                if let Some(RangeResponse::Txn(record)) = responses.next() {
                    let mut st = self.state.borrow_mut();
                    st.record_created = true;
                    st.bump_write_ts(record.meta.write_ts);
                }
            }
            for (&(ri, pi), r) in members.iter().zip(responses) {
                match r {
                    RangeResponse::Op(op) => answers[ri][pi] = Some(op),
                    other => {
                        return Err(KvError::Internal(format!("operation answered {other:?}")))
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        requests
            .iter()
            .zip(all.iter())
            .zip(answers)
            .map(|((request, ps), answer)| {
                let answer: Option<Vec<Response>> = answer.into_iter().collect();
                merge(
                    request,
                    ps,
                    answer.ok_or_else(|| KvError::Internal("missing answer".into()))?,
                )
            })
            .collect()
    }

    fn observe_clock(&self, ts: Timestamp) {
        let env = &self.client.inner.env;
        // A clock too far ahead is refused by the receiving store already.
        let _ = self
            .client
            .inner
            .clock
            .borrow_mut()
            .update(ts, env.now_nanos());
    }

    /// Checks every span read so far for changes up to `ts`, then moves the
    /// read timestamp there.
    async fn refresh_to(&self, ts: Timestamp) -> Result<(), KvError> {
        let (from, spans, mut ctx) = {
            let st = self.state.borrow();
            if ts <= st.read_ts {
                return Ok(());
            }
            (st.read_ts, st.read_spans.clone(), st.ctx(self.client.now()))
        };
        ctx.read_ts = ts;
        ctx.uncertainty_limit = ctx.uncertainty_limit.max(ts);
        let mut done = false;
        for _ in 0..BATCH_ATTEMPTS_MAX {
            match self.send_refreshes(&spans, from, &ctx).await {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(KvError::RangeKeyMismatch { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if !done {
            return Err(KvError::Unavailable(
                "refresh kept meeting moved ranges".into(),
            ));
        }
        let mut st = self.state.borrow_mut();
        st.read_ts = st.read_ts.max(ts);
        st.bump_write_ts(ts);
        Ok(())
    }

    /// One attempt at refreshing `spans` from `from` to `ctx.read_ts`. A
    /// failed refresh wins over a re-route (it is final).
    async fn send_refreshes(
        &self,
        spans: &[Span],
        from: Timestamp,
        ctx: &TxnCtx,
    ) -> Result<(), KvError> {
        let transport = &*self.client.inner.transport;
        let mut by_range: BTreeMap<u64, Vec<RangeRequest>> = BTreeMap::new();
        for span in spans {
            for (desc, piece) in cut(transport, span)? {
                by_range
                    .entry(desc.id)
                    .or_default()
                    .push(RangeRequest::Refresh { span: piece, from });
            }
        }
        let now = self.client.now();
        let batches = by_range.into_iter().map(|(range_id, requests)| RangeBatch {
            header: BatchHeader {
                range_id,
                txn: Some(ctx.clone()),
                wait: WaitPolicy::Block,
                lock_timeout: None,
                clock: now,
            },
            requests,
        });
        let mut mismatch = None;
        for result in join_all(batches.map(|b| transport.send(b)).collect()).await {
            match result {
                Ok(resp) => self.observe_clock(resp.clock),
                Err(e @ KvError::RangeKeyMismatch { .. }) => mismatch = Some(e),
                Err(e) => return Err(e),
            }
        }
        mismatch.map_or(Ok(()), Err)
    }

    /// Commits; returns the commit timestamp.
    pub async fn commit(mut self) -> Result<Timestamp, KvError> {
        self.check_open()?;
        self.finished = true;
        let (anchored, read_ts) = {
            let st = self.state.borrow();
            (st.anchored, st.read_ts)
        };
        if !anchored {
            self.state.borrow_mut().status = Status::Committed;
            return Ok(read_ts);
        }
        match self.commit_anchored().await {
            Ok(ts) => {
                self.state.borrow_mut().status = Status::Committed;
                self.commit_wait(ts).await;
                Ok(ts)
            }
            Err(e) => {
                self.abort_quietly().await;
                Err(e)
            }
        }
    }

    async fn commit_anchored(&self) -> Result<Timestamp, KvError> {
        for _ in 0..BATCH_ATTEMPTS_MAX {
            let (serializable, read_ts, write_ts) = {
                let st = self.state.borrow();
                (
                    st.isolation == Isolation::Serializable,
                    st.read_ts,
                    st.meta.write_ts,
                )
            };
            if serializable && write_ts > read_ts {
                if let Err(e) = self.refresh_to(write_ts).await {
                    return Err(match e {
                        KvError::Retry { key, .. } => {
                            KvError::retry(RetryReason::ReadRefreshFailed, key)
                        }
                        other => other,
                    });
                }
            }
            match self.end(true).await {
                Ok(record) => return Ok(record.meta.write_ts),
                Err(KvError::Pushed { ts }) => self.state.borrow_mut().bump_write_ts(ts),
                Err(KvError::RangeKeyMismatch { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(KvError::retry(RetryReason::ReadRefreshFailed, None))
    }

    /// Sends `EndTxn` to the anchor's range and hands what is left of the
    /// resolution to a background task.
    async fn end(&self, commit: bool) -> Result<TxnRecord, KvError> {
        let now = self.client.now();
        let (ctx, lock_spans) = {
            let st = self.state.borrow();
            (st.ctx(now), st.lock_spans.clone())
        };
        let transport = &*self.client.inner.transport;
        let desc = transport.route(&ctx.meta.anchor)?;
        let batch = RangeBatch {
            header: BatchHeader {
                range_id: desc.id,
                txn: Some(ctx),
                wait: WaitPolicy::Block,
                lock_timeout: None,
                clock: now,
            },
            requests: vec![RangeRequest::EndTxn { commit, lock_spans }],
        };
        let resp = transport.send(batch).await?;
        self.observe_clock(resp.clock);
        let record = match resp.responses.into_iter().next() {
            Some(RangeResponse::Txn(record)) => record,
            other => return Err(KvError::Internal(format!("end answered {other:?}"))),
        };
        if !record.lock_spans.is_empty() {
            let inner = self.client.inner.clone();
            let task_record = record.clone();
            self.client.inner.env.spawn(Box::pin(async move {
                // Best effort: whoever meets a leftover intent resolves it.
                if resolve_spans(&*inner.transport, &inner.clock, &*inner.env, &task_record)
                    .await
                    .is_ok()
                {
                    let _ =
                        delete_record(&*inner.transport, &inner.clock, &*inner.env, &task_record)
                            .await;
                }
            }));
        }
        Ok(record)
    }

    async fn commit_wait(&self, ts: Timestamp) {
        let env = &self.client.inner.env;
        let now = env.now_nanos();
        if ts.wall_nanos > now {
            env.sleep(Duration::from_nanos(ts.wall_nanos - now)).await;
        }
        self.observe_clock(ts);
    }

    /// Discards the transaction's writes.
    pub async fn rollback(mut self) -> Result<(), KvError> {
        self.finished = true;
        self.abort_quietly().await;
        Ok(())
    }

    /// Aborts the record (if any) and marks the transaction aborted; errors
    /// are left to expiry-based cleanup.
    async fn abort_quietly(&self) {
        let (status, anchored) = {
            let st = self.state.borrow();
            (st.status, st.anchored)
        };
        if status == Status::Committed {
            return;
        }
        self.state.borrow_mut().status = Status::Aborted;
        if anchored {
            let _ = self.end(false).await;
        }
    }

    /// Starts the heartbeat task once the record exists.
    fn start_heartbeat(&self) {
        let mut st = self.state.borrow_mut();
        if st.heartbeating || !st.record_created {
            return;
        }
        st.heartbeating = true;
        drop(st);
        let weak = Rc::downgrade(&self.state);
        let inner = self.client.inner.clone();
        self.client
            .inner
            .env
            .spawn(Box::pin(heartbeat_loop(weak, inner)));
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if self.finished || self.state.borrow().status != Status::Open {
            return;
        }
        let txn = Txn {
            client: self.client.clone(),
            state: self.state.clone(),
            finished: true,
        };
        self.client.inner.env.spawn(Box::pin(async move {
            txn.abort_quietly().await;
        }));
    }
}

async fn heartbeat_loop(state: Weak<RefCell<TxnState>>, inner: Rc<ClientInner>) {
    loop {
        inner.env.sleep(inner.cfg.heartbeat_interval).await;
        let Some(state) = state.upgrade() else { return };
        let now = inner.clock.borrow_mut().now(inner.env.now_nanos());
        let ctx = {
            let st = state.borrow();
            if st.status != Status::Open {
                return;
            }
            st.ctx(now)
        };
        let Ok(desc) = inner.transport.route(&ctx.meta.anchor) else {
            continue;
        };
        let batch = RangeBatch {
            header: BatchHeader {
                range_id: desc.id,
                txn: Some(ctx),
                wait: WaitPolicy::Block,
                lock_timeout: None,
                clock: now,
            },
            requests: vec![RangeRequest::HeartbeatTxn],
        };
        match inner.transport.send(batch).await {
            Ok(resp) => {
                if let Some(RangeResponse::Txn(record)) = resp.responses.first() {
                    state.borrow_mut().bump_write_ts(record.meta.write_ts);
                }
            }
            Err(KvError::Retry {
                reason: RetryReason::Aborted,
                ..
            }) => {
                state.borrow_mut().status = Status::Aborted;
                return;
            }
            Err(_) => {}
        }
    }
}

/// Resolves the locks a final record lists outside its own range.
pub(crate) async fn resolve_spans(
    transport: &dyn Transport,
    clock: &RefCell<Hlc>,
    env: &dyn Env,
    record: &TxnRecord,
) -> Result<(), KvError> {
    let resolution = match record.status {
        TxnStatus::Committed => Resolution::Commit(record.meta.write_ts),
        TxnStatus::Aborted => Resolution::Abort,
        TxnStatus::Pending => {
            return Err(KvError::Internal("resolving a pending transaction".into()))
        }
    };
    let mut work: Vec<Span> = record.lock_spans.clone();
    let mut rounds = 0usize;
    while let Some(span) = work.pop() {
        rounds += 1;
        if rounds > 1_000_000 {
            return Err(KvError::Internal("resolution does not converge".into()));
        }
        for (desc, piece) in cut(transport, &span)? {
            let now = clock.borrow_mut().now(env.now_nanos());
            let batch = RangeBatch {
                header: BatchHeader {
                    range_id: desc.id,
                    txn: None,
                    wait: WaitPolicy::Block,
                    lock_timeout: None,
                    clock: now,
                },
                requests: vec![RangeRequest::ResolveIntents {
                    span: piece,
                    txn: record.meta.id,
                    resolution,
                    ignored: record.ignored.clone(),
                }],
            };
            let resp = transport.send(batch).await?;
            if let Some(RangeResponse::Resolved { resume: Some(rest) }) =
                resp.responses.into_iter().next()
            {
                work.push(rest);
            }
        }
    }
    Ok(())
}

async fn delete_record(
    transport: &dyn Transport,
    clock: &RefCell<Hlc>,
    env: &dyn Env,
    record: &TxnRecord,
) -> Result<(), KvError> {
    let desc = transport.route(&record.meta.anchor)?;
    let batch = RangeBatch {
        header: BatchHeader {
            range_id: desc.id,
            txn: None,
            wait: WaitPolicy::Block,
            lock_timeout: None,
            clock: clock.borrow_mut().now(env.now_nanos()),
        },
        requests: vec![RangeRequest::DeleteTxnRecord {
            txn: record.meta.clone(),
        }],
    };
    transport.send(batch).await?;
    Ok(())
}

/// Refuses what the engine would refuse as a caller bug.
fn validate(requests: &[Request]) -> Result<(), KvError> {
    if requests.len() > crate::config::BATCH_REQUESTS_MAX {
        return Err(KvError::Internal(format!(
            "batch of {} requests, at most {}",
            requests.len(),
            crate::config::BATCH_REQUESTS_MAX
        )));
    }
    for request in requests {
        let span = request.span();
        if span.is_empty() {
            return Err(KvError::Internal(format!("empty span {span:?}")));
        }
        if span.start.len() > keys::KEY_BYTES_MAX {
            return Err(KvError::Internal(format!(
                "key over {} bytes",
                keys::KEY_BYTES_MAX
            )));
        }
    }
    Ok(())
}

/// Maps a range's `ConditionFailed` index back to the caller's request.
fn remap_condition(e: KvError, had_heartbeat: bool, members: &[(usize, usize)]) -> KvError {
    match e {
        KvError::ConditionFailed { index, key, actual } => {
            let local = index - usize::from(had_heartbeat);
            let index = members.get(local).map_or(index, |&(ri, _)| ri);
            KvError::ConditionFailed { index, key, actual }
        }
        other => other,
    }
}

/// Of two errors from one attempt, the one to act on: re-routing first,
/// then a newer value (the newest, so one refresh covers both), then the
/// first other error.
fn pick_error(current: Option<KvError>, new: KvError) -> KvError {
    fn rank(e: &KvError) -> (u8, Timestamp) {
        match e {
            KvError::RangeKeyMismatch { .. } => (0, Timestamp::ZERO),
            KvError::WriteTooOld { ts, .. } | KvError::Uncertain { ts, .. } => (1, *ts),
            _ => (2, Timestamp::ZERO),
        }
    }
    let Some(current) = current else { return new };
    let (a, b) = (rank(&current), rank(&new));
    if b.0 < a.0 || (a.0 == 1 && b.0 == 1 && b.1 > a.1) {
        new
    } else {
        current
    }
}
