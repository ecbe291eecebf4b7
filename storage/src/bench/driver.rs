//! The db_bench-style benchmark on the real disk (glommio, O_DIRECT): the
//! command-line shell of `benches/benches/storage_engine.rs` (and of the
//! `storage_engine` example, which builds without the rest of the workspace).
//! It spawns an executor and task queues and reads the clock: benchmark
//! tooling, not engine logic.
//!
//! One shard: the workloads run in the default task queue, flushes and
//! compactions in a background queue with 100 shares (as in the node). It
//! first measures the device's own synced-write latency (the floor under
//! every synced engine write), then runs the workloads — each with a latency
//! breakdown by what the write shared its time with ([`Cause`](super::Cause))
//! — then WAL appends of large records beside the raw O_DIRECT sequential
//! write bandwidth of the same disk, medians over rounds.
//!
//! Options: `--keys N` (key space, and writes of each fill and of
//! overwrite), `--writes N` (writes of each write workload instead; 0: keys),
//! `--ops N` (operations of each read workload; default: keys),
//! `--value-size B` (100), `--batch N` (writes per
//! batch, 1), `--sync 0|1` (fdatasync per batch), `--benchmarks a,b,...`,
//! `--dir PATH` (emptied first), `--memtable-mb N` (64), `--cache-mb N` (64),
//! `--floor-writes N` (device sync-latency probe, 0 to skip; 2000),
//! `--seq-mb N` (sequential test size per round, 0 to skip; 256),
//! `--seq-rounds N` (rounds of the sequential test, medians reported; 5),
//! `--pin CPU`. Without `--bench` (a test target run) everything runs tiny.

use std::path::PathBuf;
use std::rc::Rc;

use super::{BenchConfig, Workload};
use crate::disk::{probe_device, DmaDisk};
use crate::{Engine, EngineConfig};
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};

/// Locked memory for glommio's I/O buffers (the common limit is 8 MiB).
const IO_MEMORY_BYTES: usize = 4 << 20;
/// Keys and sequential megabytes of the smoke run in the test suite.
const SMOKE_KEYS: u64 = 5_000;
const SMOKE_SEQ_MB: u64 = 8;
const SMOKE_FLOOR_WRITES: u64 = 20;
/// Operations between two yields of the foreground to the background queue.
const YIELD_EVERY_OPS: u64 = 32;

struct Args {
    bench: BenchConfig,
    workloads: Vec<Workload>,
    dir: PathBuf,
    memtable_mb: usize,
    cache_mb: usize,
    seq_mb: u64,
    seq_rounds: usize,
    floor_writes: u64,
    pin: Option<usize>,
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        bench: BenchConfig {
            keys: 1_000_000,
            writes: 0,
            ops: 0,
            value_bytes: 100,
            batch: 1,
            sync: false,
            seed: 42,
        },
        workloads: Workload::ALL.to_vec(),
        dir: std::env::temp_dir().join("teller-storage-bench"),
        memtable_mb: 64,
        cache_mb: 64,
        seq_mb: 256,
        seq_rounds: 5,
        floor_writes: 2000,
        pin: None,
    };
    // Without `--bench` this runs as a test target (`cargo test
    // --all-targets`): every workload once at a tiny scale, so the benchmark
    // cannot rot, in seconds.
    if !args.iter().any(|a| a == "--bench") {
        a.bench.keys = SMOKE_KEYS;
        a.seq_mb = SMOKE_SEQ_MB;
        a.seq_rounds = 1;
        a.floor_writes = SMOKE_FLOOR_WRITES;
        a.dir = std::env::temp_dir().join("teller-storage-smoke");
    }
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        // `cargo bench` passes `--bench`; other unknown flags are errors.
        if flag == "--bench" {
            i += 1;
            continue;
        }
        let value = args.get(i + 1).ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag {
            "--keys" => a.bench.keys = num()?,
            "--ops" => a.bench.ops = num()?,
            "--writes" => a.bench.writes = num()?,
            "--value-size" => a.bench.value_bytes = num()? as usize,
            "--batch" => a.bench.batch = num()?.max(1),
            "--sync" => a.bench.sync = num()? != 0,
            "--memtable-mb" => a.memtable_mb = num()? as usize,
            "--cache-mb" => a.cache_mb = num()? as usize,
            "--seq-mb" => a.seq_mb = num()?,
            "--seq-rounds" => a.seq_rounds = num()?.max(1) as usize,
            "--floor-writes" => a.floor_writes = num()?,
            "--pin" => a.pin = Some(num()? as usize),
            "--dir" => a.dir = PathBuf::from(value),
            "--benchmarks" => {
                a.workloads = value
                    .split(',')
                    .map(|w| Workload::parse(w).ok_or(format!("unknown benchmark {w}")))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown option {flag}")),
        }
        i += 2;
    }
    if a.bench.ops == 0 {
        a.bench.ops = a.bench.keys;
    }
    Ok(a)
}

