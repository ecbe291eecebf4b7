//! The ranges of a node and the KV service of each shard.
//!
//! **Placement.** The keyspace is cut into ranges, each owned by one shard
//! (each a single-voter Raft group whose log is that shard's WAL, see
//! [`crate::replica`]). A new node starts with one range per shard, cut at
//! first-byte boundaries (`i * 256 / shards`). From then on ranges split by
//! size in their store (`storage.range_split_bytes`) and move between
//! shards ([`crate::range_move`]), chosen by the rebalancer on shard 0
//! ([`crate::rebalance`]). Every shard routes with its own table
//! ([`crate::directory`]), kept current by broadcasts after each change
//! and refreshed from the owner when a route turns out stale.
//!
//! **Start-up.** [`KvShard::new`] builds the transport and client (no I/O),
//! so the shard can join the mesh first; [`KvShard::open`] then opens the
//! storage, replays the logs, opens the store and, on a new data directory,
//! creates the shard's first range. Once every shard's store is open,
//! [`KvShard::join`] settles the node's placement: each shard learns the
//! descriptors every store holds, drops its copy of any range a newer
//! generation elsewhere replaced (a crash in the middle of a move), removes
//! what such a crash left behind, and waits until the routing table covers
//! the keyspace. Batches that arrive before the store is open are refused
//! as unavailable.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use glommio::TaskQueueHandle;
use teller_kv::api::{RangeBatch, RangeBatchResponse};
use teller_kv::engine::Engine;
use teller_kv::env::Env;
use teller_kv::keys::{self, Span};
use teller_kv::replica::RangeDesc;
use teller_kv::replication::Replication;
use teller_kv::store::{RangeInfo, Store, RANGE_NAMESPACES};
use teller_kv::transport::{StoreId, Transport};
use teller_kv::{Hlc, KvClient, KvConfig, KvError, Timestamp};

use crate::config::{RangesConfig, StorageConfig};
use crate::directory::{DirEntry, Directory};
use crate::kv_client::{GlommioEnv, SqlKv};
use crate::mesh::ShardId;
use crate::range_move::Incoming;
use crate::replica::ShardStorage;
use crate::routing::{Delivery, MeshTransport};
use crate::shard::{NodeMesh, ShardRequest, ShardResponse};

/// Clock offset bound between the shards of one node: they read one
/// physical clock, so only the time between two readings separates them.
pub const NODE_MAX_OFFSET: Duration = Duration::from_millis(1);

/// How long [`KvShard::join`] waits for the other shards' ranges.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How often [`KvShard::join`] asks the other shards again.
const JOIN_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// The first ranges of a new node with `shards` shards and their owners,
/// in key order: range `i` (id `i + 1`, generation 0) is `[i * 256 /
/// shards, (i + 1) * 256 / shards)` by first byte, on shard `i`. Every
/// shard routes with these until it learns better.
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

/// The KV configuration of the node's shards, with the default split size.
pub fn node_kv_config() -> KvConfig {
    node_kv_config_with(&RangesConfig::default())
}

/// The KV configuration of the node's shards.
pub fn node_kv_config_with(ranges: &RangesConfig) -> KvConfig {
    KvConfig {
        max_offset: NODE_MAX_OFFSET,
        range_split_bytes: ranges.range_split_bytes,
        ..KvConfig::default()
    }
}

fn initial_entries(shards: usize) -> Vec<DirEntry> {
    initial_ranges(shards)
        .into_iter()
        .map(|(desc, owner)| DirEntry {
            desc,
            generation: 0,
            owner,
        })
        .collect()
}

