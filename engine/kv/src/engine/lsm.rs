//! [`LsmEngine`]: the engine of [`super`] over the shard's LSM
//! (`teller_storage::Engine`), on any [`Disk`] — the real O_DIRECT disk in
//! the node, the seeded, fault-injecting `SimDisk` in tests.
//!
//! # Mapping
//! - Timestamps convert field by field (both are `(wall_nanos, logical)`).
//! - `Put` and `Delete` map one to one. [`Mutation::Clear`] becomes a
//!   tombstone at the same `(key, ts)`, which *replaces* the entry: a read
//!   at or above the range's GC threshold (the only reads allowed) sees the
//!   same as if the entry were gone, because evaluation clears only lock
//!   and record entries (at `Timestamp::ZERO`, where a tombstone reads as
//!   "absent") and versions below the GC threshold that a newer version
//!   shadows. Compaction drops such tombstones once the storage GC horizon
//!   passes them.
//! - `scan` is the LSM's MVCC iterator with tombstones shown; `scan_versions`
//!   is the LSM's all-versions iterator (`iter_versions`): one merge step per
//!   version. (It used to take a point lookup per older version, which made
//!   refreshing a span of rewritten keys cost a whole LSM lookup per version:
//!   bank throughput fell 8x as versions piled up.)
//!
//! # Writes
//! Two modes, fixed at construction:
//! - [`LsmEngine::direct`]: `apply` writes the batch through the WAL with a
//!   sync (group commit with every concurrent writer) and returns once it is
//!   durable. The write runs in a task of its own, spawned through the
//!   shard's [`Env`], so that a caller whose future is dropped (a request
//!   cancelled, a gateway that died) never abandons a group commit it leads
//!   — the LSM makes itself read-only when that happens.
//! - [`LsmEngine::raft`]: the WAL is the Raft log. Writes reach the LSM only
//!   as applied log entries (`crate::replication`), so `apply` here is
//!   refused: a write that bypassed the log would be lost by recovery.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use teller_storage::disk::Disk;
use teller_storage::engine::Item;
use teller_storage::{Engine as Lsm, EngineError as LsmError, Timestamp as LsmTs};

use super::{Engine, EngineError, KeyVersion, LocalBoxFuture, Mutation, Version, WriteBatch};
use crate::env::Env;
use crate::hlc::Timestamp;
use crate::sync::oneshot;

/// How `apply` reaches the LSM.
enum Writes {
    /// A durable WAL write per batch, run by a task spawned through the env.
    Direct(Rc<dyn Env>),
    /// Only through the ranges' Raft logs; `apply` is refused.
    RaftLog,
}

/// The MVCC engine interface over one shard's LSM.
pub struct LsmEngine<D: Disk> {
    lsm: Rc<Lsm<D>>,
    writes: Writes,
    /// Set when another instance took over the files (a simulated crash
    /// and restart): every call fails from then on.
    fenced: Cell<bool>,
}

