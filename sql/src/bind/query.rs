//! Binding queries: `SELECT` (FROM, joins, WHERE, GROUP BY, HAVING, the
//! select list, DISTINCT [ON], ORDER BY), `VALUES`, set operations, `WITH`,
//! LIMIT/OFFSET/FETCH, and derived tables.
//!
//! The plan shape of a SELECT is fixed: FROM → Filter(WHERE) →
//! Aggregate → Filter(HAVING) → Project (select list, then ORDER BY
//! expressions not in it, "junk") → Distinct → Sort → Limit → Project
//! (dropping the junk). The optimizer then moves filters into scans and
//! joins and chooses access paths.

use std::rc::Rc;

use sqlparser::ast;
use teller_net::session::Column;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::scope::missing_from_entry;
use super::{agg, names, Aggs, Binder, Clause, CteDef, Scope, ScopeColumn};
use crate::catalog::{Relation, PRIMARY_INDEX_ID};
use crate::errors;
use crate::expr::{self, BindContext, Expr};
use crate::plan::{
    Access, AggPlan, JoinKind, JoinPlan, JoinStrategy, Plan, ScanPlan, SetOpKind, SetOpPlan,
    SortKey,
};

/// Rows a table is assumed to hold before any scan has counted them.
pub const DEFAULT_TABLE_ROWS: u64 = 1000;

/// A bound query: its plan and result columns.
#[derive(Debug)]
pub struct QueryOut {
    pub plan: Plan,
    pub columns: Vec<Column>,
}

/// A bound query body before ORDER BY and LIMIT are applied.
struct Body {
    plan: Plan,
    columns: Vec<Column>,
    /// Sort keys still to apply (over `plan`'s row).
    sort: Vec<SortKey>,
    /// Trailing columns of `plan` that only ORDER BY needs.
    junk: usize,
    /// Output columns that were untyped literals made text: a set
    /// operation may still resolve them to the other side's type.
    unknown: Vec<bool>,
}

/// A select-list entry before binding.
enum Item<'q> {
    Expr(&'q ast::Expr, String),
    Column(usize),
}

