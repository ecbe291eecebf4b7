//! Micro-benchmarks of TellerDB's hot paths (criterion for wall time). The
//! benchmark code lives in `benches/`; this crate has no library code of its own.
