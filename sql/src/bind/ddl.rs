//! Binding DDL: the statement is checked against the catalog snapshot and
//! turned into a [`Ddl`] the executor applies (`exec::ddl`), which allocates
//! ids and writes the system tables in the statement's transaction.
//!
//! Names follow PostgreSQL's conventions: `t_pkey`, `t_a_key`, `t_a_check`,
//! `t_a_fkey`, `t_a_idx`, `t_a_seq`, with a number appended on collision.

use sqlparser::ast;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::dml::{assign, table_scope};
use super::{names, Binder, Clause, Scope};
use crate::catalog::{
    CheckDesc, ColumnDesc, DescId, FkAction, ForeignKeyDesc, Identity, IndexColumn, IndexDesc,
    Relation, SequenceDesc, TableDesc, TableRef, PRIMARY_INDEX_ID, ROWID_COLUMN,
};
use crate::encoding::key::{is_key_type, Direction, Nulls};
use crate::encoding::row::ColumnId;
use crate::errors;
use crate::expr;

/// Most columns in a table (PostgreSQL's limit).
pub const TABLE_COLUMNS_MAX: usize = 1600;
/// Most columns in an index key (PostgreSQL's INDEX_MAX_KEYS).
pub const INDEX_COLUMNS_MAX: usize = 32;
/// Most digits a NUMERIC column may declare: what the exact decimal holds.
pub const NUMERIC_PRECISION_MAX: u64 = 28;