impl<'a> Binder<'a> {
    /// Binds a whole query (WITH, body, ORDER BY, LIMIT, OFFSET, FETCH).
    pub fn query(&mut self, q: &ast::Query, params: &mut Vec<Option<Type>>) -> PgResult<QueryOut> {
        if q.for_clause.is_some() || q.settings.is_some() || q.format_clause.is_some() {
            return Err(PgError::unsupported("this query clause is not supported"));
        }
        if !q.pipe_operators.is_empty() {
            return Err(PgError::syntax("pipe operators are not PostgreSQL syntax"));
        }
        let base = self.ctes.len();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(PgError::unsupported("WITH RECURSIVE is not supported yet"));
            }
            for cte in &with.cte_tables {
                let name = names::ident(&cte.alias.name);
                if self.ctes[base..].iter().any(|c| c.name == name) {
                    self.ctes.truncate(base);
                    return Err(PgError::new(
                        errors::DUPLICATE_ALIAS,
                        format!("WITH query name \"{name}\" specified more than once"),
                    ));
                }
                let visible = self.ctes.len();
                self.ctes.push(CteDef {
                    name,
                    query: Rc::new((*cte.query).clone()),
                    columns: cte
                        .alias
                        .columns
                        .iter()
                        .map(|c| names::ident(&c.name))
                        .collect(),
                    visible,
                });
            }
        }
        let result = self.query_body(q, params);
        self.ctes.truncate(base);
        result
    }

    fn query_body(&mut self, q: &ast::Query, params: &mut Vec<Option<Type>>) -> PgResult<QueryOut> {
        let order_by: &[ast::OrderByExpr] = match &q.order_by {
            None => &[],
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(items) => items,
                ast::OrderByKind::All(_) => {
                    return Err(PgError::syntax("ORDER BY ALL is not PostgreSQL syntax"))
                }
            },
        };
        let body = self.set_expr(&q.body, order_by, params)?;
        let mut plan = body.plan;
        if !body.sort.is_empty() {
            plan = Plan::Sort {
                input: plan.boxed(),
                keys: body.sort,
            };
        }
        let (limit, offset) = self.limits(q, params)?;
        if limit.is_some() || offset.is_some() {
            plan = Plan::Limit {
                input: plan.boxed(),
                limit,
                offset,
            };
        }
        if !q.locks.is_empty() {
            plan = super::dml::apply_locks(plan, &q.locks)?;
        }
        if body.junk > 0 {
            let width = body.columns.len();
            plan = Plan::Project {
                input: plan.boxed(),
                exprs: body
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Expr::Column(i, c.ty))
                    .collect(),
                names: body.columns.iter().map(|c| c.name.clone()).collect(),
            };
            debug_assert_eq!(plan.width(), width);
        }
        Ok(QueryOut {
            plan,
            columns: body.columns,
        })
    }

    fn limits(
        &mut self,
        q: &ast::Query,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Option<Expr>, Option<Expr>)> {
        let (mut limit, offset) = match &q.limit_clause {
            None => (None, None),
            Some(ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) if limit_by.is_empty() => (limit.clone(), offset.as_ref().map(|o| o.value.clone())),
            Some(_) => return Err(PgError::syntax("LIMIT #,# syntax is not supported")),
        };
        if let Some(fetch) = &q.fetch {
            if fetch.percent || fetch.with_ties {
                return Err(PgError::unsupported(
                    "FETCH ... PERCENT/WITH TIES is not supported",
                ));
            }
            if limit.is_some() {
                return Err(PgError::syntax("cannot use both LIMIT and FETCH"));
            }
            limit = Some(
                fetch
                    .quantity
                    .clone()
                    .unwrap_or_else(|| ast::Expr::value(ast::Value::Number("1".into(), false))),
            );
        }
        let mut count = |e: Option<ast::Expr>, binder: &mut Binder<'a>| -> PgResult<Option<Expr>> {
            let Some(e) = e else { return Ok(None) };
            if matches!(&e, ast::Expr::Value(v) if v.value == ast::Value::Null) {
                return Ok(None);
            }
            let bound = binder.expr(&e, params, None, Clause::Limit)?;
            let mut cx = BindContext::new(params);
            let bound = match bound {
                Expr::Param(i) if cx.params[i].is_none() => {
                    cx.params[i] = Some(Type::Int8);
                    Expr::Param(i)
                }
                b => b,
            };
            Ok(Some(expr::ops::cast_to(bound, Type::Int8, &mut cx)?))
        };
        let limit = count(limit, self)?;
        let offset = count(offset, self)?;
        Ok((limit, offset))
    }

    fn set_expr(
        &mut self,
        body: &ast::SetExpr,
        order_by: &[ast::OrderByExpr],
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Body> {
        match body {
            ast::SetExpr::Select(select) => {
                let saved = self.set_scope(Scope::default());
                let result = self.select(select, order_by, params);
                self.set_scope(saved);
                result
            }
            ast::SetExpr::Query(q) => {
                let out = self.query(q, params)?;
                self.order_outputs(out.plan, out.columns, order_by, params)
            }
            ast::SetExpr::Values(values) => {
                let (plan, columns) = self.values(values, params)?;
                self.order_outputs(plan, columns, order_by, params)
            }
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let l = self.operand(left, params)?;
                let r = self.operand(right, params)?;
                let (plan, columns) = set_operation(*op, *set_quantifier, l, r, params)?;
                self.order_outputs(plan, columns, order_by, params)
            }
            ast::SetExpr::Table(_) => Err(PgError::unsupported("TABLE name is not supported yet")),
            _ => Err(PgError::unsupported("this query form is not supported")),
        }
    }

    /// One side of a set operation: a full body with its own sort applied.
    fn operand(
        &mut self,
        body: &ast::SetExpr,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Vec<Column>, Vec<bool>)> {
        let b = self.set_expr(body, &[], params)?;
        Ok((b.plan, b.columns, b.unknown))
    }

    /// ORDER BY over a body's output columns only (set operations, VALUES).
    fn order_outputs(
        &mut self,
        plan: Plan,
        columns: Vec<Column>,
        order_by: &[ast::OrderByExpr],
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Body> {
        let mut sort = Vec::with_capacity(order_by.len());
        if !order_by.is_empty() {
            let scope = Scope::new(
                columns
                    .iter()
                    .map(|c| ScopeColumn::new(c.name.clone(), c.ty))
                    .collect(),
            );
            let saved = self.set_scope(scope);
            let result: PgResult<()> = (|| {
                for item in order_by {
                    let e = match ordinal(&item.expr, columns.len())? {
                        Some(i) => Expr::Column(i, columns[i].ty),
                        None => self.expr(&item.expr, params, None, Clause::OrderBy)?,
                    };
                    sort.push(sort_key(e, &item.options)?);
                }
                Ok(())
            })();
            self.set_scope(saved);
            result?;
        }
        let unknown = vec![false; columns.len()];
        Ok(Body {
            plan,
            columns,
            sort,
            junk: 0,
            unknown,
        })
    }

    fn values(
        &mut self,
        values: &ast::Values,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Vec<Column>)> {
        let mut rows = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            let mut bound = Vec::with_capacity(row.len());
            for e in row.iter() {
                bound.push(self.expr(e, params, None, Clause::Values)?);
            }
            if rows
                .first()
                .is_some_and(|r: &Vec<Expr>| r.len() != bound.len())
            {
                return Err(PgError::syntax("VALUES lists must all be the same length"));
            }
            rows.push(bound);
        }
        let width = rows.first().map_or(0, Vec::len);
        let mut types = Vec::with_capacity(width);
        for i in 0..width {
            let mut ty = Type::Unknown;
            for row in &rows {
                let t = row[i].ty(params);
                ty = expr::ops::unify(ty, t).ok_or_else(|| {
                    PgError::new(
                        SqlState::DATATYPE_MISMATCH,
                        format!(
                            "VALUES types {} and {} cannot be matched",
                            ty.name(),
                            t.name()
                        ),
                    )
                })?;
            }
            types.push(if ty == Type::Unknown { Type::Text } else { ty });
        }
        let mut cx = BindContext::new(params);
        for row in &mut rows {
            for (i, e) in row.iter_mut().enumerate() {
                let taken = std::mem::replace(e, Expr::Const(Value::Null, Type::Unknown));
                *e = expr::ops::coerce_to(taken, types[i], &mut cx)?;
            }
        }
        let columns = types
            .iter()
            .enumerate()
            .map(|(i, t)| Column::new(format!("column{}", i + 1), *t))
            .collect();
        Ok((Plan::Values { rows, types }, columns))
    }

    fn select(
        &mut self,
        s: &ast::Select,
        order_by: &[ast::OrderByExpr],
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Body> {
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.qualify.is_some()
            || !s.connect_by.is_empty()
        {
            return Err(PgError::unsupported("this SELECT clause is not supported"));
        }
        if !s.named_window.is_empty() {
            return Err(PgError::unsupported(
                "window functions are not supported yet",
            ));
        }
        let (mut plan, scope) = self.from(&s.from, params)?;
        self.set_scope(scope.clone());
        if let Some(w) = &s.selection {
            let predicate = self.condition(w, params, None, Clause::Where)?;
            plan = Plan::Filter {
                input: plan.boxed(),
                predicate,
            };
        }
        // The select list, with `*` expanded.
        let mut items = Vec::with_capacity(s.projection.len());
        for item in &s.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => items.push(Item::Expr(e, names::column_name(e))),
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    items.push(Item::Expr(expr, names::ident(alias)))
                }
                ast::SelectItem::Wildcard(_) => {
                    if scope.is_empty() {
                        return Err(PgError::syntax(
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        if !c.hidden && !c.merged {
                            items.push(Item::Column(i));
                        }
                    }
                }
                ast::SelectItem::QualifiedWildcard(
                    ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                    _,
                ) => {
                    let parts = names::object_parts(name)?;
                    let q = parts.last().cloned().unwrap_or_default();
                    if !scope.has_qualifier(&q) {
                        return Err(missing_from_entry(&q));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.qualifier.as_deref() == Some(q.as_str()) && !c.hidden {
                            items.push(Item::Column(i));
                        }
                    }
                }
                other => {
                    return Err(PgError::unsupported(format!(
                        "select item {other} is not supported"
                    )))
                }
            }
        }
        // GROUP BY (input columns first, then output names and ordinals).
        let group_asts: Vec<&ast::Expr> = match &s.group_by {
            ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
                exprs.iter().collect()
            }
            _ => return Err(PgError::unsupported("this GROUP BY form is not supported")),
        };
        let mut group = Vec::with_capacity(group_asts.len());
        for g in group_asts {
            let e = match self.group_item(g, &items, &scope)? {
                GroupItem::Ast(e) => self.expr(e, params, None, Clause::GroupBy)?,
                GroupItem::Column(i) => Expr::Column(i, scope.columns[i].ty),
            };
            if !group.contains(&e) {
                group.push(e);
            }
        }
        let mut aggs = Aggs::default();
        let mut exprs = Vec::with_capacity(items.len());
        let mut columns = Vec::with_capacity(items.len());
        for item in &items {
            let (e, column) = match item {
                Item::Expr(e, name) => {
                    let bound = self.expr(e, params, Some(&mut aggs), Clause::Select)?;
                    let mut column = Column::new(name.clone(), Type::Unknown);
                    if let Expr::Column(i, _) = bound {
                        source_column(&mut column, &scope.columns[i]);
                    }
                    (bound, column)
                }
                Item::Column(i) => {
                    let c = &scope.columns[*i];
                    let mut column = Column::new(c.name.clone(), c.ty);
                    source_column(&mut column, c);
                    (Expr::Column(*i, c.ty), column)
                }
            };
            exprs.push(e);
            columns.push(column);
        }
        let having = s
            .having
            .as_ref()
            .map(|h| self.condition(h, params, Some(&mut aggs), Clause::Having))
            .transpose()?;
        // ORDER BY: output columns by ordinal or name, else expressions.
        let mut sort_exprs: Vec<(Option<usize>, Option<Expr>, &ast::OrderByOptions)> = Vec::new();
        for item in order_by {
            if let Some(i) = ordinal(&item.expr, columns.len())? {
                sort_exprs.push((Some(i), None, &item.options));
                continue;
            }
            if let ast::Expr::Identifier(id) = &item.expr {
                let name = names::ident(id);
                let hits: Vec<usize> = (0..columns.len())
                    .filter(|&i| columns[i].name == name)
                    .collect();
                if hits.len() > 1 && scope.find(None, &name)?.is_none() {
                    return Err(PgError::new(
                        errors::AMBIGUOUS_COLUMN,
                        format!("ORDER BY \"{name}\" is ambiguous"),
                    ));
                }
                if let [i] = hits[..] {
                    sort_exprs.push((Some(i), None, &item.options));
                    continue;
                }
            }
            let e = self.expr(&item.expr, params, Some(&mut aggs), Clause::OrderBy)?;
            sort_exprs.push((None, Some(e), &item.options));
        }
        // DISTINCT ON expressions bind like ORDER BY items.
        let mut distinct_on: Option<Vec<(Option<usize>, Option<Expr>)>> = None;
        if let Some(ast::Distinct::On(on)) = &s.distinct {
            let mut out = Vec::with_capacity(on.len());
            for e in on {
                if let Some(i) = ordinal(e, columns.len())? {
                    out.push((Some(i), None));
                    continue;
                }
                let bound = self.expr(e, params, Some(&mut aggs), Clause::OrderBy)?;
                out.push((None, Some(bound)));
            }
            distinct_on = Some(out);
        }
        // Aggregation.
        let grouped = !group.is_empty() || !aggs.calls.is_empty() || having.is_some();
        let map = |e: Expr, group: &[(Expr, Type)]| -> PgResult<Expr> {
            if grouped {
                agg::grouped(e, group, &scope)
            } else {
                Ok(e)
            }
        };
        let group_typed: Vec<(Expr, Type)> =
            group.iter().map(|g| (g.clone(), g.ty(params))).collect();
        let mut exprs = exprs
            .into_iter()
            .map(|e| map(e, &group_typed))
            .collect::<PgResult<Vec<_>>>()?;
        let having = having.map(|h| map(h, &group_typed)).transpose()?;
        let mut sort_exprs = sort_exprs
            .into_iter()
            .map(|(i, e, o)| Ok((i, e.map(|e| map(e, &group_typed)).transpose()?, o)))
            .collect::<PgResult<Vec<_>>>()?;
        let distinct_on = distinct_on
            .map(|on| {
                on.into_iter()
                    .map(|(i, e)| Ok((i, e.map(|e| map(e, &group_typed)).transpose()?)))
                    .collect::<PgResult<Vec<_>>>()
            })
            .transpose()?;
        if grouped {
            plan = Plan::Aggregate(Box::new(AggPlan {
                input: plan,
                group,
                aggs: aggs.calls,
            }));
            if let Some(h) = having {
                plan = Plan::Filter {
                    input: plan.boxed(),
                    predicate: h,
                };
            }
        }
        // Output types: unknowns become text.
        let unknown: Vec<bool> = exprs
            .iter()
            .map(|e| matches!(e, Expr::Const(_, Type::Unknown)))
            .collect();
        {
            let mut cx = BindContext::new(params);
            for (e, column) in exprs.iter_mut().zip(&mut columns) {
                let taken = std::mem::replace(e, Expr::Const(Value::Null, Type::Unknown));
                *e = finalize_unknown(taken, &mut cx)?;
                column.ty = e.ty(cx.params);
            }
        }
        // Junk columns for ORDER BY / DISTINCT ON expressions not selected.
        let width = exprs.len();
        let column_of = |i: Option<usize>, e: Option<Expr>, exprs: &mut Vec<Expr>| -> usize {
            match (i, e) {
                (Some(i), _) => i,
                (None, Some(e)) => match exprs.iter().position(|x| *x == e) {
                    Some(i) => i,
                    None => {
                        exprs.push(e);
                        exprs.len() - 1
                    }
                },
                (None, None) => unreachable!("an ORDER BY item is an ordinal or an expression"),
            }
        };
        let mut sort = Vec::with_capacity(sort_exprs.len());
        for (i, e, options) in sort_exprs.drain(..) {
            let k = column_of(i, e, &mut exprs);
            let ty = exprs[k].ty(params);
            sort.push(sort_key(Expr::Column(k, ty), options)?);
        }
        let on_columns = distinct_on.map(|on| {
            on.into_iter()
                .map(|(i, e)| column_of(i, e, &mut exprs))
                .collect::<Vec<_>>()
        });
        let junk = exprs.len() - width;
        let mut out_names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        out_names.extend((0..junk).map(|i| format!("?junk{i}?")));
        plan = Plan::Project {
            input: plan.boxed(),
            exprs: exprs.clone(),
            names: out_names,
        };
        match (&s.distinct, on_columns) {
            (Some(ast::Distinct::Distinct), _) => {
                if junk > 0 {
                    return Err(PgError::new(
                        errors::INVALID_COLUMN_REFERENCE,
                        "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                    ));
                }
                plan = Plan::Distinct {
                    input: plan.boxed(),
                    on: None,
                };
            }
            (Some(ast::Distinct::On(_)), Some(on)) => {
                let leading: Vec<usize> = sort
                    .iter()
                    .take(on.len())
                    .filter_map(|k| match k.expr {
                        Expr::Column(i, _) => Some(i),
                        _ => None,
                    })
                    .collect();
                if !sort.is_empty()
                    && (leading.len() < on.len().min(sort.len())
                        || !leading.iter().all(|i| on.contains(i)))
                {
                    return Err(PgError::new(
                        errors::INVALID_COLUMN_REFERENCE,
                        "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
                    ));
                }
                let mut keys = sort;
                for &i in &on {
                    if !keys
                        .iter()
                        .any(|k| k.expr == Expr::Column(i, exprs[i].ty(params)))
                    {
                        keys.push(SortKey {
                            expr: Expr::Column(i, exprs[i].ty(params)),
                            desc: false,
                            nulls_first: false,
                        });
                    }
                }
                plan = Plan::Distinct {
                    input: Box::new(Plan::Sort {
                        input: plan.boxed(),
                        keys,
                    }),
                    on: Some(
                        on.iter()
                            .map(|&i| Expr::Column(i, exprs[i].ty(params)))
                            .collect(),
                    ),
                };
                sort = Vec::new();
            }
            _ => {}
        }
        Ok(Body {
            plan,
            columns,
            sort,
            junk,
            unknown,
        })
    }

    fn group_item<'q>(
        &self,
        g: &'q ast::Expr,
        items: &[Item<'q>],
        scope: &Scope,
    ) -> PgResult<GroupItem<'q>> {
        let pick = |i: usize| match &items[i] {
            Item::Expr(e, _) => GroupItem::Ast(e),
            Item::Column(c) => GroupItem::Column(*c),
        };
        if let Some(i) = ordinal(g, items.len())? {
            return Ok(pick(i));
        }
        if let ast::Expr::Identifier(id) = g {
            let name = names::ident(id);
            if scope.find(None, &name)?.is_none() {
                for (i, item) in items.iter().enumerate() {
                    if let Item::Expr(_, n) = item {
                        if *n == name {
                            return Ok(pick(i));
                        }
                    }
                }
            }
        }
        Ok(GroupItem::Ast(g))
    }

    /// Binds the FROM clause: its plan and scope (comma items cross-joined).
    pub fn from(
        &mut self,
        from: &[ast::TableWithJoins],
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        let mut acc: Option<(Plan, Scope)> = None;
        for twj in from {
            let item = self.table_with_joins(twj, params)?;
            acc = Some(match acc {
                None => item,
                Some(left) => cross(left, item)?,
            });
        }
        Ok(acc.unwrap_or_else(|| {
            (
                Plan::Values {
                    rows: vec![Vec::new()],
                    types: Vec::new(),
                },
                Scope::default(),
            )
        }))
    }

    fn table_with_joins(
        &mut self,
        twj: &ast::TableWithJoins,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        let mut acc = self.table_factor(&twj.relation, params)?;
        for join in &twj.joins {
            acc = self.join(acc, join, params)?;
        }
        Ok(acc)
    }

    fn join(
        &mut self,
        (left, lscope): (Plan, Scope),
        join: &ast::Join,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        use ast::JoinOperator as J;
        let (right, rscope) = self.table_factor(&join.relation, params)?;
        check_duplicate_qualifiers(&lscope, &rscope)?;
        let (kind, constraint) = match &join.join_operator {
            J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
            J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
            J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
            J::FullOuter(c) => (JoinKind::Full, Some(c)),
            J::CrossJoin(_) => (JoinKind::Inner, None),
            other => {
                return Err(PgError::unsupported(format!(
                    "join {other:?} is not supported"
                )))
            }
        };
        let mut scope = lscope.concat(&rscope);
        let lw = lscope.len();
        let condition = match constraint {
            None | Some(ast::JoinConstraint::None) => {
                if kind != JoinKind::Inner {
                    return Err(PgError::syntax(
                        "syntax error: an outer join needs ON or USING",
                    ));
                }
                None
            }
            Some(ast::JoinConstraint::On(e)) => {
                let saved = self.set_scope(scope.clone());
                let c = self.condition(e, params, None, Clause::JoinOn);
                self.set_scope(saved);
                Some(c?)
            }
            Some(ast::JoinConstraint::Using(cols)) => {
                let mut names_list = Vec::with_capacity(cols.len());
                for c in cols {
                    let parts = names::object_parts(c)?;
                    names_list.push(parts.last().cloned().unwrap_or_default());
                }
                using_condition(&mut scope, lw, &lscope, &rscope, &names_list, params)?
            }
            Some(ast::JoinConstraint::Natural) => {
                let common: Vec<String> = lscope
                    .columns
                    .iter()
                    .filter(|c| !c.hidden && !c.merged)
                    .filter(|c| rscope.columns.iter().any(|r| r.name == c.name && !r.hidden))
                    .map(|c| c.name.clone())
                    .collect();
                using_condition(&mut scope, lw, &lscope, &rscope, &common, params)?
            }
        };
        let estimate = left.estimate() * right.estimate();
        Ok((
            Plan::Join(Box::new(JoinPlan {
                kind,
                left,
                right,
                strategy: JoinStrategy::NestedLoop,
                condition,
                estimate,
            })),
            scope,
        ))
    }

    fn table_factor(
        &mut self,
        tf: &ast::TableFactor,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        match tf {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                with_ordinality: false,
                partitions,
                sample: None,
                ..
            } if with_hints.is_empty() && partitions.is_empty() => {
                let parts = names::object_parts(name)?;
                if let [single] = &parts[..] {
                    if let Some(i) = self.ctes.iter().rposition(|c| c.name == *single) {
                        let cte = self.ctes[i].clone();
                        return self.cte(&cte, alias.as_ref(), params);
                    }
                }
                if let Some(v) = virtual_table(&parts) {
                    return virtual_scope(v, alias.as_ref());
                }
                self.table(&parts, alias.as_ref())
            }
            ast::TableFactor::Table {
                name,
                alias,
                args: Some(args),
                with_ordinality,
                ..
            } => self.table_function(name, &args.args, alias.as_ref(), *with_ordinality, params),
            ast::TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality,
                ..
            } => {
                let args: Vec<ast::FunctionArg> = array_exprs
                    .iter()
                    .map(|e| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e.clone())))
                    .collect();
                self.set_function("unnest", &args, alias.as_ref(), *with_ordinality, params)
            }
            ast::TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                if *lateral {
                    return Err(PgError::unsupported("LATERAL is not supported yet"));
                }
                let out = self.derived(subquery, params)?;
                let name = alias.as_ref().map(|a| names::ident(&a.name));
                derived_scope(out, name.as_deref(), alias.as_ref())
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (plan, scope) = self.table_with_joins(table_with_joins, params)?;
                match alias {
                    Some(a) => {
                        let out = QueryOut {
                            columns: scope
                                .columns
                                .iter()
                                .map(|c| Column::new(c.name.clone(), c.ty))
                                .collect(),
                            plan,
                        };
                        derived_scope(out, Some(&names::ident(&a.name)), Some(a))
                    }
                    None => Ok((plan, scope)),
                }
            }
            other => Err(PgError::unsupported(format!(
                "FROM item {other} is not supported yet"
            ))),
        }
    }

    /// A set-returning function in FROM: `generate_series` of integers.
    fn table_function(
        &mut self,
        name: &ast::ObjectName,
        args: &[ast::FunctionArg],
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        let parts = names::object_parts(name)?;
        let fname = parts.last().cloned().unwrap_or_default();
        if parts.len() > 2 || (parts.len() == 2 && parts[0] != "pg_catalog") {
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("function {} does not exist", parts.join(".")),
            ));
        }
        if fname == "unnest" || fname == "pg_partition_ancestors" {
            return self.set_function(&fname, args, alias, ordinality, params);
        }
        if fname != "generate_series" {
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("function {fname} does not exist"),
            ));
        }
        if ordinality {
            return Err(PgError::unsupported(
                "generate_series WITH ORDINALITY is not supported",
            ));
        }
        let saved = self.set_scope(Scope::default());
        let mut bound = Vec::with_capacity(args.len());
        let mut result = Ok(());
        for a in args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                    match self.expr(e, params, None, Clause::Select) {
                        Ok(b) => bound.push(b),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                other => {
                    result = Err(PgError::unsupported(format!(
                        "argument {other} is not supported"
                    )));
                    break;
                }
            }
        }
        self.set_scope(saved);
        result?;
        if bound.len() != 2 && bound.len() != 3 {
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!(
                    "function generate_series with {} arguments does not exist",
                    bound.len()
                ),
            ));
        }
        let mut ty = Type::Int4;
        for b in &bound {
            ty = match b.ty(params) {
                Type::Int2 | Type::Int4 | Type::Unknown => ty,
                Type::Int8 => Type::Int8,
                other => {
                    return Err(PgError::unsupported(format!(
                        "generate_series over {} is not supported yet",
                        other.name()
                    )))
                }
            };
        }
        let mut cx = BindContext::new(params);
        let mut coerced = Vec::with_capacity(bound.len());
        for b in bound {
            coerced.push(expr::ops::coerce_to(b, ty, &mut cx)?);
        }
        let mut it = coerced.into_iter();
        let (start, stop, step) = (
            it.next().expect("two arguments"),
            it.next().expect("two arguments"),
            it.next(),
        );
        let qualifier = alias.map_or_else(|| fname.clone(), |a| names::ident(&a.name));
        let column_name = match alias {
            Some(a) if !a.columns.is_empty() => names::ident(&a.columns[0].name),
            Some(a) => names::ident(&a.name),
            None => fname,
        };
        let mut column = ScopeColumn::new(column_name, ty);
        column.qualifier = Some(qualifier);
        Ok((
            Plan::Series {
                start,
                stop,
                step,
                ty,
            },
            Scope::new(vec![column]),
        ))
    }

    /// `unnest(array)` and `pg_partition_ancestors(rel)` in FROM.
    fn set_function(
        &mut self,
        fname: &str,
        args: &[ast::FunctionArg],
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))] = args else {
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!(
                    "function {fname} with {} arguments does not exist",
                    args.len()
                ),
            ));
        };
        let saved = self.set_scope(Scope::default());
        let element = super::pgfuncs::array_element(self, arg);
        let bound = self.expr(arg, params, None, Clause::Select);
        self.set_scope(saved);
        let bound = bound?;
        let mut cx = BindContext::new(params);
        let (func, arg, ty) = if fname == "unnest" {
            let arg = expr::ops::coerce_to(bound, Type::Text, &mut cx)?;
            (
                crate::plan::TableFn::Unnest,
                arg,
                element.unwrap_or(Type::Text),
            )
        } else {
            let arg = expr::ops::cast_to(bound, Type::Oid, &mut cx)?;
            (crate::plan::TableFn::PartitionAncestors, arg, Type::Oid)
        };
        let qualifier = alias.map_or_else(|| fname.to_string(), |a| names::ident(&a.name));
        let mut names_list: Vec<String> = vec![match alias {
            Some(a) if a.columns.is_empty() => names::ident(&a.name),
            _ if fname == "unnest" => "unnest".into(),
            _ => "relid".into(),
        }];
        if ordinality {
            names_list.push("ordinality".into());
        }
        if let Some(a) = alias {
            for (n, c) in names_list.iter_mut().zip(&a.columns) {
                *n = names::ident(&c.name);
            }
        }
        let mut columns = vec![ScopeColumn::new(names_list[0].clone(), ty)];
        if ordinality {
            columns.push(ScopeColumn::new(names_list[1].clone(), Type::Int8));
        }
        for c in &mut columns {
            c.qualifier = Some(qualifier.clone());
        }
        Ok((
            Plan::TableFn {
                func,
                args: vec![arg],
                ordinality,
                ty,
            },
            Scope::new(columns),
        ))
    }

    /// A subquery in FROM: bound at this level but seeing none of its
    /// siblings (no LATERAL).
    fn derived(&mut self, q: &ast::Query, params: &mut Vec<Option<Type>>) -> PgResult<QueryOut> {
        let saved = self.set_scope(Scope::default());
        let out = self.query(q, params);
        self.set_scope(saved);
        out
    }

    fn cte(
        &mut self,
        cte: &CteDef,
        alias: Option<&ast::TableAlias>,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<(Plan, Scope)> {
        let hidden = self.ctes.split_off(cte.visible);
        let out = self.derived(&cte.query, params);
        self.ctes.extend(hidden);
        let mut out = out?;
        if cte.columns.len() > out.columns.len() {
            return Err(PgError::syntax(format!(
                "WITH query \"{}\" has {} columns available but {} columns specified",
                cte.name,
                out.columns.len(),
                cte.columns.len()
            )));
        }
        for (c, name) in out.columns.iter_mut().zip(&cte.columns) {
            c.name = name.clone();
        }
        let name = alias.map_or(cte.name.clone(), |a| names::ident(&a.name));
        derived_scope(out, Some(&name), alias)
    }

    /// A base table by name.
    fn table(
        &mut self,
        parts: &[String],
        alias: Option<&ast::TableAlias>,
    ) -> PgResult<(Plan, Scope)> {
        let catalog = self.catalog();
        let (schema, name) = self.resolve_schema(parts)?;
        let table = match catalog.relation(schema, name) {
            Some(Relation::Table(id)) => catalog
                .table(id)
                .cloned()
                .ok_or_else(|| PgError::internal("relation without table"))?,
            Some(Relation::View(id)) => {
                let view = catalog
                    .view(id)
                    .cloned()
                    .ok_or_else(|| PgError::internal("relation without view"))?;
                return self.view(&view, alias);
            }
            Some(_) => {
                return Err(PgError::new(
                    errors::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a table"),
                ))
            }
            None => return Err(errors::undefined_table(name)),
        };
        if !self.depends.contains(&table.id) {
            self.depends.push(table.id);
        }
        let qualifier = alias.map_or_else(|| table.name.clone(), |a| names::ident(&a.name));
        let mut columns: Vec<ScopeColumn> = table
            .columns
            .iter()
            .map(|c| ScopeColumn {
                qualifier: Some(qualifier.clone()),
                name: c.name.clone(),
                ty: c.ty,
                hidden: c.hidden,
                merged: false,
                source: Some((table.id, c.id)),
                typmod: c.typmod,
                element: None,
            })
            .collect();
        if let Some(a) = alias {
            rename_columns(&mut columns, a, &qualifier)?;
        }
        let rows = self
            .env
            .shard
            .row_count(table.id)
            .unwrap_or(DEFAULT_TABLE_ROWS) as f64;
        let scan = ScanPlan {
            alias: qualifier,
            table,
            index: PRIMARY_INDEX_ID,
            access: Access::Full,
            filter: None,
            implied: Vec::new(),
            covering: false,
            reverse: false,
            limit: None,
            lock: None,
            estimate: rows.max(1.0),
        };
        Ok((Plan::Scan(Box::new(scan)), Scope::new(columns)))
    }

    /// A view: its stored query bound as a derived table, in a scope of its
    /// own (no enclosing columns, no WITH names of the statement).
    fn view(
        &mut self,
        view: &crate::catalog::ViewDesc,
        alias: Option<&ast::TableAlias>,
    ) -> PgResult<(Plan, Scope)> {
        if !self.depends.contains(&view.id) {
            self.depends.push(view.id);
        }
        if self.expanding.contains(&view.id) || self.expanding.len() >= super::VIEW_NESTING_MAX {
            return Err(PgError::new(
                SqlState("42P17"),
                format!(
                    "infinite recursion detected in rules for relation \"{}\"",
                    view.name
                ),
            ));
        }
        let query = parse_view_query(&view.query)?;
        let levels = std::mem::replace(&mut self.levels, vec![super::Level::default()]);
        let ctes = std::mem::take(&mut self.ctes);
        self.expanding.push(view.id);
        let mut params = Vec::new();
        let out = self.query(&query, &mut params);
        self.expanding.pop();
        self.levels = levels;
        self.ctes = ctes;
        let mut out = out?;
        let types: Vec<Type> = out.columns.iter().map(|c| c.ty).collect();
        let stored: Vec<Type> = view.columns.iter().map(|c| c.ty).collect();
        let fits = types.len() == stored.len()
            && types
                .iter()
                .zip(&stored)
                .all(|(t, s)| t == s || (*t == Type::Unknown && *s == Type::Text));
        if !fits || !params.is_empty() {
            return Err(PgError::new(
                errors::DEPENDENT_OBJECTS_STILL_EXIST,
                format!(
                    "view \"{}\" no longer matches the relations it reads; recreate it",
                    view.name
                ),
            ));
        }
        if types != stored {
            out.plan = cast_columns(out.plan, &types, &stored, &mut params)?;
        }
        for (c, v) in out.columns.iter_mut().zip(&view.columns) {
            c.name = v.name.clone();
            c.ty = v.ty;
            c.type_modifier = v.typmod;
        }
        let name = alias.map_or_else(|| view.name.clone(), |a| names::ident(&a.name));
        derived_scope(out, Some(&name), alias)
    }

    /// Binds a view's query as [`Self::view`] does (checking it still binds).
    pub fn view_rows(&mut self, view: &crate::catalog::ViewDesc) -> PgResult<(Plan, Scope)> {
        self.view(view, None)
    }

    /// Resolves `[db.][schema.]name` to (schema id, name).
    pub fn resolve_schema<'n>(&self, parts: &'n [String]) -> PgResult<(u64, &'n str)> {
        let catalog = self.catalog();
        if self.env.database == 0 {
            return Err(PgError::new(
                SqlState::INVALID_CATALOG_NAME,
                format!("database \"{}\" does not exist", self.env.database_name),
            ));
        }
        let (schema, name) = match parts {
            [name] => return Ok((self.env.schema, name)),
            [schema, name] => (schema, name),
            [db, schema, name] => {
                let current = catalog
                    .databases
                    .get(&self.env.database)
                    .map(|d| d.name.as_str())
                    .unwrap_or_default();
                if db != current {
                    return Err(PgError::unsupported(format!(
                        "cross-database references are not implemented: {}",
                        parts.join(".")
                    )));
                }
                (schema, name)
            }
            _ => {
                return Err(PgError::syntax(format!(
                    "improper qualified name (too many dotted names): {}",
                    parts.join(".")
                )))
            }
        };
        let schema = catalog.schema(self.env.database, schema).ok_or_else(|| {
            PgError::new(
                errors::INVALID_SCHEMA_NAME,
                format!("schema \"{schema}\" does not exist"),
            )
        })?;
        Ok((schema.id, name))
    }
}