/// A shard's ranges as it reports them to the others.
#[derive(Clone, Debug)]
pub struct ShardRanges {
    /// The shard finished [`KvShard::join`] (it may take moved ranges).
    pub ready: bool,
    pub ranges: Vec<RangeInfo>,
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
    pub(crate) shard: ShardId,
    shards: usize,
    cfg: KvConfig,
    env: Rc<dyn Env>,
    clock: Rc<RefCell<Hlc>>,
    pub transport: Rc<MeshTransport>,
    pub client: KvClient,
    store: RefCell<Option<Rc<Store>>>,
    storage: RefCell<Option<Rc<ShardStorage>>>,
    /// Ranges being moved here: their data as it arrives, by move id.
    pub(crate) incoming: RefCell<HashMap<u64, Incoming>>,
    /// [`KvShard::join`] finished: placement is settled.
    ready: Cell<bool>,
    /// Shutting down: no new moves.
    closing: Cell<bool>,
    /// Requests a second past which a range splits by load (0: never).
    load_split_per_sec: Cell<u64>,
}

impl KvShard {
    /// The shard's transport and client; the store opens in [`KvShard::open`].
    pub fn new(shard: ShardId, shards: usize, cfg: KvConfig) -> KvShard {
        let env: Rc<dyn Env> = Rc::new(GlommioEnv);
        let clock = Rc::new(RefCell::new(Hlc::new(cfg.max_offset)));
        let transport = Rc::new(MeshTransport::new(shard, initial_entries(shards)));
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
            incoming: RefCell::new(HashMap::new()),
            ready: Cell::new(false),
            closing: Cell::new(false),
            load_split_per_sec: Cell::new(0),
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
        let lsm = storage.lsm.clone();
        let sizer = move |start: &[u8], end: &[u8]| lsm.approximate_size(start, Some(end));
        let store = Store::open_sized(
            shard as StoreId,
            engine,
            log,
            self.env.clone(),
            self.clock.clone(),
            self.cfg.clone(),
            Some(&sizer),
        )
        .await
        .map_err(|e| format!("shard {shard}: opening the KV store: {e}"))?;
        // A new data directory: the shard's first range. A shard whose
        // store is empty because its ranges moved away knows it from their
        // removal records, and creates nothing.
        let fresh = store.ranges().is_empty() && storage.raft.removed_ranges().is_empty();
        if fresh {
            let first: Vec<RangeDesc> = initial_ranges(self.shards)
                .into_iter()
                .filter(|(_, owner)| *owner == shard)
                .map(|(d, _)| d)
                .collect();
            store
                .create_ranges(&first)
                .await
                .map_err(|e| format!("shard {shard}: creating ranges: {e}"))?;
        }
        store.set_load_split(self.load_split_per_sec.get());
        self.transport.set_local(&store);
        let dyn_transport: Rc<dyn Transport> = self.transport.clone();
        store.set_transport(Rc::downgrade(&dyn_transport));
        tracing::info!(
            shard,
            ranges = store.ranges().len(),
            fresh,
            "shard store opened"
        );
        *self.store.borrow_mut() = Some(store);
        Ok(())
    }

