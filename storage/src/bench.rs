//! Engine benchmarks in the style of RocksDB's `db_bench`: fillseq, fillrandom,
//! readrandom, seekrandom, overwrite — plus WAL append throughput next to the raw
//! O_DIRECT sequential write bandwidth of the same disk. Not tests: they report
//! figures. The suite runs them tiny on the simulated disk so they cannot rot;
//! `benches/benches/storage_engine.rs` runs them for real on a [`DmaDisk`]
//! (`scripts/compare-rocksdb.sh` puts them beside `db_bench`).
//!
//! Keys are 16 bytes (the key number in 16 decimal digits), values 100 bytes by
//! default, all written at one timestamp, so an overwrite replaces the version
//! (as in RocksDB) rather than adding one. Latency is measured per write call
//! (a batch) or per read.
//!
//! [`DmaDisk`]: crate::disk::DmaDisk

use crate::disk::{AlignedBuf, Disk, DiskFile, OpenMode};
use crate::engine::{Engine, EngineError, EngineMetrics, WriteBatch};
use crate::rng::SimRng;
use crate::sync::join_all;
use crate::timestamp::Timestamp;
use crate::wal::batch::WAL_CHUNK_BYTES;
use crate::wal::bench::{wal_throughput, BenchParams};
use crate::wal::{WalConfig, WalError};
use std::path::Path;
use std::time::{Duration, Instant};

/// The timestamp every benchmark write uses.
pub const BENCH_TS: Timestamp = Timestamp::new(1, 0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    FillSeq,
    FillRandom,
    ReadRandom,
    SeekRandom,
    Overwrite,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::ReadRandom,
        Workload::SeekRandom,
        Workload::Overwrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::ReadRandom => "readrandom",
            Workload::SeekRandom => "seekrandom",
            Workload::Overwrite => "overwrite",
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Workload::FillSeq | Workload::FillRandom | Workload::Overwrite
        )
    }
}

#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Keys in the key space (and writes per fill).
    pub keys: u64,
    /// Operations of a read workload (and of overwrite).
    pub ops: u64,
    pub value_bytes: usize,
    /// Writes per batch (one `write` call).
    pub batch: u64,
    /// Sync the WAL on every batch.
    pub sync: bool,
    pub seed: u64,
}

/// Latencies, kept whole and sorted for exact percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// The `p`-th percentile (0.0..=100.0).
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
        let rank = ((self.nanos.len() - 1) as f64 * p.clamp(0.0, 100.0) / 100.0).round() as usize;
        Duration::from_nanos(self.nanos[rank])
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub workload: Workload,
    pub ops: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Reads that found their key (reads only).
    pub found: u64,
    /// Engine counters accumulated during the workload.
    pub metrics: EngineMetrics,
}

impl Report {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// One line: name, ops/s, p50/p99/p99.9 in microseconds, and counters.
    pub fn line(&mut self) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let (p50, p99, p999) = (
            us(self.latencies.percentile(50.0)),
            us(self.latencies.percentile(99.0)),
            us(self.latencies.percentile(99.9)),
        );
        format!(
            "{:<11} {:>10.0} ops/s  p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>9.1} us  found {}  stalls {}  flushes {}  compactions {}",
            self.workload.name(),
            self.ops_per_sec(),
            p50,
            p99,
            p999,
            self.found,
            self.metrics.write_stalls,
            self.metrics.flushes,
            self.metrics.compactions,
        )
    }
}

/// The 16-byte key of key number `n`.
pub fn key(n: u64) -> [u8; 16] {
    let mut k = [b'0'; 16];
    let digits = format!("{:016}", n % 10_000_000_000_000_000);
    k.copy_from_slice(digits.as_bytes());
    k
}

