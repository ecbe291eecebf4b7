//! Multi-raft on one shard with the real WAL: proposals per second, commit
//! latency, group-commit batching and CPU per proposal for 1, 100 and 10,000
//! single-voter Raft groups, and the idle cost of 10,000 quiesced groups.
//!
//! The shard is built exactly as the node builds it (`shard.rs`): a glommio
//! executor with the node's task queues, `ShardStorage` (the LSM on O_DIRECT
//! files in Raft mode: its WAL is every group's log) and its Raft loop;
//! ranges are created with `Replication::create_range` and written with
//! `Replication::replicate`, the node's write path below evaluation.
//! Closed-loop clients (`load.rs`) write 16-byte keys with small values to
//! random ranges; `idle.rs` measures a shard whose ranges all went quiet.
//!
//! Run (figures for perf/RESULTS.md, "Raft"):
//!
//! ```text
//! cargo bench -p teller-benches --bench raft_wal -- --dir /path/on/the/disk
//! ```
//!
//! Options: `--groups 1,100,10000`, `--clients 64,256` (in flight),
//! `--secs 10` (measured window), `--warmup-secs 2`, `--runs 3` (medians
//! over runs), `--idle-groups 10000`, `--idle-secs 30`, `--settle-secs 2`,
//! `--value-size 100` (bytes), `--dir PATH` (emptied, then removed),
//! `--pin CPU`, `--quick` (the smoke run's sizes).
//!
//! Without `--bench` (that is, as a test target of `cargo test
//! --all-targets`) it runs the smoke sizes in about a second, and fails if a
//! write is lost or refused or if idle groups do any Raft work, so the
//! benchmark cannot rot.

mod cpu;
mod idle;
mod load;
mod report;
mod shard;

use std::path::PathBuf;
use std::time::Duration;

use idle::{run_idle, IdleConfig, IdleReport};
use load::{run_load, LoadConfig, LoadReport};
use shard::run_on_shard;

/// Seed of the clients' range choices (the runs differ by seed).
const SEED: u64 = 0x7e11e7;

struct Args {
    groups: Vec<u64>,
    clients: Vec<usize>,
    measure: Duration,
    warmup: Duration,
    runs: usize,
    idle_groups: u64,
    idle: Duration,
    settle: Duration,
    value_bytes: usize,
    dir: PathBuf,
    pin: Option<usize>,
}

impl Args {
    fn full() -> Args {
        Args {
            groups: vec![1, 100, 10_000],
            clients: vec![64, 256],
            measure: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            runs: 3,
            idle_groups: 10_000,
            idle: Duration::from_secs(30),
            settle: Duration::from_secs(2),
            value_bytes: 100,
            dir: std::env::temp_dir().join("teller-raft-wal-bench"),
            pin: None,
        }
    }

    /// The smoke run: every part once, tiny, in about a second.
    fn quick(self) -> Args {
        Args {
            groups: vec![1, 100],
            clients: vec![8],
            measure: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            runs: 1,
            idle_groups: 200,
            idle: Duration::from_millis(300),
            settle: Duration::from_millis(200),
            dir: std::env::temp_dir().join("teller-raft-wal-smoke"),
            ..self
        }
    }
}

fn parse() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut a = Args::full();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--quick") {
        a = a.quick();
    }
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        // `cargo bench` passes `--bench`; `--quick` was handled above.
        if flag == "--bench" || flag == "--quick" {
            i += 1;
            continue;
        }
        let value = args.get(i + 1).ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        let secs = || {
            value
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or(format!("{flag} {value}: not a number of seconds"))
        };
        let list = || {
            value
                .split(',')
                .map(|v| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}")))
                .collect::<Result<Vec<u64>, String>>()
        };
        match flag {
            "--groups" => a.groups = list()?,
            "--clients" => a.clients = list()?.into_iter().map(|c| c as usize).collect(),
            "--secs" => a.measure = secs()?,
            "--warmup-secs" => a.warmup = secs()?,
            "--runs" => a.runs = num()? as usize,
            "--idle-groups" => a.idle_groups = num()?,
            "--idle-secs" => a.idle = secs()?,
            "--settle-secs" => a.settle = secs()?,
            "--value-size" => a.value_bytes = num()? as usize,
            "--dir" => a.dir = PathBuf::from(value),
            "--pin" => a.pin = Some(num()? as usize),
            _ => return Err(format!("unknown option {flag}")),
        }
        i += 2;
    }
    validate(&a)?;
    Ok(a)
}

fn validate(a: &Args) -> Result<(), String> {
    if a.groups.contains(&0) || a.clients.contains(&0) {
        return Err("--groups and --clients take positive numbers".into());
    }
    if a.runs == 0 || a.measure.is_zero() {
        return Err("--runs and --secs must be positive".into());
    }
    Ok(())
}

fn main() {
    let code = match parse().and_then(|args| run(&args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("raft_wal: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &Args) -> Result<(), String> {
    report::header(args);
    let mut loads: Vec<LoadReport> = Vec::new();
    for &groups in &args.groups {
        for &clients in &args.clients {
            for run in 0..args.runs {
                let config = LoadConfig {
                    groups,
                    clients,
                    warmup: args.warmup,
                    measure: args.measure,
                    value_bytes: args.value_bytes,
                    seed: SEED + run as u64,
                };
                let r = run_on_shard(args.dir.clone(), args.pin, move |s| run_load(s, config))?;
                report::load_line(run + 1, &r);
                if r.proposals == 0 {
                    return Err(format!(
                        "{groups} groups, {clients} clients: no proposal committed in the window"
                    ));
                }
                loads.push(r);
            }
        }
    }
    report::load_medians(&loads);
    let mut idles: Vec<IdleReport> = Vec::new();
    for run in 0..args.runs {
        let config = IdleConfig {
            groups: args.idle_groups,
            settle: args.settle,
            idle: args.idle,
            value_bytes: args.value_bytes,
        };
        let r = run_on_shard(args.dir.clone(), args.pin, move |s| run_idle(s, config))?;
        report::idle_line(run + 1, &r);
        idles.push(r);
    }
    report::idle_median(&idles);
    for r in &idles {
        if r.wal_appends != 0 || r.wal_syncs != 0 || r.applied != 0 {
            return Err(format!(
                "{} idle groups did Raft work: {} WAL appends, {} syncs, {} entries applied",
                r.config.groups, r.wal_appends, r.wal_syncs, r.applied
            ));
        }
    }
    Ok(())
}
