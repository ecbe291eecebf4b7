//! The ranges of a node and the KV service of each shard.
//!
//! **Placement.** The keyspace is cut into one range per shard at fixed
//! first-byte boundaries (`i * 256 / shards`), range `i` owned by shard `i`.
//! Every shard computes the same directory, so routing needs no meta range
//! yet. Ranges do not split or move in the node: that needs range
//! descriptors shared between shards (a meta range), which is future work;
//! splitting by size is built and tested in `teller-kv` itself.
//!
//! **Storage.** Each shard's store runs over an in-memory engine until the
//! LSM (`teller-storage`) is adapted to `teller_kv::engine::Engine`, so KV
//! data does not survive a restart of the node yet.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use teller_kv::api::{RangeBatch, RangeBatchResponse};
use teller_kv::engine::memory::MemEngine;
use teller_kv::engine::Engine;
use teller_kv::env::Env;
use teller_kv::keys::Span;
use teller_kv::replica::RangeDesc;
use teller_kv::replication::{DirectApply, Replication};
use teller_kv::store::Store;
use teller_kv::transport::{StoreId, Transport};
use teller_kv::{Hlc, KvClient, KvConfig, KvError};

use crate::kv_client::{GlommioEnv, MeshTransport, SqlKv};
use crate::mesh::ShardId;
use crate::shard::NodeMesh;

/// Clock offset bound between the shards of one node: they read one
/// physical clock, so only the time between two readings separates them.
pub const NODE_MAX_OFFSET: Duration = Duration::from_millis(1);

/// The ranges of a node with `shards` shards and their owners, in key
/// order: range `i` (id `i + 1`) is `[i * 256 / shards, (i + 1) * 256 /
/// shards)` by first byte, on shard `i`.
pub fn initial_ranges(shards: usize) -> Vec<(RangeDesc, ShardId)> {
    assert!((1..=256).contains(&shards), "between 1 and 256 shards");
    let start = |i: usize| -> Bytes {
        if i == 0 {
            Bytes::new()
        } else {
            Bytes::from(vec![(i * 256 / shards) as u8])
        }
    };
    (0..shards)
        .map(|i| {
            let end = (i + 1 < shards).then(|| start(i + 1));
            let desc = RangeDesc {
                id: i as u64 + 1,
                span: Span {
                    start: start(i),
                    end,
                },
            };
            (desc, i)
        })
        .collect()
}

/// The KV configuration of the node's shards.
pub fn node_kv_config() -> KvConfig {
    KvConfig {
        max_offset: NODE_MAX_OFFSET,
        // No splits in the node yet (see the module docs).
        range_split_bytes: u64::MAX,
        ..KvConfig::default()
    }
}

/// One shard's KV service: its store (the ranges it owns), the transport to
/// the other shards, and the client its sessions use.
pub struct KvShard {
    pub store: Rc<Store>,
    pub transport: Rc<MeshTransport>,
    pub client: KvClient,
}

impl KvShard {
    /// Starts shard `shard`'s store over a fresh in-memory engine, creating
    /// the ranges the placement gives it.
    pub async fn start(shard: ShardId, shards: usize, cfg: KvConfig) -> Result<KvShard, String> {
        let env: Rc<dyn Env> = Rc::new(GlommioEnv);
        let clock = Rc::new(RefCell::new(Hlc::new(cfg.max_offset)));
        let engine: Rc<dyn Engine> = Rc::new(MemEngine::new());
        let log: Rc<dyn Replication> = Rc::new(DirectApply::new(engine.clone()));
        let directory = initial_ranges(shards);
        let mine: Vec<RangeDesc> = directory
            .iter()
            .filter(|(_, owner)| *owner == shard)
            .map(|(d, _)| d.clone())
            .collect();
        let store = Store::open(
            shard as StoreId,
            engine,
            log,
            env.clone(),
            clock.clone(),
            cfg.clone(),
        )
        .await
        .map_err(|e| format!("shard {shard}: opening the KV store: {e}"))?;
        store
            .create_ranges(&mine)
            .await
            .map_err(|e| format!("shard {shard}: creating ranges: {e}"))?;
        let transport = Rc::new(MeshTransport::new(shard, directory));
        transport.set_local(&store);
        let dyn_transport: Rc<dyn Transport> = transport.clone();
        store.set_transport(Rc::downgrade(&dyn_transport));
        let client = KvClient::new(dyn_transport, env, clock, cfg);
        Ok(KvShard {
            store,
            transport,
            client,
        })
    }

    /// Connects the shard to its peers.
    pub fn set_mesh(&self, mesh: Rc<NodeMesh>) {
        self.transport.set_mesh(mesh);
    }

    /// Serves a batch another shard sent.
    pub async fn execute(&self, batch: RangeBatch) -> Result<RangeBatchResponse, KvError> {
        self.store.execute(batch).await
    }

    /// The SQL layer's KV API on this shard.
    pub fn sql_kv(&self) -> SqlKv {
        SqlKv::new(self.client.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_covers_the_keyspace_in_order() {
        for shards in [1, 2, 3, 7, 64] {
            let ranges = initial_ranges(shards);
            assert_eq!(ranges.len(), shards);
            assert!(ranges[0].0.span.start.is_empty());
            assert!(ranges[shards - 1].0.span.end.is_none());
            for w in ranges.windows(2) {
                assert_eq!(w[0].0.span.end.as_ref(), Some(&w[1].0.span.start));
            }
            assert!(ranges.iter().enumerate().all(|(i, (_, owner))| *owner == i));
        }
    }
}
