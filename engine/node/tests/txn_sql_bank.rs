//! The bank, end to end: a real `teller` process with two shards and
//! small ranges (split at [`SPLIT_BYTES`], rebalanced every
//! [`REBALANCE_MS`], so the accounts spread over both shards), eight
//! tokio-postgres clients moving money between [`ACCOUNTS`] accounts in
//! SERIALIZABLE transactions, readers summing every balance meanwhile, and
//! a SIGKILL of the node in the middle of the load.
//!
//! Each transfer reads both balances, writes both new balances (computed
//! by the client: a lost update or write skew would show in the total) and
//! logs itself in `transfers` under a unique id, in one transaction; on
//! `40001`/`40P01` the client rolls back and retries. The checks:
//! - every sum a reader sees is the initial total (in an explicit
//!   REPEATABLE READ transaction, and as single SERIALIZABLE statements);
//! - in one snapshot, every balance equals its initial balance plus the
//!   logged transfers into it minus those out of it: each committed
//!   transfer is reflected exactly once, with its log row;
//! - every transfer whose COMMIT a client saw succeed is in the log, as
//!   the client sent it;
//! - after SIGKILL and a restart on the same data directory, all of the
//!   above still holds (transfers in flight at the kill are either whole
//!   or absent), and the bank goes on;
//! - the accounts table lies on both shards (from the node's log of range
//!   splits and moves) before the kill and after the restart, so transfers
//!   commit across shards.

mod ranges_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use ranges_common::{owners_of, replay, table_id, table_span, test_dir, write_config, Node};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const SHARDS: usize = 2;
/// Range size: a few KiB, so that the accounts table splits into ranges.
const SPLIT_BYTES: u64 = 4096;
/// How often the node moves a range to its least loaded shard.
const REBALANCE_MS: u64 = 20;
const ACCOUNTS: i64 = 200;
const INITIAL_BALANCE: i64 = 1_000;
const TOTAL: i64 = ACCOUNTS * INITIAL_BALANCE;
const WRITERS: u64 = 8;
/// Largest amount one transfer moves.
const AMOUNT_MAX: i64 = 100;
/// Transfers acknowledged before the first phase stops its writers.
const PHASE_ONE_ACKS: usize = 150;
/// Transfers acknowledged (in the second phase) before the SIGKILL.
const ACKS_BEFORE_KILL: usize = 150;
/// Transfers acknowledged after the restart, to show the bank goes on.
const PHASE_THREE_ACKS: usize = 40;
/// How long a phase may take to reach its acknowledgements.
const PHASE_MAX: Duration = Duration::from_secs(120);
/// Retries of one transfer before the test gives up on it (a livelock).
const RETRIES_MAX: u32 = 1_000;

// ----- clients ----------------------------------------------------------------

async fn connect(port: u16) -> Result<Client, tokio_postgres::Error> {
    let url = format!("host=127.0.0.1 port={port} user=teller dbname=teller");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

// ----- transfers ---------------------------------------------------------------

/// A transfer as its client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transfer {
    src: i64,
    dst: i64,
    amount: i64,
}

/// What the clients saw, shared by all of them.
#[derive(Default)]
struct Ledger {
    /// Transfers whose COMMIT succeeded, by id.
    acked: Mutex<BTreeMap<i64, Transfer>>,
    retries: AtomicU64,
    sums: AtomicU64,
    /// The first broken invariant or unexpected error a task met.
    failure: Mutex<Option<String>>,
}

impl Ledger {
    fn fail(&self, why: String) {
        let mut failure = self.failure.lock().expect("failure");
        if failure.is_none() {
            *failure = Some(why);
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("acked").len()
    }
}

/// How a statement failed.
enum Failure {
    /// 40001 or 40P01: roll back and retry.
    Retry,
    /// Anything else, e.g. the server is gone.
    Other(String),
}

fn classify(e: tokio_postgres::Error) -> Failure {
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => Failure::Retry,
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Failure::Retry,
        _ => Failure::Other(e.to_string()),
    }
}