fn delta(after: &EngineMetrics, before: &EngineMetrics) -> EngineMetrics {
    EngineMetrics {
        writes: after.writes - before.writes,
        write_groups: after.write_groups - before.write_groups,
        wal_syncs: after.wal_syncs - before.wal_syncs,
        write_stalls: after.write_stalls - before.write_stalls,
        flushes: after.flushes - before.flushes,
        flush_bytes: after.flush_bytes - before.flush_bytes,
        compactions: after.compactions - before.compactions,
        trivial_moves: after.trivial_moves - before.trivial_moves,
        compaction_bytes_read: after.compaction_bytes_read - before.compaction_bytes_read,
        compaction_bytes_written: after.compaction_bytes_written - before.compaction_bytes_written,
        compaction_versions_dropped: after.compaction_versions_dropped
            - before.compaction_versions_dropped,
        ingests: after.ingests - before.ingests,
        wal_spares: after.wal_spares - before.wal_spares,
        background_errors: after.background_errors - before.background_errors,
        block_cache_hits: after.block_cache_hits - before.block_cache_hits,
        block_cache_misses: after.block_cache_misses - before.block_cache_misses,
    }
}

/// Runs one workload against `engine`. Read workloads expect a filled key space.
/// Between operations it yields once every `yield_every` operations (0: never),
/// so a background task on the same executor gets its turns.
pub async fn run<D: Disk>(
    engine: &Engine<D>,
    workload: Workload,
    config: &BenchConfig,
    yield_every: u64,
) -> Result<Report, EngineError> {
    assert!(config.keys > 0 && config.batch > 0);
    let mut rng = SimRng::new(config.seed ^ workload as u64);
    let mut value = vec![0u8; config.value_bytes];
    rng.fill(&mut value);
    let before = engine.metrics();
    let mut latencies = Latencies::default();
    let mut found = 0;
    let total = match workload {
        Workload::FillSeq | Workload::FillRandom => config.keys,
        _ => config.ops,
    };
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        if yield_every > 0 && (done / config.batch.max(1)).is_multiple_of(yield_every) {
            crate::sync::yield_now().await;
        }
        if workload.writes() {
            let n = config.batch.min(total - done);
            let mut batch = WriteBatch::new();
            for i in 0..n {
                let k = match workload {
                    Workload::FillSeq => done + i,
                    _ => rng.below(config.keys),
                };
                batch.put(&key(k), BENCH_TS, &value);
            }
            let t = Instant::now();
            engine.write(batch, config.sync).await?;
            latencies.record(t.elapsed());
            done += n;
        } else {
            let k = key(rng.below(config.keys));
            let t = Instant::now();
            let hit = if workload == Workload::ReadRandom {
                engine.get(&k, Timestamp::MAX).await?.is_some()
            } else {
                let mut it = engine.iter(&k, None, Timestamp::MAX);
                it.seek(&k).await?;
                it.valid()
            };
            latencies.record(t.elapsed());
            found += u64::from(hit);
            done += 1;
        }
    }
    let elapsed = start.elapsed();
    Ok(Report {
        workload,
        ops: total,
        elapsed,
        latencies,
        found,
        metrics: delta(&engine.metrics(), &before),
    })
}

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
    /// WAL: records of `record_bytes`, synced every `records_per_sync`,
    /// segments recycled; payload bytes/s, median.
    pub wal_bytes_per_sec: f64,
    /// Per round: WAL over raw synced, to show the spread.
    pub ratios: Vec<f64>,
}

impl SequentialReport {
    /// WAL throughput over the raw bandwidth at the same sync cadence (of the
    /// medians).
    pub fn ratio(&self) -> f64 {
        self.wal_bytes_per_sec / self.raw_synced_bytes_per_sec.max(f64::MIN_POSITIVE)
    }
}

