//! Hash aggregation: groups by byte keys of the GROUP BY values, one
//! accumulator per aggregate call, groups returned in order of first
//! appearance. Without GROUP BY there is exactly one group, even for no
//! input (`count(*)` is 0, the other aggregates NULL).
//!
//! Exactness: integer sums accumulate in `i128`; `sum(int8)` and every
//! numeric sum and average are exact decimals (never floats). `avg` divides
//! with PostgreSQL's result scale (`select_div_scale`: at least 16
//! significant digits), so `avg(1, 2)` is `1.5000000000000000` as there.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use rust_decimal::{Decimal, RoundingStrategy};
use teller_net::types::{Interval, Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::eval::eval_plain;
use super::sort::compare_keys;
use super::{keys, row_bytes, Cx, Op, Row, BATCH_ROWS};
use crate::expr::compare;
use crate::plan::{AggCall, AggFunc, AggPlan};

fn overflow(what: &str) -> PgError {
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{what} out of range"),
    )
}

/// A running aggregate.
#[derive(Clone, Debug)]
enum Acc {
    Count(i64),
    /// Integer sum (and whether any value was seen).
    SumInt(i128, bool),
    SumNumeric(Decimal, bool),
    SumFloat(f64, bool),
    SumInterval(i64, i64, i128, bool),
    Avg(Decimal, i64),
    AvgFloat(f64, i64),
    AvgInterval(i64, i64, i128, i64),
    Extreme(Option<Value>),
    Bool(Option<bool>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

fn initial(call: &AggCall, arg_ty: Type) -> Acc {
    match call.func {
        AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => match arg_ty {
            Type::Int2 | Type::Int4 | Type::Int8 => Acc::SumInt(0, false),
            Type::Float4 | Type::Float8 => Acc::SumFloat(0.0, false),
            Type::Interval => Acc::SumInterval(0, 0, 0, false),
            _ => Acc::SumNumeric(Decimal::ZERO, false),
        },
        AggFunc::Avg => match arg_ty {
            Type::Float4 | Type::Float8 => Acc::AvgFloat(0.0, 0),
            Type::Interval => Acc::AvgInterval(0, 0, 0, 0),
            _ => Acc::Avg(Decimal::ZERO, 0),
        },
        AggFunc::Min | AggFunc::Max => Acc::Extreme(None),
        AggFunc::BoolAnd | AggFunc::BoolOr => Acc::Bool(None),
        AggFunc::StringAgg if call.ty == Type::Bytea => Acc::Bytes(None),
        AggFunc::StringAgg => Acc::Text(None),
    }
}

fn decimal_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::Int2(n) => Some(Decimal::from(*n)),
        Value::Int4(n) => Some(Decimal::from(*n)),
        Value::Int8(n) => Some(Decimal::from(*n)),
        Value::Numeric(d) => Some(*d),
        _ => None,
    }
}

