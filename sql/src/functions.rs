//! Built-in scalar functions: resolution of a call to one of PostgreSQL's
//! signatures at bind time, and evaluation.
//!
//! - **Resolution** follows PostgreSQL's rules closely enough that result
//!   types match: an argument may reach a parameter type by an implicit cast
//!   only (integers widen to numeric and then to float, text types mix, dates
//!   become timestamps). Where several signatures fit, an exact match on a
//!   `numeric` argument picks the numeric variant; otherwise the preferred type
//!   `double precision` wins, as in PostgreSQL (`round(5)` is a float).
//!   No fit is `42883 function f(int4) does not exist` with PostgreSQL's hint.
//! - **NULLs.** Functions are strict (a NULL argument gives NULL) except
//!   `concat`, `concat_ws`, `coalesce`, `nullif`, `greatest` and `least`.
//! - **Errors** carry PostgreSQL's SQLSTATEs: 22003 out of range, 22012
//!   division by zero, 22011 substring length, 2201F power and root domain,
//!   22023 bad parameter values, 22008 date fields, 54000 oversized results.
//! - **Sans-I/O.** Time and randomness come from the [`EvalContext`]; no
//!   function reads a clock or a global random number generator.

mod datetime;
mod math;
mod text;
mod to_char;

#[cfg(test)]
mod tests;

use sqlparser::ast;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use crate::expr::{
    bind_depth, coerce, coerce_to_text, common_type, eval, is_numeric, is_text, BindContext,
    EvalContext, Expr,
};

/// Longest text or bytea a function may build, in bytes (PostgreSQL allows
/// 1 GB; a session should not be able to allocate that much with `repeat`).
pub const RESULT_BYTES_MAX: usize = 64 * 1024 * 1024;

pub(crate) const SUBSTRING_ERROR: SqlState = SqlState("22011");
pub(crate) const INVALID_ARGUMENT_FOR_POWER: SqlState = SqlState("2201F");

/// Built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    // Session and system information.
    Version,
    CurrentSetting,
    PgSleep,
    CurrentDatabase,
    CurrentUser,
    CurrentSchema,
    BackendPid,
    // Time.
    /// `now()`, `transaction_timestamp()`, `CURRENT_TIMESTAMP`.
    Now,
    StatementTimestamp,
    ClockTimestamp,
    CurrentDate,
    DateTrunc,
    /// `date_part(text, x)`: double precision.
    DatePart,
    /// `EXTRACT(field FROM x)`: numeric.
    Extract,
    Age,
    MakeDate,
    ToChar,
    // Conditional.
    Coalesce,
    NullIf,
    Greatest,
    Least,
    // Math.
    Abs,
    Round,
    Trunc,
    Ceil,
    Floor,
    Sign,
    Mod,
    Div,
    Power,
    Sqrt,
    Random,
    GenRandomUuid,
    // Text.
    Upper,
    Lower,
    Length,
    OctetLength,
    Substr,
    StrPos,
    Replace,
    Btrim,
    Ltrim,
    Rtrim,
    Lpad,
    Rpad,
    Left,
    Right,
    Concat,
    ConcatWs,
    Repeat,
    Reverse,
    Initcap,
    SplitPart,
    StartsWith,
    Translate,
    Md5,
    ToHex,
    Chr,
    Ascii,
    Encode,
    Decode,
}

impl Func {
    /// Strict functions return NULL as soon as one argument is NULL.
    fn is_strict(self) -> bool {
        !matches!(
            self,
            Func::Coalesce
                | Func::NullIf
                | Func::Greatest
                | Func::Least
                | Func::Concat
                | Func::ConcatWs
                | Func::PgSleep
        )
    }
}

/// The name PostgreSQL's messages give a type (`format_type`).
pub(crate) fn display_name(ty: Type) -> &'static str {
    match ty {
        Type::Bool => "boolean",
        Type::Int2 => "smallint",
        Type::Int4 => "integer",
        Type::Int8 => "bigint",
        Type::Float4 => "real",
        Type::Float8 => "double precision",
        Type::Varchar => "character varying",
        Type::Bpchar => "character",
        Type::Time => "time without time zone",
        Type::Timestamp => "timestamp without time zone",
        Type::Timestamptz => "timestamp with time zone",
        other => other.name(),
    }
}

