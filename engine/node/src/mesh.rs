//! The shard mesh: every shard can send a typed request to every other shard
//! and await the reply, or send a one-way message.
//!
//! Transport is glommio's channel mesh: one bounded SPSC ring (with eventfd
//! wake-ups) per ordered pair of shards, no locks on the path. A full ring makes
//! the sender wait (backpressure); nothing grows without bound:
//! - each sender holds at most [`INFLIGHT_REQUESTS_PER_PEER_MAX`] requests per
//!   peer (a per-peer semaphore), so the tasks a receiver spawns to answer them
//!   are bounded too;
//! - receive loops never send: replies are sent by the per-request tasks, so two
//!   shards answering each other cannot deadlock on two full rings.
//!
//! glommio numbers mesh peers in executor-creation order, which need not match
//! shard ids, so every shard first announces its shard id to every peer.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use glommio::channels::channel_mesh::{MeshBuilder, Receivers, Senders};
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::sync::Semaphore;
use glommio::TaskQueueHandle;

use crate::signal::{oneshot, OneshotSender};

/// Slots in each shard-to-shard ring.
pub const MESH_QUEUE_CAPACITY: usize = 1024;
/// Requests a shard may have outstanding towards one peer.
pub const INFLIGHT_REQUESTS_PER_PEER_MAX: u64 = 4096;

/// A shard's index within the node, stable across restarts.
pub type ShardId = usize;

/// What travels on the rings.
pub enum Envelope<Req, Resp> {
    Hello { shard: ShardId },
    Request { id: u64, request: Req },
    OneWay { request: Req },
    Reply { id: u64, response: Resp },
}

/// Serves requests that arrive from other shards.
pub trait Handler<Req, Resp>: 'static {
    fn handle(&self, from: ShardId, request: Req) -> impl Future<Output = Resp>;
    /// A one-way message; by default handled like a request whose reply is dropped.
    fn handle_one_way(&self, from: ShardId, request: Req) -> impl Future<Output = ()> {
        async move {
            self.handle(from, request).await;
        }
    }
}

/// Errors of mesh calls.
#[derive(Debug, PartialEq, Eq)]
pub enum MeshError {
    /// No such shard, or the caller addressed itself.
    InvalidShard(ShardId),
    /// The peer's ring is closed (the peer shut down).
    Closed(ShardId),
}

impl std::fmt::Display for MeshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeshError::InvalidShard(s) => write!(f, "invalid shard {s}"),
            MeshError::Closed(s) => write!(f, "shard {s} is not reachable"),
        }
    }
}