/// A view's stored query text as a query.
pub fn parse_view_query(text: &str) -> PgResult<ast::Query> {
    let statements = sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
        .with_recursion_limit(crate::session::PARSER_RECURSION_MAX)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| crate::encoding::corrupt(format!("stored view query: {e}")))?;
    match statements.into_iter().next() {
        Some(ast::Statement::Query(q)) => Ok(*q),
        _ => Err(crate::encoding::corrupt("stored view query is not a query")),
    }
}

/// The catalog view a table name names, if any: `pg_catalog.x` and
/// `information_schema.x`, and unqualified `pg_catalog` names (which come
/// first on PostgreSQL's search path).
fn virtual_table(parts: &[String]) -> Option<crate::catalog::pg::VirtualTable> {
    use crate::catalog::pg::VirtualTable;
    match parts {
        [name] => VirtualTable::find(None, name),
        [schema, name] => VirtualTable::find(Some(schema), name),
        [_, schema, name] => VirtualTable::find(Some(schema), name),
        _ => None,
    }
}

fn virtual_scope(
    v: crate::catalog::pg::VirtualTable,
    alias: Option<&ast::TableAlias>,
) -> PgResult<(Plan, Scope)> {
    let def = v.def();
    let qualifier = alias.map_or_else(|| def.name.to_string(), |a| names::ident(&a.name));
    let mut columns: Vec<ScopeColumn> = def
        .columns
        .iter()
        .map(|(name, ty, element)| {
            let mut c = ScopeColumn::new(*name, *ty);
            c.qualifier = Some(qualifier.clone());
            c.element = *element;
            c
        })
        .collect();
    if let Some(a) = alias {
        rename_columns(&mut columns, a, &qualifier)?;
    }
    Ok((Plan::Virtual(v), Scope::new(columns)))
}

