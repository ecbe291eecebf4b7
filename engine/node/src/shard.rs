//! One shard: a glommio executor pinned to a core that owns its listener, its
//! client connections and (as the engine grows) its ranges, Raft groups and
//! storage. Nothing in here is shared with another thread; other shards are
//! reached through the [`Mesh`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use glommio::{Latency, Shares, TaskQueueHandle};
use rand::RngCore;
use teller_kv::api::{RangeBatch, RangeBatchResponse};
use teller_kv::store::{ExportChunk, RangeHandoff};
use teller_kv::KvError;
use teller_net::conn::{self, AuthMethod, ConnEnd, ConnHost, Limits};
use teller_net::scram::ScramVerifier;
use teller_net::session::StartupInfo;
use teller_net::{PgError, PgResult, SqlState};
use teller_sql::{SqlSession, SqlShard, TableStats};

use crate::config::{AuthMethodName, Config};
use crate::directory::DirEntry;
use crate::kv_client::SqlKv;
use crate::mesh::{Handler, Mesh, ShardId};
use crate::node::{NodeMeshBuilder, NodeShared};
use crate::range::{node_kv_config_with, KvShard, ShardRanges, StorageSetup};
use crate::range_move;
use crate::signal::Flag;

/// How often a shard checks whether the node is shutting down.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often a started shard checks whether its peers' stores are open.
const STORES_OPEN_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Process ids carry the shard id above this many bits of sequence number.
const PROCESS_ID_SEQUENCE_BITS: u32 = 22;
const _: () =
    assert!((crate::config::SHARDS_MAX as u64) << PROCESS_ID_SEQUENCE_BITS <= i32::MAX as u64);

/// Requests shards send each other.
pub enum ShardRequest {
    /// A CancelRequest for a connection this shard serves.
    Cancel { process_id: i32, secret_key: i32 },
    /// How many client connections the shard serves now.
    ConnectionCount,
    /// Answered at once; for liveness checks and benchmarks.
    Ping(u64),
    /// A KV batch for a range this shard owns.
    Kv(Box<RangeBatch>),
    /// DDL committed catalog version `.0`; reload before the next Parse.
    CatalogChanged(u64),
    /// The shard's routing table.
    Directory,
    /// Ranges split or moved: merge these into the routing table.
    RangesChanged(Vec<DirEntry>),
    /// The ranges the shard's store holds, with sizes.
    StoreRanges,
    /// Move range `range_id` of this shard to shard `to` (the rebalancer).
    MoveRange { range_id: u64, to: usize },
    /// Part of a range moving here.
    MoveChunk {
        move_id: u64,
        chunk: Box<ExportChunk>,
    },
    /// Every chunk of the move arrived: take the range over.
    MoveAdopt {
        move_id: u64,
        handoff: Box<RangeHandoff>,
    },
    /// The move was given up: forget what arrived.
    MoveAbort { move_id: u64 },
}

pub enum ShardResponse {
    Done,
    ConnectionCount(u64),
    Pong(u64),
    Kv(Box<Result<RangeBatchResponse, KvError>>),
    /// The batch's range is moving: the batch comes back unrun.
    KvMoving(Box<RangeBatch>),
    Directory(Vec<DirEntry>),
    /// `None` until the store is open.
    Ranges(Option<ShardRanges>),
    Moved(Result<(), String>),
}

pub type NodeMesh = Mesh<ShardRequest, ShardResponse>;

struct ConnEntry {
    secret_key: i32,
    cancel: Rc<Flag>,
}

