//! A single-node, in-memory [`Kv`]: the SQL layer's test double.
//!
//! - **Versions.** Every key keeps its committed versions, each stamped with
//!   the commit sequence number that wrote it (a tombstone for a delete).
//!   Versions no open transaction can see are pruned at commit.
//! - **Reads.** A transaction reads the versions committed before it began,
//!   plus its own writes: snapshot isolation. `ReadCommitted` takes a new
//!   snapshot at each batch instead. `Serializable` is served as snapshot
//!   isolation here; detecting write skew is the real engine's job.
//! - **Writes** are buffered in the transaction and applied at commit, all
//!   with one new sequence number.
//! - **Conflicts: first committer wins.** Writing a key that another
//!   transaction committed after this one's snapshot fails with
//!   [`KvError::Retry`], at the write if the other one has already committed,
//!   else at commit.
//! - **Faults.** [`MemoryKv::fail_next`] makes the next batch or commit fail
//!   with a chosen error, so the SQL layer's handling of `40001`, `40P01`,
//!   `55P03` and I/O errors can be tested; [`MemoryKv::set_scan_rows_max`]
//!   sets an engine-side scan limit, so that resume spans are exercised;
//!   [`MemoryKv::set_batch_writes_max`] caps the keys one batch may write
//!   (a `DeleteRange` counts every key it deletes), as the engine's Raft
//!   entry size limit does, so that bulk statements are shown to write in
//!   bounded batches.
//! - **Locking reads.** A scan with a [`RowLock`] locks the rows it
//!   returns until the transaction ends; locks live in the store so other
//!   transactions see them. This double cannot wait: a lock or a write that
//!   would wait fails at once with [`KvError::Retry`] (the outcome waiting
//!   then losing to the holder would have under first-committer-wins),
//!   `NOWAIT` fails with [`KvError::LockTimeout`] and `SKIP LOCKED` leaves
//!   the row out.
//! - **Placement.** The store is one range (id 1, the whole keyspace, on
//!   shard 0) unless a test sets another placement with
//!   [`MemoryKv::set_ranges`]; [`Kv::describe_ranges`] reports it.
//! - **Timestamps** are commit sequence numbers (in `wall_nanos`): a
//!   transaction's timestamp is the last commit its snapshot includes, and
//!   commit returns the new commit's number. No clock is read.
//!
//! Single-threaded and shard-local (`Rc<RefCell<..>>`); no borrow is held
//! across an await point (there are none).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::rc::Rc;

use bytes::Bytes;

use super::{
    check_tiling, spans_overlap, Batch, BatchResponse, Isolation, KeyValue, Kv, KvError, KvTxn,
    LockStrength, LockWait, RangeDescription, Request, Response, RetryReason, RowLock, ScanRequest,
    ScanResponse, Span, Timestamp, TxnOptions,
};

/// A committed version: the sequence number of its commit and the value
/// (`None` for a delete).
#[derive(Clone, Debug)]
struct Version {
    seq: u64,
    value: Option<Bytes>,
}

#[derive(Debug, Default)]
struct Store {
    /// Versions per key, oldest first.
    data: BTreeMap<Bytes, Vec<Version>>,
    /// Sequence number of the last commit.
    seq: u64,
    /// Snapshot sequence numbers of the open transactions, with counts.
    open: BTreeMap<u64, usize>,
    /// Errors to return from the next batches or commits.
    faults: VecDeque<KvError>,
    /// The engine's own cap on rows per scan.
    scan_rows_max: Option<u64>,
    /// The engine's cap on keys written by one batch.
    batch_writes_max: Option<u64>,
    /// Row locks of open transactions: key → (transaction id, strength).
    locks: BTreeMap<Bytes, Vec<(u64, LockStrength)>>,
    /// The last transaction id handed out.
    next_txn: u64,
    /// The placement [`Kv::describe_ranges`] reports (`None`: one range).
    ranges: Option<Vec<RangeDescription>>,
}

impl Store {
    /// The value of `key` visible at `seq`.
    fn read(&self, key: &[u8], seq: u64) -> Option<&Bytes> {
        let versions = self.data.get(key)?;
        let version = versions.iter().rev().find(|v| v.seq <= seq)?;
        version.value.as_ref()
    }

    /// The latest commit sequence number of `key`.
    fn last_write(&self, key: &[u8]) -> Option<u64> {
        Some(self.data.get(key)?.last()?.seq)
    }