async fn simple(client: &Client, sql: &str) -> Result<Vec<SimpleQueryMessage>, Failure> {
    client.simple_query(sql).await.map_err(classify)
}

/// `(column 0, column 1)` of every row, as integers.
fn pairs(messages: &[SimpleQueryMessage]) -> Result<Vec<(i64, i64)>, Failure> {
    let mut out = Vec::new();
    for m in messages {
        if let SimpleQueryMessage::Row(row) = m {
            let cell = |i: usize| -> Result<i64, Failure> {
                row.get(i)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Failure::Other(format!("column {i} is not an integer")))
            };
            out.push((cell(0)?, cell(1)?));
        }
    }
    Ok(out)
}

/// One attempt at transfer `id`: `Ok(None)` when the source is empty.
async fn try_transfer(
    client: &Client,
    id: i64,
    src: i64,
    dst: i64,
    want: i64,
) -> Result<Option<Transfer>, Failure> {
    simple(client, "BEGIN ISOLATION LEVEL SERIALIZABLE").await?;
    let balances = pairs(
        &simple(
            client,
            &format!("SELECT id, balance FROM accounts WHERE id IN ({src}, {dst}) ORDER BY id"),
        )
        .await?,
    )?;
    let balance = |account: i64| balances.iter().find(|(a, _)| *a == account).map(|p| p.1);
    let (Some(src_balance), Some(dst_balance)) = (balance(src), balance(dst)) else {
        return Err(Failure::Other(format!(
            "accounts {src}, {dst}: {balances:?}"
        )));
    };
    let amount = want.min(src_balance);
    if amount <= 0 {
        simple(client, "ROLLBACK").await?;
        return Ok(None);
    }
    simple(
        client,
        &format!(
            "UPDATE accounts SET balance = {} WHERE id = {src}",
            src_balance - amount
        ),
    )
    .await?;
    simple(
        client,
        &format!(
            "UPDATE accounts SET balance = {} WHERE id = {dst}",
            dst_balance + amount
        ),
    )
    .await?;
    simple(
        client,
        &format!("INSERT INTO transfers VALUES ({id}, {src}, {dst}, {amount})"),
    )
    .await?;
    simple(client, "COMMIT").await?;
    Ok(Some(Transfer { src, dst, amount }))
}

/// Transfers until `stop`, or until the server is gone when `expect_death`.
async fn writer(
    port: u16,
    w: u64,
    phase: u64,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    expect_death: bool,
) {
    let client = match connect(port).await {
        Ok(c) => c,
        Err(e) => return ledger.fail(format!("writer {w}: connecting: {e}")),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(phase * 1_000 + w);
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let id = ((phase * 100 + w) * 1_000_000 + n) as i64;
        let src = rng.random_range(1..=ACCOUNTS);
        let dst = (src + rng.random_range(1..ACCOUNTS) - 1) % ACCOUNTS + 1;
        let want = rng.random_range(1..=AMOUNT_MAX);
        let mut attempts = 0;
        loop {
            match try_transfer(&client, id, src, dst, want).await {
                Ok(Some(t)) => {
                    ledger.acked.lock().expect("acked").insert(id, t);
                    break;
                }
                Ok(None) => break,
                Err(Failure::Retry) => {
                    let _ = client.simple_query("ROLLBACK").await;
                    ledger.retries.fetch_add(1, Ordering::Relaxed);
                    attempts += 1;
                    if attempts >= RETRIES_MAX {
                        return ledger.fail(format!("transfer {id}: {attempts} retries"));
                    }
                }
                Err(Failure::Other(e)) => {
                    if !expect_death {
                        ledger.fail(format!("transfer {id}: {e}"));
                    }
                    return;
                }
            }
        }
    }
}

// ----- readers -----------------------------------------------------------------

