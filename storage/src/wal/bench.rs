//! A WAL throughput micro-benchmark. Not a test: it reports figures. The test suite
//! runs it with tiny inputs so that it cannot rot; run it for real on a [`DmaDisk`]
//! inside a glommio executor with production-sized inputs.
//!
//! [`DmaDisk`]: crate::disk::DmaDisk

use super::{Lsn, RecordMeta, Wal, WalConfig, WalError};
use crate::disk::Disk;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BenchParams {
    /// Records appended in total.
    pub records: u64,
    /// Payload bytes per record.
    pub payload_bytes: usize,
    /// Records appended per sync (the group-commit batch).
    pub records_per_sync: u64,
    /// Truncate the log behind every this many syncs, so segments recycle.
    pub truncate_every_syncs: u64,
    /// Prepare the next segment file outside the timed sync (as the shard's
    /// background queue would) instead of inside the sync that rolls.
    pub prepare_spares: bool,
}

#[derive(Clone, Debug)]
pub struct BenchReport {
    pub records: u64,
    pub syncs: u64,
    pub elapsed: Duration,
    /// Time spent in `append` (encoding: checksum and copy into the batch).
    pub append_time: Duration,
    /// Sync latencies, sorted ascending.
    pub sync_latencies: Vec<Duration>,
}

impl BenchReport {
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The `p`-th percentile (0..=100) sync latency.
    pub fn sync_percentile(&self, p: u64) -> Duration {
        let n = self.sync_latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let i = ((n - 1) as u64 * p.min(100) / 100) as usize;
        self.sync_latencies[i]
    }
}

fn wal_segment_half<D: Disk>(wal: &Wal<D>) -> u64 {
    wal.config.segment_bytes / 2
}

/// Appends and syncs `params.records` records to a fresh log in `dir`.
pub async fn wal_throughput<D: Disk>(
    disk: D,
    dir: &Path,
    config: WalConfig,
    params: &BenchParams,
) -> Result<BenchReport, WalError> {
    assert!(params.records_per_sync > 0 && params.truncate_every_syncs > 0);
    let (mut wal, _) = Wal::recover(disk, dir, config, |_| {}).await?;
    if params.prepare_spares {
        // The steady state: the next segment's file is ready (recycled or
        // spare) before the log reaches it.
        wal.prepare_spare().await?;
    }
    let payload = vec![0x5A; params.payload_bytes];
    let mut sync_latencies = Vec::new();
    let mut append_time = Duration::ZERO;
    let start = Instant::now();
    let mut appended = 0;
    while appended < params.records {
        let batch = params.records_per_sync.min(params.records - appended);
        let t = Instant::now();
        for i in 0..batch {
            let meta = RecordMeta {
                kind: 1,
                range_id: i % 16,
                term: 1,
                index: appended + i,
            };
            wal.append(meta, &payload)?;
            wal.write_ahead().await?;
        }
        append_time += t.elapsed();
        appended += batch;
        if params.prepare_spares && wal.active_segment_free_bytes() < wal_segment_half(&wal) {
            wal.prepare_spare().await?;
        }
        let t = Instant::now();
        let durable = wal.sync().await?;
        sync_latencies.push(t.elapsed());
        if (sync_latencies.len() as u64).is_multiple_of(params.truncate_every_syncs) {
            wal.truncate_before(Lsn(durable.0 + 1)).await?;
        }
    }
    let elapsed = start.elapsed();
    sync_latencies.sort();
    let syncs = sync_latencies.len() as u64;
    Ok(BenchReport {
        records: appended,
        syncs,
        elapsed,
        append_time,
        sync_latencies,
    })
}
