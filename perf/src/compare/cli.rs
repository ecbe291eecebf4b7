//! `teller-compare`: the helper commands `scripts/compare-postgres.sh` calls.
//!
//! ```text
//! teller-compare pgbench --output FILE --log-prefix PREFIX --json OUT [--remove-logs]
//! teller-compare sysbench --output FILE --json OUT
//! teller-compare table --out DIR --workloads "ycsb-a tpcc ..."
//! teller-compare line FILE      one-line summary of a result JSON
//! teller-compare free-port
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use super::outcome::Outcome;
use super::table::figure;
use super::{pgbench, sysbench, table, ParseError};

#[derive(Debug, Parser)]
#[command(
    name = "teller-compare",
    about = "Normalise pgbench/sysbench results and tabulate comparison rounds"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Turn a pgbench run (its output and per-transaction logs) into a result JSON.
    Pgbench {
        /// pgbench's stdout and stderr.
        #[arg(long)]
        output: PathBuf,
        /// The `--log-prefix` given to pgbench.
        #[arg(long)]
        log_prefix: PathBuf,
        #[arg(long)]
        json: PathBuf,
        /// Delete the log files once read (they grow by a line per transaction).
        #[arg(long)]
        remove_logs: bool,
    },
    /// Turn a sysbench run's output into a result JSON.
    Sysbench {
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        json: PathBuf,
    },
    /// Gather the rounds under DIR/runs into DIR/table.md and DIR/table.json.
    Table {
        #[arg(long)]
        out: PathBuf,
        /// Workloads in table order, separated by spaces.
        #[arg(long)]
        workloads: String,
    },
    /// Print a one-line summary of a result JSON (progress of the script).
    Line { json: PathBuf },
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
}

/// Why a command failed.
#[derive(Debug)]
pub enum CompareError {
    Usage(clap::Error),
    Io(PathBuf, std::io::Error),
    Parse(PathBuf, ParseError),
}

impl std::fmt::Display for CompareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompareError::Usage(e) => write!(f, "{e}"),
            CompareError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CompareError::Parse(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

fn read(path: &Path) -> Result<String, CompareError> {
    fs::read_to_string(path).map_err(|e| CompareError::Io(path.to_path_buf(), e))
}

fn write(path: &Path, text: &str) -> Result<(), CompareError> {
    fs::write(path, text).map_err(|e| CompareError::Io(path.to_path_buf(), e))
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), CompareError> {
    let text = serde_json::to_string_pretty(v).expect("a JSON value serializes");
    write(path, &(text + "\n"))
}

/// pgbench's per-thread logs: `PREFIX.<pid>` and `PREFIX.<pid>.<thread>`.
fn pgbench_logs(prefix: &Path) -> Result<Vec<PathBuf>, CompareError> {
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = format!(
        "{}.",
        prefix
            .file_name()
            .map_or("".into(), |n| n.to_string_lossy())
    );
    let entries = fs::read_dir(&dir).map_err(|e| CompareError::Io(dir.clone(), e))?;
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&stem))
        })
        .collect();
    logs.sort();
    Ok(logs)
}

fn pgbench_cmd(
    output: &Path,
    prefix: &Path,
    json: &Path,
    remove: bool,
) -> Result<(), CompareError> {
    let text = read(output)?;
    let mut log = pgbench::Log::default();
    let logs = pgbench_logs(prefix)?;
    for path in &logs {
        log.add(&read(path)?)
            .map_err(|e| CompareError::Parse(path.clone(), e))?;
    }
    let v = pgbench::result(&text, log).map_err(|e| CompareError::Parse(output.into(), e))?;
    write_json(json, &v)?;
    if remove {
        for path in &logs {
            fs::remove_file(path).map_err(|e| CompareError::Io(path.clone(), e))?;
        }
    }
    Ok(())
}

