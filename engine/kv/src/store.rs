//! A store: the ranges one shard serves, over the shard's engine, with the
//! shard's clock.
//!
//! [`Store::execute`] runs one [`RangeBatch`]:
//! 1. advance the clock by the sender's timestamp;
//! 2. take the batch's latches, evaluate ([`crate::eval`]), and on success
//!    apply the write batch and record the reads in the timestamp cache
//!    before releasing the latches;
//! 3. on a conflict, release the latches and deal with it, then evaluate
//!    again:
//!    - a **read** that met an intent pushes the writer's timestamp through
//!      its record and moves (or resolves) the intent;
//!    - a **write or locking read** that met a lock queues in the lock table,
//!      checks the holder through its record (resolving the lock if the
//!      holder is finished or expired), records a waits-for edge at its own
//!      record's range and follows the chain of edges; if the chain leads
//!      back to it, it is the **deadlock** victim (`40P01`). Otherwise it
//!      waits for the lock to change, re-checking liveness and deadlock every
//!      `liveness_interval`, until the lock timeout (`55P03`).
//!
//! Deadlock detection is bounded in time: the edge that closes a cycle is
//! registered after all others, and its probe runs right after, so it sees
//! the cycle at once; any missed race is caught at the next liveness
//! re-check.
//!
//! A range grows until it passes `range_split_bytes`, then splits at a
//! sampled middle key ([`split`]). A range leaves the store whole through
//! [`handoff`]: frozen (closed to requests, latched end to end), exported
//! in bounded chunks, adopted by another store under a fresh id one
//! generation up, then removed here. A closed range refuses every request as
//! addressed to the wrong range, so clients re-route.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::api::{
    BatchHeader, PushKind, RangeBatch, RangeBatchResponse, RangeRequest, RangeResponse, Resolution,
    WaitPolicy,
};
use crate::config::{KvConfig, DEADLOCK_PROBE_HOPS_MAX};
use crate::engine::{Engine, WriteBatch};
use crate::env::Env;
use crate::error::KvError;
use crate::eval::{decode_ts, Conflict, ConflictKind, EvalError, Evaluator};
use crate::hlc::{Hlc, Timestamp};
use crate::keys::{self, Span, NS_TXN};
use crate::latch::LatchSpan;
use crate::lock::LockRecord;
use crate::locktable::WaiterGuard;
use crate::replica::{latch_txn_record, latch_user_span, RangeDesc, Replica};
use crate::replication::{Applier, Replication};
use crate::sync::{race, Either};
use crate::transport::{StoreId, Transport};
use crate::txn::{TxnMeta, TxnRecord, TxnStatus};

mod handoff;
mod split;

pub use handoff::{ExportChunk, ExportCursor, FrozenRange, RangeHandoff, RANGE_NAMESPACES};

/// A key as lowercase hex (log lines that tools parse).
pub fn key_hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The storage engine's size estimate of an engine-key span `[start, end)`.
pub type SpanSizer<'a> = &'a dyn Fn(&[u8], &[u8]) -> u64;

/// A range and what its store knows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeInfo {
    pub desc: RangeDesc,
    pub generation: u64,
    /// Estimated bytes of its versions.
    pub approx_bytes: u64,
}

/// The ranges of one shard.
pub struct Store {
    id: StoreId,
    /// Reads go to the engine directly; writes only through `log`.
    engine: Rc<dyn Engine>,
    log: Rc<dyn Replication>,
    env: Rc<dyn Env>,
    clock: Rc<RefCell<Hlc>>,
    cfg: KvConfig,
    replicas: RefCell<BTreeMap<u64, Rc<Replica>>>,
    transport: RefCell<Option<Weak<dyn Transport>>>,
    /// Requests a second past which a range splits by load (0: never).
    load_split_per_sec: Cell<u64>,
    stats: RefCell<StoreStats>,
}

/// Counters of a store's request evaluation (since it opened).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Evaluations of range batches (a request that waits is evaluated
    /// again after each wait).
    pub evaluations: u64,
    /// Waits for another transaction's lock (or a reservation of it).
    pub lock_waits: u64,
    /// Locking reads that took their locks, found a version newer than
    /// their read timestamp, and kept the locks while the transaction moves
    /// its timestamp forward.
    pub locks_kept_behind_newer_versions: u64,
}