/// One sum of every balance; `reader` 0 uses an explicit REPEATABLE READ
/// transaction, the others single SERIALIZABLE statements.
async fn sum_once(client: &Client, reader: u64) -> Result<(i64, i64), Failure> {
    let query = "SELECT sum(balance), count(*) FROM accounts";
    if reader == 0 {
        simple(client, "BEGIN ISOLATION LEVEL REPEATABLE READ").await?;
        let r = pairs(&simple(client, query).await?)?;
        simple(client, "COMMIT").await?;
        r.first()
            .copied()
            .ok_or_else(|| Failure::Other("no sum".into()))
    } else {
        let r = pairs(&simple(client, query).await?)?;
        r.first()
            .copied()
            .ok_or_else(|| Failure::Other("no sum".into()))
    }
}

async fn reader(port: u16, r: u64, ledger: Arc<Ledger>, stop: Arc<AtomicBool>, expect_death: bool) {
    let client = match connect(port).await {
        Ok(c) => c,
        Err(e) => return ledger.fail(format!("reader {r}: connecting: {e}")),
    };
    while !stop.load(Ordering::SeqCst) {
        match sum_once(&client, r).await {
            Ok((sum, count)) => {
                ledger.sums.fetch_add(1, Ordering::Relaxed);
                if (sum, count) != (TOTAL, ACCOUNTS) {
                    return ledger.fail(format!(
                        "reader {r} saw sum {sum} over {count} accounts, not {TOTAL} over {ACCOUNTS}"
                    ));
                }
            }
            Err(Failure::Retry) => {
                let _ = client.simple_query("ROLLBACK").await;
            }
            Err(Failure::Other(e)) => {
                if !expect_death {
                    ledger.fail(format!("reader {r}: {e}"));
                }
                return;
            }
        }
    }
}

// ----- phases and checks -------------------------------------------------------

/// Whether the accounts table has ranges on every shard, by the node's log.
fn accounts_spread(node: &Node, accounts: &(Vec<u8>, Vec<u8>)) -> bool {
    owners_of(&replay(&node.log()), &accounts.0, &accounts.1).len() == SHARDS
}

