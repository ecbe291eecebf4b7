//! teller-storage: the per-shard storage engine of TellerDB.
//!
//! The layers above use [`Engine`] (see [`engine`] for the whole contract):
//!
//! ```text
//! Engine::open(disk, dir, config, visit_raft) -> (Engine, Recovered)
//! write(WriteBatch{Put{key, ts, value} | Delete{key, ts} | DeleteRange{start, end}}, sync) -> Lsn
//! append_raft(&[(RecordMeta, &[u8])], sync) -> Lsn      apply(&WriteBatch, range_id, applied_index)
//! get(key, read_ts) / get_version(key, read_ts)          scan(start, end, read_ts, reverse, limit)
//! iter(lower, upper, read_ts)                            snapshot()
//! flush()   ingest(start, end, entries, applied)   approximate_size(start, end)
//! set_gc_horizon(ts)   set_raft_log_floor(lsn)   run_background()   metrics()
//! ```
//!
//! Entries are `(user key, Timestamp) -> value | tombstone`; writing the same
//! (key, ts) again replaces it; reads return the newest version at or below the
//! read timestamp. Unversioned records (lock records) live at
//! [`Timestamp::ZERO`] under their own key prefix.
//!
//! Modules:
//! - [`disk`]: the `Disk` trait, the real O_DIRECT disk and its simulated twin.
//! - [`wal`]: the segmented write-ahead log that doubles as the Raft log.
//! - [`memtable`]: the arena skiplist of MVCC versions.
//! - [`sst`]: SSTables (blocks, bloom filter, index, footer) and the block cache.
//! - [`manifest`]: live tables per level and per-range applied indexes.
//! - [`engine`]: the engine — write path, reads, iterators, flush, compaction,
//!   ingestion, recovery.
//! - [`bench`]: db_bench-style engine workloads (run tiny in the suite).
//! - [`spans`]: range tombstones; [`codec`]: varints; [`sync`]: single-threaded
//!   async locks; [`rng`]: the deterministic PRNG; [`timestamp`]: `Timestamp`.
//!
//! Everything here is single-threaded per shard (`!Send` futures, no OS locks)
//! and touches the outside world only through [`disk::Disk`]: it runs unchanged
//! on the simulated disk. Formats and decisions: `docs/storage.md`.

pub mod bench;
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