impl Acc {
    /// Adds one row's arguments (NULLs already skipped except count(*)).
    fn add(&mut self, func: AggFunc, args: &[Value]) -> PgResult<()> {
        let v = args.first().unwrap_or(&Value::Null);
        match self {
            Acc::Count(n) => *n += 1,
            Acc::SumInt(s, any) => {
                let x = match v {
                    Value::Int2(n) => i128::from(*n),
                    Value::Int4(n) => i128::from(*n),
                    Value::Int8(n) => i128::from(*n),
                    _ => return Err(PgError::internal("integer sum of a non-integer")),
                };
                *s = s.checked_add(x).ok_or_else(|| overflow("sum"))?;
                *any = true;
            }
            Acc::SumNumeric(s, any) => {
                let d = decimal_of(v)
                    .ok_or_else(|| PgError::internal("numeric sum of a non-number"))?;
                *s = s.checked_add(d).ok_or_else(|| {
                    PgError::new(
                        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                        "numeric field overflow",
                    )
                })?;
                *any = true;
            }
            Acc::SumFloat(s, any) => {
                *s += match v {
                    Value::Float4(f) => f64::from(*f),
                    Value::Float8(f) => *f,
                    _ => return Err(PgError::internal("float sum of a non-float")),
                };
                *any = true;
            }
            Acc::SumInterval(m, d, us, any) => {
                let Value::Interval(iv) = v else {
                    return Err(PgError::internal("interval sum of a non-interval"));
                };
                *m += i64::from(iv.months);
                *d += i64::from(iv.days);
                *us += i128::from(iv.micros);
                *any = true;
            }
            Acc::Avg(s, n) => {
                let d =
                    decimal_of(v).ok_or_else(|| PgError::internal("average of a non-number"))?;
                *s = s.checked_add(d).ok_or_else(|| {
                    PgError::new(
                        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                        "numeric field overflow",
                    )
                })?;
                *n += 1;
            }
            Acc::AvgFloat(s, n) => {
                *s += match v {
                    Value::Float4(f) => f64::from(*f),
                    Value::Float8(f) => *f,
                    _ => return Err(PgError::internal("float average of a non-float")),
                };
                *n += 1;
            }
            Acc::AvgInterval(m, d, us, n) => {
                let Value::Interval(iv) = v else {
                    return Err(PgError::internal("interval average of a non-interval"));
                };
                *m += i64::from(iv.months);
                *d += i64::from(iv.days);
                *us += i128::from(iv.micros);
                *n += 1;
            }
            Acc::Extreme(best) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let ord = compare(v, b)?;
                        if func == AggFunc::Max {
                            ord == Ordering::Greater
                        } else {
                            ord == Ordering::Less
                        }
                    }
                };
                if replace {
                    *best = Some(v.clone());
                }
            }
            Acc::Bool(b) => {
                let Value::Bool(x) = v else {
                    return Err(PgError::internal("bool aggregate of a non-bool"));
                };
                *b = Some(match (func, *b) {
                    (_, None) => *x,
                    (AggFunc::BoolAnd, Some(y)) => y && *x,
                    (_, Some(y)) => y || *x,
                });
            }
            Acc::Text(acc) => {
                let Value::Text(s) = v else {
                    return Err(PgError::internal("string_agg of a non-text"));
                };
                match acc {
                    None => *acc = Some(s.clone()),
                    Some(out) => {
                        if let Some(Value::Text(delim)) = args.get(1) {
                            out.push_str(delim);
                        }
                        out.push_str(s);
                    }
                }
            }
            Acc::Bytes(acc) => {
                let Value::Bytea(b) = v else {
                    return Err(PgError::internal("string_agg of a non-bytea"));
                };
                match acc {
                    None => *acc = Some(b.clone()),
                    Some(out) => {
                        if let Some(Value::Bytea(delim)) = args.get(1) {
                            out.extend_from_slice(delim);
                        }
                        out.extend_from_slice(b);
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, ty: Type) -> PgResult<Value> {
        Ok(match self {
            Acc::Count(n) => Value::Int8(n),
            Acc::SumInt(_, false)
            | Acc::SumNumeric(_, false)
            | Acc::SumFloat(_, false)
            | Acc::SumInterval(.., false) => Value::Null,
            Acc::SumInt(s, true) => match ty {
                Type::Int8 => Value::Int8(i64::try_from(s).map_err(|_| overflow("bigint"))?),
                _ => Value::Numeric(
                    i64::try_from(s)
                        .map(Decimal::from)
                        .or_else(|_| Decimal::try_from_i128_with_scale(s, 0))
                        .map_err(|_| {
                            PgError::new(
                                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                                "numeric field overflow",
                            )
                        })?,
                ),
            },
            Acc::SumNumeric(s, true) => Value::Numeric(s),
            Acc::SumFloat(s, true) => match ty {
                Type::Float4 => Value::Float4(s as f32),
                _ => Value::Float8(s),
            },
            Acc::SumInterval(m, d, us, true) => Value::Interval(interval(m, d, us)?),
            Acc::Avg(_, 0) | Acc::AvgFloat(_, 0) | Acc::AvgInterval(.., 0) => Value::Null,
            Acc::Avg(s, n) => Value::Numeric(pg_divide(s, Decimal::from(n))?),
            Acc::AvgFloat(s, n) => Value::Float8(s / n as f64),
            Acc::AvgInterval(m, d, us, n) => Value::Interval(divide_interval(m, d, us, n)?),
            Acc::Extreme(v) => v.unwrap_or(Value::Null),
            Acc::Bool(b) => b.map_or(Value::Null, Value::Bool),
            Acc::Text(s) => s.map_or(Value::Null, Value::Text),
            Acc::Bytes(b) => b.map_or(Value::Null, Value::Bytea),
        })
    }
}

fn interval(months: i64, days: i64, micros: i128) -> PgResult<Interval> {
    let err = || PgError::new(SqlState::DATETIME_FIELD_OVERFLOW, "interval out of range");
    Ok(Interval {
        months: i32::try_from(months).map_err(|_| err())?,
        days: i32::try_from(days).map_err(|_| err())?,
        micros: i64::try_from(micros).map_err(|_| err())?,
    })
}

/// An interval divided by `n`, fractional months and days cascading into
/// days and microseconds (30-day months), as PostgreSQL's `interval_div`.
fn divide_interval(months: i64, days: i64, micros: i128, n: i64) -> PgResult<Interval> {
    let n128 = i128::from(n);
    let m = months / n;
    let month_rem_days = (months % n) as f64 * 30.0 / n as f64;
    let day_total = days as f64 / n as f64 + month_rem_days;
    let d = day_total.trunc();
    let rem_micros = (day_total - d) * 86_400_000_000.0;
    let us = micros / n128 + rem_micros.round() as i128;
    interval(m, d as i64, us)
}

/// Base-10000 weight and first digit of a non-zero decimal, as PostgreSQL
/// stores numerics.
fn weight(d: Decimal) -> (i32, u32) {
    let abs = d.abs();
    let digits = abs.trunc().to_string();
    if abs >= Decimal::ONE {
        let n = digits.len() as i32;
        let w = (n - 1) / 4;
        let first_len = (n - 1) % 4 + 1;
        let first = digits[..first_len as usize].parse().unwrap_or(1);
        (w, first)
    } else {
        // 0.000123 → groups after the point: 0001 2300 → weight -1, first 1.
        let frac = abs.to_string();
        let after = frac.split('.').nth(1).unwrap_or("");
        let zeros = after.chars().take_while(|c| *c == '0').count() as i32;
        let w = -(zeros / 4) - 1;
        let start = ((zeros / 4) * 4) as usize;
        let mut group: String = after.chars().skip(start).take(4).collect();
        while group.len() < 4 {
            group.push('0');
        }
        (w, group.parse().unwrap_or(1))
    }
}

/// `a / b` with PostgreSQL's result scale for numeric division.
pub fn pg_divide(a: Decimal, b: Decimal) -> PgResult<Decimal> {
    if b.is_zero() {
        return Err(PgError::new(SqlState::DIVISION_BY_ZERO, "division by zero"));
    }
    let mut rscale: i64 = 16;
    if !a.is_zero() {
        let (w1, f1) = weight(a);
        let (w2, f2) = weight(b);
        let mut q = i64::from(w1 - w2);
        if f1 <= f2 {
            q -= 1;
        }
        rscale = 16 - q * 4;
    }
    let rscale = rscale
        .max(i64::from(a.scale()))
        .max(i64::from(b.scale()))
        .clamp(0, 28) as u32;
    let quotient = a.checked_div(b).ok_or_else(|| {
        PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            "numeric field overflow",
        )
    })?;
    let mut r = quotient.round_dp_with_strategy(rscale, RoundingStrategy::MidpointAwayFromZero);
    // Show the full result scale (trailing zeros) where the digits fit.
    let mut scale = rscale;
    loop {
        let mut padded = r;
        padded.rescale(scale);
        if padded == r || scale == 0 {
            r = padded;
            break;
        }
        scale -= 1;
    }
    Ok(r)
}

