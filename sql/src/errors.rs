//! SQLSTATEs the SQL layer raises beyond those `teller_net` defines, and
//! constructors for the errors PostgreSQL words in a fixed way.

use teller_net::{PgError, SqlState};

pub const NOT_NULL_VIOLATION: SqlState = SqlState("23502");
pub const FOREIGN_KEY_VIOLATION: SqlState = SqlState("23503");
pub const UNIQUE_VIOLATION: SqlState = SqlState("23505");
pub const CHECK_VIOLATION: SqlState = SqlState("23514");
pub const CARDINALITY_VIOLATION: SqlState = SqlState("21000");
pub const GROUPING_ERROR: SqlState = SqlState("42803");
pub const DUPLICATE_TABLE: SqlState = SqlState("42P07");
pub const DUPLICATE_COLUMN: SqlState = SqlState("42701");
pub const DUPLICATE_OBJECT: SqlState = SqlState("42710");
pub const DUPLICATE_DATABASE: SqlState = SqlState("42P04");
pub const DUPLICATE_SCHEMA: SqlState = SqlState("42P06");
pub const DUPLICATE_ALIAS: SqlState = SqlState("42712");
pub const AMBIGUOUS_COLUMN: SqlState = SqlState("42702");
pub const INVALID_TABLE_DEFINITION: SqlState = SqlState("42P16");
pub const INVALID_FOREIGN_KEY: SqlState = SqlState("42830");
pub const INVALID_COLUMN_REFERENCE: SqlState = SqlState("42P10");
pub const DEPENDENT_OBJECTS_STILL_EXIST: SqlState = SqlState("2BP01");
pub const WRONG_OBJECT_TYPE: SqlState = SqlState("42809");
pub const INVALID_SCHEMA_NAME: SqlState = SqlState("3F000");
pub const OBJECT_IN_USE: SqlState = SqlState("55006");
pub const GENERATED_ALWAYS: SqlState = SqlState("428C9");
pub const SEQUENCE_GENERATOR_LIMIT_EXCEEDED: SqlState = SqlState("2200H");
pub const INVALID_ROW_COUNT_IN_LIMIT: SqlState = SqlState("2201W");
pub const INVALID_ROW_COUNT_IN_OFFSET: SqlState = SqlState("2201X");
pub const WINDOWING_ERROR: SqlState = SqlState("42P20");
pub const INVALID_RECURSION: SqlState = SqlState("42P19");
pub const INVALID_PREPARED_STATEMENT_DEFINITION: SqlState = SqlState("42P14");
pub const INVALID_TRANSACTION_STATE: SqlState = SqlState("25000");
pub const LOCK_NOT_AVAILABLE: SqlState = SqlState("55P03");
pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState("42501");

pub fn undefined_table(name: &str) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_TABLE,
        format!("relation \"{name}\" does not exist"),
    )
}

pub fn undefined_column(name: &str) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_COLUMN,
        format!("column \"{name}\" does not exist"),
    )
}

pub fn undefined_column_of(column: &str, table: &str) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_COLUMN,
        format!("column \"{column}\" of relation \"{table}\" does not exist"),
    )
}

pub fn duplicate_relation(name: &str) -> PgError {
    PgError::new(
        DUPLICATE_TABLE,
        format!("relation \"{name}\" already exists"),
    )
}

pub fn out_of_memory(limit: usize) -> PgError {
    PgError::new(
        SqlState::OUT_OF_MEMORY,
        format!("query needs more than {limit} bytes of working memory"),
    )
    .with_hint("Add a more selective WHERE clause or LIMIT, or raise the memory limit.")
}