fn table_cmd(out: &Path, workloads: &str) -> Result<(), CompareError> {
    let workloads: Vec<String> = workloads.split_whitespace().map(String::from).collect();
    let context_path = out.join("context.txt");
    let context: Vec<String> = match fs::read_to_string(&context_path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CompareError::Io(context_path, e)),
    };
    let rows = table::read(out, &workloads);
    let md = table::markdown(&rows, &context);
    write(&out.join("table.md"), &md)?;
    write_json(&out.join("table.json"), &table::to_json(&rows, &context))?;
    print!("{md}");
    Ok(())
}

/// `8312 ops/s, p50 0.97 ms, p99 11.5 ms, 0 errors`.
pub fn line(o: &Outcome) -> String {
    format!(
        "{} {}, p50 {} ms, p99 {} ms, {} errors",
        figure(o.throughput),
        o.unit,
        figure(o.p50_ms),
        figure(o.p99_ms),
        o.errors.values().sum::<u64>()
    )
}

fn line_cmd(path: &Path) -> Result<(), CompareError> {
    let v: serde_json::Value = serde_json::from_str(&read(path)?)
        .map_err(|e| CompareError::Parse(path.into(), ParseError(e.to_string())))?;
    let o = Outcome::from_json(&v).map_err(|e| CompareError::Parse(path.into(), e))?;
    println!("{}", line(&o));
    Ok(())
}

fn free_port() -> Result<(), CompareError> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| CompareError::Io("127.0.0.1:0".into(), e))?;
    println!("{}", addr.port());
    Ok(())
}

/// Parses `args` (without the program name) and runs the command.
pub fn run(args: Vec<String>) -> Result<(), CompareError> {
    let cli = Cli::try_parse_from(std::iter::once("teller-compare".to_string()).chain(args))
        .map_err(CompareError::Usage)?;
    match cli.cmd {
        Cmd::Pgbench {
            output,
            log_prefix,
            json,
            remove_logs,
        } => pgbench_cmd(&output, &log_prefix, &json, remove_logs),
        Cmd::Sysbench { output, json } => {
            let text = read(&output)?;
            let v = sysbench::result(&text).map_err(|e| CompareError::Parse(output, e))?;
            write_json(&json, &v)
        }
        Cmd::Table { out, workloads } => table_cmd(&out, &workloads),
        Cmd::Line { json } => line_cmd(&json),
        Cmd::FreePort => free_port(),
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
    fn summary_line_names_the_headline() {
        let v = serde_json::json!({ "tpmC": 2565.4, "ops_per_sec": 95.0, "p50_ms": 1.0,
            "p99_ms": 2.0, "operations": { "new_order": { "p50_ms": 34.56, "p99_ms": 1037.8 } },
            "errors": { "40001": 3 } });
        let o = Outcome::from_json(&v).expect("valid");
        assert_eq!(line(&o), "2565 tpmC, p50 34.6 ms, p99 1038 ms, 3 errors");
    }

    #[test]
    fn pgbench_logs_are_found_by_prefix_and_removed() {
        let dir = std::env::temp_dir().join(format!("teller-compare-pgb-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let output = dir.join("out.txt");
        fs::write(
            &output,
            "number of transactions actually processed: 3\ntps = 1.5 (without initial connection time)\n",
        )
        .expect("write");
        fs::write(dir.join("log.42"), "0 1 1000 0 1 2 0\n0 2 3000 0 1 2 0\n").expect("write");
        fs::write(dir.join("log.42.1"), "1 1 2000 0 1 2 0\n").expect("write");
        fs::write(dir.join("other.42"), "not a log\n").expect("write");
        let json = dir.join("r.json");
        pgbench_cmd(&output, &dir.join("log"), &json, true).expect("parsed");
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&json).expect("read")).expect("json");
        assert_eq!(v["ops"], 3);
        assert_eq!(v["ops_per_sec"], 1.5);
        assert!(!dir.join("log.42").exists() && dir.join("other.42").exists());
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
