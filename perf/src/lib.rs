//! Workload drivers for TellerDB (and any PostgreSQL-speaking database).
//!
//! `teller workload <bank|ycsb|tpcc|txn> <init|run|check> --url postgres://...`
//!
//! Each workload is three steps: `init` creates and loads its tables, `run`
//! drives prepared statements from many connections for a while and reports
//! throughput and latency, `check` verifies the invariants the workload keeps
//! (the bank total, the YCSB row count, the TPC-C consistency conditions).
//!
//! # Shape
//!
//! - [`driver`] is the workload-agnostic run loop: one tokio task and one
//!   connection per simulated client, ramp-up, an optional global rate limit,
//!   bounded retries of `40001`/`40P01`, reconnection, live progress once per
//!   second and the final summary. A workload only says how to pick the next
//!   operation and how to execute it ([`driver::Workload`], [`driver::Worker`]).
//! - [`stats`] keeps one HDR histogram per operation type and the error
//!   counters by SQLSTATE, and renders the summary and the JSON result.
//! - [`bank`], [`ycsb`], [`tpcc`] and [`txn`] are the workloads; [`gen`] holds the
//!   random generators they share (zipfian, latest, NURand, strings).
//! - [`compare`] is the helper of `scripts/compare-postgres.sh` (binary
//!   `teller-compare`): it normalises pgbench and sysbench results into the
//!   driver's JSON shape and tabulates rounds side by side.
//!
//! # Measurement rules
//!
//! - Latency is measured per operation from its *intended* start: without a
//!   rate limit that is when it was issued, with `--rate` it is its slot in the
//!   schedule, so a stalled server shows up as latency and is not hidden by
//!   the client waiting (no coordinated omission).
//! - A retried operation is one operation; its latency includes the retries.
//! - Operations that finish during `--ramp-up` show in the live progress but
//!   not in the summary; `--duration` is the measured window after ramp-up.
//! - Each client has its own connection and prepared statements; nothing is
//!   shared between clients on the hot path except two atomics (operation
//!   budget, YCSB insert key sequence).

pub mod bank;
pub mod cli;
pub mod compare;
pub mod conn;
pub mod driver;
pub mod gen;
pub mod stats;
pub mod tpcc;
pub mod txn;
pub mod ycsb;

use std::process::ExitCode;

pub use cli::run;

/// Entry point for `teller workload ...`: `args` is everything after
/// `workload`. Prints errors to stderr and maps them to the exit code.
pub fn run_cli(args: Vec<String>) -> ExitCode {
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::CliError::Usage(e)) => {
            // clap renders help and version as "errors" that are not failures.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("teller workload: {e}");
            ExitCode::FAILURE
        }
    }
}
