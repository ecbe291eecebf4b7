//! Idle cost: many ranges that took one write each, then nothing.
//!
//! A single-voter group quiesces at the first tick after its last write is
//! committed, durable and applied; the host ticks only groups that are not
//! quiesced, and the shard's Raft loop sleeps on its wake-up signal alone
//! when no group is active and nothing is queued or unsynced. So after a
//! short settling time an idle shard should do no Raft work at all: no WAL
//! appends, no syncs, no applied entries, and its thread should not be
//! scheduled except for the benchmark's own timer at the end of the window.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use teller_kv::replication::Replication;
use teller_node::replica::ShardStorage;

use crate::cpu::{self, CpuSample};
use crate::load::write;
use crate::shard::create_groups;

/// Writes in flight while touching every range before the idle window.
const TOUCH_CONCURRENCY: u64 = 512;

#[derive(Clone, Copy, Debug)]
pub struct IdleConfig {
    pub groups: u64,
    /// Wall time between the last write and the start of the window.
    pub settle: Duration,
    pub idle: Duration,
    pub value_bytes: usize,
}

pub struct IdleReport {
    pub config: IdleConfig,
    pub create: Duration,
    /// The window's actual length.
    pub window: Duration,
    pub cpu: CpuSample,
    pub wal_appends: u64,
    pub wal_syncs: u64,
    /// Raft entries applied during the window (over all ranges).
    pub applied: u64,
    /// 1-minute load average at the end of the window.
    pub load_average: f64,
}

impl IdleReport {
    /// Shard-thread CPU per second of wall time, in microseconds.
    pub fn thread_us_per_sec(&self) -> f64 {
        self.cpu.thread_ns as f64 / 1e3 / self.window.as_secs_f64()
    }

    /// Whole-process CPU per second of wall time, in microseconds.
    pub fn process_us_per_sec(&self) -> f64 {
        self.cpu.process.as_secs_f64() * 1e6 / self.window.as_secs_f64()
    }
}

/// Creates the ranges, writes once to each, lets them settle, and measures
/// an idle window.
pub async fn run_idle(storage: Rc<ShardStorage>, config: IdleConfig) -> Result<IdleReport, String> {
    let create = create_groups(&storage, config.groups).await?;
    touch_every_range(&storage, config).await?;
    glommio::timer::sleep(config.settle).await;
    let applied_before = storage.raft.applied_entries();
    let start = (Instant::now(), storage.lsm.metrics(), CpuSample::now()?);
    glommio::timer::sleep(config.idle).await;
    let end = (Instant::now(), storage.lsm.metrics(), CpuSample::now()?);
    Ok(IdleReport {
        config,
        create,
        window: end.0 - start.0,
        cpu: end.2.since(&start.2),
        wal_appends: end.1.write_groups - start.1.write_groups,
        wal_syncs: end.1.wal_syncs - start.1.wal_syncs,
        applied: storage.raft.applied_entries() - applied_before,
        load_average: cpu::load_average()?,
    })
}

/// One write to every range, so that every group has led, appended,
/// committed and applied an entry before it goes quiet.
async fn touch_every_range(storage: &ShardStorage, config: IdleConfig) -> Result<(), String> {
    let value = Bytes::from(vec![0xa5; config.value_bytes]);
    let mut next = 1;
    while next <= config.groups {
        let end = config.groups.min(next + TOUCH_CONCURRENCY - 1);
        let tasks: Vec<_> = (next..=end)
            .map(|range| {
                let raft = storage.raft.clone();
                let batch = write(range, 0, 0, &value);
                glommio::spawn_local(async move {
                    raft.replicate(range, batch)
                        .await
                        .map_err(|e| format!("touching range {range}: {e}"))
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        next = end + 1;
    }
    Ok(())
}