/// A DDL statement ready to apply.
#[derive(Clone, Debug)]
pub struct Ddl {
    pub op: DdlOp,
    /// The command tag (`CREATE TABLE`, ...).
    pub tag: &'static str,
    /// Notices to send (`IF EXISTS` on a missing object, ...).
    pub notices: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum DdlOp {
    /// Nothing to change (e.g. `IF NOT EXISTS` on an existing object).
    Nothing,
    /// A new table; ids of 0 are assigned when applied. `sequences` are the
    /// SERIAL/IDENTITY sequences it owns (owner column ids set).
    CreateTable {
        table: Box<TableDesc>,
        sequences: Vec<SequenceDesc>,
    },
    /// Tables, and the views that read them (DROP ... CASCADE).
    DropTables {
        tables: Vec<DescId>,
        views: Vec<DescId>,
    },
    /// A new view (id 0) or the new definition of an existing one.
    CreateView(Box<crate::catalog::ViewDesc>),
    DropViews(Vec<DescId>),
    CreateIndex {
        table: DescId,
        index: IndexDesc,
    },
    DropIndex {
        table: DescId,
        index: u32,
    },
    CreateDatabase(String),
    DropDatabase(DescId),
    CreateSchema(String),
    DropSchema(DescId),
    CreateSequence(SequenceDesc),
    DropSequences(Vec<DescId>),
    Truncate {
        tables: Vec<DescId>,
        restart_identity: bool,
    },
    /// `COMMENT ON`: set (or with `None` remove) the comment of an object
    /// (`sub` a column's attnum, else 0).
    Comment {
        object: DescId,
        sub: i32,
        text: Option<String>,
    },
    /// The table's new descriptor (same id), the work on its rows, and new
    /// sequences it owns (ids and owner table assigned when applied).
    AlterTable {
        table: Box<TableDesc>,
        work: Vec<super::alter::AlterWork>,
        sequences: Vec<SequenceDesc>,
    },
}

fn ddl(op: DdlOp, tag: &'static str) -> Ddl {
    Ddl {
        op,
        tag,
        notices: Vec::new(),
    }
}

/// Binds a DDL statement; `Ok(None)` if `statement` is not one.
pub fn bind_ddl(
    binder: &mut Binder<'_>,
    statement: &ast::Statement,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Option<Ddl>> {
    use ast::Statement as S;
    Ok(Some(match statement {
        S::CreateTable(create) => create_table(binder, create, params)?,
        S::CreateIndex(create) => create_index(binder, create)?,
        S::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => drop(binder, *object_type, *if_exists, names, *cascade)?,
        S::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        } => {
            let name = object_name(db_name)?;
            if binder.catalog().database(&name).is_some() {
                if *if_not_exists {
                    return Ok(Some(skip(
                        "CREATE DATABASE",
                        format!("database \"{name}\" already exists, skipping"),
                    )));
                }
                return Err(PgError::new(
                    errors::DUPLICATE_DATABASE,
                    format!("database \"{name}\" already exists"),
                ));
            }
            ddl(DdlOp::CreateDatabase(name), "CREATE DATABASE")
        }
        S::CreateSchema {
            schema_name,
            if_not_exists,
            ..
        } => {
            let ast::SchemaName::Simple(name) = schema_name else {
                return Err(PgError::unsupported(
                    "CREATE SCHEMA AUTHORIZATION is not supported",
                ));
            };
            let name = object_name(name)?;
            if binder
                .catalog()
                .schema(binder.env.database, &name)
                .is_some()
            {
                if *if_not_exists {
                    return Ok(Some(skip(
                        "CREATE SCHEMA",
                        format!("schema \"{name}\" already exists, skipping"),
                    )));
                }
                return Err(PgError::new(
                    errors::DUPLICATE_SCHEMA,
                    format!("schema \"{name}\" already exists"),
                ));
            }
            ddl(DdlOp::CreateSchema(name), "CREATE SCHEMA")
        }
        S::CreateSequence {
            if_not_exists,
            name,
            sequence_options,
            owned_by,
            temporary: false,
            data_type,
        } => {
            let parts = names::object_parts(name)?;
            let (schema, seq) = binder.resolve_schema(&parts)?;
            if binder.catalog().relation(schema, seq).is_some() {
                if *if_not_exists {
                    return Ok(Some(skip(
                        "CREATE SEQUENCE",
                        format!("relation \"{seq}\" already exists, skipping"),
                    )));
                }
                return Err(errors::duplicate_relation(seq));
            }
            if owned_by.is_some() {
                return Err(PgError::unsupported(
                    "CREATE SEQUENCE ... OWNED BY is not supported yet",
                ));
            }
            let ty = data_type
                .as_ref()
                .map(expr::resolve_type)
                .transpose()?
                .unwrap_or(Type::Int8);
            let desc = sequence(seq.to_string(), schema, ty, sequence_options, None)?;
            ddl(DdlOp::CreateSequence(desc), "CREATE SEQUENCE")
        }
        S::Truncate(t) => truncate(binder, t)?,
        S::AlterTable(alter) => {
            let ddl = super::alter::bind_alter(binder, alter, params)?;
            if let DdlOp::AlterTable { table, .. } = &ddl.op {
                super::view::check_views_after_alter(binder, table)?;
            }
            ddl
        }
        S::CreateView(cv) => super::view::create_view(binder, cv)?,
        S::Comment {
            object_type,
            object_name,
            comment,
            ..
        } => comment_on(binder, *object_type, object_name, comment.clone())?,
        _ => return Ok(None),
    }))
}

fn skip(tag: &'static str, notice: String) -> Ddl {
    Ddl {
        op: DdlOp::Nothing,
        tag,
        notices: vec![notice],
    }
}

fn object_name(name: &ast::ObjectName) -> PgResult<String> {
    let parts = names::object_parts(name)?;
    match &parts[..] {
        [one] => Ok(one.clone()),
        _ => Err(PgError::syntax(format!("improper name {name}"))),
    }
}

/// A column's type and typmod as declared; `serial` types come back as their
/// integer type with `true`.
pub fn column_type(dt: &ast::DataType) -> PgResult<(Type, i32, bool)> {
    use ast::DataType as D;
    let length = |len: &Option<ast::CharacterLength>, default: Option<u64>| -> PgResult<i32> {
        let n = match len {
            Some(ast::CharacterLength::IntegerLength { length, .. }) => Some(*length),
            Some(ast::CharacterLength::Max) => None,
            None => default,
        };
        match n {
            None => Ok(-1),
            Some(0) => Err(PgError::syntax("length for type must be at least 1")),
            Some(n) if n > 10_485_760 => {
                Err(PgError::syntax("length for type cannot exceed 10485760"))
            }
            Some(n) => Ok(n as i32 + 4),
        }
    };
    Ok(match dt {
        D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) => {
            (Type::Varchar, length(len, None)?, false)
        }
        D::Char(len) | D::Character(len) => (Type::Bpchar, length(len, Some(1))?, false),
        D::Numeric(info) | D::Decimal(info) | D::Dec(info) => {
            let (p, s) = match info {
                ast::ExactNumberInfo::None => return Ok((Type::Numeric, -1, false)),
                ast::ExactNumberInfo::Precision(p) => (*p, 0),
                ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            if p == 0 || p > 1000 {
                return Err(PgError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("NUMERIC precision {p} must be between 1 and 1000"),
                ));
            }
            if p > NUMERIC_PRECISION_MAX {
                return Err(PgError::unsupported(format!(
                    "NUMERIC precision {p} exceeds the {NUMERIC_PRECISION_MAX} digits TellerDB stores exactly"
                )));
            }
            if s < 0 || s as u64 > p {
                return Err(PgError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                ));
            }
            (Type::Numeric, (((p as i32) << 16) | s as i32) + 4, false)
        }
        D::Custom(name, _) => {
            let n = name.to_string().to_ascii_lowercase();
            match n.trim_matches('"') {
                "serial" | "serial4" => (Type::Int4, -1, true),
                "bigserial" | "serial8" => (Type::Int8, -1, true),
                "smallserial" | "serial2" => (Type::Int2, -1, true),
                _ => (expr::resolve_type(dt)?, -1, false),
            }
        }
        D::Array(_) => return Err(PgError::unsupported("array types are not supported yet")),
        other => (expr::resolve_type(other)?, -1, false),
    })
}

/// A name not yet used by a relation of `schema` nor in `taken`:
/// `base`, `base1`, `base2`, ...
fn unique_name(binder: &Binder<'_>, schema: DescId, base: String, taken: &[String]) -> String {
    let mut name = base.clone();
    let mut n = 0;
    while binder.catalog().relation(schema, &name).is_some() || taken.contains(&name) {
        n += 1;
        name = format!("{base}{n}");
    }
    name
}

fn action(a: &Option<ast::ReferentialAction>) -> FkAction {
    match a {
        None | Some(ast::ReferentialAction::NoAction) => FkAction::NoAction,
        Some(ast::ReferentialAction::Restrict) => FkAction::Restrict,
        Some(ast::ReferentialAction::Cascade) => FkAction::Cascade,
        Some(ast::ReferentialAction::SetNull) => FkAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => FkAction::SetDefault,
    }
}