impl Store {
    /// The evaluation counters.
    pub fn stats(&self) -> StoreStats {
        *self.stats.borrow()
    }

    /// Opens the store over `engine`, writing through `log`, serving the
    /// ranges whose descriptors the engine holds (the log has replayed what
    /// it must before this is called). Everything in memory starts afresh:
    /// the timestamp caches answer at least the clock plus the maximum
    /// offset, since the reads served before are unknown.
    pub async fn open(
        id: StoreId,
        engine: Rc<dyn Engine>,
        log: Rc<dyn Replication>,
        env: Rc<dyn Env>,
        clock: Rc<RefCell<Hlc>>,
        cfg: KvConfig,
    ) -> Result<Rc<Store>, KvError> {
        Store::open_sized(id, engine, log, env, clock, cfg, None).await
    }

    /// [`Store::open`], with each range's starting size estimate taken from
    /// `sizer` (the storage engine's estimate for an engine-key span) rather
    /// than by reading the range.
    pub async fn open_sized(
        id: StoreId,
        engine: Rc<dyn Engine>,
        log: Rc<dyn Replication>,
        env: Rc<dyn Env>,
        clock: Rc<RefCell<Hlc>>,
        cfg: KvConfig,
        sizer: Option<SpanSizer<'_>>,
    ) -> Result<Rc<Store>, KvError> {
        cfg.validate().map_err(KvError::Internal)?;
        let store = Store {
            id,
            engine,
            log,
            env,
            clock,
            cfg,
            replicas: RefCell::new(BTreeMap::new()),
            transport: RefCell::new(None),
            load_split_per_sec: Cell::new(0),
            stats: RefCell::new(StoreStats::default()),
        };
        let low_water = store.now().add_nanos(max_offset_nanos(&store.cfg));
        let (start, end) = (keys::meta_key("desc", 0), keys::meta_key("desc", u64::MAX));
        let descs = store
            .engine
            .scan(
                &start,
                &keys::key_successor(&end),
                Timestamp::MAX,
                false,
                usize::MAX,
            )
            .await?;
        for (_, version) in descs {
            let Some(bytes) = version.value else { continue };
            let (desc, generation) = RangeDesc::decode(&bytes)?;
            let gc = match store
                .engine
                .get(&keys::meta_key("gc", desc.id), Timestamp::MAX)
                .await?
            {
                Some(v) => v
                    .value
                    .as_ref()
                    .map(decode_ts)
                    .transpose()?
                    .unwrap_or(Timestamp::ZERO),
                None => Timestamp::ZERO,
            };
            store.log.create_range(desc.id).await?;
            let replica = Replica::with_generation(desc.clone(), generation, low_water, gc);
            let bytes = match sizer {
                Some(size) => {
                    let (start, end) = keys::engine_span(keys::NS_DATA, &desc.span);
                    size(&start, &end)
                }
                None => store.range_bytes(&desc.span).await?,
            };
            replica.set_approx_bytes(bytes);
            store
                .replicas
                .borrow_mut()
                .insert(desc.id, Rc::new(replica));
        }
        let store = Rc::new(store);
        let applier: Rc<dyn Applier> = store.clone();
        store.log.set_applier(Rc::downgrade(&applier));
        Ok(store)
    }

    /// Creates the ranges `descs` on this store (a new cluster, or tests):
    /// each range's log, then its descriptor written through that log.
    pub async fn create_ranges(&self, descs: &[RangeDesc]) -> Result<(), KvError> {
        for d in descs {
            self.log.create_range(d.id).await?;
            let mut batch = WriteBatch::new();
            batch.put(keys::meta_key("desc", d.id), Timestamp::ZERO, d.encode(0));
            self.log.replicate(d.id, batch).await?;
        }
        let low_water = self.now().add_nanos(max_offset_nanos(&self.cfg));
        for d in descs {
            let replica = Replica::new(d.clone(), low_water, Timestamp::ZERO);
            self.replicas.borrow_mut().insert(d.id, Rc::new(replica));
        }
        Ok(())
    }

    /// Splits ranges that serve more than `per_sec` requests a second over a
    /// whole load window (0 turns splitting by load off).
    pub fn set_load_split(&self, per_sec: u64) {
        self.load_split_per_sec.set(per_sec);
    }