    /// Whether another transaction than `txn` holds a lock on `key` that
    /// conflicts with `strength` (`None`: a write, which conflicts with all).
    fn lock_conflict(&self, key: &[u8], txn: u64, strength: Option<LockStrength>) -> bool {
        self.locks.get(key).is_some_and(|holders| {
            holders.iter().any(|&(holder, held)| {
                holder != txn
                    && !(strength == Some(LockStrength::Share) && held == LockStrength::Share)
            })
        })
    }

    fn release(&mut self, txn: u64, keys: &[Bytes]) {
        for key in keys {
            if let Some(holders) = self.locks.get_mut(key) {
                holders.retain(|(holder, _)| *holder != txn);
                if holders.is_empty() {
                    self.locks.remove(key);
                }
            }
        }
    }

    fn register(&mut self, seq: u64) {
        *self.open.entry(seq).or_default() += 1;
    }

    fn unregister(&mut self, seq: u64) {
        if let Some(count) = self.open.get_mut(&seq) {
            *count -= 1;
            if *count == 0 {
                self.open.remove(&seq);
            }
        }
    }

    /// Drops the versions of `key` that no snapshot can see any more.
    fn prune(&mut self, key: &[u8]) {
        let horizon = self.open.keys().next().copied().unwrap_or(self.seq);
        let Some(versions) = self.data.get_mut(key) else {
            return;
        };
        // Keep the newest version at or below the horizon and all newer ones.
        if let Some(keep_from) = versions.iter().rposition(|v| v.seq <= horizon) {
            versions.drain(..keep_from);
        }
        if versions.len() == 1 && versions[0].value.is_none() {
            self.data.remove(key);
        }
    }
}

/// A handle on an in-memory store; clones share the store.
#[derive(Clone, Debug, Default)]
pub struct MemoryKv {
    store: Rc<RefCell<Store>>,
}

impl MemoryKv {
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// Makes the next batch or commit (of any transaction) fail with `error`.
    /// Queued errors are used one per call, in order.
    pub fn fail_next(&self, error: KvError) {
        self.store.borrow_mut().faults.push_back(error);
    }

    /// Caps every scan at `rows` rows (at least 1: a scan must make
    /// progress), like the engine's own limit; `None` lifts it.
    pub fn set_scan_rows_max(&self, rows: Option<u64>) {
        self.store.borrow_mut().scan_rows_max = rows.map(|n| n.max(1));
    }

    /// Refuses, with [`KvError::Internal`], a batch that writes more than
    /// `keys` keys (the engine refuses a write batch past its Raft entry
    /// limit the same way); `None` lifts it.
    pub fn set_batch_writes_max(&self, keys: Option<u64>) {
        self.store.borrow_mut().batch_writes_max = keys;
    }

    /// The committed, live key-value pairs, in key order.
    pub fn dump(&self) -> Vec<KeyValue> {
        let store = self.store.borrow();
        store
            .data
            .keys()
            .filter_map(|key| {
                store.read(key, store.seq).map(|value| KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
            })
            .collect()
    }

    /// Makes [`Kv::describe_ranges`] report `ranges` (which must tile the
    /// keyspace, a caller bug otherwise) instead of one range.
    pub fn set_ranges(&self, ranges: Vec<RangeDescription>) {
        if let Err(e) = check_tiling(&ranges, &Span::from_key(Bytes::new())) {
            panic!("set_ranges: {e}");
        }
        self.store.borrow_mut().ranges = Some(ranges);
    }

    /// The one range of an unsplit store: the keyspace on shard 0, sized
    /// by its live keys and values.
    fn single_range(&self) -> RangeDescription {
        let bytes: usize = self
            .dump()
            .iter()
            .map(|kv| kv.key.len() + kv.value.len())
            .sum();
        RangeDescription {
            range_id: 1,
            span: Span::from_key(Bytes::new()),
            shard: 0,
            generation: 0,
            approx_bytes: Some(bytes as u64),
        }
    }

    /// Committed versions held, tombstones included (for tests of pruning).
    pub fn versions(&self) -> usize {
        self.store.borrow().data.values().map(Vec::len).sum()
    }
}

impl Kv for MemoryKv {
    type Txn = MemoryTxn;

