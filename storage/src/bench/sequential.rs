//! WAL appends of large records beside the raw O_DIRECT sequential write
//! bandwidth of the same disk, in the same run.

use super::median;
use crate::disk::{AlignedBuf, Disk, DiskFile, OpenMode, BLOCK_SIZE};
use crate::rng::SimRng;
use crate::sync::join_all;
use crate::wal::batch::WAL_CHUNK_BYTES;
use crate::wal::bench::{wal_throughput, BenchParams};
use crate::wal::{create_segment_file, WalConfig, WalError};
use std::path::Path;
use std::time::Instant;

/// WAL appends of large records beside raw O_DIRECT writes of the same disk:
/// medians over rounds, the three measurements interleaved within each round
/// so that a change in the device's state (its cache, other tenants) hits
/// them alike.
#[derive(Clone, Debug)]
pub struct SequentialReport {
    pub rounds: usize,
    /// Raw: the same writes as the WAL's (chunks of [`WAL_CHUNK_BYTES`], a
    /// sync's worth in flight at once) to a fresh file, one fdatasync at the
    /// end; bytes/s, median.
    pub raw_bytes_per_sec: f64,
    /// Raw with an fdatasync after every sync's worth: the durable bandwidth
    /// of the disk at the WAL's cadence; bytes/s, median.
    pub raw_synced_bytes_per_sec: f64,
    /// As `raw_synced`, but over a file written once before (untimed): no
    /// block allocation or unwritten-extent conversion, which is how the WAL
    /// writes its recycled, zero-filled segments — the device's best durable
    /// sequential bandwidth; bytes/s, median.
    pub raw_overwrite_bytes_per_sec: f64,
    /// WAL: records of `record_bytes`, synced every `records_per_sync`,
    /// segments recycled; payload bytes/s, median.
    pub wal_bytes_per_sec: f64,
    /// Per round: WAL over raw synced, to show the spread.
    pub ratios: Vec<f64>,
    /// Per round: WAL over raw overwrite.
    pub overwrite_ratios: Vec<f64>,
}

impl SequentialReport {
    /// WAL throughput over the raw bandwidth at the same sync cadence (of the
    /// medians).
    pub fn ratio(&self) -> f64 {
        self.wal_bytes_per_sec / self.raw_synced_bytes_per_sec.max(f64::MIN_POSITIVE)
    }

    /// WAL throughput over the raw overwrite bandwidth (of the medians).
    pub fn overwrite_ratio(&self) -> f64 {
        self.wal_bytes_per_sec / self.raw_overwrite_bytes_per_sec.max(f64::MIN_POSITIVE)
    }
}

/// The lowest and highest of `v`.
fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)))
}

impl std::fmt::Display for SequentialReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: f64| b / (1 << 20) as f64;
        let (lo, hi) = spread(&self.ratios);
        let (olo, ohi) = spread(&self.overwrite_ratios);
        write!(
            f,
            "medians of {} rounds: raw O_DIRECT {:.0} MiB/s unsynced, {:.0} MiB/s synced at that cadence, {:.0} MiB/s synced overwriting written blocks; WAL {:.0} MiB/s = {:.0} % of raw synced (rounds {:.0}-{:.0} %), {:.0} % of raw overwrite (rounds {:.0}-{:.0} %)",
            self.rounds,
            mib(self.raw_bytes_per_sec),
            mib(self.raw_synced_bytes_per_sec),
            mib(self.raw_overwrite_bytes_per_sec),
            mib(self.wal_bytes_per_sec),
            self.ratio() * 100.0,
            lo * 100.0,
            hi * 100.0,
            self.overwrite_ratio() * 100.0,
            olo * 100.0,
            ohi * 100.0,
        )
    }
}

/// How [`raw_write`] treats its file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    /// A new file, one fdatasync at the end.
    Unsynced,
    /// A new file, an fdatasync after every sync's worth.
    Synced,
    /// A file written whole once first (untimed), then written again, timed,
    /// with an fdatasync after every sync's worth.
    Overwrite,
}

/// Writes `total_bytes` to a file as the WAL does: rounds of `sync_bytes`,
/// each written as chunks of [`WAL_CHUNK_BYTES`] all in flight at once, with
/// an fdatasync after each round unless `Raw::Unsynced`, and at the end.
/// Returns bytes/s of the timed pass.
async fn raw_write<D: Disk>(
    disk: &D,
    path: &Path,
    total_bytes: u64,
    sync_bytes: u64,
    mode: Raw,
) -> Result<f64, WalError> {
    let file = disk.open(path, OpenMode::CreateNew).await?;
    if mode == Raw::Overwrite {
        write_rounds(&file, total_bytes, sync_bytes, false).await?;
    }
    let start = Instant::now();
    let written = write_rounds(&file, total_bytes, sync_bytes, mode != Raw::Unsynced).await?;
    let rate = written as f64 / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    drop(file);
    disk.remove(path).await?;
    Ok(rate)
}

