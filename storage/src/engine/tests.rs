//! Engine tests on the simulated disk: a seeded comparison against a model
//! (writes, overwrites, deletes, range deletes, flushes, compactions, GC,
//! snapshots, reopen), group commit, Raft mode, ingestion, faults.

use super::*;
use crate::disk::{SimDisk, SimDiskOptions};
use crate::rng::SimRng;
use futures_lite::future::block_on;
use std::cmp::Reverse;

pub(crate) const DIR: &str = "/db";

/// A small configuration: memtables, tables and levels of a few KiB, so that
/// flushes, compactions and WAL rolls happen constantly.
pub(crate) fn small_config(seed: u64) -> EngineConfig {
    EngineConfig {
        wal: WalConfig {
            segment_bytes: 16 * 4096,
            batch_bytes_max: 64 * 1024,
            segments_free_max: 2,
            zero_fill: seed.is_multiple_of(2),
        },
        memtable_bytes: 8 * 1024,
        immutable_memtables_max: 3,
        table: TableOptions {
            block_bytes: 512,
            restart_interval: 4,
            bloom_bits_per_key: 10,
        },
        block_cache_bytes: 64 * 1024,
        target_file_bytes: 8 * 1024,
        l0_compaction_trigger: 2,
        l0_stall_tables: 6,
        level1_bytes: 32 * 1024,
        level_multiplier: 4,
        raft_log: false,
        seed,
    }
}

pub(crate) async fn open(
    disk: &SimDisk,
    config: &EngineConfig,
) -> Result<(Engine<SimDisk>, Recovered), EngineError> {
    Engine::open(disk.clone(), Path::new(DIR), config.clone(), |_| {}).await
}

/// Versions to ingest: (key, ts, value or tombstone), sorted.
pub(crate) type Entries = Vec<(Vec<u8>, Timestamp, Option<Vec<u8>>)>;

/// Versions by (key, newest first).
pub(crate) type Versions = BTreeMap<(Vec<u8>, Reverse<Timestamp>), Option<Vec<u8>>>;

/// The engine's semantics, by brute force.
#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    pub versions: Versions,
}

impl Model {
    pub fn apply(&mut self, batch: &WriteBatch) {
        for op in batch.ops() {
            match op {
                Op::Put { key, ts, value } => {
                    self.versions
                        .insert((key.clone(), Reverse(*ts)), Some(value.clone()));
                }
                Op::Delete { key, ts } => {
                    self.versions.insert((key.clone(), Reverse(*ts)), None);
                }
                Op::DeleteRange { start, end } => self.versions.retain(|(k, _), _| {
                    !(start.as_slice() <= k.as_slice() && k.as_slice() < end.as_slice())
                }),
            }
        }
    }

    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Option<Found> {
        let ((k, Reverse(ts)), v) = self
            .versions
            .range((key.to_vec(), Reverse(read_ts))..)
            .next()?;
        (k.as_slice() == key).then(|| (*ts, v.clone()))
    }

    /// Replaces everything in `[start, end)` with `entries` (an ingestion).
    pub fn ingest(&mut self, start: &[u8], end: &[u8], entries: &Entries) {
        self.apply(WriteBatch::new().delete_range(start, end));
        for (k, t, v) in entries {
            self.versions.insert((k.clone(), Reverse(*t)), v.clone());
        }
    }

    /// Per key, the newest version at or below `read_ts`, tombstones included.
    pub fn visible_versions(&self, read_ts: Timestamp) -> Vec<Item> {
        let mut out: Vec<Item> = Vec::new();
        for ((k, Reverse(ts)), v) in &self.versions {
            if *ts > read_ts || out.last().is_some_and(|i| &i.key == k) {
                continue;
            }
            out.push(Item {
                key: k.clone(),
                ts: *ts,
                value: v.clone(),
            });
        }
        out
    }

    pub fn scan(&self, start: &[u8], end: Option<&[u8]>, read_ts: Timestamp) -> Vec<Item> {
        let mut out: Vec<Item> = Vec::new();
        let mut last: Option<&[u8]> = None;
        for ((k, Reverse(ts)), v) in self
            .versions
            .range((start.to_vec(), Reverse(Timestamp::MAX))..)
        {
            if end.is_some_and(|e| k.as_slice() >= e) {
                break;
            }
            if *ts > read_ts || last == Some(k.as_slice()) {
                continue;
            }
            last = Some(k);
            if let Some(v) = v {
                out.push(Item {
                    key: k.clone(),
                    ts: *ts,
                    value: Some(v.clone()),
                });
            }
        }
        out
    }
}

pub(crate) fn random_key(rng: &mut SimRng) -> Vec<u8> {
    format!("k{:02}", rng.below(40)).into_bytes()
}

/// A timestamp above `floor` (writes stay above the GC horizon, as MVCC does).
pub(crate) fn random_ts(rng: &mut SimRng, floor: Timestamp) -> Timestamp {
    Timestamp::new(floor.wall_nanos + rng.range(1, 30), rng.below(3) as u32)
}

