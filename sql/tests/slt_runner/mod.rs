//! A small sqllogictest runner (our own; see `record` for the format).
//!
//! `record` parses files, `output` formats and compares results like the
//! reference runner, `driver` runs SQL through the `Session` trait, and
//! `corpus` runs whole files and keeps the baseline and the list of expected
//! failures. `postgres` runs the same files against a real PostgreSQL server.

pub mod corpus;
pub mod driver;
pub mod output;
pub mod postgres;
pub mod record;
