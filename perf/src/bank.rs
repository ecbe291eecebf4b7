//! The bank workload: money moves between accounts, the total never changes.
//!
//! `bank_accounts(id, balance)` holds `accounts` rows whose ids are spread
//! evenly over the positive `BIGINT` keyspace, so that a range-partitioned
//! database puts them in many ranges and transfers become multi-range
//! transactions. A transfer reads both balances and writes the new values
//! computed by the client: under an isolation level weaker than snapshot a
//! lost update breaks the total, which `balance_sum` (during the run) and
//! `check` (afterwards) detect. Both the total and the row count are
//! invariants.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio_postgres::{Client, Statement};

use crate::conn::{connect, get_meta, load_parallel, meta_u64, put_meta, CheckReport, Isolation};
use crate::driver::{OpError, Worker, Workload};

/// Rows per loader `INSERT`.
const LOAD_BATCH_ROWS: u64 = 1000;
/// Largest amount one transfer moves.
pub const TRANSFER_AMOUNT_MAX: i64 = 100;

/// The id of account number `i` of `n`: evenly spread over `[0, i64::MAX)`.
pub fn account_id(i: u64, n: u64) -> i64 {
    assert!(i < n, "account {i} of {n}");
    let stride = i64::MAX / n as i64;
    i as i64 * stride
}

/// Creates and fills `bank_accounts` (dropping an earlier one).
pub async fn init(
    url: &str,
    accounts: u64,
    initial_balance: i64,
    concurrency: usize,
) -> Result<(), tokio_postgres::Error> {
    assert!(accounts >= 2, "a transfer needs two accounts");
    let client = connect(url).await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bank_accounts; \
             CREATE TABLE bank_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
        )
        .await?;
    let batches: Vec<u64> = (0..accounts.div_ceil(LOAD_BATCH_ROWS)).collect();
    load_parallel(url, "bank init", concurrency, batches, move |&b| {
        let rows: Vec<String> = (b * LOAD_BATCH_ROWS..((b + 1) * LOAD_BATCH_ROWS).min(accounts))
            .map(|i| format!("({}, {initial_balance})", account_id(i, accounts)))
            .collect();
        format!(
            "INSERT INTO bank_accounts (id, balance) VALUES {}",
            rows.join(",")
        )
    })
    .await?;
    put_meta(
        &client,
        "bank",
        &json!({ "accounts": accounts, "initial_balance": initial_balance }),
    )
    .await
}

/// Verifies that every account is there and the total is what `init` put in.
pub async fn check(url: &str) -> Result<CheckReport, tokio_postgres::Error> {
    let client = connect(url).await?;
    let mut report = CheckReport::default();
    let Some(meta) = get_meta(&client, "bank").await? else {
        report.add("metadata", false, "no bank metadata: run `bank init` first");
        return Ok(report);
    };
    let accounts = meta_u64(&meta, "accounts").unwrap_or(0);
    let initial = meta["initial_balance"].as_i64().unwrap_or(0);
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(sum(balance), 0)::BIGINT FROM bank_accounts",
            &[],
        )
        .await?;
    let (count, sum): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let expected = accounts as i64 * initial;
    report.add(
        "row count",
        count == accounts as i64,
        format!("{count} accounts, expected {accounts}"),
    );
    report.add(
        "total balance",
        sum == expected,
        format!("{sum}, expected {expected}"),
    );
    Ok(report)
}

/// Run-time parameters of the bank workload.
#[derive(Clone, Debug)]
pub struct Bank {
    pub accounts: u64,
    pub initial_balance: i64,
    /// Share of operations that sum all balances, in percent.
    pub sum_percent: u32,
    pub isolation: Isolation,
}

impl Bank {
    /// Reads the parameters `init` recorded.
    pub async fn from_meta(
        url: &str,
        sum_percent: u32,
        isolation: Isolation,
    ) -> Result<Option<Bank>, tokio_postgres::Error> {
        let client = connect(url).await?;
        Ok(get_meta(&client, "bank").await?.map(|m| Bank {
            accounts: meta_u64(&m, "accounts").unwrap_or(0),
            initial_balance: m["initial_balance"].as_i64().unwrap_or(0),
            sum_percent,
            isolation,
        }))
    }
}