enum GroupItem<'q> {
    Ast(&'q ast::Expr),
    Column(usize),
}

fn source_column(column: &mut Column, c: &ScopeColumn) {
    column.ty = c.ty;
    column.type_modifier = c.typmod;
    if let Some((table, id)) = c.source {
        column.table_oid = table as u32;
        column.column_id = i16::try_from(id).unwrap_or(0);
    }
}

/// An ORDER BY / GROUP BY ordinal (`ORDER BY 2`), checked against `width`.
fn ordinal(e: &ast::Expr, width: usize) -> PgResult<Option<usize>> {
    let ast::Expr::Value(v) = e else {
        return Ok(None);
    };
    let ast::Value::Number(n, _) = &v.value else {
        return Ok(None);
    };
    match n.parse::<usize>() {
        Ok(k) if k >= 1 && k <= width => Ok(Some(k - 1)),
        _ => Err(PgError::new(
            errors::INVALID_COLUMN_REFERENCE,
            format!("ORDER BY position {n} is not in select list"),
        )),
    }
}

fn sort_key(expr: Expr, options: &ast::OrderByOptions) -> PgResult<SortKey> {
    let desc = match &options.sort {
        None | Some(ast::OrderBySort::Asc) => false,
        Some(ast::OrderBySort::Desc) => true,
        Some(ast::OrderBySort::Using(_)) => {
            return Err(PgError::unsupported("ORDER BY ... USING is not supported"))
        }
    };
    Ok(SortKey {
        expr,
        desc,
        nulls_first: options.nulls_first.unwrap_or(desc),
    })
}

