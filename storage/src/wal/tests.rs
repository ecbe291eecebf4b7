//! WAL tests: round trips, segment recycling, the seeded crash test, corruption
//! detection, fault injection, and a run on the real disk.

use super::bench::{wal_throughput, BenchParams};
use super::format::HEADER_BYTES;
use super::*;
use crate::disk::{Fault, SimDisk, SimDiskOptions};
use crate::rng::SimRng;
use futures_lite::future::block_on;
use std::collections::BTreeMap;

const DIR: &str = "/wal";
/// Seeded crash runs in the default test suite.
const CRASH_SEEDS: u64 = 2000;

type Owned = (Lsn, RecordMeta, Vec<u8>);

fn small_config(segment_blocks: u64) -> WalConfig {
    WalConfig {
        segment_bytes: segment_blocks * BLOCK_SIZE as u64,
        batch_bytes_max: 64 * 1024,
        segments_free_max: 1,
        zero_fill: true,
    }
}

fn meta(i: u64) -> RecordMeta {
    RecordMeta {
        kind: 1 + (i % 3) as u8,
        range_id: i % 5,
        term: 1 + i / 7,
        index: i,
    }
}

fn payload(rng: &mut SimRng) -> Vec<u8> {
    let len = if rng.chance(10) {
        rng.range(500, 3000)
    } else {
        rng.below(200)
    };
    let mut p = vec![0; len as usize];
    rng.fill(&mut p);
    p
}

async fn recover(
    disk: &SimDisk,
    config: &WalConfig,
) -> Result<(Wal<SimDisk>, Vec<Owned>), WalError> {
    recover_with_report(disk, config)
        .await
        .map(|(wal, records, _)| (wal, records))
}

async fn recover_with_report(
    disk: &SimDisk,
    config: &WalConfig,
) -> Result<(Wal<SimDisk>, Vec<Owned>, RecoveryReport), WalError> {
    let mut records = Vec::new();
    let (wal, report) = Wal::recover(disk.clone(), Path::new(DIR), config.clone(), |r| {
        records.push((r.lsn, r.meta, r.payload.to_vec()))
    })
    .await?;
    assert_eq!(report.records, records.len() as u64);
    Ok((wal, records, report))
}

fn segment_files(disk: &SimDisk) -> Vec<String> {
    disk.peek_names(Path::new(DIR))
}

#[test]
fn append_sync_recover_round_trip() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 1 });
        let config = small_config(4);
        let (mut wal, records) = recover(&disk, &config).await.unwrap();
        assert!(records.is_empty());
        assert_eq!(wal.next_lsn(), Lsn(1));
        let mut rng = SimRng::new(1);
        let mut written = Vec::new();
        for i in 0..200 {
            let p = payload(&mut rng);
            let lsn = wal.append(meta(i), &p).unwrap();
            written.push((lsn, meta(i), p));
            if i % 7 == 0 {
                assert_eq!(wal.sync().await.unwrap(), lsn);
            }
        }
        assert!(wal.has_unsynced());
        let last = wal.sync().await.unwrap();
        assert!(!wal.has_unsynced());
        assert_eq!(last, Lsn(200));
        assert!(wal.segment_count() > 3, "small segments roll");
        drop(wal);
        disk.crash();
        let (wal, records) = recover(&disk, &config).await.unwrap();
        assert_eq!(records, written);
        assert_eq!(wal.next_lsn(), Lsn(201));
    });
}

