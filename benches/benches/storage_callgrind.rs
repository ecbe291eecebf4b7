//! Storage hot paths under callgrind (gungraun): the inputs of
//! `storage_micro.rs`, measured in instructions so that regressions show as
//! counts rather than noisy times.
//!
//! Run: `cargo bench -p teller-benches --bench storage_callgrind` (needs
//! valgrind and `gungraun-runner` of the same version as the gungraun crate:
//! `cargo install gungraun-runner --version 0.20.0`).

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use teller_storage::bench::fixtures;
use teller_storage::memtable::{Memtable, Value, MEMTABLE_BYTES_DEFAULT};
use teller_storage::sst::bloom::Bloom;
use teller_storage::Timestamp;

fn keys_1k() -> Vec<[u8; 16]> {
    fixtures::random_keys(1000, 1)
}

fn filled() -> (Memtable, Vec<[u8; 16]>) {
    let keys = fixtures::random_keys(10_000, 2);
    (fixtures::memtable_with(&keys), keys)
}

fn block_bytes() -> Vec<u8> {
    fixtures::encode_block(&fixtures::block_versions())
}

fn bloom() -> (Bloom, Vec<u64>) {
    fixtures::bloom_with(10_000)
}

#[library_benchmark]
#[bench::random_1k(setup = keys_1k)]
fn memtable_insert(keys: Vec<[u8; 16]>) -> Memtable {
    let mut m = Memtable::new(MEMTABLE_BYTES_DEFAULT, 1);
    for k in &keys {
        m.insert(k, Timestamp::new(1, 0), Value::Put(&[7; 100]))
            .expect("fits");
    }
    black_box(m)
}

#[library_benchmark]
#[bench::in_10k(setup = filled)]
fn memtable_get(input: (Memtable, Vec<[u8; 16]>)) -> usize {
    let (m, keys) = input;
    let found = keys
        .iter()
        .take(1000)
        .filter(|k| m.get(&k[..], Timestamp::MAX).is_some())
        .count();
    black_box(found)
}

#[library_benchmark]
fn block_encode() -> Vec<u8> {
    black_box(fixtures::encode_block(&fixtures::block_versions()))
}

#[library_benchmark]
#[bench::page(setup = block_bytes)]
fn block_decode(bytes: Vec<u8>) -> usize {
    black_box(fixtures::decode_block(bytes))
}

#[library_benchmark]
#[bench::absent_1k(setup = bloom)]
fn bloom_probe(input: (Bloom, Vec<u64>)) -> usize {
    let (bloom, probes) = input;
    black_box(
        probes
            .iter()
            .take(1000)
            .filter(|&&h| bloom.may_contain(h))
            .count(),
    )
}

library_benchmark_group!(
    name = storage;
    benchmarks = memtable_insert, memtable_get, block_encode, block_decode, bloom_probe
);

main!(library_benchmark_groups = storage);