/// Output expressions of unknown type become text, as in PostgreSQL.
fn finalize_unknown(e: Expr, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    Ok(match e.ty(cx.params) {
        Type::Unknown => match e {
            Expr::Param(i) => {
                cx.params[i] = Some(Type::Text);
                Expr::Param(i)
            }
            Expr::Const(v, _) => Expr::Const(v, Type::Text),
            other => Expr::Cast(Box::new(other), Type::Text),
        },
        _ => e,
    })
}

fn check_duplicate_qualifiers(l: &Scope, r: &Scope) -> PgResult<()> {
    for q in r.qualifiers() {
        if l.has_qualifier(&q) {
            return Err(PgError::new(
                errors::DUPLICATE_ALIAS,
                format!("table name \"{q}\" specified more than once"),
            ));
        }
    }
    Ok(())
}

pub(super) fn cross(
    (left, lscope): (Plan, Scope),
    (right, rscope): (Plan, Scope),
) -> PgResult<(Plan, Scope)> {
    check_duplicate_qualifiers(&lscope, &rscope)?;
    let estimate = left.estimate() * right.estimate();
    Ok((
        Plan::Join(Box::new(JoinPlan {
            kind: JoinKind::Inner,
            left,
            right,
            strategy: JoinStrategy::NestedLoop,
            condition: None,
            estimate,
        })),
        lscope.concat(&rscope),
    ))
}

