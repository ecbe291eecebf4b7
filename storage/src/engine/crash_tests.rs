//! Seeded crash tests of the whole engine on the simulated disk.
//!
//! Each run issues random writes (synced or not), flushes, background steps
//! (flushes and compactions), ingestions, WAL syncs and clean reopens, and
//! crashes at a random point: either between two operations, or in the middle
//! of one (an EIO countdown fires at a random disk operation — inside a WAL
//! sync, a table write, a manifest replacement, a compaction — and the disk
//! then loses, keeps or tears its unsynced writes). Some runs also flip a
//! random bit of a random file after the crash, and a quarter of the recoveries
//! are themselves cut short by EIO (they must fail with a disk error, never
//! report corruption) and redone after another crash.
//!
//! The check: the recovered engine equals the model after *some prefix* of
//! the operations — a prefix that contains every acknowledged synced write
//! (and everything acknowledged before a successful sync, flush or ingestion)
//! and nothing beyond the operations issued. Compared by scanning every key's
//! newest version, tombstones included, at every read timestamp that matters.
//! With a flipped bit, the outcome may instead be a corruption error (detected,
//! never returned as data); a flip inside the WAL's last batch is
//! indistinguishable from a torn write and may cut it.
//!
//! `ENGINE_CRASH_SEEDS=n` runs more seeds, `ENGINE_CRASH_SEED=s` one seed (with
//! `ENGINE_TRACE=1`, a trace). Failing seeds go to [`REGRESSION_SEEDS`].

use super::tests::{open, random_batch, small_config, Entries, Model, TsGen, DIR};
use super::*;
use crate::disk::{Fault, SimDisk, SimDiskOptions};
use crate::rng::SimRng;
use futures_lite::future::block_on;

/// Seeded runs in the default test suite (a few seconds).
const CRASH_SEEDS: u64 = 300;
/// Seeds that once failed; always run.
const REGRESSION_SEEDS: &[u64] = &[];

#[derive(Clone)]
enum Event {
    Batch(WriteBatch),
    Ingest(Vec<u8>, Vec<u8>, Entries),
}

#[derive(Debug, Default)]
struct Stats {
    runs: u64,
    mid_operation_crashes: u64,
    /// Recovered prefix shorter than everything issued (unsynced work lost).
    lost_unsynced: u64,
    /// Recovered prefix beyond the durable minimum (unsynced work kept).
    kept_unsynced: u64,
    flips: u64,
    flips_detected: u64,
    interrupted_recoveries: u64,
    failed_background: u64,
}

fn trace() -> bool {
    std::env::var("ENGINE_TRACE").is_ok()
}

fn random_ingest(rng: &mut SimRng) -> Event {
    let a = format!("k{:02}", rng.below(40)).into_bytes();
    let b = format!("k{:02}", rng.below(41)).into_bytes();
    let (start, end) = if a < b { (a, b) } else { (b, a) };
    let mut entries: Entries = Vec::new();
    if start < end {
        let mut keys: Vec<Vec<u8>> = (0..rng.below(6))
            .map(|_| format!("k{:02}", rng.below(40)).into_bytes())
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys.into_iter().filter(|k| *k >= start && *k < end) {
            let value = rng
                .chance(80)
                .then(|| vec![rng.below(256) as u8; rng.below(50) as usize]);
            entries.push((k, Timestamp::new(rng.range(1, 30), 0), value));
        }
    }
    Event::Ingest(start, end, entries)
}

/// Drives one run; returns the events, how many must survive, and how many may.
struct Run {
    seed: u64,
    rng: SimRng,
    disk: SimDisk,
    config: EngineConfig,
    events: Vec<Event>,
    /// Events that must survive a crash.
    durable: usize,
    /// Events that may survive (issued and possibly logged).
    issued: usize,
    /// An operation failed: nothing after it may have been logged.
    failed: bool,
    stats: Stats,
}

impl Run {
    /// Accounts for the outcome of an event (the last one pushed).
    fn note(
        &mut self,
        engine: &Engine<SimDisk>,
        result: Result<(), EngineError>,
        durable_now: bool,
    ) {
        match result {
            Ok(()) => {
                assert!(
                    !self.failed,
                    "seed {}: an event was logged after an uncertain failure",
                    self.seed
                );
                self.issued = self.events.len();
                if durable_now {
                    self.durable = self.events.len();
                }
            }
            Err(e) => {
                if trace() {
                    eprintln!("  failed: {e}");
                }
                if matches!(e, EngineError::ReadOnly(_)) || engine.read_only_reason().is_none() {
                    // Refused, or failed before anything was logged: no effect.
                    self.events.pop();
                } else {
                    // Failed in the WAL or the manifest: it may be durable, and the
                    // engine refuses everything after it.
                    self.failed = true;
                    self.issued = self.events.len();
                }
            }
        }
    }

