//! The PostgreSQL v3 wire protocol: frames, the connection state machine, value
//! codecs and authentication. Pure: it never opens a socket or reads a clock.

pub mod error;
pub mod scram;
pub mod types;

pub use error::{PgError, PgResult, Severity, SqlState};
