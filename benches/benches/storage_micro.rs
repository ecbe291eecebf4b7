//! Storage hot paths under criterion: memtable insert and get, data block
//! encode and decode, bloom filter probe. The same inputs run under callgrind in
//! `storage_callgrind.rs` (instruction counts, for regressions).
//!
//! Run: `cargo bench -p teller-benches --bench storage_micro`. Figures go to
//! docs/storage.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use teller_storage::bench::fixtures;
use teller_storage::memtable::{Memtable, Value, MEMTABLE_BYTES_DEFAULT};
use teller_storage::Timestamp;

/// Keys per memtable benchmark iteration.
const MEMTABLE_KEYS: u64 = 10_000;
/// Keys in the memtable the get benchmark reads from.
const MEMTABLE_GET_KEYS: u64 = 100_000;
/// Keys the bloom filter holds.
const BLOOM_KEYS: u64 = 100_000;

fn memtable(c: &mut Criterion) {
    let keys = fixtures::random_keys(MEMTABLE_KEYS, 1);
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(MEMTABLE_KEYS));
    g.bench_function("insert_10k_random", |b| {
        b.iter_batched(
            || Memtable::new(MEMTABLE_BYTES_DEFAULT, 1),
            |mut m| {
                for k in &keys {
                    m.insert(k, Timestamp::new(1, 0), Value::Put(&[7; 100]))
                        .expect("fits");
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    let all = fixtures::random_keys(MEMTABLE_GET_KEYS, 2);
    let m = fixtures::memtable_with(&all);
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("get_in_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % all.len();
            black_box(m.get(&all[i], Timestamp::MAX).is_some())
        })
    });
    g.finish();
}

fn block(c: &mut Criterion) {
    let versions = fixtures::block_versions();
    let bytes = fixtures::encode_block(&versions);
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode_4k", |b| {
        b.iter(|| black_box(fixtures::encode_block(&versions)))
    });
    g.bench_function("decode_and_walk_4k", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| black_box(fixtures::decode_block(bytes)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bloom(c: &mut Criterion) {
    let (bloom, probes) = fixtures::bloom_with(BLOOM_KEYS);
    let mut g = c.benchmark_group("bloom");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("probe_absent", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(bloom.may_contain(probes[i]))
        })
    });
    g.finish();
}

criterion_group!(benches, memtable, block, bloom);
criterion_main!(benches);
