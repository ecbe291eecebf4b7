//! A SQL session: the [`Session`] the wire driver talks to.
//!
//! Today it runs what a client needs to connect and probe: `SELECT` of constant
//! expressions (with `WHERE`, `LIMIT`, `OFFSET`) and `VALUES`, `SET`/`SHOW`/
//! `RESET` of session variables, transaction blocks (`BEGIN`/`COMMIT`/
//! `ROLLBACK` with the transaction status byte and PostgreSQL's warnings, and
//! the failed-block rule), and `DISCARD ALL`. Statements that need tables answer
//! `0A000` until the catalog and executor exist.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use sqlparser::ast::{self, Statement as Ast};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use teller_net::session::{Column, Completion, Session, SessionEvent, StartupInfo, TxStatus};
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use rand::{RngCore, SeedableRng};

use crate::expr::{self, BindContext, EvalContext, Expr};
use crate::vars::{self, Vars};
use crate::Host;

/// Longest SQL text accepted in one query, in bytes.
pub const QUERY_TEXT_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most statements in one simple query.
pub const STATEMENTS_PER_QUERY_MAX: usize = 10_000;
/// Deepest nesting the parser follows (sqlparser's recursion limit).
pub const PARSER_RECURSION_MAX: usize = 256;

/// A parsed, bound statement.
#[derive(Clone, Debug)]
pub struct Statement {
    kind: Kind,
    params: Vec<Type>,
    columns: Option<Vec<Column>>,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Rows of constant expressions, filtered and limited.
    Rows {
        rows: Vec<Vec<Expr>>,
        filter: Option<Expr>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    Show(String),
    ShowAll,
    Set {
        name: String,
        value: Option<String>,
        local: bool,
    },
    ResetAll,
    Begin {
        isolation: Option<String>,
        read_only: Option<bool>,
    },
    Commit,
    Rollback,
    SetTransaction {
        isolation: Option<String>,
        read_only: Option<bool>,
        session: bool,
    },
    DiscardAll,
}

/// A statement with its parameter values, running.
pub struct Portal {
    statement: Statement,
    params: Vec<Value>,
    /// Result rows computed on the first execute, handed out in batches.
    rows: Option<std::vec::IntoIter<Vec<Value>>>,
    sent: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxState {
    Idle,
    InBlock,
    Failed,
}

pub struct SqlSession<H: Host> {
    host: H,
    user: String,
    database: String,
    process_id: i32,
    vars: Vars,
    tx: TxState,
    /// Variables as they were at BEGIN, restored on ROLLBACK.
    vars_at_begin: Option<Vars>,
    /// Variables to restore at the end of the block (SET LOCAL).
    local_restore: Vec<(String, String)>,
    events: Vec<SessionEvent>,
    /// Seeded by the host; the only source of `random()` and UUIDs.
    rng: RefCell<rand::rngs::StdRng>,
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
            apply_startup_options(&mut vars, options)?;
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
            vars_at_begin: None,
            local_restore: Vec::new(),
            events: Vec::new(),
        })
    }

    fn notice(&mut self, code: SqlState, message: &str) {
        let mut notice = PgError::new(code, message);
        notice.severity = teller_net::Severity::Warning;
        self.events.push(SessionEvent::Notice(notice));
    }

    fn set_var(&mut self, name: &str, value: &str) -> PgResult<()> {
        if let Some((name, value)) = self.vars.set(name, value)? {
            self.events.push(SessionEvent::ParameterStatus(name, value));
        }
        Ok(())
    }

    fn end_block(&mut self, commit: bool) {
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

    fn run_control(&mut self, kind: &Kind) -> PgResult<String> {
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
            Kind::Commit => {
                let tag = match self.tx {
                    TxState::Idle => {
                        self.notice(
                            SqlState::NO_ACTIVE_SQL_TRANSACTION,
                            "there is no transaction in progress",
                        );
                        "COMMIT"
                    }
                    TxState::InBlock => {
                        self.end_block(true);
                        "COMMIT"
                    }
                    // Committing a failed block rolls it back.
                    TxState::Failed => {
                        self.end_block(false);
                        "ROLLBACK"
                    }
                };
                Ok(tag.into())
            }
            Kind::Rollback => {
                if self.tx == TxState::Idle {
                    self.notice(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "there is no transaction in progress",
                    );
                } else {
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
                Ok("DISCARD ALL".into())
            }
            other => Err(PgError::internal(format!(
                "not a control statement: {other:?}"
            ))),
        }
    }

    async fn compute_rows(
        &mut self,
        statement: &Statement,
        params: &[Value],
    ) -> PgResult<Vec<Vec<Value>>> {
        match &statement.kind {
            Kind::Rows {
                rows,
                filter,
                limit,
                offset,
            } => {
                let sleep = Cell::new(0.0);
                let out = {
                    let cx = Eval {
                        session: self,
                        params,
                        sleep: &sleep,
                    };
                    let keep = match filter {
                        Some(f) => expr::eval(f, &cx)? == Value::Bool(true),
                        None => true,
                    };
                    let offset = count_clause(offset.as_ref(), &cx, "OFFSET")?.unwrap_or(0);
                    let limit = count_clause(limit.as_ref(), &cx, "LIMIT")?;
                    let mut out = Vec::new();
                    if keep {
                        for row in rows.iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
                            out.push(
                                row.iter()
                                    .map(|e| expr::eval(e, &cx))
                                    .collect::<PgResult<Vec<_>>>()?,
                            );
                        }
                    }
                    out
                };
                let seconds = sleep.get();
                if seconds > 0.0 {
                    self.host.sleep(Duration::from_secs_f64(seconds)).await;
                }
                Ok(out)
            }
            Kind::Show(name) if name == "teller.connections" => {
                let counts = self.host.connections_per_shard().await;
                Ok(counts
                    .into_iter()
                    .enumerate()
                    .map(|(shard, n)| vec![Value::Int4(shard as i32), Value::Int8(n as i64)])
                    .collect())
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
}

fn apply_startup_options(vars: &mut Vars, options: &str) -> PgResult<()> {
    // `-c name=value` pairs, as libpq's PGOPTIONS passes them.
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next().unwrap_or_default().to_string(),
            w if w.starts_with("-c") => w[2..].to_string(),
            w if w.starts_with("--") => w[2..].to_string(),
            _ => continue,
        };
        if let Some((name, value)) = setting.split_once('=') {
            vars.set(&name.replace('-', "_"), value)
                .map_err(|e| PgError {
                    severity: teller_net::Severity::Fatal,
                    ..e
                })?;
        }
    }
    Ok(())
}

