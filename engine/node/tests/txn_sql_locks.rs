//! Row locks through the SQL front door of a real `teller` process:
//! deadlocks between sessions that lock rows in opposite order (with
//! UPDATE and with SELECT ... FOR UPDATE, at every isolation level, and a
//! cycle of three sessions) end with exactly one `40P01` victim within
//! [`DEADLOCK_MAX`] while the others commit and their writes are visible;
//! `lock_timeout` gives up with `55P03` and `statement_timeout` cancels with
//! `57014`, each after its time and not much later.
//!
//! (NOWAIT, SKIP LOCKED and FOR SHARE are in the golden
//! `anomalies/row_locks_for_update`, run by `txn_sql_anomalies.rs`.)
//!
//! A blocked statement is a spawned future checked to be still pending
//! after [`BLOCK_CONFIRM`]; completions are awaited with generous bounds,
//! never slept for.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestServer;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

/// How long a statement that must wait for a lock has to stay pending.
const BLOCK_CONFIRM: Duration = Duration::from_millis(300);
/// Bound on deadlock detection as a client sees it: from the statement
/// that closes the cycle to the victim's `40P01`. Detection is immediate
/// in the design (the closing waiter probes the waits-for chain at once)
/// with a 1 s re-check behind it; this leaves room for a loaded machine.
const DEADLOCK_MAX: Duration = Duration::from_secs(5);
/// How long any statement that does not wait for a lock may take.
const STATEMENT_MAX: Duration = Duration::from_secs(30);

type Outcome = Result<u64, tokio_postgres::Error>;

/// The rows a simple query returned or changed (the last statement's count).
fn count(messages: &[SimpleQueryMessage]) -> u64 {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .last()
        .unwrap_or(0)
}

fn spawn_sql(client: &Arc<Client>, sql: &str) -> JoinHandle<Outcome> {
    let client = client.clone();
    let sql = sql.to_string();
    tokio::spawn(async move { client.simple_query(&sql).await.map(|m| count(&m)) })
}

async fn sql(client: &Arc<Client>, sql: &str) -> Outcome {
    finish(spawn_sql(client, sql), STATEMENT_MAX).await
}

/// Waits up to `limit` for a spawned statement.
async fn finish(task: JoinHandle<Outcome>, limit: Duration) -> Outcome {
    tokio::time::timeout(limit, task)
        .await
        .unwrap_or_else(|_| panic!("a statement did not finish within {limit:?}"))
        .expect("the statement's task")
}

/// Asserts that `task` is still waiting (for a lock) after [`BLOCK_CONFIRM`].
async fn assert_blocked(task: &mut JoinHandle<Outcome>, what: &str) {
    if let Ok(done) = tokio::time::timeout(BLOCK_CONFIRM, &mut *task).await {
        panic!("{what} should wait for a lock, but finished: {done:?}");
    }
}

fn sqlstate(outcome: &Outcome) -> Option<&SqlState> {
    outcome.as_ref().err().and_then(|e| e.code())
}

async fn sessions(server: &TestServer, n: usize) -> Vec<Arc<Client>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(server.connect().await));
    }
    out
}

/// `SELECT id, v FROM acct ORDER BY id` from a fresh autocommit session.
async fn rows(server: &TestServer) -> Vec<(i64, i64)> {
    let client = server.connect().await;
    client
        .query("SELECT id, v FROM acct ORDER BY id", &[])
        .await
        .expect("reading acct")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn setup(server: &TestServer, n: i64) {
    let client = server.connect().await;
    let values: Vec<String> = (1..=n).map(|i| format!("({i}, {})", 10 * i)).collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS acct; CREATE TABLE acct (id int8 PRIMARY KEY, v int8); \
             INSERT INTO acct VALUES {}",
            values.join(", ")
        ))
        .await
        .expect("setting up acct");
}

/// The statement that locks row `id`: an UPDATE, or SELECT ... FOR UPDATE.
fn lock_row(id: i64, by_update: bool) -> String {
    if by_update {
        format!("UPDATE acct SET v = v + 100 WHERE id = {id}")
    } else {
        format!("SELECT v FROM acct WHERE id = {id} FOR UPDATE")
    }
}