/// The state of one shard.
pub struct Shard {
    pub id: ShardId,
    pub shards: usize,
    config: Rc<Config>,
    limits: Limits,
    verifiers: HashMap<String, ScramVerifier>,
    mock_secret: [u8; 32],
    /// Admitted connections by process id.
    connections: RefCell<HashMap<i32, ConnEntry>>,
    /// Accepted sockets, admitted or not yet.
    open_sockets: Cell<usize>,
    /// Sockets closed unserved because twice the connection limit was open.
    refused_sockets: Cell<u64>,
    next_sequence: Cell<u32>,
    mesh: RefCell<Option<Rc<NodeMesh>>>,
    /// The ranges this shard owns and its KV client.
    pub kv: Rc<KvShard>,
    pub latency_queue: TaskQueueHandle,
    pub background_queue: TaskQueueHandle,
}

impl Shard {
    fn mesh(&self) -> Option<Rc<NodeMesh>> {
        self.mesh.borrow().clone()
    }

    fn connection_count(&self) -> u64 {
        self.connections.borrow().len() as u64
    }

    fn cancel_local(&self, process_id: i32, secret_key: i32) -> bool {
        let connections = self.connections.borrow();
        match connections.get(&process_id) {
            Some(entry) if entry.secret_key == secret_key => {
                entry.cancel.raise();
                true
            }
            _ => false,
        }
    }

    /// Client connections per shard, gathered over the mesh.
    pub async fn connections_per_shard(&self) -> Vec<u64> {
        let mut counts = vec![0; self.shards];
        counts[self.id] = self.connection_count();
        if let Some(mesh) = self.mesh() {
            for (shard, count) in counts.iter_mut().enumerate() {
                if shard == self.id {
                    continue;
                }
                if let Ok(ShardResponse::ConnectionCount(n)) =
                    mesh.request(shard, ShardRequest::ConnectionCount).await
                {
                    *count = n;
                }
            }
        }
        counts
    }
}

struct ShardHandler {
    shard: Rc<Shard>,
}

impl Handler<ShardRequest, ShardResponse> for ShardHandler {
    async fn handle(&self, _from: ShardId, request: ShardRequest) -> ShardResponse {
        match request {
            ShardRequest::Cancel {
                process_id,
                secret_key,
            } => {
                self.shard.cancel_local(process_id, secret_key);
                ShardResponse::Done
            }
            ShardRequest::ConnectionCount => {
                ShardResponse::ConnectionCount(self.shard.connection_count())
            }
            ShardRequest::Ping(n) => ShardResponse::Pong(n),
            ShardRequest::Kv(batch) => self.shard.kv.serve(*batch).await,
            ShardRequest::CatalogChanged(version) => {
                SHARD_SQL.with(|sql| sql.catalog().announce(version));
                ShardResponse::Done
            }
            ShardRequest::Directory => ShardResponse::Directory(self.shard.kv.range_table()),
            ShardRequest::RangesChanged(entries) => {
                self.shard.kv.transport.learn(entries);
                ShardResponse::Done
            }
            ShardRequest::StoreRanges => ShardResponse::Ranges(self.shard.kv.shard_ranges()),
            ShardRequest::MoveRange { range_id, to } => {
                let kv = &self.shard.kv;
                ShardResponse::Moved(range_move::move_range(kv, range_id, to).await.map(|_| ()))
            }
            ShardRequest::MoveChunk { move_id, chunk } => ShardResponse::Moved(
                range_move::receive_chunk(&self.shard.kv, move_id, *chunk).await,
            ),
            ShardRequest::MoveAdopt { move_id, handoff } => ShardResponse::Moved(
                range_move::receive_adopt(&self.shard.kv, move_id, *handoff).await,
            ),
            ShardRequest::MoveAbort { move_id } => {
                range_move::receive_abort(&self.shard.kv, move_id).await;
                ShardResponse::Done
            }
        }
    }
}

