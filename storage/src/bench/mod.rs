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

pub mod driver;
pub mod fixtures;
mod sequential;
pub use sequential::{sequential, sync_floor, SequentialReport};

use crate::disk::Disk;
use crate::engine::{Engine, EngineError, EngineMetrics, WriteBatch};
use crate::rng::SimRng;
use crate::timestamp::Timestamp;
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
    /// Keys in the key space, and writes per write workload unless `writes`
    /// says otherwise.
    pub keys: u64,
    /// Writes per write workload (0: `keys`), as db_bench's `--writes`: for
    /// synced fills, which cannot write 5 M keys one fdatasync at a time in
    /// reasonable time, over the same key space.
    pub writes: u64,
    /// Operations of a read workload.
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

    /// How many latencies exceed `d`.
    pub fn count_over(&self, d: Duration) -> usize {
        let limit = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.iter().filter(|&&n| n > limit).count()
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
    /// Write latencies by what else happened during the write.
    pub breakdown: Breakdown,
}

/// What a write shared its time with, for the latency breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// It stalled: too many immutable memtables or L0 tables (backpressure).
    Stall,
    /// Its group began a WAL segment (rename or creation, directory fsync).
    WalRoll,
    /// A flush or compaction ran at its start or end, or finished during it.
    Background,
    /// Nothing of the above: the device and the commit path alone.
    Quiet,
}

impl Cause {
    pub const ALL: [Cause; 4] = [
        Cause::Stall,
        Cause::WalRoll,
        Cause::Background,
        Cause::Quiet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cause::Stall => "stall",
            Cause::WalRoll => "wal roll",
            Cause::Background => "flush/compaction",
            Cause::Quiet => "quiet",
        }
    }

    fn of(before: &EngineMetrics, after: &EngineMetrics, busy: bool) -> Cause {
        if after.write_stalls > before.write_stalls {
            Cause::Stall
        } else if after.wal_rolls > before.wal_rolls {
            Cause::WalRoll
        } else if busy
            || after.flushes > before.flushes
            || after.compactions + after.trivial_moves > before.compactions + before.trivial_moves
        {
            Cause::Background
        } else {
            Cause::Quiet
        }
    }
}

/// Write latencies per [`Cause`].
#[derive(Clone, Debug, Default)]
pub struct Breakdown {
    by_cause: [Latencies; 4],
}

impl Breakdown {
    pub fn record(&mut self, cause: Cause, d: Duration) {
        self.by_cause[cause as usize].record(d);
    }

    pub fn latencies(&mut self, cause: Cause) -> &mut Latencies {
        &mut self.by_cause[cause as usize]
    }

    /// One line per cause that occurred: count, p50/p99/p99.9/max (µs), and
    /// how many of the writes over 1 ms it holds.
    pub fn lines(&mut self) -> Vec<String> {
        let slow_total: usize = self.by_cause.iter().map(|l| l.count_over(MS)).sum();
        let mut out = Vec::new();
        for cause in Cause::ALL {
            let l = self.latencies(cause);
            if l.is_empty() {
                continue;
            }
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            out.push(format!(
                "  {:<17} {:>9} writes  p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>9.1} us  max {:>9.1} us  over 1 ms: {} of {}",
                cause.name(),
                l.len(),
                us(l.percentile(50.0)),
                us(l.percentile(99.0)),
                us(l.percentile(99.9)),
                us(l.percentile(100.0)),
                l.count_over(MS),
                slow_total,
            ));
        }
        out
    }
}

const MS: Duration = Duration::from_millis(1);

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
        wal_rolls: after.wal_rolls - before.wal_rolls,
        wal_segments_created_inline: after.wal_segments_created_inline
            - before.wal_segments_created_inline,
        background_errors: after.background_errors - before.background_errors,
        block_cache_hits: after.block_cache_hits - before.block_cache_hits,
        block_cache_misses: after.block_cache_misses - before.block_cache_misses,
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
    let mut breakdown = Breakdown::default();
    let mut found = 0;
    // As db_bench: every write workload writes `keys` entries (or
    // `writes`); reads do `ops`.
    let total = if workload.writes() {
        if config.writes > 0 {
            config.writes
        } else {
            config.keys
        }
    } else {
        config.ops
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
            let (m0, busy0) = (engine.metrics(), engine.background_busy());
            let t = Instant::now();
            engine.write(batch, config.sync).await?;
            let took = t.elapsed();
            latencies.record(took);
            let busy = busy0 || engine.background_busy();
            breakdown.record(Cause::of(&m0, &engine.metrics(), busy), took);
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
        breakdown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{SimDisk, SimDiskOptions};
    use crate::engine::EngineConfig;
    use futures_lite::future::block_on;
    use std::path::Path;

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
                writes: 0,
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
            assert!(seq.raw_overwrite_bytes_per_sec > 0.0 && seq.overwrite_ratio() > 0.0);
            assert_eq!(seq.ratios.len(), 2);
            assert_eq!(seq.overwrite_ratios.len(), 2);
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
