//! Unit tests per function: bind a SQL expression of constants, evaluate it
//! and compare the text form (or the SQLSTATE of the error). The expected
//! answers were checked against PostgreSQL 15.

use std::cell::Cell;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use teller_net::types::{encode_text, Type, Value};
use teller_net::PgResult;

use crate::expr::{self, BindContext, EvalContext};

/// 2024-01-02 03:04:05.678901 UTC.
const NOW_MICROS: i64 = 1_704_164_645_678_901;

struct Cx {
    random: Cell<u64>,
}

impl EvalContext for Cx {
    fn param(&self, _: usize) -> &Value {
        &Value::Null
    }
    fn setting(&self, name: &str) -> PgResult<String> {
        Ok(format!("setting {name}"))
    }
    fn database(&self) -> &str {
        "db"
    }
    fn user(&self) -> &str {
        "me"
    }
    fn process_id(&self) -> i32 {
        7
    }
    fn now_micros(&self) -> i64 {
        NOW_MICROS
    }
    fn request_sleep(&self, _: f64) {}
    fn random_u64(&self) -> PgResult<u64> {
        // A counter is random enough to check the bit twiddling.
        let next = self.random.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.random.set(next);
        Ok(next)
    }
}

/// Evaluates `sql` (an expression) to its type and value.
fn eval(sql: &str) -> PgResult<(Type, Value)> {
    let ast = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut params = Vec::new();
    let bound = expr::bind(&ast, &mut BindContext::new(&mut params))?;
    let ty = bound.ty(&params);
    let cx = Cx {
        random: Cell::new(1),
    };
    Ok((ty, expr::eval(&bound, &cx)?))
}