#[test]
fn truncation_recycles_segments() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 2 });
        let config = small_config(2);
        let (mut wal, _) = recover(&disk, &config).await.unwrap();
        for i in 0..400 {
            wal.append(meta(i), &[7; 300]).unwrap();
            let durable = wal.sync().await.unwrap();
            wal.truncate_before(Lsn(durable.0 + 1)).await.unwrap();
            assert!(wal.segment_count() <= 2, "segments {}", wal.segment_count());
        }
        // Live segments plus at most `segments_free_max` recyclable ones.
        assert!(
            segment_files(&disk).len() <= 3,
            "{:?}",
            segment_files(&disk)
        );
        drop(wal);
        disk.crash();
        let (wal, records) = recover(&disk, &config).await.unwrap();
        assert_eq!(records.last().map(|r| r.0), Some(Lsn(400)));
        let first = records[0].0;
        assert!(records
            .iter()
            .enumerate()
            .all(|(i, r)| r.0 == Lsn(first.0 + i as u64)));
        assert_eq!(wal.next_lsn(), Lsn(401));
    });
}

#[test]
fn spares_are_made_ahead_and_adopted_by_recovery() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 8 });
        let config = small_config(2);
        let (mut wal, _) = recover(&disk, &config).await.unwrap();
        wal.prepare_spare().await.unwrap();
        let spare = |d: &SimDisk| {
            segment_files(d)
                .iter()
                .filter(|n| n.contains("spare"))
                .count()
        };
        assert_eq!(spare(&disk), 1);
        wal.prepare_spare().await.unwrap();
        assert_eq!(spare(&disk), 1, "one ready file is enough");
        let segments = wal.segment_count();
        while wal.segment_count() == segments {
            wal.append(meta(0), &[9; 1000]).unwrap();
            wal.sync().await.unwrap();
        }
        assert_eq!(spare(&disk), 0, "the roll renamed the spare");
        wal.prepare_spare().await.unwrap();
        drop(wal);
        disk.crash();
        let (mut wal, _) = recover(&disk, &config).await.unwrap();
        // The spare (if its creation survived the crash) became the fresh segment.
        assert_eq!(spare(&disk), 0);
        wal.append(meta(1), &[1]).unwrap();
        wal.sync().await.unwrap();
    });
}

#[test]
fn append_limits_are_errors() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 3 });
        let config = small_config(2);
        let (mut wal, _) = recover(&disk, &config).await.unwrap();
        let too_big = vec![0; 2 * BLOCK_SIZE];
        assert!(matches!(
            wal.append(meta(0), &too_big),
            Err(WalError::RecordTooLarge { .. })
        ));
        let mut full = false;
        for i in 0..100 {
            match wal.append(meta(i), &[1; 4000]) {
                Ok(_) => {}
                Err(WalError::BatchFull { .. }) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full);
        wal.sync().await.unwrap();
        wal.append(meta(0), &[1; 4000]).unwrap();
    });
}

/// The model of one crash run: what was appended, what was acknowledged.
struct Model {
    records: BTreeMap<u64, (RecordMeta, Vec<u8>)>,
    acked: Lsn,
    truncated: Lsn,
    stats: CrashStats,
}

/// What the crash runs exercised, so the test can insist the hard cases happen.
#[derive(Default, Debug)]
struct CrashStats {
    /// Recoveries that lost some unsynced records.
    unsynced_lost: u64,
    /// Recoveries that kept some unsynced records.
    unsynced_kept: u64,
    /// Segments of torn batches removed by recovery.
    garbage_segments: u64,
    /// Disk errors returned by the WAL.
    errors: u64,
    /// Recoveries cut short by a device failure (then crashed and redone).
    recoveries_interrupted: u64,
    /// Chunk writes started by `write_ahead` before their batch's sync.
    early_writes: u64,
}