/// Runs shard `id` until the node shuts down.
pub async fn run(id: ShardId, node: Arc<NodeShared>, mesh: NodeMeshBuilder) -> Result<(), String> {
    let config = Rc::new(node.config.clone());
    let executor = glommio::executor();
    // Clients and the Raft write path get ten times the background's
    // shares, but not `Latency::Matters`: glommio's latency-queue wake-up
    // path loses wake-ups. The executor then sleeps in `io_uring_enter`
    // with runnable work: the Raft benchmark saw commits stop for 2-8 s in
    // 6 of 18 runs and once for 1121 s, and none in 24 runs with the same
    // shares in a `NotImportant` queue (perf/RESULTS.md, "Raft"); the mesh
    // benchmark lost a wake-up the same way.
    let latency_queue =
        executor.create_task_queue(Shares::Static(1000), Latency::NotImportant, "latency");
    let background_queue =
        executor.create_task_queue(Shares::Static(100), Latency::NotImportant, "background");
    // Mesh traffic gets the client queue's shares but not `Latency::Matters`:
    // glommio's latency-queue wake-up path lost a wake-up under 64-deep
    // pipelined mesh traffic (1 run in 5 hung, see perf/RESULTS.md), and it
    // bought no measurable latency for mesh messages.
    let mesh_queue =
        executor.create_task_queue(Shares::Static(1000), Latency::NotImportant, "mesh");

    let limits = Limits {
        max_frame_bytes: config.server.max_frame_bytes,
        max_prepared_statements: config.server.max_prepared_statements,
        max_portals: config.server.max_portals,
    };
    // The store opens after the mesh join and the device probe (below).
    let kv_config = node_kv_config_with(&config.ranges);
    let kv = Rc::new(KvShard::new(id, config.server.shards, kv_config));
    kv.set_load_split(config.ranges.range_split_requests_per_sec);
    let shard = Rc::new(Shard {
        id,
        shards: config.server.shards,
        kv: kv.clone(),
        limits,
        verifiers: node.verifiers.clone(),
        mock_secret: node.mock_secret,
        config: config.clone(),
        connections: RefCell::new(HashMap::new()),
        open_sockets: Cell::new(0),
        refused_sockets: Cell::new(0),
        next_sequence: Cell::new(0),
        mesh: RefCell::new(None),
        latency_queue,
        background_queue,
    });
    if shard.shards > 1 {
        let handler = Rc::new(ShardHandler {
            shard: shard.clone(),
        });
        let mesh = Mesh::join(mesh, id, handler, mesh_queue).await?;
        kv.set_mesh(mesh.clone());
        *shard.mesh.borrow_mut() = Some(mesh);
    }

    // After the mesh join, so that a shard failing here cannot leave the
    // others waiting for it in `Mesh::join`; they see the stop flag instead.
    // The join opens no files, so the probe still precedes all device I/O.
    probe_data_device(&node, id).await?;
    open_storage(&shard, &node).await?;
    if !all_stores_open(&node).await {
        // Another shard failed to start: the node is stopping.
        shard.kv.close().await;
        if let Some(mesh) = shard.mesh() {
            mesh.close();
        }
        return Ok(());
    }
    shard.kv.join().await?;
    start_rebalancer(&shard);
    announce_recovered_catalog(&shard).await?;

    let listener = TcpListener::bind(config.listen_addr())
        .map_err(|e| format!("shard {id}: binding {}: {e}", config.server.listen))?;
    node.shards_listening.fetch_add(1, Ordering::SeqCst);
    tracing::info!(shard = id, listen = %config.server.listen, "shard listening");

    accept_loop(&shard, &listener, &node).await;
    drop(listener);

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let deadline = std::time::Instant::now() + grace;
    while shard.open_sockets.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    if shard.open_sockets.get() > 0 {
        tracing::info!(
            shard = id,
            open = shard.open_sockets.get(),
            "closing remaining connections"
        );
    }
    shard.kv.close().await;
    if let Some(mesh) = shard.mesh() {
        mesh.close();
    }
    tracing::info!(shard = id, "shard stopped");
    Ok(())
}