/// A table's constraints while it is being defined.
struct Pending {
    primary: Option<(Option<String>, Vec<IndexColumn>)>,
    uniques: Vec<(Option<String>, Vec<IndexColumn>, Vec<ColumnId>)>,
    checks: Vec<(Option<String>, ast::Expr, Option<ColumnId>)>,
    fks: Vec<(Option<String>, ast::ForeignKeyConstraint, Vec<ColumnId>)>,
}

fn create_table(
    binder: &mut Binder<'_>,
    create: &ast::CreateTable,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Ddl> {
    if create.query.is_some() || create.like.is_some() || create.clone.is_some() {
        return Err(PgError::unsupported(
            "CREATE TABLE AS/LIKE is not supported yet",
        ));
    }
    if create.temporary {
        return Err(PgError::unsupported(
            "temporary tables are not supported yet",
        ));
    }
    let parts = names::object_parts(&create.name)?;
    let (schema, name) = binder.resolve_schema(&parts)?;
    let name = name.to_string();
    if binder.catalog().relation(schema, &name).is_some() {
        if create.if_not_exists {
            return Ok(skip(
                "CREATE TABLE",
                format!("relation \"{name}\" already exists, skipping"),
            ));
        }
        return Err(errors::duplicate_relation(&name));
    }
    if create.columns.len() > TABLE_COLUMNS_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("tables can have at most {TABLE_COLUMNS_MAX} columns"),
        ));
    }
    let mut columns: Vec<ColumnDesc> = Vec::with_capacity(create.columns.len() + 1);
    let mut sequences = Vec::new();
    let mut pending = Pending {
        primary: None,
        uniques: Vec::new(),
        checks: Vec::new(),
        fks: Vec::new(),
    };
    let mut relation_names: Vec<String> = vec![name.clone()];
    for (i, def) in create.columns.iter().enumerate() {
        let col_name = names::new_name(&def.name)?;
        if columns.iter().any(|c| c.name == col_name) {
            return Err(PgError::new(
                errors::DUPLICATE_COLUMN,
                format!("column \"{col_name}\" specified more than once"),
            ));
        }
        let id = i as ColumnId + 1;
        let (ty, typmod, serial) = column_type(&def.data_type)?;
        let mut column = ColumnDesc {
            id,
            name: col_name.clone(),
            ty,
            typmod,
            nullable: true,
            default: None,
            hidden: false,
            identity: None,
            missing: Value::Null,
        };
        let mut explicit_null = false;
        for option in &def.options {
            use ast::ColumnOption as O;
            let constraint_name = option.name.as_ref().map(names::ident);
            match &option.option {
                O::Null => explicit_null = true,
                O::NotNull => column.nullable = false,
                O::Default(e) => column.default = Some(e.to_string()),
                O::PrimaryKey(_) => {
                    if pending.primary.is_some() {
                        return Err(multiple_primary_keys(&name));
                    }
                    pending.primary = Some((constraint_name, vec![asc(id)]));
                }
                O::Unique(_) => pending
                    .uniques
                    .push((constraint_name, vec![asc(id)], Vec::new())),
                O::Check(c) => pending.checks.push((
                    constraint_name.or(c.name.as_ref().map(names::ident)),
                    (*c.expr).clone(),
                    Some(id),
                )),
                O::ForeignKey(fk) => pending.fks.push((
                    constraint_name.or(fk.name.as_ref().map(names::ident)),
                    fk.clone(),
                    vec![id],
                )),
                O::Generated {
                    generated_as,
                    generation_expr: None,
                    sequence_options,
                    ..
                } => {
                    column.identity = Some(match generated_as {
                        ast::GeneratedAs::Always => Identity::Always,
                        _ => Identity::ByDefault,
                    });
                    column.nullable = false;
                    let opts = sequence_options.clone().unwrap_or_default();
                    let seq_name = unique_name(
                        binder,
                        schema,
                        format!("{name}_{col_name}_seq"),
                        &relation_names,
                    );
                    relation_names.push(seq_name.clone());
                    sequences.push(sequence(seq_name, schema, ty, &opts, Some(id))?);
                }
                O::Comment(_) => {}
                O::Collation(c)
                    if matches!(c.to_string().trim_matches('"'), "C" | "POSIX" | "default") => {}
                other => {
                    return Err(PgError::unsupported(format!(
                        "column option {other} is not supported yet"
                    )))
                }
            }
        }
        if explicit_null && !column.nullable {
            return Err(PgError::syntax(format!(
                "conflicting NULL/NOT NULL declarations for column \"{col_name}\" of table \"{name}\""
            )));
        }
        if serial {
            if column.default.is_some() {
                return Err(PgError::syntax(format!(
                    "multiple default values specified for column \"{col_name}\" of table \"{name}\""
                )));
            }
            let seq_name = unique_name(
                binder,
                schema,
                format!("{name}_{col_name}_seq"),
                &relation_names,
            );
            relation_names.push(seq_name.clone());
            column.default = Some(format!("nextval('{seq_name}'::regclass)"));
            column.nullable = false;
            sequences.push(sequence(seq_name, schema, ty, &[], Some(id))?);
        }
        if let Some(seq) = sequences.iter().find(|s| s.owner.map(|o| o.1) == Some(id)) {
            if column.identity.is_some() {
                column.default = Some(format!("nextval('{}'::regclass)", seq.name));
            }
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        use ast::TableConstraint as C;
        let find = |ident: &ast::Ident| -> PgResult<ColumnId> {
            let n = names::ident(ident);
            columns
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.id)
                .ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column \"{n}\" named in key does not exist"),
                    )
                })
        };
        match constraint {
            C::PrimaryKey(pk) => {
                if pending.primary.is_some() {
                    return Err(multiple_primary_keys(&name));
                }
                let cols = index_columns(&pk.columns, &find)?;
                pending.primary = Some((pk.name.as_ref().map(names::ident), cols));
            }
            C::Unique(u) => {
                let cols = index_columns(&u.columns, &find)?;
                let include = u.include.iter().map(&find).collect::<PgResult<Vec<_>>>()?;
                pending
                    .uniques
                    .push((u.name.as_ref().map(names::ident), cols, include));
            }
            C::Check(c) => {
                pending
                    .checks
                    .push((c.name.as_ref().map(names::ident), (*c.expr).clone(), None))
            }
            C::ForeignKey(fk) => {
                let cols = fk.columns.iter().map(&find).collect::<PgResult<Vec<_>>>()?;
                pending
                    .fks
                    .push((fk.name.as_ref().map(names::ident), fk.clone(), cols));
            }
            other => {
                return Err(PgError::unsupported(format!(
                    "table constraint {other} is not supported yet"
                )))
            }
        }
    }
    // The primary key: declared, or a hidden rowid.
    let (pk_name, pk_columns) = match pending.primary.take() {
        Some((n, cols)) => (n, cols),
        None => {
            let id = columns.len() as ColumnId + 1;
            if columns.iter().any(|c| c.name == ROWID_COLUMN) {
                return Err(PgError::unsupported(format!(
                    "a table without a primary key cannot have a column named \"{ROWID_COLUMN}\""
                )));
            }
            columns.push(ColumnDesc {
                id,
                name: ROWID_COLUMN.into(),
                ty: Type::Int8,
                typmod: -1,
                nullable: false,
                default: Some("unique_rowid()".into()),
                hidden: true,
                identity: None,
                missing: Value::Null,
            });
            (None, vec![asc(id)])
        }
    };
    for ic in &pk_columns {
        let c = columns
            .iter_mut()
            .find(|c| c.id == ic.column)
            .expect("found above");
        c.nullable = false;
        check_key_type(c)?;
    }
    let column_names = |cols: &[IndexColumn], columns: &[ColumnDesc]| -> String {
        cols.iter()
            .filter_map(|ic| columns.iter().find(|c| c.id == ic.column))
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join("_")
    };
    let pk_name = match pk_name {
        Some(n) => n,
        None => unique_name(binder, schema, format!("{name}_pkey"), &relation_names),
    };
    relation_names.push(pk_name.clone());
    let primary = IndexDesc {
        id: PRIMARY_INDEX_ID,
        oid: 0,
        name: pk_name,
        unique: true,
        columns: pk_columns,
        stored: Vec::new(),
    };
    let mut indexes = Vec::new();
    let mut next_index = PRIMARY_INDEX_ID + 1;
    for (n, cols, include) in pending.uniques {
        if cols == primary.columns || indexes.iter().any(|i: &IndexDesc| i.columns == cols) {
            continue; // PostgreSQL folds duplicate unique constraints too
        }
        for ic in &cols {
            check_key_type(
                columns
                    .iter()
                    .find(|c| c.id == ic.column)
                    .expect("resolved"),
            )?;
        }
        let index_name = match n {
            Some(n) => n,
            None => unique_name(
                binder,
                schema,
                format!("{name}_{}_key", column_names(&cols, &columns)),
                &relation_names,
            ),
        };
        if relation_names.contains(&index_name)
            || binder.catalog().relation(schema, &index_name).is_some()
        {
            return Err(errors::duplicate_relation(&index_name));
        }
        relation_names.push(index_name.clone());
        indexes.push(IndexDesc {
            id: next_index,
            oid: 0,
            name: index_name,
            unique: true,
            columns: cols,
            stored: include,
        });
        next_index += 1;
    }
    let mut table = TableDesc {
        id: 0,
        schema_id: schema,
        name: name.clone(),
        next_column_id: columns.len() as ColumnId + 1,
        columns,
        primary,
        indexes,
        next_index_id: next_index,
        checks: Vec::new(),
        foreign_keys: Vec::new(),
    };
    // Defaults and checks must bind against the new table.
    let table_ref: TableRef = std::rc::Rc::new(table.clone());
    for c in &table.columns {
        if c.hidden {
            continue;
        }
        if let Some(text) = &c.default {
            if c.identity.is_none() && !text.starts_with("nextval(") {
                let e = super::dml::parse_expr(text)?;
                let saved = binder.set_scope(Scope::default());
                let bound = binder.expr(&e, params, None, Clause::Default);
                binder.set_scope(saved);
                assign(bound?, c, params)?;
            }
        }
    }
    let mut check_names: Vec<String> = Vec::new();
    for (n, e, column) in pending.checks {
        let saved = binder.set_scope(table_scope(&table_ref, &name));
        let bound = binder.condition(&e, params, None, Clause::Check);
        binder.set_scope(saved);
        bound?;
        let check_name = match n {
            Some(n) => n,
            None => {
                let col = column
                    .and_then(|id| table.column_by_id(id))
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                let base = if col.is_empty() {
                    format!("{name}_check")
                } else {
                    format!("{name}_{col}_check")
                };
                let mut candidate = base.clone();
                let mut k = 0;
                while check_names.contains(&candidate) {
                    k += 1;
                    candidate = format!("{base}{k}");
                }
                candidate
            }
        };
        check_names.push(check_name.clone());
        table.checks.push(CheckDesc {
            name: check_name,
            expr: e.to_string(),
        });
    }
    for (n, fk, cols) in pending.fks {
        let desc = foreign_key(binder, &table, n, &fk, cols)?;
        table.foreign_keys.push(desc);
    }
    Ok(ddl(
        DdlOp::CreateTable {
            table: Box::new(table),
            sequences,
        },
        "CREATE TABLE",
    ))
}

