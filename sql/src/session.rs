//! A SQL session: the [`Session`] the wire driver talks to.
//!
//! - **Statements.** Control statements (SET, SHOW, BEGIN, COMMIT, ...) are
//!   bound at parse time. Data statements (queries, DML, DDL, EXPLAIN) are
//!   bound against a catalog snapshot: at Parse when the query text holds one
//!   statement (so errors come at Parse, as in PostgreSQL), otherwise just
//!   before each runs (so `CREATE TABLE t ...; INSERT INTO t ...` works in one
//!   simple query). Before running, a statement bound against another
//!   catalog than its transaction reads is bound again; if its parameters or
//!   result columns changed, it fails with PostgreSQL's "cached plan must not
//!   change result type".
//! - **Transactions.** Outside a block each statement runs in its own KV
//!   transaction, committed when it completes and retried (up to
//!   [`IMPLICIT_RETRIES_MAX`] times) after a serialization failure or
//!   deadlock if no row has reached the client. `BEGIN ... COMMIT` maps to
//!   one KV transaction, begun at the block's first data statement with the
//!   block's isolation level and access mode. A failed block refuses
//!   everything but its end (`25P02`); its KV transaction is dropped (rolled
//!   back) at once.
//! - **Streaming.** A query's operators live in its portal between Execute
//!   calls (PortalSuspended); an implicit transaction moves into the portal
//!   until the portal completes. DML and DDL run to completion on the first
//!   call.

pub mod control;
pub mod ranges;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use sqlparser::ast::Statement as Ast;
use teller_net::session::{Column, Completion, Session, SessionEvent, StartupInfo, TxStatus};
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use rand::SeedableRng;

use crate::bind::{self, BindEnv, Bound, Command};
use crate::catalog::{cache, Catalog};
use crate::exec::{self, Cx, Env, Op, Row, RunState};
use crate::kv::{Isolation, Kv, KvTxn, TxnOptions};
use crate::vars::Vars;
use crate::Host;
pub use control::Kind;

/// Longest SQL text accepted in one query, in bytes.
pub const QUERY_TEXT_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most statements in one simple query.
pub const STATEMENTS_PER_QUERY_MAX: usize = 10_000;
/// Deepest nesting the parser follows (sqlparser's recursion limit).
pub const PARSER_RECURSION_MAX: usize = 256;
/// Times a statement outside a block is retried after a retryable error.
pub const IMPLICIT_RETRIES_MAX: usize = 8;

/// A data statement bound against one catalog snapshot.
#[derive(Debug)]
pub struct BoundData {
    catalog: Rc<Catalog>,
    bound: Bound,
    params: Vec<Type>,
    columns: Option<Vec<Column>>,
    /// Whether it reads or writes tables (and so needs the catalog version
    /// of its transaction).
    needs_data: bool,
}

/// Parameter types and result columns, as described to the client.
type Description = (Vec<Type>, Option<Vec<Column>>);

/// A parsed statement.
#[derive(Clone, Debug)]
pub struct Statement {
    inner: Rc<StatementInner>,
}

#[derive(Debug)]
struct StatementInner {
    /// Control statements: bound at parse.
    control: Option<(Kind, Option<Vec<Column>>)>,
    /// Data statements.
    ast: Option<Ast>,
    declared: Vec<Option<Type>>,
    bound: RefCell<Option<Rc<BoundData>>>,
    /// The command tag to report instead of the statement's own.
    tag: Option<&'static str>,
    /// Parameters and columns first described to the client.
    described: RefCell<Option<Description>>,
}

/// A running statement's state, kept between Execute calls.
struct Running<K: Kv> {
    bound: Rc<BoundData>,
    op: Op,
    state: RunState,
    now_micros: i64,
    /// Rows produced beyond the last call's limit.
    pending: VecDeque<Row>,
    /// The statement's own transaction (outside a block).
    implicit: Option<K::Txn>,
    /// The block it runs in (its generation), if any.
    block: Option<u64>,
}

/// A statement with its parameter values.
pub struct Portal<K: Kv> {
    statement: Statement,
    params: Vec<Value>,
    /// EXECUTE runs a prepared statement's portal.
    inner: Option<Box<Portal<K>>>,
    running: Option<Running<K>>,
    /// Rows computed in full (SHOW, RETURNING, EXPLAIN) and the tag.
    buffered: Option<(std::vec::IntoIter<Row>, String)>,
    sent: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxState {
    Idle,
    InBlock,
    Failed,
}

/// The KV side of a transaction block.
struct Block<K: Kv> {
    txn: Option<K::Txn>,
    /// The catalog the transaction sees (private once it ran DDL).
    catalog: Option<Rc<Catalog>>,
    ddl: bool,
    generation: u64,
}

/// The executor's environment for a started portal. A macro rather than a
/// method: the environment borrows single fields of the session while the
/// caller also borrows the session's transaction mutably.
macro_rules! exec_env {
    ($session:expr, $portal:expr, $running:expr, $bound:expr) => {
        Env {
            params: &$portal.params,
            vars: &$session.vars,
            catalog: &$bound.catalog,
            database: &$session.database,
            user: &$session.user,
            process_id: $session.process_id,
            now_micros: $running.now_micros,
            shard: $session.host.sql_shard(),
            shard_id: $session.host.shard(),
            sleep: std::cell::Cell::new(0.0),
            rng: &$session.rng,
        }
    };
}

/// The transaction a started statement runs in: its own (outside a block)
/// or the block's.
fn statement_txn<'a, K: Kv>(
    implicit: &'a mut Option<K::Txn>,
    block: &'a mut Option<Block<K>>,
) -> PgResult<&'a mut K::Txn> {
    match implicit.as_mut() {
        Some(t) => Ok(t),
        None => block
            .as_mut()
            .and_then(|b| b.txn.as_mut())
            .ok_or_else(|| PgError::internal("no transaction")),
    }
}