/// glommio decides per device whether to use polled I/O by probing the first
/// file it opens; an empty first file makes the probe misfire. The storage
/// layer's probe opens a small non-empty file on the data device first.
async fn probe_data_device(node: &NodeShared, id: ShardId) -> Result<(), String> {
    let dir = node.shard_dir(id);
    teller_storage::disk::probe_device(&dir).await.map_err(|e| {
        format!(
            "shard {id}: probing the data device at {}: {e}",
            dir.display()
        )
    })
}

/// Opens the shard's storage (recovering every acknowledged write) and its
/// store, then counts it open.
async fn open_storage(shard: &Shard, node: &NodeShared) -> Result<(), String> {
    let dir = node.shard_dir(shard.id);
    let setup = StorageSetup {
        dir: &dir,
        settings: &node.config.storage,
        writes_queue: shard.latency_queue,
        background_queue: shard.background_queue,
    };
    shard.kv.open(setup).await?;
    node.stores_open.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Waits until every shard's store is open, so that no client reaches a
/// shard whose peers are still replaying their logs. `false` if the node
/// began to stop meanwhile.
async fn all_stores_open(node: &NodeShared) -> bool {
    while node.stores_open.load(Ordering::SeqCst) < node.config.server.shards {
        if node.stopping.load(Ordering::SeqCst) {
            return false;
        }
        glommio::timer::sleep(STORES_OPEN_POLL_INTERVAL).await;
    }
    true
}

/// Shard 0 keeps the node's ranges spread over its shards.
fn start_rebalancer(shard: &Rc<Shard>) {
    let interval = shard.config.ranges.rebalance_interval();
    let (Some(interval), true) = (interval, shard.id == 0 && shard.shards > 1) else {
        return;
    };
    let task = crate::rebalance::run(shard.kv.clone(), interval);
    match glommio::spawn_local_into(task, shard.latency_queue) {
        Ok(task) => {
            task.detach();
        }
        Err(error) => tracing::error!(%error, "spawning the rebalancer"),
    }
}

/// Makes the catalog the storage recovered visible to this shard's
/// sessions: statements bind against the shard's cached catalog, which
/// starts as the bootstrap one, and is reloaded before the next Parse once
/// a newer version is announced.
async fn announce_recovered_catalog(shard: &Shard) -> Result<(), String> {
    use teller_sql::kv::{Isolation, Kv, KvTxn, TxnOptions};
    let kv = shard.kv.sql_kv();
    let options = TxnOptions {
        isolation: Isolation::Serializable,
        read_only: true,
    };
    let failed = |e: String| format!("shard {}: reading the recovered catalog: {e}", shard.id);
    let mut txn = kv.begin(options).await.map_err(|e| failed(e.to_string()))?;
    let version = teller_sql::catalog::cache::read_version(&mut txn)
        .await
        .map_err(|e| failed(e.message.clone()))?;
    txn.commit().await.map_err(|e| failed(e.to_string()))?;
    SHARD_SQL.with(|sql| sql.catalog().announce(version));
    Ok(())
}

async fn accept_loop(shard: &Rc<Shard>, listener: &TcpListener, node: &Arc<NodeShared>) {
    loop {
        let accepted = {
            let accept = async { Some(listener.accept().await) };
            let stop = async {
                while !node.stopping.load(Ordering::SeqCst) {
                    glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
                }
                None
            };
            futures_lite::future::or(accept, stop).await
        };
        let stream = match accepted {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                // EMFILE and friends: back off rather than spin.
                tracing::warn!(shard = shard.id, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Sockets over the connection limit are held just long enough to be
        // told why (53300, after their startup packet); past twice the limit
        // they are closed at once, so a connection flood cannot pile up
        // sockets for the length of the authentication timeout.
        let limit = shard.config.server.max_connections_per_shard;
        if shard.open_sockets.get() >= limit.saturating_mul(2) {
            drop(stream);
            let refused = shard.refused_sockets.get() + 1;
            shard.refused_sockets.set(refused);
            if refused.is_power_of_two() {
                tracing::warn!(
                    shard = shard.id,
                    refused,
                    "connection flood: closing sockets at once"
                );
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        // Counted here, not in the task, so a burst of accepts sees itself.
        let over_limit = shard.open_sockets.get() >= limit;
        shard.open_sockets.set(shard.open_sockets.get() + 1);
        let task = serve_connection(shard.clone(), stream, over_limit);
        match glommio::spawn_local_into(task, shard.latency_queue) {
            Ok(task) => {
                task.detach();
            }
            Err(error) => {
                shard.open_sockets.set(shard.open_sockets.get() - 1);
                tracing::error!(%error, "spawning a connection task");
            }
        }
    }
}

async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, over_limit: bool) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    tracing::debug!(shard = shard.id, %peer, "connection accepted");
    let host = ShardConnHost {
        shard: shard.clone(),
        over_limit,
        process_id: None,
        cancel: Rc::new(Flag::default()),
        authenticated: Cell::new(false),
    };
    let end = conn::serve(stream, host).await;
    shard.open_sockets.set(shard.open_sockets.get() - 1);
    match end {
        ConnEnd::Closed | ConnEnd::CancelRequest => {
            tracing::debug!(shard = shard.id, %peer, "connection closed")
        }
        ConnEnd::Fatal(error) => {
            tracing::info!(shard = shard.id, %peer, code = error.code.code(), "connection ended: {}", error.message)
        }
        ConnEnd::Io(error) => tracing::info!(shard = shard.id, %peer, "connection lost: {error}"),
    }
}

/// What the wire driver needs, served by the shard.
struct ShardConnHost {
    shard: Rc<Shard>,
    over_limit: bool,
    process_id: Option<i32>,
    cancel: Rc<Flag>,
    authenticated: Cell<bool>,
}

impl Drop for ShardConnHost {
    fn drop(&mut self) {
        if let Some(pid) = self.process_id {
            self.shard.connections.borrow_mut().remove(&pid);
        }
    }
}

impl ConnHost for ShardConnHost {
    type Session = SqlSession<SessionHost>;

    fn limits(&self) -> &Limits {
        &self.shard.limits
    }

    fn auth_method(&self) -> AuthMethod {
        match self.shard.config.auth.method {
            AuthMethodName::Trust => AuthMethod::Trust,
            AuthMethodName::ScramSha256 => AuthMethod::ScramSha256,
        }
    }

    fn scram_verifier(&self, user: &str) -> Option<ScramVerifier> {
        self.shard.verifiers.get(user).cloned()
    }

    fn mock_secret(&self) -> &[u8] {
        &self.shard.mock_secret
    }

    fn random_bytes(&mut self, out: &mut [u8]) {
        rand::rng().fill_bytes(out);
    }

    fn admit(&mut self) -> PgResult<(i32, i32)> {
        if self.over_limit {
            return Err(PgError::fatal(
                SqlState::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
        }
        let shard = &self.shard;
        let mut connections = shard.connections.borrow_mut();
        let sequence_mask = (1u32 << PROCESS_ID_SEQUENCE_BITS) - 1;
        let process_id = loop {
            let sequence = shard.next_sequence.get().wrapping_add(1) & sequence_mask;
            shard.next_sequence.set(sequence);
            let pid = ((shard.id as i32) << PROCESS_ID_SEQUENCE_BITS) | sequence as i32;
            if pid != 0 && !connections.contains_key(&pid) {
                break pid;
            }
        };
        let secret_key = rand::rng().next_u32() as i32;
        connections.insert(
            process_id,
            ConnEntry {
                secret_key,
                cancel: self.cancel.clone(),
            },
        );
        self.process_id = Some(process_id);
        Ok((process_id, secret_key))
    }

    fn open_session(&mut self, startup: &StartupInfo) -> PgResult<Self::Session> {
        let sql = SHARD_SQL.with(|s| s.clone());
        let host = SessionHost {
            kv: self.shard.kv.sql_kv(),
            shard: self.shard.clone(),
            sql,
        };
        SqlSession::new(host, startup)
    }

    fn cancel_request(&mut self, process_id: i32, secret_key: i32) {
        let owner = (process_id >> PROCESS_ID_SEQUENCE_BITS) as usize;
        if owner == self.shard.id {
            self.shard.cancel_local(process_id, secret_key);
            return;
        }
        let Some(mesh) = self.shard.mesh() else {
            return;
        };
        if owner >= mesh.shards() {
            return;
        }
        let forward = async move {
            let _ = mesh
                .request(
                    owner,
                    ShardRequest::Cancel {
                        process_id,
                        secret_key,
                    },
                )
                .await;
        };
        if let Ok(task) = glommio::spawn_local_into(forward, self.shard.latency_queue) {
            task.detach();
        }
    }

    fn ready_for_queries(&mut self) {
        self.authenticated.set(true);
    }

    fn input_timeout(&self) -> impl Future<Output = PgError> {
        let config = &self.shard.config;
        let (limit, error) = if self.authenticated.get() {
            (
                config.idle_timeout(),
                PgError::fatal(
                    SqlState::IDLE_SESSION_TIMEOUT,
                    "terminating connection due to idle-session timeout",
                ),
            )
        } else {
            (
                Some(config.auth_timeout()),
                PgError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    "canceling authentication due to timeout",
                ),
            )
        };
        async move {
            match limit {
                Some(limit) => {
                    glommio::timer::sleep(limit).await;
                    error
                }
                None => futures_lite::future::pending().await,
            }
        }
    }

    fn cancelled(&self) -> impl Future<Output = ()> {
        let cancel = self.cancel.clone();
        async move { cancel.wait().await }
    }

    fn clear_cancel(&self) {
        self.cancel.clear();
    }

    fn sleep(&self, after: Duration) -> impl Future<Output = ()> + use<> {
        glommio::timer::sleep(after)
    }
}

/// Table row count estimates, shared by the shards of this process (one
/// node): rows written through any shard count for the planner on all.
static NODE_SQL_STATS: std::sync::LazyLock<TableStats> = std::sync::LazyLock::new(TableStats::new);

thread_local! {
    /// The SQL layer's per-shard state (catalog cache, statistics, row id
    /// generator), shared by the sessions of this shard's thread.
    static SHARD_SQL: SqlShard = SqlShard::with_stats(NODE_SQL_STATS.clone());
}

/// What the SQL layer may ask of the node.
pub struct SessionHost {
    shard: Rc<Shard>,
    /// The routed KV client: batches go to the shards owning their ranges.
    kv: SqlKv,
    sql: SqlShard,
}

impl teller_sql::Host for SessionHost {
    type Kv = SqlKv;

    fn kv(&self) -> &SqlKv {
        &self.kv
    }

    fn sql_shard(&self) -> &SqlShard {
        &self.sql
    }

    fn shard(&self) -> usize {
        self.shard.id
    }

    fn shard_count(&self) -> usize {
        self.shard.shards
    }

    fn now_micros(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.as_micros() as i64
    }

    async fn sleep(&self, duration: Duration) {
        glommio::timer::sleep(duration).await
    }

    async fn connections_per_shard(&self) -> Vec<u64> {
        self.shard.connections_per_shard().await
    }

    async fn catalog_changed(&self, version: u64) {
        let Some(mesh) = self.shard.mesh() else {
            return;
        };
        // A shard that cannot be reached is shutting down; its
        // per-transaction version check still keeps it correct.
        for shard in (0..self.shard.shards).filter(|&shard| shard != self.shard.id) {
            let _ = mesh
                .request(shard, ShardRequest::CatalogChanged(version))
                .await;
        }
    }

    fn random_seed(&self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        seed
    }
}
