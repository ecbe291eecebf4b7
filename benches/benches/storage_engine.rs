//! The storage engine on the real disk (glommio, O_DIRECT), db_bench style:
//! fillseq, fillrandom, readrandom, seekrandom, overwrite, with a latency
//! breakdown per write — then WAL appends of large records beside the raw
//! O_DIRECT sequential write bandwidth of the same disk. The driver lives in
//! `teller_storage::bench::driver` (options there).
//!
//! Run (figures for docs/storage.md and perf/RESULTS.md;
//! `scripts/compare-rocksdb.sh` runs this and RocksDB's `db_bench` side by
//! side):
//!
//! ```text
//! cargo bench -p teller-benches --bench storage_engine -- \
//!     --keys 5000000 --sync 0 --batch 1 --dir /path/on/the/disk
//! ```

fn main() {
    teller_storage::bench::driver::main(std::env::args().skip(1).collect());
}
