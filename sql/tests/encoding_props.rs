//! A larger randomized sweep of the encodings, through the public API only:
//! sorting by encoded bytes sorts by SQL order, secondary-index layouts scan
//! correctly through the in-memory KV, and rows survive schema evolution.

#[path = "../src/encoding/testing.rs"]
mod testing;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bytes::Bytes;
use futures_lite::future::block_on;
use teller_net::types::{Type, Value};
use teller_sql::encoding::key::{
    decode_key, encode_key, index_prefix, take_index_prefix, Direction, KeyColumn, Nulls,
};
use teller_sql::encoding::row::{RowCodec, RowColumn};
use teller_sql::kv::memory::MemoryKv;
use teller_sql::kv::{Batch, Kv, KvTxn, ScanRequest, Span, TxnOptions};
use testing::{column_compare, key_types, nullable, same, Rng};

fn random_column(rng: &mut Rng) -> KeyColumn {
    let ty = rng.pick(&key_types());
    let direction = if rng.chance(2) {
        Direction::Asc
    } else {
        Direction::Desc
    };
    let nulls = rng.pick(&[None, Some(Nulls::First), Some(Nulls::Last)]);
    KeyColumn::new(ty, direction, nulls)
}

fn tuple_compare(a: &[Value], b: &[Value], cols: &[KeyColumn]) -> Ordering {
    a.iter()
        .zip(b)
        .zip(cols)
        .map(|((x, y), c)| {
            column_compare(
                x,
                y,
                c.ty,
                c.direction == Direction::Desc,
                c.nulls == Nulls::First,
            )
        })
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// Draws from a small pool per column so that ties are common.
fn random_tuples(rng: &mut Rng, cols: &[KeyColumn], n: usize) -> Vec<Vec<Value>> {
    let pools: Vec<Vec<Value>> = cols
        .iter()
        .map(|c| {
            (0..1 + rng.below(12))
                .map(|_| nullable(rng, c.ty, 6))
                .collect()
        })
        .collect();
    (0..n)
        .map(|_| {
            pools
                .iter()
                .map(|pool| pool[rng.below(pool.len() as u64) as usize].clone())
                .collect()
        })
        .collect()
}

fn encode(table: u64, index: u64, tuple: &[Value], cols: &[KeyColumn]) -> Vec<u8> {
    let mut key = index_prefix(table, index);
    encode_key(&mut key, tuple, cols).expect("encode");
    key
}

#[test]
fn sorting_bytes_sorts_tuples() {
    let mut rng = Rng::new(0xC0FFEE);
    for _ in 0..150 {
        let cols: Vec<KeyColumn> = (0..1 + rng.below(3))
            .map(|_| random_column(&mut rng))
            .collect();
        let tuples = random_tuples(&mut rng, &cols, 300);
        let mut encoded: Vec<(Vec<u8>, &Vec<Value>)> =
            tuples.iter().map(|t| (encode(7, 2, t, &cols), t)).collect();
        encoded.sort_by(|a, b| a.0.cmp(&b.0));
        for w in encoded.windows(2) {
            let sql = tuple_compare(w[0].1, w[1].1, &cols);
            let bytes = w[0].0.cmp(&w[1].0);
            assert_eq!(sql, bytes, "{:?} vs {:?} as {cols:?}", w[0].1, w[1].1);
        }
        // All pairs of a sample, for transitivity across non-neighbours.
        for a in tuples.iter().take(40) {
            for b in tuples.iter().take(40) {
                assert_eq!(
                    encode(7, 2, a, &cols).cmp(&encode(7, 2, b, &cols)),
                    tuple_compare(a, b, &cols)
                );
            }
        }
    }
}

#[test]
fn decode_round_trips_through_the_prefix() {
    let mut rng = Rng::new(77);
    for _ in 0..20_000 {
        let cols: Vec<KeyColumn> = (0..1 + rng.below(4))
            .map(|_| random_column(&mut rng))
            .collect();
        let tuple: Vec<Value> = cols.iter().map(|c| nullable(&mut rng, c.ty, 5)).collect();
        let (table, index) = (rng.next_u64() >> rng.below(64), rng.below(300));
        let key = encode(table, index, &tuple, &cols);
        let mut input = &key[..];
        assert_eq!(
            take_index_prefix(&mut input).expect("prefix"),
            (table, index)
        );
        let back = decode_key(&mut input, &cols).expect("decode");
        assert!(input.is_empty());
        assert_eq!(tuple_compare(&back, &tuple, &cols), Ordering::Equal);
        assert_eq!(encode(table, index, &back, &cols), key);
    }
}

/// A secondary index `/t/2/<a>/<pk>` in the in-memory KV: a prefix scan on
/// `a = v` returns exactly the rows with that value, in index order, both
/// directions, page by page.
#[test]
fn secondary_index_prefix_scans() {
    block_on(async {
        let mut rng = Rng::new(5150);
        for _ in 0..20 {
            let kv = MemoryKv::new();
            kv.set_scan_rows_max(Some(1 + rng.below(7)));
            let index_col = random_column(&mut rng);
            let pk_col = KeyColumn::asc(Type::Int8);
            let values: Vec<Value> = (0..6)
                .map(|_| nullable(&mut rng, index_col.ty, 5))
                .collect();
            let mut txn = kv.begin(TxnOptions::default()).await.expect("begin");
            let mut batch = Batch::new();
            let mut rows = Vec::new();
            for pk in 0..200i64 {
                let v = values[rng.below(values.len() as u64) as usize].clone();
                let key = encode(52, 2, &[v.clone(), Value::Int8(pk)], &[index_col, pk_col]);
                batch.put(key, Bytes::new());
                rows.push((v, pk));
            }
            // A neighbouring index and table must not leak into the scans.
            batch.put(index_prefix(52, 3), Bytes::new());
            batch.put(index_prefix(53, 1), Bytes::new());
            txn.batch(batch).await.expect("load");

            for probe in &values {
                let mut prefix = index_prefix(52, 2);
                encode_key(&mut prefix, std::slice::from_ref(probe), &[index_col]).expect("encode");
                for reverse in [false, true] {
                    let mut span = Some(Span::prefix(&prefix));
                    let mut pks = Vec::new();
                    while let Some(s) = span {
                        let mut batch = Batch::new();
                        batch.scan(ScanRequest {
                            reverse,
                            ..ScanRequest::new(s)
                        });
                        let response = txn.batch(batch).await.expect("scan");
                        let scan = response.scan(0).expect("scan");
                        for row in &scan.rows {
                            let mut input = &row.key[..];
                            take_index_prefix(&mut input).expect("prefix");
                            let cols = decode_key(&mut input, &[index_col, pk_col]).expect("key");
                            let Value::Int8(pk) = cols[1] else {
                                panic!("pk {cols:?}")
                            };
                            pks.push(pk);
                        }
                        span = scan.resume.clone();
                    }
                    let mut want: Vec<i64> = rows
                        .iter()
                        .filter(|(v, _)| {
                            column_compare(v, probe, index_col.ty, false, false) == Ordering::Equal
                        })
                        .map(|(_, pk)| *pk)
                        .collect();
                    if reverse {
                        want.reverse();
                    }
                    assert_eq!(pks, want, "{probe:?} as {index_col:?}, reverse {reverse}");
                }
            }
        }
    });
}

const ROW_TYPES: [Type; 8] = [
    Type::Bool,
    Type::Int4,
    Type::Int8,
    Type::Float8,
    Type::Numeric,
    Type::Text,
    Type::Jsonb,
    Type::Interval,
];

/// Tables that gain and lose columns over time: every row written under any
/// schema version decodes under the latest one to what it should hold.
#[test]
fn rows_survive_schema_evolution() {
    let mut rng = Rng::new(31337);
    for _ in 0..200 {
        let mut next_id = 1;
        let mut columns: Vec<RowColumn> = Vec::new();
        // (row bytes, the values by column id as written)
        let mut stored: Vec<(Vec<u8>, BTreeMap<u32, Value>)> = Vec::new();
        for _ in 0..10 {
            if rng.chance(2) || columns.is_empty() {
                let ty = rng.pick(&ROW_TYPES);
                let missing = nullable(&mut rng, ty, 2);
                columns.push(RowColumn {
                    id: next_id,
                    ty,
                    missing,
                });
                next_id += 1;
            } else {
                columns.remove(rng.below(columns.len() as u64) as usize);
            }
            let codec = RowCodec::new(columns.clone()).expect("codec");
            for _ in 0..5 {
                let values: Vec<Value> = columns
                    .iter()
                    .map(|c| nullable(&mut rng, c.ty, 3))
                    .collect();
                let mut bytes = Vec::new();
                codec.encode(&values, &mut bytes).expect("encode");
                let by_id = columns.iter().map(|c| c.id).zip(values).collect();
                stored.push((bytes, by_id));
            }
            for (bytes, by_id) in &stored {
                let decoded = codec.decode(bytes).expect("decode");
                for (column, value) in columns.iter().zip(&decoded) {
                    let want = by_id.get(&column.id).unwrap_or(&column.missing);
                    assert!(same(value, want), "{value:?} != {want:?}");
                }
            }
        }
    }
}
