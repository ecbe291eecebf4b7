//! EXPLAIN: a plan as indented text, one operator per line, with the spans
//! each scan reads, the index it uses and each join's strategy.
//!
//! ```text
//! Limit: 10
//!   -> Scan accounts@accounts_pkey spans: [/5 - /10)
//! ```

use teller_net::types::{encode_text, Value};

use super::{Access, JoinStrategy, Plan, SetOpKind, SpanExprs};
use crate::bind::dml::{DeletePlan, InsertPlan, UpdatePlan};
use crate::bind::{Bound, Command};
use crate::expr::{BinOp, Expr, SubLinkKind};

/// The EXPLAIN lines of a bound statement.
pub fn explain(bound: &Bound) -> Vec<String> {
    let mut out = Vec::new();
    match &bound.command {
        Command::Query { plan, .. } => node(plan, 0, &mut out),
        Command::Insert(p) => insert(p, &mut out),
        Command::Update(p) => update(p, &mut out),
        Command::Delete(p) => delete(p, &mut out),
        Command::Ddl(d) => out.push(d.tag.to_string()),
        Command::Explain(lines) => out.extend(lines.iter().cloned()),
        Command::Analyze(_) => out.push("Analyze".into()),
        Command::CopyIn { insert, .. } => {
            out.push(format!("Copy into {} from stdin", insert.write.table.name))
        }
        Command::CopyOut { plan, .. } => node(plan, 0, &mut out),
    }
    for (i, sub) in bound.subplans.iter().enumerate() {
        out.push(format!("SubPlan {}", i + 1));
        node(sub, 1, &mut out);
    }
    out
}

fn insert(p: &InsertPlan, out: &mut Vec<String>) {
    let mut line = format!("Insert into {}", p.write.table.name);
    if let Some(oc) = &p.on_conflict {
        line.push_str(match oc.action {
            crate::bind::dml::ConflictAction::Nothing => " on conflict do nothing",
            crate::bind::dml::ConflictAction::Update { .. } => " on conflict do update",
        });
    }
    out.push(line);
    node(&p.source, 1, out);
}

fn update(p: &UpdatePlan, out: &mut Vec<String>) {
    let names = output_names(&p.source);
    let sets: Vec<String> = p
        .assignments
        .iter()
        .map(|(pos, e)| format!("{} = {}", p.write.table.columns[*pos].name, expr(e, &names)))
        .collect();
    out.push(format!(
        "Update {} set {}",
        p.write.table.name,
        sets.join(", ")
    ));
    node(&p.source, 1, out);
}

fn delete(p: &DeletePlan, out: &mut Vec<String>) {
    out.push(format!("Delete from {}", p.table.name));
    node(&p.source, 1, out);
}

fn pad(depth: usize) -> String {
    if depth == 0 {
        String::new()
    } else {
        format!("{}-> ", "  ".repeat(depth))
    }
}

/// Names of a plan's output columns, for printing expressions above it.
pub fn output_names(plan: &Plan) -> Vec<String> {
    match plan {
        Plan::Values { types, .. } => (1..=types.len()).map(|i| format!("column{i}")).collect(),
        Plan::Series { .. } => vec!["generate_series".into()],
        Plan::Virtual(v) => v
            .def()
            .columns
            .iter()
            .map(|c| format!("{}.{}", v.def().name, c.0))
            .collect(),
        Plan::TableFn { ordinality, .. } => {
            let mut names = vec!["value".to_string()];
            if *ordinality {
                names.push("ordinality".into());
            }
            names
        }
        Plan::Scan(scan) => scan
            .table
            .columns
            .iter()
            .map(|c| format!("{}.{}", scan.alias, c.name))
            .collect(),
        Plan::Project { input, exprs, .. } => {
            let inner = output_names(input);
            exprs.iter().map(|e| expr(e, &inner)).collect()
        }
        Plan::Join(j) => {
            let mut names = output_names(&j.left);
            names.extend(output_names(&j.right));
            names
        }
        Plan::Aggregate(a) => {
            let inner = output_names(&a.input);
            let mut names: Vec<String> = a.group.iter().map(|g| expr(g, &inner)).collect();
            for call in &a.aggs {
                let args: Vec<String> = call.args.iter().map(|e| expr(e, &inner)).collect();
                let args = if call.func == super::AggFunc::CountStar {
                    "*".to_string()
                } else {
                    args.join(", ")
                };
                let distinct = if call.distinct { "DISTINCT " } else { "" };
                names.push(format!("{}({distinct}{args})", call.func.name()));
            }
            names
        }
        Plan::Filter { input, .. }
        | Plan::Sort { input, .. }
        | Plan::Limit { input, .. }
        | Plan::Distinct { input, .. } => output_names(input),
        Plan::SetOp(op) => output_names(&op.left),
    }
}

