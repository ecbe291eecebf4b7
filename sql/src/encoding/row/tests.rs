use teller_net::types::{Type, Value};

use super::*;
use crate::encoding::testing::{key_types, nullable, same, Rng};

/// Every type a row can hold.
fn row_types() -> Vec<Type> {
    Type::ALL
        .into_iter()
        .filter(|&t| t != Type::Unknown)
        .collect()
}

fn assert_same_row(a: &[Value], b: &[Value]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(same(x, y), "{x:?} != {y:?}");
    }
}

fn random_schema(rng: &mut Rng) -> Vec<RowColumn> {
    let width = rng.below(8) as usize;
    let mut id = 0;
    let mut columns: Vec<RowColumn> = (0..width)
        .map(|_| {
            let gap = if rng.chance(5) { 1000 } else { 3 };
            id += 1 + rng.below(gap) as u32;
            RowColumn::new(id, rng.pick(&row_types()))
        })
        .collect();
    // Column order need not be id order.
    if width > 1 && rng.chance(2) {
        columns.swap(0, width - 1);
    }
    columns
}

fn random_row(rng: &mut Rng, columns: &[RowColumn]) -> Vec<Value> {
    columns.iter().map(|c| nullable(rng, c.ty, 4)).collect()
}

#[test]
fn property_round_trip() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..5000 {
        let codec = RowCodec::new(random_schema(&mut rng)).expect("codec");
        let row = random_row(&mut rng, codec.columns());
        let mut bytes = Vec::new();
        codec.encode(&row, &mut bytes).expect("encode");
        assert_same_row(&codec.decode(&bytes).expect("decode"), &row);
    }
}

#[test]
fn numeric_scale_and_float_sign_survive() {
    let codec = RowCodec::new(vec![
        RowColumn::new(1, Type::Numeric),
        RowColumn::new(2, Type::Float8),
        RowColumn::new(3, Type::Numeric),
    ])
    .expect("codec");
    let row = vec![
        Value::Numeric("1.50".parse().expect("decimal")),
        Value::Float8(-0.0),
        Value::Numeric("-79228162514264337593543950335".parse().expect("decimal")),
    ];
    let mut bytes = Vec::new();
    codec.encode(&row, &mut bytes).expect("encode");
    let back = codec.decode(&bytes).expect("decode");
    assert_same_row(&back, &row);
    assert_eq!(back[0].clone(), row[0]);
    let Value::Numeric(d) = &back[0] else {
        panic!("numeric")
    };
    assert_eq!(d.to_string(), "1.50");
}

#[test]
fn layout_is_compact_and_tagged_by_column_id() {
    let codec = RowCodec::new(vec![
        RowColumn::new(1, Type::Int8),
        RowColumn::new(2, Type::Text),
        RowColumn::new(5, Type::Bool),
    ])
    .expect("codec");
    let mut bytes = Vec::new();
    codec
        .encode(
            &[Value::Int8(-2), Value::Null, Value::Bool(true)],
            &mut bytes,
        )
        .expect("encode");
    // version, (id 1, int8, zigzag 3), NULL left out, (id +4, true)
    assert_eq!(bytes, [1, 1, 5, 3, 4, 2]);
}

#[test]
fn added_column_reads_missing_value_and_explicit_null() {
    let old = RowCodec::new(vec![
        RowColumn::new(1, Type::Int4),
        RowColumn::new(2, Type::Text),
    ])
    .expect("codec");
    let mut before = Vec::new();
    old.encode(&[Value::Int4(7), Value::Text("x".into())], &mut before)
        .expect("encode");

    // ALTER TABLE ADD COLUMN c int8 DEFAULT 42
    let new = RowCodec::new(vec![
        RowColumn::new(1, Type::Int4),
        RowColumn::new(2, Type::Text),
        RowColumn {
            id: 3,
            ty: Type::Int8,
            missing: Value::Int8(42),
        },
        RowColumn::new(4, Type::Bool),
    ])
    .expect("codec");
    assert_eq!(
        new.decode(&before).expect("decode"),
        [
            Value::Int4(7),
            Value::Text("x".into()),
            Value::Int8(42),
            Value::Null
        ]
    );
    // A row written after the ALTER with c = NULL keeps its NULL.
    let mut after = Vec::new();
    let row = [Value::Int4(8), Value::Null, Value::Null, Value::Null];
    new.encode(&row, &mut after).expect("encode");
    assert_eq!(new.decode(&after).expect("decode"), row);
    // Rows in the new format still read under the old schema.
    assert_eq!(
        old.decode(&after).expect("decode"),
        [Value::Int4(8), Value::Null]
    );
}

