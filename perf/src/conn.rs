//! Connections, SQLSTATE classification, isolation levels and the small
//! metadata table in which `init` leaves the parameters `run` and `check` need.

use clap::ValueEnum;
use serde_json::Value;
use tokio_postgres::{Client, IsolationLevel, NoTls};

/// Opens one connection and drives it on a background task.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The client sees the failure on its next request; nothing to do here.
        let _ = connection.await;
    });
    Ok(client)
}

/// The SQLSTATE of an error; for errors the server did not send,
/// `08006` (connection failure) when the connection is gone or failed with
/// an I/O error, and `client` for anything else the client rejected (a
/// result that does not decode as the expected type, for instance).
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match e.code() {
        Some(code) => code.code().to_string(),
        None if e.is_closed() => "08006".to_string(),
        None if e.source().is_some_and(|s| s.is::<std::io::Error>()) => "08006".to_string(),
        None => "client".to_string(),
    }
}

/// The session is over: the connection closed or failed (class 08), or the
/// server ended the session (57P01 admin shutdown, 57P02 crash shutdown,
/// 57P03 cannot connect now). The client must reconnect.
pub fn is_session_fatal(e: &tokio_postgres::Error) -> bool {
    let code = sqlstate(e);
    code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
}

/// Serialization failure and deadlock: the transaction may be retried as is.
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code().map(|c| c.code()), Some("40001" | "40P01"))
}

/// Transaction isolation requested for multi-statement transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    Serializable,
    RepeatableRead,
    ReadCommitted,
}

impl Isolation {
    /// The name the command line uses (`serializable`, `read-committed`, ...).
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }

    pub fn level(self) -> IsolationLevel {
        match self {
            Isolation::Serializable => IsolationLevel::Serializable,
            Isolation::RepeatableRead => IsolationLevel::RepeatableRead,
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        }
    }
}

/// SQL string literal for generated text (alphanumeric in practice, but
/// quoted properly anyway).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const META_DDL: &str = "CREATE TABLE IF NOT EXISTS teller_workload_meta \
     (workload VARCHAR(32) PRIMARY KEY, params TEXT NOT NULL)";

/// Records a workload's load parameters (replacing earlier ones).
pub async fn put_meta(
    client: &Client,
    workload: &str,
    params: &Value,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(META_DDL).await?;
    client
        .execute(
            "DELETE FROM teller_workload_meta WHERE workload = $1",
            &[&workload],
        )
        .await?;
    client
        .execute(
            "INSERT INTO teller_workload_meta (workload, params) VALUES ($1, $2)",
            &[&workload, &params.to_string()],
        )
        .await?;
    Ok(())
}

/// The parameters `init` recorded, if any.
pub async fn get_meta(
    client: &Client,
    workload: &str,
) -> Result<Option<Value>, tokio_postgres::Error> {
    client.batch_execute(META_DDL).await?;
    let row = client
        .query_opt(
            "SELECT params FROM teller_workload_meta WHERE workload = $1",
            &[&workload],
        )
        .await?;
    match row {
        Some(r) => Ok(serde_json::from_str(r.try_get::<_, &str>(0)?).ok()),
        None => Ok(None),
    }
}

/// Reads an integer parameter from recorded metadata.
pub fn meta_u64(meta: &Value, key: &str) -> Option<u64> {
    meta.get(key).and_then(Value::as_u64)
}

/// Period of the loaders' progress line.
const LOAD_PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the SQL that `sql(job)` renders for every job, over `concurrency`
/// connections pulling from one shared queue. Loaders use literal multi-row
/// `INSERT`s (simple protocol): one round trip per batch of rows, no
/// parameter-count limit, and nothing about the values needs binding.
/// Prints `what: done/total jobs` once per second while it runs, so that a
/// long load (TPC-C at scale) shows it is moving.
pub async fn load_parallel<J, F>(
    url: &str,
    what: &str,
    concurrency: usize,
    jobs: Vec<J>,
    sql: F,
) -> Result<(), tokio_postgres::Error>
where
    J: Send + Sync + 'static,
    F: Fn(&J) -> String + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let total = jobs.len();
    let jobs = Arc::new(jobs);
    let sql = Arc::new(sql);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.clamp(1, total.max(1)) {
        let client = connect(url).await?;
        let (jobs, sql, next, done) = (jobs.clone(), sql.clone(), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else {
                    return Ok(());
                };
                client.batch_execute(&sql(job)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let progress = tokio::spawn({
        let (what, done) = (what.to_string(), done.clone());
        let start = tokio::time::Instant::now();
        async move {
            let mut tick =
                tokio::time::interval_at(start + LOAD_PROGRESS_INTERVAL, LOAD_PROGRESS_INTERVAL);
            loop {
                tick.tick().await;
                let n = done.load(Ordering::Relaxed);
                println!(
                    "{what}: {n}/{total} jobs ({:.0}%), {:.0} s",
                    100.0 * n as f64 / total.max(1) as f64,
                    start.elapsed().as_secs_f64()
                );
            }
        }
    });
    // The first failure stops the load: the other loaders are cancelled.
    let mut result = Ok(());
    for t in &mut tasks {
        if result.is_err() {
            t.abort();
        } else {
            result = t.await.expect("loader task panicked");
        }
    }
    progress.abort();
    let _ = progress.await;
    result
}

/// Outcome of a workload's `check`: each condition and whether it held.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub conditions: Vec<(String, bool, String)>,
}

impl CheckReport {
    pub fn add(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.conditions.push((name.into(), ok, detail.into()));
    }

    pub fn passed(&self) -> bool {
        self.conditions.iter().all(|(_, ok, _)| *ok)
    }

    pub fn render(&self) -> String {
        self.conditions
            .iter()
            .map(|(name, ok, detail)| {
                format!("{} {name}: {detail}\n", if *ok { "ok  " } else { "FAIL" })
            })
            .collect()
    }
}
