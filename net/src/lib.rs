//! The PostgreSQL v3 wire protocol: frames, the connection state machine, value
//! codecs and authentication. Pure: it never opens a socket, reads a clock or
//! spawns a task; the node drives it over its sockets (see `conn`).

pub mod conn;
pub mod copy;
pub mod error;
pub mod scram;
pub mod session;
pub mod types;

pub use error::{PgError, PgResult, Severity, SqlState};
