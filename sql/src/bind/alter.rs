//! ALTER TABLE: each operation edits a copy of the table's descriptor and
//! may leave work for the executor (back-filling an index, validating
//! existing rows, re-keying the table under a new primary key).
//!
//! Thanks to column ids, ADD COLUMN with a constant default and DROP COLUMN
//! rewrite no row: old rows lack the new column's id and read its `missing`
//! value; a dropped column's bytes are skipped. A volatile default
//! (`nextval`, SERIAL) is written into every existing row instead.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::ddl::{column_type, foreign_key, sequence, Ddl, DdlOp};
use super::dml::table_scope;
use super::{names, Binder, Clause, Scope};
use crate::catalog::{
    CheckDesc, ColumnDesc, IndexColumn, IndexDesc, Relation, SequenceDesc, TableDesc, TableRef,
};
use crate::encoding::key::{Direction, Nulls};
use crate::encoding::row::ColumnId;
use crate::errors;

/// Work an ALTER TABLE leaves for the executor, in order.
#[derive(Clone, Debug)]
pub enum AlterWork {
    /// Write the new index's entries for every row.
    Backfill(u32),
    /// Delete an index's entries.
    DropIndexData(u32),
    /// Fail if a row violates the check (bound over the new row layout).
    ValidateCheck(String, crate::expr::Expr),
    /// Fail if a row has NULL in the column.
    ValidateNotNull(ColumnId),
    /// Fail if a row's foreign key has no parent.
    ValidateForeignKey(String),
    /// Re-key every row under the new primary index (the old one's id) and
    /// rebuild the secondary indexes, whose entries hold the primary key.
    Rekey { old_primary: Box<IndexDesc> },
    /// Write a value from the column's default into every row.
    Fill(ColumnId, FillValue),
}

/// Where the values of a filled column come from.
#[derive(Clone, Debug)]
pub enum FillValue {
    /// A sequence this ALTER TABLE creates (index into its sequences).
    NewSequence(usize),
    /// A default evaluated for each row (volatile: `random()`, `nextval`).
    Expr(crate::expr::Expr),
}