pub fn multiple_primary_keys(table: &str) -> PgError {
    PgError::new(
        errors::INVALID_TABLE_DEFINITION,
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    )
}

fn asc(column: ColumnId) -> IndexColumn {
    IndexColumn {
        column,
        direction: Direction::Asc,
        nulls: Nulls::Last,
    }
}

fn check_key_type(c: &ColumnDesc) -> PgResult<()> {
    if is_key_type(c.ty) {
        Ok(())
    } else {
        Err(PgError::unsupported(format!(
            "column \"{}\" of type {} cannot be part of a key",
            c.name,
            c.ty.name()
        )))
    }
}

fn index_columns(
    cols: &[ast::IndexColumn],
    find: &dyn Fn(&ast::Ident) -> PgResult<ColumnId>,
) -> PgResult<Vec<IndexColumn>> {
    if cols.len() > INDEX_COLUMNS_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("cannot use more than {INDEX_COLUMNS_MAX} columns in an index"),
        ));
    }
    let mut out: Vec<IndexColumn> = Vec::with_capacity(cols.len());
    for c in cols {
        let ident = match &c.column.expr {
            ast::Expr::Identifier(i) => i,
            other => {
                return Err(PgError::unsupported(format!(
                    "index on expression {other} is not supported yet"
                )))
            }
        };
        let column = find(ident)?;
        if out.iter().any(|o| o.column == column) {
            return Err(PgError::new(
                errors::DUPLICATE_COLUMN,
                format!("column \"{}\" appears twice in index", names::ident(ident)),
            ));
        }
        let direction = match c.column.options.sort {
            Some(ast::OrderBySort::Desc) => Direction::Desc,
            Some(ast::OrderBySort::Using(_)) => {
                return Err(PgError::unsupported(
                    "index USING operator is not supported",
                ))
            }
            _ => Direction::Asc,
        };
        let nulls = match c.column.options.nulls_first {
            Some(true) => Nulls::First,
            Some(false) => Nulls::Last,
            None if direction == Direction::Desc => Nulls::First,
            None => Nulls::Last,
        };
        out.push(IndexColumn {
            column,
            direction,
            nulls,
        });
    }
    Ok(out)
}

