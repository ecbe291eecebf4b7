//! The txn workload: the cost of a transaction by where its rows live.
//!
//! `txn_accounts(id BIGINT PRIMARY KEY, balance BIGINT, updates BIGINT)`
//! holds rows `0..rows` with dense ids, so that a range of ids is a range
//! of keys and the ranges TellerDB cuts the table into are runs of ids.
//! Two operations:
//!
//! - **update**: `UPDATE ... SET updates = updates + 1 WHERE id = $1`, one
//!   statement in its own (implicit) transaction: one round trip, one row,
//!   one range.
//! - **transfer**: `BEGIN ISOLATION LEVEL ...`, debit one row, credit
//!   another, `COMMIT`: four round trips, two rows, whose placement
//!   ([`Placement`]) is the point: in one range (one-phase commit), on one
//!   shard in two ranges, or on two shards.
//!
//! `run` reads `SHOW RANGES FROM TABLE txn_accounts` to see where rows
//! live, gives each client its own rows with the placement asked for (so
//! the figures measure the path, not contention; `--shared-rows` says
//! otherwise), reports how many ranges and shards they span, and reads the
//! placement again at the end to report whether it held (a range may have
//! split or moved during the run). Against a server without SHOW RANGES
//! (PostgreSQL) only `--placement any` runs.
//!
//! Invariants `check` verifies: every row is there, and the balances sum
//! to what `init` loaded (transfers move money, updates touch only
//! `updates`).

pub mod placement;
pub mod report;

use std::sync::{Arc, Mutex};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use crate::cli::CliError;
use crate::conn::{connect, get_meta, load_parallel, meta_u64, put_meta, CheckReport, Isolation};
use crate::driver::{OpError, Worker, Workload};
pub use placement::Placement;
use placement::{check_held, parse_bound, Assignment, Held, Layout, Plan, TableRange, Unit};

/// The workload's table.
pub const TABLE: &str = "txn_accounts";
/// Balance every row starts with.
pub const INITIAL_BALANCE: i64 = 1_000_000;
/// Rows per loader `INSERT`.
const LOAD_BATCH_ROWS: u64 = 1000;
/// Largest amount one transfer moves.
pub const TRANSFER_AMOUNT_MAX: i64 = 100;
/// Units (rows or pairs) per client when `--per-client` is not given.
pub const PER_CLIENT_DEFAULT: usize = 8;

/// What one operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// One row, one statement.
    Update,
    /// Two rows in an explicit transaction block.
    Transfer,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Update => "update",
            Op::Transfer => "transfer",
        }
    }

    fn unit_rows(self) -> usize {
        match self {
            Op::Update => 1,
            Op::Transfer => 2,
        }
    }
}

/// Creates and fills the table (dropping an earlier one).
pub async fn init(url: &str, rows: u64, concurrency: usize) -> Result<(), tokio_postgres::Error> {
    assert!(rows >= 2, "a transfer needs two rows");
    let client = connect(url).await?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE}; \
             CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, \
             updates BIGINT NOT NULL)"
        ))
        .await?;
    let batches: Vec<u64> = (0..rows.div_ceil(LOAD_BATCH_ROWS)).collect();
    load_parallel(url, "txn init", concurrency, batches, move |&b| {
        let values: Vec<String> = (b * LOAD_BATCH_ROWS..((b + 1) * LOAD_BATCH_ROWS).min(rows))
            .map(|i| format!("({i}, {INITIAL_BALANCE}, 0)"))
            .collect();
        format!(
            "INSERT INTO {TABLE} (id, balance, updates) VALUES {}",
            values.join(",")
        )
    })
    .await?;
    put_meta(
        &client,
        "txn",
        &json!({ "rows": rows, "initial_balance": INITIAL_BALANCE }),
    )
    .await
}

/// Verifies that every row is there and the balances sum as loaded.
pub async fn check(url: &str) -> Result<CheckReport, tokio_postgres::Error> {
    let client = connect(url).await?;
    let mut report = CheckReport::default();
    let Some(meta) = get_meta(&client, "txn").await? else {
        report.add("metadata", false, "no txn metadata: run `txn init` first");
        return Ok(report);
    };
    let rows = meta_u64(&meta, "rows").unwrap_or(0) as i64;
    let initial = meta["initial_balance"].as_i64().unwrap_or(0);
    let row = client
        .query_one(
            &format!("SELECT count(*), COALESCE(sum(balance), 0)::BIGINT FROM {TABLE}"),
            &[],
        )
        .await?;
    let (count, sum): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    report.add(
        "row count",
        count == rows,
        format!("{count} rows, expected {rows}"),
    );
    let expected = rows * initial;
    report.add(
        "total balance",
        sum == expected,
        format!("{sum}, expected {expected}"),
    );
    Ok(report)
}