/// The per-call state of one group.
struct CallState {
    acc: Acc,
    /// DISTINCT: argument keys seen.
    seen: Option<HashSet<Vec<u8>>>,
    /// ORDER BY inside the call: (sort values, args) to fold at the end.
    buffered: Option<Vec<(Vec<Value>, Vec<Value>)>>,
}

struct Group {
    values: Row,
    calls: Vec<CallState>,
}

pub struct AggOp {
    input: Op,
    group: Vec<crate::expr::Expr>,
    calls: Vec<AggCall>,
    arg_types: Vec<Type>,
    output: Option<std::vec::IntoIter<Row>>,
}

impl AggOp {
    pub fn new(plan: &AggPlan) -> AggOp {
        AggOp {
            input: Op::build(&plan.input),
            group: plan.group.clone(),
            arg_types: plan
                .aggs
                .iter()
                .map(|c| c.args.first().map_or(Type::Int8, |a| a.ty(&[])))
                .collect(),
            calls: plan.aggs.clone(),
            output: None,
        }
    }

    fn new_group(&self, values: Row) -> Group {
        Group {
            values,
            calls: self
                .calls
                .iter()
                .zip(&self.arg_types)
                .map(|(c, &t)| CallState {
                    acc: initial(c, t),
                    seen: c.distinct.then(HashSet::new),
                    buffered: (!c.order.is_empty()).then(Vec::new),
                })
                .collect(),
        }
    }