/// Two sessions lock rows 1 and 2 in opposite order. Returns once the
/// survivor committed; checks the victim and the survivor's writes.
async fn two_session_deadlock(server: &TestServer, by_update: bool, level: &str) {
    setup(server, 2).await;
    let s = sessions(server, 2).await;
    for client in &s {
        sql(client, &format!("BEGIN ISOLATION LEVEL {level}"))
            .await
            .expect("BEGIN");
    }
    sql(&s[0], &lock_row(1, by_update))
        .await
        .expect("s1 locks row 1");
    sql(&s[1], &lock_row(2, by_update))
        .await
        .expect("s2 locks row 2");
    let mut first = spawn_sql(&s[0], &lock_row(2, by_update));
    assert_blocked(&mut first, "s1 locking row 2").await;
    let closing = Instant::now();
    let second = finish(spawn_sql(&s[1], &lock_row(1, by_update)), DEADLOCK_MAX).await;
    let first = finish(first, DEADLOCK_MAX).await;
    let elapsed = closing.elapsed();
    assert!(
        elapsed < DEADLOCK_MAX,
        "the deadlock took {elapsed:?} to resolve"
    );
    let (victim, survivor) = match (sqlstate(&first), sqlstate(&second)) {
        (None, Some(&SqlState::T_R_DEADLOCK_DETECTED)) => (1, 0),
        (Some(&SqlState::T_R_DEADLOCK_DETECTED), None) => (0, 1),
        _ => panic!("exactly one side must get 40P01: s1 {first:?}, s2 {second:?}"),
    };
    sql(&s[survivor], "COMMIT")
        .await
        .expect("the survivor commits");
    sql(&s[victim], "ROLLBACK")
        .await
        .expect("the victim rolls back");
    let expected = if by_update {
        vec![(1, 110), (2, 120)]
    } else {
        vec![(1, 10), (2, 20)]
    };
    assert_eq!(rows(server).await, expected, "the survivor's writes, only");
    // The victim's locks are gone: a new transaction takes both rows.
    let after = &s[victim];
    sql(after, "BEGIN").await.expect("BEGIN");
    sql(after, &lock_row(1, true)).await.expect("row 1 is free");
    sql(after, &lock_row(2, true)).await.expect("row 2 is free");
    sql(after, "COMMIT").await.expect("COMMIT");
    eprintln!(
        "deadlock ({}, {level}): s{} was the victim, resolved {elapsed:?} after the closing statement",
        if by_update { "UPDATE" } else { "FOR UPDATE" },
        victim + 1
    );
}

/// The isolation levels, as `BEGIN ISOLATION LEVEL` spells them.
const LEVELS: [&str; 3] = ["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"];

#[tokio::test]
async fn opposite_order_updates_deadlock_one_victim_the_other_commits() {
    let server = TestServer::start(2);
    for level in LEVELS {
        two_session_deadlock(&server, true, level).await;
    }
}

#[tokio::test]
async fn opposite_order_select_for_update_deadlock_one_victim_the_other_commits() {
    let server = TestServer::start(2);
    for level in LEVELS {
        two_session_deadlock(&server, false, level).await;
    }
}

/// How far past its timeout a timed-out statement may end, on a loaded
/// machine (the timers themselves are exact to a tick).
const TIMEOUT_SLACK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn lock_timeout_and_statement_timeout_fire_after_their_time() {
    let server = TestServer::start(2);
    setup(&server, 1).await;
    let s = sessions(&server, 2).await;
    sql(&s[0], "BEGIN").await.expect("BEGIN");
    sql(&s[0], &lock_row(1, true))
        .await
        .expect("s1 locks row 1");
    sql(&s[1], "SET lock_timeout = 300").await.expect("SET");
    let started = Instant::now();
    let timed_out = sql(&s[1], &lock_row(1, true)).await;
    let waited = started.elapsed();
    assert_eq!(
        sqlstate(&timed_out),
        Some(&SqlState::LOCK_NOT_AVAILABLE),
        "{timed_out:?}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(300) + TIMEOUT_SLACK,
        "lock_timeout 300 ms fired after {waited:?}"
    );
    sql(&s[1], "SET lock_timeout = 0; SET statement_timeout = 300")
        .await
        .expect("SET");
    let started = Instant::now();
    let cancelled = sql(&s[1], "SELECT pg_sleep(30)").await;
    let ran = started.elapsed();
    assert_eq!(
        sqlstate(&cancelled),
        Some(&SqlState::QUERY_CANCELED),
        "{cancelled:?}"
    );
    assert!(
        ran >= Duration::from_millis(300) && ran < Duration::from_millis(300) + TIMEOUT_SLACK,
        "statement_timeout 300 ms fired after {ran:?}"
    );
    // The holder was never disturbed.
    sql(&s[0], "COMMIT").await.expect("COMMIT");
    assert_eq!(rows(&server).await, vec![(1, 110)]);
    eprintln!("lock_timeout 300 ms fired after {waited:?}; statement_timeout 300 ms after {ran:?}");
}

