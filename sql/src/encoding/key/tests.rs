use std::cmp::Ordering;

use rust_decimal::Decimal;
use teller_net::types::{Interval, Type, Value};

use super::*;
use crate::encoding::testing::{column_compare, key_types, nullable, same, sql_compare, Rng};

fn enc(value: &Value, col: KeyColumn) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(&mut out, value, col).expect("encode");
    out
}

fn dec(bytes: &[u8], col: KeyColumn) -> Value {
    let mut input = bytes;
    let v = decode_value(&mut input, col).expect("decode");
    assert!(input.is_empty(), "decode left {input:?}");
    v
}

fn all_columns(ty: Type) -> [KeyColumn; 4] {
    [
        KeyColumn::new(ty, Direction::Asc, Some(Nulls::Last)),
        KeyColumn::new(ty, Direction::Asc, Some(Nulls::First)),
        KeyColumn::new(ty, Direction::Desc, Some(Nulls::First)),
        KeyColumn::new(ty, Direction::Desc, Some(Nulls::Last)),
    ]
}

fn check_column_pair(a: &Value, b: &Value, col: KeyColumn) {
    let want = column_compare(
        a,
        b,
        col.ty,
        col.direction == Direction::Desc,
        col.nulls == Nulls::First,
    );
    let (ea, eb) = (enc(a, col), enc(b, col));
    assert_eq!(
        ea.cmp(&eb),
        want,
        "{a:?} vs {b:?} as {col:?}: {ea:02x?} vs {eb:02x?}"
    );
}

fn check_round_trip(v: &Value, col: KeyColumn) {
    let e = enc(v, col);
    let d = dec(&e, col);
    if v.is_null() {
        assert_eq!(d, Value::Null);
        return;
    }
    assert_eq!(
        sql_compare(&d, v, col.ty),
        Ordering::Equal,
        "{v:?} decoded as {d:?} ({col:?})"
    );
    if !key_is_lossy(v, col.ty) {
        assert!(same(&d, v), "{v:?} decoded as {d:?} ({col:?})");
    }
    assert!(!key_is_lossy(&d, col.ty), "decoded {d:?} is not canonical");
    assert_eq!(enc(&d, col), e, "re-encoding {d:?}");
}

#[test]
fn property_order_and_round_trip_per_type() {
    let mut rng = Rng::new(0x7e11e4);
    for ty in key_types() {
        for _ in 0..3000 {
            let a = nullable(&mut rng, ty, 10);
            let b = if rng.chance(8) {
                a.clone()
            } else {
                nullable(&mut rng, ty, 10)
            };
            let col = rng.pick(&all_columns(ty));
            check_column_pair(&a, &b, col);
            check_round_trip(&a, col);
            // Any stored value pretty-prints without falling back to hex.
            let key = [index_prefix(1, 1), enc(&a, col)].concat();
            let text = pretty(&key);
            assert!(!text.contains("/0x"), "{a:?}: {text}");
        }
    }
}