    async fn begin(&self, options: TxnOptions) -> Result<MemoryTxn, KvError> {
        let mut store = self.store.borrow_mut();
        let snapshot = store.seq;
        store.register(snapshot);
        store.next_txn += 1;
        Ok(MemoryTxn {
            id: store.next_txn,
            store: self.store.clone(),
            options,
            snapshot,
            writes: BTreeMap::new(),
            locked: Vec::new(),
            undo: None,
            done: false,
        })
    }

    async fn describe_ranges(&self, span: &Span) -> Result<Vec<RangeDescription>, KvError> {
        if span.is_empty() {
            return Err(KvError::Internal(format!("empty span {span:?}")));
        }
        let ranges = match self.store.borrow().ranges.clone() {
            Some(ranges) => ranges,
            None => vec![self.single_range()],
        };
        Ok(ranges
            .into_iter()
            .filter(|r| spans_overlap(&r.span, span))
            .collect())
    }
}

/// A buffered write.
#[derive(Clone, Debug)]
struct Write {
    /// `None`: delete.
    value: Option<Bytes>,
    /// The snapshot the key was first written at.
    snapshot: u64,
}

/// A transaction on a [`MemoryKv`].
#[derive(Debug)]
pub struct MemoryTxn {
    id: u64,
    store: Rc<RefCell<Store>>,
    options: TxnOptions,
    /// Reads see commits up to this sequence number.
    snapshot: u64,
    /// Buffered writes, applied at commit.
    writes: BTreeMap<Bytes, Write>,
    /// Keys this transaction holds row locks on.
    locked: Vec<Bytes>,
    /// The writes the current batch replaced (key, previous entry), to
    /// undo the batch if it fails; `None` outside a writing batch.
    undo: Option<Vec<(Bytes, Option<Write>)>>,
    /// Committed or rolled back: the snapshot is unregistered.
    done: bool,
}

impl MemoryTxn {
    fn read(&self, store: &Store, key: &[u8]) -> Option<Bytes> {
        match self.writes.get(key) {
            Some(own) => own.value.clone(),
            None => store.read(key, self.snapshot).cloned(),
        }
    }

    /// The visible rows of `span`, in scan order.
    fn visible<'a>(
        &'a self,
        store: &'a Store,
        span: &Span,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = (Bytes, Bytes)> + 'a> {
        let bounds = (
            Bound::Included(span.start.clone()),
            span.end.clone().map_or(Bound::Unbounded, Bound::Excluded),
        );
        let snapshot = self.snapshot;
        let committed = store
            .data
            .range::<Bytes, _>(bounds.clone())
            .filter_map(move |(k, _)| {
                store
                    .read(k, snapshot)
                    .map(|v| (k.clone(), Some(v.clone())))
            });
        let own = self
            .writes
            .range::<Bytes, _>(bounds)
            .map(|(k, w)| (k.clone(), w.value.clone()));
        let merged: Box<dyn Iterator<Item = (Bytes, Option<Bytes>)>> = if reverse {
            Box::new(Merge::new(committed.rev(), own.rev(), true))
        } else {
            Box::new(Merge::new(committed, own, false))
        };
        Box::new(merged.filter_map(|(k, v)| v.map(|v| (k, v))))
    }

