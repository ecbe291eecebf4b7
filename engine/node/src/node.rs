//! A node: one process, one shard per core. `start` prepares the data
//! directory, starts one pinned glommio executor per shard, wires the shard mesh,
//! and waits for SIGINT/SIGTERM to shut down gracefully.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::{CpuSet, LocalExecutorBuilder, Placement};
use rand::RngCore;
use teller_net::scram::ScramVerifier;

use crate::config::Config;
use crate::mesh::{Envelope, MESH_QUEUE_CAPACITY};
use crate::shard::{self, ShardRequest, ShardResponse};

/// PBKDF2 iterations for verifiers derived from configured plain passwords
/// (PostgreSQL's default scram_iterations).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// The builder every shard joins the mesh with (one clone per shard).
pub type NodeMeshBuilder = MeshBuilder<Envelope<ShardRequest, ShardResponse>, Full>;

/// What all shards of a node share, read-only after start (plus two flags).
pub struct NodeShared {
    pub config: Config,
    pub verifiers: HashMap<String, ScramVerifier>,
    pub mock_secret: [u8; 32],
    pub stopping: AtomicBool,
    pub shards_listening: AtomicUsize,
    /// Shards whose storage is recovered and whose store serves its ranges.
    pub stores_open: AtomicUsize,
}

impl NodeShared {
    pub fn shard_dir(&self, shard: usize) -> PathBuf {
        self.config.server.data_dir.join(format!("shard-{shard}"))
    }
}

/// Runs a node until it is told to stop. `stop` is raised by the caller (the
/// signal thread) to begin a graceful shutdown.
pub fn run(config: Config, stop: Arc<AtomicBool>) -> Result<(), String> {
    let verifiers = build_verifiers(&config)?;
    let mut mock_secret = [0u8; 32];
    rand::rng().fill_bytes(&mut mock_secret);
    let shards = config.server.shards;
    let mesh: NodeMeshBuilder = MeshBuilder::full(shards, MESH_QUEUE_CAPACITY);
    let node = Arc::new(NodeShared {
        config,
        verifiers,
        mock_secret,
        stopping: AtomicBool::new(false),
        shards_listening: AtomicUsize::new(0),
        stores_open: AtomicUsize::new(0),
    });
    prepare_data_dir(&node)?;
    let _lock = lock_data_dir(&node.config.server.data_dir)?;
    check_address_free(node.config.listen_addr())?;

    let cpus: Vec<usize> = CpuSet::online()
        .map_err(|e| format!("reading the online CPUs: {e}"))?
        .into_iter()
        .map(|l| l.cpu)
        .collect();
    let pinned = shards <= cpus.len();
    tracing::info!(
        shards,
        pinned,
        listen = %node.config.server.listen,
        data_dir = %node.config.server.data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "starting TellerDB node"
    );

    let mut handles = Vec::with_capacity(shards);
    for id in 0..shards {
        let placement = match cpus.get(id) {
            Some(&cpu) if pinned => Placement::Fixed(cpu),
            _ => Placement::Unbound,
        };
        let node = node.clone();
        let mesh = mesh.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(node.config.server.io_memory_bytes)
            .spin_before_park(node.config.spin_before_park())
            .spawn(move || async move {
                let result = shard::run(id, node.clone(), mesh).await;
                if let Err(error) = &result {
                    tracing::error!(shard = id, "{error}");
                    // One shard failing takes the node down: better than a
                    // node that silently serves with fewer cores.
                    node.stopping.store(true, Ordering::SeqCst);
                }
                result
            })
            .map_err(|e| format!("starting shard {id}: {e}"))?;
        handles.push(handle);
    }

    // Relay the stop request to the shards.
    let relay_node = node.clone();
    let relay = std::thread::Builder::new()
        .name("stop-relay".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) && !relay_node.stopping.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            relay_node.stopping.store(true, Ordering::SeqCst);
        })
        .map_err(|e| format!("starting the stop relay: {e}"))?;

    let mut failure = None;
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(error) => failure = failure.or(Some(format!("shard {id} failed: {error}"))),
        }
    }
    node.stopping.store(true, Ordering::SeqCst);
    let _ = relay.join();
    match failure {
        None => {
            tracing::info!("node stopped");
            Ok(())
        }
        Some(error) => Err(error),
    }
}

fn build_verifiers(config: &Config) -> Result<HashMap<String, ScramVerifier>, String> {
    let mut verifiers = HashMap::new();
    for user in &config.auth.users {
        let verifier = match (&user.password, &user.scram) {
            (Some(password), None) => {
                let mut salt = [0u8; 16];
                rand::rng().fill_bytes(&mut salt);
                ScramVerifier::from_password(password, &salt, SCRAM_ITERATIONS)
            }
            (None, Some(stored)) => ScramVerifier::parse(stored)
                .map_err(|e| format!("auth.users {:?}: {}", user.name, e.message))?,
            _ => {
                return Err(format!(
                    "auth.users {:?}: give exactly one of password or scram",
                    user.name
                ))
            }
        };
        if verifiers.insert(user.name.clone(), verifier).is_some() {
            return Err(format!("auth.users: {:?} is listed twice", user.name));
        }
    }
    Ok(verifiers)
}

/// Name of the lock file that keeps two nodes off one data directory.
pub const DATA_DIR_LOCK_FILE: &str = "LOCK";

/// Takes an exclusive lock on the data directory for the life of the returned
/// file, so two nodes never write the same files. The lock file holds the
/// owner's pid, for the error message of the next one.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, String> {
    use std::io::{Read, Seek, Write};
    let path = data_dir.join(DATA_DIR_LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    if let Err(error) = file.try_lock() {
        let mut owner = String::new();
        let _ = file.read_to_string(&mut owner);
        return Err(match error {
            std::fs::TryLockError::WouldBlock => format!(
                "data directory {} is in use by another teller process (pid {})",
                data_dir.display(),
                owner.trim()
            ),
            std::fs::TryLockError::Error(e) => format!("locking {}: {e}", path.display()),
        });
    }
    let pid = std::process::id().to_string();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(file)
}

/// Every shard binds with SO_REUSEPORT, which would let a second node bind the
/// same address and silently take part of the connections. Binding once
/// without it first fails if anything already listens there.
fn check_address_free(addr: std::net::SocketAddr) -> Result<(), String> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| format!("binding {addr}: {e} (is another server listening there?)"))
}

fn prepare_data_dir(node: &NodeShared) -> Result<(), String> {
    for shard in 0..node.config.server.shards {
        let dir = node.shard_dir(shard);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    Ok(())
}