pub struct SqlSession<H: Host> {
    host: H,
    user: String,
    database: String,
    process_id: i32,
    vars: Vars,
    tx: TxState,
    block: Option<Block<H::Kv>>,
    generation: u64,
    /// Variables as they were at BEGIN, restored on ROLLBACK.
    vars_at_begin: Option<Vars>,
    /// Variables to restore at the end of the block (SET LOCAL).
    local_restore: Vec<(String, String)>,
    events: Vec<SessionEvent>,
    /// Seeded by the host; the only source of `random()` and UUIDs.
    rng: RefCell<rand::rngs::StdRng>,
    /// SQL-level prepared statements (`PREPARE`), by name.
    prepared: HashMap<String, Statement>,
    /// A statement failed to bind for a name the shard's cached catalog
    /// may not know yet: refresh the cache before the next statement runs.
    stale_suspect: bool,
}

/// Most SQL-level prepared statements per session.
pub const PREPARED_STATEMENTS_MAX: usize = 10_000;

fn isolation(level: &str) -> Isolation {
    match level {
        "repeatable read" => Isolation::Snapshot,
        "read committed" | "read uncommitted" => Isolation::ReadCommitted,
        _ => Isolation::Serializable,
    }
}

fn retryable(e: &PgError) -> bool {
    e.code == SqlState::SERIALIZATION_FAILURE || e.code == SqlState::DEADLOCK_DETECTED
}

impl<H: Host> SqlSession<H> {
    pub fn new(host: H, startup: &StartupInfo) -> PgResult<Self> {
        let mut vars = Vars::new(&startup.user, host.shard(), host.shard_count());
        for (name, value) in &startup.params {
            match name.as_str() {
                "user" | "database" | "replication" | "options" => {}
                _ => {
                    vars.set(name, value).map_err(|e| PgError {
                        severity: teller_net::Severity::Fatal,
                        ..e
                    })?;
                }
            }
        }
        if let Some(options) = startup.params.get("options") {
            control::apply_startup_options(&mut vars, options)?;
        }
        let level = vars.get("default_transaction_isolation")?;
        vars.set("transaction_isolation", &level)?;
        let rng = RefCell::new(rand::rngs::StdRng::from_seed(host.random_seed()));
        Ok(SqlSession {
            rng,
            host,
            user: startup.user.clone(),
            database: startup.database.clone(),
            process_id: startup.process_id,
            vars,
            tx: TxState::Idle,
            block: None,
            generation: 0,
            vars_at_begin: None,
            local_restore: Vec::new(),
            events: Vec::new(),
            prepared: HashMap::new(),
            stale_suspect: false,
        })
    }

    fn notice(&mut self, code: SqlState, message: &str) {
        let mut notice = PgError::new(code, message);
        notice.severity = teller_net::Severity::Warning;
        self.events.push(SessionEvent::Notice(notice));
    }

    fn info(&mut self, message: &str) {
        let mut notice = PgError::new(SqlState::SUCCESSFUL_COMPLETION, message);
        notice.severity = teller_net::Severity::Notice;
        self.events.push(SessionEvent::Notice(notice));
    }

    fn set_var(&mut self, name: &str, value: &str) -> PgResult<()> {
        if let Some((name, value)) = self.vars.set(name, value)? {
            self.events.push(SessionEvent::ParameterStatus(name, value));
        }
        Ok(())
    }

    /// A statement from a parsed AST.
    fn statement(&self, ast: Ast, declared: Vec<Option<Type>>) -> PgResult<Statement> {
        let control = control::bind_control(&ast)?;
        let is_data = control.is_none();
        Ok(Statement {
            inner: Rc::new(StatementInner {
                control,
                ast: is_data.then_some(ast),
                declared,
                bound: RefCell::new(None),
                tag: None,
                described: RefCell::new(None),
            }),
        })
    }

    fn prepared(&self, name: &str) -> PgResult<Statement> {
        self.prepared.get(name).cloned().ok_or_else(|| {
            PgError::new(
                SqlState::INVALID_SQL_STATEMENT_NAME,
                format!("prepared statement \"{name}\" does not exist"),
            )
        })
    }

    /// The parameter values of `EXECUTE name(args)`.
    fn execute_args(&self, st: &Statement, args: &[sqlparser::ast::Expr]) -> PgResult<Vec<Value>> {
        let types = self.parameter_types(st);
        if types.len() != args.len() {
            return Err(PgError::syntax(format!(
                "wrong number of parameters for prepared statement: expected {}, got {}",
                types.len(),
                args.len()
            )));
        }
        let mut values = Vec::with_capacity(args.len());
        for (arg, ty) in args.iter().zip(types) {
            let mut params = Vec::new();
            let mut cx = crate::expr::BindContext::new(&mut params);
            let bound = crate::expr::bind(arg, &mut cx)?;
            let bound = crate::expr::ops::cast_to(bound, ty, &mut cx)?;
            let env = ConstEnv { session: self };
            values.push(crate::expr::eval(&bound, &env)?);
        }
        Ok(values)
    }

    /// The catalog statements bind against before they run: the block's
    /// own, or the newest the shard knows.
    fn view_catalog(&self) -> Rc<Catalog> {
        match self.block.as_ref().and_then(|b| b.catalog.clone()) {
            Some(c) => c,
            None => self.host.sql_shard().catalog().latest(),
        }
    }