/// `42883 function name(types) does not exist`, as PostgreSQL words it.
pub(crate) fn undefined_function(name: &str, types: &[Type]) -> PgError {
    let list: Vec<_> = types.iter().map(|&t| display_name(t)).collect();
    PgError::new(
        SqlState::UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", list.join(", ")),
    )
    .with_hint(
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    )
}

/// Whether a value of type `from` reaches a parameter of type `to` by an
/// implicit cast (PostgreSQL's `pg_cast` entries marked implicit).
pub(crate) fn can_implicit(from: Type, to: Type) -> bool {
    let rank = |t: Type| match t {
        Type::Int2 => Some(0),
        Type::Int4 => Some(1),
        Type::Int8 => Some(2),
        Type::Numeric => Some(3),
        Type::Float4 => Some(4),
        Type::Float8 => Some(5),
        _ => None,
    };
    from == to
        || from == Type::Unknown
        || (is_text(from) && is_text(to))
        || matches!((rank(from), rank(to)), (Some(a), Some(b)) if a <= b)
        || matches!(
            (from, to),
            (Type::Date, Type::Timestamp | Type::Timestamptz)
                | (Type::Timestamp, Type::Timestamptz)
        )
}

/// A call being resolved: its name and arguments.
struct Call<'c, 'a> {
    name: &'c str,
    args: Vec<Expr>,
    types: Vec<Type>,
    cx: &'c mut BindContext<'a>,
}

impl Call<'_, '_> {
    fn undefined(&self) -> PgError {
        undefined_function(self.name, &self.types)
    }

    /// The arguments coerced to `params`, or 42883 if they do not fit.
    fn fit(&mut self, params: &[Type]) -> PgResult<Vec<Expr>> {
        if params.len() != self.args.len()
            || !self
                .types
                .iter()
                .zip(params)
                .all(|(&f, &t)| can_implicit(f, t))
        {
            return Err(self.undefined());
        }
        // Castability was checked above against PostgreSQL's implicit casts,
        // which are more than `coerce` allows on its own (date to timestamptz).
        let args = std::mem::take(&mut self.args);
        args.into_iter()
            .zip(params)
            .map(|(a, &t)| coerce(a, t, self.cx, true))
            .collect()
    }

    /// Like [`Call::fit`] for the first signature (by arity) that fits.
    fn fit_any(&mut self, signatures: &[&[Type]]) -> PgResult<Vec<Expr>> {
        for params in signatures {
            if params.len() == self.args.len()
                && self
                    .types
                    .iter()
                    .zip(*params)
                    .all(|(&f, &t)| can_implicit(f, t))
            {
                return self.fit(params);
            }
        }
        Err(self.undefined())
    }

    /// Numeric variant when an argument is exactly numeric, else float8.
    fn float_or_numeric(&self) -> Type {
        if self.types.contains(&Type::Numeric) {
            Type::Numeric
        } else {
            Type::Float8
        }
    }

    /// The common integer or numeric type of the arguments (for `mod`).
    fn exact_common(&self) -> PgResult<Type> {
        let mut ty = Type::Unknown;
        for &t in &self.types {
            ty = common_type(ty, t).ok_or_else(|| self.undefined())?;
        }
        match ty {
            Type::Unknown => Ok(Type::Numeric),
            Type::Int2 | Type::Int4 | Type::Int8 | Type::Numeric => Ok(ty),
            _ => Err(self.undefined()),
        }
    }

    fn arity(&self, n: usize) -> PgResult<()> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(self.undefined())
        }
    }

    /// Every argument as text (any type is accepted, as by `concat`).
    fn all_text(&mut self) -> PgResult<Vec<Expr>> {
        let args = std::mem::take(&mut self.args);
        args.into_iter()
            .map(|a| coerce_to_text(a, self.cx))
            .collect()
    }

    /// One common type for every argument (`coalesce`, `greatest`, ...).
    fn common(&mut self, what: &str) -> PgResult<(Type, Vec<Expr>)> {
        let mut ty = Type::Unknown;
        // NULLs and untyped literals take the type of the others.
        for &t in self.types.iter().filter(|&&t| t != Type::Unknown) {
            ty = common_type(ty, t).ok_or_else(|| {
                PgError::new(
                    SqlState::DATATYPE_MISMATCH,
                    format!(
                        "{what} types {} and {} cannot be matched",
                        display_name(ty),
                        display_name(t)
                    ),
                )
            })?;
        }
        let ty = if ty == Type::Unknown { Type::Text } else { ty };
        let args = std::mem::take(&mut self.args);
        let args = args
            .into_iter()
            .map(|a| coerce(a, ty, self.cx, false))
            .collect::<PgResult<_>>()?;
        Ok((ty, args))
    }
}