/// Timestamps for writes. With `monotone`, a key is never written below its
/// newest version (the transaction layer's write-too-old rule), which GC needs;
/// without, any order (the engine's semantics hold for any order without GC).
#[derive(Default)]
pub(crate) struct TsGen {
    pub monotone: bool,
    newest: BTreeMap<Vec<u8>, Timestamp>,
}

impl TsGen {
    pub fn ts(&mut self, rng: &mut SimRng, key: &[u8], floor: Timestamp) -> Timestamp {
        let mut t = random_ts(rng, floor);
        if self.monotone {
            if let Some(&n) = self.newest.get(key) {
                if rng.chance(15) {
                    t = n; // Replace the newest version in place.
                } else if t <= n {
                    t = Timestamp::new(n.wall_nanos + 1 + rng.below(3), rng.below(3) as u32);
                }
            }
            self.newest.insert(key.to_vec(), t);
        }
        t
    }
}

pub(crate) fn random_batch(rng: &mut SimRng, floor: Timestamp, gen: &mut TsGen) -> WriteBatch {
    let mut b = WriteBatch::new();
    for _ in 0..rng.range(1, 5) {
        let key = random_key(rng);
        match rng.below(100) {
            0..=69 => {
                let max = if rng.chance(5) { 3000 } else { 60 };
                let mut v = vec![0; rng.below(max) as usize];
                rng.fill(&mut v);
                let ts = gen.ts(rng, &key, floor);
                b.put(&key, ts, &v);
            }
            70..=94 => {
                let ts = gen.ts(rng, &key, floor);
                b.delete(&key, ts);
            }
            _ => {
                let end = random_key(rng);
                if key < end {
                    b.delete_range(&key, &end);
                }
            }
        }
    }
    b
}

/// Every version of `key` in every source, for failure reports.
pub(crate) async fn dump_key(engine: &Engine<SimDisk>, key: &[u8]) -> String {
    let view = engine.view();
    let mut out = String::new();
    for (i, mem) in view.mems.iter().enumerate() {
        let m = mem.table.borrow();
        let versions: Vec<_> = m
            .iter()
            .filter(|e| e.key == key)
            .map(|e| (e.ts, e.value == crate::memtable::Value::Delete))
            .collect();
        out += &format!(
            "mem {i}: {versions:?} dels {:?}\n",
            m.range_dels().covers(key)
        );
    }
    for (level, tables) in view.version.levels.iter().enumerate() {
        for t in tables {
            let mut it = crate::sst::TableIter::new(Rc::clone(&t.table), Rc::clone(&engine.cache));
            it.seek(key, Timestamp::MAX).await.unwrap();
            let mut versions = Vec::new();
            while it.valid() && it.key() == key {
                versions.push((it.ts(), it.value() == crate::memtable::Value::Delete));
                it.next().await.unwrap();
            }
            out += &format!(
                "L{level} #{}: {versions:?} dels {:?}\n",
                t.meta.number,
                t.table.range_dels().covers(key)
            );
        }
    }
    out
}

async fn check_reads(
    engine: &Engine<SimDisk>,
    model: &Model,
    rng: &mut SimRng,
    floor: Timestamp,
    seed: u64,
) {
    for _ in 0..6 {
        let key = random_key(rng);
        let ts = random_ts(rng, floor);
        let got = engine.get_version(&key, ts).await.unwrap();
        let want = model.get(&key, ts);
        // GC may drop a tombstone at or below the horizon: the key reads absent
        // either way.
        let collected = matches!(want, Some((t, None)) if t <= floor) && got.is_none();
        if !(got == want || collected) {
            let dump = dump_key(engine, &key).await;
            panic!("seed {seed}: get_version {key:?} at {ts}: {got:?} vs {want:?}\n{dump}");
        }
    }
    let (a, b) = (random_key(rng), random_key(rng));
    let (start, end) = if a <= b { (a, b) } else { (b, a) };
    let end = rng.chance(80).then_some(end);
    let ts = random_ts(rng, floor);
    let want = model.scan(&start, end.as_deref(), ts);
    let limit = if rng.chance(50) {
        usize::MAX
    } else {
        rng.range(1, 5) as usize
    };
    let got = engine
        .scan(&start, end.as_deref(), ts, false, limit)
        .await
        .unwrap();
    let want_limited: Vec<Item> = want.iter().take(limit).cloned().collect();
    if got != want_limited {
        let g: Vec<_> = got
            .iter()
            .map(|i| (String::from_utf8_lossy(&i.key).into_owned(), i.ts))
            .collect();
        let w: Vec<_> = want_limited
            .iter()
            .map(|i| (String::from_utf8_lossy(&i.key).into_owned(), i.ts))
            .collect();
        let mut dump = String::new();
        for k in g.iter().chain(&w) {
            dump += &format!("{}: {}", k.0, dump_key(engine, k.0.as_bytes()).await);
        }
        panic!("seed {seed}: scan at {ts}: got {g:?}\nwant {w:?}\n{dump}");
    }
    let got = engine
        .scan(&start, end.as_deref(), ts, true, limit)
        .await
        .unwrap();
    let back: Vec<Item> = want.iter().rev().take(limit).cloned().collect();
    assert_eq!(got, back, "seed {seed}: reverse scan");
    // A walk that changes direction.
    let mut it = engine.iter(&start, end.as_deref(), ts);
    it.seek_to_first().await.unwrap();
    let mut pos = 0usize;
    for _ in 0..10 {
        match (it.item(), want.get(pos)) {
            (None, None) => break,
            (got, w) => assert_eq!(got, w, "seed {seed}: walk at {pos}"),
        }
        if rng.chance(70) || pos == 0 {
            it.next().await.unwrap();
            pos += 1;
        } else {
            it.prev().await.unwrap();
            pos -= 1;
        }
    }
}