fn count_clause(e: Option<&Expr>, cx: &Eval<'_, impl Host>, what: &str) -> PgResult<Option<usize>> {
    let Some(e) = e else { return Ok(None) };
    match expr::eval(e, cx)? {
        Value::Null => Ok(None),
        Value::Int8(n) if n >= 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Value::Int8(_) => Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("{what} must not be negative"),
        )),
        other => Err(PgError::internal(format!("{what} evaluated to {other:?}"))),
    }
}

struct Eval<'a, H: Host> {
    session: &'a SqlSession<H>,
    params: &'a [Value],
    sleep: &'a Cell<f64>,
}

impl<H: Host> EvalContext for Eval<'_, H> {
    fn param(&self, index: usize) -> &Value {
        self.params.get(index).unwrap_or(&Value::Null)
    }
    fn setting(&self, name: &str) -> PgResult<String> {
        match name.to_ascii_lowercase().as_str() {
            "teller.connections" => Err(PgError::unsupported("use SHOW teller.connections")),
            _ => self.session.vars.get(name),
        }
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
    fn request_sleep(&self, seconds: f64) {
        self.sleep.set(self.sleep.get() + seconds);
    }
    fn random_u64(&self) -> PgResult<u64> {
        Ok(self.session.rng.borrow_mut().next_u64())
    }
}