/// Runs writers and readers until `acks` more transfers are acknowledged
/// and the accounts are spread over every shard; then either stops them or
/// SIGKILLs the node.
fn run_phase(
    runtime: &tokio::runtime::Runtime,
    node: &mut Node,
    accounts: &(Vec<u8>, Vec<u8>),
    phase: u64,
    acks: usize,
    kill: bool,
    ledger: &Arc<Ledger>,
) {
    let port = node.port;
    let stop = Arc::new(AtomicBool::new(false));
    let start_acks = ledger.acked();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        tasks.push(runtime.spawn(writer(port, w, phase, ledger.clone(), stop.clone(), kill)));
    }
    for r in 0..2 {
        tasks.push(runtime.spawn(reader(port, r, ledger.clone(), stop.clone(), kill)));
    }
    let started = Instant::now();
    loop {
        if ledger.failure.lock().expect("failure").is_some() {
            break;
        }
        if ledger.acked() >= start_acks + acks && accounts_spread(node, accounts) {
            break;
        }
        assert!(
            started.elapsed() < PHASE_MAX,
            "phase {phase}: {} transfers in {PHASE_MAX:?}, accounts on shards {:?}",
            ledger.acked() - start_acks,
            owners_of(&replay(&node.log()), &accounts.0, &accounts.1)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    if kill {
        node.kill();
    } else {
        stop.store(true, Ordering::SeqCst);
    }
    runtime.block_on(async {
        for t in tasks {
            t.await.expect("a client task panicked");
        }
    });
    eprintln!(
        "phase {phase}: {} transfers acknowledged in {:?}{}; {} retries, {} sums so far; \
         {} splits, {} moves",
        ledger.acked() - start_acks,
        started.elapsed(),
        if kill { ", then SIGKILL" } else { "" },
        ledger.retries.load(Ordering::Relaxed),
        ledger.sums.load(Ordering::Relaxed),
        node.log().matches("range split").count(),
        node.log().matches("range moved").count(),
    );
    if let Some(why) = ledger.failure.lock().expect("failure").clone() {
        panic!("phase {phase}: {why}");
    }
}

/// Checks the whole bank in one REPEATABLE READ snapshot: the total, each
/// balance against the log, and every acknowledged transfer in the log.
async fn check_bank(port: u16, ledger: &Ledger) -> usize {
    let client = connect(port).await.expect("connecting");
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .expect("BEGIN");
    let accounts: BTreeMap<i64, i64> = client
        .query("SELECT id, balance FROM accounts", &[])
        .await
        .expect("accounts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let log: BTreeMap<i64, Transfer> = client
        .query("SELECT id, src, dst, amount FROM transfers", &[])
        .await
        .expect("transfers")
        .iter()
        .map(|r| {
            (
                r.get(0),
                Transfer {
                    src: r.get(1),
                    dst: r.get(2),
                    amount: r.get(3),
                },
            )
        })
        .collect();
    client.batch_execute("COMMIT").await.expect("COMMIT");
    assert_eq!(accounts.len() as i64, ACCOUNTS);
    assert_eq!(accounts.values().sum::<i64>(), TOTAL, "the total");
    let mut expected: BTreeMap<i64, i64> = (1..=ACCOUNTS).map(|a| (a, INITIAL_BALANCE)).collect();
    for t in log.values() {
        assert!(t.amount > 0 && t.src != t.dst, "a logged transfer {t:?}");
        *expected.get_mut(&t.src).expect("source account") -= t.amount;
        *expected.get_mut(&t.dst).expect("destination account") += t.amount;
    }
    assert_eq!(
        accounts, expected,
        "balances are the initial ones plus the logged transfers, each once"
    );
    for (id, t) in ledger.acked.lock().expect("acked").iter() {
        assert_eq!(
            log.get(id),
            Some(t),
            "acknowledged transfer {id} is not in the log as sent"
        );
    }
    log.len()
}

#[test]
fn bank_transfers_stay_exact_through_sigkill_and_restart() {
    let dir = test_dir("txn-sql-bank");
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut node = Node::start(&dir, "first", SHARDS, &[]);
    let accounts = runtime.block_on(async {
        let client = connect(node.port).await.expect("connecting");
        let values: Vec<String> = (1..=ACCOUNTS)
            .map(|a| format!("({a}, {INITIAL_BALANCE}, '{:0>60}')", a))
            .collect();
        client
            .batch_execute(&format!(
                "CREATE TABLE accounts (id int8 PRIMARY KEY, balance int8 NOT NULL, pad text); \
                 CREATE TABLE transfers (id int8 PRIMARY KEY, src int8 NOT NULL, \
                 dst int8 NOT NULL, amount int8 NOT NULL); \
                 INSERT INTO accounts VALUES {}",
                values.join(", ")
            ))
            .await
            .expect("creating the bank");
        table_span(table_id(&client, "accounts").await)
    });
    let ledger = Arc::new(Ledger::default());

    // Phase 1: load until the accounts lie on both shards, stop, check.
    run_phase(
        &runtime,
        &mut node,
        &accounts,
        1,
        PHASE_ONE_ACKS,
        false,
        &ledger,
    );
    let logged = runtime.block_on(check_bank(node.port, &ledger));
    eprintln!("after phase 1: {logged} transfers logged");

    // Phase 2: load, SIGKILL mid-run, restart on the same directory, check.
    run_phase(
        &runtime,
        &mut node,
        &accounts,
        2,
        ACKS_BEFORE_KILL,
        true,
        &ledger,
    );
    let mut node = Node::start(&dir, "second", SHARDS, &[]);
    assert!(
        accounts_spread(&node, &accounts),
        "the restarted node keeps the accounts on both shards"
    );
    let logged = runtime.block_on(check_bank(node.port, &ledger));
    eprintln!(
        "after SIGKILL and restart: {logged} transfers logged, {} acknowledged",
        ledger.acked()
    );

    // Phase 3: the bank goes on over the recovered node.
    run_phase(
        &runtime,
        &mut node,
        &accounts,
        3,
        PHASE_THREE_ACKS,
        false,
        &ledger,
    );
    runtime.block_on(check_bank(node.port, &ledger));
    node.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
