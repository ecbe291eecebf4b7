//! teller-sql