#[test]
fn dropped_columns_are_skipped() {
    let mut rng = Rng::new(99);
    for _ in 0..2000 {
        let full = random_schema(&mut rng);
        let codec = RowCodec::new(full.clone()).expect("codec");
        let row = random_row(&mut rng, codec.columns());
        let mut bytes = Vec::new();
        codec.encode(&row, &mut bytes).expect("encode");
        // Keep a random subset of the columns (the others were dropped).
        let keep: Vec<bool> = full.iter().map(|_| rng.chance(2)).collect();
        let fewer: Vec<RowColumn> = full
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        let want: Vec<Value> = row
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(v, _)| v.clone())
            .collect();
        let narrow = RowCodec::new(fewer).expect("codec");
        assert_same_row(&narrow.decode(&bytes).expect("decode"), &want);
    }
}

#[test]
fn corrupt_rows_are_errors_not_panics() {
    let mut rng = Rng::new(1234);
    let codec = RowCodec::new(
        row_types()
            .iter()
            .enumerate()
            .map(|(i, ty)| RowColumn::new(i as u32 + 1, *ty))
            .collect(),
    )
    .expect("codec");
    let mut valid = Vec::new();
    let row = random_row(&mut rng, codec.columns());
    codec.encode(&row, &mut valid).expect("encode");
    for cut in 0..valid.len() {
        // A truncated row is an error or, cut at a column boundary, a row
        // with fewer columns: never a panic.
        if let Err(e) = codec.decode(&valid[..cut]) {
            assert_eq!(e.code.code(), "XX001", "{e}");
        }
    }
    for _ in 0..20_000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] = rng.next_u64() as u8;
        }
        if rng.chance(4) {
            bytes = (0..rng.below(40)).map(|_| rng.next_u64() as u8).collect();
            if !bytes.is_empty() {
                bytes[0] = ROW_FORMAT_VERSION;
            }
        }
        if let Err(e) = codec.decode(&bytes) {
            assert_eq!(e.code.code(), "XX001", "{e}");
        }
    }
    let e = codec.decode(&[]).expect_err("empty");
    assert_eq!(e.code.code(), "XX001");
    let e = codec.decode(&[2]).expect_err("version");
    assert!(e.message.contains("version"), "{e}");
    // Type confusion: column 1 (bool) stored as text.
    let e = codec.decode(&[1, 1, 9, 1, b'x']).expect_err("type");
    assert_eq!(e.code.code(), "XX001");
    // Ids must increase.
    let e = codec.decode(&[1, 1, 0, 0, 0]).expect_err("ids");
    assert_eq!(e.code.code(), "XX001");
}

#[test]
fn encode_checks_types_and_ids() {
    let e = RowCodec::new(vec![
        RowColumn::new(1, Type::Int4),
        RowColumn::new(1, Type::Int8),
    ])
    .expect_err("duplicate");
    assert_eq!(e.code.code(), "XX000");
    let codec = RowCodec::new(vec![RowColumn::new(1, Type::Int4)]).expect("codec");
    let mut out = vec![7];
    let e = codec.encode(&[Value::Int8(1)], &mut out).expect_err("type");
    assert_eq!(e.code.code(), "XX000");
    assert_eq!(out, [7]);
    codec.encode(&[], &mut out).expect_err("arity");
    // Key types are a subset of row types.
    assert!(key_types().iter().all(|t| row_types().contains(t)));
}