#[test]
fn property_composite_keys() {
    let mut rng = Rng::new(42);
    for _ in 0..3000 {
        let width = 1 + rng.below(4) as usize;
        let cols: Vec<KeyColumn> = (0..width)
            .map(|_| {
                let ty = rng.pick(&key_types());
                rng.pick(&all_columns(ty))
            })
            .collect();
        // Small domains so that leading columns tie often.
        let tuple = |rng: &mut Rng| -> Vec<Value> {
            cols.iter()
                .map(|c| {
                    if c.ty == Type::Bool || rng.chance(3) {
                        small(nullable(rng, Type::Bool, 4), c.ty)
                    } else {
                        nullable(rng, c.ty, 6)
                    }
                })
                .collect()
        };
        let a = tuple(&mut rng);
        let b = tuple(&mut rng);
        let want = a
            .iter()
            .zip(&b)
            .zip(&cols)
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
            .unwrap_or(Ordering::Equal);
        let mut ea = index_prefix(52, 1);
        let mut eb = index_prefix(52, 1);
        encode_key(&mut ea, &a, &cols).expect("encode");
        encode_key(&mut eb, &b, &cols).expect("encode");
        assert_eq!(ea.cmp(&eb), want, "{a:?} vs {b:?} as {cols:?}");

        // Decoding the whole key gives back the (canonical) tuple.
        let mut input = &ea[..];
        assert_eq!(take_index_prefix(&mut input).expect("prefix"), (52, 1));
        let back = decode_key(&mut input, &cols).expect("decode");
        assert!(input.is_empty());
        for ((x, y), c) in a.iter().zip(&back).zip(&cols) {
            assert_eq!(
                column_compare(x, y, c.ty, false, false),
                Ordering::Equal,
                "{x:?} vs {y:?}"
            );
        }

        // Every prefix sorts before the key and its successor after it.
        let cut = rng.below(width as u64 + 1) as usize;
        let mut prefix = index_prefix(52, 1);
        encode_key(&mut prefix, &a[..cut], &cols[..cut]).expect("encode");
        assert!(prefix <= ea);
        assert!(ea.starts_with(&prefix));
        let end = prefix_successor(&prefix).expect("successor");
        assert!(ea < end);
        assert!(prefix < end);
    }
}

/// A value of `ty` from a two-value domain picked by `v` (a bool or NULL),
/// so that leading key columns tie often.
fn small(v: Value, ty: Type) -> Value {
    let Value::Bool(b) = v else {
        return Value::Null;
    };
    let i = i64::from(b);
    match ty {
        Type::Bool => Value::Bool(b),
        Type::Int2 => Value::Int2(i as i16),
        Type::Int4 => Value::Int4(i as i32),
        Type::Int8 => Value::Int8(i),
        Type::Oid => Value::Oid(i as u32),
        Type::Float4 => Value::Float4(i as f32),
        Type::Float8 => Value::Float8(i as f64),
        Type::Numeric => Value::Numeric(Decimal::from(i)),
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name => {
            Value::Text(if b { "b".into() } else { String::new() })
        }
        Type::Bytea => Value::Bytea(vec![0; i as usize]),
        Type::Date => Value::Date(i as i32),
        Type::Time => Value::Time(i),
        Type::Timestamp => Value::Timestamp(i),
        Type::Timestamptz => Value::Timestamptz(i),
        Type::Interval => Value::Interval(Interval {
            months: i as i32,
            ..Interval::default()
        }),
        Type::Uuid => Value::Uuid([i as u8; 16]),
        _ => Value::Null,
    }
}

#[test]
fn equal_values_encode_identically() {
    let col = KeyColumn::asc(Type::Numeric);
    let d = |s: &str| Value::Numeric(s.parse::<Decimal>().expect("decimal"));
    assert_eq!(enc(&d("1.5"), col), enc(&d("1.50"), col));
    assert_eq!(enc(&d("0"), col), enc(&d("0.000"), col));
    assert_eq!(enc(&d("-0.0"), col), enc(&d("0"), col));
    assert_eq!(enc(&d("1200"), col), enc(&d("1200.00"), col));
    assert_eq!(dec(&enc(&d("1.50"), col), col), d("1.5"));
    assert_eq!(dec(&enc(&d("1200.00"), col), col), d("1200"));

    let col = KeyColumn::asc(Type::Float8);
    assert_eq!(
        enc(&Value::Float8(-0.0), col),
        enc(&Value::Float8(0.0), col)
    );
    assert_eq!(
        enc(&Value::Float8(f64::NAN), col),
        enc(&Value::Float8(-f64::NAN), col)
    );

    let col = KeyColumn::asc(Type::Interval);
    let iv = |months, days, micros| {
        Value::Interval(Interval {
            months,
            days,
            micros,
        })
    };
    assert_eq!(enc(&iv(1, 0, 0), col), enc(&iv(0, 30, 0), col));
    assert_eq!(enc(&iv(0, 1, 0), col), enc(&iv(0, 0, 86_400_000_000), col));
    assert_eq!(dec(&enc(&iv(0, 31, 1), col), col), iv(1, 1, 1));

    let col = KeyColumn::asc(Type::Bpchar);
    let t = |s: &str| Value::Text(s.into());
    assert_eq!(enc(&t("ab  "), col), enc(&t("ab"), col));
    let col = KeyColumn::asc(Type::Text);
    assert_ne!(enc(&t("ab  "), col), enc(&t("ab"), col));
}