/// The equalities of `USING (names)`; marks the right-hand columns merged.
fn using_condition(
    scope: &mut Scope,
    lw: usize,
    lscope: &Scope,
    rscope: &Scope,
    names_list: &[String],
    params: &mut Vec<Option<Type>>,
) -> PgResult<Option<Expr>> {
    let mut preds = Vec::with_capacity(names_list.len());
    for name in names_list {
        let l = lscope.find(None, name)?.ok_or_else(|| {
            PgError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{name}\" specified in USING clause does not exist in left table"),
            )
        })?;
        let r = rscope.find(None, name)?.ok_or_else(|| {
            PgError::new(
                SqlState::UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" specified in USING clause does not exist in right table"
                ),
            )
        })?;
        scope.columns[lw + r].merged = true;
        let mut cx = BindContext::new(params);
        preds.push(expr::ops::compare_exprs(
            &ast::BinaryOperator::Eq,
            Expr::Column(l, lscope.columns[l].ty),
            Expr::Column(lw + r, rscope.columns[r].ty),
            &mut cx,
        )?);
    }
    Ok(crate::plan::conjoin(preds))
}

fn rename_columns(
    columns: &mut [ScopeColumn],
    alias: &ast::TableAlias,
    name: &str,
) -> PgResult<()> {
    let visible: Vec<usize> = (0..columns.len()).filter(|&i| !columns[i].hidden).collect();
    if alias.columns.len() > visible.len() {
        return Err(PgError::syntax(format!(
            "table \"{name}\" has {} columns available but {} columns specified",
            visible.len(),
            alias.columns.len()
        )));
    }
    for (i, c) in visible.into_iter().zip(&alias.columns) {
        columns[i].name = names::ident(&c.name);
    }
    Ok(())
}

