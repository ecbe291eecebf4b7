//! teller-storage: the per-shard storage engine of TellerDB.
//!
//! - [`disk`]: the `Disk` trait, the real O_DIRECT disk and its simulated twin.
//! - [`wal`]: the segmented write-ahead log that doubles as the Raft log.
//! - [`memtable`]: the arena skiplist of MVCC versions.
//!
//! Everything here is single-threaded per shard (`!Send` futures, no locks) and
//! touches the outside world only through [`disk::Disk`].

pub mod disk;
pub mod rng;
pub mod wal;