#[test]
fn interval_extremes_have_canonical_forms() {
    for months in [i32::MIN, -1, 0, 1, i32::MAX] {
        for days in [i32::MIN, 0, 29, 30, i32::MAX] {
            for micros in [i64::MIN, -1, 0, 86_400_000_000, i64::MAX] {
                let iv = Interval {
                    months,
                    days,
                    micros,
                };
                let c = canonical_interval(interval_span(&iv)).expect("canonical");
                assert_eq!(interval_span(&c), interval_span(&iv), "{iv:?}");
            }
        }
    }
}

#[test]
fn floats_order_like_postgres() {
    let col = KeyColumn::asc(Type::Float8);
    let order = [
        f64::NEG_INFINITY,
        f64::MIN,
        -1.0,
        -f64::MIN_POSITIVE,
        -5e-324,
        0.0,
        5e-324,
        1.0,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
    ];
    for w in order.windows(2) {
        assert!(enc(&Value::Float8(w[0]), col) < enc(&Value::Float8(w[1]), col));
    }
    assert!(
        matches!(dec(&enc(&Value::Float8(f64::NAN), col), col), Value::Float8(f) if f.is_nan())
    );
}

#[test]
fn ints_are_compact_and_ordered() {
    let col = KeyColumn::asc(Type::Int8);
    assert_eq!(enc(&Value::Int8(0), col), [0x11, 0x80]);
    assert_eq!(enc(&Value::Int8(42), col), [0x11, 0x81, 42]);
    assert_eq!(enc(&Value::Int8(-1), col), [0x11, 0x7F]);
    assert_eq!(enc(&Value::Int8(-2), col), [0x11, 0x7E, 0xFE]);
    assert_eq!(enc(&Value::Int8(i64::MAX), col).len(), 10);
    let mut prev = enc(&Value::Int8(i64::MIN), col);
    for v in [
        -65537,
        -65536,
        -257,
        -256,
        -255,
        -2,
        -1,
        0,
        1,
        255,
        256,
        65535,
        65536,
        i64::MAX,
    ] {
        let e = enc(&Value::Int8(v), col);
        assert!(prev < e, "{v}");
        prev = e;
    }
}

#[test]
fn uvarint_ids_order_and_round_trip() {
    let mut prev = Vec::new();
    for v in [0u64, 1, 0xF7, 0xF8, 0xFF, 0x100, 0xFFFF, 0x10000, u64::MAX] {
        let mut e = Vec::new();
        put_uvarint(&mut e, v);
        assert!(prev < e, "{v}");
        let mut input = &e[..];
        assert_eq!(take_uvarint(&mut input).expect("decode"), v);
        assert!(input.is_empty());
        prev = e;
    }
    assert_eq!(index_prefix(52, 1), [52, 1]);
}

#[test]
fn text_escapes_keep_prefix_order() {
    let col = KeyColumn::asc(Type::Bytea);
    let b = |v: &[u8]| enc(&Value::Bytea(v.to_vec()), col);
    assert!(b(b"") < b(b"\0"));
    assert!(b(b"a") < b(b"a\0"));
    assert!(b(b"a\0") < b(b"a\0\0"));
    assert!(b(b"a\0\0") < b(b"a\x01"));
    assert!(b(b"a\xff") < b(b"a\xff\xff"));
    assert_eq!(b(b"a\0"), [0x16, b'a', 0x00, 0xFF, 0x00, 0x01]);
}