    /// Connects the store to the transport it uses to reach other ranges
    /// (pushes, deadlock probes). Held weakly: the transport owns the stores.
    pub fn set_transport(&self, transport: Weak<dyn Transport>) {
        *self.transport.borrow_mut() = Some(transport);
    }

    pub fn id(&self) -> StoreId {
        self.id
    }

    pub fn config(&self) -> &KvConfig {
        &self.cfg
    }

    pub fn ranges(&self) -> Vec<RangeDesc> {
        self.replicas.borrow().values().map(|r| r.desc()).collect()
    }

    /// Every range of the store with its generation and size.
    pub fn range_infos(&self) -> Vec<RangeInfo> {
        self.replicas
            .borrow()
            .values()
            .map(|r| RangeInfo {
                desc: r.desc(),
                generation: r.generation(),
                approx_bytes: r.approx_bytes(),
            })
            .collect()
    }

    pub fn replica(&self, range_id: u64) -> Option<Rc<Replica>> {
        self.replicas.borrow().get(&range_id).cloned()
    }

    pub fn engine(&self) -> &Rc<dyn Engine> {
        &self.engine
    }

    pub fn log(&self) -> &Rc<dyn Replication> {
        &self.log
    }

    fn now(&self) -> Timestamp {
        self.clock.borrow_mut().now(self.env.now_nanos())
    }

    fn transport(&self) -> Result<Rc<dyn Transport>, KvError> {
        self.transport
            .borrow()
            .as_ref()
            .and_then(Weak::upgrade)
            .ok_or_else(|| KvError::Unavailable("store has no transport".into()))
    }

    /// Runs one batch on its range.
    pub async fn execute(&self, batch: RangeBatch) -> Result<RangeBatchResponse, KvError> {
        self.clock
            .borrow_mut()
            .update(batch.header.clock, self.env.now_nanos())
            .map_err(|e| KvError::Unavailable(e.to_string()))?;
        let replica = self
            .replica(batch.header.range_id)
            .filter(|r| !r.is_closed())
            .ok_or_else(|| KvError::RangeKeyMismatch {
                key: first_key(&batch).unwrap_or_default(),
            })?;
        let per_sec = self.load_split_per_sec.get();
        let load_split = match first_key(&batch) {
            Some(key) if per_sec > 0 => replica.note_load(self.env.now_nanos(), &key, per_sec),
            _ => None,
        };
        let result = if batch.requests.iter().all(RangeRequest::is_in_memory) {
            in_memory(&replica, &batch.requests)
        } else {
            self.execute_on(&replica, &batch).await
        };
        if let Some(key) = load_split {
            // The batch is done: a failed split is the range's business.
            if let Err(e) = self.split_at(&replica, key).await {
                tracing::warn!(range = replica.id(), error = %e, "range split by load failed");
            }
        }
        result.map(|(responses, write_ts)| RangeBatchResponse {
            responses,
            write_ts,
            clock: self.now(),
        })
    }

    async fn execute_on(
        &self,
        replica: &Rc<Replica>,
        batch: &RangeBatch,
    ) -> Result<(Vec<RangeResponse>, Option<Timestamp>), KvError> {
        let mut wait = WaitState {
            waiter: None,
            edge: None,
            edge_to: None,
            pushed: None,
            deadline: batch
                .header
                .lock_timeout
                .or(self.cfg.lock_timeout)
                .map(|t| self.env.now_nanos().saturating_add(nanos(t))),
        };
        let result = self.evaluate_until_done(replica, batch, &mut wait).await;
        if let Some(txn) = wait.edge.take() {
            // Best effort: a stale edge is also removed when the record ends.
            let _ = self.set_waits_for(&txn, None).await;
        }
        result
    }

