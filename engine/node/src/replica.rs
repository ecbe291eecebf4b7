//! A shard's durable storage and the Raft host of its ranges, on the real
//! disk.
//!
//! Each shard owns one LSM (`teller_storage::Engine`) on glommio DMA files
//! (O_DIRECT through io_uring) in `<data_dir>/shard-<i>/`, opened in Raft
//! mode: its WAL is the Raft log of every range the shard holds. Opening
//! recovers in this order:
//! 1. the LSM (manifest, tables, WAL), handing every Raft record in the WAL
//!    to the recovery visitor;
//! 2. the Raft host ([`RaftReplication::open`]): a single-voter group per
//!    range, elected at once, re-applying every committed entry after the
//!    LSM's persisted applied index — so every acknowledged write is back
//!    before the shard serves anything.
//!
//! Two tasks run for the life of the shard: the Raft loop (proposals,
//! group commit, apply) in the shard's latency-sensitive queue, and the
//! LSM's flushes and compactions in its background queue, whose smaller
//! share bounds what they take from requests.
//!
//! No write reaches the LSM except through a range's Raft log: there is no
//! second, faster path to keep consistent with the first.

use std::path::Path;
use std::rc::Rc;

use glommio::TaskQueueHandle;
use teller_kv::engine::lsm::LsmEngine;
use teller_kv::env::Env;
use teller_kv::replication::raft::{RaftConfig, RaftReplication};
use teller_kv::replication::recovery::RaftRecovery;
use teller_storage::disk::{DmaDisk, FaultSwitch};
use teller_storage::wal::WalConfig;
use teller_storage::{Engine as Lsm, EngineConfig};

use crate::config::StorageConfig;

/// Test-only: names a file whose contents (`eio`, `enospc`) make every shard's
/// disk writes fail while it says so (see `teller_storage::disk::FaultSwitch`;
/// `engine/node/tests/storage_faults.rs`). Never set in production.
pub const DISK_FAULT_FILE_ENV: &str = "TELLER_TEST_DISK_FAULT_FILE";

/// The shard's disk: the real one, with the test-only fault switch if the
/// environment names one.
fn shard_disk(dir: &Path) -> DmaDisk {
    match std::env::var_os(DISK_FAULT_FILE_ENV) {
        Some(path) => {
            tracing::warn!(
                dir = %dir.display(),
                switch = %Path::new(&path).display(),
                "test-only disk fault injection is armed"
            );
            DmaDisk::with_fault_switch(FaultSwitch::new(path.into()))
        }
        None => DmaDisk::new(),
    }
}

/// One shard's LSM, its MVCC view, and the Raft host writing to it.
pub struct ShardStorage {
    pub lsm: Rc<Lsm<DmaDisk>>,
    pub engine: Rc<LsmEngine<DmaDisk>>,
    pub raft: Rc<RaftReplication<DmaDisk>>,
}

/// The LSM configuration of a node shard.
pub fn engine_config(settings: &StorageConfig, seed: u64) -> EngineConfig {
    EngineConfig {
        wal: WalConfig {
            segment_bytes: settings.wal_segment_bytes,
            ..WalConfig::default()
        },
        memtable_bytes: settings.memtable_bytes,
        block_cache_bytes: settings.block_cache_bytes,
        raft_log: true,
        seed,
        ..EngineConfig::default()
    }
}

impl ShardStorage {
    /// Opens (or creates) the shard's storage in `dir` and replays its Raft
    /// logs. `replica_id` is the shard's id in its Raft groups (non-zero).
    pub async fn open(
        dir: &Path,
        settings: &StorageConfig,
        replica_id: u64,
        env: Rc<dyn Env>,
    ) -> Result<ShardStorage, String> {
        // The polled-I/O probe must precede every other file of the device
        // (idempotent: the node's start-up may have run it already).
        teller_storage::disk::probe_device(dir)
            .await
            .map_err(|e| format!("probing the data device at {}: {e}", dir.display()))?;
        let config = engine_config(settings, env.random_u64());
        let mut recovery = RaftRecovery::new();
        let (lsm, recovered) = Lsm::open(shard_disk(dir), dir, config, |r| recovery.visit(r))
            .await
            .map_err(|e| format!("opening the storage engine in {}: {e}", dir.display()))?;
        let lsm = Rc::new(lsm);
        let log = recovery
            .finish(&recovered.applied)
            .map_err(|e| format!("recovering the Raft logs in {}: {e}", dir.display()))?;
        let ranges = log.ranges.len();
        let records = log.records;
        let mut raft_config = RaftConfig::new(replica_id, env.random_u64());
        raft_config.tick = settings.raft_tick();
        let raft = RaftReplication::open(lsm.clone(), log, env, raft_config)
            .await
            .map_err(|e| format!("replaying the Raft logs in {}: {e}", dir.display()))?;
        tracing::info!(
            dir = %dir.display(),
            ranges,
            raft_records = records,
            replayed_entries = raft.applied_entries(),
            "shard storage recovered"
        );
        let engine = Rc::new(LsmEngine::raft(lsm.clone()));
        Ok(ShardStorage { lsm, engine, raft })
    }

    /// Starts the Raft loop in `writes` and the LSM's background work in
    /// `background`.
    pub fn spawn_tasks(
        &self,
        writes: TaskQueueHandle,
        background: TaskQueueHandle,
    ) -> Result<(), String> {
        let raft = self.raft.clone();
        glommio::spawn_local_into(async move { raft.run().await }, writes)
            .map_err(|e| format!("spawning the Raft loop: {e}"))?
            .detach();
        let lsm = self.lsm.clone();
        glommio::spawn_local_into(async move { lsm.run_background().await }, background)
            .map_err(|e| format!("spawning the storage background task: {e}"))?
            .detach();
        Ok(())
    }

    /// Stops taking writes and flushes the memtables, so that the next
    /// start has little to replay. Acknowledged writes are durable without
    /// it (a crash just replays more).
    pub async fn close(&self) {
        self.raft.stop();
        if self.lsm.read_only_reason().is_none() {
            if let Err(e) = self.lsm.flush().await {
                tracing::warn!(error = %e, "flushing the storage engine at shutdown");
            }
        }
    }
}