#[test]
fn whole_index_keys() {
    let cols = [KeyColumn::asc(Type::Text), KeyColumn::desc(Type::Int4)];
    let values = [Value::Text("x".into()), Value::Int4(-7)];
    let key = index_key(1000, 2, &values, &cols).expect("encode");
    assert_eq!(pretty(&key), "/Table/1000/2/\"x\"/-7");
    let (table, index, back) = decode_index_key(&key, &cols).expect("decode");
    assert_eq!((table, index, &back[..]), (1000, 2, &values[..]));
    let mut longer = key.clone();
    longer.push(0x80);
    let e = decode_index_key(&longer, &cols).expect_err("trailing");
    assert_eq!(e.code.code(), "XX001");
    let e = decode_index_key(&key[..key.len() - 1], &cols).expect_err("short");
    assert_eq!(e.code.code(), "XX001");
}

#[test]
fn prefix_successor_edges() {
    assert_eq!(prefix_successor(b""), None);
    assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
    assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
}

#[test]
fn pretty_prints_keys() {
    let mut key = index_prefix(52, 1);
    encode_key(
        &mut key,
        &[
            Value::Text("abc".into()),
            Value::Int8(42),
            Value::Null,
            Value::Date(0),
            Value::Numeric(Decimal::new(-150, 2)),
        ],
        &[
            KeyColumn::asc(Type::Text),
            KeyColumn::desc(Type::Int8),
            KeyColumn::asc(Type::Int4),
            KeyColumn::asc(Type::Date),
            KeyColumn::asc(Type::Numeric),
        ],
    )
    .expect("encode");
    assert_eq!(
        pretty(&key),
        "/Table/52/1/\"abc\"/42/NULL/'2000-01-01'/-1.5"
    );
    key.extend_from_slice(&[0x33, 0x01]);
    assert_eq!(
        pretty(&key),
        "/Table/52/1/\"abc\"/42/NULL/'2000-01-01'/-1.5/0x3301"
    );
    assert_eq!(pretty(&[0xFF]), "/0xff");
}

#[test]
fn corrupt_keys_are_errors_not_panics() {
    let mut rng = Rng::new(7);
    for _ in 0..20_000 {
        let len = rng.below(24) as usize;
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        // Bias the first byte towards real markers.
        if len > 0 && rng.chance(2) {
            bytes[0] = 0x10 + rng.below(14) as u8 + if rng.chance(2) { 0x40 } else { 0 };
        }
        let _ = pretty(&bytes);
        for ty in key_types() {
            for col in all_columns(ty) {
                let mut input = &bytes[..];
                if let Err(e) = decode_value(&mut input, col) {
                    assert_eq!(e.code.code(), "XX001", "{e}");
                }
            }
        }
    }
    // Truncations of a valid key fail cleanly.
    let col = KeyColumn::desc(Type::Text);
    let full = enc(&Value::Text("hello\0world".into()), col);
    for cut in 0..full.len() {
        let mut input = &full[..cut];
        let e = decode_value(&mut input, col).expect_err("truncated");
        assert_eq!(e.code.code(), "XX001");
    }
}

#[test]
fn wrong_value_type_is_an_error() {
    let mut out = vec![9];
    let e = encode_value(&mut out, &Value::Int4(1), KeyColumn::asc(Type::Int8)).expect_err("type");
    assert_eq!(e.code.code(), "XX000");
    assert_eq!(out, [9]);
    let e = encode_value(
        &mut out,
        &Value::Json("{}".into()),
        KeyColumn::asc(Type::Jsonb),
    )
    .expect_err("jsonb");
    assert_eq!(e.code.code(), "0A000");
}

