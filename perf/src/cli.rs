//! Command line: `teller workload <bank|ycsb|tpcc|txn> <init|run|check> ...`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value};

use crate::conn::{CheckReport, Isolation};
use crate::driver::{self, RunOptions, Workload};
use crate::{bank, tpcc, txn, ycsb};

#[derive(Debug, Parser)]
#[command(
    name = "teller workload",
    about = "Drive bank, YCSB, TPC-C or txn workloads against a PostgreSQL-speaking database"
)]
struct Cli {
    #[command(subcommand)]
    workload: WorkloadCmd,
}

#[derive(Debug, Subcommand)]
enum WorkloadCmd {
    /// Transfers between accounts; the total balance is invariant.
    Bank {
        #[command(subcommand)]
        step: BankStep,
    },
    /// YCSB core workloads A-F on `usertable`.
    Ycsb {
        #[command(subcommand)]
        step: YcsbStep,
    },
    /// TPC-C: nine tables, five transactions, consistency checks.
    Tpcc {
        #[command(subcommand)]
        step: TpccStep,
    },
    /// Single-row updates and two-row transfers by where the rows live.
    Txn {
        #[command(subcommand)]
        step: TxnStep,
    },
}

#[derive(Debug, Args)]
struct ConnArgs {
    /// Connection URL, e.g. postgres://postgres@127.0.0.1:5432/postgres
    #[arg(long)]
    url: String,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Loader connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Concurrent clients, one connection each (default 8; TPC-C: 10 per
    /// driven warehouse, the specification's terminals).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Measured seconds after ramp-up (default 10, or unlimited with --operations).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds over which clients start, not measured.
    #[arg(long, default_value_t = 0.0)]
    ramp_up: f64,
    /// Total operations per second over all clients (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many operations in total.
    #[arg(long)]
    operations: Option<u64>,
    /// Random seed (default: from the clock; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the machine-readable result here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum BankStep {
    /// Create and load `bank_accounts`.
    Init {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long, default_value_t = 1000)]
        accounts: u64,
        #[arg(long, default_value_t = 1000)]
        initial_balance: i64,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run transfers and balance sums.
    Run {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        run: RunArgs,
        /// Accepted for symmetry with `init`; the count `init` recorded is used.
        #[arg(long)]
        accounts: Option<u64>,
        /// Percent of operations that sum every balance.
        #[arg(long, default_value_t = 5)]
        sum_percent: u32,
        #[arg(long, value_enum, default_value_t = Isolation::Serializable)]
        isolation: Isolation,
    },
    /// Verify row count and total balance.
    Check {
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Debug, Subcommand)]
enum YcsbStep {
    /// Create and load `usertable`.
    Init {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run one of the core workloads.
    Run {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, value_enum)]
        workload: ycsb::CoreWorkload,
        /// Override the workload's request distribution.
        #[arg(long, value_enum)]
        distribution: Option<ycsb::Distribution>,
        /// Reads and updates draw from the first N records (default: all
        /// present); inserts always continue after the last record present.
        #[arg(long)]
        records: Option<u64>,
        /// Longest scan of workload E.
        #[arg(long, default_value_t = 100)]
        max_scan_length: i64,
    },
    /// Verify the row count and the field sizes.
    Check {
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TpccStep {
    /// Create the nine tables and load N warehouses.
    Init {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long, default_value_t = 1)]
        warehouses: u32,
        /// Items (100000 in the specification; smaller for tests).
        #[arg(long, default_value_t = tpcc::ITEMS_SPEC)]
        items: u32,
        /// Customers (and initial orders) per district (3000 in the specification).
        #[arg(long, default_value_t = tpcc::CUSTOMERS_SPEC)]
        customers: u32,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run the five transactions in the standard mix.
    Run {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        run: RunArgs,
        /// Warehouses to drive (default: all loaded).
        #[arg(long)]
        warehouses: Option<u32>,
        /// Keying and think times of the specification (off by default).
        #[arg(long)]
        think_time: bool,
        #[arg(long, value_enum, default_value_t = Isolation::Serializable)]
        isolation: Isolation,
    },
    /// Consistency conditions of clause 3.3.2.
    Check {
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TxnStep {
    /// Create and load `txn_accounts` (ids 0..rows).
    Init {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long, default_value_t = 10_000)]
        rows: u64,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run updates or transfers with rows placed as asked.
    Run {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, value_enum)]
        op: txn::Op,
        /// Where a transfer's two rows lie (update: any).
        #[arg(long, value_enum, default_value_t = txn::Placement::Any)]
        placement: txn::Placement,
        /// Rows (update) or pairs (transfer) each client draws from.
        #[arg(long, default_value_t = txn::PER_CLIENT_DEFAULT)]
        per_client: usize,
        /// Every client draws from the same rows (contention) instead of
        /// its own.
        #[arg(long)]
        shared_rows: bool,
        #[arg(long, value_enum, default_value_t = Isolation::Serializable)]
        isolation: Isolation,
    },
    /// Verify the row count and the total balance.
    Check {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show where the table's ranges live; optionally wait until they
    /// spread.
    Placement {
        #[command(flatten)]
        conn: ConnArgs,
        /// Wait until this many shards each own --min-ranges-per-shard
        /// ranges holding rows.
        #[arg(long, default_value_t = 1)]
        min_shards: usize,
        #[arg(long, default_value_t = 1)]
        min_ranges_per_shard: usize,
        /// Then wait until the table's ranges have not changed for this
        /// many seconds (splits and moves settled).
        #[arg(long, default_value_t = 0.0)]
        stable: f64,
        /// Seconds to wait for all that (0: look once).
        #[arg(long, default_value_t = 0.0)]
        timeout: f64,
    },
    /// Medians of `txn run --json` results, as a markdown table.
    Report {
        /// Result files, in the order their configurations should appear.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    Usage(clap::Error),
    Db(tokio_postgres::Error),
    Io(std::io::Error),
    /// `check` found a violated invariant, or the run saw one.
    Check(String),
    Setup(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(e) => write!(f, "{e}"),
            CliError::Db(e) => match e.as_db_error() {
                Some(db) => write!(f, "database error {}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
            CliError::Io(e) => write!(f, "{e}"),
            CliError::Check(s) | CliError::Setup(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<tokio_postgres::Error> for CliError {
    fn from(e: tokio_postgres::Error) -> Self {
        CliError::Db(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(e)
    }
}

/// Parses `args` (everything after `teller workload`) and runs the command.
pub fn run(args: Vec<String>) -> Result<(), CliError> {
    let cli = Cli::try_parse_from(std::iter::once("teller workload".to_string()).chain(args))
        .map_err(CliError::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(dispatch(cli.workload))
}

async fn dispatch(cmd: WorkloadCmd) -> Result<(), CliError> {
    match cmd {
        WorkloadCmd::Bank { step } => bank_cmd(step).await,
        WorkloadCmd::Ycsb { step } => ycsb_cmd(step).await,
        WorkloadCmd::Tpcc { step } => tpcc_cmd(step).await,
        WorkloadCmd::Txn { step } => txn_cmd(step).await,
    }
}

fn missing_init(workload: &str) -> CliError {
    CliError::Setup(format!(
        "no {workload} metadata found: run `teller workload {workload} init` first"
    ))
}

async fn bank_cmd(step: BankStep) -> Result<(), CliError> {
    match step {
        BankStep::Init {
            conn,
            accounts,
            initial_balance,
            load,
        } => {
            if accounts < 2 {
                return Err(CliError::Setup("--accounts must be at least 2".into()));
            }
            let t = std::time::Instant::now();
            bank::init(&conn.url, accounts, initial_balance, load.concurrency).await?;
            println!(
                "bank: loaded {accounts} accounts in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        BankStep::Run {
            conn,
            run,
            accounts,
            sum_percent,
            isolation,
        } => {
            let bank = bank::Bank::from_meta(&conn.url, sum_percent.min(100), isolation)
                .await?
                .ok_or_else(|| missing_init("bank"))?;
            if accounts.is_some_and(|a| a != bank.accounts) {
                eprintln!(
                    "bank: --accounts ignored: the database holds {} accounts (from init)",
                    bank.accounts
                );
            }
            drive(Arc::new(bank), &conn.url, &run).await
        }
        BankStep::Check { conn } => report_check("bank", bank::check(&conn.url).await?),
    }
}

async fn ycsb_cmd(step: YcsbStep) -> Result<(), CliError> {
    match step {
        YcsbStep::Init {
            conn,
            records,
            load,
        } => {
            if records == 0 {
                return Err(CliError::Setup("--records must be positive".into()));
            }
            let t = std::time::Instant::now();
            ycsb::init(&conn.url, records, load.concurrency, load.seed).await?;
            println!(
                "ycsb: loaded {records} records in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        YcsbStep::Run {
            conn,
            run,
            workload,
            distribution,
            records,
            max_scan_length,
        } => {
            if records == Some(0) {
                return Err(CliError::Setup("--records must be positive".into()));
            }
            let ycsb = ycsb::Ycsb::from_meta(
                &conn.url,
                workload,
                distribution,
                records,
                max_scan_length.max(1),
            )
            .await?
            .ok_or_else(|| missing_init("ycsb"))?;
            let ycsb = Arc::new(ycsb);
            let result = drive(ycsb.clone(), &conn.url, &run).await;
            // Record inserted rows even if the run reported a failure.
            ycsb.record_inserts(&conn.url).await?;
            result
        }
        YcsbStep::Check { conn } => report_check("ycsb", ycsb::check(&conn.url).await?),
    }
}

async fn tpcc_cmd(step: TpccStep) -> Result<(), CliError> {
    match step {
        TpccStep::Init {
            conn,
            warehouses,
            items,
            customers,
            load,
        } => {
            let scale = tpcc::Scale::new(warehouses, items, customers).map_err(CliError::Setup)?;
            let t = std::time::Instant::now();
            tpcc::load::init(&conn.url, &scale, load.concurrency, load.seed).await?;
            println!(
                "tpcc: loaded {warehouses} warehouses in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        TpccStep::Run {
            conn,
            run,
            warehouses,
            think_time,
            isolation,
        } => {
            let tpcc = tpcc::Tpcc::from_meta(&conn.url, warehouses, think_time, isolation)
                .await?
                .ok_or_else(|| missing_init("tpcc"))?;
            if warehouses.is_some_and(|w| w != tpcc.active_warehouses) {
                eprintln!(
                    "tpcc: driving {} of the {} loaded warehouses",
                    tpcc.active_warehouses, tpcc.scale.warehouses
                );
            }
            drive(Arc::new(tpcc), &conn.url, &run).await
        }
        TpccStep::Check { conn } => report_check("tpcc", tpcc::check::check(&conn.url).await?),
    }
}

async fn txn_cmd(step: TxnStep) -> Result<(), CliError> {
    match step {
        TxnStep::Init { conn, rows, load } => {
            if rows < 2 {
                return Err(CliError::Setup("--rows must be at least 2".into()));
            }
            let t = std::time::Instant::now();
            txn::init(&conn.url, rows, load.concurrency).await?;
            println!(
                "txn: loaded {rows} rows in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        TxnStep::Run {
            conn,
            run,
            op,
            placement,
            per_client,
            shared_rows,
            isolation,
        } => {
            if per_client == 0 {
                return Err(CliError::Setup("--per-client must be positive".into()));
            }
            let options = txn::TxnOptions {
                op,
                placement,
                isolation,
                per_client,
                shared_rows,
            };
            let clients = run.concurrency.unwrap_or(driver::CONCURRENCY_DEFAULT);
            if clients == 0 {
                return Err(CliError::Setup("--concurrency must be positive".into()));
            }
            let seed = run.seed.unwrap_or(1);
            let workload = txn::Txn::prepare(&conn.url, options, clients, seed).await?;
            println!("{}", workload.describe());
            drive(Arc::new(workload), &conn.url, &run).await
        }
        TxnStep::Check { conn } => report_check("txn", txn::check(&conn.url).await?),
        TxnStep::Placement {
            conn,
            min_shards,
            min_ranges_per_shard,
            stable,
            timeout,
        } => {
            let seconds = |name: &str, v: f64| {
                if v.is_finite() && v >= 0.0 {
                    Ok(Duration::from_secs_f64(v))
                } else {
                    Err(CliError::Setup(format!(
                        "--{name} must be a non-negative number"
                    )))
                }
            };
            let wait = txn::SpreadWait {
                min_shards,
                min_ranges_per_shard,
                stable: seconds("stable", stable)?,
                timeout: seconds("timeout", timeout)?,
            };
            txn::show_placement(&conn.url, &wait).await
        }
        TxnStep::Report { files } => {
            let mut results = Vec::with_capacity(files.len());
            for f in files {
                let text = std::fs::read_to_string(&f)?;
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| CliError::Setup(format!("{}: {e}", f.display())))?;
                results.push((f.display().to_string(), value));
            }
            print!("{}", txn::report::table(&results).map_err(CliError::Setup)?);
            Ok(())
        }
    }
}

fn report_check(workload: &str, report: CheckReport) -> Result<(), CliError> {
    print!("{}", report.render());
    if report.passed() {
        println!("{workload} check passed");
        Ok(())
    } else {
        Err(CliError::Check(format!("{workload} check failed")))
    }
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs a workload, prints the summary and writes the JSON result.
async fn drive<W: Workload>(workload: Arc<W>, url: &str, run: &RunArgs) -> Result<(), CliError> {
    let positive = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(CliError::Setup(format!(
                "--{name} must be a non-negative number"
            )))
        }
    };
    let concurrency = run
        .concurrency
        .unwrap_or_else(|| workload.default_concurrency());
    if concurrency == 0 {
        return Err(CliError::Setup("--concurrency must be positive".into()));
    }
    if run.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(CliError::Setup("--rate must be positive".into()));
    }
    let opts = RunOptions {
        url: url.to_string(),
        concurrency,
        duration: run.duration.map(|d| positive("duration", d)).transpose()?,
        ramp_up: positive("ramp-up", run.ramp_up)?,
        rate: run.rate,
        operations: run.operations,
        seed: run.seed.unwrap_or_else(clock_seed),
        progress: !run.quiet,
    };
    println!(
        "{}: {} clients, seed {}",
        workload.name(),
        opts.concurrency,
        opts.seed
    );
    let summary = driver::run(workload.clone(), &opts).await?;
    workload.after_run(url).await?;
    let extra: Map<String, Value> = workload.extra(&summary);
    print!("{}", summary.render(&extra));
    if let Some(path) = &run.json {
        let text =
            serde_json::to_string_pretty(&summary.to_json(extra)).expect("a JSON value serializes");
        std::fs::write(path, text + "\n")?;
    }
    match summary.recorder.errors.get("invariant") {
        Some(n) => Err(CliError::Check(format!(
            "{n} operations saw a violated invariant"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stable_interface_parses() {
        for args in [
            "ycsb init --url u --records 5",
            "ycsb run --workload a --url u --concurrency 2 --duration 1 --json f",
            "tpcc init --url u --warehouses 2",
            "tpcc run --url u --warehouses 2 --concurrency 2 --duration 1 --json f",
            "bank init --url u --accounts 10",
            "bank run --url u --accounts 10 --concurrency 2 --duration 1 --json f",
            "bank check --url u",
            "txn init --url u --rows 100",
            "txn run --url u --op transfer --placement cross-shard --concurrency 2 --duration 1 --json f",
            "txn run --url u --op update --per-client 3 --shared-rows --isolation read-committed",
            "txn placement --url u --min-shards 2 --stable 3 --timeout 30",
            "txn report a.json b.json",
        ] {
            let argv = std::iter::once("teller workload").chain(args.split(' '));
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args}: {e}"));
        }
    }
}