    async fn evaluate_until_done(
        &self,
        replica: &Rc<Replica>,
        batch: &RangeBatch,
        wait: &mut WaitState,
    ) -> Result<(Vec<RangeResponse>, Option<Timestamp>), KvError> {
        loop {
            let spans = latch_spans(replica, batch);
            let guard = replica.latches.acquire(spans).await;
            if replica.is_closed() {
                // The range left (or is leaving) this store.
                return Err(KvError::RangeKeyMismatch {
                    key: first_key(batch).unwrap_or_default(),
                });
            }
            let now = self.now();
            self.stats.borrow_mut().evaluations += 1;
            let evaluated = Evaluator::new(&*self.engine, replica, &batch.header, &self.cfg, now)
                .run(&batch.requests)
                .await;
            match evaluated {
                Ok(mut ev) => {
                    let batch = std::mem::take(&mut ev.batch);
                    if !batch.is_empty() {
                        self.log.replicate(replica.id(), batch).await?;
                    }
                    {
                        let mut cache = replica.tscache.borrow_mut();
                        for (span, ts, txn) in &ev.reads {
                            cache.record(span, *ts, *txn);
                        }
                    }
                    if let Some(threshold) = ev.gc_threshold {
                        replica.set_gc_threshold(threshold);
                    }
                    drop(guard);
                    if replica.approx_bytes() > self.cfg.range_split_bytes {
                        // The batch is applied: a failed split is the
                        // range's business, not the request's.
                        if let Err(e) = self.split(replica).await {
                            tracing::warn!(range = replica.id(), error = %e, "range split failed");
                        }
                    }
                    return Ok((ev.responses, ev.write_ts));
                }
                Err(EvalError::Kv(e)) => return Err(e),
                Err(EvalError::TooOldKeepLocks(e, locks)) => {
                    self.stats.borrow_mut().locks_kept_behind_newer_versions += 1;
                    self.log.replicate(replica.id(), locks).await?;
                    return Err(e);
                }
                Err(EvalError::Conflict(conflict)) => {
                    drop(guard);
                    self.handle_conflict(replica, batch, *conflict, wait)
                        .await?;
                }
            }
        }
    }

    async fn handle_conflict(
        &self,
        replica: &Rc<Replica>,
        batch: &RangeBatch,
        c: Conflict,
        wait: &mut WaitState,
    ) -> Result<(), KvError> {
        let header = &batch.header;
        match c.kind {
            ConflictKind::Read { push_to } => {
                let record = self.push(&c.holder, PushKind::Timestamp(push_to)).await?;
                let met = met_span(batch, &c.key);
                self.resolve_local(replica, &c.key, &record, &met).await
            }
            ConflictKind::Lock { reservation } => {
                let me = &header
                    .txn
                    .as_ref()
                    .ok_or_else(|| KvError::Internal("lock conflict without a transaction".into()))?
                    .meta;
                let waiter = wait
                    .waiter
                    .get_or_insert_with(|| replica.locks.waiter(me.clone()));
                waiter.enqueue(&c.key);
                // One liveness push per holder and wait interval: a waiter
                // woken again by the same holder's lock learns nothing new
                // from pushing it again.
                if !reservation && wait.pushed != Some(c.holder.id) {
                    wait.pushed = Some(c.holder.id);
                    let record = self.push(&c.holder, PushKind::Abort).await?;
                    if record.status.is_final() {
                        let met = met_span(batch, &c.key);
                        return self.resolve_local(replica, &c.key, &record, &met).await;
                    }
                }
                if header.wait == WaitPolicy::NoWait {
                    return Err(KvError::LockNotAvailable { key: c.key });
                }
                if wait.edge_to != Some(c.holder.id) {
                    self.set_waits_for(me, Some(&c.holder)).await?;
                    wait.edge = Some(me.clone());
                    wait.edge_to = Some(c.holder.id);
                }
                if self.closes_cycle(me, &c.holder).await? {
                    return Err(KvError::Deadlock { key: Some(c.key) });
                }
                self.stats.borrow_mut().lock_waits += 1;
                self.wait_for_change(&c.key, wait).await
            }
        }
    }