impl Model {
    /// Checks a recovery against the model and adopts its result.
    fn check_recovery(&mut self, seed: u64, records: &[Owned], next_lsn: Lsn) {
        let end = Lsn(next_lsn.0 - 1);
        assert!(
            end >= self.acked,
            "seed {seed}: durable {:?} lost, log ends at {end:?}",
            self.acked
        );
        if let Some(last) = records.last() {
            assert_eq!(last.0, end, "seed {seed}: last record vs next lsn");
        }
        for (i, (lsn, meta, payload)) in records.iter().enumerate() {
            assert_eq!(
                lsn.0,
                records[0].0 .0 + i as u64,
                "seed {seed}: gap or duplicate"
            );
            let (m, p) = self
                .records
                .get(&lsn.0)
                .unwrap_or_else(|| panic!("seed {seed}: unknown {lsn:?}"));
            assert!(
                m == meta && p == payload,
                "seed {seed}: {lsn:?} differs from what was appended"
            );
        }
        let needed = self.truncated.max(Lsn(1));
        if needed <= self.acked {
            let first = records.first().map(|r| r.0);
            assert!(
                first.is_some_and(|f| f <= needed),
                "seed {seed}: needed {needed:?} missing, first {first:?}"
            );
        }
        let appended = self.records.keys().last().map_or(0, |l| *l);
        self.stats.unsynced_lost += u64::from(appended > end.0);
        self.stats.unsynced_kept += u64::from(end > self.acked);
        self.records.retain(|&lsn, _| lsn <= end.0);
        self.acked = end;
    }
}

/// One seeded run: several crash/recover cycles of random appends, syncs,
/// truncations, with an EIO/ENOSPC countdown armed in half of the cycles.
fn crash_run(seed: u64) -> CrashStats {
    let disk = SimDisk::new(SimDiskOptions { seed });
    let mut rng = SimRng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC0FFEE);
    let mut config = small_config(rng.range(2, 6));
    config.segments_free_max = rng.below(3) as usize;
    config.zero_fill = rng.chance(50);
    let mut model = Model {
        records: BTreeMap::new(),
        acked: Lsn(0),
        truncated: Lsn(0),
        stats: CrashStats::default(),
    };
    let trace = std::env::var("WAL_TRACE").is_ok();
    if trace {
        eprintln!("config {config:?}");
    }
    block_on(async {
        for _cycle in 0..4 {
            if rng.chance(25) {
                // Crash during recovery itself (garbage removal, the fresh segment):
                // the failure must be an I/O error, and recovery must be repeatable.
                disk.fail_after(rng.below(12), Fault::Eio);
                match recover_with_report(&disk, &config).await {
                    Ok(_) => {}
                    Err(WalError::Disk(_)) => model.stats.recoveries_interrupted += 1,
                    Err(e) => panic!("seed {seed}: interrupted recovery: {e}"),
                }
                disk.crash();
            }
            let (mut wal, records, report) = match recover_with_report(&disk, &config).await {
                Ok(r) => r,
                Err(e) => panic!("seed {seed}: recovery failed: {e}"),
            };
            model.stats.garbage_segments += report.garbage_segments as u64;
            if trace {
                eprintln!(
                    "recovered {:?}..{:?} next {:?} files {:?}",
                    records.first().map(|r| r.0),
                    records.last().map(|r| r.0),
                    wal.next_lsn(),
                    segment_files(&disk)
                );
            }
            model.check_recovery(seed, &records, wal.next_lsn());
            if rng.chance(50) {
                let fault = if rng.chance(50) {
                    Fault::Eio
                } else {
                    Fault::NoSpace
                };
                disk.fail_after(rng.below(40), fault);
            }
            for _ in 0..rng.range(1, 60) {
                let r = rng.below(100);
                if r < 60 {
                    let (m, p) = (meta(rng.below(1000)), payload(&mut rng));
                    match wal.append(m, &p) {
                        Ok(lsn) => {
                            if trace {
                                eprintln!("append {lsn:?} {} bytes", p.len());
                            }
                            assert_eq!(
                                lsn.0,
                                model.records.keys().last().map_or(0, |l| *l) + 1,
                                "seed {seed}"
                            );
                            assert!(lsn > model.acked);
                            model.records.insert(lsn.0, (m, p));
                            if rng.chance(60) {
                                if let Err(e) = wal.write_ahead().await {
                                    assert!(wal.is_failed(), "seed {seed}: write_ahead {e}");
                                    model.stats.errors += u64::from(matches!(e, WalError::Disk(_)));
                                }
                            }
                        }
                        Err(WalError::BatchFull { .. }) => {}
                        Err(WalError::Failed) => assert!(wal.is_failed()),
                        Err(e) => panic!("seed {seed}: append: {e}"),
                    }
                } else if r < 88 {
                    match wal.sync().await {
                        Ok(durable) => {
                            if trace {
                                eprintln!("sync -> {durable:?} files {:?}", segment_files(&disk));
                            }
                            assert_eq!(Lsn(durable.0 + 1), wal.next_lsn(), "seed {seed}");
                            model.acked = durable;
                        }
                        Err(e) => {
                            assert!(wal.is_failed(), "seed {seed}: sync error must poison");
                            model.stats.errors += u64::from(matches!(e, WalError::Disk(_)));
                        }
                    }
                } else if r < 94 {
                    if let Err(e) = wal.prepare_spare().await {
                        assert!(
                            wal.is_failed(),
                            "seed {seed}: prepare_spare error {e} must poison"
                        );
                    }
                } else {
                    let to = Lsn(rng.range(wal.first_lsn().0, model.acked.0 + 1));
                    // Even a failed truncation may have dropped records below `to`.
                    model.truncated = model.truncated.max(to);
                    match wal.truncate_before(to).await {
                        Ok(()) => {
                            if trace {
                                eprintln!(
                                    "truncate_before {to:?} files {:?} ops {}",
                                    segment_files(&disk),
                                    disk.op_count()
                                );
                            }
                        }
                        Err(_) => {
                            assert!(wal.is_failed(), "seed {seed}: truncate error must poison")
                        }
                    }
                }
            }
            if !wal.is_failed() && rng.chance(60) {
                // Crash inside a sync: a batch (often crossing segments) is partly
                // written when the device dies.
                for _ in 0..rng.range(1, 12) {
                    let (m, p) = (meta(rng.below(1000)), payload(&mut rng));
                    if let Ok(lsn) = wal.append(m, &p) {
                        model.records.insert(lsn.0, (m, p));
                    }
                    if rng.chance(50) && wal.write_ahead().await.is_err() {
                        assert!(
                            wal.is_failed(),
                            "seed {seed}: write_ahead error must poison"
                        );
                    }
                }
                disk.fail_after(rng.below(8), Fault::Eio);
                if let Ok(durable) = wal.sync().await {
                    model.acked = durable;
                }
            }
            if trace {
                eprintln!("crash; failed {}", wal.is_failed());
            }
            model.stats.early_writes += wal.early_writes();
            drop(wal);
            disk.crash();
        }
        let (wal, records) = recover(&disk, &config)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        model.check_recovery(seed, &records, wal.next_lsn());
    });
    model.stats
}

