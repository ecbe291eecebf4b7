//! Drives a [`Session`] in-process the way the wire driver does in the simple
//! query protocol: parse, then bind and execute each statement, streaming the
//! rows in batches. The runner only ever sees the `Session` trait, so the same
//! code checks any implementation.

use std::time::Duration;

use futures_lite::future::block_on;
use teller_net::session::{Column, Completion, Session, StartupInfo};
use teller_net::types::Value;
use teller_net::{PgError, PgResult, SqlState};
use teller_sql::kv::memory::MemoryKv;
use teller_sql::{Host, SqlSession, SqlShard};

/// Rows pulled from the session per execute call (the wire driver's batch).
pub const ROWS_PER_BATCH: usize = 256;
/// Most rows one query may return to the runner before it is cut off.
pub const ROWS_PER_QUERY_MAX: usize = 1_000_000;
/// Fixed wall clock the test host reports: 2024-01-02 03:04:05.678901 UTC.
pub const TEST_NOW_MICROS: i64 = 1_704_164_645_678_901;

/// A host with a fixed clock, one shard, no sleeping, and its own
/// in-memory KV store and SQL shard state (one per test file).
pub struct TestHost {
    kv: MemoryKv,
    sql: SqlShard,
}

impl Host for TestHost {
    type Kv = MemoryKv;
    fn kv(&self) -> &MemoryKv {
        &self.kv
    }
    fn sql_shard(&self) -> &SqlShard {
        &self.sql
    }
    fn shard(&self) -> usize {
        0
    }
    fn shard_count(&self) -> usize {
        1
    }
    fn now_micros(&self) -> i64 {
        TEST_NOW_MICROS
    }
    async fn sleep(&self, _: Duration) {}
    async fn connections_per_shard(&self) -> Vec<u64> {
        vec![1]
    }
}

/// A fresh SQL session for one test file.
pub fn new_session() -> SessionDb<SqlSession<TestHost>> {
    let startup = StartupInfo {
        user: "slt".into(),
        database: "postgres".into(),
        params: Default::default(),
        process_id: 1,
    };
    match SqlSession::new(
        TestHost {
            kv: MemoryKv::new(),
            sql: SqlShard::new(),
        },
        &startup,
    ) {
        Ok(session) => SessionDb(session),
        Err(e) => panic!("a session with default settings must start: {e:?}"),
    }
}

/// The rows of a statement that returns rows.
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// What the runner needs of a database: run SQL text, get the rows of its
/// last statement that returns rows (or the first error).
pub trait Database {
    fn run(&mut self, sql: &str) -> PgResult<Option<QueryResult>>;
    /// The names this database answers to in `skipif`/`onlyif`.
    fn engines(&self) -> &'static [&'static str];
}

/// Any [`Session`], driven in-process.
pub struct SessionDb<S>(pub S);

impl<S: Session> Database for SessionDb<S> {
    fn run(&mut self, sql: &str) -> PgResult<Option<QueryResult>> {
        let session = &mut self.0;
        let result = run_all(session, sql);
        if result.is_err() {
            session.statement_failed();
        }
        session.take_events();
        result
    }

    fn engines(&self) -> &'static [&'static str] {
        super::record::TELLER_ENGINES
    }
}

fn run_all<S: Session>(session: &mut S, sql: &str) -> PgResult<Option<QueryResult>> {
    let mut last = None;
    for statement in session.parse(sql, &[])? {
        let columns = session.result_columns(&statement);
        let mut portal = session.bind(&statement, Vec::new())?;
        let mut rows = Vec::new();
        loop {
            let mut batch = Vec::with_capacity(ROWS_PER_BATCH);
            let completion = block_on(session.execute(&mut portal, ROWS_PER_BATCH, &mut batch))?;
            rows.append(&mut batch);
            if rows.len() > ROWS_PER_QUERY_MAX {
                return Err(PgError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    format!("the test runner takes at most {ROWS_PER_QUERY_MAX} rows"),
                ));
            }
            if let Completion::Done(_) = completion {
                break;
            }
        }
        if let Some(columns) = columns {
            last = Some(QueryResult { columns, rows });
        }
    }
    Ok(last)
}
