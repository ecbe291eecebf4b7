//! The storage engine as the MVCC layer sees it, and the write batch that
//! evaluation produces.
//!
//! The engine stores entries `(key, timestamp) -> value | tombstone`. It is
//! deliberately the interface of the shard's LSM (`teller-storage`), so the
//! real engine plugs in as a thin adapter; [`memory::MemEngine`] implements
//! the same semantics in memory until then, and for tests.
//!
//! # Semantics
//! - **get(key, ts)**: the newest entry of `key` at or below `ts`, with its
//!   timestamp; tombstones are returned (as `value: None`), so the caller can
//!   tell "deleted at t" from "never written".
//! - **scan(start, end, ts)**: for each key in `[start, end)` (forward or
//!   reverse), the newest entry at or below `ts`, tombstones included, at most
//!   `limit` keys.
//! - **scan_versions(start, end)**: every entry, key ascending and timestamp
//!   descending (for refresh checks and GC), at most `limit` entries.
//! - **apply(batch)**: all mutations of the batch or none. Writing the same
//!   `(key, ts)` again replaces the entry. [`Mutation::Clear`] removes one
//!   entry; an LSM implements it as a replacing tombstone at the same
//!   timestamp, which reads the same above the range's GC threshold (the
//!   only reads allowed) and is dropped by compaction.
//!
//! Unversioned entries (lock records, transaction records, metadata) use
//! [`Timestamp::ZERO`] and are read at [`Timestamp::MAX`].
//!
//! The methods return boxed futures (not `Send`): a shard's engine is owned by
//! its thread, and the real engine's reads are asynchronous.

pub mod lsm;
pub mod memory;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::codec::{CodecError, Reader, Writer};
use crate::hlc::Timestamp;

/// A boxed, shard-local future.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One entry of a key: its timestamp and value (`None`: a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub ts: Timestamp,
    pub value: Option<Bytes>,
}

/// An engine failure; each ends the request. `Io` covers every disk
/// failure (EIO, ENOSPC, an engine made read-only by an earlier one);
/// `Invalid` a request past a storage limit (nothing was written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    Io(String),
    Corrupt(String),
    Invalid(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Io(why) => write!(f, "I/O error: {why}"),
            EngineError::Corrupt(why) => write!(f, "corruption: {why}"),
            EngineError::Invalid(why) => write!(f, "invalid storage request: {why}"),
        }
    }
}

impl From<CodecError> for EngineError {
    fn from(e: CodecError) -> EngineError {
        EngineError::Corrupt(e.0)
    }
}

/// A key-timestamp entry with value, as scans return them.
pub type KeyVersion = (Bytes, Version);

/// The storage engine of one shard.
pub trait Engine {
    /// The newest entry of `key` at or below `ts`.
    fn get<'a>(
        &'a self,
        key: &'a [u8],
        ts: Timestamp,
    ) -> LocalBoxFuture<'a, Result<Option<Version>, EngineError>>;

    /// Per key in `[start, end)`, the newest entry at or below `ts`; at most
    /// `limit` keys, in key order (`reverse`: descending).
    fn scan<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<KeyVersion>, EngineError>>;

    /// Every entry in `[start, end)`, key ascending then timestamp
    /// descending, at most `limit`.
    fn scan_versions<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<KeyVersion>, EngineError>>;

    /// Applies the batch atomically.
    fn apply<'a>(&'a self, batch: &'a WriteBatch) -> LocalBoxFuture<'a, Result<(), EngineError>>;
}

/// One engine mutation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    Put {
        key: Bytes,
        ts: Timestamp,
        value: Bytes,
    },
    /// A tombstone at `(key, ts)`.
    Delete { key: Bytes, ts: Timestamp },
    /// Removes the entry `(key, ts)` (see the module docs).
    Clear { key: Bytes, ts: Timestamp },
}

impl Mutation {
    pub fn key(&self) -> &Bytes {
        match self {
            Mutation::Put { key, .. }
            | Mutation::Delete { key, .. }
            | Mutation::Clear { key, .. } => key,
        }
    }

    /// Approximate bytes the mutation adds to the engine.
    pub fn size(&self) -> usize {
        match self {
            Mutation::Put { key, value, .. } => key.len() + value.len() + 12,
            Mutation::Delete { key, .. } => key.len() + 12,
            Mutation::Clear { .. } => 0,
        }
    }
}

const WRITE_BATCH_FORMAT: u8 = 1;

/// The engine mutations of one evaluated request batch: the unit a Raft log
/// entry carries unchanged and every replica applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub mutations: Vec<Mutation>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }

    pub fn put(&mut self, key: Bytes, ts: Timestamp, value: Bytes) {
        self.mutations.push(Mutation::Put { key, ts, value });
    }

    pub fn delete(&mut self, key: Bytes, ts: Timestamp) {
        self.mutations.push(Mutation::Delete { key, ts });
    }

    pub fn clear(&mut self, key: Bytes, ts: Timestamp) {
        self.mutations.push(Mutation::Clear { key, ts });
    }

    /// The Raft log payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(WRITE_BATCH_FORMAT);
        w.seq(&self.mutations, |w, m| match m {
            Mutation::Put { key, ts, value } => {
                w.u8(0);
                w.bytes(key);
                w.ts(*ts);
                w.bytes(value);
            }
            Mutation::Delete { key, ts } => {
                w.u8(1);
                w.bytes(key);
                w.ts(*ts);
            }
            Mutation::Clear { key, ts } => {
                w.u8(2);
                w.bytes(key);
                w.ts(*ts);
            }
        });
        w.finish()
    }

    pub fn decode(bytes: &Bytes) -> Result<WriteBatch, CodecError> {
        let mut r = Reader::new(bytes, "write batch");
        r.version(WRITE_BATCH_FORMAT)?;
        let mutations = r.seq(|r| {
            let tag = r.u8()?;
            let key = r.bytes()?;
            let ts = r.ts()?;
            match tag {
                0 => Ok(Mutation::Put {
                    key,
                    ts,
                    value: r.bytes()?,
                }),
                1 => Ok(Mutation::Delete { key, ts }),
                2 => Ok(Mutation::Clear { key, ts }),
                tag => Err(r.invalid(&format!("unknown mutation tag {tag}"))),
            }
        })?;
        r.finish()?;
        Ok(WriteBatch { mutations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_batch_round_trips() {
        let mut wb = WriteBatch::new();
        wb.put(
            Bytes::from_static(b"a"),
            Timestamp::new(1, 2),
            Bytes::from_static(b"v"),
        );
        wb.delete(Bytes::from_static(b"b"), Timestamp::new(3, 0));
        wb.clear(Bytes::from_static(b"c"), Timestamp::ZERO);
        let bytes = Bytes::from(wb.encode());
        assert_eq!(WriteBatch::decode(&bytes).unwrap(), wb);
        let mut bad = bytes.to_vec();
        bad[0] = 9;
        assert!(WriteBatch::decode(&Bytes::from(bad)).is_err());
    }
}