#[test]
fn crash_recovery_seeded() {
    let env = |name| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    if let Some(seed) = env("WAL_SEED") {
        crash_run(seed);
        return;
    }
    let mut total = CrashStats::default();
    for seed in 0..env("WAL_SEEDS").unwrap_or(CRASH_SEEDS) {
        let stats = crash_run(seed);
        total.unsynced_lost += stats.unsynced_lost;
        total.unsynced_kept += stats.unsynced_kept;
        total.garbage_segments += stats.garbage_segments;
        total.errors += stats.errors;
        total.recoveries_interrupted += stats.recoveries_interrupted;
        total.early_writes += stats.early_writes;
    }
    eprintln!("crash runs exercised: {total:?}");
    assert!(
        total.unsynced_lost > 100 && total.unsynced_kept > 100,
        "{total:?}"
    );
    assert!(
        total.garbage_segments > 0 && total.errors > 100,
        "{total:?}"
    );
    assert!(total.recoveries_interrupted > 100, "{total:?}");
    assert!(total.early_writes > 50, "{total:?}");
}

/// Many batches across segments, all synced.
async fn synced_log(disk: &SimDisk, config: &WalConfig, batches: u64) -> Vec<Lsn> {
    let (mut wal, _) = recover(disk, config).await.unwrap();
    let mut batch_ends = Vec::new();
    for b in 0..batches {
        for i in 0..5 {
            wal.append(meta(b * 5 + i), &[b as u8; 100]).unwrap();
        }
        batch_ends.push(wal.sync().await.unwrap());
    }
    batch_ends
}