/// The byte formats are stored on disk: pin them.
#[test]
fn golden_encodings() {
    let asc = KeyColumn::asc;
    let desc = KeyColumn::desc;
    let d = |s: &str| Value::Numeric(s.parse::<Decimal>().expect("decimal"));
    let cases: Vec<(Value, KeyColumn, Vec<u8>)> = vec![
        (Value::Null, asc(Type::Int4), vec![0xFF]),
        (Value::Null, desc(Type::Int4), vec![0x00]),
        (Value::Bool(true), asc(Type::Bool), vec![0x10, 0x01]),
        (Value::Int4(-2), asc(Type::Int4), vec![0x11, 0x7E, 0xFE]),
        (
            Value::Int8(256),
            asc(Type::Int8),
            vec![0x11, 0x82, 0x01, 0x00],
        ),
        (Value::Int2(1), desc(Type::Int2), vec![0x51, 0x7E, 0xFE]),
        (
            Value::Float8(1.0),
            asc(Type::Float8),
            vec![0x13, 0xBF, 0xF0, 0, 0, 0, 0, 0, 0],
        ),
        (
            Value::Float8(-1.0),
            asc(Type::Float8),
            vec![0x13, 0x40, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
        (
            Value::Float4(f32::NAN),
            asc(Type::Float4),
            vec![0x12, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
        (d("0"), asc(Type::Numeric), vec![0x14, 0x02]),
        (
            d("1.5"),
            asc(Type::Numeric),
            vec![0x14, 0x03, 0x81, 16, 0x00],
        ),
        (
            d("-1.5"),
            asc(Type::Numeric),
            vec![0x14, 0x01, 0x7E, 0xEF, 0xFF],
        ),
        (
            d("123"),
            asc(Type::Numeric),
            vec![0x14, 0x03, 0x83, 13, 31, 0x00],
        ),
        (
            d("0.001"),
            asc(Type::Numeric),
            vec![0x14, 0x03, 0x7E, 11, 0x00],
        ),
        (
            Value::Text("a\0b".into()),
            asc(Type::Text),
            vec![0x15, b'a', 0x00, 0xFF, b'b', 0x00, 0x01],
        ),
        (
            Value::Text("a".into()),
            desc(Type::Varchar),
            vec![0x55, 0x9E, 0xFF, 0xFE],
        ),
        (
            Value::Bytea(vec![]),
            desc(Type::Bytea),
            vec![0x56, 0xFF, 0xFE],
        ),
        (Value::Date(0), asc(Type::Date), vec![0x17, 0x80]),
        (Value::Time(1), asc(Type::Time), vec![0x18, 0x81, 0x01]),
        (Value::Timestamp(-1), asc(Type::Timestamp), vec![0x19, 0x7F]),
        (
            Value::Timestamptz(0),
            asc(Type::Timestamptz),
            vec![0x1A, 0x80],
        ),
        (
            Value::Interval(Interval {
                months: 0,
                days: 1,
                micros: 0,
            }),
            asc(Type::Interval),
            vec![
                0x1B, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0x1D, 0xD7, 0x60, 0x00,
            ],
        ),
        (
            Value::Uuid([7; 16]),
            asc(Type::Uuid),
            [&[0x1C][..], &[7; 16]].concat(),
        ),
        (Value::Oid(7), asc(Type::Oid), vec![0x1D, 0x81, 0x07]),
    ];
    for (value, col, want) in cases {
        assert_eq!(enc(&value, col), want, "{value:?} as {col:?}");
        let back = dec(&want, col);
        assert_eq!(
            column_compare(&back, &value, col.ty, false, false),
            Ordering::Equal
        );
    }
}

#[test]
fn key_types_are_exactly_the_types_with_a_key_encoding() {
    for ty in Type::ALL {
        assert_eq!(key_types().contains(&ty), is_key_type(ty), "{ty:?}");
    }
}