    async fn consume<K: crate::kv::Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Vec<Group>> {
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        if self.group.is_empty() {
            groups.push(self.new_group(Vec::new()));
        }
        while let Some(batch) = self.input.next(cx).await? {
            for row in batch {
                let g = if self.group.is_empty() {
                    0
                } else {
                    let values = self
                        .group
                        .iter()
                        .map(|e| eval_plain(e, cx.env, &row, cx.outer))
                        .collect::<PgResult<Vec<_>>>()?;
                    let key = keys::row_key(&values)?;
                    match index.get(&key) {
                        Some(&g) => g,
                        None => {
                            cx.state
                                .memory
                                .charge(row_bytes(&values) + key.len() + 64 * self.calls.len())?;
                            groups.push(self.new_group(values));
                            index.insert(key, groups.len() - 1);
                            groups.len() - 1
                        }
                    }
                };
                for (i, call) in self.calls.iter().enumerate() {
                    if let Some(f) = &call.filter {
                        if eval_plain(f, cx.env, &row, cx.outer)? != Value::Bool(true) {
                            continue;
                        }
                    }
                    let args = call
                        .args
                        .iter()
                        .map(|e| eval_plain(e, cx.env, &row, cx.outer))
                        .collect::<PgResult<Vec<_>>>()?;
                    if call.func != AggFunc::CountStar && args.first().is_some_and(Value::is_null) {
                        continue;
                    }
                    let state = &mut groups[g].calls[i];
                    if let Some(seen) = &mut state.seen {
                        let key = keys::row_key(&args[..1])?;
                        if seen.contains(&key) {
                            continue;
                        }
                        cx.state.memory.charge(key.len() + 16)?;
                        seen.insert(key);
                    }
                    if let Some(buffer) = &mut state.buffered {
                        let sort = call
                            .order
                            .iter()
                            .map(|k| eval_plain(&k.expr, cx.env, &row, cx.outer))
                            .collect::<PgResult<Vec<_>>>()?;
                        cx.state
                            .memory
                            .charge(row_bytes(&sort) + row_bytes(&args))?;
                        buffer.push((sort, args));
                        continue;
                    }
                    state.acc.add(call.func, &args)?;
                }
            }
        }
        Ok(groups)
    }

    pub async fn next<K: crate::kv::Kv>(
        &mut self,
        cx: &mut Cx<'_, K>,
    ) -> PgResult<Option<Vec<Row>>> {
        if self.output.is_none() {
            let groups = self.consume(cx).await?;
            let mut rows = Vec::with_capacity(groups.len());
            for g in groups {
                let mut row = g.values;
                for (call, mut state) in self.calls.iter().zip(g.calls) {
                    if let Some(mut buffer) = state.buffered.take() {
                        let mut error = None;
                        buffer.sort_by(|a, b| {
                            compare_keys(&a.0, &b.0, &call.order).unwrap_or_else(|e| {
                                error.get_or_insert(e);
                                Ordering::Equal
                            })
                        });
                        if let Some(e) = error {
                            return Err(e);
                        }
                        for (_, args) in buffer {
                            state.acc.add(call.func, &args)?;
                        }
                    }
                    row.push(state.acc.finish(call.ty)?);
                }
                rows.push(row);
            }
            self.output = Some(rows.into_iter());
        }
        let out: Vec<Row> = self
            .output
            .as_mut()
            .expect("set above")
            .take(BATCH_ROWS)
            .collect();
        Ok((!out.is_empty()).then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn division_scale_follows_postgres() {
        assert_eq!(
            pg_divide(d("3"), d("2")).unwrap().to_string(),
            "1.5000000000000000"
        );
        assert_eq!(
            pg_divide(d("246913"), d("2")).unwrap().to_string(),
            "123456.500000000000"
        );
        assert_eq!(
            pg_divide(d("10"), d("4")).unwrap().to_string(),
            "2.5000000000000000"
        );
        assert_eq!(
            pg_divide(d("1"), d("3")).unwrap().to_string(),
            "0.33333333333333333333"
        );
        assert_eq!(
            pg_divide(d("10.50"), d("2")).unwrap().to_string(),
            "5.2500000000000000"
        );
        assert!(pg_divide(d("1"), d("0")).is_err());
    }
}
