//! The ranges of a node and the KV service of each shard.
//!
//! **Placement.** The keyspace is cut into one range per shard at fixed
//! first-byte boundaries (`i * 256 / shards`), range `i` owned by shard `i`.
//! Every shard computes the same directory, so routing needs no meta range
//! yet. Ranges do not split or move in the node: that needs range
//! descriptors shared between shards (a meta range), which is future work;
//! splitting by size is built and tested in `teller-kv` itself.
//!
//! **Storage.** Each shard's store runs over its own LSM on the real disk,
//! and every range is a Raft group (one voter: this shard) whose log is the
//! shard's WAL (see [`crate::replica`]). A write is acknowledged once its
//! log entry is durable and applied; a restart replays the logs, so every
//! acknowledged write survives a crash of the process.
//!
//! **Start-up.** [`KvShard::new`] builds the transport and client (no I/O),
//! so the shard can join the mesh first; [`KvShard::open`] then opens the
//! storage, replays the logs, opens the store and creates the ranges the
//! placement gives the shard if the store does not hold them yet. Batches
//! that arrive before it finished are refused as unavailable.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use glommio::TaskQueueHandle;
use teller_kv::api::{RangeBatch, RangeBatchResponse};
use teller_kv::engine::Engine;
use teller_kv::env::Env;
use teller_kv::keys::Span;
use teller_kv::replica::RangeDesc;
use teller_kv::replication::Replication;
use teller_kv::store::Store;
use teller_kv::transport::{StoreId, Transport};
use teller_kv::{Hlc, KvClient, KvConfig, KvError};

use crate::config::StorageConfig;
use crate::kv_client::{GlommioEnv, MeshTransport, SqlKv};
use crate::mesh::ShardId;
use crate::replica::ShardStorage;
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

/// Where a shard keeps its data and which task queues run its storage.
pub struct StorageSetup<'a> {
    pub dir: &'a Path,
    pub settings: &'a StorageConfig,
    /// Runs the Raft loop (the write path).
    pub writes_queue: TaskQueueHandle,
    /// Runs flushes and compactions.
    pub background_queue: TaskQueueHandle,
}

/// One shard's KV service: its store (the ranges it owns) over its durable
/// storage, the transport to the other shards, and the client its sessions
/// use.
pub struct KvShard {
    shard: ShardId,
    shards: usize,
    cfg: KvConfig,
    env: Rc<dyn Env>,
    clock: Rc<RefCell<Hlc>>,
    pub transport: Rc<MeshTransport>,
    pub client: KvClient,
    store: RefCell<Option<Rc<Store>>>,
    storage: RefCell<Option<Rc<ShardStorage>>>,
}

impl KvShard {
    /// The shard's transport and client; the store opens in [`KvShard::open`].
    pub fn new(shard: ShardId, shards: usize, cfg: KvConfig) -> KvShard {
        let env: Rc<dyn Env> = Rc::new(GlommioEnv);
        let clock = Rc::new(RefCell::new(Hlc::new(cfg.max_offset)));
        let transport = Rc::new(MeshTransport::new(shard, initial_ranges(shards)));
        let dyn_transport: Rc<dyn Transport> = transport.clone();
        let client = KvClient::new(dyn_transport, env.clone(), clock.clone(), cfg.clone());
        KvShard {
            shard,
            shards,
            cfg,
            env,
            clock,
            transport,
            client,
            store: RefCell::new(None),
            storage: RefCell::new(None),
        }
    }

    /// [`KvShard::new`] then [`KvShard::open`].
    pub async fn start(
        shard: ShardId,
        shards: usize,
        cfg: KvConfig,
        setup: StorageSetup<'_>,
    ) -> Result<KvShard, String> {
        let kv = KvShard::new(shard, shards, cfg);
        kv.open(setup).await?;
        Ok(kv)
    }

    /// Opens the shard's storage in `setup.dir` (recovering it), its store,
    /// and the ranges the placement gives it that the store lacks.
    pub async fn open(&self, setup: StorageSetup<'_>) -> Result<(), String> {
        let shard = self.shard;
        let replica_id = shard as u64 + 1;
        let storage = ShardStorage::open(setup.dir, setup.settings, replica_id, self.env.clone())
            .await
            .map_err(|e| format!("shard {shard}: {e}"))?;
        storage.spawn_tasks(setup.writes_queue, setup.background_queue)?;
        let storage = Rc::new(storage);
        *self.storage.borrow_mut() = Some(storage.clone());
        let engine: Rc<dyn Engine> = storage.engine.clone();
        let log: Rc<dyn Replication> = storage.raft.clone();
        let store = Store::open(
            shard as StoreId,
            engine,
            log,
            self.env.clone(),
            self.clock.clone(),
            self.cfg.clone(),
        )
        .await
        .map_err(|e| format!("shard {shard}: opening the KV store: {e}"))?;
        let missing: Vec<RangeDesc> = initial_ranges(self.shards)
            .into_iter()
            .filter(|(d, owner)| *owner == shard && store.replica(d.id).is_none())
            .map(|(d, _)| d)
            .collect();
        if !missing.is_empty() {
            store
                .create_ranges(&missing)
                .await
                .map_err(|e| format!("shard {shard}: creating ranges: {e}"))?;
        }
        self.transport.set_local(&store);
        let dyn_transport: Rc<dyn Transport> = self.transport.clone();
        store.set_transport(Rc::downgrade(&dyn_transport));
        *self.store.borrow_mut() = Some(store);
        Ok(())
    }

    /// The shard's store, once open.
    pub fn store(&self) -> Option<Rc<Store>> {
        self.store.borrow().clone()
    }

    /// The shard's storage, once open.
    pub fn storage(&self) -> Option<Rc<ShardStorage>> {
        self.storage.borrow().clone()
    }

    /// Connects the shard to its peers.
    pub fn set_mesh(&self, mesh: Rc<NodeMesh>) {
        self.transport.set_mesh(mesh);
    }

    /// Serves a batch another shard sent.
    pub async fn execute(&self, batch: RangeBatch) -> Result<RangeBatchResponse, KvError> {
        let store = self.store().ok_or_else(|| {
            KvError::Unavailable(format!("shard {} is still starting", self.shard))
        })?;
        store.execute(batch).await
    }

    /// The SQL layer's KV API on this shard.
    pub fn sql_kv(&self) -> SqlKv {
        SqlKv::new(self.client.clone())
    }

    /// Stops taking writes and flushes the storage (graceful shutdown).
    pub async fn close(&self) {
        let storage = self.storage();
        if let Some(storage) = storage {
            storage.close().await;
        }
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
