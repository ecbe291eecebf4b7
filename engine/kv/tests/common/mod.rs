//! Shared helpers of the KV integration tests.
#![allow(dead_code)]

pub mod script;