/// A foreign key of `table` (which may reference itself by name).
pub fn foreign_key(
    binder: &Binder<'_>,
    table: &TableDesc,
    name: Option<String>,
    fk: &ast::ForeignKeyConstraint,
    cols: Vec<ColumnId>,
) -> PgResult<ForeignKeyDesc> {
    let parts = names::object_parts(&fk.foreign_table)?;
    let (schema, ref_name) = binder.resolve_schema(&parts)?;
    let referenced: TableDesc = if schema == table.schema_id && ref_name == table.name {
        table.clone()
    } else {
        match binder.catalog().relation(schema, ref_name) {
            Some(Relation::Table(id)) => binder
                .catalog()
                .table(id)
                .map(|t| (**t).clone())
                .ok_or_else(|| PgError::internal("relation without table"))?,
            _ => return Err(errors::undefined_table(ref_name)),
        }
    };
    let ref_cols: Vec<ColumnId> = if fk.referred_columns.is_empty() {
        if referenced.has_rowid() {
            return Err(PgError::new(
                errors::INVALID_FOREIGN_KEY,
                format!(
                    "there is no primary key for referenced table \"{}\"",
                    referenced.name
                ),
            ));
        }
        referenced
            .primary
            .columns
            .iter()
            .map(|c| c.column)
            .collect()
    } else {
        fk.referred_columns
            .iter()
            .map(|i| {
                let n = names::ident(i);
                referenced.column(&n).map(|c| c.id).ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_COLUMN,
                        format!(
                            "column \"{n}\" referenced in foreign key constraint does not exist"
                        ),
                    )
                })
            })
            .collect::<PgResult<_>>()?
    };
    if ref_cols.len() != cols.len() {
        return Err(PgError::new(
            errors::INVALID_FOREIGN_KEY,
            "number of referencing and referenced columns for foreign key disagree",
        ));
    }
    let mut sorted = ref_cols.clone();
    sorted.sort_unstable();
    let unique = referenced.all_indexes().any(|i| {
        let mut ic: Vec<ColumnId> = i.columns.iter().map(|c| c.column).collect();
        ic.sort_unstable();
        i.unique && ic == sorted
    });
    if !unique {
        return Err(PgError::new(
            errors::INVALID_FOREIGN_KEY,
            format!(
                "there is no unique constraint matching given keys for referenced table \"{}\"",
                referenced.name
            ),
        ));
    }
    let col_names: Vec<String> = cols
        .iter()
        .filter_map(|id| table.column_by_id(*id))
        .map(|c| c.name.clone())
        .collect();
    let fk_name = name.unwrap_or_else(|| format!("{}_{}_fkey", table.name, col_names.join("_")));
    for (c, r) in cols.iter().zip(&ref_cols) {
        let (c, r) = (
            table.column_by_id(*c).expect("resolved"),
            referenced.column_by_id(*r).expect("resolved"),
        );
        if expr::ops::unify(c.ty, r.ty).is_none() {
            return Err(PgError::new(
                SqlState::DATATYPE_MISMATCH,
                format!("foreign key constraint \"{fk_name}\" cannot be implemented"),
            )
            .with_detail(format!(
                "Key columns \"{}\" and \"{}\" are of incompatible types: {} and {}.",
                c.name,
                r.name,
                c.ty.name(),
                r.ty.name()
            )));
        }
    }
    Ok(ForeignKeyDesc {
        name: fk_name,
        columns: cols,
        ref_table: if referenced.id == table.id {
            0
        } else {
            referenced.id
        },
        ref_columns: ref_cols,
        on_delete: action(&fk.on_delete),
        on_update: action(&fk.on_update),
    })
}

