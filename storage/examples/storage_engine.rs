//! The db_bench-style engine benchmark of `benches/benches/storage_engine.rs`
//! as an example of this crate, so that it builds without the rest of the
//! workspace (quick iterations on the engine):
//!
//! ```text
//! cargo run --release -p teller-storage --example storage_engine -- --bench --keys 1000000
//! ```

fn main() {
    teller_storage::bench::driver::main(std::env::args().skip(1).collect());
}