fn first_segment(disk: &SimDisk) -> PathBuf {
    Path::new(DIR).join(&segment_files(disk)[0])
}

#[test]
fn corruption_before_a_later_batch_is_an_error() {
    block_on(async {
        for bit in [0, 8 * 9, 8 * 30, 8 * HEADER_BYTES as u64 + 3, 8 * 4096 + 5] {
            let disk = SimDisk::new(SimDiskOptions { seed: 4 });
            let config = small_config(8);
            synced_log(&disk, &config, 6).await;
            disk.flip_bit(&first_segment(&disk), bit);
            match recover(&disk, &config).await {
                Err(WalError::Corruption { .. }) => {}
                Err(e) => panic!("bit {bit}: wrong error {e}"),
                Ok((_, records)) => {
                    panic!("bit {bit}: corruption accepted, {} records", records.len())
                }
            }
        }
    });
}

#[test]
fn random_bit_flips_never_return_bad_data() {
    block_on(async {
        let mut detected = 0;
        for seed in 0..300 {
            let disk = SimDisk::new(SimDiskOptions { seed });
            let mut rng = SimRng::new(seed);
            let config = small_config(rng.range(2, 6));
            let (mut wal, _) = recover(&disk, &config).await.unwrap();
            let mut written = Vec::new();
            let mut batch_ends = vec![Lsn(0)];
            for _ in 0..rng.range(2, 12) {
                for _ in 0..rng.range(1, 6) {
                    let (m, p) = (meta(rng.below(100)), payload(&mut rng));
                    written.push((wal.append(m, &p).unwrap(), m, p));
                }
                batch_ends.push(wal.sync().await.unwrap());
            }
            drop(wal);
            let files = segment_files(&disk);
            let path = Path::new(DIR).join(&files[rng.below(files.len() as u64) as usize]);
            let len = disk.file_len(&path).unwrap();
            disk.flip_bit(&path, rng.below(len * 8));
            match recover(&disk, &config).await {
                Err(WalError::Corruption { .. }) => detected += 1,
                Err(e) => panic!("seed {seed}: {e}"),
                Ok((_, records)) => {
                    assert_eq!(
                        records,
                        written[..records.len()],
                        "seed {seed}: bad data returned"
                    );
                    let before_last = batch_ends[batch_ends.len() - 2];
                    assert!(
                        records.len() as u64 >= before_last.0,
                        "seed {seed}: synced batch cut"
                    );
                }
            }
        }
        assert!(detected > 30, "only {detected} corruptions detected");
    });
}

#[test]
fn missing_segment_is_an_error() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 5 });
        let config = small_config(2);
        synced_log(&disk, &config, 20).await;
        let files = segment_files(&disk);
        assert!(files.len() > 3);
        disk.remove(&Path::new(DIR).join(&files[1])).await.unwrap();
        assert!(matches!(
            recover(&disk, &config).await,
            Err(WalError::Corruption { .. })
        ));
    });
}

#[test]
fn damage_in_the_last_batch_is_cut_like_a_tear() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 6 });
        let config = small_config(64);
        let ends = synced_log(&disk, &config, 3).await;
        // Batch 3 starts on the third block (each batch is < 1 block).
        disk.flip_bit(&first_segment(&disk), 8 * (2 * BLOCK_SIZE as u64 + 70));
        let (wal, records) = recover(&disk, &config).await.unwrap();
        assert_eq!(records.last().map(|r| r.0), Some(ends[1]));
        assert_eq!(wal.next_lsn(), Lsn(ends[1].0 + 1));
    });
}