/// Binds ALTER TABLE.
pub fn bind_alter(
    binder: &mut Binder<'_>,
    alter: &ast::AlterTable,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Ddl> {
    let parts = names::object_parts(&alter.name)?;
    let (schema, name) = binder.resolve_schema(&parts)?;
    let old: TableRef = match binder.catalog().relation(schema, name) {
        Some(Relation::Table(id)) => binder.catalog().table(id).cloned().expect("named table"),
        Some(_) => {
            return Err(PgError::new(
                errors::WRONG_OBJECT_TYPE,
                format!("\"{name}\" is not a table"),
            ))
        }
        None if alter.if_exists => {
            return Ok(Ddl {
                op: DdlOp::Nothing,
                tag: "ALTER TABLE",
                notices: vec![format!("relation \"{name}\" does not exist, skipping")],
            })
        }
        None => return Err(errors::undefined_table(name)),
    };
    let mut t = (*old).clone();
    let mut work = Vec::new();
    let mut sequences = Vec::new();
    let mut notices = Vec::new();
    for op in &alter.operations {
        apply(
            binder,
            &mut t,
            op,
            params,
            &mut work,
            &mut sequences,
            &mut notices,
        )?;
    }
    Ok(Ddl {
        op: DdlOp::AlterTable {
            table: Box::new(t),
            work,
            sequences,
        },
        tag: "ALTER TABLE",
        notices,
    })
}

fn column_position(t: &TableDesc, name: &str) -> PgResult<usize> {
    t.columns
        .iter()
        .position(|c| c.name == name && !c.hidden)
        .ok_or_else(|| errors::undefined_column_of(name, &t.name))
}

fn relation_taken(binder: &Binder<'_>, t: &TableDesc, name: &str) -> bool {
    binder.catalog().relation(t.schema_id, name).is_some()
        || t.all_indexes().any(|i| i.name == name)
}

fn apply(
    binder: &mut Binder<'_>,
    t: &mut TableDesc,
    op: &ast::AlterTableOperation,
    params: &mut Vec<Option<Type>>,
    work: &mut Vec<AlterWork>,
    sequences: &mut Vec<SequenceDesc>,
    notices: &mut Vec<String>,
) -> PgResult<()> {
    use ast::AlterTableOperation as A;
    match op {
        A::AddColumn {
            if_not_exists,
            column_def,
            ..
        } => add_column(
            binder,
            t,
            column_def,
            *if_not_exists,
            params,
            work,
            sequences,
            notices,
        ),
        A::DropColumn {
            column_names,
            if_exists,
            drop_behavior,
            ..
        } => {
            for ident in column_names {
                let name = names::ident(ident);
                let Ok(p) = column_position(t, &name) else {
                    if *if_exists {
                        notices.push(format!(
                            "column \"{name}\" of relation \"{}\" does not exist, skipping",
                            t.name
                        ));
                        continue;
                    }
                    return Err(errors::undefined_column_of(&name, &t.name));
                };
                drop_column(
                    binder,
                    t,
                    p,
                    matches!(drop_behavior, Some(ast::DropBehavior::Cascade)),
                    work,
                )?;
            }
            Ok(())
        }
        A::AddConstraint { constraint, .. } => add_constraint(binder, t, constraint, params, work),
        A::DropConstraint {
            if_exists, name, ..
        } => {
            let name = names::ident(name);
            if t.primary.name == name {
                return Err(PgError::unsupported(
                    "dropping a primary key is not supported: TellerDB tables are organized by it",
                ));
            }
            let before = (t.checks.len(), t.foreign_keys.len(), t.indexes.len());
            t.checks.retain(|c| c.name != name);
            t.foreign_keys.retain(|f| f.name != name);
            if let Some(i) = t.indexes.iter().position(|i| i.name == name && i.unique) {
                let index = t.indexes.remove(i);
                work.push(AlterWork::DropIndexData(index.id));
            }
            if before == (t.checks.len(), t.foreign_keys.len(), t.indexes.len()) {
                if *if_exists {
                    notices.push(format!(
                        "constraint \"{name}\" of relation \"{}\" does not exist, skipping",
                        t.name
                    ));
                    return Ok(());
                }
                return Err(PgError::new(
                    SqlState::UNDEFINED_OBJECT,
                    format!(
                        "constraint \"{name}\" of relation \"{}\" does not exist",
                        t.name
                    ),
                ));
            }
            Ok(())
        }
        A::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let old = names::ident(old_column_name);
            let new = names::new_name(new_column_name)?;
            let p = column_position(t, &old)?;
            if t.columns.iter().any(|c| c.name == new) {
                return Err(PgError::new(
                    errors::DUPLICATE_COLUMN,
                    format!("column \"{new}\" of relation \"{}\" already exists", t.name),
                ));
            }
            t.columns[p].name = new.clone();
            for check in &mut t.checks {
                check.expr = rename_in(&check.expr, &old, &new)?;
            }
            Ok(())
        }
        A::RenameTable { table_name } => {
            let name = match table_name {
                ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
            };
            let parts = names::object_parts(name)?;
            let new = parts.last().cloned().unwrap_or_default();
            if binder.catalog().relation(t.schema_id, &new).is_some() {
                return Err(errors::duplicate_relation(&new));
            }
            t.name = new;
            Ok(())
        }
        A::AlterColumn { column_name, op } => {
            let name = names::ident(column_name);
            let p = column_position(t, &name)?;
            match op {
                ast::AlterColumnOperation::SetNotNull => {
                    if t.columns[p].nullable {
                        t.columns[p].nullable = false;
                        work.push(AlterWork::ValidateNotNull(t.columns[p].id));
                    }
                    Ok(())
                }
                ast::AlterColumnOperation::DropNotNull => {
                    if t.in_primary_key(t.columns[p].id) {
                        return Err(PgError::new(
                            errors::INVALID_TABLE_DEFINITION,
                            format!("column \"{name}\" is in a primary key"),
                        ));
                    }
                    t.columns[p].nullable = true;
                    Ok(())
                }
                ast::AlterColumnOperation::SetDefault { value } => {
                    let saved = binder.set_scope(Scope::default());
                    let bound = binder.expr(value, params, None, Clause::Default);
                    binder.set_scope(saved);
                    super::dml::assign(bound?, &t.columns[p], params)?;
                    t.columns[p].default = Some(value.to_string());
                    Ok(())
                }
                ast::AlterColumnOperation::DropDefault => {
                    t.columns[p].default = None;
                    Ok(())
                }
                other => Err(PgError::unsupported(format!(
                    "ALTER COLUMN {other} is not supported yet"
                ))),
            }
        }
        other => Err(PgError::unsupported(format!(
            "ALTER TABLE {other} is not supported yet"
        ))),
    }
}

