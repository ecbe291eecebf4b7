//! teller-kv: the transactional key-value layer of a shard.
//!
//! This crate is sans-I/O like `teller-raft`: it never reads a clock, touches
//! a disk or a socket, or spawns anything by itself. Physical time, timers,
//! spawning and randomness come from the host through [`env::Env`]; the
//! storage engine through [`engine::Engine`]; other ranges through
//! [`transport::Transport`]. So the same code runs in the node and in the
//! deterministic simulator ([`sim`]).
//!
//! Layers, bottom up:
//! - [`hlc`]: the per-shard hybrid logical clock.
//! - [`engine`]: the storage engine as MVCC sees it, and write batches.
//! - [`keys`], [`lock`], [`txn`]: the keyspace layout, lock records
//!   (intents), transaction records.
//! - [`eval`]: evaluation of a batch on a range (MVCC, intents, records,
//!   resolution, refresh, GC) into responses and a write batch.
//! - [`latch`], [`tscache`], [`locktable`], [`replica`]: a range's
//!   concurrency control and its apply step.
//! - [`store`]: a shard's ranges; conflict handling (push, wait, deadlock
//!   detection), splits.
//! - [`client`]: the transaction coordinator.
//!
//! See `docs/transactions.md` for the protocol as a whole.

pub mod api;
pub mod client;
pub mod codec;
pub mod config;
pub mod engine;
pub mod env;
pub mod error;
pub mod eval;
pub mod hlc;
pub mod keys;
pub mod latch;
pub mod lock;
pub mod locktable;
pub mod replica;
pub mod replication;
pub mod sim;
pub mod store;
pub mod sync;
pub mod transport;
pub mod tscache;
pub mod txn;

pub use api::{Isolation, KeyValue, Request, Response, ScanRequest, ScanResponse, WaitPolicy};
pub use client::{BatchOptions, KvClient, Txn, TxnOptions};
pub use config::KvConfig;
pub use error::{KvError, RetryReason};
pub use hlc::{is_uncertain, ClockError, FarAheadPolicy, Hlc, Timestamp};
pub use keys::Span;
pub use lock::Strength;