#[test]
fn matches_the_model_through_flushes_compactions_and_reopens() {
    let seeds = match std::env::var("ENGINE_SEED") {
        Ok(s) => {
            let s = s.parse().expect("ENGINE_SEED is a number");
            s..s + 1
        }
        Err(_) => {
            0..std::env::var("ENGINE_SEEDS")
                .map_or(40, |n| n.parse().expect("ENGINE_SEEDS is a number"))
        }
    };
    for seed in seeds {
        block_on(model_run(seed));
    }
}

async fn model_run(seed: u64) {
    let mut rng = SimRng::new(seed);
    let disk = SimDisk::new(SimDiskOptions { seed });
    let config = small_config(seed);
    let (mut engine, _) = open(&disk, &config).await.unwrap();
    let mut model = Model::default();
    let mut floor = Timestamp::ZERO;
    let mut snapshot: Option<(Snapshot<_>, Model)> = None;
    // Even seeds collect garbage (and write each key in timestamp order, as
    // MVCC does); odd seeds write in any order and never collect.
    let gc = seed.is_multiple_of(2);
    let mut gen = TsGen {
        monotone: gc,
        ..TsGen::default()
    };
    let trace = std::env::var("ENGINE_TRACE").is_ok();
    for step in 0..400 {
        let op = rng.below(100);
        if trace {
            eprintln!("step {step}: op {op} floor {floor}");
        }
        match op {
            0..=54 => {
                let batch = random_batch(&mut rng, floor, &mut gen);
                if trace {
                    eprintln!(
                        "  {:?}",
                        batch
                            .ops()
                            .iter()
                            .map(|o| match o {
                                Op::Put { key, ts, .. } =>
                                    format!("put {} {ts}", String::from_utf8_lossy(key)),
                                Op::Delete { key, ts } =>
                                    format!("del {} {ts}", String::from_utf8_lossy(key)),
                                Op::DeleteRange { start, end } => format!(
                                    "delrange {}..{}",
                                    String::from_utf8_lossy(start),
                                    String::from_utf8_lossy(end)
                                ),
                            })
                            .collect::<Vec<_>>()
                    );
                }
                model.apply(&batch);
                engine.write(batch, rng.chance(30)).await.unwrap();
            }
            55..=69 => check_reads(&engine, &model, &mut rng, floor, seed).await,
            70..=79 => {
                engine.background_step().await.unwrap();
            }
            80..=82 => engine.flush().await.unwrap(),
            83 => engine.compact_all().await.unwrap(),
            84 if gc => {
                // GC: reads at or above the horizon must not change.
                floor = floor.max(random_ts(
                    &mut rng,
                    Timestamp::new(floor.wall_nanos.saturating_sub(20), 0),
                ));
                engine.set_gc_horizon(floor);
            }
            85..=87 => {
                engine.sync_wal().await.unwrap();
                drop(engine);
                engine = open(&disk, &config).await.unwrap().0;
            }
            88..=90 => snapshot = Some((engine.snapshot(), model.clone())),
            91..=93 => {
                if let Some((snap, old)) = &snapshot {
                    let key = random_key(&mut rng);
                    let ts = random_ts(&mut rng, floor);
                    let got = snap.get_version(&key, ts).await.unwrap();
                    let want = old.get(&key, ts);
                    // A tombstone at or below the horizon may have been collected.
                    let collected = matches!(want, Some((t, None)) if t <= floor) && got.is_none();
                    assert!(
                        got == want || collected,
                        "seed {seed} step {step}: snapshot {got:?} vs {want:?}"
                    );
                    let scan = snap.scan(b"", None, ts, false, usize::MAX).await.unwrap();
                    assert_eq!(
                        scan,
                        old.scan(b"", None, ts),
                        "seed {seed} step {step}: snapshot scan"
                    );
                }
            }
            _ => {
                let a = random_key(&mut rng);
                let size = engine.approximate_size(&a, None);
                assert!(size <= engine.approximate_size(b"", None), "seed {seed}");
            }
        }
    }
    engine.flush().await.unwrap();
    check_reads(&engine, &model, &mut rng, floor, seed).await;
    let stats = engine.level_stats();
    assert!(
        stats.tables.iter().sum::<usize>() > 0,
        "seed {seed}: nothing flushed"
    );
}