/// A shard's end of the mesh.
pub struct Mesh<Req: Send + 'static, Resp: Send + 'static> {
    shard: ShardId,
    shards: usize,
    senders: Senders<Envelope<Req, Resp>>,
    /// Mesh peer index of each shard id.
    peer_of_shard: Vec<usize>,
    pending: RefCell<HashMap<u64, OneshotSender<Resp>>>,
    next_id: Cell<u64>,
    inflight: Vec<Semaphore>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Mesh<Req, Resp> {
    /// Joins the mesh (every shard must call this with a clone of one builder),
    /// learns the peers' shard ids and starts a receive loop per peer in `queue`.
    pub async fn join<H: Handler<Req, Resp>>(
        builder: MeshBuilder<Envelope<Req, Resp>, glommio::channels::channel_mesh::Full>,
        shard: ShardId,
        handler: Rc<H>,
        queue: TaskQueueHandle,
    ) -> Result<Rc<Self>, String> {
        let shards = builder.nr_peers();
        let (senders, mut receivers): (Senders<_>, Receivers<_>) = builder
            .join()
            .await
            .map_err(|e| format!("joining the shard mesh: {e}"))?;
        let me = senders.peer_id();
        for peer in (0..shards).filter(|&p| p != me) {
            senders
                .send_to(peer, Envelope::Hello { shard })
                .await
                .map_err(|_| format!("greeting mesh peer {peer}"))?;
        }
        let mut peer_of_shard = vec![usize::MAX; shards];
        peer_of_shard[shard] = me;
        let mut streams = Vec::new();
        for (peer, receiver) in receivers.streams() {
            match receiver.recv().await {
                Some(Envelope::Hello { shard: theirs }) if theirs < shards => {
                    peer_of_shard[theirs] = peer;
                    streams.push((theirs, receiver));
                }
                _ => return Err(format!("mesh peer {peer} did not greet")),
            }
        }
        assert!(
            peer_of_shard.iter().all(|&p| p != usize::MAX),
            "every shard id is announced exactly once"
        );
        let mesh = Rc::new(Mesh {
            shard,
            shards,
            senders,
            peer_of_shard,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            inflight: (0..shards)
                .map(|_| Semaphore::new(INFLIGHT_REQUESTS_PER_PEER_MAX))
                .collect(),
        });
        for (from, receiver) in streams {
            let receive = receive_loop(mesh.clone(), handler.clone(), from, receiver, queue);
            glommio::spawn_local_into(receive, queue)
                .map_err(|e| format!("spawning mesh receiver: {e}"))?
                .detach();
        }
        Ok(mesh)
    }

    pub fn shard(&self) -> ShardId {
        self.shard
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    fn peer(&self, to: ShardId) -> Result<usize, MeshError> {
        if to == self.shard || to >= self.shards {
            return Err(MeshError::InvalidShard(to));
        }
        Ok(self.peer_of_shard[to])
    }

    /// Sends `request` to shard `to` and waits for its reply.
    pub async fn request(&self, to: ShardId, request: Req) -> Result<Resp, MeshError> {
        let peer = self.peer(to)?;
        let _permit = self.inflight[to]
            .acquire_permit(1)
            .await
            .map_err(|_| MeshError::Closed(to))?;
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (tx, rx) = oneshot();
        self.pending.borrow_mut().insert(id, tx);
        if self
            .senders
            .send_to(peer, Envelope::Request { id, request })
            .await
            .is_err()
        {
            self.pending.borrow_mut().remove(&id);
            return Err(MeshError::Closed(to));
        }
        rx.await.ok_or(MeshError::Closed(to))
    }

    /// Sends `request` to shard `to` without waiting for an answer.
    pub async fn send_one_way(&self, to: ShardId, request: Req) -> Result<(), MeshError> {
        let peer = self.peer(to)?;
        self.senders
            .send_to(peer, Envelope::OneWay { request })
            .await
            .map_err(|_| MeshError::Closed(to))
    }

    /// Closes this shard's sending rings; peers' receive loops then end.
    pub fn close(&self) {
        self.senders.close();
        // Requests still waiting will never be answered.
        self.pending.borrow_mut().clear();
    }
}

async fn receive_loop<Req, Resp, H>(
    mesh: Rc<Mesh<Req, Resp>>,
    handler: Rc<H>,
    from: ShardId,
    receiver: ConnectedReceiver<Envelope<Req, Resp>>,
    queue: TaskQueueHandle,
) where
    Req: Send + 'static,
    Resp: Send + 'static,
    H: Handler<Req, Resp>,
{
    while let Some(envelope) = receiver.recv().await {
        match envelope {
            Envelope::Reply { id, response } => {
                let waiter = mesh.pending.borrow_mut().remove(&id);
                if let Some(waiter) = waiter {
                    waiter.send(response);
                }
            }
            Envelope::Request { id, request } => {
                let mesh = mesh.clone();
                let handler = handler.clone();
                let answer = async move {
                    let response = handler.handle(from, request).await;
                    let peer = mesh.peer_of_shard[from];
                    // A closed ring means the requester is gone; nobody waits.
                    let _ = mesh
                        .senders
                        .send_to(peer, Envelope::Reply { id, response })
                        .await;
                };
                spawn_or_log(answer, queue);
            }
            Envelope::OneWay { request } => {
                let handler = handler.clone();
                spawn_or_log(
                    async move { handler.handle_one_way(from, request).await },
                    queue,
                );
            }
            Envelope::Hello { .. } => {
                tracing::warn!(from, "duplicate mesh greeting ignored");
            }
        }
    }
    // The peer closed its ring: fail what we were waiting for from it. Request
    // ids are not per peer, so waiters of other peers are left alone; they are
    // answered by their own peers.
    tracing::debug!(from, "mesh ring closed");
}

fn spawn_or_log(task: impl Future<Output = ()> + 'static, queue: TaskQueueHandle) {
    match glommio::spawn_local_into(task, queue) {
        Ok(task) => {
            task.detach();
        }
        Err(error) => tracing::error!(%error, "spawning a mesh handler"),
    }
}