const T: Type = Type::Text;
const I4: Type = Type::Int4;
const I8: Type = Type::Int8;
const F8: Type = Type::Float8;
const N: Type = Type::Numeric;

/// Resolves a call of the function `name` (lower case, schema already checked)
/// with bound arguments.
pub(crate) fn bind(name: &str, args: Vec<Expr>, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    let types = args.iter().map(|a| a.ty(cx.params)).collect();
    let mut c = Call {
        name,
        args,
        types,
        cx,
    };
    let (func, ty, args) = match name {
        "version" => (Func::Version, T, c.fit(&[])?),
        "current_setting" => (Func::CurrentSetting, T, c.fit(&[T])?),
        "pg_sleep" => (Func::PgSleep, Type::Unknown, c.fit(&[F8])?),
        "current_database" => (Func::CurrentDatabase, Type::Name, c.fit(&[])?),
        "current_user" | "session_user" => (Func::CurrentUser, Type::Name, c.fit(&[])?),
        "current_schema" => (Func::CurrentSchema, Type::Name, c.fit(&[])?),
        "pg_backend_pid" => (Func::BackendPid, I4, c.fit(&[])?),
        "now" | "transaction_timestamp" => (Func::Now, Type::Timestamptz, c.fit(&[])?),
        "statement_timestamp" => (Func::StatementTimestamp, Type::Timestamptz, c.fit(&[])?),
        "clock_timestamp" => (Func::ClockTimestamp, Type::Timestamptz, c.fit(&[])?),
        "date_trunc" => {
            let ty = timestamp_kind(&c, 1)?;
            (Func::DateTrunc, ty, c.fit(&[T, ty])?)
        }
        "date_part" => {
            let ty = part_source(&c, 1)?;
            (Func::DatePart, F8, c.fit(&[T, ty])?)
        }
        "age" => {
            let ty = if c.types.contains(&Type::Timestamptz) {
                Type::Timestamptz
            } else {
                Type::Timestamp
            };
            let args = c.fit_any(&[&[ty], &[ty, ty]])?;
            (Func::Age, Type::Interval, args)
        }
        "make_date" => (Func::MakeDate, Type::Date, c.fit(&[I4, I4, I4])?),
        "to_char" => {
            c.arity(2)?;
            let ty = match c.types[0] {
                Type::Date | Type::Timestamp => Type::Timestamp,
                Type::Timestamptz | Type::Unknown => Type::Timestamptz,
                Type::Interval => return Err(c.undefined()),
                t if is_numeric(t) => t,
                _ => return Err(c.undefined()),
            };
            (Func::ToChar, T, c.fit(&[ty, T])?)
        }
        "coalesce" | "greatest" | "least" | "nullif" => {
            if c.args.is_empty() || (name == "nullif" && c.args.len() != 2) {
                return Err(c.undefined());
            }
            let what = if name == "nullif" {
                "NULLIF"
            } else {
                "COALESCE"
            };
            let what = match name {
                "greatest" => "GREATEST",
                "least" => "LEAST",
                _ => what,
            };
            let (ty, args) = c.common(what)?;
            let func = match name {
                "coalesce" => Func::Coalesce,
                "greatest" => Func::Greatest,
                "least" => Func::Least,
                _ => Func::NullIf,
            };
            (func, ty, args)
        }
        "abs" => {
            c.arity(1)?;
            let ty = match c.types[0] {
                Type::Unknown => F8,
                t if is_numeric(t) => t,
                _ => return Err(c.undefined()),
            };
            (Func::Abs, ty, c.fit(&[ty])?)
        }
        "round" | "trunc" => {
            let func = if name == "round" {
                Func::Round
            } else {
                Func::Trunc
            };
            if c.args.len() == 2 {
                (func, N, c.fit(&[N, I4])?)
            } else {
                let ty = c.float_or_numeric();
                (func, ty, c.fit(&[ty])?)
            }
        }
        "ceil" | "ceiling" | "floor" | "sign" | "sqrt" => {
            let ty = c.float_or_numeric();
            let func = match name {
                "floor" => Func::Floor,
                "sign" => Func::Sign,
                "sqrt" => Func::Sqrt,
                _ => Func::Ceil,
            };
            (func, ty, c.fit(&[ty])?)
        }
        "power" | "pow" => {
            let ty = c.float_or_numeric();
            (Func::Power, ty, c.fit(&[ty, ty])?)
        }
        "mod" => {
            c.arity(2)?;
            let ty = c.exact_common()?;
            (Func::Mod, ty, c.fit(&[ty, ty])?)
        }
        "div" => (Func::Div, N, c.fit(&[N, N])?),
        "random" => (Func::Random, F8, c.fit(&[])?),
        "gen_random_uuid" => (Func::GenRandomUuid, Type::Uuid, c.fit(&[])?),
        "upper" => (Func::Upper, T, c.fit(&[T])?),
        "lower" => (Func::Lower, T, c.fit(&[T])?),
        "length" | "char_length" | "character_length" => {
            let args = if name == "length" {
                c.fit_any(&[&[T], &[Type::Bytea]])?
            } else {
                c.fit(&[T])?
            };
            (Func::Length, I4, args)
        }
        "octet_length" => (Func::OctetLength, I4, c.fit_any(&[&[T], &[Type::Bytea]])?),
        "substr" | "substring" => {
            let args = c.fit_any(&[&[T, I4], &[T, I4, I4]])?;
            (Func::Substr, T, args)
        }
        "strpos" => (Func::StrPos, I4, c.fit(&[T, T])?),
        "replace" => (Func::Replace, T, c.fit(&[T, T, T])?),
        "btrim" | "ltrim" | "rtrim" => {
            let func = match name {
                "ltrim" => Func::Ltrim,
                "rtrim" => Func::Rtrim,
                _ => Func::Btrim,
            };
            (func, T, c.fit_any(&[&[T], &[T, T]])?)
        }
        "lpad" | "rpad" => {
            let func = if name == "lpad" {
                Func::Lpad
            } else {
                Func::Rpad
            };
            (func, T, c.fit_any(&[&[T, I4], &[T, I4, T]])?)
        }
        "left" => (Func::Left, T, c.fit(&[T, I4])?),
        "right" => (Func::Right, T, c.fit(&[T, I4])?),
        "concat" => {
            if c.args.is_empty() {
                return Err(c.undefined());
            }
            (Func::Concat, T, c.all_text()?)
        }
        "concat_ws" => {
            if c.args.is_empty() {
                return Err(c.undefined());
            }
            (Func::ConcatWs, T, c.all_text()?)
        }
        "repeat" => (Func::Repeat, T, c.fit(&[T, I4])?),
        "reverse" => (Func::Reverse, T, c.fit(&[T])?),
        "initcap" => (Func::Initcap, T, c.fit(&[T])?),
        "split_part" => (Func::SplitPart, T, c.fit(&[T, T, I4])?),
        "starts_with" => (Func::StartsWith, Type::Bool, c.fit(&[T, T])?),
        "translate" => (Func::Translate, T, c.fit(&[T, T, T])?),
        "md5" => (Func::Md5, T, c.fit_any(&[&[T], &[Type::Bytea]])?),
        "to_hex" => {
            c.arity(1)?;
            let ty = if c.types[0] == I8 { I8 } else { I4 };
            (Func::ToHex, T, c.fit(&[ty])?)
        }
        "chr" => (Func::Chr, T, c.fit(&[I4])?),
        "ascii" => (Func::Ascii, I4, c.fit(&[T])?),
        "encode" => (Func::Encode, T, c.fit(&[Type::Bytea, T])?),
        "decode" => (Func::Decode, Type::Bytea, c.fit(&[T, T])?),
        _ => return Err(c.undefined()),
    };
    Ok(Expr::Func(func, args, ty))
}

