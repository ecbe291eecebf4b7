//! [`MeshTransport`]: how a shard's KV batches reach the shard that owns
//! their range, over the shard mesh, with the shard's [`Directory`].
//!
//! - A batch for a range this shard owns runs in place; any other goes to
//!   its owner as a [`ShardRequest::Kv`]. Every batch and response carries
//!   an HLC timestamp.
//! - **Stale routes.** A range that split or moved answers a batch with
//!   `RangeKeyMismatch`. The transport then merges the answering shard's
//!   table into its own (that shard made the change, or heard of it) and
//!   hands the error to the client, which re-routes with the fresh table.
//! - **Moving ranges.** While its range is being moved, the owner hands a
//!   batch back unrun ([`Delivery::Moving`]); the transport waits (backing
//!   off from [`MOVE_BACKOFF_MIN`] to [`MOVE_BACKOFF_MAX`]) and sends it
//!   again, up to [`MOVE_WAIT_MAX`]. After the move the old owner answers
//!   `RangeKeyMismatch`, and the route above finds the new one.
//! - **Announcements.** A split here updates this table at once and is
//!   broadcast to every peer as the complete set of ranges it produced.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use teller_kv::api::{RangeBatch, RangeBatchResponse};
use teller_kv::engine::LocalBoxFuture;
use teller_kv::replica::RangeDesc;
use teller_kv::store::Store;
use teller_kv::transport::{StoreId, Transport};
use teller_kv::KvError;

use crate::directory::{DirEntry, Directory, Learned};
use crate::mesh::ShardId;
use crate::shard::{NodeMesh, ShardRequest, ShardResponse};

/// First wait before re-sending a batch whose range is moving.
pub const MOVE_BACKOFF_MIN: Duration = Duration::from_millis(1);
/// Longest wait between two sends of a batch whose range is moving.
pub const MOVE_BACKOFF_MAX: Duration = Duration::from_millis(20);
/// Longest a batch waits for its range's move to end.
pub const MOVE_WAIT_MAX: Duration = Duration::from_secs(30);

/// What the owner of a range did with a batch.
pub enum Delivery {
    /// Ran it (or refused it).
    Done(Result<RangeBatchResponse, KvError>),
    /// The range is moving: the batch comes back unrun, to be sent again.
    Moving(Box<RangeBatch>),
}

/// Routes range batches to their owner: in place, or over the mesh.
pub struct MeshTransport {
    shard: ShardId,
    directory: RefCell<Directory>,
    local: RefCell<Weak<Store>>,
    mesh: RefCell<Option<Rc<NodeMesh>>>,
    /// Ranges of this shard being moved away: their batches are handed back.
    moving: RefCell<HashSet<u64>>,
}

impl MeshTransport {
    /// A transport whose table starts with `initial` (the placement of a
    /// new node, which every shard computes alike).
    pub fn new(shard: ShardId, initial: Vec<DirEntry>) -> MeshTransport {
        let mut directory = Directory::new();
        for entry in initial {
            directory.learn(entry);
        }
        MeshTransport {
            shard,
            directory: RefCell::new(directory),
            local: RefCell::new(Weak::new()),
            mesh: RefCell::new(None),
            moving: RefCell::new(HashSet::new()),
        }
    }

    pub fn set_local(&self, store: &Rc<Store>) {
        *self.local.borrow_mut() = Rc::downgrade(store);
    }

    pub fn set_mesh(&self, mesh: Rc<NodeMesh>) {
        *self.mesh.borrow_mut() = Some(mesh);
    }

    pub fn mesh(&self) -> Option<Rc<NodeMesh>> {
        self.mesh.borrow().clone()
    }

    /// The shard this transport serves.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// The ranges this shard's store holds, with sizes (`None` until the
    /// store is open).
    pub fn local_ranges(&self) -> Option<Vec<teller_kv::store::RangeInfo>> {
        Some(self.local.borrow().upgrade()?.range_infos())
    }

    /// Merges `entries` into the table; returns how many were new.
    pub fn learn(&self, entries: impl IntoIterator<Item = DirEntry>) -> usize {
        let mut directory = self.directory.borrow_mut();
        entries
            .into_iter()
            .filter(|e| directory.learn(e.clone()) == Learned::Added)
            .count()
    }

    /// The whole table, in key order.
    pub fn entries(&self) -> Vec<DirEntry> {
        self.directory.borrow().entries()
    }

    /// Whether the table covers the keyspace without holes.
    pub fn covers_keyspace(&self) -> bool {
        self.directory.borrow().covers_keyspace()
    }

    /// Batches for `range_id` are handed back from now on (it is moving).
    pub fn begin_move(&self, range_id: u64) -> bool {
        self.moving.borrow_mut().insert(range_id)
    }