/// Parses SQL text into sqlparser statements with our limits.
fn parse_sql(sql: &str) -> PgResult<Vec<Ast>> {
    if sql.len() > QUERY_TEXT_BYTES_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "query text of {} bytes exceeds the limit of {QUERY_TEXT_BYTES_MAX} bytes",
                sql.len()
            ),
        ));
    }
    if sql.trim().trim_matches(';').trim().is_empty() {
        return Ok(Vec::new());
    }
    let dialect = PostgreSqlDialect {};
    let statements = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_MAX)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| PgError::syntax(syntax_message(&e)))?;
    if statements.len() > STATEMENTS_PER_QUERY_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("more than {STATEMENTS_PER_QUERY_MAX} statements in one query"),
        ));
    }
    Ok(statements)
}

fn syntax_message(error: &sqlparser::parser::ParserError) -> String {
    use sqlparser::parser::ParserError as P;
    match error {
        P::RecursionLimitExceeded => "statement nesting is too deep".into(),
        P::TokenizerError(m) | P::ParserError(m) => format!("syntax error: {m}"),
    }
}

fn statement_name(statement: &Ast) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

fn transaction_modes(modes: &[ast::TransactionMode]) -> PgResult<(Option<String>, Option<bool>)> {
    let mut isolation = None;
    let mut read_only = None;
    for mode in modes {
        match mode {
            ast::TransactionMode::IsolationLevel(level) => {
                let text = match level {
                    ast::TransactionIsolationLevel::ReadUncommitted => "read uncommitted",
                    ast::TransactionIsolationLevel::ReadCommitted => "read committed",
                    ast::TransactionIsolationLevel::RepeatableRead => "repeatable read",
                    ast::TransactionIsolationLevel::Serializable => "serializable",
                    other => {
                        return Err(PgError::syntax(format!(
                            "isolation level {other} is not a PostgreSQL level"
                        )))
                    }
                };
                isolation = Some(vars::isolation_level(text)?);
            }
            ast::TransactionMode::AccessMode(mode) => {
                read_only = Some(matches!(mode, ast::TransactionAccessMode::ReadOnly));
            }
        }
    }
    Ok((isolation, read_only))
}

/// The text of a SET value: identifiers and literals as written, lists joined.
fn set_value_text(values: &[ast::Expr]) -> PgResult<String> {
    let mut parts = Vec::with_capacity(values.len());
    for value in values {
        let text = match value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                    s.clone()
                }
                ast::Value::Number(n, _) => n.clone(),
                ast::Value::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
                other => other.to_string(),
            },
            ast::Expr::Identifier(ident) => ident.value.clone(),
            ast::Expr::UnaryOp {
                op: ast::UnaryOperator::Minus,
                expr,
            } => format!("-{expr}"),
            other => other.to_string(),
        };
        parts.push(text);
    }
    Ok(parts.join(", "))
}

fn is_default(values: &[ast::Expr]) -> bool {
    matches!(values, [ast::Expr::Identifier(i)] if i.value.eq_ignore_ascii_case("default") && i.quote_style.is_none())
}