/// The rows `init` loaded (`None` without metadata).
pub async fn loaded_rows(url: &str) -> Result<Option<u64>, tokio_postgres::Error> {
    let client = connect(url).await?;
    Ok(get_meta(&client, "txn")
        .await?
        .and_then(|m| meta_u64(&m, "rows")))
}

/// What the server says about where the table's rows live.
pub enum Where {
    Known(Layout),
    /// The server has no `SHOW RANGES FROM TABLE` (its error).
    Unsupported(String),
}

/// SQLSTATEs a server without `SHOW RANGES` answers it with: PostgreSQL's
/// syntax error and unknown setting, or "not supported".
const NO_SHOW_RANGES: [&str; 3] = ["42601", "42704", "0A000"];

/// Reads `SHOW RANGES FROM TABLE txn_accounts`.
pub async fn read_layout(client: &Client) -> Result<Where, CliError> {
    let messages = match client
        .simple_query(&format!("SHOW RANGES FROM TABLE {TABLE}"))
        .await
    {
        Ok(m) => m,
        Err(e) => {
            return match e.as_db_error() {
                Some(db) if NO_SHOW_RANGES.contains(&db.code().code()) => Ok(Where::Unsupported(
                    format!("{}: {}", db.code().code(), db.message()),
                )),
                _ => Err(e.into()),
            }
        }
    };
    let mut ranges = Vec::new();
    for m in &messages {
        let SimpleQueryMessage::Row(row) = m else {
            continue;
        };
        let field = |name: &str| -> Result<&str, CliError> {
            row.try_get(name)?
                .ok_or_else(|| CliError::Setup(format!("SHOW RANGES: {name} is NULL")))
        };
        let shard = field("shard")?
            .parse()
            .map_err(|e| CliError::Setup(format!("SHOW RANGES: shard: {e}")))?;
        ranges.push(TableRange {
            range_id: field("range_id")?.to_string(),
            start: parse_bound(field("start_key")?).map_err(CliError::Setup)?,
            end: parse_bound(field("end_key")?).map_err(CliError::Setup)?,
            shard,
        });
    }
    Layout::new(ranges)
        .map(Where::Known)
        .map_err(|e| CliError::Setup(format!("SHOW RANGES FROM TABLE {TABLE}: {e}")))
}

/// What `txn placement` waits for: `min_shards` shards that each own at
/// least `min_ranges_per_shard` ranges holding loaded rows, and then no
/// change to the table's ranges for `stable` (splits and the rebalancer's
/// moves have settled).
#[derive(Clone, Debug)]
pub struct SpreadWait {
    pub min_shards: usize,
    pub min_ranges_per_shard: usize,
    pub stable: std::time::Duration,
    pub timeout: std::time::Duration,
}

/// How often `txn placement` looks again while it waits.
const SPREAD_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Ranges holding any of rows `0..rows`, per shard.
fn ranges_with_rows(layout: &Layout, rows: u64) -> std::collections::BTreeMap<usize, usize> {
    let n = i64::try_from(rows).unwrap_or(i64::MAX);
    let mut per_shard = std::collections::BTreeMap::new();
    for r in &layout.ranges {
        let from = r.start.unwrap_or(0).max(0);
        let to = r.end.unwrap_or(n).min(n);
        if from < to {
            *per_shard.entry(r.shard).or_insert(0) += 1;
        }
    }
    per_shard
}

/// Prints the table's ranges and, if asked, waits until they spread.
pub async fn show_placement(url: &str, wait: &SpreadWait) -> Result<(), CliError> {
    let rows = loaded_rows(url).await?.ok_or_else(|| {
        CliError::Setup("no txn metadata found: run `teller workload txn init` first".into())
    })?;
    let client = connect(url).await?;
    let deadline = tokio::time::Instant::now() + wait.timeout;
    let mut last: Option<(Layout, tokio::time::Instant)> = None;
    loop {
        let layout = match read_layout(&client).await? {
            Where::Known(layout) => layout,
            Where::Unsupported(why) => {
                return Err(CliError::Setup(format!(
                    "the server has no SHOW RANGES FROM TABLE ({why})"
                )))
            }
        };
        let per_shard = ranges_with_rows(&layout, rows);
        let spread = per_shard
            .values()
            .filter(|&&n| n >= wait.min_ranges_per_shard)
            .count();
        let summary = format!(
            "txn: {} ranges hold the {rows} rows, per shard {per_shard:?}",
            per_shard.values().sum::<usize>()
        );
        let now = tokio::time::Instant::now();
        let since = match last.take() {
            Some((previous, at)) if previous == layout => at,
            _ => now,
        };
        last = Some((layout.clone(), since));
        if spread >= wait.min_shards && now - since >= wait.stable {
            for r in &layout.ranges {
                let bound = |b: Option<i64>| b.map_or("-".to_string(), |v| v.to_string());
                println!(
                    "range {}: ids [{}, {}) on shard {}",
                    r.range_id,
                    bound(r.start),
                    bound(r.end),
                    r.shard
                );
            }
            println!("{summary}");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Setup(format!(
                "{summary}: not {} shards with {} ranges each, unchanged for {:?}, within {:?}",
                wait.min_shards, wait.min_ranges_per_shard, wait.stable, wait.timeout
            )));
        }
        tokio::time::sleep(SPREAD_POLL_INTERVAL).await;
    }
}

