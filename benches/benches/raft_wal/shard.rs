//! One shard as the node runs it: a glommio executor with the node's task
//! queues, the node's `ShardStorage` (the LSM on O_DIRECT files, in Raft
//! mode, and its Raft host), and its two tasks. Each run gets a fresh
//! executor and a fresh directory, so no run inherits another's WAL,
//! memtable or timers, and the executor thread's CPU counters start at zero.

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};
use teller_kv::replication::Replication;
use teller_node::config::StorageConfig;
use teller_node::kv_client::GlommioEnv;
use teller_node::replica::ShardStorage;

/// Locked memory for glommio's I/O buffers, set explicitly so that the
/// common 8 MiB `RLIMIT_MEMLOCK` is enough (as the node does).
const IO_MEMORY_BYTES: usize = 4 << 20;
/// The shard's Raft replica id (shard 0 of a node).
const REPLICA_ID: u64 = 1;
/// Ranges created concurrently: their elections share passes and syncs.
const CREATE_CONCURRENCY: usize = 512;

/// Runs `work` on a new shard whose storage lives in `dir` (created fresh,
/// removed afterwards), then closes the storage as the node's shutdown
/// does.
pub fn run_on_shard<T, F, Fut>(dir: PathBuf, pin: Option<usize>, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Rc<ShardStorage>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, String>>,
{
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let placement = pin.map_or(Placement::Unbound, Placement::Fixed);
    let shard_dir = dir.clone();
    let result = LocalExecutorBuilder::new(placement)
        .io_memory(IO_MEMORY_BYTES)
        .name("raft-wal-bench")
        .spawn(move || async move {
            let executor = glommio::executor();
            // The node's queues (engine/node/src/shard.rs): the Raft loop in
            // the latency queue, flushes and compactions in the background.
            let writes = executor.create_task_queue(
                Shares::Static(1000),
                Latency::Matters(Duration::from_millis(1)),
                "latency",
            );
            let background = executor.create_task_queue(
                Shares::Static(100),
                Latency::NotImportant,
                "background",
            );
            let settings = StorageConfig::default();
            let storage =
                ShardStorage::open(&shard_dir, &settings, REPLICA_ID, Rc::new(GlommioEnv)).await?;
            storage.spawn_tasks(writes, background)?;
            let storage = Rc::new(storage);
            let result = work(storage.clone()).await;
            storage.close().await;
            result
        })
        .map_err(|e| format!("spawning the shard's executor: {e}"))?
        .join()
        .map_err(|e| format!("the shard's executor failed: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Creates ranges `1..=groups` through the node's replication path
/// (`Replication::create_range`: a flush, a new single-voter group, its
/// election); returns how long it took.
pub async fn create_groups(storage: &ShardStorage, groups: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let mut next = 1;
    while next <= groups {
        let end = groups.min(next + CREATE_CONCURRENCY as u64 - 1);
        let tasks: Vec<_> = (next..=end)
            .map(|range| {
                let raft = storage.raft.clone();
                glommio::spawn_local(async move {
                    raft.create_range(range)
                        .await
                        .map_err(|e| format!("creating range {range}: {e}"))
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        next = end + 1;
    }
    Ok(started.elapsed())
}