    /// One random operation; `true` asks for a clean restart.
    async fn step(&mut self, engine: &Engine<SimDisk>, gen: &mut TsGen) -> bool {
        let op = self.rng.below(100);
        match op {
            0..=59 => {
                let batch = random_batch(&mut self.rng, Timestamp::ZERO, gen);
                let sync = self.rng.chance(40);
                if trace() {
                    eprintln!("write sync={sync} {:?}", batch.ops());
                }
                self.events.push(Event::Batch(batch.clone()));
                let result = engine.write(batch, sync).await.map(|_| ());
                self.note(engine, result, sync);
            }
            60..=74 => {
                let flushes = engine.metrics().flushes;
                let result = engine.background_step().await.map(|_| ());
                if trace() {
                    eprintln!("background step: {result:?}");
                }
                let flushed = engine.metrics().flushes > flushes;
                if result.is_err() {
                    self.stats.failed_background += 1;
                }
                self.durable_after(result, flushed);
            }
            75..=81 => {
                let result = engine.flush().await;
                if trace() {
                    eprintln!("flush: {result:?}");
                }
                self.durable_after(result, true);
            }
            82..=87 => {
                let result = engine.sync_wal().await.map(|_| ());
                self.durable_after(result, true);
            }
            88..=93 => {
                let event = random_ingest(&mut self.rng);
                let Event::Ingest(start, end, entries) = &event else {
                    unreachable!()
                };
                if start >= end {
                    return false;
                }
                if trace() {
                    eprintln!("ingest {start:?}..{end:?} {} entries", entries.len());
                }
                let result = engine.ingest(start, end, entries.clone(), None).await;
                self.events.push(event);
                self.note(engine, result, true);
            }
            _ => {
                // A clean restart, if the log syncs.
                if engine.sync_wal().await.is_ok() && !self.failed {
                    self.durable = self.issued;
                    return true;
                }
            }
        }
        false
    }

    /// After a sync, flush or background step: if it made the log durable,
    /// everything issued so far is. A failure makes nothing durable.
    fn durable_after(&mut self, result: Result<(), EngineError>, made_durable: bool) {
        if result.is_ok() && made_durable && !self.failed {
            self.durable = self.issued;
        }
    }

    /// The model after the first `n` events.
    fn model(&self, n: usize) -> Model {
        let mut m = Model::default();
        for e in &self.events[..n] {
            match e {
                Event::Batch(b) => m.apply(b),
                Event::Ingest(s, e, entries) => m.ingest(s, e, entries),
            }
        }
        m
    }
}

/// Every key's newest version at each read timestamp, tombstones included.
async fn engine_state(engine: &Engine<SimDisk>) -> Result<Vec<Vec<Item>>, EngineError> {
    let mut out = Vec::new();
    for ts in read_points() {
        let mut it = engine.iter_with_tombstones(b"", None, ts);
        it.seek_to_first().await?;
        let mut items = Vec::new();
        while let Some(i) = it.item() {
            items.push(i.clone());
            it.next().await?;
        }
        out.push(items);
    }
    Ok(out)
}

fn read_points() -> Vec<Timestamp> {
    (0..=31).map(|w| Timestamp::new(w, u32::MAX)).collect()
}

fn model_state(model: &Model) -> Vec<Vec<Item>> {
    read_points()
        .into_iter()
        .map(|ts| model.visible_versions(ts))
        .collect()
}

