//! The seam between the wire protocol and whatever executes statements.
//!
//! The connection driver ([`crate::conn`]) owns framing, authentication,
//! statement and portal bookkeeping and value encoding. It hands SQL text to a
//! [`Session`] and gets back typed statements, portals and rows of [`Value`]s. The
//! SQL layer implements `Session`; tests may implement it with anything.
//!
//! A session is owned by one shard and never crosses threads, so its futures are
//! not `Send` and `async fn` in the trait is used through generics only.

use std::collections::BTreeMap;

pub use crate::copy::{CopyDirection, CopyFormat, CopySpec};
use crate::error::{PgError, PgResult, SqlState};
use crate::types::{Type, Value};

/// What a client asked for in its startup message.
#[derive(Clone, Debug, Default)]
pub struct StartupInfo {
    pub user: String,
    pub database: String,
    /// Every parameter of the startup packet (`application_name`, `options`,
    /// `client_encoding`, ...), user and database included.
    pub params: BTreeMap<String, String>,
    /// The BackendKeyData process id this connection was given.
    pub process_id: i32,
}

/// One column of a result set.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: Type,
    /// `atttypmod`: e.g. `VARCHAR(n)` → n + 4; -1 when there is none.
    pub type_modifier: i32,
    /// The table and column the value comes from, or 0 when it is computed.
    pub table_oid: u32,
    pub column_id: i16,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: Type) -> Column {
        Column {
            name: name.into(),
            ty,
            type_modifier: -1,
            table_oid: 0,
            column_id: 0,
        }
    }
}

/// The transaction state reported in every ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InBlock,
    /// `E`: in a failed transaction block; statements are refused until it ends.
    Failed,
}

impl TxStatus {
    pub fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InBlock => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// How far a portal ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The row limit was reached and more rows may follow (PortalSuspended).
    Suspended,
    /// The statement finished; the command tag, e.g. `SELECT 3` or `BEGIN`.
    Done(String),
}

/// Something a session tells the client outside the result of a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// A NoticeResponse (warnings and notices).
    Notice(PgError),
    /// A ParameterStatus: a reported setting (e.g. `application_name`) changed.
    ParameterStatus(String, String),
}

/// Executes statements for one client connection.
// Sessions are shard-local by design (thread-per-core): their futures are never
// sent across threads, so `async fn` without a `Send` bound is what we want.
#[allow(async_fn_in_trait)]
pub trait Session {
    /// A parsed, type-checked statement that can be bound many times.
    type Statement;
    /// A statement bound to parameter values, ready to run (possibly in steps).
    type Portal;

    /// Settings reported to the client right after authentication
    /// (`server_version`, `client_encoding`, `DateStyle`, ...).
    fn startup_parameters(&self) -> Vec<(String, String)>;

    /// Called before a simple Query or a Parse is handled: the session may
    /// bring shard-local caches (the catalog) up to date here, which `parse`,
    /// being synchronous, cannot. An error fails the Query or Parse.
    async fn refresh(&mut self) -> PgResult<()> {
        Ok(())
    }

    /// Parses `sql` into zero or more statements (zero for an empty query).
    /// `param_types` are the OIDs the client declared; 0 means "infer".
    fn parse(&mut self, sql: &str, param_types: &[u32]) -> PgResult<Vec<Self::Statement>>;

    /// The types of the statement's parameters, `$1` first.
    fn parameter_types(&self, statement: &Self::Statement) -> Vec<Type>;

    /// The columns the statement returns, or `None` if it returns no rows.
    fn result_columns(&self, statement: &Self::Statement) -> Option<Vec<Column>>;

    /// Binds parameter values (already decoded to the declared types).
    fn bind(&mut self, statement: &Self::Statement, params: Vec<Value>) -> PgResult<Self::Portal>;

    /// Runs `portal` until it completes or `max_rows` (always ≥ 1) rows have
    /// been appended to `rows`; returns `Suspended` only in the second case.
    /// The driver streams a long result by calling again with the next batch.
    async fn execute(
        &mut self,
        portal: &mut Self::Portal,
        max_rows: usize,
        rows: &mut Vec<Vec<Value>>,
    ) -> PgResult<Completion>;

    /// Called when a statement failed or was cancelled, so that a transaction
    /// block becomes failed.
    fn statement_failed(&mut self);

    /// How long a statement may run before it is cancelled with 57014
    /// (`statement_timeout`; `None`: no limit). Read as each Execute (or
    /// simple Query statement) starts.
    fn statement_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// The transaction status for ReadyForQuery.
    fn transaction_status(&self) -> TxStatus;

    /// Notices and parameter changes produced since the last call.
    fn take_events(&mut self) -> Vec<SessionEvent>;

    // COPY. A session that supports it recognises `COPY ... FROM STDIN` and
    // `COPY ... TO STDOUT` statements in `copy_spec`; the driver then runs the
    // sub-protocol and hands over or pulls rows. The defaults support nothing.
    //
    // - FROM STDIN: after `bind`, the driver calls `copy_in` with batches of
    //   decoded rows (bounded in rows and bytes), then `copy_in_done` for the
    //   command tag (`COPY n`), or `copy_in_failed` when the client sent
    //   CopyFail or the data was malformed (the session discards the rows).
    // - TO STDOUT: the driver runs the portal with `execute` like a query and
    //   encodes the rows it returns; the session's `result_columns` for the
    //   statement must be `None` (no RowDescription is sent).

    /// How to run `statement` if it is a COPY to or from the client.
    fn copy_spec(&self, _statement: &Self::Statement) -> Option<CopySpec> {
        None
    }

    /// A batch of rows received by COPY FROM STDIN.
    async fn copy_in(
        &mut self,
        _portal: &mut Self::Portal,
        _rows: Vec<Vec<Value>>,
    ) -> PgResult<()> {
        Err(copy_unsupported())
    }

    /// COPY FROM STDIN received all its data; returns the command tag.
    async fn copy_in_done(&mut self, _portal: &mut Self::Portal) -> PgResult<String> {
        Err(copy_unsupported())
    }

    /// COPY FROM STDIN was abandoned; rows received so far must not persist.
    fn copy_in_failed(&mut self, _portal: &mut Self::Portal) {}
}

fn copy_unsupported() -> PgError {
    PgError::new(
        SqlState::FEATURE_NOT_SUPPORTED,
        "COPY is not supported by this session",
    )
}