/// Renames a column inside stored SQL text (CHECK expressions), token by
/// token, so strings and other names are untouched.
fn rename_in(text: &str, old: &str, new: &str) -> PgResult<String> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize()
        .map_err(|e| crate::encoding::corrupt(format!("stored expression {text:?}: {e}")))?;
    let mut out = String::new();
    for token in tokens {
        match &token {
            Token::Word(w)
                if (w.quote_style.is_none() && w.value.to_lowercase() == old)
                    || (w.quote_style.is_some() && w.value == old) =>
            {
                out.push_str(&format!("\"{}\"", new.replace('"', "\"\"")));
            }
            other => out.push_str(&other.to_string()),
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn add_column(
    binder: &mut Binder<'_>,
    t: &mut TableDesc,
    def: &ast::ColumnDef,
    if_not_exists: bool,
    params: &mut Vec<Option<Type>>,
    work: &mut Vec<AlterWork>,
    sequences: &mut Vec<SequenceDesc>,
    notices: &mut Vec<String>,
) -> PgResult<()> {
    let name = names::new_name(&def.name)?;
    if t.columns.iter().any(|c| c.name == name) {
        if if_not_exists {
            notices.push(format!(
                "column \"{name}\" of relation \"{}\" already exists, skipping",
                t.name
            ));
            return Ok(());
        }
        return Err(PgError::new(
            errors::DUPLICATE_COLUMN,
            format!(
                "column \"{name}\" of relation \"{}\" already exists",
                t.name
            ),
        ));
    }
    if t.columns.len() >= super::ddl::TABLE_COLUMNS_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "tables can have at most {} columns",
                super::ddl::TABLE_COLUMNS_MAX
            ),
        ));
    }
    let (ty, typmod, serial) = column_type(&def.data_type)?;
    let id = t.next_column_id;
    t.next_column_id += 1;
    let mut column = ColumnDesc {
        id,
        name: name.clone(),
        ty,
        typmod,
        nullable: true,
        default: None,
        hidden: false,
        identity: None,
        missing: Value::Null,
    };
    let mut volatile = false;
    let mut fill_expr = None;
    let mut pending_checks = Vec::new();
    for option in &def.options {
        use ast::ColumnOption as O;
        match &option.option {
            O::Null => {}
            O::NotNull => column.nullable = false,
            O::Default(e) => column.default = Some(e.to_string()),
            O::Check(c) => {
                let check_name = option
                    .name
                    .as_ref()
                    .or(c.name.as_ref())
                    .map(names::ident)
                    .unwrap_or_else(|| format!("{}_{name}_check", t.name));
                pending_checks.push((check_name, (*c.expr).clone()));
            }
            O::Unique(_) => {
                let index_name = format!("{}_{name}_key", t.name);
                if relation_taken(binder, t, &index_name) {
                    return Err(errors::duplicate_relation(&index_name));
                }
                let index = IndexDesc {
                    id: t.next_index_id,
                    oid: 0,
                    name: index_name,
                    unique: true,
                    columns: vec![IndexColumn {
                        column: id,
                        direction: Direction::Asc,
                        nulls: Nulls::Last,
                    }],
                    stored: Vec::new(),
                };
                t.next_index_id += 1;
                work.push(AlterWork::Backfill(index.id));
                t.indexes.push(index);
            }
            O::PrimaryKey(_) => {
                return Err(PgError::new(
                    errors::INVALID_TABLE_DEFINITION,
                    format!(
                        "multiple primary keys for table \"{}\" are not allowed",
                        t.name
                    ),
                ))
            }
            O::ForeignKey(fk) => {
                let desc = foreign_key(
                    binder,
                    t,
                    option.name.as_ref().map(names::ident),
                    fk,
                    vec![id],
                )?;
                work.push(AlterWork::ValidateForeignKey(desc.name.clone()));
                t.foreign_keys.push(desc);
            }
            other => {
                return Err(PgError::unsupported(format!(
                    "column option {other} in ADD COLUMN is not supported yet"
                )))
            }
        }
    }
    if serial {
        let seq_name = format!("{}_{name}_seq", t.name);
        if relation_taken(binder, t, &seq_name) {
            return Err(errors::duplicate_relation(&seq_name));
        }
        column.default = Some(format!("nextval('{seq_name}'::regclass)"));
        column.nullable = false;
        sequences.push(sequence(seq_name, t.schema_id, ty, &[], Some(id))?);
        volatile = true;
    }
    if let Some(text) = &column.default {
        if !serial {
            let e = super::dml::parse_expr(text)?;
            let saved = binder.set_scope(Scope::default());
            let bound = binder.expr(&e, params, None, Clause::Default);
            binder.set_scope(saved);
            let bound = super::dml::assign(bound?, &column, params)?;
            volatile = crate::plan::any_node(&bound, &mut |n| {
                !matches!(
                    n,
                    crate::expr::Expr::Const(..)
                        | crate::expr::Expr::Cast(..)
                        | crate::expr::Expr::Neg(..)
                        | crate::expr::Expr::Binary(..)
                )
            });
            if volatile {
                fill_expr = Some(bound);
            } else {
                column.missing = constant_value(&bound)?;
            }
        }
    }
    let needs_fill = volatile;
    if !column.nullable && column.missing.is_null() && !needs_fill {
        work.push(AlterWork::ValidateNotNull(id));
    }
    t.columns.push(column);
    for (check_name, e) in pending_checks {
        let table: TableRef = std::rc::Rc::new(t.clone());
        let saved = binder.set_scope(table_scope(&table, &t.name));
        let bound = binder.condition(&e, params, None, Clause::Check);
        binder.set_scope(saved);
        t.checks.push(CheckDesc {
            name: check_name.clone(),
            expr: e.to_string(),
        });
        work.push(AlterWork::ValidateCheck(check_name, bound?));
    }
    if needs_fill {
        let value = match fill_expr {
            Some(e) => FillValue::Expr(e),
            None => FillValue::NewSequence(sequences.len() - 1),
        };
        work.push(AlterWork::Fill(id, value));
    }
    Ok(())
}

