//! The TellerDB node: the per-core runtime, the shard mesh, the client front
//! door and the `teller` command line.
//!
//! A node is one process; every core is a shard (a pinned glommio executor)
//! that owns its listener, its connections and, as the engine grows, its ranges,
//! Raft groups and storage. Shards share nothing on the hot path: they talk by
//! typed messages over bounded SPSC rings (`mesh`).

pub mod config;
pub mod directory;
pub mod kv_client;
pub mod kv_client_ranges;
pub mod mesh;
pub mod node;
pub mod range;
pub mod range_move;
pub mod rebalance;
pub mod replica;
pub mod routing;
pub mod shard;
pub mod signal;
