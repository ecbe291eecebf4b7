//! Text and binary codecs for [`Value`]s. (Placeholder; being written.)

use bytes::BytesMut;

use super::{Type, Value};
use crate::error::PgResult;

/// Appends the text form of a non-null `value` (as PostgreSQL prints it with
/// DateStyle ISO and TimeZone UTC) to `out`.
pub fn encode_text(value: &Value, ty: Type, out: &mut BytesMut) {
    let _ = (value, ty, out);
    unimplemented!("codec placeholder")
}

/// Appends the binary (send) form of a non-null `value` of type `ty` to `out`.
pub fn encode_binary(value: &Value, ty: Type, out: &mut BytesMut) -> PgResult<()> {
    let _ = (value, ty, out);
    unimplemented!("codec placeholder")
}

/// Parses the text form of a value of type `ty`.
pub fn decode_text(ty: Type, raw: &[u8]) -> PgResult<Value> {
    let _ = (ty, raw);
    unimplemented!("codec placeholder")
}

/// Parses the binary (recv) form of a value of type `ty`.
pub fn decode_binary(ty: Type, raw: &[u8]) -> PgResult<Value> {
    let _ = (ty, raw);
    unimplemented!("codec placeholder")
}