/// Binds one parsed statement.
fn bind_statement(statement: &Ast, declared: &[Option<Type>]) -> PgResult<Statement> {
    let mut params = declared.to_vec();
    let (kind, columns) = match statement {
        Ast::Query(query) => bind_query(query, &mut params)?,
        Ast::ShowVariable { variable } => {
            // sqlparser splits `SHOW a.b` into identifiers, like multi-word names.
            let words: Vec<String> = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            let spaced = words.join(" ");
            let lower = match spaced.as_str() {
                "transaction isolation level" | "all" => spaced,
                "time zone" => "timezone".to_string(),
                "session authorization" => "session_authorization".to_string(),
                _ => words.join("."),
            };
            match lower.as_str() {
                "all" => (
                    Kind::ShowAll,
                    Some(vec![
                        Column::new("name", Type::Text),
                        Column::new("setting", Type::Text),
                        Column::new("description", Type::Text),
                    ]),
                ),
                "teller.connections" => (
                    Kind::Show(lower),
                    Some(vec![
                        Column::new("shard", Type::Int4),
                        Column::new("connections", Type::Int8),
                    ]),
                ),
                "transaction isolation level" => (
                    Kind::Show(lower),
                    Some(vec![Column::new("transaction_isolation", Type::Text)]),
                ),
                _ => (
                    Kind::Show(lower.clone()),
                    Some(vec![Column::new(Vars::canonical_name(&lower), Type::Text)]),
                ),
            }
        }
        Ast::Set(set) => (bind_set(set)?, None),
        Ast::Reset(reset) => match &reset.reset {
            ast::Reset::ALL => (Kind::ResetAll, None),
            ast::Reset::ConfigurationParameter(name) => (
                Kind::Set {
                    name: name.to_string(),
                    value: None,
                    local: false,
                },
                None,
            ),
            other => {
                return Err(PgError::unsupported(format!(
                    "RESET {other:?} is not supported"
                )))
            }
        },
        Ast::StartTransaction { modes, .. } => {
            let (isolation, read_only) = transaction_modes(modes)?;
            (
                Kind::Begin {
                    isolation,
                    read_only,
                },
                None,
            )
        }
        Ast::Commit { chain: false, .. } => (Kind::Commit, None),
        Ast::Rollback {
            chain: false,
            savepoint: None,
        } => (Kind::Rollback, None),
        Ast::Discard { object_type } if object_type.to_string().eq_ignore_ascii_case("ALL") => {
            (Kind::DiscardAll, None)
        }
        other => {
            return Err(PgError::unsupported(format!(
                "{} is not supported yet",
                statement_name(other)
            )))
        }
    };
    let params = params
        .into_iter()
        .map(|t| t.unwrap_or(Type::Text))
        .collect();
    Ok(Statement {
        kind,
        params,
        columns,
    })
}

fn bind_set(set: &ast::Set) -> PgResult<Kind> {
    Ok(match set {
        ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => {
            let name = variable.to_string();
            let local = matches!(scope, Some(ast::ContextModifier::Local));
            let value = if is_default(values) {
                None
            } else {
                Some(set_value_text(values)?)
            };
            Kind::Set { name, value, local }
        }
        ast::Set::SetTimeZone { local, value } => Kind::Set {
            name: "TimeZone".into(),
            value: Some(set_value_text(std::slice::from_ref(value))?),
            local: *local,
        },
        ast::Set::SetNames { charset_name, .. } => Kind::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
            local: false,
        },
        ast::Set::SetTransaction {
            modes,
            snapshot: None,
            session,
        } => {
            let (isolation, read_only) = transaction_modes(modes)?;
            Kind::SetTransaction {
                isolation,
                read_only,
                session: *session,
            }
        }
        other => {
            return Err(PgError::unsupported(format!(
                "{other} is not supported yet"
            )))
        }
    })
}

