//! `teller`: the TellerDB server and its tools.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use teller_node::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "teller",
    version,
    about = "TellerDB: a distributed SQL database that speaks PostgreSQL",
    after_help = "Examples:\n  \
        teller start                                  # 127.0.0.1:5433, ./teller-data, one shard per CPU\n  \
        teller start --listen 0.0.0.0:5433 --shards 4 --data-dir /var/lib/teller\n  \
        teller start --config teller.toml             # see `teller config` for every setting\n  \
        teller workload bank run --url postgres://teller@127.0.0.1:5433/teller --duration 30\n  \
        psql -h 127.0.0.1 -p 5433 -U teller -c 'select 1'"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node and serve clients until SIGINT or SIGTERM.
    #[command(after_help = "Examples:\n  \
        teller start\n  \
        teller start --listen 127.0.0.1:6000 --shards 2 --data-dir /tmp/teller\n  \
        TELLER_LOG=debug teller start --config teller.toml")]
    Start {
        /// Data directory (default ./teller-data).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Address to listen on for PostgreSQL clients (default 127.0.0.1:5433).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// Number of shards, one per core (default: the number of CPUs).
        #[arg(long, value_name = "N")]
        shards: Option<usize>,
        /// Configuration file (TOML); unset settings take the embedded defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run a workload (bank, ycsb, tpcc) against any PostgreSQL-compatible URL.
    #[command(after_help = "Examples:\n  \
        teller workload bank init --url postgres://teller@127.0.0.1:5433/teller --accounts 10000\n  \
        teller workload bank run --url postgres://teller@127.0.0.1:5433/teller --concurrency 16 --duration 30\n  \
        teller workload ycsb run --workload a --url URL --concurrency 16 --duration 60 --json a.json\n  \
        teller workload tpcc check --url URL\n\n\
        `teller workload <bank|ycsb|tpcc> --help` lists each workload's options.")]
    Workload {
        /// The workload, its phase (init, run, check) and their options.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Print the version.
    Version,
    /// Print the embedded default configuration, documenting every setting.
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("teller {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        // Runs its own (tokio) client runtime; no shard executors are involved.
        Command::Workload { args } => teller_perf::run_cli(args),
        Command::Config => {
            print!("{}", teller_node::config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::Start {
            data_dir,
            listen,
            shards,
            config,
        } => match start(
            config,
            Overrides {
                listen,
                data_dir,
                shards,
            },
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("teller: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

fn start(config_path: Option<PathBuf>, overrides: Overrides) -> Result<(), String> {
    let mut config = match &config_path {
        None => Config::default_config(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            Config::parse(&text)?
        }
    };
    config.apply(overrides);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    config.validate(cpus)?;
    init_logging(&config.log.level);
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(stop.clone())?;
    teller_node::node::run(config, stop)
}

fn init_logging(level: &str) {
    let filter = std::env::var("TELLER_LOG").unwrap_or_else(|_| level.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_thread_names(true)
        .init();
}

/// Blocks SIGINT and SIGTERM in every thread (the mask is inherited by the
/// shard threads spawned later) and waits for them on a dedicated thread.
fn install_signal_handlers(stop: Arc<AtomicBool>) -> Result<(), String> {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before use;
    // the pointers passed are valid for the duration of each call.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err("blocking SIGINT/SIGTERM failed".into());
        }
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` was initialised above and outlives the call;
            // `signal` is a valid out-pointer.
            let rc = unsafe { libc::sigwait(&set, &mut signal) };
            if rc == 0 {
                let name = if signal == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                tracing::info!(signal = name, "shutting down");
                stop.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| format!("starting the signal thread: {e}"))?;
    Ok(())
}