/// One pass of [`raw_write`] from offset 0; returns the bytes written.
async fn write_rounds<F: DiskFile>(
    file: &F,
    total_bytes: u64,
    sync_bytes: u64,
    sync_each: bool,
) -> Result<u64, WalError> {
    let chunks_per_round = (sync_bytes as usize).div_ceil(WAL_CHUNK_BYTES).max(1);
    let mut bufs = Vec::with_capacity(chunks_per_round);
    let mut rng = SimRng::new(1);
    for _ in 0..chunks_per_round {
        let mut buf = AlignedBuf::zeroed(WAL_CHUNK_BYTES);
        rng.fill(buf.as_mut_slice());
        bufs.push(buf);
    }
    let round_bytes = (chunks_per_round * WAL_CHUNK_BYTES) as u64;
    let mut at = 0;
    while at < total_bytes {
        let writes = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| file.write_at(at + (i * WAL_CHUNK_BYTES) as u64, b));
        for r in join_all(writes).await {
            r?;
        }
        at += round_bytes;
        if sync_each {
            file.sync().await?;
        }
    }
    file.sync().await?;
    Ok(at)
}

/// Measures, `rounds` times, raw sequential write bandwidth (files
/// `raw-*` in `dir`) unsynced and at the WAL's sync cadence, and WAL append
/// throughput (a fresh log in `wal_dir`, which must exist and be empty; it is
/// emptied after each round) over `total_bytes` each; reports the medians.
pub async fn sequential<D: Disk>(
    disk: D,
    dir: &Path,
    wal_dir: &Path,
    total_bytes: u64,
    record_bytes: usize,
    records_per_sync: u64,
    rounds: usize,
) -> Result<SequentialReport, WalError> {
    assert!(rounds > 0);
    let sync_bytes = record_bytes as u64 * records_per_sync;
    let (mut raw, mut raw_synced, mut raw_over, mut wal) = (vec![], vec![], vec![], vec![]);
    let (mut ratios, mut overwrite_ratios) = (vec![], vec![]);
    for round in 0..rounds {
        let path = dir.join("raw-bench");
        raw.push(raw_write(&disk, &path, total_bytes, sync_bytes, Raw::Unsynced).await?);
        raw_synced.push(raw_write(&disk, &path, total_bytes, sync_bytes, Raw::Synced).await?);
        raw_over.push(raw_write(&disk, &path, total_bytes, sync_bytes, Raw::Overwrite).await?);
        let records = total_bytes / record_bytes as u64;
        let config = WalConfig {
            segment_bytes: 64 * 1024 * 1024,
            batch_bytes_max: (sync_bytes as usize + (2 << 20)).max(8 * 1024 * 1024),
            ..WalConfig::default()
        };
        let params = BenchParams {
            records,
            payload_bytes: record_bytes,
            records_per_sync,
            // Truncate behind every sync: segments recycle (the steady state).
            truncate_every_syncs: 1,
            prepare_spares: true,
        };
        let report = wal_throughput(disk.clone(), wal_dir, config, &params).await?;
        wal.push(report.records_per_sec() * record_bytes as f64);
        ratios.push(wal[round] / raw_synced[round].max(f64::MIN_POSITIVE));
        overwrite_ratios.push(wal[round] / raw_over[round].max(f64::MIN_POSITIVE));
        for name in disk.list(wal_dir).await? {
            disk.remove(&wal_dir.join(name)).await?;
        }
    }
    Ok(SequentialReport {
        rounds,
        raw_bytes_per_sec: median(&raw),
        raw_synced_bytes_per_sec: median(&raw_synced),
        raw_overwrite_bytes_per_sec: median(&raw_over),
        wal_bytes_per_sec: median(&wal),
        ratios,
        overwrite_ratios,
    })
}

/// The device's own synced-write latency, the floor under every synced
/// engine write: `writes` times, a 4 KiB write at the next block of a
/// preallocated, zero-filled file (as the WAL writes its segments) and an
/// fdatasync. The file (`sync-floor` in `dir`) is removed afterwards.
pub async fn sync_floor<D: Disk>(
    disk: &D,
    dir: &Path,
    writes: u64,
) -> Result<super::Latencies, WalError> {
    let path = dir.join("sync-floor");
    let config = WalConfig {
        segment_bytes: (writes.max(2) * BLOCK_SIZE as u64).next_multiple_of(1 << 20),
        ..WalConfig::default()
    };
    let file = create_segment_file(disk, &path, &config).await?;
    let mut block = AlignedBuf::zeroed(BLOCK_SIZE);
    SimRng::new(2).fill(block.as_mut_slice());
    let mut latencies = super::Latencies::default();
    for i in 0..writes {
        let t = Instant::now();
        file.write_at(i * BLOCK_SIZE as u64, &block).await?;
        file.sync().await?;
        latencies.record(t.elapsed());
    }
    drop(file);
    disk.remove(&path).await?;
    Ok(latencies)
}