/// The value of a constant expression (a default fixed at ADD COLUMN).
fn constant_value(e: &crate::expr::Expr) -> PgResult<Value> {
    struct NoRow;
    impl crate::expr::EvalContext for NoRow {
        fn param(&self, _: usize) -> &Value {
            &Value::Null
        }
        fn setting(&self, name: &str) -> PgResult<String> {
            Err(PgError::internal(format!("setting {name} in a constant")))
        }
        fn database(&self) -> &str {
            ""
        }
        fn user(&self) -> &str {
            ""
        }
        fn process_id(&self) -> i32 {
            0
        }
        fn now_micros(&self) -> i64 {
            0
        }
        fn request_sleep(&self, _: f64) {}
    }
    crate::expr::eval(e, &NoRow)
}

fn drop_column(
    binder: &Binder<'_>,
    t: &mut TableDesc,
    p: usize,
    cascade: bool,
    work: &mut Vec<AlterWork>,
) -> PgResult<()> {
    let column = t.columns[p].clone();
    if t.in_primary_key(column.id) {
        return Err(PgError::new(
            errors::DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "cannot drop column {} of table {} because the primary key depends on it",
                column.name, t.name
            ),
        ));
    }
    let referenced = binder
        .catalog()
        .referencing(t.id)
        .into_iter()
        .find(|(_, fk)| fk.ref_columns.contains(&column.id));
    if let (Some((child, fk)), false) = (referenced, cascade) {
        return Err(PgError::new(
            errors::DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "cannot drop column {} of table {} because other objects depend on it",
                column.name, t.name
            ),
        )
        .with_detail(format!(
            "constraint {} on table {} depends on column {} of table {}",
            fk.name, child.name, column.name, t.name
        ))
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
    }
    // Indexes and constraints over the column go with it, as in PostgreSQL.
    let gone: Vec<u32> = t
        .indexes
        .iter()
        .filter(|i| {
            i.columns.iter().any(|c| c.column == column.id) || i.stored.contains(&column.id)
        })
        .map(|i| i.id)
        .collect();
    t.indexes.retain(|i| !gone.contains(&i.id));
    work.extend(gone.into_iter().map(AlterWork::DropIndexData));
    t.foreign_keys.retain(|f| !f.columns.contains(&column.id));
    let name = column.name.clone();
    t.checks.retain(|c| {
        rename_in(&c.expr, &name, "\u{0}").map_or(true, |renamed| !renamed.contains('\u{0}'))
    });
    t.columns.remove(p);
    Ok(())
}