/// A sequence from its options, checked like PostgreSQL.
pub fn sequence(
    name: String,
    schema: DescId,
    ty: Type,
    options: &[ast::SequenceOptions],
    owner_column: Option<ColumnId>,
) -> PgResult<SequenceDesc> {
    let (type_min, type_max) = match ty {
        Type::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        Type::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        Type::Int8 => (i64::MIN, i64::MAX),
        other => {
            return Err(PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "sequence type must be smallint, integer, or bigint, not {}",
                    other.name()
                ),
            ))
        }
    };
    let number = |e: &ast::Expr| -> PgResult<i64> {
        let text = e.to_string();
        text.replace(' ', "").parse::<i64>().map_err(|_| {
            PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid sequence option value {text}"),
            )
        })
    };
    let mut increment = 1i64;
    let (mut min, mut max, mut start, mut cycle) = (None, None, None, false);
    for o in options {
        match o {
            ast::SequenceOptions::IncrementBy(e, _) => increment = number(e)?,
            ast::SequenceOptions::MinValue(e) => min = e.as_ref().map(number).transpose()?,
            ast::SequenceOptions::MaxValue(e) => max = e.as_ref().map(number).transpose()?,
            ast::SequenceOptions::StartWith(e, _) => start = Some(number(e)?),
            ast::SequenceOptions::Cache(_) => {}
            ast::SequenceOptions::Cycle(no) => cycle = !*no,
        }
    }
    if increment == 0 {
        return Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            "INCREMENT must not be zero",
        ));
    }
    let min = min.unwrap_or(if increment > 0 { 1 } else { type_min });
    let max = max.unwrap_or(if increment > 0 { type_max } else { -1 });
    if min >= max {
        return Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("MINVALUE ({min}) must be less than MAXVALUE ({max})"),
        ));
    }
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if start < min || start > max {
        return Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("START value ({start}) cannot be outside [{min}, {max}]"),
        ));
    }
    Ok(SequenceDesc {
        id: 0,
        schema_id: schema,
        name,
        start,
        increment,
        min,
        max,
        cycle,
        owner: owner_column.map(|c| (0, c)),
    })
}

fn create_index(binder: &mut Binder<'_>, create: &ast::CreateIndex) -> PgResult<Ddl> {
    if create.predicate.is_some() {
        return Err(PgError::unsupported(
            "partial indexes are not supported yet",
        ));
    }
    if let Some(using) = &create.using {
        let kind = using.to_string().to_ascii_lowercase();
        if kind != "btree" && kind != "hash" {
            return Err(PgError::unsupported(format!(
                "index method {kind} is not supported"
            )));
        }
    }
    let parts = names::object_parts(&create.table_name)?;
    let (schema, table_name) = binder.resolve_schema(&parts)?;
    let table = match binder.catalog().relation(schema, table_name) {
        Some(Relation::Table(id)) => binder
            .catalog()
            .table(id)
            .cloned()
            .expect("indexed relation"),
        Some(_) => {
            return Err(PgError::new(
                errors::WRONG_OBJECT_TYPE,
                format!("\"{table_name}\" is not a table"),
            ))
        }
        None => return Err(errors::undefined_table(table_name)),
    };
    let find = |ident: &ast::Ident| -> PgResult<ColumnId> {
        let n = names::ident(ident);
        table
            .column(&n)
            .map(|c| c.id)
            .ok_or_else(|| errors::undefined_column(&n))
    };
    let columns = index_columns(&create.columns, &find)?;
    for ic in &columns {
        check_key_type(table.column_by_id(ic.column).expect("resolved"))?;
    }
    let stored = create
        .include
        .iter()
        .map(&find)
        .collect::<PgResult<Vec<_>>>()?;
    let col_names: Vec<&str> = columns
        .iter()
        .filter_map(|ic| table.column_by_id(ic.column))
        .map(|c| c.name.as_str())
        .collect();
    let name = match &create.name {
        Some(n) => {
            let parts = names::object_parts(n)?;
            let name = parts.last().cloned().unwrap_or_default();
            if binder.catalog().relation(schema, &name).is_some() {
                if create.if_not_exists {
                    return Ok(skip(
                        "CREATE INDEX",
                        format!("relation \"{name}\" already exists, skipping"),
                    ));
                }
                return Err(errors::duplicate_relation(&name));
            }
            name
        }
        None => unique_name(
            binder,
            schema,
            format!(
                "{}_{}_{}",
                table.name,
                col_names.join("_"),
                if create.unique { "key" } else { "idx" }
            ),
            &[],
        ),
    };
    Ok(ddl(
        DdlOp::CreateIndex {
            table: table.id,
            index: IndexDesc {
                id: table.next_index_id,
                oid: 0,
                name,
                unique: create.unique,
                columns,
                stored,
            },
        },
        "CREATE INDEX",
    ))
}