    /// Waits until a key the request queues on changes, or the liveness
    /// interval passes; fails once the lock timeout passed.
    async fn wait_for_change(&self, key: &Bytes, wait: &mut WaitState) -> Result<(), KvError> {
        let now = self.env.now_nanos();
        let mut timeout = nanos(self.cfg.liveness_interval);
        if let Some(deadline) = wait.deadline {
            if now >= deadline {
                return Err(KvError::LockTimeout { key: key.clone() });
            }
            timeout = timeout.min(deadline - now);
        }
        let waiter = wait.waiter.as_ref().expect("queued before waiting");
        let signal = waiter.signal().clone();
        match race(signal.wait(), self.env.sleep(Duration::from_nanos(timeout))).await {
            Either::Left(()) => Ok(()),
            Either::Right(()) => {
                wait.pushed = None;
                match wait.deadline {
                    Some(deadline) if self.env.now_nanos() >= deadline => {
                        Err(KvError::LockTimeout { key: key.clone() })
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Resolves `record`'s lock on `key` in `replica` as the record says,
    /// and for a finished transaction more of its locks (see
    /// [`resolution_span`]); `met` is the span of the request that met the
    /// lock.
    async fn resolve_local(
        &self,
        replica: &Rc<Replica>,
        key: &Bytes,
        record: &TxnRecord,
        met: &Span,
    ) -> Result<(), KvError> {
        let resolution = match record.status {
            TxnStatus::Committed => Resolution::Commit(record.meta.write_ts),
            TxnStatus::Aborted => Resolution::Abort,
            TxnStatus::Pending => Resolution::Push(record.meta.write_ts),
        };
        let header = BatchHeader {
            range_id: replica.id(),
            txn: None,
            wait: WaitPolicy::Block,
            lock_timeout: None,
            clock: self.now(),
        };
        let span = resolution_span(record, key, met, &replica.span());
        let batch = RangeBatch {
            header,
            requests: vec![RangeRequest::ResolveIntents {
                span,
                txn: record.meta.id,
                resolution,
                ignored: record.ignored.clone(),
            }],
        };
        let mut wait = WaitState::default();
        // Resolution never conflicts, so this is one evaluation.
        Box::pin(self.evaluate_until_done(replica, &batch, &mut wait)).await?;
        Ok(())
    }

    /// Sends `requests` to the range holding `key`, re-routing on a
    /// mismatch.
    async fn send_to_key(
        &self,
        key: &[u8],
        txn: Option<crate::api::TxnCtx>,
        requests: Vec<RangeRequest>,
    ) -> Result<Vec<RangeResponse>, KvError> {
        let transport = self.transport()?;
        let mut last = None;
        for _ in 0..crate::config::BATCH_ATTEMPTS_MAX {
            let desc = transport.route(key)?;
            let batch = RangeBatch {
                header: BatchHeader {
                    range_id: desc.id,
                    txn: txn.clone(),
                    wait: WaitPolicy::Block,
                    lock_timeout: None,
                    clock: self.now(),
                },
                requests: requests.clone(),
            };
            match transport.send(batch).await {
                Ok(resp) => {
                    // A clock too far ahead was refused by `execute` already.
                    let _ = self
                        .clock
                        .borrow_mut()
                        .update(resp.clock, self.env.now_nanos());
                    return Ok(resp.responses);
                }
                Err(KvError::RangeKeyMismatch { key }) => last = Some(key),
                Err(e) => return Err(e),
            }
        }
        Err(KvError::Unavailable(format!(
            "no range found for key {}",
            keys::pretty(&last.unwrap_or_default())
        )))
    }

    /// Pushes `pushee` through its record.
    async fn push(&self, pushee: &TxnMeta, kind: PushKind) -> Result<TxnRecord, KvError> {
        let request = RangeRequest::PushTxn {
            pushee: pushee.clone(),
            kind,
        };
        match self
            .send_to_key(&pushee.anchor, None, vec![request])
            .await?
            .pop()
        {
            Some(RangeResponse::Txn(record)) => Ok(record),
            other => Err(KvError::Internal(format!("push answered {other:?}"))),
        }
    }

    async fn set_waits_for(
        &self,
        waiter: &TxnMeta,
        pushee: Option<&TxnMeta>,
    ) -> Result<(), KvError> {
        let request = RangeRequest::SetWaitsFor {
            waiter: waiter.clone(),
            pushee: pushee.cloned(),
        };
        self.send_to_key(&waiter.anchor, None, vec![request])
            .await?;
        Ok(())
    }

    /// Whether following waits-for edges from `holder` leads back to `me`.
    async fn closes_cycle(&self, me: &TxnMeta, holder: &TxnMeta) -> Result<bool, KvError> {
        let mut current = holder.clone();
        for _ in 0..DEADLOCK_PROBE_HOPS_MAX {
            if current.id == me.id {
                return Ok(true);
            }
            let request = RangeRequest::QueryWaitsFor { txn: current.id };
            match self
                .send_to_key(&current.anchor, None, vec![request])
                .await?
                .pop()
            {
                Some(RangeResponse::WaitsFor(Some(next))) => current = next,
                Some(RangeResponse::WaitsFor(None)) => return Ok(false),
                other => {
                    return Err(KvError::Internal(format!(
                        "waits-for query answered {other:?}"
                    )))
                }
            }
        }
        Ok(false)
    }

    /// Runs a GC of every range at `now - gc_horizon`.
    pub async fn gc(&self) -> Result<(), KvError> {
        let horizon = nanos(self.cfg.gc_horizon);
        let now = self.now();
        let threshold = Timestamp::new(now.wall_nanos.saturating_sub(horizon), 0);
        let ranges: Vec<Rc<Replica>> = self.replicas.borrow().values().cloned().collect();
        for replica in ranges {
            self.gc_range(&replica, threshold).await?;
        }
        Ok(())
    }

    /// Garbage-collects one range at `threshold`: old versions, and the
    /// records of finished transactions older than the threshold (after
    /// resolving their remaining locks).
    pub async fn gc_range(
        &self,
        replica: &Rc<Replica>,
        threshold: Timestamp,
    ) -> Result<(), KvError> {
        let header = BatchHeader {
            range_id: replica.id(),
            txn: None,
            wait: WaitPolicy::Block,
            lock_timeout: None,
            clock: self.now(),
        };
        let batch = RangeBatch {
            header,
            requests: vec![RangeRequest::Gc { threshold }],
        };
        let mut wait = WaitState::default();
        self.evaluate_until_done(replica, &batch, &mut wait).await?;
        self.gc_abandoned_locks(replica).await?;
        self.gc_records(replica, threshold).await
    }

    /// Resolves lock records whose holders are finished, or expired (then
    /// aborted through their records): intents nobody else would meet.
    async fn gc_abandoned_locks(&self, replica: &Rc<Replica>) -> Result<(), KvError> {
        let expiry = self.cfg.expiry_nanos();
        let now = self.now();
        let (start, end) = keys::engine_span(keys::NS_LOCK, &replica.span());
        let found = self
            .engine
            .scan(&start, &end, Timestamp::MAX, false, usize::MAX)
            .await?;
        for (engine_key, version) in found {
            let Some(bytes) = version.value else { continue };
            let key = keys::user_key(keys::NS_LOCK, &engine_key);
            let holders = match LockRecord::decode(&bytes)? {
                LockRecord::Exclusive { holder, .. } => vec![holder],
                LockRecord::Shared { holders } => holders,
            };
            for holder in holders {
                if !crate::txn::heartbeat_expired(holder.heartbeat_hint, now, expiry) {
                    continue;
                }
                let record = self.push(&holder, PushKind::Abort).await?;
                if record.status.is_final() {
                    self.resolve_local(replica, &key, &record, &Span::point(&key))
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn gc_records(&self, replica: &Rc<Replica>, threshold: Timestamp) -> Result<(), KvError> {
        let now = self.now();
        let (start, end) = keys::engine_span(NS_TXN, &replica.span());
        let found = self
            .engine
            .scan(&start, &end, Timestamp::MAX, false, usize::MAX)
            .await?;
        for (_, version) in found {
            let Some(bytes) = version.value else { continue };
            let record = TxnRecord::decode(&bytes)?;
            if record.is_expired(now, self.cfg.expiry_nanos()) {
                // Abandoned: abort it now; it is deleted once old enough.
                self.push(&record.meta, PushKind::Abort).await?;
                continue;
            }
            let old = record.last_heartbeat.max(record.meta.write_ts) < threshold;
            if !record.status.is_final() || !old {
                continue;
            }
            crate::client::resolve_spans(&*self.transport()?, &self.clock, &*self.env, &record)
                .await?;
            self.send_to_key(
                &record.meta.anchor,
                None,
                vec![RangeRequest::DeleteTxnRecord {
                    txn: record.meta.clone(),
                }],
            )
            .await?;
        }
        Ok(())
    }
}

/// What a meeting with `record`'s lock on `key`, by a request over `met`,
/// resolves in the range `range`.
///
/// - A pushed (pending) transaction's intent: `key` alone; the rest may
///   still change.
/// - A finished transaction's intents from `key` on, as far as one
///   resolution's budget goes: a scan that meets a large committed
///   transaction's intents (a bulk load whose commit resolves the rest in
///   the background) then pays one replicated write per budget's worth of
///   keys, not one per key (a COPY of 1 M rows left a following full scan
///   resolving them one at a time for minutes). How far: to the end of the
///   record's lock span that holds `key`, where the coordinator left
///   intents; a record without one (aborted by a pusher, which knows no
///   spans) goes to the end of `met`, which the request reads anyway. Both
///   cut at the range's end. Not to the range's end: that made every
///   meeting scan the lock namespace, tombstones of every lock ever
///   released included, to the range's end (YCSB-A fell from 362 to 84
///   ops/s between two 20 s rounds).
fn resolution_span(record: &TxnRecord, key: &Bytes, met: &Span, range: &Span) -> Span {
    if !record.status.is_final() {
        return Span::point(key);
    }
    let rest = Span {
        start: key.clone(),
        end: range.end.clone(),
    };
    // The listed spans holding `key`, cut to `rest`, all start at `key`:
    // their union is the one reaching furthest.
    let listed = record
        .lock_spans
        .iter()
        .filter(|s| s.contains(key))
        .filter_map(|s| s.intersect(&rest))
        .reduce(|a, b| a.union(&b));
    listed
        .or_else(|| met.intersect(&rest))
        .unwrap_or_else(|| Span::point(key))
}

/// The span of the first request of `batch` that covers `key` (the one
/// that met a lock there); `key` alone if none does.
fn met_span(batch: &RangeBatch, key: &Bytes) -> Span {
    batch
        .requests
        .iter()
        .find_map(|r| match r {
            RangeRequest::Op { op, .. } => Some(op.span()).filter(|s| s.contains(key)),
            _ => None,
        })
        .unwrap_or_else(|| Span::point(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{TxnId, TxnMeta, TxnStatus};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn record(status: TxnStatus, lock_spans: Vec<Span>) -> TxnRecord {
        let meta = TxnMeta {
            id: TxnId(7),
            anchor: b("a"),
            write_ts: Timestamp::new(10, 0),
            min_ts: Timestamp::new(10, 0),
            heartbeat_hint: Timestamp::new(10, 0),
        };
        TxnRecord {
            lock_spans,
            status,
            ..TxnRecord::pending(meta, Timestamp::new(10, 0))
        }
    }

    #[test]
    fn resolution_spans_of_a_meeting() {
        let range = Span::new(b("c"), b("x"));
        let scan = Span::new(b("a"), b("p"));
        let k = b("f");
        // Pending: the key alone, whatever the record lists.
        let pending = record(TxnStatus::Pending, vec![Span::new(b("a"), b("z"))]);
        assert_eq!(
            resolution_span(&pending, &k, &scan, &range),
            Span::point(&k)
        );
        // Committed: the listed span holding the key, from the key, cut at
        // the range's end; not the scan's span.
        let committed = record(
            TxnStatus::Committed,
            vec![Span::new(b("a"), b("d")), Span::new(b("e"), b("z"))],
        );
        assert_eq!(
            resolution_span(&committed, &k, &scan, &range),
            Span::new(b("f"), b("x"))
        );
        let small = record(TxnStatus::Committed, vec![Span::point(&k)]);
        assert_eq!(resolution_span(&small, &k, &scan, &range), Span::point(&k));
        // Aborted by a pusher (no spans listed): the rest of the request's
        // span, cut at the range's end.
        let aborted = record(TxnStatus::Aborted, Vec::new());
        assert_eq!(
            resolution_span(&aborted, &k, &scan, &range),
            Span::new(b("f"), b("p"))
        );
        assert_eq!(
            resolution_span(&aborted, &k, &Span::point(&k), &range),
            Span::point(&k)
        );
        let wide = Span::from_key(b("a"));
        assert_eq!(
            resolution_span(&aborted, &k, &wide, &range),
            Span::new(b("f"), b("x"))
        );
    }
}

impl Applier for Store {
    fn applied(&self, range_id: u64, batch: &WriteBatch) {
        if let Some(replica) = self.replica(range_id) {
            replica.on_applied(batch);
        }
    }
}

#[derive(Default)]
struct WaitState {
    waiter: Option<WaiterGuard>,
    /// The waits-for edge this request registered: its transaction.
    edge: Option<TxnMeta>,
    edge_to: Option<crate::txn::TxnId>,
    /// Lock timeout, in physical nanoseconds.
    deadline: Option<u64>,
    /// The holder last pushed for liveness; cleared when a wait times out
    /// (the liveness interval passed), so that it is pushed again.
    pushed: Option<crate::txn::TxnId>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn max_offset_nanos(cfg: &KvConfig) -> u64 {
    nanos(cfg.max_offset)
}

fn first_key(batch: &RangeBatch) -> Option<Bytes> {
    batch.requests.iter().find_map(|r| match r {
        RangeRequest::Op { op, .. } => Some(op.first_key()),
        RangeRequest::ResolveIntents { span, .. } | RangeRequest::Refresh { span, .. } => {
            Some(span.start.clone())
        }
        RangeRequest::PushTxn { pushee, .. } => Some(pushee.anchor.clone()),
        _ => batch.header.txn.as_ref().map(|t| t.meta.anchor.clone()),
    })
}

/// Requests that touch only the replica's memory.
fn in_memory(
    replica: &Replica,
    requests: &[RangeRequest],
) -> Result<(Vec<RangeResponse>, Option<Timestamp>), KvError> {
    if replica.is_closed() {
        return Err(KvError::RangeKeyMismatch { key: Bytes::new() });
    }
    let span = replica.span();
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        responses.push(match request {
            RangeRequest::SetWaitsFor { waiter, pushee } => {
                if !span.contains(&waiter.anchor) {
                    return Err(KvError::RangeKeyMismatch {
                        key: waiter.anchor.clone(),
                    });
                }
                let mut waits = replica.waits_for.borrow_mut();
                match pushee {
                    Some(p) => waits.insert(waiter.id, p.clone()),
                    None => waits.remove(&waiter.id),
                };
                RangeResponse::Done
            }
            RangeRequest::QueryWaitsFor { txn } => {
                RangeResponse::WaitsFor(replica.waits_for.borrow().get(txn).cloned())
            }
            other => return Err(KvError::Internal(format!("{other:?} is not in-memory"))),
        });
    }
    Ok((responses, None))
}

/// The latches a batch needs on `replica`.
fn latch_spans(replica: &Replica, batch: &RangeBatch) -> Vec<LatchSpan> {
    let range = replica.span();
    let mut spans = Vec::new();
    let txn = batch.header.txn.as_ref();
    for request in &batch.requests {
        match request {
            RangeRequest::Op { op, .. } => {
                spans.extend(latch_user_span(&op.span(), op.acquires_locks()))
            }
            RangeRequest::HeartbeatTxn | RangeRequest::EndTxn { .. } => {
                if let Some(t) = txn {
                    spans.push(latch_txn_record(&t.meta.anchor, t.meta.id));
                }
                if let RangeRequest::EndTxn { lock_spans, .. } = request {
                    for s in lock_spans.iter().filter_map(|s| s.intersect(&range)) {
                        spans.extend(latch_user_span(&s, true));
                    }
                }
            }
            RangeRequest::PushTxn { pushee, .. } => {
                spans.push(latch_txn_record(&pushee.anchor, pushee.id))
            }
            RangeRequest::DeleteTxnRecord { txn } => {
                spans.push(latch_txn_record(&txn.anchor, txn.id))
            }
            RangeRequest::ResolveIntents { span, .. } => spans.extend(latch_user_span(span, true)),
            RangeRequest::Refresh { span, .. } => spans.extend(latch_user_span(span, false)),
            RangeRequest::Gc { .. } => {
                spans.extend(latch_user_span(&range, true));
                let meta = keys::meta_key("gc", replica.id());
                spans.push(LatchSpan {
                    end: keys::key_successor(&meta),
                    start: meta,
                    write: true,
                });
            }
            RangeRequest::SetWaitsFor { .. } | RangeRequest::QueryWaitsFor { .. } => {}
        }
    }
    spans
}