    /// Ranges serving more than `per_sec` requests a second split by load
    /// (0: never; the default). Call before [`KvShard::open`].
    pub fn set_load_split(&self, per_sec: u64) {
        self.load_split_per_sec.set(per_sec);
        if let Some(store) = self.store() {
            store.set_load_split(per_sec);
        }
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

    /// Serves a batch another shard sent (as if its range never moves).
    pub async fn execute(&self, batch: RangeBatch) -> Result<RangeBatchResponse, KvError> {
        match self.transport.deliver_local(batch).await {
            Delivery::Done(result) => result,
            Delivery::Moving(_) => Err(KvError::RangeKeyMismatch { key: Bytes::new() }),
        }
    }

    /// Serves a batch another shard sent: the answer, or the batch handed
    /// back while its range moves.
    pub async fn serve(&self, batch: RangeBatch) -> ShardResponse {
        match self.transport.deliver_local(batch).await {
            Delivery::Done(result) => ShardResponse::Kv(Box::new(result)),
            Delivery::Moving(batch) => ShardResponse::KvMoving(batch),
        }
    }

    /// The shard's ranges, for the others (`None` until its store is open).
    pub fn shard_ranges(&self) -> Option<ShardRanges> {
        let store = self.store()?;
        Some(ShardRanges {
            ready: self.ready.get(),
            ranges: store.range_infos(),
        })
    }

    /// This shard's routing table: every range and its owner, in key order.
    pub fn range_table(&self) -> Vec<DirEntry> {
        self.transport.entries()
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn is_ready(&self) -> bool {
        self.ready.get()
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    pub(crate) fn mesh(&self) -> Option<Rc<NodeMesh>> {
        self.transport.mesh()
    }

    /// Deletes everything the engine holds for the user span `span` (data,
    /// locks, transaction records): a range that left this shard. Each
    /// namespace is replaced by an empty ingestion (a range tombstone,
    /// durable at once).
    pub(crate) async fn wipe(&self, span: &Span) -> Result<(), String> {
        let storage = self
            .storage()
            .ok_or_else(|| "the shard's storage is not open".to_string())?;
        for ns in RANGE_NAMESPACES {
            let (start, end) = keys::engine_span(ns, span);
            storage
                .lsm
                .ingest(&start, &end, std::iter::empty(), None)
                .await
                .map_err(|e| format!("deleting {span:?}: {e}"))?;
        }
        Ok(())
    }

    /// Settles the node's placement once every shard's store is open (see
    /// the module docs). Call before serving clients.
    pub async fn join(&self) -> Result<(), String> {
        let shard = self.shard;
        let store = self
            .store()
            .ok_or_else(|| format!("shard {shard}: joining before the store is open"))?;
        let union = self.placement().await?;
        tracing::debug!(shard, ranges = union.len(), "placement gathered");
        for info in store.range_infos() {
            if union.get(info.desc.id).is_none() {
                tracing::warn!(
                    shard,
                    range = info.desc.id,
                    generation = info.generation,
                    span = ?info.desc.span,
                    "dropping a copy that a newer range elsewhere replaced"
                );
                crate::range_move::drop_range(self, info.desc.id).await?;
            }
        }
        self.remove_orphan_logs(&store).await?;
        self.sweep_garbage(&store).await?;
        tracing::debug!(shard, "leftovers removed");
        self.transport.learn(union.entries());
        for e in self.transport.entries().iter().filter(|e| e.owner == shard) {
            tracing::info!(
                shard,
                range = e.desc.id,
                generation = e.generation,
                start = %teller_kv::store::key_hex(&e.desc.span.start),
                end = %crate::range_move::end_hex(&e.desc.span),
                "range owned"
            );
        }
        self.ready.set(true);
        Ok(())
    }

    /// Every shard's ranges (this one's included), once each store is open.
    async fn gather_ranges(&self) -> Result<Vec<(ShardId, ShardRanges)>, String> {
        let mut out = Vec::with_capacity(self.shards);
        let deadline = Instant::now() + JOIN_TIMEOUT;
        for peer in 0..self.shards {
            loop {
                let ranges = if peer == self.shard {
                    self.shard_ranges()
                } else {
                    self.peer_ranges(peer).await
                };
                if let Some(r) = ranges {
                    out.push((peer, r));
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "shard {}: shard {peer} did not report its ranges within {JOIN_TIMEOUT:?}",
                        self.shard
                    ));
                }
                glommio::timer::sleep(JOIN_POLL_INTERVAL).await;
            }
        }
        Ok(out)
    }

    /// Shard `peer`'s ranges, `None` if it cannot say yet.
    pub(crate) async fn peer_ranges(&self, peer: ShardId) -> Option<ShardRanges> {
        let mesh = self.mesh()?;
        match mesh.request(peer, ShardRequest::StoreRanges).await {
            Ok(ShardResponse::Ranges(r)) => r,
            _ => None,
        }
    }

    /// The node's placement: every store's descriptors merged (newest
    /// generation wins). Waits until they cover the keyspace, which they do
    /// once every shard opened its store (a new node's shards create their
    /// first ranges before that).
    async fn placement(&self) -> Result<Directory, String> {
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let mut union = Directory::new();
            for (owner, ranges) in self.gather_ranges().await? {
                for info in ranges.ranges {
                    union.learn(DirEntry {
                        desc: info.desc,
                        generation: info.generation,
                        owner,
                    });
                }
            }
            if union.covers_keyspace() {
                return Ok(union);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "shard {}: the ranges of the node do not cover the keyspace: {:?}",
                    self.shard,
                    union.entries()
                ));
            }
            glommio::timer::sleep(JOIN_POLL_INTERVAL).await;
        }
    }

    /// Ends the Raft logs of ranges the store does not hold (a crash between
    /// clearing a range's descriptor and ending its log).
    async fn remove_orphan_logs(&self, store: &Store) -> Result<(), String> {
        let Some(storage) = self.storage() else {
            return Ok(());
        };
        let held: std::collections::HashSet<u64> = store.ranges().iter().map(|d| d.id).collect();
        for range in storage.raft.ranges() {
            if !held.contains(&range) {
                tracing::info!(
                    shard = self.shard,
                    range,
                    "ending the log of a range that left"
                );
                store.log().remove_range(range).await.map_err(|e| {
                    format!("shard {}: ending range {range}'s log: {e}", self.shard)
                })?;
            }
        }
        Ok(())
    }

    /// Deletes data the engine holds outside the store's ranges: what a
    /// crash in the middle of a move left on either side.
    async fn sweep_garbage(&self, store: &Store) -> Result<(), String> {
        let owned: Vec<Span> = store.ranges().into_iter().map(|d| d.span).collect();
        for gap in gaps(owned) {
            if self.holds_anything(store, &gap).await? {
                tracing::info!(shard = self.shard, span = ?gap, "deleting data outside the shard's ranges");
                self.wipe(&gap).await?;
            }
        }
        Ok(())
    }

    async fn holds_anything(&self, store: &Store, span: &Span) -> Result<bool, String> {
        for ns in RANGE_NAMESPACES {
            let (start, end) = keys::engine_span(ns, span);
            let found = store
                .engine()
                .scan(&start, &end, Timestamp::MAX, false, 1)
                .await
                .map_err(|e| e.to_string())?;
            if !found.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The SQL layer's KV API on this shard.
    pub fn sql_kv(&self) -> SqlKv {
        SqlKv::new(self.client.clone(), self.transport.clone())
    }

    /// Stops taking writes and flushes the storage (graceful shutdown).
    pub async fn close(&self) {
        self.closing.set(true);
        let storage = self.storage();
        if let Some(storage) = storage {
            storage.close().await;
        }
    }
}

/// The parts of the keyspace that `owned` (disjoint spans) leaves out.
fn gaps(mut owned: Vec<Span>) -> Vec<Span> {
    owned.sort_by(|a, b| a.start.cmp(&b.start));
    let mut out = Vec::new();
    let mut next = Some(Bytes::new());
    for span in owned {
        let Some(from) = next else { break };
        if span.start > from {
            out.push(Span::new(from, span.start.clone()));
        }
        next = span.end;
    }
    if let Some(from) = next {
        out.push(Span::from_key(from));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_what_the_ranges_leave_out() {
        let s = |a: &str, b: Option<&str>| Span {
            start: Bytes::copy_from_slice(a.as_bytes()),
            end: b.map(|b| Bytes::copy_from_slice(b.as_bytes())),
        };
        assert_eq!(gaps(vec![]), vec![Span::all()]);
        assert_eq!(gaps(vec![Span::all()]), vec![]);
        assert_eq!(
            gaps(vec![s("m", None), s("c", Some("f"))]),
            vec![s("", Some("c")), s("f", Some("m"))]
        );
        assert_eq!(
            gaps(vec![s("", Some("c")), s("c", Some("f"))]),
            vec![s("f", None)]
        );
    }

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