fn drop(
    binder: &mut Binder<'_>,
    object_type: ast::ObjectType,
    if_exists: bool,
    names_list: &[ast::ObjectName],
    cascade: bool,
) -> PgResult<Ddl> {
    let catalog = binder.catalog();
    let mut notices = Vec::new();
    let (op, tag) = match object_type {
        ast::ObjectType::Table | ast::ObjectType::Sequence => {
            let want_table = object_type == ast::ObjectType::Table;
            let mut ids = Vec::new();
            for n in names_list {
                let parts = names::object_parts(n)?;
                let (schema, name) = binder.resolve_schema(&parts)?;
                match (catalog.relation(schema, name), want_table) {
                    (Some(Relation::Table(id)), true) | (Some(Relation::Sequence(id)), false) => {
                        ids.push(id)
                    }
                    (Some(_), _) => {
                        return Err(PgError::new(
                            errors::WRONG_OBJECT_TYPE,
                            format!(
                                "\"{name}\" is not a {}",
                                if want_table { "table" } else { "sequence" }
                            ),
                        ))
                    }
                    (None, _) if if_exists => notices.push(format!(
                        "{} \"{name}\" does not exist, skipping",
                        if want_table { "table" } else { "sequence" }
                    )),
                    (None, _) if want_table => return Err(errors::undefined_table(name)),
                    (None, _) => {
                        return Err(PgError::new(
                            SqlState::UNDEFINED_TABLE,
                            format!("sequence \"{name}\" does not exist"),
                        ))
                    }
                }
            }
            let mut views = Vec::new();
            for &id in &ids {
                let (kind, name) = match catalog.table(id) {
                    Some(t) => ("table", t.name.clone()),
                    None => (
                        "sequence",
                        catalog
                            .sequence(id)
                            .map_or_else(String::new, |s| s.name.clone()),
                    ),
                };
                for v in
                    super::view::dependents(catalog, id, kind, &name, &[], cascade, &mut notices)?
                {
                    if !views.contains(&v) {
                        views.push(v);
                    }
                }
            }
            if want_table {
                for &id in &ids {
                    for (referencing, fk) in catalog.referencing(id) {
                        if !ids.contains(&referencing.id) && !cascade {
                            let table = catalog.table(id).expect("dropped table exists");
                            return Err(PgError::new(
                                errors::DEPENDENT_OBJECTS_STILL_EXIST,
                                format!(
                                    "cannot drop table {} because other objects depend on it",
                                    table.name
                                ),
                            )
                            .with_detail(format!(
                                "constraint {} on table {} depends on table {}",
                                fk.name, referencing.name, table.name
                            ))
                            .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                        }
                    }
                }
                (DdlOp::DropTables { tables: ids, views }, "DROP TABLE")
            } else {
                (DdlOp::DropSequences(ids), "DROP SEQUENCE")
            }
        }
        ast::ObjectType::Index => {
            let mut found = None;
            if names_list.len() != 1 {
                return Err(PgError::unsupported(
                    "DROP INDEX of several indexes is not supported",
                ));
            }
            let parts = names::object_parts(&names_list[0])?;
            let (schema, name) = binder.resolve_schema(&parts)?;
            match catalog.relation(schema, name) {
                Some(Relation::Index(table, index)) => found = Some((table, index)),
                Some(_) => {
                    return Err(PgError::new(
                        errors::WRONG_OBJECT_TYPE,
                        format!("\"{name}\" is not an index"),
                    ))
                }
                None if if_exists => {
                    notices.push(format!("index \"{name}\" does not exist, skipping"))
                }
                None => {
                    return Err(PgError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!("index \"{name}\" does not exist"),
                    ))
                }
            }
            match found {
                None => (DdlOp::Nothing, "DROP INDEX"),
                Some((table_id, index_id)) => {
                    let table = catalog.table(table_id).expect("index of a table");
                    if index_id == table.primary.id {
                        return Err(PgError::new(
                            errors::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!(
                                "cannot drop index {name} because constraint {name} on table {} requires it",
                                table.name
                            ),
                        )
                        .with_hint(format!(
                            "You can drop constraint {name} on table {} instead.",
                            table.name
                        )));
                    }
                    (
                        DdlOp::DropIndex {
                            table: table_id,
                            index: index_id,
                        },
                        "DROP INDEX",
                    )
                }
            }
        }
        ast::ObjectType::Database => {
            let name = object_name(
                names_list
                    .first()
                    .ok_or_else(|| PgError::syntax("DROP DATABASE needs a name"))?,
            )?;
            match catalog.database(&name) {
                Some(db) if db.id == binder.env.database => {
                    return Err(PgError::new(
                        errors::OBJECT_IN_USE,
                        "cannot drop the currently open database",
                    ))
                }
                Some(db) => (DdlOp::DropDatabase(db.id), "DROP DATABASE"),
                None if if_exists => {
                    notices.push(format!("database \"{name}\" does not exist, skipping"));
                    (DdlOp::Nothing, "DROP DATABASE")
                }
                None => {
                    return Err(PgError::new(
                        SqlState::INVALID_CATALOG_NAME,
                        format!("database \"{name}\" does not exist"),
                    ))
                }
            }
        }
        ast::ObjectType::Schema => {
            let name = object_name(
                names_list
                    .first()
                    .ok_or_else(|| PgError::syntax("DROP SCHEMA needs a name"))?,
            )?;
            match catalog.schema(binder.env.database, &name) {
                Some(s) => {
                    let used = catalog.tables_in(s.id).next().is_some()
                        || catalog.sequences.values().any(|q| q.schema_id == s.id)
                        || catalog.views.values().any(|v| v.schema_id == s.id);
                    if used {
                        return Err(PgError::new(
                            errors::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!("cannot drop schema {name} because other objects depend on it"),
                        )
                        .with_hint("Drop the objects in the schema first."));
                    }
                    (DdlOp::DropSchema(s.id), "DROP SCHEMA")
                }
                None if if_exists => {
                    notices.push(format!("schema \"{name}\" does not exist, skipping"));
                    (DdlOp::Nothing, "DROP SCHEMA")
                }
                None => {
                    return Err(PgError::new(
                        errors::INVALID_SCHEMA_NAME,
                        format!("schema \"{name}\" does not exist"),
                    ))
                }
            }
        }
        ast::ObjectType::View => {
            return super::view::drop_views(binder, names_list, if_exists, cascade)
        }
        other => {
            return Err(PgError::unsupported(format!(
                "DROP {other} is not supported"
            )))
        }
    };
    Ok(Ddl { op, tag, notices })
}