    fn scan(&self, store: &Store, scan: &ScanRequest) -> ScanResponse {
        let limit_rows = match (scan.limit_rows, store.scan_rows_max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut rows = Vec::new();
        let mut bytes = 0u64;
        let mut iter = self.visible(store, &scan.span, scan.reverse).peekable();
        loop {
            let full = limit_rows.is_some_and(|n| rows.len() as u64 >= n)
                || scan
                    .limit_bytes
                    .is_some_and(|n| bytes >= n && !rows.is_empty());
            if full {
                break;
            }
            let Some((key, value)) = iter.next() else {
                return ScanResponse { rows, resume: None };
            };
            bytes += (key.len() + value.len()) as u64;
            rows.push(KeyValue { key, value });
        }
        let Some((next, _)) = iter.peek() else {
            return ScanResponse { rows, resume: None };
        };
        let resume = if scan.reverse {
            let end = rows
                .last()
                .map_or_else(|| scan.span.end.clone(), |kv| Some(kv.key.clone()));
            Span {
                start: scan.span.start.clone(),
                end,
            }
        } else {
            Span {
                start: next.clone(),
                end: scan.span.end.clone(),
            }
        };
        ScanResponse {
            rows,
            resume: Some(resume),
        }
    }

    /// Refuses a write to `key` made at `snapshot` that a later commit
    /// already overwrote.
    fn check_write(&self, store: &Store, key: &Bytes, snapshot: u64) -> Result<(), KvError> {
        if self.options.read_only {
            return Err(KvError::ReadOnly);
        }
        if store.lock_conflict(key, self.id, None) {
            return Err(KvError::Retry {
                reason: RetryReason::WriteConflict,
                key: Some(key.clone()),
            });
        }
        match store.last_write(key) {
            Some(seq) if seq > snapshot => Err(KvError::Retry {
                reason: RetryReason::WriteConflict,
                key: Some(key.clone()),
            }),
            _ => Ok(()),
        }
    }

    fn write(&mut self, store: &Store, key: Bytes, value: Option<Bytes>) -> Result<(), KvError> {
        // A key written again keeps its first snapshot: the conflict window
        // opens at the first write (this matters for ReadCommitted).
        let snapshot = self.writes.get(&key).map_or(self.snapshot, |w| w.snapshot);
        self.check_write(store, &key, snapshot)?;
        let previous = self.writes.insert(key.clone(), Write { value, snapshot });
        if let Some(undo) = &mut self.undo {
            undo.push((key, previous));
        }
        Ok(())
    }

    fn run(
        &mut self,
        store: &mut Store,
        index: usize,
        request: Request,
    ) -> Result<Response, KvError> {
        Ok(match request {
            Request::Get { key } => Response::Get(self.read(store, &key)),
            Request::Scan(scan) => match scan.lock {
                Some(lock) if !self.options.read_only => {
                    Response::Scan(self.lock_scan(store, &scan, lock)?)
                }
                _ => Response::Scan(self.scan(store, &scan)),
            },
            Request::Put { key, value } => {
                self.write(store, key, Some(value))?;
                Response::Written
            }
            Request::Delete { key } => {
                self.write(store, key, None)?;
                Response::Written
            }
            Request::DeleteRange { span } => {
                let keys: Vec<Bytes> = self.visible(store, &span, false).map(|(k, _)| k).collect();
                for key in keys {
                    self.write(store, key, None)?;
                }
                Response::Written
            }
            Request::ConditionalPut {
                key,
                value,
                expected,
            } => {
                let actual = self.read(store, &key);
                if actual != expected {
                    return Err(KvError::ConditionFailed { index, key, actual });
                }
                self.write(store, key, Some(value))?;
                Response::Written
            }
        })
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            let mut store = self.store.borrow_mut();
            store.unregister(self.snapshot);
            let locked = std::mem::take(&mut self.locked);
            store.release(self.id, &locked);
        }
    }

    /// A locking scan: the rows of `scan` this transaction may lock, locked.
    fn lock_scan(
        &mut self,
        store: &mut Store,
        scan: &ScanRequest,
        lock: RowLock,
    ) -> Result<ScanResponse, KvError> {
        let unlimited = ScanRequest {
            limit_rows: None,
            limit_bytes: None,
            lock: None,
            ..scan.clone()
        };
        let all = self.scan(store, &unlimited);
        let want = match (scan.limit_rows, store.scan_rows_max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut rows = Vec::new();
        let mut last = None;
        let mut stopped = false;
        for kv in all.rows {
            if want.is_some_and(|n| rows.len() as u64 >= n) {
                stopped = true;
                break;
            }
            last = Some(kv.key.clone());
            let busy = store.lock_conflict(&kv.key, self.id, Some(lock.strength))
                || (store
                    .last_write(&kv.key)
                    .is_some_and(|seq| seq > self.snapshot)
                    && !self.writes.contains_key(&kv.key));
            if busy {
                let committed_later = store
                    .last_write(&kv.key)
                    .is_some_and(|seq| seq > self.snapshot);
                match lock.wait {
                    LockWait::SkipLocked if !committed_later => continue,
                    LockWait::NoWait if !committed_later => {
                        return Err(KvError::LockTimeout { key: kv.key })
                    }
                    _ => {
                        return Err(KvError::Retry {
                            reason: RetryReason::WriteConflict,
                            key: Some(kv.key),
                        })
                    }
                }
            }
            let holders = store.locks.entry(kv.key.clone()).or_default();
            match holders.iter_mut().find(|(t, _)| *t == self.id) {
                Some(held) => {
                    if lock.strength == LockStrength::Exclusive {
                        held.1 = LockStrength::Exclusive;
                    }
                }
                None => {
                    holders.push((self.id, lock.strength));
                    self.locked.push(kv.key.clone());
                }
            }
            rows.push(kv);
        }
        let resume = match (stopped, last) {
            (true, Some(key)) if scan.reverse => Some(Span {
                start: scan.span.start.clone(),
                end: Some(key),
            }),
            (true, Some(key)) => {
                let mut next = key.to_vec();
                next.push(0);
                Some(Span {
                    start: Bytes::from(next),
                    end: scan.span.end.clone(),
                })
            }
            _ => None,
        };
        Ok(ScanResponse { rows, resume })
    }
}

impl KvTxn for MemoryTxn {
    fn timestamp(&self) -> Timestamp {
        Timestamp {
            wall_nanos: self.snapshot,
            logical: 0,
        }
    }

