//! The SQL layer: parsing (sqlparser), binding and type checking, planning and
//! execution. It reaches data and the node only through traits — [`Host`] for
//! the node (shard identity, time, sleeping, node-wide views) and, as tables
//! arrive, the KV API — so it runs unchanged on the real engine and in tests.

pub mod encoding;
pub mod expr;
pub mod kv;
pub mod session;
pub mod vars;

use std::time::Duration;

pub use session::SqlSession;

/// What the SQL layer may ask of the node it runs in. Time enters only here.
// Shard-local by design: these futures never cross threads.
#[allow(async_fn_in_trait)]
pub trait Host: 'static {
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
}