fn comment_on(
    binder: &Binder<'_>,
    kind: ast::CommentObject,
    name: &ast::ObjectName,
    text: Option<String>,
) -> PgResult<Ddl> {
    let parts = names::object_parts(name)?;
    let catalog = binder.catalog();
    let (object, sub) = match kind {
        ast::CommentObject::Table | ast::CommentObject::Index | ast::CommentObject::Sequence => {
            let (schema, rel) = binder.resolve_schema(&parts)?;
            match catalog.relation(schema, rel) {
                Some(Relation::Table(id) | Relation::Sequence(id) | Relation::View(id)) => (id, 0),
                Some(Relation::Index(t, i)) => {
                    let oid = catalog
                        .table(t)
                        .and_then(|t| t.index(i))
                        .map_or(0, |i| i.oid);
                    (oid, 0)
                }
                None => return Err(errors::undefined_table(rel)),
            }
        }
        ast::CommentObject::Column => {
            let Some((column, table)) = parts.split_last() else {
                return Err(PgError::syntax("COMMENT ON COLUMN needs table.column"));
            };
            let (schema, rel) = binder.resolve_schema(table)?;
            let Some(Relation::Table(id)) = catalog.relation(schema, rel) else {
                return Err(errors::undefined_table(rel));
            };
            let t = catalog.table(id).expect("named table");
            let c = t
                .column(column)
                .ok_or_else(|| errors::undefined_column_of(column, rel))?;
            (id, c.id as i32)
        }
        ast::CommentObject::Database => {
            let name = parts.last().cloned().unwrap_or_default();
            let db = catalog.database(&name).ok_or_else(|| {
                PgError::new(
                    SqlState::INVALID_CATALOG_NAME,
                    format!("database \"{name}\" does not exist"),
                )
            })?;
            (db.id, 0)
        }
        ast::CommentObject::Schema => {
            let name = parts.last().cloned().unwrap_or_default();
            let s = catalog.schema(binder.env.database, &name).ok_or_else(|| {
                PgError::new(
                    errors::INVALID_SCHEMA_NAME,
                    format!("schema \"{name}\" does not exist"),
                )
            })?;
            (s.id, 0)
        }
        other => {
            return Err(PgError::unsupported(format!(
                "COMMENT ON {other} is not supported"
            )))
        }
    };
    Ok(ddl(DdlOp::Comment { object, sub, text }, "COMMENT"))
}

fn truncate(binder: &mut Binder<'_>, t: &ast::Truncate) -> PgResult<Ddl> {
    let catalog = binder.catalog();
    let mut ids = Vec::new();
    for target in &t.table_names {
        let parts = names::object_parts(&target.name)?;
        let (schema, name) = binder.resolve_schema(&parts)?;
        match catalog.relation(schema, name) {
            Some(Relation::Table(id)) => ids.push(id),
            Some(_) => {
                return Err(PgError::new(
                    errors::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a table"),
                ))
            }
            None => return Err(errors::undefined_table(name)),
        }
    }
    let cascade = matches!(t.cascade, Some(ast::CascadeOption::Cascade));
    for &id in &ids.clone() {
        for (referencing, fk) in catalog.referencing(id) {
            if ids.contains(&referencing.id) {
                continue;
            }
            if cascade {
                ids.push(referencing.id);
                continue;
            }
            let table = catalog.table(id).expect("truncated table exists");
            return Err(PgError::new(
                SqlState::FEATURE_NOT_SUPPORTED,
                "cannot truncate a table referenced in a foreign key constraint",
            )
            .with_detail(format!(
                "Table \"{}\" references \"{}\" via {}.",
                referencing.name, table.name, fk.name
            ))
            .with_hint(format!(
                "Truncate table \"{}\" at the same time, or use TRUNCATE ... CASCADE.",
                referencing.name
            )));
        }
    }
    Ok(ddl(
        DdlOp::Truncate {
            tables: ids,
            restart_identity: matches!(t.identity, Some(ast::TruncateIdentityOption::Restart)),
        },
        "TRUNCATE TABLE",
    ))
}
