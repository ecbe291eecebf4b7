//! teller-kv: the transactional key-value layer of a shard.
//!
//! This crate is sans-I/O like `teller-raft`: it never reads a clock, touches
//! a disk or a socket, or spawns anything. Every input — including physical
//! time — is an argument, so the same code runs in production and in the
//! deterministic simulator.
//!
//! So far it holds the per-shard hybrid logical clock ([`hlc`]) that orders
//! MVCC versions and bounds read uncertainty; MVCC, intents, the lock table and
//! the timestamp cache will build on it.

pub mod hlc;

pub use hlc::{is_uncertain, ClockError, FarAheadPolicy, Hlc, Timestamp};