fn node(plan: &Plan, depth: usize, out: &mut Vec<String>) {
    let p = pad(depth);
    match plan {
        Plan::Virtual(v) => out.push(format!("{p}Catalog {}.{}", v.def().schema, v.def().name)),
        Plan::TableFn { func, args, .. } => {
            let list: Vec<String> = args.iter().map(|a| expr(a, &[])).collect();
            out.push(format!("{p}Function {func:?}({})", list.join(", ")));
        }
        Plan::Series {
            start, stop, step, ..
        } => {
            let mut line = format!("{p}Series: {} to {}", expr(start, &[]), expr(stop, &[]));
            if let Some(s) = step {
                line.push_str(&format!(" step {}", expr(s, &[])));
            }
            out.push(line);
        }
        Plan::Values { rows, .. } => {
            if rows.len() == 1 && rows[0].is_empty() {
                out.push(format!("{p}Result"));
            } else {
                out.push(format!("{p}Values: {} rows", rows.len()));
            }
        }
        Plan::Scan(scan) => {
            let index = scan
                .table
                .index(scan.index)
                .map_or("?".to_string(), |i| i.name.clone());
            let names = output_names(plan);
            let mut line = format!("{p}Scan {}@{index}", scan.alias);
            if scan.alias != scan.table.name {
                line = format!("{p}Scan {} {}@{index}", scan.table.name, scan.alias);
            }
            match &scan.access {
                Access::Full => line.push_str(" full"),
                Access::Spans(spans) => {
                    let list: Vec<String> = spans.iter().map(span).collect();
                    line.push_str(&format!(" spans: {}", list.join(", ")));
                }
            }
            if scan.covering {
                line.push_str(" covering");
            }
            if scan.reverse {
                line.push_str(" reverse");
            }
            if let Some(f) = &scan.filter {
                line.push_str(&format!(" filter: {}", expr(f, &names)));
            }
            if let Some(l) = &scan.limit {
                line.push_str(&format!(" limit: {}", expr(l, &[])));
            }
            if let Some(lock) = &scan.lock {
                line.push_str(
                    &format!(" lock: {:?} {:?}", lock.strength, lock.wait).to_lowercase(),
                );
            }
            out.push(line);
        }
        Plan::Filter { input, predicate } => {
            out.push(format!(
                "{p}Filter: {}",
                expr(predicate, &output_names(input))
            ));
            node(input, depth + 1, out);
        }
        Plan::Project { input, exprs, .. } => {
            let names = output_names(input);
            let list: Vec<String> = exprs.iter().map(|e| expr(e, &names)).collect();
            out.push(format!("{p}Project: {}", list.join(", ")));
            node(input, depth + 1, out);
        }
        Plan::Join(j) => {
            let ln = output_names(&j.left);
            let rn = output_names(&j.right);
            let mut both = ln.clone();
            both.extend(rn.iter().cloned());
            let keys = |l: &[Expr], r: &[Expr]| -> String {
                l.iter()
                    .zip(r)
                    .map(|(a, b)| format!("{} = {}", expr(a, &ln), expr(b, &rn)))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            };
            let mut line = match &j.strategy {
                JoinStrategy::NestedLoop => format!("{p}NestedLoopJoin ({})", j.kind.name()),
                JoinStrategy::Hash {
                    left_keys,
                    right_keys,
                } => format!(
                    "{p}HashJoin ({}) on {}",
                    j.kind.name(),
                    keys(left_keys, right_keys)
                ),
                JoinStrategy::Merge {
                    left_keys,
                    right_keys,
                } => format!(
                    "{p}MergeJoin ({}) on {}",
                    j.kind.name(),
                    keys(left_keys, right_keys)
                ),
                JoinStrategy::Lookup { left_keys } => {
                    let list: Vec<String> = left_keys.iter().map(|k| expr(k, &ln)).collect();
                    format!(
                        "{p}LookupJoin ({}) keys: {}",
                        j.kind.name(),
                        list.join(", ")
                    )
                }
            };
            if let Some(c) = &j.condition {
                line.push_str(&format!(" cond: {}", expr(c, &both)));
            }
            out.push(line);
            node(&j.left, depth + 1, out);
            node(&j.right, depth + 1, out);
        }
        Plan::Aggregate(a) => {
            let names = output_names(plan);
            let g = a.group.len();
            let mut line = format!("{p}Aggregate");
            if g > 0 {
                line.push_str(&format!(" group: {}", names[..g].join(", ")));
            }
            if !a.aggs.is_empty() {
                line.push_str(&format!(" aggs: {}", names[g..].join(", ")));
            }
            out.push(line);
            node(&a.input, depth + 1, out);
        }
        Plan::Sort { input, keys } => {
            let names = output_names(input);
            let list: Vec<String> = keys
                .iter()
                .map(|k| {
                    let mut s = expr(&k.expr, &names);
                    if k.desc {
                        s.push_str(" DESC");
                    }
                    if k.nulls_first != k.desc {
                        s.push_str(if k.nulls_first {
                            " NULLS FIRST"
                        } else {
                            " NULLS LAST"
                        });
                    }
                    s
                })
                .collect();
            out.push(format!("{p}Sort: {}", list.join(", ")));
            node(input, depth + 1, out);
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let mut line = format!("{p}Limit:");
            if let Some(l) = limit {
                line.push_str(&format!(" {}", expr(l, &[])));
            }
            if let Some(o) = offset {
                line.push_str(&format!(" offset {}", expr(o, &[])));
            }
            out.push(line);
            node(input, depth + 1, out);
        }
        Plan::Distinct { input, on } => {
            match on {
                None => out.push(format!("{p}Distinct")),
                Some(keys) => {
                    let names = output_names(input);
                    let list: Vec<String> = keys.iter().map(|e| expr(e, &names)).collect();
                    out.push(format!("{p}Distinct on: {}", list.join(", ")));
                }
            }
            node(input, depth + 1, out);
        }
        Plan::SetOp(op) => {
            let name = match op.kind {
                SetOpKind::Union => "Union",
                SetOpKind::Intersect => "Intersect",
                SetOpKind::Except => "Except",
            };
            out.push(format!("{p}{name}{}", if op.all { " all" } else { "" }));
            node(&op.left, depth + 1, out);
            node(&op.right, depth + 1, out);
        }
    }
}

