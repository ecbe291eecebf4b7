//! Byte encodings of SQL data for the KV store.
//!
//! - [`key`]: the order-preserving (memcomparable) encoding of index keys,
//!   `/table_id/index_id/<columns>`, where comparing encoded bytes with
//!   `memcmp` gives PostgreSQL's order of the values, NULLs and `DESC`
//!   included. Used for primary and secondary index keys.
//! - [`row`]: the compact, column-id-tagged encoding of the non-key columns of
//!   a row, stored as the KV value. Not ordered; built so that adding or
//!   dropping a column never rewrites existing rows.
//!
//! Both decoders treat their input as untrusted: bytes come from storage, and
//! a corrupt or truncated encoding is a `XX001` (`data_corrupted`) error,
//! never a panic. Encoding errors (a value of the wrong type for its column, a
//! type that has no key encoding) are bugs of the caller or unsupported
//! features and are reported as `XX000` or `0A000`.

pub mod key;
pub mod row;
#[cfg(test)]
pub(crate) mod testing;

use teller_net::{PgError, SqlState};

/// SQLSTATE `XX001`: stored bytes do not decode.
pub const DATA_CORRUPTED: SqlState = SqlState("XX001");

/// The error for undecodable stored bytes.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> PgError {
    PgError::new(DATA_CORRUPTED, format!("corrupt encoding: {what}"))
}

/// Takes `n` bytes off the front of `input`.
pub(crate) fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], PgError> {
    if input.len() < n {
        return Err(corrupt(format!(
            "{what}: needs {n} bytes, {} left",
            input.len()
        )));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// Takes exactly `N` bytes off the front of `input`, as an array.
pub(crate) fn take_array<const N: usize>(
    input: &mut &[u8],
    what: &str,
) -> Result<[u8; N], PgError> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(input, N, what)?);
    Ok(out)
}

/// Takes one byte off the front of `input`.
pub(crate) fn take_byte(input: &mut &[u8], what: &str) -> Result<u8, PgError> {
    Ok(take_array::<1>(input, what)?[0])
}