/// `date_trunc` works on timestamps; a date or unknown literal becomes
/// `timestamptz`, PostgreSQL's preferred type.
fn timestamp_kind(c: &Call<'_, '_>, at: usize) -> PgResult<Type> {
    match c.types.get(at) {
        Some(Type::Timestamp) => Ok(Type::Timestamp),
        Some(Type::Timestamptz | Type::Date | Type::Unknown) => Ok(Type::Timestamptz),
        _ => Err(c.undefined()),
    }
}

/// What `date_part`/`EXTRACT` read from: dates, times, timestamps, intervals.
fn part_source(c: &Call<'_, '_>, at: usize) -> PgResult<Type> {
    match c.types.get(at) {
        Some(Type::Unknown) => Ok(Type::Timestamptz),
        Some(
            t @ (Type::Date | Type::Time | Type::Timestamp | Type::Timestamptz | Type::Interval),
        ) => Ok(*t),
        _ => Err(c.undefined()),
    }
}

/// Functions with their own syntax: `SUBSTRING(x FROM a FOR b)`,
/// `POSITION(a IN b)`, `TRIM([BOTH|LEADING|TRAILING] [c] FROM x)`,
/// `EXTRACT(field FROM x)`, `CEIL(x)` and `FLOOR(x)`.
pub(crate) fn bind_special(
    expr: &ast::Expr,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Expr> {
    use ast::Expr as E;
    let bind = |e: &ast::Expr, cx: &mut BindContext<'_>| bind_depth(e, cx, depth);
    let is_ceil = matches!(expr, E::Ceil { .. });
    match expr {
        E::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![bind(expr, cx)?];
            args.push(match substring_from {
                Some(from) => bind(from, cx)?,
                None => Expr::Const(Value::Int4(1), I4),
            });
            if let Some(count) = substring_for {
                args.push(bind(count, cx)?);
            }
            self::bind("substring", args, cx)
        }
        E::Position { expr, r#in } => {
            let args = vec![bind(r#in, cx)?, bind(expr, cx)?];
            self::bind("strpos", args, cx)
        }
        E::Trim {
            trim_where,
            trim_what,
            expr,
            trim_characters,
        } => {
            if trim_characters.is_some() {
                return Err(PgError::syntax(
                    "TRIM(x, characters) is not PostgreSQL syntax",
                ));
            }
            let name = match trim_where {
                Some(ast::TrimWhereField::Leading) => "ltrim",
                Some(ast::TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            };
            let mut args = vec![bind(expr, cx)?];
            if let Some(what) = trim_what {
                args.push(bind(what, cx)?);
            }
            self::bind(name, args, cx)
        }
        E::Extract { field, expr, .. } => {
            let field = datetime_field_name(field);
            let source = bind(expr, cx)?;
            let ty = source.ty(cx.params);
            let mut c = Call {
                name: "extract",
                args: vec![Expr::Const(Value::Text(field), T), source],
                types: vec![T, ty],
                cx,
            };
            let ty = part_source(&c, 1)?;
            let args = c.fit(&[T, ty])?;
            Ok(Expr::Func(Func::Extract, args, N))
        }
        E::Ceil { expr, field } | E::Floor { expr, field } => {
            if !matches!(
                field,
                ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)
            ) {
                return Err(PgError::syntax(
                    "CEIL and FLOOR take one argument in PostgreSQL",
                ));
            }
            let name = if is_ceil { "ceil" } else { "floor" };
            let args = vec![bind(expr, cx)?];
            self::bind(name, args, cx)
        }
        other => Err(PgError::unsupported(format!(
            "expression not supported yet: {other}"
        ))),
    }
}

/// The lower-case name of an `EXTRACT` field.
fn datetime_field_name(field: &ast::DateTimeField) -> String {
    match field {
        ast::DateTimeField::Custom(ident) => ident.value.to_ascii_lowercase(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Seconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = crate::expr::POSTGRES_EPOCH_UNIX_SECS * 1_000_000;

/// Evaluates a call of a bound function.
pub(crate) fn call(func: Func, args: &[Expr], cx: &dyn EvalContext) -> PgResult<Value> {
    if func == Func::Coalesce {
        // Lazy: later arguments are not evaluated once one is not NULL.
        for a in args {
            let v = eval(a, cx)?;
            if !v.is_null() {
                return Ok(v);
            }
        }
        return Ok(Value::Null);
    }
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        values.push(eval(a, cx)?);
    }
    if func.is_strict() && values.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let v = values.as_slice();
    match func {
        Func::Version => Ok(Value::Text(format!(
            "PostgreSQL 15.0 (TellerDB {}) on x86_64-pc-linux-gnu",
            env!("CARGO_PKG_VERSION")
        ))),
        Func::CurrentSetting => Ok(Value::Text(cx.setting(&text::arg(v, 0)?)?)),
        Func::PgSleep => pg_sleep(v, cx),
        Func::CurrentDatabase => Ok(Value::Text(cx.database().to_string())),
        Func::CurrentUser => Ok(Value::Text(cx.user().to_string())),
        Func::CurrentSchema => Ok(Value::Text("public".into())),
        Func::BackendPid => Ok(Value::Int4(cx.process_id())),
        Func::Now => Ok(Value::Timestamptz(
            cx.transaction_micros() - POSTGRES_EPOCH_MICROS,
        )),
        Func::StatementTimestamp => Ok(Value::Timestamptz(
            cx.statement_micros() - POSTGRES_EPOCH_MICROS,
        )),
        Func::ClockTimestamp => Ok(Value::Timestamptz(cx.now_micros() - POSTGRES_EPOCH_MICROS)),
        Func::CurrentDate => {
            let micros = cx.transaction_micros() - POSTGRES_EPOCH_MICROS;
            Ok(Value::Date(
                micros.div_euclid(datetime::MICROS_PER_DAY) as i32
            ))
        }
        Func::Age if v.len() == 1 => {
            // age(x) is measured from midnight of the current date.
            let micros = cx.transaction_micros() - POSTGRES_EPOCH_MICROS;
            let midnight = micros - micros.rem_euclid(datetime::MICROS_PER_DAY);
            datetime::age(midnight, datetime::timestamp_micros(&v[0])?)
        }
        Func::DateTrunc | Func::DatePart | Func::Extract | Func::Age | Func::MakeDate => {
            datetime::call(func, v)
        }
        Func::ToChar => to_char::to_char(&v[0], &text::arg(v, 1)?),
        Func::Coalesce => unreachable!("evaluated lazily above"),
        Func::NullIf => {
            let equal =
                !v[0].is_null() && !v[1].is_null() && crate::expr::compare(&v[0], &v[1])?.is_eq();
            Ok(if equal { Value::Null } else { v[0].clone() })
        }
        Func::Greatest | Func::Least => extreme(func == Func::Greatest, values),
        Func::Random => {
            // 53 random bits: uniform in [0, 1), like PostgreSQL's drandom.
            let bits = cx.random_u64()? >> 11;
            Ok(Value::Float8(bits as f64 / (1u64 << 53) as f64))
        }
        Func::GenRandomUuid => {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&cx.random_u64()?.to_le_bytes());
            bytes[8..].copy_from_slice(&cx.random_u64()?.to_le_bytes());
            bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
            bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
            Ok(Value::Uuid(bytes))
        }
        Func::Abs
        | Func::Round
        | Func::Trunc
        | Func::Ceil
        | Func::Floor
        | Func::Sign
        | Func::Mod
        | Func::Div
        | Func::Power
        | Func::Sqrt => math::call(func, v),
        _ => text::call(func, v),
    }
}

fn pg_sleep(v: &[Value], cx: &dyn EvalContext) -> PgResult<Value> {
    if let Some(Value::Float8(seconds)) = v.first() {
        let seconds = *seconds;
        if seconds > crate::expr::SLEEP_MAX_SECS || seconds.is_nan() {
            return Err(PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "pg_sleep is limited to {} seconds",
                    crate::expr::SLEEP_MAX_SECS
                ),
            ));
        }
        if seconds > 0.0 {
            cx.request_sleep(seconds);
        }
    }
    Ok(Value::Text(String::new()))
}

/// `greatest`/`least`: NULLs are ignored; all NULL gives NULL.
fn extreme(greatest: bool, values: Vec<Value>) -> PgResult<Value> {
    let mut best: Option<Value> = None;
    for v in values.into_iter().filter(|v| !v.is_null()) {
        best = Some(match best {
            None => v,
            Some(b) => {
                let ord = crate::expr::compare(&v, &b)?;
                let better = if greatest { ord.is_gt() } else { ord.is_lt() };
                if better {
                    v
                } else {
                    b
                }
            }
        });
    }
    Ok(best.unwrap_or(Value::Null))
}

/// A result of `len` bytes is refused past [`RESULT_BYTES_MAX`].
pub(crate) fn check_result_len(len: usize) -> PgResult<()> {
    if len > RESULT_BYTES_MAX {
        Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("requested length too large: results are limited to {RESULT_BYTES_MAX} bytes"),
        ))
    } else {
        Ok(())
    }
}