/// Options of `txn run` beyond the driver's.
#[derive(Clone, Debug)]
pub struct TxnOptions {
    pub op: Op,
    pub placement: Placement,
    pub isolation: Isolation,
    pub per_client: usize,
    pub shared_rows: bool,
}

/// A prepared run: the rows each client uses and where they lived.
pub struct Txn {
    pub rows: u64,
    pub options: TxnOptions,
    pub assignment: Arc<Assignment>,
    /// Where the table lived when the run began (`None`: unknown).
    pub before: Option<Layout>,
    /// Why placement is unknown, if it is.
    pub unknown_because: Option<String>,
    /// Where it lived when the run ended, read by `after_run`.
    after: Mutex<Option<Layout>>,
}

impl Txn {
    /// Reads the metadata and the placement, and assigns rows to `clients`.
    pub async fn prepare(
        url: &str,
        options: TxnOptions,
        clients: usize,
        seed: u64,
    ) -> Result<Txn, CliError> {
        let rows = loaded_rows(url).await?.ok_or_else(|| {
            CliError::Setup("no txn metadata found: run `teller workload txn init` first".into())
        })?;
        let client = connect(url).await?;
        let (before, unknown_because) = match read_layout(&client).await? {
            Where::Known(layout) => (Some(layout), None),
            Where::Unsupported(why) if options.placement == Placement::Any => (None, Some(why)),
            Where::Unsupported(why) => {
                return Err(CliError::Setup(format!(
                    "placement {} needs SHOW RANGES FROM TABLE, which the server refused ({why}); \
                     a server without ranges (PostgreSQL) runs only --placement any",
                    options.placement.name()
                )))
            }
        };
        let plan = Plan {
            unit_rows: options.op.unit_rows(),
            placement: options.placement,
            rows,
            clients,
            per_client: options.per_client,
            shared: options.shared_rows,
            seed,
        };
        let assignment = placement::assign(&plan, before.as_ref()).map_err(CliError::Setup)?;
        Ok(Txn {
            rows,
            options,
            assignment: Arc::new(assignment),
            before,
            unknown_because,
            after: Mutex::new(None),
        })
    }

    /// One line on where the run's rows live.
    pub fn describe(&self) -> String {
        let units: usize = self.assignment.clients.iter().map(Vec::len).sum();
        let per = self.assignment.clients.first().map_or(0, Vec::len);
        let rows_note = if self.options.shared_rows {
            "shared by all clients"
        } else {
            "each client its own"
        };
        let placed = match (&self.before, &self.unknown_because) {
            (Some(layout), _) => {
                let (ranges, shards) = self.assignment.spread(layout);
                format!(
                    "over {ranges} ranges on {shards} shards (the table: {} ranges on {} shards)",
                    layout.ranges.len(),
                    layout.shards().len()
                )
            }
            (None, why) => format!(
                "placement unknown ({})",
                why.as_deref().unwrap_or("not read")
            ),
        };
        format!(
            "txn: {} with placement {}: {per} {} per client ({units} in all, {rows_note}), {placed}",
            self.options.op.name(),
            self.options.placement.name(),
            if self.options.op == Op::Update {
                "rows"
            } else {
                "pairs"
            },
        )
    }

    /// Whether the placement held, once `after_run` read it again.
    pub fn held(&self) -> Option<Held> {
        let before = self.before.as_ref()?;
        let after = self.after.lock().expect("after lock");
        let after = after.as_ref()?;
        Some(check_held(
            &self.assignment,
            self.options.placement,
            before,
            after,
        ))
    }
}

pub struct TxnWorker {
    client: Client,
    rng: SmallRng,
    op: Op,
    isolation: Isolation,
    units: Vec<Unit>,
    update: Statement,
    add: Statement,
}

impl Workload for Txn {
    type Worker = TxnWorker;

    fn name(&self) -> String {
        "txn".to_string()
    }