/// The scope of a derived table or CTE reference.
fn derived_scope(
    out: QueryOut,
    name: Option<&str>,
    alias: Option<&ast::TableAlias>,
) -> PgResult<(Plan, Scope)> {
    let mut columns: Vec<ScopeColumn> = out
        .columns
        .iter()
        .map(|c| ScopeColumn {
            qualifier: name.map(str::to_string),
            name: c.name.clone(),
            ty: c.ty,
            hidden: false,
            merged: false,
            source: None,
            typmod: c.type_modifier,
            element: None,
        })
        .collect();
    if let (Some(a), Some(n)) = (alias, name) {
        rename_columns(&mut columns, a, n)?;
    }
    Ok((out.plan, Scope::new(columns)))
}

/// Casts a plan's columns from `from` to `to` types with a projection.
pub fn cast_columns(
    plan: Plan,
    from: &[Type],
    to: &[Type],
    params: &mut Vec<Option<Type>>,
) -> PgResult<Plan> {
    let mut cx = BindContext::new(params);
    let mut exprs = Vec::with_capacity(from.len());
    for (i, (&f, &t)) in from.iter().zip(to).enumerate() {
        let col = Expr::Column(i, f);
        exprs.push(if f == t || t == Type::Unknown {
            col
        } else if f == Type::Unknown {
            Expr::Cast(Box::new(col), t)
        } else {
            expr::ops::coerce_to(col, t, &mut cx)?
        });
    }
    Ok(Plan::Project {
        input: plan.boxed(),
        names: (0..exprs.len())
            .map(|i| format!("column{}", i + 1))
            .collect(),
        exprs,
    })
}

