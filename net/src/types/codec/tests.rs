//! Codec tests: PostgreSQL's exact text for tables of cases, every error path
//! with its SQLSTATE, and seeded round-trip loops over every type.

use bytes::BytesMut;

use super::*;
use crate::types::{Decimal, Interval};

fn text_of(value: &Value, ty: Type) -> String {
    let mut out = BytesMut::new();
    encode_text(value, ty, &mut out);
    String::from_utf8(out.to_vec()).expect("codecs print UTF-8")
}

fn binary_of(value: &Value, ty: Type) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_binary(value, ty, &mut out).expect("value fits its type");
    out.to_vec()
}

fn parse(ty: Type, s: &str) -> Value {
    match decode_text(ty, s.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("{} {s:?} failed: {e}", ty.name()),
    }
}

/// Asserts that decoding fails with `code`; returns the message.
fn parse_err(ty: Type, s: &str, code: &str) -> String {
    match decode_text(ty, s.as_bytes()) {
        Ok(v) => panic!("{} {s:?} parsed as {v:?}, expected error {code}", ty.name()),
        Err(e) => {
            assert_eq!(e.code.code(), code, "{} {s:?}: {e}", ty.name());
            e.message
        }
    }
}

fn binary_err(ty: Type, raw: &[u8], code: &str) -> String {
    match decode_binary(ty, raw) {
        Ok(v) => panic!(
            "{} {raw:?} decoded as {v:?}, expected error {code}",
            ty.name()
        ),
        Err(e) => {
            assert_eq!(e.code.code(), code, "{} {raw:?}: {e}", ty.name());
            e.message
        }
    }
}

/// Text in, expected PostgreSQL text out, and both codecs round-trip.
fn check_text(ty: Type, input: &str, expected: &str) {
    let v = parse(ty, input);
    assert_eq!(text_of(&v, ty), expected, "{} {input:?}", ty.name());
    assert_eq!(
        decode_text(ty, expected.as_bytes()).as_ref(),
        Ok(&v),
        "{} {expected:?}",
        ty.name()
    );
    let bin = binary_of(&v, ty);
    assert_eq!(
        decode_binary(ty, &bin).as_ref(),
        Ok(&v),
        "{} binary of {input:?}",
        ty.name()
    );
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}

// ------------------------------------------------------------------ bool and ints

#[test]
fn bool_inputs() {
    for s in ["t", "TRUE", "tr", " yes ", "y", "on", "ON", "1", "\ttrue\n"] {
        assert_eq!(parse(Type::Bool, s), Value::Bool(true), "{s:?}");
    }
    for s in ["f", "false", "FALSE", "n", "no", "off", "of", "0", " fal "] {
        assert_eq!(parse(Type::Bool, s), Value::Bool(false), "{s:?}");
    }
    for s in ["", "o", "truex", "2", "yess", "onn", "10", "t rue"] {
        let msg = parse_err(Type::Bool, s, "22P02");
        assert_eq!(
            msg,
            format!("invalid input syntax for type boolean: \"{s}\"")
        );
    }
    assert_eq!(text_of(&Value::Bool(true), Type::Bool), "t");
    assert_eq!(text_of(&Value::Bool(false), Type::Bool), "f");
    assert_eq!(binary_of(&Value::Bool(true), Type::Bool), [1]);
    assert_eq!(decode_binary(Type::Bool, &[7]), Ok(Value::Bool(true)));
    assert_eq!(decode_binary(Type::Bool, &[0]), Ok(Value::Bool(false)));
    binary_err(Type::Bool, &[], "22P03");
    binary_err(Type::Bool, &[0, 1], "22P03");
}

#[test]
fn integer_texts() {
    check_text(Type::Int2, "-32768", "-32768");
    check_text(Type::Int2, " +32767 ", "32767");
    check_text(Type::Int4, "-2147483648", "-2147483648");
    check_text(Type::Int4, "0042", "42");
    check_text(Type::Int4, "-0", "0");
    check_text(Type::Int8, "9223372036854775807", "9223372036854775807");
    check_text(Type::Int8, "-9223372036854775808", "-9223372036854775808");
    check_text(Type::Oid, "4294967295", "4294967295");
    assert_eq!(parse(Type::Oid, "-1"), Value::Oid(u32::MAX));
    assert_eq!(parse(Type::Oid, "-2147483648"), Value::Oid(2_147_483_648));
}

#[test]
fn integer_errors() {
    assert_eq!(
        parse_err(Type::Int2, "99999", "22003"),
        "value \"99999\" is out of range for type smallint"
    );
    assert_eq!(
        parse_err(Type::Int2, "-32769", "22003"),
        "value \"-32769\" is out of range for type smallint"
    );
    assert_eq!(
        parse_err(Type::Int4, "2147483648", "22003"),
        "value \"2147483648\" is out of range for type integer"
    );
    assert_eq!(
        parse_err(Type::Int8, "9223372036854775808", "22003"),
        "value \"9223372036854775808\" is out of range for type bigint"
    );
    parse_err(Type::Int8, "99999999999999999999999999999", "22003");
    // PostgreSQL 15 reports the overflow before the trailing garbage.
    parse_err(Type::Int2, "99999x", "22003");
    assert_eq!(
        parse_err(Type::Int4, "abc", "22P02"),
        "invalid input syntax for type integer: \"abc\""
    );
    for s in [
        "", " ", "+", "-", "1 2", "1.0", "1e3", "0x10", "--1", "+-1", "12a",
    ] {
        parse_err(Type::Int4, s, "22P02");
    }
    assert_eq!(
        parse_err(Type::Int2, "x", "22P02"),
        "invalid input syntax for type smallint: \"x\""
    );
    assert_eq!(
        parse_err(Type::Int8, "x", "22P02"),
        "invalid input syntax for type bigint: \"x\""
    );
    assert_eq!(
        parse_err(Type::Oid, "x", "22P02"),
        "invalid input syntax for type oid: \"x\""
    );
    assert_eq!(
        parse_err(Type::Oid, "4294967296", "22003"),
        "value \"4294967296\" is out of range for type oid"
    );
    parse_err(Type::Oid, "-2147483649", "22003");
}