fn span(s: &SpanExprs) -> String {
    let mut prefix = String::new();
    for e in &s.eq {
        prefix.push('/');
        prefix.push_str(&expr(e, &[]));
    }
    if s.lower.is_none() && s.upper.is_none() {
        return if prefix.is_empty() {
            "/".into()
        } else {
            prefix
        };
    }
    let lower = match &s.lower {
        Some(b) => format!(
            "{}{prefix}/{}",
            if b.inclusive { "[" } else { "(" },
            expr(&b.expr, &[])
        ),
        None => format!("[{prefix}/-inf"),
    };
    let upper = match &s.upper {
        Some(b) => format!(
            "{prefix}/{}{}",
            expr(&b.expr, &[]),
            if b.inclusive { "]" } else { ")" }
        ),
        None => format!("{prefix}/+inf]"),
    };
    format!("{lower} - {upper}")
}

fn literal(v: &Value, ty: teller_net::types::Type) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int2(_)
        | Value::Int4(_)
        | Value::Int8(_)
        | Value::Numeric(_)
        | Value::Float4(_)
        | Value::Float8(_) => {
            let mut buf = bytes::BytesMut::new();
            encode_text(v, ty, &mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        }
        Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
        other => {
            let mut buf = bytes::BytesMut::new();
            encode_text(other, ty, &mut buf);
            format!("'{}'", String::from_utf8_lossy(&buf))
        }
    }
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Concat => "||",
        BinOp::Eq => "=",
        BinOp::NotEq => "<>",
        BinOp::Lt => "<",
        BinOp::LtEq => "<=",
        BinOp::Gt => ">",
        BinOp::GtEq => ">=",
    }
}

