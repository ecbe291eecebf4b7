//! The SQL layer: parsing (sqlparser), binding and type checking, planning and
//! execution. It reaches data and the node only through traits — [`Host`] for
//! the node (shard identity, time, sleeping, node-wide views, the KV store)
//! and [`kv::Kv`] for data — so it runs unchanged on the real engine and in
//! tests (over [`kv::memory::MemoryKv`]).
//!
//! A statement's path: `session` parses it, `bind` resolves names against a
//! [`catalog::Catalog`] snapshot and builds a logical plan, `plan` picks
//! access paths (key spans, indexes) and join strategies, and `exec` runs the
//! operators batch by batch over one KV transaction.

pub mod bind;
pub mod catalog;
pub mod encoding;
pub mod errors;
pub mod exec;
pub mod expr;
pub mod functions;
pub mod kv;
pub mod kv_util;
pub mod plan;
pub mod session;
pub mod shard;
pub mod table;
pub mod vars;

use std::time::Duration;

pub use session::SqlSession;
pub use shard::{SqlShard, TableStats};

/// What the SQL layer may ask of the node it runs in. Time and data enter
/// only here.
// Shard-local by design: these futures never cross threads.
#[allow(async_fn_in_trait)]
pub trait Host: 'static {
    /// The KV store sessions of this shard read and write.
    type Kv: kv::Kv;

    /// The shard serving this session.
    fn shard(&self) -> usize;
    /// Shards in the node.
    fn shard_count(&self) -> usize;
    /// Wall-clock time, microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;
    /// Waits (cancellable: the caller drops the future).
    async fn sleep(&self, duration: Duration);
    /// Client connections per shard, indexed by shard.
    async fn connections_per_shard(&self) -> Vec<u64>;
    /// The KV store.
    fn kv(&self) -> &Self::Kv;
    /// The SQL layer's per-shard state (catalog cache, statistics, row id
    /// generator), shared by every session of the shard.
    fn sql_shard(&self) -> &SqlShard;
    /// Announces that this session committed DDL that made catalog
    /// `version`: the node tells every shard (see [`catalog::cache`]) and
    /// returns once they all know, so the client's next statement, on any
    /// shard, binds against it. A host with one shard has nothing to do.
    async fn catalog_changed(&self, version: u64) {
        let _ = version;
    }
    /// Seed for a new session's random number generator (`random()`,
    /// `gen_random_uuid()`). The default derives it from the clock and the
    /// shard, which is reproducible under a simulated clock; a node should
    /// override it with operating-system entropy.
    fn random_seed(&self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        let mut x = (self.now_micros() as u64) ^ ((self.shard() as u64) << 48);
        for chunk in seed.chunks_mut(8) {
            x = splitmix64(x);
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        seed
    }
}

/// One step of SplitMix64: spreads a counter into well-mixed bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
