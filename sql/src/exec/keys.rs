//! Byte keys of values for hashing and equality (GROUP BY, DISTINCT, hash
//! joins, set operations, IN sets): the memcomparable key encoding, under
//! which values SQL calls equal have equal bytes (`1.5` and `1.50`, `-0.0`
//! and `0.0`, every NaN), and integers of all widths share one encoding.
//! JSON, which has no key encoding, is compared by its text.

use teller_net::types::{Type, Value};
use teller_net::PgResult;

use crate::encoding::key::{encode_value, KeyColumn};

/// Marker of a JSON value (above every key marker but NULL's `0xFF`).
const JSON_MARKER: u8 = 0xFE;

fn put(out: &mut Vec<u8>, v: &Value) -> PgResult<()> {
    match v {
        Value::Json(s) => {
            out.push(JSON_MARKER);
            for &b in s.as_bytes() {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0, 1]);
            Ok(())
        }
        Value::Null => encode_value(out, v, KeyColumn::asc(Type::Text)),
        other => encode_value(out, other, KeyColumn::asc(other.natural_type())),
    }
}

/// The key of one value.
pub fn value_key(v: &Value) -> PgResult<Vec<u8>> {
    let mut out = Vec::new();
    put(&mut out, v)?;
    Ok(out)
}

/// The key of several values (prefix-free, so concatenation is safe).
pub fn row_key(values: &[Value]) -> PgResult<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        put(&mut out, v)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use teller_net::types::Decimal;

    #[test]
    fn equal_values_have_equal_keys() {
        assert_eq!(
            value_key(&Value::Int4(5)).unwrap(),
            value_key(&Value::Int8(5)).unwrap()
        );
        assert_eq!(
            value_key(&Value::Numeric(Decimal::new(150, 2))).unwrap(),
            value_key(&Value::Numeric(Decimal::new(15, 1))).unwrap()
        );
        assert_eq!(
            value_key(&Value::Float8(-0.0)).unwrap(),
            value_key(&Value::Float8(0.0)).unwrap()
        );
        assert_ne!(
            value_key(&Value::Null).unwrap(),
            value_key(&Value::Text(String::new())).unwrap()
        );
        assert_ne!(
            row_key(&[Value::Text("a".into()), Value::Text("bc".into())]).unwrap(),
            row_key(&[Value::Text("ab".into()), Value::Text("c".into())]).unwrap()
        );
        assert_eq!(
            value_key(&Value::Json("{}".into())).unwrap(),
            value_key(&Value::Json("{}".into())).unwrap()
        );
    }
}