impl std::fmt::Display for SequentialReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: f64| b / (1 << 20) as f64;
        let (lo, hi) = self
            .ratios
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        write!(
            f,
            "medians of {} rounds: raw O_DIRECT {:.0} MiB/s unsynced, {:.0} MiB/s synced at that cadence; WAL {:.0} MiB/s = {:.0} % of raw synced (rounds {:.0}-{:.0} %)",
            self.rounds,
            mib(self.raw_bytes_per_sec),
            mib(self.raw_synced_bytes_per_sec),
            mib(self.wal_bytes_per_sec),
            self.ratio() * 100.0,
            lo * 100.0,
            hi * 100.0,
        )
    }
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    }
}

/// Writes `total_bytes` to a new file as the WAL does: rounds of `sync_bytes`,
/// each written as chunks of [`WAL_CHUNK_BYTES`] all in flight at once, with
/// an fdatasync after each round if `sync_each` and at the end. Returns bytes/s.
async fn raw_write<D: Disk>(
    disk: &D,
    path: &Path,
    total_bytes: u64,
    sync_bytes: u64,
    sync_each: bool,
) -> Result<f64, WalError> {
    let file = disk.open(path, OpenMode::CreateNew).await?;
    let chunks_per_round = (sync_bytes as usize).div_ceil(WAL_CHUNK_BYTES).max(1);
    let mut bufs = Vec::with_capacity(chunks_per_round);
    let mut rng = SimRng::new(1);
    for _ in 0..chunks_per_round {
        let mut buf = AlignedBuf::zeroed(WAL_CHUNK_BYTES);
        rng.fill(buf.as_mut_slice());
        bufs.push(buf);
    }
    let round_bytes = (chunks_per_round * WAL_CHUNK_BYTES) as u64;
    let start = Instant::now();
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
    let rate = at as f64 / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    drop(file);
    disk.remove(path).await?;
    Ok(rate)
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
    let (mut raw, mut raw_synced, mut wal, mut ratios) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let (raw_path, synced_path) = (dir.join("raw-bench"), dir.join("raw-synced"));
        raw.push(raw_write(&disk, &raw_path, total_bytes, sync_bytes, false).await?);
        raw_synced.push(raw_write(&disk, &synced_path, total_bytes, sync_bytes, true).await?);
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
        for name in disk.list(wal_dir).await? {
            disk.remove(&wal_dir.join(name)).await?;
        }
    }
    Ok(SequentialReport {
        rounds,
        raw_bytes_per_sec: median(&raw),
        raw_synced_bytes_per_sec: median(&raw_synced),
        wal_bytes_per_sec: median(&wal),
        ratios,
    })
}

/// Inputs for the micro-benchmarks (`benches/benches/storage_micro.rs` and
/// `storage_callgrind.rs`), shared so both measure the same thing.
pub mod fixtures {
    use super::key;
    use crate::memtable::{Memtable, Value, MEMTABLE_BYTES_DEFAULT};
    use crate::rng::SimRng;
    use crate::sst::block::{Block, BlockBuilder};
    use crate::sst::bloom::{key_hash, Bloom, BloomBuilder, BITS_PER_KEY_DEFAULT};
    use crate::sst::RESTART_INTERVAL_DEFAULT;
    use crate::timestamp::Timestamp;

    /// `n` distinct 16-byte keys in random order.
    pub fn random_keys(n: u64, seed: u64) -> Vec<[u8; 16]> {
        let mut rng = SimRng::new(seed);
        let mut nums: Vec<u64> = (0..n).collect();
        for i in (1..nums.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            nums.swap(i, j);
        }
        nums.into_iter().map(key).collect()
    }

    /// A memtable holding `keys` with 100-byte values.
    pub fn memtable_with(keys: &[[u8; 16]]) -> Memtable {
        let mut m = Memtable::new(MEMTABLE_BYTES_DEFAULT, 1);
        for k in keys {
            m.insert(k, Timestamp::new(1, 0), Value::Put(&[7; 100]))
                .expect("fits");
        }
        m
    }