/// Reopens after a crash; a quarter of the attempts are cut short by EIO first.
async fn recover(run: &mut Run) -> Result<Engine<SimDisk>, EngineError> {
    loop {
        if run.rng.chance(25) {
            run.disk.fail_after(run.rng.below(30), Fault::Eio);
            match open(&run.disk, &run.config).await {
                Ok((engine, _)) => {
                    run.disk.clear_fault();
                    // The countdown outlived recovery: the engine is fine.
                    return Ok(engine);
                }
                Err(EngineError::Disk(_)) => {
                    run.stats.interrupted_recoveries += 1;
                    run.disk.crash();
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        return open(&run.disk, &run.config).await.map(|(e, _)| e);
    }
}

fn crash_run(seed: u64) -> Stats {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed });
        let mut run = Run {
            seed,
            rng: SimRng::new(seed),
            config: small_config(seed),
            disk,
            events: Vec::new(),
            durable: 0,
            issued: 0,
            failed: false,
            stats: Stats::default(),
        };
        run.stats.runs = 1;
        let mut gen = TsGen::default();
        let (mut engine, _) = open(&run.disk, &run.config).await.unwrap();
        let steps = run.rng.range(5, 120);
        let arm_at = run.rng.chance(60).then(|| run.rng.below(steps));
        for step in 0..steps {
            if Some(step) == arm_at {
                let ops = run.rng.below(60);
                if trace() {
                    eprintln!("EIO after {ops} disk operations");
                }
                run.disk.fail_after(ops, Fault::Eio);
                run.stats.mid_operation_crashes += 1;
            }
            if run.step(&engine, &mut gen).await {
                drop(engine);
                if trace() {
                    eprintln!("reopen");
                }
                match open(&run.disk, &run.config).await {
                    Ok((e, _)) => engine = e,
                    // The disk died under the restart: that is the crash.
                    Err(_) => {
                        run.disk.crash();
                        return finish(run, seed).await;
                    }
                }
            }
        }
        drop(engine);
        run.disk.crash();
        finish(run, seed).await
    })
}

/// After the crash: maybe flip a bit, recover, and check the state.
async fn finish(mut run: Run, seed: u64) -> Stats {
    {
        let flip = run.rng.chance(10).then(|| flip_random_bit(&mut run));
        let flipped_wal = flip.as_ref().is_some_and(|name| name.starts_with("wal-"));
        let recovered = recover(&mut run).await;
        let state = match recovered {
            Ok(engine) => engine_state(&engine).await,
            Err(e) => Err(e),
        };
        let state = match state {
            Ok(s) => s,
            Err(EngineError::Corruption(d)) if flip.is_some() => {
                run.stats.flips_detected += 1;
                if trace() {
                    eprintln!("flip detected: {d}");
                }
                return run.stats;
            }
            Err(e) => panic!("seed {seed}: recovery or read failed: {e}"),
        };
        // With a flip in the log, its last batch may be cut like a torn write.
        let lowest = if flipped_wal { 0 } else { run.durable };
        let matched = (lowest..=run.issued)
            .rev()
            .find(|&n| model_state(&run.model(n)) == state);
        let Some(n) = matched else {
            panic!(
                "seed {seed}: recovered state matches no prefix in {}..={} of {} events (flip: {flip:?})",
                run.durable,
                run.issued,
                run.events.len()
            );
        };
        if trace() {
            eprintln!(
                "recovered {n} events (durable {}, issued {})",
                run.durable, run.issued
            );
        }
        if n < run.issued {
            run.stats.lost_unsynced += 1;
        }
        if n > run.durable {
            run.stats.kept_unsynced += 1;
        }
        run.stats
    }
}

/// Flips a random bit of a random file; returns the file's name.
fn flip_random_bit(run: &mut Run) -> String {
    run.stats.flips += 1;
    let names: Vec<String> = run.disk.peek_names(Path::new(DIR));
    let name = names[run.rng.below(names.len() as u64) as usize].clone();
    let path = Path::new(DIR).join(&name);
    let len = run.disk.file_len(&path).unwrap_or(0);
    if len > 0 {
        run.disk.flip_bit(&path, run.rng.below(len * 8));
    }
    if trace() {
        eprintln!("flipped a bit of {name}");
    }
    name
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn crash_runs_seeded() {
    let seeds: Vec<u64> = match env_u64("ENGINE_CRASH_SEED") {
        Some(s) => vec![s],
        None => {
            let n = env_u64("ENGINE_CRASH_SEEDS").unwrap_or(CRASH_SEEDS);
            REGRESSION_SEEDS.iter().copied().chain(0..n).collect()
        }
    };
    let mut total = Stats::default();
    for seed in seeds {
        let s = crash_run(seed);
        total.runs += s.runs;
        total.mid_operation_crashes += s.mid_operation_crashes;
        total.lost_unsynced += s.lost_unsynced;
        total.kept_unsynced += s.kept_unsynced;
        total.flips += s.flips;
        total.flips_detected += s.flips_detected;
        total.interrupted_recoveries += s.interrupted_recoveries;
        total.failed_background += s.failed_background;
    }
    eprintln!("{total:?}");
    if total.runs >= CRASH_SEEDS {
        // The hard cases happened.
        assert!(total.mid_operation_crashes > total.runs / 3, "{total:?}");
        assert!(
            total.lost_unsynced > 0 && total.kept_unsynced > 0,
            "{total:?}"
        );
        assert!(
            total.interrupted_recoveries > 0 && total.failed_background > 0,
            "{total:?}"
        );
        assert!(total.flips > 0, "{total:?}");
    }
}
