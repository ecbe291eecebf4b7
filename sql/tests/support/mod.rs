//! Drives `SqlSession` through the wire's `Session` trait over `MemoryKv`,
//! as the wire driver does (simple and extended protocol).
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::block_on;
use teller_net::session::{Column, Completion, Session, StartupInfo};
use teller_net::types::{encode_text, Value};
use teller_net::{PgError, PgResult};
use teller_sql::kv::memory::MemoryKv;
use teller_sql::{Host, SqlSession, SqlShard};

pub struct TestHost {
    pub kv: MemoryKv,
    pub shard: SqlShard,
    pub now: Rc<Cell<i64>>,
}

impl Host for TestHost {
    type Kv = MemoryKv;
    fn shard(&self) -> usize {
        0
    }
    fn shard_count(&self) -> usize {
        1
    }
    fn now_micros(&self) -> i64 {
        let t = self.now.get();
        self.now.set(t + 1);
        t
    }
    async fn sleep(&self, _duration: Duration) {}
    async fn connections_per_shard(&self) -> Vec<u64> {
        vec![1]
    }
    fn kv(&self) -> &MemoryKv {
        &self.kv
    }
    fn sql_shard(&self) -> &SqlShard {
        &self.shard
    }
}

/// A node's worth of shared state: sessions opened from it share data.
#[derive(Clone, Default)]
pub struct Node {
    pub kv: MemoryKv,
    pub shard: SqlShard,
    pub now: Rc<Cell<i64>>,
}

impl Node {
    pub fn new() -> Node {
        let node = Node::default();
        node.now.set(1_700_000_000_000_000);
        node
    }

    pub fn session(&self) -> Sess {
        self.session_in("teller")
    }

    pub fn session_in(&self, database: &str) -> Sess {
        let host = TestHost {
            kv: self.kv.clone(),
            shard: self.shard.clone(),
            now: self.now.clone(),
        };
        let startup = StartupInfo {
            user: "teller".into(),
            database: database.into(),
            params: Default::default(),
            process_id: 1,
        };
        Sess {
            s: SqlSession::new(host, &startup).expect("session opens"),
        }
    }
}

pub struct Sess {
    pub s: SqlSession<TestHost>,
}

/// A value as text (NULL as `NULL`).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        other => {
            let mut buf = bytes::BytesMut::new();
            encode_text(other, other.natural_type(), &mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        }
    }
}

pub struct Output {
    pub columns: Option<Vec<Column>>,
    pub rows: Vec<Vec<Value>>,
    pub tag: String,
}

impl Sess {
    /// Runs a simple query (all statements); the last statement's output.
    pub fn run(&mut self, sql: &str) -> PgResult<Output> {
        block_on(async {
            let statements = match self.s.parse(sql, &[]) {
                Ok(s) => s,
                Err(e) => {
                    self.s.statement_failed();
                    return Err(e);
                }
            };
            let mut last = Output {
                columns: None,
                rows: Vec::new(),
                tag: String::new(),
            };
            for st in statements {
                let result: PgResult<Output> = async {
                    let columns = self.s.result_columns(&st);
                    let mut portal = self.s.bind(&st, Vec::new())?;
                    let mut rows = Vec::new();
                    loop {
                        let mut batch = Vec::new();
                        match self.s.execute(&mut portal, 256, &mut batch).await? {
                            Completion::Done(tag) => {
                                rows.extend(batch);
                                return Ok(Output { columns, rows, tag });
                            }
                            Completion::Suspended => rows.extend(batch),
                        }
                    }
                }
                .await;
                match result {
                    Ok(o) => last = o,
                    Err(e) => {
                        self.s.statement_failed();
                        return Err(e);
                    }
                }
            }
            Ok(last)
        })
    }

    /// Extended protocol: parse, bind with parameters, execute in steps of
    /// `max_rows`.
    pub fn run_params(
        &mut self,
        sql: &str,
        params: Vec<Value>,
        max_rows: usize,
    ) -> PgResult<Output> {
        block_on(async {
            let result: PgResult<Output> = async {
                let mut parsed = self.s.parse(sql, &[])?;
                let st = parsed.pop().ok_or_else(|| PgError::internal("empty"))?;
                let columns = self.s.result_columns(&st);
                let mut portal = self.s.bind(&st, params)?;
                let mut rows = Vec::new();
                loop {
                    let mut batch = Vec::new();
                    match self.s.execute(&mut portal, max_rows, &mut batch).await? {
                        Completion::Done(tag) => {
                            rows.extend(batch);
                            return Ok(Output { columns, rows, tag });
                        }
                        Completion::Suspended => {
                            assert!(batch.len() <= max_rows);
                            rows.extend(batch);
                        }
                    }
                }
            }
            .await;
            if result.is_err() {
                self.s.statement_failed();
            }
            result
        })
    }

    /// Rows as text, each row joined with `|`.
    pub fn query(&mut self, sql: &str) -> Vec<String> {
        match self.run(sql) {
            Ok(o) => o
                .rows
                .iter()
                .map(|r| r.iter().map(text).collect::<Vec<_>>().join("|"))
                .collect(),
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }

    /// The command tag of the last statement.
    pub fn exec(&mut self, sql: &str) -> String {
        match self.run(sql) {
            Ok(o) => o.tag,
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }

    /// The error a statement fails with.
    pub fn error(&mut self, sql: &str) -> PgError {
        match self.run(sql) {
            Ok(o) => panic!(
                "{sql}: expected an error, got {} rows ({})",
                o.rows.len(),
                o.tag
            ),
            Err(e) => e,
        }
    }

    /// The SQLSTATE a statement fails with.
    pub fn code(&mut self, sql: &str) -> &'static str {
        self.error(sql).code.code()
    }
}