fn set_operation(
    op: ast::SetOperator,
    quantifier: ast::SetQuantifier,
    (lplan, lcols, lunknown): (Plan, Vec<Column>, Vec<bool>),
    (rplan, rcols, runknown): (Plan, Vec<Column>, Vec<bool>),
    params: &mut Vec<Option<Type>>,
) -> PgResult<(Plan, Vec<Column>)> {
    let (kind, word) = match op {
        ast::SetOperator::Union => (SetOpKind::Union, "UNION"),
        ast::SetOperator::Intersect => (SetOpKind::Intersect, "INTERSECT"),
        ast::SetOperator::Except | ast::SetOperator::Minus => (SetOpKind::Except, "EXCEPT"),
    };
    let all = match quantifier {
        ast::SetQuantifier::All => true,
        ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
        _ => {
            return Err(PgError::unsupported(format!(
                "{word} BY NAME is not supported"
            )))
        }
    };
    if lcols.len() != rcols.len() {
        return Err(PgError::syntax(format!(
            "each {word} query must have the same number of columns"
        )));
    }
    let mut types = Vec::with_capacity(lcols.len());
    for (i, (l, r)) in lcols.iter().zip(&rcols).enumerate() {
        // An untyped literal takes the other side's type.
        let lt = if lunknown[i] { Type::Unknown } else { l.ty };
        let rt = if runknown[i] { Type::Unknown } else { r.ty };
        let t = expr::ops::unify(lt, rt).ok_or_else(|| {
            PgError::new(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "{word} types {} and {} cannot be matched",
                    l.ty.name(),
                    r.ty.name()
                ),
            )
        })?;
        types.push(if t == Type::Unknown { Type::Text } else { t });
    }
    let as_given = |cols: &[Column], unknown: &[bool]| -> Vec<Type> {
        cols.iter()
            .zip(unknown)
            .map(|(c, &u)| if u { Type::Unknown } else { c.ty })
            .collect()
    };
    let ltypes = as_given(&lcols, &lunknown);
    let rtypes = as_given(&rcols, &runknown);
    let left = if ltypes
        .iter()
        .zip(&types)
        .all(|(a, b)| a == b || (*a == Type::Unknown && *b == Type::Text))
    {
        lplan
    } else {
        cast_columns(lplan, &ltypes, &types, params)?
    };
    let right = if rtypes
        .iter()
        .zip(&types)
        .all(|(a, b)| a == b || (*a == Type::Unknown && *b == Type::Text))
    {
        rplan
    } else {
        cast_columns(rplan, &rtypes, &types, params)?
    };
    let columns = lcols
        .iter()
        .zip(&types)
        .map(|(c, t)| Column::new(c.name.clone(), *t))
        .collect();
    Ok((
        Plan::SetOp(Box::new(SetOpPlan {
            kind,
            all,
            left,
            right,
        })),
        columns,
    ))
}