impl<D: Disk + 'static> LsmEngine<D> {
    /// Writes go straight to the LSM, each durable on return.
    pub fn direct(lsm: Rc<Lsm<D>>, env: Rc<dyn Env>) -> LsmEngine<D> {
        LsmEngine {
            lsm,
            writes: Writes::Direct(env),
            fenced: Cell::new(false),
        }
    }

    /// Writes go through the ranges' Raft logs (the LSM runs in Raft mode).
    pub fn raft(lsm: Rc<Lsm<D>>) -> LsmEngine<D> {
        LsmEngine {
            lsm,
            writes: Writes::RaftLog,
            fenced: Cell::new(false),
        }
    }

    /// The LSM underneath (flushes, metrics, Raft-mode writes).
    pub fn lsm(&self) -> &Rc<Lsm<D>> {
        &self.lsm
    }

    /// Refuses every later call: the shard crashed and a new instance owns
    /// the files (the simulator's restarts; a real crash ends the process).
    pub fn fence(&self) {
        self.fenced.set(true);
    }

    fn check_fence(&self) -> Result<(), EngineError> {
        if self.fenced.get() {
            return Err(EngineError::Io("the storage engine was shut down".into()));
        }
        Ok(())
    }

    async fn write_direct(&self, env: &Rc<dyn Env>, batch: &WriteBatch) -> Result<(), EngineError> {
        let lsm_batch = to_lsm_batch(batch);
        let lsm = self.lsm.clone();
        let (tx, rx) = oneshot();
        env.spawn(Box::pin(async move {
            tx.send(lsm.write(lsm_batch, true).await.map(|_| ()));
        }));
        match rx.await {
            Some(result) => result.map_err(from_lsm_error),
            None => Err(EngineError::Io(
                "the storage write's task stopped before it finished".into(),
            )),
        }
    }

    async fn scan_async(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<KeyVersion>, LsmError> {
        let mut out = Vec::new();
        if limit == 0 || start >= end {
            return Ok(out);
        }
        let mut it = self
            .lsm
            .iter_with_tombstones(start, Some(end), to_lsm_ts(ts));
        if reverse {
            it.seek_to_last().await?;
        } else {
            it.seek_to_first().await?;
        }
        while let Some(item) = it.item() {
            out.push(key_version(item));
            if out.len() >= limit {
                break;
            }
            if reverse {
                it.prev().await?;
            } else {
                it.next().await?;
            }
        }
        Ok(out)
    }

    async fn scan_versions_async(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyVersion>, LsmError> {
        let mut out = Vec::new();
        if limit == 0 || start >= end {
            return Ok(out);
        }
        let mut it = self.lsm.iter_versions(start, Some(end));
        it.seek_to_first().await?;
        while it.valid() {
            let value = it.value().map(<[u8]>::to_vec);
            out.push((Bytes::copy_from_slice(it.key()), version(it.ts(), value)));
            if out.len() >= limit {
                break;
            }
            it.next().await?;
        }
        Ok(out)
    }
}

impl<D: Disk + 'static> Engine for LsmEngine<D> {
    fn get<'a>(
        &'a self,
        key: &'a [u8],
        ts: Timestamp,
    ) -> LocalBoxFuture<'a, Result<Option<Version>, EngineError>> {
        Box::pin(async move {
            self.check_fence()?;
            let found = self
                .lsm
                .get_version(key, to_lsm_ts(ts))
                .await
                .map_err(from_lsm_error)?;
            Ok(found.map(|(ts, value)| version(ts, value)))
        })
    }

    fn scan<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<KeyVersion>, EngineError>> {
        Box::pin(async move {
            self.check_fence()?;
            self.scan_async(start, end, ts, reverse, limit)
                .await
                .map_err(from_lsm_error)
        })
    }

    fn scan_versions<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<KeyVersion>, EngineError>> {
        Box::pin(async move {
            self.check_fence()?;
            self.scan_versions_async(start, end, limit)
                .await
                .map_err(from_lsm_error)
        })
    }

    fn apply<'a>(&'a self, batch: &'a WriteBatch) -> LocalBoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.check_fence()?;
            if batch.is_empty() {
                return Ok(());
            }
            match &self.writes {
                Writes::Direct(env) => self.write_direct(env, batch).await,
                Writes::RaftLog => Err(EngineError::Invalid(
                    "a write outside the Raft log on a Raft-mode engine".into(),
                )),
            }
        })
    }
}

/// The LSM's timestamp for a KV timestamp.
pub fn to_lsm_ts(ts: Timestamp) -> LsmTs {
    LsmTs::new(ts.wall_nanos, ts.logical)
}

/// The KV timestamp for an LSM timestamp.
pub fn from_lsm_ts(ts: LsmTs) -> Timestamp {
    Timestamp::new(ts.wall_nanos, ts.logical)
}

/// The LSM batch of a KV write batch (see the module docs for `Clear`).
pub fn to_lsm_batch(batch: &WriteBatch) -> teller_storage::WriteBatch {
    let mut out = teller_storage::WriteBatch::new();
    for m in &batch.mutations {
        match m {
            Mutation::Put { key, ts, value } => out.put(key, to_lsm_ts(*ts), value),
            Mutation::Delete { key, ts } | Mutation::Clear { key, ts } => {
                out.delete(key, to_lsm_ts(*ts))
            }
        };
    }
    out
}

/// The KV engine error for an LSM error: disk failures and a read-only
/// engine are `Io` (SQLSTATE 58030 for the client), corruption is
/// `Corrupt`, a request past a limit is `Invalid`.
pub fn from_lsm_error(e: LsmError) -> EngineError {
    match e {
        LsmError::Disk(_) | LsmError::ReadOnly(_) => EngineError::Io(e.to_string()),
        LsmError::Corruption(_) => EngineError::Corrupt(e.to_string()),
        LsmError::InvalidArgument(_) => EngineError::Invalid(e.to_string()),
    }
}

fn version(ts: LsmTs, value: Option<Vec<u8>>) -> Version {
    Version {
        ts: from_lsm_ts(ts),
        value: value.map(Bytes::from),
    }
}

fn key_version(item: &Item) -> KeyVersion {
    (
        Bytes::copy_from_slice(&item.key),
        version(item.ts, item.value.clone()),
    )
}