pub enum BankOp {
    Transfer { from: i64, to: i64, amount: i64 },
    BalanceSum,
}

pub struct BankWorker {
    bank: Arc<Bank>,
    client: Client,
    rng: SmallRng,
    read: Statement,
    write: Statement,
    sum: Statement,
}

impl Workload for Bank {
    type Worker = BankWorker;

    fn name(&self) -> String {
        "bank".to_string()
    }

    fn op_names(&self) -> Vec<&'static str> {
        vec!["transfer", "balance_sum"]
    }

    fn extra(&self, _summary: &crate::stats::Summary) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("accounts".into(), self.accounts.into());
        m.insert("sum_percent".into(), self.sum_percent.into());
        m.insert("isolation".into(), self.isolation.name().into());
        m
    }

    async fn open(
        &self,
        client: Client,
        _client_id: usize,
        seed: u64,
    ) -> Result<BankWorker, tokio_postgres::Error> {
        let read = client
            .prepare("SELECT id, balance FROM bank_accounts WHERE id IN ($1, $2)")
            .await?;
        let write = client
            .prepare("UPDATE bank_accounts SET balance = $1 WHERE id = $2")
            .await?;
        let sum = client
            .prepare("SELECT count(*), COALESCE(sum(balance), 0)::BIGINT FROM bank_accounts")
            .await?;
        Ok(BankWorker {
            bank: Arc::new(self.clone()),
            client,
            rng: SmallRng::seed_from_u64(seed),
            read,
            write,
            sum,
        })
    }
}

impl BankWorker {
    async fn transfer(&mut self, from: i64, to: i64, amount: i64) -> Result<(), OpError> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(self.bank.isolation.level())
            .start()
            .await?;
        let rows = tx.query(&self.read, &[&from, &to]).await?;
        let (mut from_balance, mut to_balance) = (None, None);
        for row in &rows {
            let (id, balance): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            if id == from {
                from_balance = Some(balance);
            } else if id == to {
                to_balance = Some(balance);
            }
        }
        let missing = |id: i64| OpError::Invariant(format!("account {id} missing"));
        let from_balance = from_balance.ok_or_else(|| missing(from))?;
        let to_balance = to_balance.ok_or_else(|| missing(to))?;
        tx.execute(&self.write, &[&(from_balance - amount), &from])
            .await?;
        tx.execute(&self.write, &[&(to_balance + amount), &to])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn balance_sum(&mut self) -> Result<(), OpError> {
        let row = self.client.query_one(&self.sum, &[]).await?;
        let (count, sum): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let expected = self.bank.accounts as i64 * self.bank.initial_balance;
        if count != self.bank.accounts as i64 || sum != expected {
            return Err(OpError::Invariant(format!(
                "balance sum saw {count} accounts totalling {sum}, expected {} totalling {expected}",
                self.bank.accounts
            )));
        }
        Ok(())
    }
}

impl Worker for BankWorker {
    type Op = BankOp;

    fn next_op(&mut self) -> BankOp {
        if self.rng.random_range(0..100) < self.bank.sum_percent {
            return BankOp::BalanceSum;
        }
        let n = self.bank.accounts;
        let from = self.rng.random_range(0..n);
        let to = (from + self.rng.random_range(1..n)) % n;
        BankOp::Transfer {
            from: account_id(from, n),
            to: account_id(to, n),
            amount: self.rng.random_range(1..=TRANSFER_AMOUNT_MAX),
        }
    }

    fn kind(&self, op: &BankOp) -> usize {
        match op {
            BankOp::Transfer { .. } => 0,
            BankOp::BalanceSum => 1,
        }
    }

    async fn execute(&mut self, op: &BankOp) -> Result<Option<&'static str>, OpError> {
        match *op {
            BankOp::Transfer { from, to, amount } => self.transfer(from, to, amount).await?,
            BankOp::BalanceSum => self.balance_sum().await?,
        }
        Ok(None)
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