    /// Binds a data statement against `catalog`.
    fn bind_against(&self, st: &Statement, catalog: Rc<Catalog>) -> PgResult<Rc<BoundData>> {
        let ast = st
            .inner
            .ast
            .as_ref()
            .ok_or_else(|| PgError::internal("binding a control statement"))?;
        let database = catalog.database(&self.database).map_or(0, |d| d.id);
        let schema = catalog
            .schema(database, crate::catalog::PUBLIC_SCHEMA)
            .map_or(0, |s| s.id);
        let env = BindEnv {
            catalog: &catalog,
            database,
            database_name: &self.database,
            schema,
            shard: self.host.sql_shard(),
        };
        let mut params = st.inner.declared.clone();
        let bound = bind::bind_statement(ast, &mut params, &env)?.ok_or_else(|| {
            PgError::unsupported(format!(
                "{} is not supported yet",
                control::statement_name(ast)
            ))
        })?;
        let params: Vec<Type> = params
            .into_iter()
            .map(|t| t.unwrap_or(Type::Text))
            .collect();
        let columns = bound.command.columns();
        let needs_data = needs_data(&bound);
        let data = Rc::new(BoundData {
            catalog: catalog.clone(),
            bound,
            params,
            columns,
            needs_data,
        });
        let mut described = st.inner.described.borrow_mut();
        match &*described {
            None => *described = Some((data.params.clone(), data.columns.clone())),
            Some((params, columns)) => {
                if *params != data.params || !same_columns(columns, &data.columns) {
                    return Err(PgError::unsupported(
                        "cached plan must not change result type",
                    ));
                }
            }
        }
        *st.inner.bound.borrow_mut() = Some(data.clone());
        Ok(data)
    }

    /// The statement bound against the catalog statements see now.
    fn ensure_bound(&self, st: &Statement) -> PgResult<Rc<BoundData>> {
        let catalog = self.view_catalog();
        if let Some(b) = st.inner.bound.borrow().as_ref() {
            if Rc::ptr_eq(&b.catalog, &catalog) {
                return Ok(b.clone());
            }
        }
        self.bind_against(st, catalog)
    }

    fn txn_options(&self) -> TxnOptions {
        let level = self.vars.get("transaction_isolation").unwrap_or_default();
        TxnOptions {
            isolation: isolation(&level),
            read_only: self.vars.get("transaction_read_only").ok().as_deref() == Some("on"),
        }
    }

    fn end_block(&mut self, commit: bool) {
        self.block = None;
        let restore = std::mem::take(&mut self.local_restore);
        if commit {
            for (name, value) in restore.into_iter().rev() {
                let _ = self.set_var(&name, &value);
            }
        } else if let Some(vars) = self.vars_at_begin.take() {
            let before = self.vars.reported();
            self.vars = vars;
            for (after, old) in self.vars.reported().into_iter().zip(before) {
                if after != old {
                    self.events
                        .push(SessionEvent::ParameterStatus(after.0, after.1));
                }
            }
        }
        self.vars_at_begin = None;
        self.tx = TxState::Idle;
        if let Ok(level) = self.vars.get("default_transaction_isolation") {
            let _ = self.vars.set("transaction_isolation", &level);
        }
        if let Ok(read_only) = self.vars.get("default_transaction_read_only") {
            let _ = self.vars.set("transaction_read_only", &read_only);
        }
    }