#[test]
fn io_errors_poison_and_lose_nothing_synced() {
    block_on(async {
        for fault in [Fault::Eio, Fault::NoSpace] {
            for countdown in 0..12 {
                let disk = SimDisk::new(SimDiskOptions { seed: countdown });
                let config = small_config(2);
                let (mut wal, _) = recover(&disk, &config).await.unwrap();
                let mut acked = Lsn(0);
                disk.fail_after(countdown, fault);
                let mut failed = false;
                for i in 0..30 {
                    let appended = wal.append(meta(i), &[3; 1500]);
                    match wal.sync().await {
                        Ok(d) => acked = d,
                        Err(WalError::Disk(_)) => {
                            assert!(appended.is_ok() && !failed);
                            failed = true;
                        }
                        Err(WalError::Failed) => assert!(failed && wal.is_failed()),
                        Err(e) => panic!("{e}"),
                    }
                }
                assert!(failed, "{fault:?} after {countdown} ops never hit");
                assert!(matches!(wal.append(meta(0), &[1]), Err(WalError::Failed)));
                drop(wal);
                disk.clear_fault();
                let (wal, records) = recover(&disk, &config).await.unwrap();
                assert!(wal.next_lsn() > acked);
                assert!(records.iter().any(|r| r.0 == acked) || acked == Lsn(0));
            }
        }
    });
}

#[test]
fn bench_runs_tiny() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 7 });
        let params = BenchParams {
            records: 300,
            payload_bytes: 100,
            records_per_sync: 10,
            truncate_every_syncs: 4,
            prepare_spares: true,
        };
        let report = wal_throughput(disk, Path::new(DIR), small_config(4), &params)
            .await
            .unwrap();
        assert_eq!(report.records, 300);
        assert_eq!(report.syncs, 30);
        assert!(report.sync_percentile(50) <= report.sync_percentile(99));
        assert!(report.records_per_sec() > 0.0);
    });
}

#[test]
fn wal_on_dma_disk() {
    use crate::disk::dma::tests::{run_in_executor, temp_dir};
    use crate::disk::{probe_device, DmaDisk};
    let dir = temp_dir("wal");
    let d = dir.clone();
    run_in_executor(move || async move {
        probe_device(&d).await.unwrap();
        let config = small_config(4);
        let (mut wal, _) = Wal::recover(DmaDisk::new(), &d, config.clone(), |_| {})
            .await
            .unwrap();
        let mut written = Vec::new();
        for i in 0..100u64 {
            let p = vec![i as u8; (i * 37 % 700) as usize];
            written.push((wal.append(meta(i), &p).unwrap(), meta(i), p));
            if i % 9 == 0 {
                wal.sync().await.unwrap();
            }
        }
        wal.sync().await.unwrap();
        wal.truncate_before(Lsn(50)).await.unwrap();
        drop(wal);
        let mut records = Vec::new();
        let (wal, _) = Wal::recover(DmaDisk::new(), &d, config.clone(), |r| {
            records.push((r.lsn, r.meta, r.payload.to_vec()))
        })
        .await
        .unwrap();
        assert_eq!(wal.next_lsn(), Lsn(101));
        let first = records[0].0 .0 as usize;
        assert!(first <= 50);
        assert_eq!(records, written[first - 1..]);
        let params = BenchParams {
            records: 200,
            payload_bytes: 200,
            records_per_sync: 20,
            truncate_every_syncs: 2,
            prepare_spares: false,
        };
        let bench_dir = d.join("bench");
        std::fs::create_dir_all(&bench_dir).unwrap();
        let report = wal_throughput(DmaDisk::new(), &bench_dir, config, &params)
            .await
            .unwrap();
        assert_eq!(report.records, 200);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