    /// Sorted versions that fill one 4 KiB data block (16-byte keys, 100-byte values).
    pub fn block_versions() -> Vec<([u8; 16], Timestamp)> {
        (0..32)
            .map(|i| (key(i * 7), Timestamp::new(5, 0)))
            .collect()
    }

    pub fn encode_block(versions: &[([u8; 16], Timestamp)]) -> Vec<u8> {
        let mut b = BlockBuilder::new(RESTART_INTERVAL_DEFAULT);
        for (k, t) in versions {
            b.add(k, *t, Value::Put(&[7; 100]));
        }
        b.finish()
    }

    /// Decodes (validates) a block and walks every entry; returns the count.
    pub fn decode_block(bytes: Vec<u8>) -> usize {
        let block = std::rc::Rc::new(Block::decode(bytes).expect("a valid block"));
        let mut it = crate::sst::block::BlockIter::new(block);
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        n
    }

    /// A filter over `n` keys and the hashes of `n` other keys to probe.
    pub fn bloom_with(n: u64) -> (Bloom, Vec<u64>) {
        let mut b = BloomBuilder::new();
        for k in random_keys(n, 1) {
            b.add(&k);
        }
        let bloom = Bloom::decode(b.finish(BITS_PER_KEY_DEFAULT)).expect("a valid filter");
        let probes = (n..2 * n).map(|i| key_hash(&key(i))).collect();
        (bloom, probes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{SimDisk, SimDiskOptions};
    use crate::engine::EngineConfig;
    use futures_lite::future::block_on;

    #[test]
    fn workloads_run_tiny() {
        block_on(async {
            let disk = SimDisk::new(SimDiskOptions { seed: 1 });
            let mut config = EngineConfig {
                memtable_bytes: 64 * 1024,
                target_file_bytes: 64 * 1024,
                level1_bytes: 256 * 1024,
                ..EngineConfig::default()
            };
            config.wal.segment_bytes = 256 * 1024;
            let (engine, _) = Engine::open(disk.clone(), Path::new("/b"), config, |_| {})
                .await
                .unwrap();
            let bench = BenchConfig {
                keys: 2000,
                ops: 500,
                value_bytes: 100,
                batch: 4,
                sync: true,
                seed: 3,
            };
            for w in Workload::ALL {
                let mut r = run(&engine, w, &bench, 0).await.unwrap();
                assert!(r.ops > 0 && !r.latencies.is_empty());
                assert!(r.latencies.percentile(50.0) <= r.latencies.percentile(99.9));
                assert!(r.line().starts_with(w.name()));
                if w == Workload::ReadRandom {
                    assert_eq!(r.found, r.ops, "every key was filled");
                }
            }
            assert_eq!(Workload::parse("seekrandom"), Some(Workload::SeekRandom));
            assert_eq!(key(42), *b"0000000000000042");
            let seq = sequential(
                disk.clone(),
                Path::new("/s"),
                Path::new("/w"),
                4 << 20,
                64 * 1024,
                8,
                2,
            )
            .await
            .unwrap();
            assert!(seq.raw_bytes_per_sec > 0.0 && seq.ratio() > 0.0);
            assert_eq!(seq.ratios.len(), 2);
            assert!(disk.peek_names(Path::new("/w")).is_empty(), "emptied");
            assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
            assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        });
    }

    #[test]
    fn fixtures_are_sound() {
        let keys = fixtures::random_keys(100, 1);
        let m = fixtures::memtable_with(&keys);
        assert_eq!(m.len(), 100);
        let versions = fixtures::block_versions();
        let bytes = fixtures::encode_block(&versions);
        assert!(bytes.len() <= 4096, "one page: {}", bytes.len());
        assert_eq!(fixtures::decode_block(bytes), versions.len());
        let (bloom, probes) = fixtures::bloom_with(1000);
        let hits = probes.iter().filter(|&&h| bloom.may_contain(h)).count();
        assert!(hits < 50, "false positives {hits}");
    }
}