    fn isolation(&self) -> Isolation {
        self.options.isolation
    }

    async fn batch(&mut self, batch: Batch) -> Result<BatchResponse, KvError> {
        batch.validate()?;
        let store_rc = self.store.clone();
        let mut store = store_rc.borrow_mut();
        if let Some(fault) = store.faults.pop_front() {
            return Err(fault);
        }
        if self.options.isolation == Isolation::ReadCommitted {
            store.unregister(self.snapshot);
            self.snapshot = store.seq;
            store.register(self.snapshot);
        }
        self.undo = batch.has_writes().then(Vec::new);
        let locked_before = self.locked.len();
        let mut responses = Vec::with_capacity(batch.len());
        for (index, request) in batch.requests.into_iter().enumerate() {
            let result = self.run(&mut store, index, request).and_then(|response| {
                let written = self.undo.as_ref().map_or(0, Vec::len) as u64;
                match store.batch_writes_max {
                    Some(max) if written > max => Err(KvError::Internal(format!(
                        "a write batch of {written} keys exceeds the limit of {max}"
                    ))),
                    _ => Ok(response),
                }
            });
            match result {
                Ok(response) => responses.push(response),
                Err(e) => {
                    // Undo the batch's writes, newest first.
                    for (key, previous) in self.undo.take().unwrap_or_default().into_iter().rev() {
                        match previous {
                            Some(w) => {
                                self.writes.insert(key, w);
                            }
                            None => {
                                self.writes.remove(&key);
                            }
                        }
                    }
                    let taken = self.locked.split_off(locked_before);
                    store.release(self.id, &taken);
                    return Err(e);
                }
            }
        }
        self.undo = None;
        Ok(BatchResponse { responses })
    }

    async fn commit(mut self) -> Result<Timestamp, KvError> {
        let store_rc = self.store.clone();
        let mut store = store_rc.borrow_mut();
        if let Some(fault) = store.faults.pop_front() {
            return Err(fault);
        }
        for (key, write) in &self.writes {
            self.check_write(&store, key, write.snapshot)?;
        }
        if !self.writes.is_empty() {
            store.seq += 1;
        }
        let seq = store.seq;
        drop(store);
        self.finish();
        let mut store = store_rc.borrow_mut();
        for (key, Write { value, .. }) in std::mem::take(&mut self.writes) {
            store
                .data
                .entry(key.clone())
                .or_default()
                .push(Version { seq, value });
            store.prune(&key);
        }
        Ok(Timestamp {
            wall_nanos: seq,
            logical: 0,
        })
    }

    async fn rollback(mut self) -> Result<(), KvError> {
        self.finish();
        Ok(())
    }
}

impl Drop for MemoryTxn {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Merges two sorted streams of writes; on equal keys the second (the
/// transaction's own write) wins.
struct Merge<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
    reverse: bool,
}

impl<A, B> Merge<A, B>
where
    A: Iterator<Item = (Bytes, Option<Bytes>)>,
    B: Iterator<Item = (Bytes, Option<Bytes>)>,
{
    fn new(a: A, b: B, reverse: bool) -> Self {
        Merge {
            a: a.peekable(),
            b: b.peekable(),
            reverse,
        }
    }
}

impl<A, B> Iterator for Merge<A, B>
where
    A: Iterator<Item = (Bytes, Option<Bytes>)>,
    B: Iterator<Item = (Bytes, Option<Bytes>)>,
{
    type Item = (Bytes, Option<Bytes>);

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) if self.reverse => kb.cmp(ka),
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            std::cmp::Ordering::Less => self.a.next(),
            std::cmp::Ordering::Greater => self.b.next(),
            std::cmp::Ordering::Equal => {
                self.a.next();
                self.b.next()
            }
        }
    }
}

#[cfg(test)]
mod tests;