fn add_constraint(
    binder: &mut Binder<'_>,
    t: &mut TableDesc,
    constraint: &ast::TableConstraint,
    params: &mut Vec<Option<Type>>,
    work: &mut Vec<AlterWork>,
) -> PgResult<()> {
    use ast::TableConstraint as C;
    let ids = |t: &TableDesc, cols: &[ast::IndexColumn]| -> PgResult<Vec<IndexColumn>> {
        cols.iter()
            .map(|c| {
                let ast::Expr::Identifier(i) = &c.column.expr else {
                    return Err(PgError::unsupported(
                        "constraints on expressions are not supported",
                    ));
                };
                let name = names::ident(i);
                let p = column_position(t, &name)?;
                let desc = matches!(c.column.options.sort, Some(ast::OrderBySort::Desc));
                Ok(IndexColumn {
                    column: t.columns[p].id,
                    direction: if desc {
                        Direction::Desc
                    } else {
                        Direction::Asc
                    },
                    nulls: if desc { Nulls::First } else { Nulls::Last },
                })
            })
            .collect()
    };
    match constraint {
        C::PrimaryKey(pk) => {
            if !t.has_rowid() {
                return Err(PgError::new(
                    errors::INVALID_TABLE_DEFINITION,
                    format!(
                        "multiple primary keys for table \"{}\" are not allowed",
                        t.name
                    ),
                ));
            }
            let columns = ids(t, &pk.columns)?;
            let name = pk
                .name
                .as_ref()
                .map(names::ident)
                .unwrap_or_else(|| format!("{}_pkey", t.name));
            let old_primary = t.primary.clone();
            let rowid = old_primary.columns[0].column;
            let mut validate = Vec::new();
            for ic in &columns {
                let c = t
                    .columns
                    .iter_mut()
                    .find(|c| c.id == ic.column)
                    .expect("resolved");
                if c.nullable {
                    c.nullable = false;
                    validate.push(AlterWork::ValidateNotNull(c.id));
                }
            }
            t.primary = IndexDesc {
                id: t.next_index_id,
                oid: old_primary.oid,
                name,
                unique: true,
                columns,
                stored: Vec::new(),
            };
            t.next_index_id += 1;
            t.columns.retain(|c| c.id != rowid);
            work.push(AlterWork::Rekey {
                old_primary: Box::new(old_primary),
            });
            // NOT NULL is checked on the re-keyed rows.
            work.extend(validate);
            Ok(())
        }
        C::Unique(u) => {
            let columns = ids(t, &u.columns)?;
            let col_names: Vec<String> = columns
                .iter()
                .filter_map(|c| t.column_by_id(c.column))
                .map(|c| c.name.clone())
                .collect();
            let name = u
                .name
                .as_ref()
                .map(names::ident)
                .unwrap_or_else(|| format!("{}_{}_key", t.name, col_names.join("_")));
            if relation_taken(binder, t, &name) {
                return Err(errors::duplicate_relation(&name));
            }
            let index = IndexDesc {
                id: t.next_index_id,
                oid: 0,
                name,
                unique: true,
                columns,
                stored: Vec::new(),
            };
            t.next_index_id += 1;
            work.push(AlterWork::Backfill(index.id));
            t.indexes.push(index);
            Ok(())
        }
        C::Check(c) => {
            let table: TableRef = std::rc::Rc::new(t.clone());
            let saved = binder.set_scope(table_scope(&table, &t.name));
            let bound = binder.condition(&c.expr, params, None, Clause::Check);
            binder.set_scope(saved);
            let bound = bound?;
            let name = c
                .name
                .as_ref()
                .map(names::ident)
                .unwrap_or_else(|| format!("{}_check", t.name));
            if t.checks.iter().any(|x| x.name == name) {
                return Err(PgError::new(
                    errors::DUPLICATE_OBJECT,
                    format!(
                        "constraint \"{name}\" for relation \"{}\" already exists",
                        t.name
                    ),
                ));
            }
            t.checks.push(CheckDesc {
                name: name.clone(),
                expr: c.expr.to_string(),
            });
            work.push(AlterWork::ValidateCheck(name, bound));
            Ok(())
        }
        C::ForeignKey(fk) => {
            let cols = fk
                .columns
                .iter()
                .map(|i| column_position(t, &names::ident(i)).map(|p| t.columns[p].id))
                .collect::<PgResult<Vec<_>>>()?;
            let desc = foreign_key(binder, t, fk.name.as_ref().map(names::ident), fk, cols)?;
            work.push(AlterWork::ValidateForeignKey(desc.name.clone()));
            t.foreign_keys.push(desc);
            Ok(())
        }
        other => Err(PgError::unsupported(format!(
            "constraint {other} is not supported yet"
        ))),
    }
}