#[test]
fn integer_binary() {
    assert_eq!(binary_of(&Value::Int2(-2), Type::Int2), [0xff, 0xfe]);
    assert_eq!(binary_of(&Value::Int4(258), Type::Int4), [0, 0, 1, 2]);
    assert_eq!(
        binary_of(&Value::Int8(1), Type::Int8),
        [0, 0, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(binary_of(&Value::Oid(u32::MAX), Type::Oid), [0xff; 4]);
    let msg = binary_err(Type::Int4, &[0, 0, 1], "22P03");
    assert!(
        msg.contains("int4") && msg.contains('4') && msg.contains('3'),
        "{msg}"
    );
    binary_err(Type::Int2, &[0], "22P03");
    binary_err(Type::Int8, &[0; 4], "22P03");
    binary_err(Type::Oid, &[0; 8], "22P03");
}

// ------------------------------------------------------------------ floats

#[test]
fn float8_text_is_shortest_like_postgres() {
    let cases: &[(f64, &str)] = &[
        (1.5, "1.5"),
        (0.1, "0.1"),
        (-1.25, "-1.25"),
        (100.0, "100"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1e100, "1e+100"),
        (1.5e-7, "1.5e-07"),
        (1e15, "1e+15"),
        (1e14, "100000000000000"),
        (123456789012345.0, "123456789012345"),
        (1234567890123456.0, "1.234567890123456e+15"),
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (0.00001, "1e-05"),
        (1.2345678901234568e-5, "1.2345678901234568e-05"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        (5e-324, "5e-324"),
        (1.0 / 3.0, "0.3333333333333333"),
        (2.0f64.powi(60), "1.152921504606847e+18"),
        // Exact ties between two shortest candidates go to the even one (Ryu).
        (2f64.powi(49) + 0.25, "562949953421312.2"),
        (2f64.powi(49) + 0.75, "562949953421312.8"),
        (2f64.powi(50) + 0.5, "1.1258999068426245e+15"),
        // A decimal exactly on the edge of the rounding interval is refused
        // (PostgreSQL's Ryu is built without STRICTLY_SHORTEST).
        (1.57e22, "1.5699999999999999e+22"),
        (5e22, "4.9999999999999996e+22"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
        (f64::NAN, "NaN"),
    ];
    for &(v, expected) in cases {
        assert_eq!(text_of(&Value::Float8(v), Type::Float8), expected, "{v:e}");
        let back = parse(Type::Float8, expected);
        let Value::Float8(back) = back else {
            panic!("{back:?}")
        };
        assert!(
            back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()),
            "{expected}"
        );
    }
}

#[test]
fn float4_text_is_shortest_like_postgres() {
    let cases: &[(f32, &str)] = &[
        (1.5, "1.5"),
        (0.1, "0.1"),
        (0.3, "0.3"),
        (100000.0, "100000"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (1e-5, "1e-05"),
        (f32::MAX, "3.4028235e+38"),
        (1e-45, "1e-45"),
        // An exact tie between two shortest candidates goes to the even one.
        (281083.0 + 0.625, "281083.62"),
        (90008816.0, "9.0008816e+07"),
        (-0.0, "-0"),
        (f32::INFINITY, "Infinity"),
        (f32::NAN, "NaN"),
    ];
    for &(v, expected) in cases {
        assert_eq!(text_of(&Value::Float4(v), Type::Float4), expected, "{v:e}");
        let Value::Float4(back) = parse(Type::Float4, expected) else {
            panic!()
        };
        assert!(
            back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()),
            "{expected}"
        );
    }
}

#[test]
fn float_inputs_and_errors() {
    for (s, v) in [
        (" 1.5 ", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("-1E-2", -0.01),
        ("+2", 2.0),
        ("1e-310", 1e-310),
        ("infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
        ("INF", f64::INFINITY),
        ("+inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
    ] {
        assert_eq!(parse(Type::Float8, s), Value::Float8(v), "{s:?}");
    }
    let Value::Float8(nan) = parse(Type::Float8, "nan") else {
        panic!()
    };
    assert!(nan.is_nan());
    assert_eq!(
        parse_err(Type::Float8, "1e400", "22003"),
        "\"1e400\" is out of range for type double precision"
    );
    parse_err(Type::Float8, "-1e400", "22003");
    parse_err(Type::Float8, "1e-400", "22003");
    assert_eq!(
        parse_err(Type::Float4, "1e39", "22003"),
        "\"1e39\" is out of range for type real"
    );
    parse_err(Type::Float4, "1e-50", "22003");
    assert_eq!(parse(Type::Float4, "0.0e-50"), Value::Float4(0.0));
    assert_eq!(
        parse_err(Type::Float8, "abc", "22P02"),
        "invalid input syntax for type double precision: \"abc\""
    );
    assert_eq!(
        parse_err(Type::Float4, "1.5x", "22P02"),
        "invalid input syntax for type real: \"1.5x\""
    );
    for s in ["", "e5", "1e", "1..2", "infinityx", "1 2", "--1"] {
        parse_err(Type::Float8, s, "22P02");
    }
    assert_eq!(
        binary_of(&Value::Float8(1.0), Type::Float8),
        1.0f64.to_be_bytes()
    );
    assert_eq!(
        binary_of(&Value::Float4(1.0), Type::Float4),
        1.0f32.to_be_bytes()
    );
    binary_err(Type::Float8, &[0; 4], "22P03");
    binary_err(Type::Float4, &[0; 8], "22P03");
}

// ------------------------------------------------------------------ numeric

#[test]
fn numeric_texts() {
    for (input, expected) in [
        ("1.50", "1.50"),
        ("0", "0"),
        ("-0.00", "0.00"),
        ("  12.3  ", "12.3"),
        ("+7", "7"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1e3", "1000"),
        ("1.5e-3", "0.0015"),
        ("1.50E1", "15.0"),
        ("-123456789.123456789", "-123456789.123456789"),
        (
            "79228162514264337593543950335",
            "79228162514264337593543950335",
        ),
        (
            "-79228162514264337593543950335",
            "-79228162514264337593543950335",
        ),
        (
            "0.0000000000000000000000000001",
            "0.0000000000000000000000000001",
        ),
        ("00012.3400", "12.3400"),
        // Zeros past 28 places are dropped: same value, smaller display scale.
        (
            "1.000000000000000000000000000000000",
            "1.0000000000000000000000000000",
        ),
        ("0e-40", "0.0000000000000000000000000000"),
        ("0e99999", "0"),
    ] {
        check_text(Type::Numeric, input, expected);
    }
}

#[test]
fn numeric_errors() {
    assert_eq!(
        parse_err(Type::Numeric, "abc", "22P02"),
        "invalid input syntax for type numeric: \"abc\""
    );
    for s in [
        "", "-", ".", "1e", "1e+", "1.2.3", "1 2", "1,5", "e5", "0x10",
    ] {
        parse_err(Type::Numeric, s, "22P02");
    }
    for s in ["NaN", "nan", "Infinity", "-inf"] {
        parse_err(Type::Numeric, s, "0A000");
    }
    assert_eq!(
        parse_err(Type::Numeric, "79228162514264337593543950336", "22003"),
        "value overflows numeric format"
    );
    parse_err(Type::Numeric, "1e29", "22003");
    parse_err(Type::Numeric, "1e999999999999", "22003");
    parse_err(Type::Numeric, "0.00000000000000000000000000001", "22003");
}

#[test]
fn numeric_binary_matches_postgres_layout() {
    let cases: &[(&str, &[u16])] = &[
        ("0", &[0, 0, 0, 0]),
        ("0.00", &[0, 0, 0, 2]),
        ("1", &[1, 0, 0, 0, 1]),
        ("10000", &[1, 1, 0, 0, 1]),
        ("12345.678", &[3, 1, 0, 3, 1, 2345, 6780]),
        ("-1.5", &[2, 0, 0x4000, 1, 1, 5000]),
        ("0.5", &[1, 0xffff, 0, 1, 5000]),
        ("0.0001", &[1, 0xffff, 0, 4, 1]),
        ("0.00001", &[1, 0xfffe, 0, 5, 1000]),
        ("1.50", &[2, 0, 0, 2, 1, 5000]),
        ("100000000", &[1, 2, 0, 0, 1]),
        (
            "79228162514264337593543950335",
            &[8, 7, 0, 0, 7, 9228, 1625, 1426, 4337, 5935, 4395, 335],
        ),
    ];
    for &(text, words) in cases {
        let v = Value::Numeric(dec(text));
        let expected: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(binary_of(&v, Type::Numeric), expected, "{text}");
        let back = decode_binary(Type::Numeric, &expected).expect("decodes");
        assert_eq!(
            text_of(&back, Type::Numeric),
            text_of(&v, Type::Numeric),
            "{text}"
        );
    }
}

#[test]
fn numeric_binary_decoding_edges() {
    let raw = |words: &[u16]| -> Vec<u8> { words.iter().flat_map(|w| w.to_be_bytes()).collect() };
    // dscale hides digits: truncated, like numeric_recv.
    let v = decode_binary(Type::Numeric, &raw(&[2, 0, 0, 1, 1, 5678])).expect("decodes");
    assert_eq!(text_of(&v, Type::Numeric), "1.5");
    // dscale beyond the digits pads with zeros.
    let v = decode_binary(Type::Numeric, &raw(&[1, 0, 0x4000, 3, 7])).expect("decodes");
    assert_eq!(text_of(&v, Type::Numeric), "-7.000");
    // Trailing zero digits sent by a lax client are fine.
    let v = decode_binary(Type::Numeric, &raw(&[3, 0, 0, 0, 2, 0, 0])).expect("decodes");
    assert_eq!(text_of(&v, Type::Numeric), "2");
    binary_err(Type::Numeric, &raw(&[1, 0, 0, 0]), "22P03");
    binary_err(Type::Numeric, &raw(&[0, 0, 0]), "22P03");
    binary_err(Type::Numeric, &raw(&[0xffff, 0, 0, 0]), "22P03");
    assert_eq!(
        binary_err(Type::Numeric, &raw(&[1, 0, 0x1234, 0, 1]), "22P03"),
        "invalid sign in external \"numeric\" value"
    );
    assert_eq!(
        binary_err(Type::Numeric, &raw(&[1, 0, 0, 0, 10000]), "22P03"),
        "invalid digit in external \"numeric\" value"
    );
    assert_eq!(
        binary_err(Type::Numeric, &raw(&[1, 0, 0, 0x4000, 1]), "22P03"),
        "invalid scale in external \"numeric\" value"
    );
    binary_err(Type::Numeric, &raw(&[0, 0, 0xC000, 0]), "0A000");
    binary_err(Type::Numeric, &raw(&[0, 0, 0xD000, 0]), "0A000");
    binary_err(Type::Numeric, &raw(&[0, 0, 0xF000, 0]), "0A000");
    binary_err(Type::Numeric, &raw(&[1, 8, 0, 0, 1]), "22003");
    // A digit far below dscale truncates to zero, as in PostgreSQL.
    let v = decode_binary(Type::Numeric, &raw(&[1, 0x8000, 0, 0, 1])).expect("decodes");
    assert_eq!(text_of(&v, Type::Numeric), "0");
}

// ------------------------------------------------------------------ text, bytea, uuid, json

#[test]
fn text_types() {
    for ty in [
        Type::Text,
        Type::Varchar,
        Type::Bpchar,
        Type::Name,
        Type::Unknown,
    ] {
        check_text(ty, "héllo wörld ✓", "héllo wörld ✓");
        check_text(ty, "", "");
        assert_eq!(binary_of(&Value::Text("ab".into()), ty), b"ab");
        assert_eq!(
            parse_err(ty, "a\u{0}b", "22021"),
            "invalid byte sequence for encoding \"UTF8\": 0x00"
        );
    }
    let bad = |raw: &[u8]| match decode_text(Type::Text, raw) {
        Err(e) => {
            assert_eq!(e.code.code(), "22021");
            assert_eq!(decode_binary(Type::Text, raw), Err(e.clone()));
            e.message
        }
        Ok(v) => panic!("{v:?}"),
    };
    assert_eq!(
        bad(&[0x61, 0xc3, 0x28]),
        "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28"
    );
    assert_eq!(
        bad(&[0xff]),
        "invalid byte sequence for encoding \"UTF8\": 0xff"
    );
    assert_eq!(
        bad(&[0xe2, 0x82]),
        "invalid byte sequence for encoding \"UTF8\": 0xe2 0x82"
    );
    // Every type checks the encoding before parsing.
    let e = decode_text(Type::Int4, &[0xff]).expect_err("bad UTF-8");
    assert_eq!(e.code.code(), "22021");
    // name keeps at most 63 bytes, never half a character.
    let long = "é".repeat(40);
    let Value::Text(cut) = parse(Type::Name, &long) else {
        panic!()
    };
    assert_eq!(cut.len(), 62);
    let Value::Text(cut) = parse(Type::Name, &"a".repeat(100)) else {
        panic!()
    };
    assert_eq!(cut.len(), 63);
    binary_err(Type::Name, "a".repeat(64).as_bytes(), "42622");
    assert_eq!(
        decode_binary(Type::Name, "a".repeat(63).as_bytes()),
        Ok(Value::Text("a".repeat(63)))
    );
}

#[test]
fn bytea_codecs() {
    let v = Value::Bytea(vec![0x00, 0x0a, 0xff, b'A']);
    assert_eq!(text_of(&v, Type::Bytea), "\\x000aff41");
    assert_eq!(parse(Type::Bytea, "\\x000AfF41"), v);
    assert_eq!(parse(Type::Bytea, "\\x00 0a\nff\t41"), v);
    assert_eq!(parse(Type::Bytea, "\\x"), Value::Bytea(vec![]));
    assert_eq!(parse(Type::Bytea, ""), Value::Bytea(vec![]));
    assert_eq!(
        parse(Type::Bytea, "ab\\\\c\\001\\377"),
        Value::Bytea(b"ab\\c\x01\xff".to_vec())
    );
    assert_eq!(
        parse(Type::Bytea, "é"),
        Value::Bytea("é".as_bytes().to_vec())
    );
    assert_eq!(binary_of(&v, Type::Bytea), [0x00, 0x0a, 0xff, b'A']);
    assert_eq!(
        decode_binary(Type::Bytea, &[0xff, 0]),
        Ok(Value::Bytea(vec![0xff, 0]))
    );
    assert_eq!(
        parse_err(Type::Bytea, "\\x0g", "22023"),
        "invalid hexadecimal digit: \"g\""
    );
    assert_eq!(
        parse_err(Type::Bytea, "\\xabc", "22023"),
        "invalid hexadecimal data: odd number of digits"
    );
    assert_eq!(
        parse_err(Type::Bytea, "a\\b", "22P02"),
        "invalid input syntax for type bytea"
    );
    parse_err(Type::Bytea, "\\", "22P02");
    parse_err(Type::Bytea, "\\400", "22P02");
    parse_err(Type::Bytea, "\\08", "22P02");
    assert_eq!(
        parse_err(Type::Bytea, "\\x0 a", "22023"),
        "invalid hexadecimal digit: \" \""
    );
}

#[test]
fn uuid_codecs() {
    let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    for input in [
        canonical,
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
    ] {
        check_text(Type::Uuid, input, canonical);
    }
    let Value::Uuid(bytes) = parse(Type::Uuid, canonical) else {
        panic!()
    };
    assert_eq!(bytes[0], 0xa0);
    assert_eq!(binary_of(&Value::Uuid(bytes), Type::Uuid), bytes);
    for s in [
        "",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
        "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1-",
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ] {
        let msg = parse_err(Type::Uuid, s, "22P02");
        assert_eq!(msg, format!("invalid input syntax for type uuid: \"{s}\""));
    }
    binary_err(Type::Uuid, &[0; 15], "22P03");
}

#[test]
fn json_codecs() {
    for doc in [
        "{}",
        "[]",
        " {\"a\": [1, 2.5, -3e10, true, false, null, \"x\\\"y\\u00e9\\n\"]} ",
        "\"\\ud83d\\ude00\"",
        "0",
        "-0.5E+3",
        "\"\\u0000\"",
        "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
    ] {
        check_text(Type::Json, doc, doc);
        assert_eq!(
            binary_of(&Value::Json(doc.into()), Type::Json),
            doc.as_bytes()
        );
    }
    let v = Value::Json("{\"k\": 1}".into());
    let mut jsonb = vec![1u8];
    jsonb.extend_from_slice(b"{\"k\": 1}");
    assert_eq!(binary_of(&v, Type::Jsonb), jsonb);
    assert_eq!(decode_binary(Type::Jsonb, &jsonb), Ok(v.clone()));
    assert_eq!(parse(Type::Jsonb, "{\"k\":1}"), v);
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "01",
        "1.",
        ".5",
        "+1",
        "tru",
        "truex",
        "nul",
        "\"abc",
        "\"a\tb\"",
        "\"\\x\"",
        "\"\\u12\"",
        "[1 2]",
        "{} {}",
        "'a'",
        "NaN",
        "1e",
        "-",
        "[1,,2]",
    ] {
        assert_eq!(
            parse_err(Type::Json, bad, "22P02"),
            "invalid input syntax for type json",
            "{bad:?}"
        );
        parse_err(Type::Jsonb, bad, "22P02");
    }
    parse_err(Type::Jsonb, "\"\\u0000\"", "22P05");
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    parse_err(Type::Json, &deep, "54001");
    binary_err(Type::Jsonb, b"\x02{}", "22P03");
    binary_err(Type::Jsonb, b"", "22P03");
    binary_err(Type::Jsonb, b"\x01{", "22P02");
    binary_err(Type::Json, b"[", "22P02");
}

#[test]
fn jsonb_text_is_normalised_like_jsonb_out() {
    for (input, expected) in [
        ("{\"b\":1,\"a\":2}", "{\"a\": 2, \"b\": 1}"),
        (
            "{\"bb\":1,\"a\":2,\"c\":3}",
            "{\"a\": 2, \"c\": 3, \"bb\": 1}",
        ),
        ("{\"a\":1,\"a\":2}", "{\"a\": 2}"),
        ("[1,2 , 3]", "[1, 2, 3]"),
        ("  {}  ", "{}"),
        ("[[],{}]", "[[], {}]"),
        ("1e2", "100"),
        ("1E-2", "0.01"),
        ("-0", "0"),
        ("-0.0", "0.0"),
        ("1.50", "1.50"),
        ("12.5e-1", "1.25"),
        ("1.5e1", "15"),
        ("-123.456e2", "-12345.6"),
        ("0.001e3", "1"),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        ("1e30", "1000000000000000000000000000000"),
        ("\"a\\/b\\u00e9\\u0001\\ud83d\\ude00\"", "\"a/bé\\u0001😀\""),
        ("\"tab\\there\\\"\\\\\"", "\"tab\\there\\\"\\\\\""),
        (
            "{\"k\": [true, false, null]}",
            "{\"k\": [true, false, null]}",
        ),
        (
            "{\"x\": {\"z\": 1, \"y\": [1.0]}}",
            "{\"x\": {\"y\": [1.0], \"z\": 1}}",
        ),
    ] {
        check_text(Type::Jsonb, input, expected);
        // json keeps the input as given.
        assert_eq!(parse(Type::Json, input), Value::Json(input.into()));
    }
    let mut jsonb = vec![1u8];
    jsonb.extend_from_slice(b"{\"b\":1,\"a\":1e1}");
    assert_eq!(
        decode_binary(Type::Jsonb, &jsonb),
        Ok(Value::Json("{\"a\": 10, \"b\": 1}".into()))
    );
    // numeric's limits: 131072 digits before the point, 16383 after.
    let Value::Json(big) = parse(Type::Jsonb, "1e131071") else {
        panic!()
    };
    assert_eq!(big.len(), 131_072);
    parse_err(Type::Jsonb, "1e131072", "22003");
    let Value::Json(small) = parse(Type::Jsonb, "-1e-16383") else {
        panic!()
    };
    assert_eq!(small.len(), 16_386);
    parse_err(Type::Jsonb, "1e-16384", "22003");
    parse(Type::Json, "1e131072");
    // json does not pair surrogates (PostgreSQL 15 neither); jsonb does.
    for lone in ["\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\""] {
        parse(Type::Json, lone);
        parse_err(Type::Jsonb, lone, "22P02");
    }
}

// ------------------------------------------------------------------ dates and times

#[test]
fn date_texts() {
    for (input, expected) in [
        ("2024-02-29", "2024-02-29"),
        ("2000-01-01", "2000-01-01"),
        ("1999-12-31", "1999-12-31"),
        ("1970-01-01", "1970-01-01"),
        ("0001-01-01", "0001-01-01"),
        ("0001-12-31 BC", "0001-12-31 BC"),
        ("0044-03-15 BC", "0044-03-15 BC"),
        ("4714-11-24 BC", "4714-11-24 BC"),
        ("5874897-12-31", "5874897-12-31"),
        ("10000-01-01", "10000-01-01"),
        ("2024-1-2", "2024-01-02"),
        ("2024/01/02", "2024-01-02"),
        ("20240102", "2024-01-02"),
        ("01/02/2024", "2024-01-02"),
        ("1-2-03", "2003-01-02"),
        ("12-31-99", "1999-12-31"),
        (" 2024-01-02 ", "2024-01-02"),
        ("2024-01-02 AD", "2024-01-02"),
        ("2024-01-02 03:04:05", "2024-01-02"),
        ("2024-01-02T03:04:05+02", "2024-01-02"),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
        ("epoch", "1970-01-01"),
    ] {
        check_text(Type::Date, input, expected);
    }
    assert_eq!(parse(Type::Date, "2000-01-01"), Value::Date(0));
    assert_eq!(parse(Type::Date, "1970-01-01"), Value::Date(-10957));
    assert_eq!(parse(Type::Date, "2000-03-01"), Value::Date(60));
    assert_eq!(parse(Type::Date, "infinity"), Value::Date(i32::MAX));
    assert_eq!(parse(Type::Date, "-infinity"), Value::Date(i32::MIN));
    assert_eq!(binary_of(&Value::Date(-1), Type::Date), [0xff; 4]);
}

#[test]
fn date_errors() {
    assert_eq!(
        parse_err(Type::Date, "2024-13-01", "22008"),
        "date/time field value out of range: \"2024-13-01\""
    );
    for s in [
        "2023-02-29",
        "2024-04-31",
        "2024-00-10",
        "2024-01-00",
        "0000-01-01",
        "0000-01-01 BC",
        "2024-01-02 25:00",
    ] {
        parse_err(Type::Date, s, "22008");
    }
    assert_eq!(
        parse_err(Type::Date, "4714-11-23 BC", "22008"),
        "date out of range: \"4714-11-23 BC\""
    );
    parse_err(Type::Date, "5874898-01-01", "22008");
    assert_eq!(
        parse_err(Type::Date, "garbage", "22007"),
        "invalid input syntax for type date: \"garbage\""
    );
    for s in [
        "",
        "2024",
        "2024-01",
        "2024-01-02x",
        "2024-01-02 garbage",
        "2024-01-02-",
        "12:00",
        "2024-01-02 BC BC",
        "2024--01-02",
        "2024-01/02",
    ] {
        parse_err(Type::Date, s, "22007");
    }
    parse_err(Type::Date, "today", "0A000");
    binary_err(Type::Date, &[0; 3], "22P03");
    binary_err(Type::Date, &(-2_451_546i32).to_be_bytes(), "22008");
    binary_err(Type::Date, &(i32::MAX - 1).to_be_bytes(), "22008");
    assert_eq!(
        decode_binary(Type::Date, &i32::MIN.to_be_bytes()),
        Ok(Value::Date(i32::MIN))
    );
}

#[test]
fn time_texts() {
    for (input, expected) in [
        ("04:05:06", "04:05:06"),
        ("04:05:06.789", "04:05:06.789"),
        ("4:05", "04:05:00"),
        ("00:00:00", "00:00:00"),
        ("23:59:59.999999", "23:59:59.999999"),
        ("24:00:00", "24:00:00"),
        ("23:59:60", "24:00:00"),
        ("12:00:00.1234567", "12:00:00.123457"),
        ("12:00:00.0000004", "12:00:00"),
        ("12:00:00.9999995", "12:00:01"),
        // Fractions are read as a double and rounded half to even, like
        // PostgreSQL: .16207650 is a hair below .1620765.
        ("03:04:05.16207650", "03:04:05.162076"),
        ("04:05:06+02", "04:05:06"),
        ("2024-01-02 04:05:06", "04:05:06"),
        ("allballs", "00:00:00"),
        ("04:05 PM", "16:05:00"),
        ("04:05pm", "16:05:00"),
        ("12:00 AM", "00:00:00"),
        ("12:00:00.5 am", "00:00:00.5"),
        ("12:00 PM", "12:00:00"),
        ("0:30 pm", "12:30:00"),
        ("pm 04:05", "16:05:00"),
        // PostgreSQL reads missing minutes, seconds or fraction as zero.
        ("12:", "12:00:00"),
        ("12:00:", "12:00:00"),
        ("12::", "12:00:00"),
        ("12:00:00.", "12:00:00"),
    ] {
        check_text(Type::Time, input, expected);
    }
    assert_eq!(parse(Type::Time, "00:00:01.5"), Value::Time(1_500_000));
    for s in [
        "25:00:00",
        "24:00:01",
        "12:60:00",
        "12:00:61",
        "24:00:00.5",
        "13:00 PM",
        "24:00 am",
    ] {
        parse_err(Type::Time, s, "22008");
    }
    assert_eq!(
        parse_err(Type::Time, "noon", "22007"),
        "invalid input syntax for type time: \"noon\""
    );
    for s in ["", "12", "2024-01-02", "12:00 x"] {
        parse_err(Type::Time, s, "22007");
    }
    binary_err(Type::Time, &(-1i64).to_be_bytes(), "22008");
    binary_err(Type::Time, &(86_400_000_001i64).to_be_bytes(), "22008");
    binary_err(Type::Time, &[0; 4], "22P03");
}

#[test]
fn timestamp_texts() {
    for (input, expected) in [
        ("2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123456"),
        ("2024-01-02 03:04:05", "2024-01-02 03:04:05"),
        ("2024-01-02T03:04:05.5", "2024-01-02 03:04:05.5"),
        ("2024-01-02t03:04", "2024-01-02 03:04:00"),
        ("2024-01-02", "2024-01-02 00:00:00"),
        ("2024-01-02   03:04:05.100", "2024-01-02 03:04:05.1"),
        ("2024-02-29 23:59:59.999999", "2024-02-29 23:59:59.999999"),
        ("2024-01-02 24:00:00", "2024-01-03 00:00:00"),
        ("1999-12-31 23:59:59", "1999-12-31 23:59:59"),
        ("1900-01-01 00:00:00", "1900-01-01 00:00:00"),
        ("0044-03-15 12:00:00 BC", "0044-03-15 12:00:00 BC"),
        ("4714-11-24 00:00:00 BC", "4714-11-24 00:00:00 BC"),
        (
            "294276-12-31 23:59:59.999999",
            "294276-12-31 23:59:59.999999",
        ),
        ("2024-01-02 03:04:05+02", "2024-01-02 03:04:05"),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
        ("epoch", "1970-01-01 00:00:00"),
    ] {
        check_text(Type::Timestamp, input, expected);
    }
    assert_eq!(
        parse(Type::Timestamp, "2000-01-01 00:00:01"),
        Value::Timestamp(1_000_000)
    );
    assert_eq!(
        parse(Type::Timestamp, "1999-12-31 23:59:59.999999"),
        Value::Timestamp(-1)
    );
    assert_eq!(
        parse(Type::Timestamp, "infinity"),
        Value::Timestamp(i64::MAX)
    );
    assert_eq!(
        parse(Type::Timestamp, "-infinity"),
        Value::Timestamp(i64::MIN)
    );
    assert_eq!(
        binary_of(&Value::Timestamp(1), Type::Timestamp),
        1i64.to_be_bytes()
    );
}

#[test]
fn timestamp_errors() {
    assert_eq!(
        parse_err(Type::Timestamp, "2024-01-02 03:04:05 garbage", "22007"),
        "invalid input syntax for type timestamp: \"2024-01-02 03:04:05 garbage\""
    );
    for s in [
        "",
        "x",
        "03:04:05",
        "2024-01-02 03",
        "2024-01-02 03:04:05 +",
        "2024-01-02X03:04",
        "2024-01-02 03:04:05 03:04",
    ] {
        parse_err(Type::Timestamp, s, "22007");
    }
    assert_eq!(
        parse_err(Type::Timestamp, "2024-13-02 03:04:05", "22008"),
        "date/time field value out of range: \"2024-13-02 03:04:05\""
    );
    parse_err(Type::Timestamp, "2024-01-02 03:61:05", "22008");
    assert_eq!(
        parse_err(Type::Timestamp, "294277-01-01 00:00:00", "22008"),
        "timestamp out of range: \"294277-01-01 00:00:00\""
    );
    parse_err(Type::Timestamp, "4714-11-23 23:59:59 BC", "22008");
    parse_err(Type::Timestamp, "now", "0A000");
    assert_eq!(
        parse_err(Type::Timestamptz, "x", "22007"),
        "invalid input syntax for type timestamp with time zone: \"x\""
    );
    binary_err(Type::Timestamp, &[0; 7], "22P03");
    binary_err(
        Type::Timestamp,
        &(9_223_371_331_200_000_000i64).to_be_bytes(),
        "22008",
    );
    binary_err(
        Type::Timestamptz,
        &(-211_813_488_000_000_001i64).to_be_bytes(),
        "22008",
    );
    assert_eq!(
        decode_binary(Type::Timestamptz, &i64::MAX.to_be_bytes()),
        Ok(Value::Timestamptz(i64::MAX))
    );
}

#[test]
fn timestamptz_texts() {
    for (input, expected) in [
        ("2024-01-02 03:04:05", "2024-01-02 03:04:05+00"),
        ("2024-01-02 03:04:05+02", "2024-01-02 01:04:05+00"),
        ("2024-01-02 03:04:05 +02", "2024-01-02 01:04:05+00"),
        ("2024-01-02 03:04:05Z", "2024-01-02 03:04:05+00"),
        ("2024-01-02T03:04:05.25z", "2024-01-02 03:04:05.25+00"),
        ("2024-01-02 03:04:05 UTC", "2024-01-02 03:04:05+00"),
        ("2024-01-02 03:04:05-0530", "2024-01-02 08:34:05+00"),
        ("2024-01-02 03:04:05+05:30", "2024-01-01 21:34:05+00"),
        ("2024-01-02 03:04:05+05:30:15", "2024-01-01 21:33:50+00"),
        ("2024-01-02 00:30:00+01", "2024-01-01 23:30:00+00"),
        ("2024-01-02 03:04:05+00", "2024-01-02 03:04:05+00"),
        ("0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"),
        ("2024-01-02", "2024-01-02 00:00:00+00"),
        ("infinity", "infinity"),
    ] {
        check_text(Type::Timestamptz, input, expected);
    }
    assert_eq!(
        parse_err(Type::Timestamptz, "2024-01-02 03:04:05+16", "22009"),
        "time zone displacement out of range: \"2024-01-02 03:04:05+16\""
    );
    parse_err(Type::Timestamptz, "2024-01-02 03:04:05+05:60", "22009");
    parse_err(Type::Timestamptz, "2024-01-02 03:04:05+1234567", "22009");
    parse_err(Type::Timestamptz, "2024-01-02 03:04:05+", "22007");
    parse_err(Type::Timestamptz, "2024-01-02 03:04:05 PST", "22007");
    // A Timestamp value described as timestamptz prints with the zone.
    assert_eq!(
        text_of(&Value::Timestamp(0), Type::Timestamptz),
        "2000-01-01 00:00:00+00"
    );
}

// ------------------------------------------------------------------ interval

fn iv(months: i32, days: i32, micros: i64) -> Interval {
    Interval {
        months,
        days,
        micros,
    }
}

const H: i64 = 3_600_000_000;
const M: i64 = 60_000_000;
const S: i64 = 1_000_000;

#[test]
fn interval_output_is_postgres_style() {
    for (v, expected) in [
        (iv(0, 0, 0), "00:00:00"),
        (
            iv(14, 3, 4 * H + 5 * M + 6 * S + 789_000),
            "1 year 2 mons 3 days 04:05:06.789",
        ),
        (iv(0, -1, 2 * H + 3 * M), "-1 days +02:03:00"),
        (iv(0, 1, 0), "1 day"),
        (iv(24, 0, 0), "2 years"),
        (iv(1, 0, 0), "1 mon"),
        (iv(-14, 0, 0), "-1 years -2 mons"),
        (iv(0, 0, -S), "-00:00:01"),
        (iv(1, -1, 0), "1 mon -1 days"),
        (iv(-1, 1, 0), "-1 mons +1 day"),
        (iv(0, 0, 100 * H), "100:00:00"),
        (iv(0, 2, -(H + 500_000)), "2 days -01:00:00.5"),
        (iv(-12, -3, -S), "-1 years -3 days -00:00:01"),
        (iv(-12, 3, S), "-1 years +3 days 00:00:01"),
        (iv(0, -3, -S), "-3 days -00:00:01"),
        (iv(0, 0, 1), "00:00:00.000001"),
        (
            iv(i32::MAX, i32::MAX, i64::MAX),
            "178956970 years 7 mons 2147483647 days 2562047788:00:54.775807",
        ),
        (
            iv(i32::MIN, i32::MIN, i64::MIN),
            "-178956970 years -8 mons -2147483648 days -2562047788:00:54.775808",
        ),
    ] {
        assert_eq!(
            text_of(&Value::Interval(v), Type::Interval),
            expected,
            "{v:?}"
        );
    }
}

#[test]
fn interval_inputs() {
    for (input, expected) in [
        (
            "1 year 2 mons 3 days 04:05:06.789",
            iv(14, 3, 4 * H + 5 * M + 6 * S + 789_000),
        ),
        ("-1 days +02:03:00", iv(0, -1, 2 * H + 3 * M)),
        ("00:00:00", iv(0, 0, 0)),
        ("1 day", iv(0, 1, 0)),
        ("2 years", iv(24, 0, 0)),
        ("@ 1 hour", iv(0, 0, H)),
        ("1 hour 30 minutes", iv(0, 0, H + 30 * M)),
        ("1h 30m 10s", iv(0, 0, H + 30 * M + 10 * S)),
        ("1day", iv(0, 1, 0)),
        ("2 weeks", iv(0, 14, 0)),
        ("1.5 weeks", iv(0, 10, 12 * H)),
        ("3 months", iv(3, 0, 0)),
        ("1.5 months", iv(1, 15, 0)),
        ("1.5 years", iv(18, 0, 0)),
        ("-1.5 days", iv(0, -1, -12 * H)),
        ("1.5 hours", iv(0, 0, 90 * M)),
        ("1 decade 1 century 1 millennium", iv(1110 * 12, 0, 0)),
        ("10 ms 5 us", iv(0, 0, 10_005)),
        ("1 day ago", iv(0, -1, 0)),
        ("1 year 2 hours ago", iv(-12, 0, -2 * H)),
        ("1 2:03:04", iv(0, 1, 2 * H + 3 * M + 4 * S)),
        ("90", iv(0, 0, 90 * S)),
        ("-02:03", iv(0, 0, -(2 * H + 3 * M))),
        ("1:02.5", iv(0, 0, M + 2 * S + 500_000)),
        ("100:00:00", iv(0, 0, 100 * H)),
        ("  1 DAY  ", iv(0, 1, 0)),
        ("P1Y2M3DT4H5M6S", iv(14, 3, 4 * H + 5 * M + 6 * S)),
        ("PT1.5S", iv(0, 0, 1_500_000)),
        ("P1W", iv(0, 7, 0)),
        ("P-1D", iv(0, -1, 0)),
        ("PT36H", iv(0, 0, 36 * H)),
        ("PT", iv(0, 0, 0)),
        ("P1D1D", iv(0, 2, 0)),
        ("P1e2D", iv(0, 100, 0)),
        ("PT-1.5S", iv(0, 0, -1_500_000)),
        ("P-2147483648D", iv(0, i32::MIN, 0)),
        ("1 s 3 ms", iv(0, 0, 1_003_000)),
        ("1-2", iv(14, 0, 0)),
        ("-1-2", iv(-14, 0, 0)),
        ("+1-2 3", iv(14, 0, 3 * S)),
        ("1-2 3 4:05:06", iv(14, 3, 4 * H + 5 * M + 6 * S)),
        ("PT1M", iv(0, 0, M)),
    ] {
        assert_eq!(
            parse(Type::Interval, input),
            Value::Interval(expected),
            "{input:?}"
        );
    }
}

#[test]
fn interval_errors() {
    assert_eq!(
        parse_err(Type::Interval, "1 fortnight", "22007"),
        "invalid input syntax for type interval: \"1 fortnight\""
    );
    for s in [
        "",
        "ago",
        "day",
        "1 day 1 day",
        "1 hour 01:00:00",
        "1 2",
        "P",
        "P1H",
        "PT1D",
        "P1Y2",
        "1 day #",
        "1:2:3:4",
        "1.2.3 days",
        "01:00:00 02:00:00",
        "- 1 day",
    ] {
        parse_err(Type::Interval, s, "22007");
    }
    assert_eq!(
        parse_err(Type::Interval, "999999999999 years", "22015"),
        "interval field value out of range: \"999999999999 years\""
    );
    for s in [
        "3000000000 days",
        "99999999999999999999 us",
        "2562047789 hours",
        "12:60:00",
    ] {
        parse_err(Type::Interval, s, "22015");
    }
    // Fields that fit alone but not folded together: PostgreSQL's 22008.
    for s in [
        "178956971 years",
        "178956970 years 12 mons",
        "2147483647 mons 1 year",
    ] {
        assert_eq!(
            parse_err(Type::Interval, s, "22008"),
            "interval out of range"
        );
    }
    parse_err(Type::Interval, "1-12", "22015");
    for s in [
        "1.5 s 3 ms",
        "3 ms 1.5 s",
        "1 ms 01:00:00",
        " P1D",
        "P1DT1H ",
        "P+1D",
        "P1,5Y",
    ] {
        parse_err(Type::Interval, s, "22007");
    }
    parse_err(Type::Interval, "P2147483648D", "22015");
    parse_err(Type::Interval, "P1e16D", "22015");
    for s in ["p1m", "P1y", "PT1h"] {
        parse_err(Type::Interval, s, "22007");
    }
    binary_err(Type::Interval, &[0; 15], "22P03");
}

#[test]
fn interval_binary_layout() {
    let v = Value::Interval(iv(3, -2, 1));
    let mut expected = 1i64.to_be_bytes().to_vec();
    expected.extend((-2i32).to_be_bytes());
    expected.extend(3i32.to_be_bytes());
    assert_eq!(binary_of(&v, Type::Interval), expected);
    assert_eq!(decode_binary(Type::Interval, &expected), Ok(v));
}

// ------------------------------------------------------------------ encode_binary contract

#[test]
fn binary_encoding_refuses_a_value_of_another_type() {
    let mut out = BytesMut::new();
    for (value, ty) in [
        (Value::Int4(1), Type::Int8),
        (Value::Text("1".into()), Type::Int4),
        (Value::Null, Type::Text),
        (Value::Date(0), Type::Timestamp),
        (Value::Json("{}".into()), Type::Bytea),
    ] {
        let e = encode_binary(&value, ty, &mut out).expect_err("mismatch");
        assert_eq!(e.code.code(), "XX000");
    }
    assert!(out.is_empty());
    // Json values go out as text types and text values as json.
    assert_eq!(binary_of(&Value::Json("[]".into()), Type::Text), b"[]");
    assert_eq!(binary_of(&Value::Text("[]".into()), Type::Json), b"[]");
    assert_eq!(text_of(&Value::Null, Type::Text), "");
}

// ------------------------------------------------------------------ seeded round trips

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        (i128::from(lo) + i128::from(self.below((i128::from(hi) - i128::from(lo)) as u64))) as i64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_value(ty: Type, rng: &mut Rng) -> Value {
    // Some draws come from edge values, most from the whole domain.
    let edge = rng.below(4) == 0;
    match ty {
        Type::Bool => Value::Bool(rng.below(2) == 1),
        Type::Int2 => Value::Int2(if edge {
            rng.pick(&[i16::MIN, i16::MAX, 0, -1])
        } else {
            rng.next() as i16
        }),
        Type::Int4 => Value::Int4(if edge {
            rng.pick(&[i32::MIN, i32::MAX, 0, -1])
        } else {
            rng.next() as i32
        }),
        Type::Int8 => Value::Int8(if edge {
            rng.pick(&[i64::MIN, i64::MAX, 0, -1])
        } else {
            rng.next() as i64
        }),
        Type::Oid => Value::Oid(rng.next() as u32),
        Type::Float4 => loop {
            let f = if edge {
                rng.pick(&[f32::MAX, f32::MIN_POSITIVE, 1e-45, -0.0, f32::INFINITY, 0.1])
            } else {
                f32::from_bits(rng.next() as u32)
            };
            if !f.is_nan() {
                break Value::Float4(f);
            }
        },
        Type::Float8 => loop {
            let f = if edge {
                rng.pick(&[
                    f64::MAX,
                    f64::MIN_POSITIVE,
                    5e-324,
                    -0.0,
                    f64::NEG_INFINITY,
                    0.1,
                ])
            } else {
                f64::from_bits(rng.next())
            };
            if !f.is_nan() {
                break Value::Float8(f);
            }
        },
        Type::Numeric => {
            let mantissa =
                (u128::from(rng.next()) << 32 | u128::from(rng.next() as u32)) >> rng.below(96);
            let signed = if rng.below(2) == 0 {
                mantissa as i128
            } else {
                -(mantissa as i128)
            };
            Value::Numeric(Decimal::from_i128_with_scale(signed, rng.below(29) as u32))
        }
        Type::Text | Type::Varchar | Type::Bpchar | Type::Unknown | Type::Name => {
            let len = rng.below(40);
            let s: String = (0..len)
                .filter_map(|_| {
                    char::from_u32(
                        rng.pick(&[0x20, 0x7f, 0x800, 0x10000, 0x110000]) as u32
                            - 1
                            - rng.below(30) as u32,
                    )
                })
                .filter(|&c| c != '\0')
                .collect();
            if ty == Type::Name {
                // A name value is at most 63 bytes by construction.
                return Value::Text(super::text::truncate_name(&s).to_owned());
            }
            Value::Text(s)
        }
        Type::Bytea => Value::Bytea((0..rng.below(50)).map(|_| rng.next() as u8).collect()),
        Type::Uuid => {
            let mut u = [0u8; 16];
            u.iter_mut().for_each(|b| *b = rng.next() as u8);
            Value::Uuid(u)
        }
        Type::Json | Type::Jsonb => {
            let n = rng.next() as i32;
            let doc = match rng.below(4) {
                0 => format!("{n}"),
                1 => format!("{{\"k{n}\": [{n}, \"vé\\u0001\", null, true, {{}}]}}"),
                2 => format!("[{n}.5, false]"),
                _ => format!("\"s{n}\""),
            };
            Value::Json(doc)
        }
        Type::Date => Value::Date(if edge {
            rng.pick(&[i32::MIN, i32::MAX, -2_451_545, 2_145_031_948, 0, 59, 60])
        } else {
            rng.range(-2_451_545, 2_145_031_949) as i32
        }),
        Type::Time => Value::Time(rng.range(0, 86_400_000_001)),
        Type::Timestamp | Type::Timestamptz => {
            let ts = if edge {
                rng.pick(&[
                    i64::MIN,
                    i64::MAX,
                    -211_813_488_000_000_000,
                    9_223_371_331_199_999_999,
                    0,
                    -1,
                ])
            } else {
                rng.range(-211_813_488_000_000_000, 9_223_371_331_200_000_000)
            };
            if ty == Type::Timestamp {
                Value::Timestamp(ts)
            } else {
                Value::Timestamptz(ts)
            }
        }
        Type::Interval => Value::Interval(if edge {
            iv(
                rng.pick(&[i32::MIN, i32::MAX, 0, -1]),
                rng.pick(&[i32::MIN, i32::MAX, 0, 1]),
                rng.pick(&[i64::MAX, -i64::MAX, 0, -1]),
            )
        } else {
            iv(
                rng.next() as i32,
                rng.next() as i32,
                (rng.next() as i64) >> rng.below(64),
            )
        }),
    }
}

/// Floats compare by bits so that -0.0 and 0.0 stay apart.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float4(x), Value::Float4(y)) => x.to_bits() == y.to_bits(),
        (Value::Float8(x), Value::Float8(y)) => x.to_bits() == y.to_bits(),
        (Value::Numeric(x), Value::Numeric(y)) => x == y && x.scale() == y.scale(),
        _ => a == b,
    }
}

#[test]
fn seeded_round_trips_for_every_type() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for ty in Type::ALL {
        for _ in 0..2000 {
            let v = random_value(ty, &mut rng);
            let bin = binary_of(&v, ty);
            let back =
                decode_binary(ty, &bin).unwrap_or_else(|e| panic!("{} {v:?}: {e}", ty.name()));
            assert!(
                same(&back, &v),
                "{} binary: {v:?} came back as {back:?}",
                ty.name()
            );
            let text = text_of(&v, ty);
            let back = decode_text(ty, text.as_bytes())
                .unwrap_or_else(|e| panic!("{} {text:?}: {e}", ty.name()));
            assert!(
                same(&back, &v),
                "{} text {text:?}: {v:?} came back as {back:?}",
                ty.name()
            );
        }
    }
}

#[test]
fn calendar_matches_a_day_by_day_walk() {
    use super::datetime::{civil_from_days, days_from_civil, days_in_month};
    // Walk from 4714 BC to AD 3000 one day at a time.
    let (mut y, mut m, mut d) = (-4713i64, 11u32, 24u32);
    for days in -2_451_545i64..365 * 1000 {
        assert_eq!(days_from_civil(y, m, d), days);
        assert_eq!(civil_from_days(days), (y, m, d));
        d += 1;
        if d > days_in_month(y, m) {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
}

#[test]
fn decoders_never_panic_on_garbage() {
    // Bytes drawn from the characters the parsers care about, plus raw bytes.
    const ALPHABET: &[u8] = b"0123456789+-.:eEtTzZpPyYmMdDhHsSwW bcadgo{}[]\",\\xu@/";
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    for ty in Type::ALL {
        for round in 0..3000 {
            let len = rng.below(24) as usize;
            let raw: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 4 == 0 {
                        rng.next() as u8
                    } else {
                        ALPHABET[rng.below(ALPHABET.len() as u64) as usize]
                    }
                })
                .collect();
            // Only the absence of a panic is checked; errors must be PgErrors.
            let _ = decode_text(ty, &raw);
            let _ = decode_binary(ty, &raw);
            // Values that decode must print and re-encode without panicking.
            if let Ok(v) = decode_text(ty, &raw) {
                let _ = text_of(&v, ty);
                let mut out = BytesMut::new();
                encode_binary(&v, ty, &mut out).expect("decoded values fit their type");
            }
        }
    }
}

#[test]
fn numeric_binary_decoder_never_panics_on_random_headers() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for _ in 0..20_000 {
        let ndigits = rng.below(12) as u16;
        let wild = rng.next() as u16;
        let words = [
            if rng.below(10) == 0 { wild } else { ndigits },
            rng.pick(&[0, 1, 7, 8, 0x7fff, 0x8000, 0xffff, 0xfffe, wild]),
            rng.pick(&[0, 0x4000, 0xC000, 0xD000, 0xF000, wild]),
            rng.pick(&[0, 1, 4, 28, 29, 0x3fff, 0x4000, wild]),
        ];
        let mut raw: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        for _ in 0..ndigits {
            let digit = if rng.below(20) == 0 {
                rng.next() as u16
            } else {
                rng.below(10_000) as u16
            };
            raw.extend(digit.to_be_bytes());
        }
        if let Ok(v) = decode_binary(Type::Numeric, &raw) {
            let bin = binary_of(&v, Type::Numeric);
            assert_eq!(decode_binary(Type::Numeric, &bin), Ok(v));
        }
    }
}