/// Runs the benchmark with command-line `args` (without the program name);
/// exits the process with status 2 on bad arguments, 1 on an engine error.
pub fn main(args: Vec<String>) {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("storage_engine: {e}");
            std::process::exit(2);
        }
    };
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir).expect("create the bench directory");
    let placement = args.pin.map_or(Placement::Unbound, Placement::Fixed);
    LocalExecutorBuilder::new(placement)
        .io_memory(IO_MEMORY_BYTES)
        .name("storage-bench")
        .spawn(move || run(args))
        .expect("spawn the executor")
        .join()
        .expect("the executor panicked");
}

/// One engine on a fresh directory, with its background task.
struct Shard {
    engine: Rc<Engine<DmaDisk>>,
    /// Dropping it cancels the background task (a fresh shard replaces this).
    _background: glommio::Task<()>,
}

impl Shard {
    async fn open(args: &Args) -> Shard {
        let config = EngineConfig {
            memtable_bytes: args.memtable_mb << 20,
            block_cache_bytes: args.cache_mb << 20,
            ..EngineConfig::default()
        };
        let engine_dir = args.dir.join("engine");
        let _ = std::fs::remove_dir_all(&engine_dir);
        std::fs::create_dir_all(&engine_dir).expect("create the engine directory");
        let (engine, _) = Engine::open(DmaDisk::new(), &engine_dir, config, |_| {})
            .await
            .expect("open the engine");
        let engine = Rc::new(engine);
        let background = glommio::executor().create_task_queue(
            Shares::Static(100),
            Latency::NotImportant,
            "background",
        );
        let bg = Rc::clone(&engine);
        let task = glommio::spawn_local_into(async move { bg.run_background().await }, background)
            .expect("spawn the background task");
        Shard {
            engine,
            _background: task,
        }
    }

    fn report(&self) {
        let m = self.engine.metrics();
        let stats = self.engine.level_stats();
        println!(
            "engine: tables per level {:?}, MiB per level {:?}, flushed {} MiB, compaction wrote {} MiB, stalls {}, WAL rolls {} (segments created inline {}, spares {})",
            stats.tables,
            stats.bytes.iter().map(|b| b >> 20).collect::<Vec<_>>(),
            m.flush_bytes >> 20,
            m.compaction_bytes_written >> 20,
            m.write_stalls,
            m.wal_rolls,
            m.wal_segments_created_inline,
            m.wal_spares,
        );
    }
}

async fn run(args: Args) {
    probe_device(&args.dir).await.expect("probe the device");
    if args.floor_writes > 0 {
        match super::sync_floor(&DmaDisk::new(), &args.dir, args.floor_writes).await {
            Ok(mut l) => println!(
                "device: 4 KiB write + fdatasync x {}: p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
                l.len(),
                l.percentile(50.0).as_secs_f64() * 1e6,
                l.percentile(99.0).as_secs_f64() * 1e6,
                l.percentile(99.9).as_secs_f64() * 1e6,
                l.percentile(100.0).as_secs_f64() * 1e6,
            ),
            Err(e) => eprintln!("device sync floor: {e}"),
        }
    }
    let b = &args.bench;
    println!(
        "teller-storage: keys {} writes {} ops {} key 16 B value {} B batch {} sync {} memtable {} MiB cache {} MiB",
        b.keys,
        if b.writes > 0 { b.writes } else { b.keys },
        b.ops, b.value_bytes, b.batch, b.sync, args.memtable_mb, args.cache_mb
    );
    let mut shard: Option<Shard> = None;
    for &w in &args.workloads {
        // As db_bench: a fill starts from an empty database; the other
        // workloads use what the previous ones left.
        let fresh = matches!(w, Workload::FillSeq | Workload::FillRandom);
        if fresh || shard.is_none() {
            if let Some(old) = shard.take() {
                old.report();
            }
            shard = Some(Shard::open(&args).await);
        }
        let engine = &shard.as_ref().expect("opened above").engine;
        match super::run(engine, w, b, YIELD_EVERY_OPS).await {
            Ok(mut report) => {
                println!("{}", report.line());
                for line in report.breakdown.lines() {
                    println!("{line}");
                }
            }
            Err(e) => {
                eprintln!("{}: {e}", w.name());
                std::process::exit(1);
            }
        }
    }
    if let Some(shard) = shard.take() {
        shard.report();
    }
    if args.seq_mb > 0 {
        let seq_dir = args.dir.join("seq");
        let wal_dir = args.dir.join("seq-wal");
        std::fs::create_dir_all(&seq_dir).expect("create the sequential directory");
        std::fs::create_dir_all(&wal_dir).expect("create the WAL directory");
        let total = args.seq_mb << 20;
        for (record_kib, per_sync) in [(256usize, 16u64), (1024, 32)] {
            let r = super::sequential(
                DmaDisk::new(),
                &seq_dir,
                &wal_dir,
                total,
                record_kib << 10,
                per_sync,
                args.seq_rounds,
            )
            .await;
            match r {
                Ok(r) => println!(
                    "sequential: {record_kib} KiB records, {} MiB per sync: {r}",
                    (record_kib as u64 * per_sync) >> 10,
                ),
                Err(e) => eprintln!("sequential: {e}"),
            }
            let _ = std::fs::remove_dir_all(&wal_dir);
            std::fs::create_dir_all(&wal_dir).expect("recreate the WAL directory");
        }
    }
}