    async fn run_control(&mut self, kind: &Kind) -> PgResult<String> {
        match kind {
            Kind::Begin {
                isolation,
                read_only,
            } => {
                if self.tx != TxState::Idle {
                    self.notice(
                        SqlState::ACTIVE_SQL_TRANSACTION,
                        "there is already a transaction in progress",
                    );
                } else {
                    self.vars_at_begin = Some(self.vars.clone());
                    self.tx = TxState::InBlock;
                    self.generation += 1;
                    self.block = Some(Block {
                        txn: None,
                        catalog: None,
                        ddl: false,
                        generation: self.generation,
                    });
                }
                if let Some(level) = isolation {
                    self.vars.set("transaction_isolation", level)?;
                }
                if let Some(ro) = read_only {
                    self.vars
                        .set("transaction_read_only", if *ro { "on" } else { "off" })?;
                }
                Ok("BEGIN".into())
            }
            Kind::Commit => match self.tx {
                TxState::Idle => {
                    self.notice(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "there is no transaction in progress",
                    );
                    Ok("COMMIT".into())
                }
                TxState::InBlock => {
                    let ddl = self.block.as_ref().is_some_and(|b| b.ddl);
                    let txn = self.block.as_mut().and_then(|b| b.txn.take());
                    let result = match txn {
                        Some(txn) => txn.commit().await.map(|_| ()),
                        None => Ok(()),
                    };
                    self.end_block(result.is_ok());
                    result.map_err(PgError::from)?;
                    if ddl {
                        self.refresh_catalog().await?;
                    }
                    Ok("COMMIT".into())
                }
                // Committing a failed block rolls it back.
                TxState::Failed => {
                    self.end_block(false);
                    Ok("ROLLBACK".into())
                }
            },
            Kind::Rollback => {
                if self.tx == TxState::Idle {
                    self.notice(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "there is no transaction in progress",
                    );
                } else {
                    if let Some(txn) = self.block.as_mut().and_then(|b| b.txn.take()) {
                        let _ = txn.rollback().await;
                    }
                    self.end_block(false);
                }
                Ok("ROLLBACK".into())
            }
            Kind::SetTransaction {
                isolation,
                read_only,
                session,
            } => {
                let (level_var, ro_var) = if *session {
                    (
                        "default_transaction_isolation",
                        "default_transaction_read_only",
                    )
                } else {
                    if self.tx == TxState::Idle {
                        self.notice(
                            SqlState::NO_ACTIVE_SQL_TRANSACTION,
                            "SET TRANSACTION can only be used in transaction blocks",
                        );
                        return Ok("SET".into());
                    }
                    if isolation.is_some() && self.block.as_ref().is_some_and(|b| b.txn.is_some()) {
                        return Err(PgError::new(
                            SqlState::ACTIVE_SQL_TRANSACTION,
                            "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                        ));
                    }
                    ("transaction_isolation", "transaction_read_only")
                };
                if let Some(level) = isolation {
                    self.vars.set(level_var, level)?;
                }
                if let Some(ro) = read_only {
                    self.vars.set(ro_var, if *ro { "on" } else { "off" })?;
                }
                Ok("SET".into())
            }
            Kind::Set { name, value, local } => {
                if *local && self.tx == TxState::Idle {
                    self.notice(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "SET LOCAL can only be used in transaction blocks",
                    );
                    return Ok("SET".into());
                }
                let old = self.vars.get(name).ok();
                match value {
                    Some(value) => self.set_var(name, value)?,
                    None => {
                        if let Some((n, v)) = self.vars.reset(name)? {
                            self.events.push(SessionEvent::ParameterStatus(n, v));
                        }
                    }
                }
                if *local {
                    if let Some(old) = old {
                        self.local_restore.push((name.clone(), old));
                    }
                }
                Ok(if value.is_some() { "SET" } else { "RESET" }.into())
            }
            Kind::ResetAll => {
                for (name, value) in self.vars.reset_all() {
                    self.events.push(SessionEvent::ParameterStatus(name, value));
                }
                Ok("RESET".into())
            }
            Kind::DiscardAll => {
                if self.tx != TxState::Idle {
                    return Err(PgError::new(
                        SqlState::ACTIVE_SQL_TRANSACTION,
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                for (name, value) in self.vars.reset_all() {
                    self.events.push(SessionEvent::ParameterStatus(name, value));
                }
                self.prepared.clear();
                Ok("DISCARD ALL".into())
            }
            Kind::Prepare {
                name,
                statement,
                types,
            } => {
                if self.prepared.contains_key(name) {
                    return Err(PgError::new(
                        SqlState::DUPLICATE_PREPARED_STATEMENT,
                        format!("prepared statement \"{name}\" already exists"),
                    ));
                }
                if self.prepared.len() >= PREPARED_STATEMENTS_MAX {
                    return Err(PgError::new(
                        SqlState::PROGRAM_LIMIT_EXCEEDED,
                        format!("too many prepared statements (limit {PREPARED_STATEMENTS_MAX})"),
                    ));
                }
                let st = self.statement(*statement.clone(), types.clone())?;
                if st.inner.control.is_some() {
                    return Err(PgError::syntax("only data statements can be prepared"));
                }
                self.ensure_bound(&st)?;
                self.prepared.insert(name.clone(), st);
                Ok("PREPARE".into())
            }
            Kind::Deallocate(name) => {
                match name {
                    None => self.prepared.clear(),
                    Some(name) => {
                        if self.prepared.remove(name).is_none() {
                            return Err(PgError::new(
                                SqlState::INVALID_SQL_STATEMENT_NAME,
                                format!("prepared statement \"{name}\" does not exist"),
                            ));
                        }
                    }
                }
                Ok(if name.is_some() {
                    "DEALLOCATE"
                } else {
                    "DEALLOCATE ALL"
                }
                .into())
            }
            Kind::Show(_) | Kind::ShowRanges(_) | Kind::ShowAll | Kind::Execute { .. } => {
                Err(PgError::internal("not a control statement"))
            }
        }
    }

    async fn show_rows(&mut self, kind: &Kind) -> PgResult<Vec<Row>> {
        match kind {
            Kind::Show(name) if name == "teller.connections" => {
                let counts = self.host.connections_per_shard().await;
                Ok(counts
                    .into_iter()
                    .enumerate()
                    .map(|(shard, n)| vec![Value::Int4(shard as i32), Value::Int8(n as i64)])
                    .collect())
            }
            Kind::ShowRanges(table) => {
                let catalog = self.view_catalog();
                let kv = self.host.kv();
                ranges::rows(kv, &catalog, &self.database, table.as_deref()).await
            }
            Kind::Show(name) => {
                let value = match name.as_str() {
                    "transaction isolation level" => self.vars.get("transaction_isolation")?,
                    other => self.vars.get(other)?,
                };
                Ok(vec![vec![Value::Text(value)]])
            }
            Kind::ShowAll => Ok(self
                .vars
                .all()
                .into_iter()
                .map(|(n, v, d)| vec![Value::Text(n), Value::Text(v), Value::Text(d)])
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// A duration setting in milliseconds (`statement_timeout`,
    /// `lock_timeout`); 0 means no limit.
    fn millis_var(&self, name: &str) -> PgResult<Option<std::time::Duration>> {
        let text = self.vars.get(name)?;
        let millis: u64 = text
            .parse()
            .map_err(|_| PgError::internal(format!("{name} holds {text:?}")))?;
        Ok((millis > 0).then(|| std::time::Duration::from_millis(millis)))
    }

    /// Begins the block's KV transaction at its first data statement and
    /// returns the catalog it sees.
    async fn block_catalog(&mut self) -> PgResult<Rc<Catalog>> {
        let options = self.txn_options();
        let read_committed = options.isolation == Isolation::ReadCommitted;
        let block = self
            .block
            .as_mut()
            .ok_or_else(|| PgError::internal("no transaction block"))?;
        if block.txn.is_none() {
            block.txn = Some(self.host.kv().begin(options).await?);
        }
        let txn = block.txn.as_mut().expect("begun above");
        let refresh = block.catalog.is_none() || (read_committed && !block.ddl);
        if refresh {
            block.catalog = Some(cache::current(txn, self.host.sql_shard().catalog()).await?);
        }
        Ok(block.catalog.clone().expect("set above"))
    }

    /// Starts a data statement: its transaction, catalog check and first
    /// rows (or its whole work for DML and DDL).
    async fn start(
        &mut self,
        portal: &mut Portal<H::Kv>,
        max_rows: usize,
        out: &mut Vec<Row>,
    ) -> PgResult<Completion> {
        let in_block = self.tx == TxState::InBlock;
        let mut implicit = None;
        let mut version_check = None;
        let lock_timeout = self.millis_var("lock_timeout")?;
        let catalog = if in_block {
            let catalog = self.block_catalog().await?;
            if let Some(txn) = self.block.as_mut().and_then(|b| b.txn.as_mut()) {
                txn.set_lock_timeout(lock_timeout);
            }
            catalog
        } else {
            let mut txn = self.host.kv().begin(self.txn_options()).await?;
            txn.set_lock_timeout(lock_timeout);
            let bound = self.ensure_bound(&portal.statement)?;
            let schema_change = matches!(bound.bound.command, Command::Ddl(_));
            let latest = self.host.sql_shard().catalog().latest();
            let catalog = if !bound.needs_data {
                bound.catalog.clone()
            } else if !schema_change && Rc::ptr_eq(&latest, &bound.catalog) {
                // Planned against the newest catalog the shard knows: the
                // statement's first batch confirms the version.
                version_check = Some(latest.version);
                latest
            } else {
                cache::current(&mut txn, self.host.sql_shard().catalog()).await?
            };
            implicit = Some(txn);
            catalog
        };
        let bound = match portal.statement.inner.bound.borrow().as_ref() {
            Some(b) if Rc::ptr_eq(&b.catalog, &catalog) => Some(b.clone()),
            _ => None,
        };
        let bound = match bound {
            Some(b) => b,
            None => self.bind_against(&portal.statement, catalog)?,
        };
        if let Command::Ddl(ddl) = &bound.bound.command {
            let name = ddl.tag;
            if in_block && matches!(name, "CREATE DATABASE" | "DROP DATABASE") {
                return Err(PgError::new(
                    SqlState::ACTIVE_SQL_TRANSACTION,
                    format!("{name} cannot run inside a transaction block"),
                ));
            }
        }
        let running = Running {
            op: match &bound.bound.command {
                Command::Query { plan, .. } | Command::CopyOut { plan, .. } => Op::build(plan),
                _ => Op::build(&crate::plan::Plan::Values {
                    rows: Vec::new(),
                    types: Vec::new(),
                }),
            },
            bound,
            state: RunState {
                version_check: std::cell::Cell::new(version_check),
                ..RunState::default()
            },
            now_micros: self.host.now_micros(),
            pending: VecDeque::new(),
            implicit,
            block: self.block.as_ref().map(|b| b.generation),
        };
        portal.running = Some(running);
        match &portal
            .running
            .as_ref()
            .expect("set above")
            .bound
            .bound
            .command
        {
            Command::Query { .. } | Command::CopyOut { .. } => {
                self.pull(portal, max_rows, out).await
            }
            // The rows come through `copy_in`.
            Command::CopyIn { .. } => Ok(Completion::Suspended),
            _ => {
                self.run_to_end(portal).await?;
                Ok(Self::drain(portal, max_rows, out))
            }
        }
    }

    /// Runs DML, DDL and EXPLAIN to completion; buffers their rows
    /// (RETURNING, EXPLAIN) and command tag in the portal.
    async fn run_to_end(&mut self, portal: &mut Portal<H::Kv>) -> PgResult<()> {
        let running = portal.running.as_mut().expect("started");
        let bound = running.bound.clone();
        let env = exec_env!(self, portal, running, bound);
        let txn = statement_txn(&mut running.implicit, &mut self.block)?;
        let mut cx = Cx {
            kv: self.host.kv(),
            txn,
            env: &env,
            subplans: &bound.bound.subplans,
            state: &running.state,
            outer: &[],
        };
        let (rows, tag, notices, ddl) = match &bound.bound.command {
            Command::Insert(p) => {
                let r = exec::write::insert(&mut cx, p).await?;
                (
                    r.returning,
                    format!("INSERT 0 {}", r.count),
                    Vec::new(),
                    false,
                )
            }
            Command::Update(p) => {
                let r = exec::write::update(&mut cx, p).await?;
                (
                    r.returning,
                    format!("UPDATE {}", r.count),
                    Vec::new(),
                    false,
                )
            }
            Command::Delete(p) => {
                let r = exec::write::delete(&mut cx, p).await?;
                (
                    r.returning,
                    format!("DELETE {}", r.count),
                    Vec::new(),
                    false,
                )
            }
            Command::Ddl(d) => {
                exec::ddl::apply(&mut cx, &bound.catalog, d).await?;
                (
                    Vec::new(),
                    d.tag.to_string(),
                    d.notices.clone(),
                    !matches!(
                        d.op,
                        bind::ddl::DdlOp::Nothing | bind::ddl::DdlOp::Truncate { .. }
                    ),
                )
            }
            Command::Explain(lines) => (
                lines.iter().map(|l| vec![Value::Text(l.clone())]).collect(),
                "EXPLAIN".to_string(),
                Vec::new(),
                false,
            ),
            Command::Analyze(tables) => {
                for t in tables {
                    exec::scan::count_rows(&mut cx, t).await?;
                }
                (Vec::new(), "ANALYZE".to_string(), Vec::new(), false)
            }
            Command::Query { .. } | Command::CopyOut { .. } => {
                return Err(PgError::internal("queries stream"))
            }
            Command::CopyIn { .. } => return Err(PgError::internal("COPY FROM runs by copy_in")),
        };
        for n in notices {
            self.info(&n);
        }
        if ddl {
            if let Some(block) = self.block.as_mut() {
                let txn = block
                    .txn
                    .as_mut()
                    .ok_or_else(|| PgError::internal("no transaction"))?;
                let version = cache::read_version(txn).await?;
                block.catalog = Some(Rc::new(Catalog::load(txn, version).await?));
                block.ddl = true;
            }
        }
        let running = portal.running.as_mut().expect("started");
        if let Some(txn) = running.implicit.take() {
            txn.commit().await?;
            if ddl {
                self.refresh_catalog().await?;
            }
        }
        portal.running = None;
        let tag = portal.statement.inner.tag.map_or(tag, str::to_string);
        portal.buffered = Some((rows.into_iter(), tag));
        Ok(())
    }

    /// Loads the newest committed catalog into the shard's cache (after
    /// this session committed DDL), so the next Parse sees it.
    async fn refresh_catalog(&mut self) -> PgResult<()> {
        let version = self.load_catalog().await?;
        self.host.sql_shard().catalog().announce(version);
        self.host.catalog_changed(version).await;
        Ok(())
    }

    /// Loads the newest committed catalog into the shard's cache; returns
    /// its version.
    async fn load_catalog(&mut self) -> PgResult<u64> {
        let mut txn = self.host.kv().begin(TxnOptions::default()).await?;
        let catalog = cache::current(&mut txn, self.host.sql_shard().catalog()).await?;
        txn.rollback().await?;
        Ok(catalog.version)
    }

    /// Pulls query rows into `out`, up to `max_rows`.
    async fn pull(
        &mut self,
        portal: &mut Portal<H::Kv>,
        max_rows: usize,
        out: &mut Vec<Row>,
    ) -> PgResult<Completion> {
        let running = portal.running.as_mut().expect("started");
        if running.block.is_some() && running.block != self.block.as_ref().map(|b| b.generation) {
            return Err(PgError::new(
                SqlState::INVALID_CURSOR_NAME,
                "portal does not exist: its transaction has ended",
            ));
        }
        let bound = running.bound.clone();
        let env = exec_env!(self, portal, running, bound);
        let txn = statement_txn(&mut running.implicit, &mut self.block)?;
        let mut cx = Cx {
            kv: self.host.kv(),
            txn,
            env: &env,
            subplans: &bound.bound.subplans,
            state: &running.state,
            outer: &[],
        };
        let mut done = false;
        while out.len() < max_rows {
            if let Some(row) = running.pending.pop_front() {
                out.push(row);
                continue;
            }
            match running.op.next(&mut cx).await? {
                Some(batch) => running.pending.extend(batch),
                None => {
                    done = true;
                    break;
                }
            }
        }
        let seconds = env.sleep.get();
        if seconds > 0.0 {
            self.host.sleep(Duration::from_secs_f64(seconds)).await;
        }
        if !done && running.pending.is_empty() {
            // The limit was reached exactly: look ahead for the end.
            let txn = statement_txn(&mut running.implicit, &mut self.block)?;
            let mut cx = Cx {
                kv: self.host.kv(),
                txn,
                env: &env,
                subplans: &bound.bound.subplans,
                state: &running.state,
                outer: &[],
            };
            match running.op.next(&mut cx).await? {
                Some(batch) => running.pending.extend(batch),
                None => done = true,
            }
        }
        portal.sent += out.len();
        if !done {
            return Ok(Completion::Suspended);
        }
        if let Some(txn) = running.implicit.take() {
            txn.commit().await?;
        }
        portal.running = None;
        Ok(Completion::Done(format!("SELECT {}", portal.sent)))
    }

    /// Begins `COPY ... FROM STDIN` at its first rows (or its end): its
    /// transaction and catalog, as for any statement.
    async fn copy_start(&mut self, portal: &mut Portal<H::Kv>) -> PgResult<()> {
        if self.tx == TxState::Failed {
            return Err(PgError::new(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if portal.running.is_some() {
            return Ok(());
        }
        if std::mem::take(&mut self.stale_suspect) {
            self.refresh_catalog().await?;
        }
        let mut none = Vec::new();
        let result = self.start(portal, 1, &mut none).await;
        if let Err(e) = result {
            portal.running = None;
            return Err(e);
        }
        match portal.running.as_ref().map(|r| &r.bound.bound.command) {
            Some(Command::CopyIn { .. }) => Ok(()),
            _ => Err(PgError::internal("COPY FROM rows for another statement")),
        }
    }

    /// Inserts a batch of rows received by `COPY ... FROM STDIN`.
    async fn copy_rows(&mut self, portal: &mut Portal<H::Kv>, rows: Vec<Row>) -> PgResult<()> {
        let running = portal.running.as_mut().expect("started");
        let bound = running.bound.clone();
        let Command::CopyIn { insert, .. } = &bound.bound.command else {
            return Err(PgError::internal("COPY FROM rows for another statement"));
        };
        let env = exec_env!(self, portal, running, bound);
        let txn = statement_txn(&mut running.implicit, &mut self.block)?;
        let mut cx = Cx {
            kv: self.host.kv(),
            txn,
            env: &env,
            subplans: &bound.bound.subplans,
            state: &running.state,
            outer: &[],
        };
        let count = exec::write::insert_rows(&mut cx, insert, rows).await?;
        portal.sent += count as usize;
        Ok(())
    }

    /// Hands out buffered rows.
    fn drain(portal: &mut Portal<H::Kv>, max_rows: usize, out: &mut Vec<Row>) -> Completion {
        let (rows, tag) = portal.buffered.as_mut().expect("buffered");
        for row in rows.by_ref().take(max_rows) {
            out.push(row);
        }
        portal.sent += out.len();
        if rows.len() > 0 {
            return Completion::Suspended;
        }
        let tag = tag.clone();
        portal.buffered = Some((Vec::new().into_iter(), tag.clone()));
        Completion::Done(tag)
    }
}

/// Evaluation of constant expressions (EXECUTE arguments) in a session.
struct ConstEnv<'a, H: Host> {
    session: &'a SqlSession<H>,
}

impl<H: Host> crate::expr::EvalContext for ConstEnv<'_, H> {
    fn param(&self, _index: usize) -> &Value {
        &Value::Null
    }
    fn setting(&self, name: &str) -> PgResult<String> {
        self.session.vars.get(name)
    }
    fn database(&self) -> &str {
        &self.session.database
    }
    fn user(&self) -> &str {
        &self.session.user
    }
    fn process_id(&self) -> i32 {
        self.session.process_id
    }
    fn now_micros(&self) -> i64 {
        self.session.host.now_micros()
    }
    fn request_sleep(&self, _seconds: f64) {}
}

/// Whether a bound statement reads or writes tables.
fn needs_data(bound: &Bound) -> bool {
    fn plan_reads(plan: &crate::plan::Plan) -> bool {
        use crate::plan::Plan;
        fn exprs_read<'e>(mut exprs: impl Iterator<Item = &'e crate::expr::Expr>) -> bool {
            exprs.any(|e| {
                crate::plan::any_node(e, &mut |n| matches!(n, crate::expr::Expr::NextVal(_)))
            })
        }
        match plan {
            Plan::Scan(_) => true,
            Plan::Values { rows, .. } => exprs_read(rows.iter().flatten()),
            Plan::Series { .. } | Plan::Virtual(_) | Plan::TableFn { .. } => false,
            Plan::Project { input, exprs, .. } => plan_reads(input) || exprs_read(exprs.iter()),
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input, .. } => plan_reads(input),
            Plan::Join(j) => plan_reads(&j.left) || plan_reads(&j.right),
            Plan::Aggregate(a) => plan_reads(&a.input),
            Plan::SetOp(op) => plan_reads(&op.left) || plan_reads(&op.right),
        }
    }
    match &bound.command {
        Command::Query { plan, .. } | Command::CopyOut { plan, .. } => {
            plan_reads(plan) || bound.subplans.iter().any(plan_reads)
        }
        Command::Explain(_) => false,
        _ => true,
    }
}

fn same_columns(a: &Option<Vec<Column>>, b: &Option<Vec<Column>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.name == y.name && x.ty == y.ty)
        }
        _ => false,
    }
}

fn is_transaction_end(statement: &Statement) -> bool {
    matches!(
        statement.inner.control,
        Some((Kind::Commit | Kind::Rollback, _))
    )
}

impl<H: Host> Session for SqlSession<H> {
    type Statement = Statement;
    type Portal = Portal<H::Kv>;

    fn startup_parameters(&self) -> Vec<(String, String)> {
        self.vars.reported()
    }

    async fn refresh(&mut self) -> PgResult<()> {
        if self.host.sql_shard().catalog().is_stale() {
            self.load_catalog().await?;
        }
        Ok(())
    }

    fn parse(&mut self, sql: &str, param_types: &[u32]) -> PgResult<Vec<Statement>> {
        let mut declared = Vec::with_capacity(param_types.len());
        for &oid in param_types {
            declared.push(match oid {
                0 => None,
                oid => Some(Type::from_oid(oid).ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!("type with OID {oid} does not exist"),
                    )
                })?),
            });
        }
        let vacuum = control::vacuum_rewrite(sql);
        let copy = bind::copy::rewrite_options(sql);
        let asts = control::parse_sql(vacuum.as_deref().or(copy.as_deref()).unwrap_or(sql))?;
        let single = asts.len() == 1;
        let mut out = Vec::with_capacity(asts.len());
        for ast in asts {
            let mut statement = self.statement(ast, declared.clone())?;
            if vacuum.is_some() {
                Rc::get_mut(&mut statement.inner).expect("just built").tag = Some("VACUUM");
            }
            let is_data = statement.inner.control.is_none();
            if single && is_data {
                if let Err(e) = self.ensure_bound(&statement) {
                    // The shard's catalog may be behind DDL committed
                    // elsewhere: make sure the next statement sees it.
                    let names_something = [
                        SqlState::UNDEFINED_TABLE,
                        SqlState::UNDEFINED_COLUMN,
                        SqlState::UNDEFINED_FUNCTION,
                        SqlState::UNDEFINED_OBJECT,
                        crate::errors::INVALID_SCHEMA_NAME,
                        SqlState::INVALID_CATALOG_NAME,
                    ];
                    if names_something.contains(&e.code) && self.tx == TxState::Idle {
                        self.stale_suspect = true;
                    }
                    return Err(e);
                }
            }
            out.push(statement);
        }
        Ok(out)
    }

    fn parameter_types(&self, statement: &Statement) -> Vec<Type> {
        if statement.inner.control.is_some() {
            return statement
                .inner
                .declared
                .iter()
                .map(|t| t.unwrap_or(Type::Text))
                .collect();
        }
        self.ensure_bound(statement)
            .map(|b| b.params.clone())
            .unwrap_or_default()
    }

    fn result_columns(&self, statement: &Statement) -> Option<Vec<Column>> {
        if let Some((Kind::Execute { name, .. }, _)) = &statement.inner.control {
            let prepared = self.prepared(name).ok()?;
            return self.result_columns(&prepared);
        }
        if let Some((_, columns)) = &statement.inner.control {
            return columns.clone();
        }
        self.ensure_bound(statement)
            .ok()
            .and_then(|b| b.columns.clone())
    }

    fn bind(&mut self, statement: &Statement, params: Vec<Value>) -> PgResult<Portal<H::Kv>> {
        let expected = if statement.inner.control.is_some() {
            statement.inner.declared.len()
        } else if self.tx == TxState::Failed {
            params.len()
        } else {
            self.ensure_bound(statement)?.params.len()
        };
        if params.len() != expected {
            return Err(PgError::protocol(format!(
                "statement requires {expected} parameters, {} given",
                params.len()
            )));
        }
        Ok(Portal {
            statement: statement.clone(),
            params,
            inner: None,
            running: None,
            buffered: None,
            sent: 0,
        })
    }

    async fn execute(
        &mut self,
        portal: &mut Portal<H::Kv>,
        max_rows: usize,
        out: &mut Vec<Vec<Value>>,
    ) -> PgResult<Completion> {
        if self.tx == TxState::Failed && !is_transaction_end(&portal.statement) {
            return Err(PgError::new(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if portal.buffered.is_some() {
            return Ok(Self::drain(portal, max_rows, out));
        }
        if let Some(inner) = portal.inner.as_mut() {
            return Box::pin(self.execute(inner, max_rows, out)).await;
        }
        if let Some((Kind::Execute { name, args }, _)) = &portal.statement.inner.control {
            let prepared = self.prepared(name)?;
            let values = self.execute_args(&prepared, args)?;
            let inner = self.bind(&prepared, values)?;
            let inner = portal.inner.insert(Box::new(inner));
            return Box::pin(self.execute(inner, max_rows, out)).await;
        }
        if let Some((kind, columns)) = portal.statement.inner.control.clone() {
            if columns.is_some() {
                let rows = self.show_rows(&kind).await?;
                portal.buffered = Some((rows.into_iter(), "SHOW".into()));
                return Ok(Self::drain(portal, max_rows, out));
            }
            let tag = self.run_control(&kind).await?;
            return Ok(Completion::Done(tag));
        }
        if portal.running.is_some() {
            return self.pull(portal, max_rows, out).await;
        }
        if std::mem::take(&mut self.stale_suspect) {
            self.refresh_catalog().await?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.start(portal, max_rows, out).await {
                Err(e)
                    if retryable(&e)
                        && self.tx == TxState::Idle
                        && attempt < IMPLICIT_RETRIES_MAX =>
                {
                    // Nothing reached the client yet: run it again, with
                    // the newest catalog (the failure may be a schema
                    // change the statement's first batch detected).
                    portal.running = None;
                    self.refresh_catalog().await?;
                    out.clear();
                    portal.running = None;
                    portal.buffered = None;
                    portal.sent = 0;
                    continue;
                }
                Err(e) => {
                    portal.running = None;
                    return Err(e);
                }
                Ok(c) => return Ok(c),
            }
        }
    }

    fn copy_spec(&self, statement: &Statement) -> Option<teller_net::copy::CopySpec> {
        statement.inner.ast.as_ref()?;
        self.ensure_bound(statement)
            .ok()
            .and_then(|b| b.bound.command.copy_spec().cloned())
    }

    async fn copy_in(&mut self, portal: &mut Portal<H::Kv>, rows: Vec<Vec<Value>>) -> PgResult<()> {
        self.copy_start(portal).await?;
        self.copy_rows(portal, rows).await
    }

    async fn copy_in_done(&mut self, portal: &mut Portal<H::Kv>) -> PgResult<String> {
        self.copy_start(portal).await?;
        let running = portal.running.as_mut().expect("started");
        if let Some(txn) = running.implicit.take() {
            txn.commit().await?;
        }
        portal.running = None;
        Ok(format!("COPY {}", portal.sent))
    }

    fn copy_in_failed(&mut self, portal: &mut Portal<H::Kv>) {
        // Dropping an implicit transaction rolls it back; a block fails
        // through `statement_failed`.
        portal.running = None;
    }

    fn statement_timeout(&self) -> Option<std::time::Duration> {
        // The setting's check admits only integers, so this cannot fail.
        self.millis_var("statement_timeout").ok().flatten()
    }

    fn statement_failed(&mut self) {
        if self.tx == TxState::InBlock {
            self.tx = TxState::Failed;
            // Dropping the KV transaction rolls it back.
            if let Some(block) = self.block.as_mut() {
                block.txn = None;
            }
        }
    }

    fn transaction_status(&self) -> TxStatus {
        match self.tx {
            TxState::Idle => TxStatus::Idle,
            TxState::InBlock => TxStatus::InBlock,
            TxState::Failed => TxStatus::Failed,
        }
    }

    fn take_events(&mut self) -> Vec<SessionEvent> {
        std::mem::take(&mut self.events)
    }
}