#[tokio::test]
async fn three_session_cycle_aborts_one_and_the_others_commit() {
    let server = TestServer::start(2);
    setup(&server, 3).await;
    let s = sessions(&server, 3).await;
    // READ COMMITTED, so that a survivor's update of a row another
    // survivor committed meanwhile goes ahead on the new version (at
    // REPEATABLE READ and SERIALIZABLE it fails with 40001, as in
    // PostgreSQL: its snapshot predates that commit). Session i writes
    // `1000 * (i + 1) + id`, so the final rows show who wrote last.
    let write = |i: usize, id: usize| {
        format!(
            "UPDATE acct SET v = {} WHERE id = {id}",
            1000 * (i + 1) + id
        )
    };
    for (i, client) in s.iter().enumerate() {
        sql(client, "BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .expect("BEGIN");
        sql(client, &write(i, i + 1))
            .await
            .expect("each locks its own row");
    }
    // s1 waits for s2, s2 for s3; s3 closes the cycle by waiting for s1.
    let mut waits: Vec<Option<JoinHandle<Outcome>>> = Vec::new();
    for (i, client) in s.iter().enumerate().take(2) {
        let mut task = spawn_sql(client, &write(i, i + 2));
        assert_blocked(&mut task, "a lock held by the next session").await;
        waits.push(Some(task));
    }
    let closing = Instant::now();
    waits.push(Some(spawn_sql(&s[2], &write(2, 1))));
    // Whoever the victim is, the others finish one after the other as each
    // commits: collect outcomes, committing every session that got its lock.
    let mut outcomes: Vec<Option<Outcome>> = vec![None, None, None];
    let deadline = Instant::now() + STATEMENT_MAX;
    while outcomes.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "sessions stuck: {outcomes:?}");
        for i in 0..3 {
            let Some(task) = waits[i].as_mut() else {
                continue;
            };
            if let Ok(done) = tokio::time::timeout(Duration::from_millis(20), task).await {
                let done = done.expect("the statement's task");
                waits[i] = None;
                if done.is_ok() {
                    sql(&s[i], "COMMIT").await.expect("COMMIT");
                } else {
                    eprintln!(
                        "three-session cycle: victim s{} after {:?}",
                        i + 1,
                        closing.elapsed()
                    );
                    assert!(closing.elapsed() < DEADLOCK_MAX, "detection took too long");
                    sql(&s[i], "ROLLBACK").await.expect("ROLLBACK");
                }
                outcomes[i] = Some(done);
            }
        }
    }
    let victims: Vec<usize> = (0..3)
        .filter(|&i| outcomes[i].as_ref().is_some_and(|o| o.is_err()))
        .collect();
    assert_eq!(victims.len(), 1, "exactly one victim: {outcomes:?}");
    let victim = victims[0];
    assert_eq!(
        sqlstate(outcomes[victim].as_ref().expect("finished")),
        Some(&SqlState::T_R_DEADLOCK_DETECTED)
    );
    // Row `id` is written by its owner (session id - 1) and then, once the
    // owner committed, by the session that waited for it; the victim's
    // writes are gone.
    let expected: Vec<(i64, i64)> = (1..=3usize)
        .map(|id| {
            let owner = id - 1;
            let waiter = (owner + 2) % 3;
            let last = if waiter == victim { owner } else { waiter };
            (id as i64, (1000 * (last + 1) + id) as i64)
        })
        .collect();
    assert_eq!(rows(&server).await, expected);
}