fn bind_query(
    query: &ast::Query,
    params: &mut Vec<Option<Type>>,
) -> PgResult<(Kind, Option<Vec<Column>>)> {
    if query.with.is_some()
        || query.order_by.is_some()
        || query.fetch.is_some()
        || !query.locks.is_empty()
    {
        return Err(PgError::unsupported(
            "WITH, ORDER BY, FETCH and locking clauses need tables, which are not supported yet",
        ));
    }
    let (limit, offset) = match &query.limit_clause {
        None => (None, None),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() => (limit.clone(), offset.as_ref().map(|o| o.value.clone())),
        Some(_) => return Err(PgError::syntax("LIMIT #,# syntax is not supported")),
    };
    let mut cx = BindContext { params };
    let bind_count = |e: Option<ast::Expr>, cx: &mut BindContext<'_>| -> PgResult<Option<Expr>> {
        e.map(|e| {
            let bound = expr::bind(&e, cx)?;
            let bound = match bound {
                Expr::Param(i) if cx.params[i].is_none() => {
                    cx.params[i] = Some(Type::Int8);
                    Expr::Param(i)
                }
                b => b,
            };
            // Counts are evaluated as bigint; a non-numeric value fails there.
            Ok(Expr::Cast(Box::new(bound), Type::Int8))
        })
        .transpose()
    };
    let limit = bind_count(limit, &mut cx)?;
    let offset = bind_count(offset, &mut cx)?;
    match query.body.as_ref() {
        ast::SetExpr::Select(select) => {
            if !select.from.is_empty() {
                return Err(PgError::unsupported(
                    "tables are not supported yet: SELECT ... FROM needs the SQL layer",
                ));
            }
            if select.distinct.is_some()
                || select.having.is_some()
                || !select.named_window.is_empty()
            {
                return Err(PgError::unsupported(
                    "DISTINCT, HAVING and WINDOW are not supported yet",
                ));
            }
            if !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
            {
                return Err(PgError::unsupported("GROUP BY is not supported yet"));
            }
            let mut exprs = Vec::with_capacity(select.projection.len());
            let mut columns = Vec::with_capacity(select.projection.len());
            for item in &select.projection {
                let (e, alias) = match item {
                    ast::SelectItem::UnnamedExpr(e) => (e, None),
                    ast::SelectItem::ExprWithAlias { expr, alias } => {
                        (expr, Some(alias.value.clone()))
                    }
                    _ => {
                        return Err(PgError::syntax(
                            "SELECT * with no tables specified is not valid",
                        ))
                    }
                };
                let bound = expr::bind(e, &mut cx)?;
                let name = alias.unwrap_or_else(|| column_name(e));
                exprs.push(bound);
                columns.push(name);
            }
            let filter = select
                .selection
                .as_ref()
                .map(|w| -> PgResult<Expr> {
                    let bound = expr::bind(w, &mut cx)?;
                    match bound.ty(cx.params) {
                        Type::Bool => Ok(bound),
                        Type::Unknown => Ok(Expr::Cast(Box::new(bound), Type::Bool)),
                        other => Err(PgError::new(
                            SqlState::DATATYPE_MISMATCH,
                            format!(
                                "argument of WHERE must be type boolean, not type {}",
                                other.name()
                            ),
                        )),
                    }
                })
                .transpose()?;
            let exprs = finalize_unknowns(exprs, &mut cx);
            let columns = columns
                .into_iter()
                .zip(&exprs)
                .map(|(name, e)| Column::new(name, e.ty(cx.params)))
                .collect();
            Ok((
                Kind::Rows {
                    rows: vec![exprs],
                    filter,
                    limit,
                    offset,
                },
                Some(columns),
            ))
        }
        ast::SetExpr::Values(values) => {
            let mut rows = Vec::with_capacity(values.rows.len());
            for row in &values.rows {
                let mut bound = Vec::with_capacity(row.len());
                for e in &row.content {
                    bound.push(expr::bind(e, &mut cx)?);
                }
                if rows
                    .first()
                    .is_some_and(|r: &Vec<Expr>| r.len() != bound.len())
                {
                    return Err(PgError::syntax("VALUES lists must all be the same length"));
                }
                rows.push(finalize_unknowns(bound, &mut cx));
            }
            let width = rows.first().map_or(0, Vec::len);
            let columns = (0..width)
                .map(|i| Column::new(format!("column{}", i + 1), rows[0][i].ty(cx.params)))
                .collect();
            Ok((
                Kind::Rows {
                    rows,
                    filter: None,
                    limit,
                    offset,
                },
                Some(columns),
            ))
        }
        _ => Err(PgError::unsupported(
            "UNION, INTERSECT and EXCEPT are not supported yet",
        )),
    }
}

