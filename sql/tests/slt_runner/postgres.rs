//! The runner against a real PostgreSQL server, to tell which records of the
//! SQLite corpus PostgreSQL itself answers differently from SQLite: those are
//! the dialect divergences (docs/sql-conformance.md), as opposed to our bugs.
//!
//! Values come back in binary format and are decoded with TellerDB's own
//! codecs, so they are formatted by exactly the code that formats our rows.

use tokio::runtime::Runtime;
use tokio_postgres::types::{FromSql, Type as PgType};
use tokio_postgres::{Client, NoTls};

use teller_net::session::Column;
use teller_net::types::{decode_binary, Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::driver::{Database, QueryResult};

/// One connection, with a private runtime driving it.
pub struct PostgresDb {
    runtime: Runtime,
    client: Client,
}

impl PostgresDb {
    /// Connects to `url` and empties the `public` schema.
    pub fn connect(url: &str) -> Result<PostgresDb, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
            tokio::spawn(connection);
            client
                .batch_execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
                .await?;
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = client.map_err(|e| format!("{url}: {e}"))?;
        Ok(PostgresDb { runtime, client })
    }
}

/// A value's raw binary bytes, whatever its type.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(
        _: &PgType,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &PgType) -> bool {
        true
    }
}

fn pg_error(e: tokio_postgres::Error) -> PgError {
    match e.as_db_error() {
        // The SQLSTATE goes into the message: `PgError` holds static codes.
        Some(db) => PgError::new(
            SqlState::INTERNAL_ERROR,
            format!("{}: {}", db.code().code(), db.message()),
        ),
        None => PgError::new(SqlState::CONNECTION_EXCEPTION, e.to_string()),
    }
}

impl Database for PostgresDb {
    fn engines(&self) -> &'static [&'static str] {
        super::record::POSTGRES_ENGINES
    }

    fn run(&mut self, sql: &str) -> PgResult<Option<QueryResult>> {
        let client = &self.client;
        self.runtime.block_on(async {
            let statement = client.prepare(sql).await.map_err(pg_error)?;
            let rows = client.query(&statement, &[]).await.map_err(pg_error)?;
            if statement.columns().is_empty() {
                return Ok(None);
            }
            let columns: Vec<Column> = statement
                .columns()
                .iter()
                .map(|c| {
                    Column::new(
                        c.name(),
                        Type::from_oid(c.type_().oid()).unwrap_or(Type::Text),
                    )
                })
                .collect();
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut values = Vec::with_capacity(columns.len());
                for (i, column) in columns.iter().enumerate() {
                    let raw: Option<Raw> = row.try_get(i).map_err(pg_error)?;
                    values.push(match raw {
                        None => Value::Null,
                        Some(Raw(bytes)) if column.ty == Type::Text => {
                            Value::Text(String::from_utf8_lossy(&bytes).into_owned())
                        }
                        Some(Raw(bytes)) => decode_binary(column.ty, &bytes)?,
                    });
                }
                out.push(values);
            }
            Ok(Some(QueryResult { columns, rows: out }))
        })
    }
}