    fn op_names(&self) -> Vec<&'static str> {
        vec![self.options.op.name()]
    }

    async fn open(
        &self,
        client: Client,
        client_id: usize,
        seed: u64,
    ) -> Result<TxnWorker, tokio_postgres::Error> {
        client
            .batch_execute(&format!(
                "SET default_transaction_isolation TO '{}'",
                self.options.isolation.name().replace('-', " ")
            ))
            .await?;
        let update = client
            .prepare(&format!(
                "UPDATE {TABLE} SET updates = updates + 1 WHERE id = $1"
            ))
            .await?;
        let add = client
            .prepare(&format!(
                "UPDATE {TABLE} SET balance = balance + $1 WHERE id = $2"
            ))
            .await?;
        let clients = &self.assignment.clients;
        let units = clients[client_id % clients.len()].clone();
        assert!(!units.is_empty(), "assign gives every client a unit");
        Ok(TxnWorker {
            client,
            rng: SmallRng::seed_from_u64(seed),
            op: self.options.op,
            isolation: self.options.isolation,
            units,
            update,
            add,
        })
    }

    async fn after_run(&self, url: &str) -> Result<(), tokio_postgres::Error> {
        if self.before.is_none() {
            return Ok(());
        }
        let client = connect(url).await?;
        match read_layout(&client).await {
            Ok(Where::Known(layout)) => {
                *self.after.lock().expect("after lock") = Some(layout);
                if let Some(held) = self.held() {
                    println!("{}", held_line(&held));
                }
            }
            Ok(Where::Unsupported(why)) => {
                eprintln!("txn: placement not read again: {why}")
            }
            Err(CliError::Db(e)) => return Err(e),
            Err(e) => eprintln!("txn: placement not read again: {e}"),
        }
        Ok(())
    }

    fn extra(&self, _summary: &crate::stats::Summary) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("op".into(), self.options.op.name().into());
        m.insert("placement".into(), self.options.placement.name().into());
        m.insert("rows".into(), self.rows.into());
        m.insert("isolation".into(), self.options.isolation.name().into());
        m.insert("shared_rows".into(), self.options.shared_rows.into());
        let per = self.assignment.clients.first().map_or(0, Vec::len);
        m.insert("units_per_client".into(), per.into());
        if let Some(layout) = &self.before {
            let (ranges, shards) = self.assignment.spread(layout);
            m.insert("ranges_used".into(), ranges.into());
            m.insert("shards_used".into(), shards.into());
            m.insert("table_ranges".into(), layout.ranges.len().into());
            m.insert("table_shards".into(), layout.shards().len().into());
        }
        let held = self.held();
        m.insert(
            "placement_held".into(),
            held.as_ref()
                .map_or(Value::Null, |h| (h.broken == 0).into()),
        );
        if let Some(h) = held {
            m.insert("units_broken".into(), h.broken.into());
            m.insert("rows_moved".into(), h.rows_moved.into());
        }
        m
    }
}

fn held_line(held: &Held) -> String {
    if held.broken == 0 && held.rows_moved == 0 {
        format!("txn: placement held for all {} units", held.units)
    } else {
        format!(
            "txn: placement changed during the run: {} of {} units lost it, {} rows moved shard",
            held.broken, held.units, held.rows_moved
        )
    }
}

/// One operation: the unit and, for a transfer, direction and amount.
pub struct TxnOp {
    rows: Unit,
    amount: i64,
}

impl TxnWorker {
    async fn update(&mut self, id: i64) -> Result<(), OpError> {
        let n = self.client.execute(&self.update, &[&id]).await?;
        expect_one_row(n, id)
    }

    async fn transfer(&mut self, from: i64, to: i64, amount: i64) -> Result<(), OpError> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(self.isolation.level())
            .start()
            .await?;
        let n = tx.execute(&self.add, &[&-amount, &from]).await?;
        expect_one_row(n, from)?;
        let n = tx.execute(&self.add, &[&amount, &to]).await?;
        expect_one_row(n, to)?;
        tx.commit().await?;
        Ok(())
    }
}

fn expect_one_row(n: u64, id: i64) -> Result<(), OpError> {
    if n == 1 {
        Ok(())
    } else {
        Err(OpError::Invariant(format!(
            "row {id} of {TABLE}: {n} rows updated, expected 1"
        )))
    }
}

impl Worker for TxnWorker {
    type Op = TxnOp;

    fn next_op(&mut self) -> TxnOp {
        let mut rows = self.units[self.rng.random_range(0..self.units.len())].clone();
        if self.rng.random::<bool>() {
            rows.reverse();
        }
        TxnOp {
            rows,
            amount: self.rng.random_range(1..=TRANSFER_AMOUNT_MAX),
        }
    }

    fn kind(&self, _op: &TxnOp) -> usize {
        0
    }

    async fn execute(&mut self, op: &TxnOp) -> Result<Option<&'static str>, OpError> {
        match (self.op, op.rows.as_slice()) {
            (Op::Update, [id]) => self.update(*id).await?,
            (Op::Transfer, [from, to]) => self.transfer(*from, *to, op.amount).await?,
            (op_kind, rows) => panic!("{op_kind:?} with rows {rows:?}"),
        }
        Ok(None)
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