    pub fn end_move(&self, range_id: u64) {
        self.moving.borrow_mut().remove(&range_id);
    }

    /// Runs a batch addressed to this shard (from a local client or a
    /// peer), unless its range is moving.
    pub async fn deliver_local(&self, batch: RangeBatch) -> Delivery {
        if self.moving.borrow().contains(&batch.header.range_id) {
            return Delivery::Moving(Box::new(batch));
        }
        let store = self.local.borrow().upgrade();
        match store {
            Some(store) => Delivery::Done(store.execute(batch).await),
            None => Delivery::Done(Err(KvError::Unavailable(format!(
                "shard {} is still starting",
                self.shard
            )))),
        }
    }

    async fn deliver(&self, owner: ShardId, batch: RangeBatch) -> Delivery {
        if owner == self.shard {
            return self.deliver_local(batch).await;
        }
        let Some(mesh) = self.mesh() else {
            return Delivery::Done(Err(KvError::Unavailable("no shard mesh".into())));
        };
        match mesh.request(owner, ShardRequest::Kv(Box::new(batch))).await {
            Ok(ShardResponse::Kv(result)) => Delivery::Done(*result),
            Ok(ShardResponse::KvMoving(batch)) => Delivery::Moving(batch),
            Ok(_) => Delivery::Done(Err(KvError::Internal(
                "shard answered a KV batch with something else".into(),
            ))),
            Err(e) => Delivery::Done(Err(KvError::Unavailable(e.to_string()))),
        }
    }

    /// Merges shard `from`'s table into ours (after it said a route was
    /// stale). Best effort: an unreachable peer is shutting down.
    async fn refresh_from(&self, from: ShardId) {
        let Some(mesh) = self.mesh() else { return };
        if let Ok(ShardResponse::Directory(entries)) =
            mesh.request(from, ShardRequest::Directory).await
        {
            let added = self.learn(entries);
            tracing::debug!(shard = self.shard, from, added, "routing table refreshed");
        }
    }

    /// Tells every peer about `entries` (a split or a move). Peers that
    /// miss it learn on their first stale route instead.
    pub fn broadcast(&self, entries: Vec<DirEntry>) {
        let Some(mesh) = self.mesh() else { return };
        let me = self.shard;
        let task = async move {
            for peer in (0..mesh.shards()).filter(|&p| p != me) {
                let _ = mesh
                    .request(peer, ShardRequest::RangesChanged(entries.clone()))
                    .await;
            }
        };
        glommio::spawn_local(task).detach();
    }

    fn generation_of(&self, range_id: u64) -> Option<u64> {
        let store = self.local.borrow().upgrade()?;
        store.replica(range_id).map(|r| r.generation())
    }

    async fn send_routed(&self, mut batch: RangeBatch) -> Result<RangeBatchResponse, KvError> {
        let range_id = batch.header.range_id;
        let deadline = Instant::now() + MOVE_WAIT_MAX;
        let mut backoff = MOVE_BACKOFF_MIN;
        loop {
            let owner = self.directory.borrow().get(range_id).map(|e| e.owner);
            let Some(owner) = owner else {
                return Err(KvError::RangeKeyMismatch { key: Bytes::new() });
            };
            match self.deliver(owner, batch).await {
                Delivery::Done(Err(e @ KvError::RangeKeyMismatch { .. })) => {
                    if owner != self.shard {
                        self.refresh_from(owner).await;
                    }
                    return Err(e);
                }
                Delivery::Done(result) => return result,
                Delivery::Moving(returned) => {
                    if Instant::now() >= deadline {
                        return Err(KvError::Unavailable(format!(
                            "range {range_id} is still moving after {MOVE_WAIT_MAX:?}"
                        )));
                    }
                    batch = *returned;
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(MOVE_BACKOFF_MAX);
                }
            }
        }
    }
}

impl Transport for MeshTransport {
    fn route(&self, key: &[u8]) -> Result<RangeDesc, KvError> {
        self.directory
            .borrow()
            .route(key)
            .map(|e| e.desc.clone())
            .ok_or_else(|| {
                KvError::Unavailable(format!(
                    "no range holds key {}",
                    teller_kv::keys::pretty(key)
                ))
            })
    }

    fn send(&self, batch: RangeBatch) -> LocalBoxFuture<'_, Result<RangeBatchResponse, KvError>> {
        Box::pin(self.send_routed(batch))
    }

    fn note_split(&self, left: &RangeDesc, right: &RangeDesc, owner: StoreId) {
        let owner = owner as ShardId;
        let entries: Vec<DirEntry> = [left, right]
            .into_iter()
            .map(|d| DirEntry {
                desc: d.clone(),
                generation: self.generation_of(d.id).unwrap_or(0),
                owner,
            })
            .collect();
        self.learn(entries.clone());
        self.broadcast(entries);
    }
}