/// The text form of `sql`'s value, `NULL` for null.
fn text(sql: &str) -> String {
    let (ty, value) = eval(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    if value.is_null() {
        return "NULL".into();
    }
    let mut out = bytes::BytesMut::new();
    encode_text(&value, ty, &mut out);
    String::from_utf8(out.to_vec()).expect("text forms are UTF-8")
}

fn check(cases: &[(&str, &str)]) {
    for (sql, want) in cases {
        assert_eq!(text(sql), *want, "{sql}");
    }
}

/// `sql` fails with SQLSTATE `code`.
fn fails(cases: &[(&str, &str)]) {
    for (sql, code) in cases {
        match eval(sql) {
            Ok(v) => panic!("{sql}: expected {code}, got {v:?}"),
            Err(e) => assert_eq!(e.code.code(), *code, "{sql}: {}", e.message),
        }
    }
}

fn type_of(sql: &str) -> Type {
    eval(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}")).0
}

#[test]
fn abs_keeps_the_type_and_checks_overflow() {
    check(&[
        ("abs(-5)", "5"),
        ("abs(-5.50)", "5.50"),
        ("abs(-2.5::float8)", "2.5"),
    ]);
    assert_eq!(type_of("abs(-3::int2)"), Type::Int2);
    fails(&[("abs(-2147483648)", "22003"), ("abs('x'::text)", "42883")]);
}

#[test]
fn round_and_trunc_pick_float_or_numeric() {
    check(&[
        ("round(5.5)", "6"),
        ("round(-2.5)", "-3"),
        ("round(2.5::float8)", "2"),
        ("round(1.2345, 2)", "1.23"),
        ("round(1.2, 3)", "1.200"),
        ("round(1234.5, -2)", "1200"),
        ("round(-1.005, 2)", "-1.01"),
        ("trunc(-1.7)", "-1"),
        ("trunc(1.2399, 2)", "1.23"),
        ("trunc(1299, -2)", "1200"),
        ("round(5, -40)", "0"),
    ]);
    assert_eq!(type_of("round(5)"), Type::Float8);
    assert_eq!(type_of("round(5.5)"), Type::Numeric);
    fails(&[("round(1.5::float8, 1)", "42883")]);
}

#[test]
fn ceil_floor_sign() {
    check(&[
        ("ceil(-0.5)", "0"),
        ("ceiling(1.2)", "2"),
        ("floor(-1.5)", "-2"),
        ("floor(2.7::float8)", "2"),
        ("sign(-3.5)", "-1"),
        ("sign(0)", "0"),
        ("sign(2.0::float8)", "1"),
    ]);
    assert_eq!(type_of("ceil(5)"), Type::Float8);
}

#[test]
fn mod_and_div() {
    check(&[
        ("mod(7, 3)", "1"),
        ("mod(-7, 3)", "-1"),
        ("mod(7.5, 2)", "1.5"),
        ("mod(-9223372036854775808, -1)", "0"),
        ("div(7, 2)", "3"),
        ("div(-7.5, 2)", "-3"),
    ]);
    assert_eq!(type_of("mod(7::int8, 3)"), Type::Int8);
    fails(&[
        ("mod(5, 0)", "22012"),
        ("mod(5.0, 0)", "22012"),
        ("div(1, 0)", "22012"),
        ("mod(1.5::float8, 1)", "42883"),
    ]);
}

#[test]
fn power_and_sqrt_scales_and_domains() {
    check(&[
        ("power(2, 3)", "8"),
        ("power(2.0, 3)", "8.0000000000000000"),
        ("power(2.0, -2)", "0.2500000000000000"),
        ("pow(4, 0.5)", "2.0000000000000000"),
        ("sqrt(4)", "2"),
        ("sqrt(2.0)", "1.414213562373095"),
        ("sqrt(12345)", "111.1080555135405"),
        ("sqrt(0.0001)", "0.01000000000000000"),
    ]);
    fails(&[
        ("power(0, -1)", "2201F"),
        ("power(0.0, -1)", "2201F"),
        ("power(-8, 0.5)", "2201F"),
        ("power(10, 400)", "22003"),
        ("power(10, -400)", "22003"),
        ("sqrt(-1)", "2201F"),
        ("sqrt(-1.0)", "2201F"),
    ]);
}

#[test]
fn random_and_uuids_come_from_the_context() {
    let (_, v) = eval("random()").expect("random");
    let Value::Float8(f) = v else { panic!("{v:?}") };
    assert!((0.0..1.0).contains(&f));
    let uuid = text("gen_random_uuid()");
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
    assert!("89ab".contains(&uuid[19..20]), "RFC 4122 variant: {uuid}");
}

#[test]
fn lengths_and_case() {
    check(&[
        ("length('héllo')", "5"),
        ("char_length('abc')", "3"),
        ("octet_length('é')", "2"),
        ("length('\\x0102'::bytea)", "2"),
        ("upper('abc')", "ABC"),
        ("lower('ÀB')", "àb"),
        ("initcap('hello wORLD foo-bar')", "Hello World Foo-Bar"),
        ("upper(NULL)", "NULL"),
    ]);
}

#[test]
fn substrings_and_positions() {
    check(&[
        ("substr('abcdef', 2, 3)", "bcd"),
        ("substr('abcdef', 3)", "cdef"),
        ("substring('abcdef' from -1 for 3)", "a"),
        ("substring('héllo' from 2 for 2)", "él"),
        ("substr('abc', 10)", ""),
        ("position('b' in 'abc')", "2"),
        ("strpos('ééa', 'a')", "3"),
        ("strpos('abc', 'z')", "0"),
        ("position('' in 'abc')", "1"),
    ]);
    fails(&[("substr('abc', 2, -1)", "22011")]);
}

#[test]
fn trims_pads_and_slices() {
    check(&[
        ("trim(both 'x' from 'xxaxx')", "a"),
        ("trim(trailing 'y' from 'yay')", "ya"),
        ("btrim('  a  ')", "a"),
        ("ltrim('xxa', 'x')", "a"),
        ("rtrim('axx', 'x')", "a"),
        ("btrim('xyaxy', 'xy')", "a"),
        ("lpad('ab', 5)", "   ab"),
        ("rpad('ab', 5, 'xy')", "abxyx"),
        ("lpad('abc', 2)", "ab"),
        ("lpad('ab', -1)", ""),
        ("lpad('ab', 5, '')", "ab"),
        ("left('abc', 2)", "ab"),
        ("left('abc', -1)", "ab"),
        ("left('abc', -5)", ""),
        ("right('abc', 2)", "bc"),
        ("right('abc', -1)", "bc"),
        ("right('abc', 9)", "abc"),
    ]);
    fails(&[("lpad('a', 100000000, 'é')", "54000")]);
}

#[test]
fn concatenation_and_repetition() {
    check(&[
        ("concat('a', 1, NULL, true)", "a1t"),
        ("concat_ws(',', 1, NULL, 'a')", "1,a"),
        ("concat_ws(NULL, 'a')", "NULL"),
        ("repeat('ab', 3)", "ababab"),
        ("repeat('ab', -1)", ""),
        ("reverse('abc')", "cba"),
        ("replace('abca', 'a', 'x')", "xbcx"),
        ("replace('abc', '', 'x')", "abc"),
        ("translate('abc', 'ab', 'x')", "xc"),
    ]);
    fails(&[
        ("repeat('abcdefgh', 100000000)", "54000"),
        ("concat()", "42883"),
    ]);
}

#[test]
fn split_part_and_starts_with() {
    check(&[
        ("split_part('a,b,c', ',', 2)", "b"),
        ("split_part('a,b,c', ',', -1)", "c"),
        ("split_part('a,b,c', ',', -4)", ""),
        ("split_part('a,b', ',', 5)", ""),
        ("split_part('abc', '', 1)", "abc"),
        ("starts_with('abc', 'ab')", "t"),
        ("starts_with('abc', 'b')", "f"),
    ]);
    fails(&[("split_part('a,b', ',', 0)", "22023")]);
}

#[test]
fn hashes_hex_and_characters() {
    check(&[
        ("md5('a')", "0cc175b9c0f1b6a831c399e269772661"),
        ("md5('')", "d41d8cd98f00b204e9800998ecf8427e"),
        ("md5('a'::bytea)", "0cc175b9c0f1b6a831c399e269772661"),
        ("to_hex(255)", "ff"),
        ("to_hex(-1)", "ffffffff"),
        ("to_hex(-1::int8)", "ffffffffffffffff"),
        ("chr(65)", "A"),
        ("chr(233)", "é"),
        ("ascii('A')", "65"),
        ("ascii('')", "0"),
    ]);
    fails(&[
        ("chr(0)", "54000"),
        ("chr(-1)", "22023"),
        ("chr(1114112)", "54000"),
        ("chr(55296)", "54000"),
    ]);
}

#[test]
fn encode_and_decode() {
    check(&[
        ("encode('abc'::bytea, 'base64')", "YWJj"),
        ("encode('ab'::bytea, 'BASE64')", "YWI="),
        ("encode('abc'::bytea, 'hex')", "616263"),
        ("encode('a\\000b\\\\'::bytea, 'escape')", "a\\000b\\\\"),
        ("decode('YWJj', 'base64')", "\\x616263"),
        ("decode('YW Jj\n', 'base64')", "\\x616263"),
        ("decode('YWI=', 'base64')", "\\x6162"),
        ("decode('61 62', 'hex')", "\\x6162"),
        ("decode('a\\000b', 'escape')", "\\x610062"),
        ("decode('YQ==YQ==', 'base64')", "\\x6161"),
    ]);
    let long = text("encode(decode(repeat('ab', 60), 'hex'), 'base64')");
    assert_eq!(long.find('\n'), Some(76));
    fails(&[
        ("decode('zz', 'hex')", "22023"),
        ("decode('abc', 'hex')", "22023"),
        ("decode('abc', 'base64')", "22023"),
        ("decode('a*bc', 'base64')", "22023"),
        ("decode('YQ=a', 'base64')", "22023"),
        ("encode('a'::bytea, 'foo')", "22023"),
        ("decode('\\9', 'escape')", "22P02"),
    ]);
}

#[test]
fn clocks() {
    check(&[
        ("now()", "2024-01-02 03:04:05.678901+00"),
        ("statement_timestamp()", "2024-01-02 03:04:05.678901+00"),
        ("clock_timestamp()", "2024-01-02 03:04:05.678901+00"),
        ("current_timestamp", "2024-01-02 03:04:05.678901+00"),
        ("current_date", "2024-01-02"),
    ]);
}

#[test]
fn date_trunc_units() {
    check(&[
        (
            "date_trunc('month', timestamp '2024-03-15 10:11:12')",
            "2024-03-01 00:00:00",
        ),
        (
            "date_trunc('week', timestamp '2024-03-15 10:11:12')",
            "2024-03-11 00:00:00",
        ),
        (
            "date_trunc('HOURS', timestamp '2024-03-15 10:11:12.5')",
            "2024-03-15 10:00:00",
        ),
        (
            "date_trunc('quarter', timestamp '2024-08-15')",
            "2024-07-01 00:00:00",
        ),
        (
            "date_trunc('decade', timestamp '2024-08-15')",
            "2020-01-01 00:00:00",
        ),
        (
            "date_trunc('century', timestamp '2024-08-15')",
            "2001-01-01 00:00:00",
        ),
        (
            "date_trunc('millennium', timestamp '2024-08-15')",
            "2001-01-01 00:00:00",
        ),
        (
            "date_trunc('milliseconds', timestamp '2024-01-01 00:00:00.123456')",
            "2024-01-01 00:00:00.123",
        ),
        (
            "date_trunc('day', timestamptz '2024-03-15 10:11:12+00')",
            "2024-03-15 00:00:00+00",
        ),
        (
            "date_trunc('month', date '2024-03-15')",
            "2024-03-01 00:00:00+00",
        ),
        (
            "date_trunc('day', timestamp '1999-12-31 23:59:59')",
            "1999-12-31 00:00:00",
        ),
    ]);
    fails(&[("date_trunc('foo', timestamp '2024-01-01')", "22023")]);
}

#[test]
fn extract_and_date_part() {
    check(&[
        ("extract(year from date '2024-03-15')", "2024"),
        (
            "extract(second from timestamp '2024-01-01 10:11:12.345')",
            "12.345000",
        ),
        ("extract(epoch from date '2024-01-01')", "1704067200"),
        (
            "extract(epoch from timestamp '2024-01-01')",
            "1704067200.000000",
        ),
        ("extract(dow from timestamp '2024-01-07')", "0"),
        ("extract(isodow from date '2024-01-07')", "7"),
        ("extract(doy from date '2024-12-31')", "366"),
        ("extract(week from date '2024-12-30')", "1"),
        ("extract(week from date '2021-01-03')", "53"),
        ("extract(isoyear from date '2021-01-03')", "2020"),
        ("extract(julian from date '2024-01-01')", "2460311"),
        (
            "extract(milliseconds from timestamp '2024-01-01 10:11:12.345')",
            "12345.000",
        ),
        ("extract(microseconds from time '10:11:12.345')", "12345000"),
        ("extract(month from '14 months'::interval)", "2"),
        ("extract(epoch from '1 year'::interval)", "31557600.000000"),
        ("extract(year from date '0044-03-15 BC')", "-44"),
        ("extract(century from date '0044-03-15 BC')", "-1"),
        ("date_part('year', date '2024-03-15')", "2024"),
        (
            "date_part('second', timestamp '2024-01-01 10:11:12.345')",
            "12.345",
        ),
        ("date_part('hour', date '2024-03-15')", "0"),
    ]);
    assert_eq!(
        type_of("extract(year from date '2024-03-15')"),
        Type::Numeric
    );
    assert_eq!(
        type_of("date_part('year', date '2024-03-15')"),
        Type::Float8
    );
    fails(&[
        ("extract(hour from date '2024-01-01')", "0A000"),
        ("extract(foo from timestamp '2024-01-01')", "22023"),
        ("extract(timezone from timestamp '2024-01-01')", "0A000"),
        ("date_part('year', 5)", "42883"),
    ]);
}

#[test]
fn age_borrows_like_postgres() {
    check(&[
        (
            "age(timestamp '2024-03-15', timestamp '2023-01-20')",
            "1 year 1 mon 26 days",
        ),
        (
            "age(timestamp '2024-01-31', timestamp '2024-03-01')",
            "-1 mons -1 days",
        ),
        (
            "age(timestamp '2024-01-01 10:00', timestamp '2024-01-01 12:30')",
            "-02:30:00",
        ),
        ("age(timestamp '2023-12-25 12:00')", "7 days 12:00:00"),
    ]);
}

#[test]
fn make_date_validates_fields() {
    check(&[
        ("make_date(2024, 2, 29)", "2024-02-29"),
        ("make_date(-44, 3, 15)", "0044-03-15 BC"),
    ]);
    fails(&[
        ("make_date(2024, 2, 30)", "22008"),
        ("make_date(2023, 2, 29)", "22008"),
        ("make_date(0, 1, 1)", "22008"),
        ("make_date(2024, 13, 1)", "22008"),
        ("make_date(-5000, 1, 1)", "22008"),
    ]);
}

#[test]
fn to_char_dates() {
    let at = "timestamptz '2024-01-07 00:05:09.012345+00'";
    check(&[
        (
            "to_char(timestamp '2024-03-05 14:07:09.123456', 'FMMonth DD, YYYY HH12:MI:SS AM US MS')",
            "March 05, 2024 02:07:09 PM 123456 123",
        ),
        ("to_char(date '2024-03-05', 'Dy Mon DDD')", "Tue Mar 065"),
        (&format!("to_char({at}, 'Day, DD Month YYYY')"), "Sunday   , 07 January   2024"),
        (&format!("to_char({at}, 'DDD D ID IW IYYY Q CC J')"), "007 1 7 01 2024 1 21 2460317"),
        (&format!("to_char({at}, 'HH12 AM a.m. pm')"), "12 AM a.m. am"),
        (&format!("to_char({at}, 'YY Y MS US SSSS')"), "24 4 012 012345 309"),
        (&format!("to_char({at}, '\"Year:\" YYYY')"), "Year: 2024"),
        (&format!("to_char({at}, 'DDth FMDDth Mon TZ OF')"), "07th 7th Jan UTC +00"),
        ("to_char(date '2024-03-22', 'DDth DAY month')", "22nd FRIDAY    march    "),
    ]);
}

#[test]
fn to_char_numbers() {
    check(&[
        ("to_char(-1234.567, 'S9,999.99')", "-1,234.57"),
        ("to_char(5, '000')", " 005"),
        ("to_char(12345, '999')", " ###"),
        ("to_char(0.5, 'FM990.999')", "0.5"),
        ("to_char(-5, '999MI')", "  5-"),
        ("to_char(0, '999')", "   0"),
        ("to_char(0.5, '9.99')", "  .50"),
        ("to_char(-0.5, '9.99')", " -.50"),
        ("to_char(-5, '9,999')", "    -5"),
        ("to_char(1234, '9G999D99')", " 1,234.00"),
        ("to_char(5, 'S999')", "  +5"),
        ("to_char(-5, '999S')", "  5-"),
        ("to_char(-5, 'FM999')", "-5"),
        ("to_char(123.456, 'FM999.990')", "123.456"),
        ("to_char(2.5, '9')", " 3"),
        ("to_char(12.3::float8, '999.999')", "  12.300"),
        ("to_char(1e20::float8, '9999')", " ####"),
        ("to_char(5, '999PL')", "   5+"),
        ("to_char(-5, '999PR')", "  <5>"),
        ("to_char(12, '99th')", " 12th"),
        ("to_char(0, 'FM9.99')", "0."),
        ("to_char(1.5, 'FM0.00')", "1.50"),
        ("to_char(-0.001, '9.99')", "  .00"),
    ]);
    fails(&[
        ("to_char(1, '9.9EEEE')", "0A000"),
        ("to_char(true, '9')", "42883"),
    ]);
}

#[test]
fn conditional_functions() {
    check(&[
        ("coalesce(NULL, 2, 3)", "2"),
        ("coalesce(NULL, NULL)", "NULL"),
        ("nullif(1, 1)", "NULL"),
        ("nullif(1, 2)", "1"),
        ("greatest(1, 2.5, NULL)", "2.5"),
        ("least('b', 'a', 'c')", "a"),
        ("greatest(NULL, NULL)", "NULL"),
    ]);
    fails(&[("coalesce(1, 'x'::text)", "42804"), ("nullif(1)", "42883")]);
}

#[test]
fn unknown_functions_name_their_argument_types() {
    let err = eval("no_such(1, 'a'::text, 1.5::float8)").expect_err("undefined");
    assert_eq!(err.code.code(), "42883");
    assert_eq!(
        err.message,
        "function no_such(integer, text, double precision) does not exist"
    );
    assert!(err.hint.is_some());
    fails(&[("other_schema.abs(1)", "42883"), ("lpad(1)", "42883")]);
}
