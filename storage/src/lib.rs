//! teller-storage: the per-shard storage engine of TellerDB.
//!
//! - [`disk`]: the `Disk` trait, the real O_DIRECT disk and its simulated twin.
//! - [`wal`]: the segmented write-ahead log that doubles as the Raft log.
//! - [`memtable`]: the arena skiplist of MVCC versions.
//! - [`rng`]: the deterministic PRNG behind the simulator and seeded tests.
//! - [`timestamp`]: the MVCC version timestamp, `(wall_nanos, logical)`.
//!
//! Everything here is single-threaded per shard (`!Send` futures, no locks) and
//! touches the outside world only through [`disk::Disk`]. Not yet built: SSTables,
//! the block cache, compaction (see `docs/storage.md`).

pub mod codec;
pub mod disk;
pub mod engine;
pub mod manifest;
pub mod memtable;
pub mod rng;
pub mod spans;
pub mod sst;
pub mod sync;
pub mod timestamp;
pub mod wal;

pub use engine::{Engine, EngineConfig, EngineError, Snapshot, WriteBatch};
pub use timestamp::Timestamp;