/// An expression as readable SQL-like text over named input columns.
pub fn expr(e: &Expr, names: &[String]) -> String {
    let go = |e: &Expr| expr(e, names);
    match e {
        Expr::Const(v, ty) => literal(v, *ty),
        Expr::Param(i) => format!("${}", i + 1),
        Expr::Column(i, _) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
        Expr::Outer(i, _) => format!("outer#{i}"),
        Expr::Not(a) => format!("NOT {}", go(a)),
        Expr::Neg(a, _) => format!("-{}", go(a)),
        Expr::Binary(op, a, b, _) => format!("({} {} {})", go(a), op_text(*op), go(b)),
        Expr::And(a, b) => format!("({} AND {})", go(a), go(b)),
        Expr::Or(a, b) => format!("({} OR {})", go(a), go(b)),
        Expr::IsNull(a, true) => format!("({} IS NULL)", go(a)),
        Expr::IsNull(a, false) => format!("({} IS NOT NULL)", go(a)),
        Expr::IsBool(a, which, positive) => format!(
            "({} IS {}{})",
            go(a),
            if *positive { "" } else { "NOT " },
            if *which { "TRUE" } else { "FALSE" }
        ),
        Expr::Cast(a, ty) => format!("{}::{}", go(a), ty.name()),
        Expr::Case { .. } => "CASE ... END".into(),
        Expr::Func(f, args, _) => {
            let list: Vec<String> = args.iter().map(go).collect();
            format!("{}({})", format!("{f:?}").to_lowercase(), list.join(", "))
        }
        Expr::SubLink(link) => {
            let lhs = link.lhs.as_ref().map(go).unwrap_or_default();
            match link.kind {
                SubLinkKind::Scalar => format!("(SubPlan {})", link.id + 1),
                SubLinkKind::Exists => format!("EXISTS(SubPlan {})", link.id + 1),
                SubLinkKind::Any(op) => {
                    format!("({lhs} {} ANY(SubPlan {}))", op_text(op), link.id + 1)
                }
                SubLinkKind::All(op) => {
                    format!("({lhs} {} ALL(SubPlan {}))", op_text(op), link.id + 1)
                }
                SubLinkKind::Array => format!("ARRAY(SubPlan {})", link.id + 1),
            }
        }
        Expr::InList {
            expr: a,
            list,
            negated,
        } => {
            let items: Vec<String> = list.iter().map(go).collect();
            format!(
                "({} {}IN ({}))",
                go(a),
                if *negated { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Expr::Like {
            expr: a,
            pattern,
            negated,
            case_insensitive,
            ..
        } => format!(
            "({} {}{} {})",
            go(a),
            if *negated { "NOT " } else { "" },
            if *case_insensitive { "ILIKE" } else { "LIKE" },
            go(pattern)
        ),
        Expr::IsDistinct(a, b, not) => format!(
            "({} IS {}DISTINCT FROM {})",
            go(a),
            if *not { "NOT " } else { "" },
            go(b)
        ),
        Expr::AggRef(i, _) => format!("agg#{i}"),
        Expr::Regex {
            expr: a,
            pattern,
            negated,
            case_insensitive,
        } => format!(
            "({} {}~{} {})",
            go(a),
            if *negated { "!" } else { "" },
            if *case_insensitive { "*" } else { "" },
            go(pattern)
        ),
        Expr::Catalog(f, args, _) => {
            let list: Vec<String> = args.iter().map(go).collect();
            format!("{}({})", f.name(), list.join(", "))
        }
        Expr::AnyArray {
            lhs,
            op,
            array,
            all,
        } => format!(
            "({} {} {}({}))",
            go(lhs),
            op_text(*op),
            if *all { "ALL" } else { "ANY" },
            go(array)
        ),
        Expr::Subscript(a, i, _) => format!("{}[{}]", go(a), go(i)),
        Expr::NextVal(seq) => format!("nextval({seq})"),
    }
}