/// Output expressions of unknown type become text, as in PostgreSQL.
fn finalize_unknowns(exprs: Vec<Expr>, cx: &mut BindContext<'_>) -> Vec<Expr> {
    exprs
        .into_iter()
        .map(|e| match e.ty(cx.params) {
            Type::Unknown => match e {
                Expr::Param(i) => {
                    cx.params[i] = Some(Type::Text);
                    Expr::Param(i)
                }
                Expr::Const(v, _) => Expr::Const(v, Type::Text),
                other => Expr::Cast(Box::new(other), Type::Text),
            },
            _ => e,
        })
        .collect()
}

/// PostgreSQL's output column name for an unaliased expression.
fn column_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Function(f) => f
            .name
            .0
            .last()
            .map_or("?column?".into(), |p| p.to_string().to_ascii_lowercase()),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            ast::Expr::Value(_) => {
                expr::resolve_type(data_type).map_or("?column?".into(), |t| t.name().into())
            }
            other => column_name(other),
        },
        ast::Expr::TypedString(ts) => {
            expr::resolve_type(&ts.data_type).map_or("?column?".into(), |t| t.name().into())
        }
        ast::Expr::Nested(inner) => column_name(inner),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Identifier(i) => i.value.to_ascii_lowercase(),
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => "bool".into(),
        _ => "?column?".into(),
    }
}

fn is_transaction_end(kind: &Kind) -> bool {
    matches!(kind, Kind::Commit | Kind::Rollback)
}

impl<H: Host> Session for SqlSession<H> {
    type Statement = Statement;
    type Portal = Portal;

    fn startup_parameters(&self) -> Vec<(String, String)> {
        self.vars.reported()
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
        parse_sql(sql)?
            .iter()
            .map(|s| bind_statement(s, &declared))
            .collect()
    }

    fn parameter_types(&self, statement: &Statement) -> Vec<Type> {
        statement.params.clone()
    }

    fn result_columns(&self, statement: &Statement) -> Option<Vec<Column>> {
        statement.columns.clone()
    }

    fn bind(&mut self, statement: &Statement, params: Vec<Value>) -> PgResult<Portal> {
        if params.len() != statement.params.len() {
            return Err(PgError::protocol(format!(
                "statement requires {} parameters, {} given",
                statement.params.len(),
                params.len()
            )));
        }
        Ok(Portal {
            statement: statement.clone(),
            params,
            rows: None,
            sent: 0,
        })
    }

    async fn execute(
        &mut self,
        portal: &mut Portal,
        max_rows: usize,
        out: &mut Vec<Vec<Value>>,
    ) -> PgResult<Completion> {
        if self.tx == TxState::Failed && !is_transaction_end(&portal.statement.kind) {
            return Err(PgError::new(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if portal.statement.columns.is_none() {
            let tag = self.run_control(&portal.statement.kind)?;
            return Ok(Completion::Done(tag));
        }
        if portal.rows.is_none() {
            let rows = self.compute_rows(&portal.statement, &portal.params).await?;
            portal.rows = Some(rows.into_iter());
        }
        let rows = portal.rows.as_mut().expect("computed above");
        for row in rows.by_ref().take(max_rows) {
            out.push(row);
        }
        portal.sent += out.len();
        if rows.len() > 0 {
            return Ok(Completion::Suspended);
        }
        let tag = match portal.statement.kind {
            Kind::Show(_) | Kind::ShowAll => "SHOW".to_string(),
            _ => format!("SELECT {}", portal.sent),
        };
        Ok(Completion::Done(tag))
    }

    fn statement_failed(&mut self) {
        if self.tx == TxState::InBlock {
            self.tx = TxState::Failed;
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
