//! Binding `COPY ... FROM STDIN` and `COPY ... TO STDOUT`.
//!
//! The wire driver runs COPY's sub-protocol and converts between COPY's text
//! or CSV lines and typed values ([`teller_net::copy`]); the SQL layer only
//! says which columns of which types move, in which format:
//!
//! - `COPY t [(columns)] FROM STDIN` becomes an INSERT of the decoded rows
//!   (defaults for the columns not listed, constraints, indexes and foreign
//!   keys checked as for INSERT) — [`Command::CopyIn`].
//! - `COPY t [(columns)] TO STDOUT` and `COPY (query) TO STDOUT` become a
//!   query whose rows the driver encodes — [`Command::CopyOut`].
//!
//! Options follow PostgreSQL's `ProcessCopyOptions`: `FORMAT text|csv`,
//! `DELIMITER`, `NULL`, `HEADER` (CSV only), `QUOTE`, `ESCAPE` (CSV only),
//! `FREEZE` (accepted, no effect), `ENCODING 'UTF8'`, and the pre-9.0 forms
//! (`WITH CSV HEADER`, `DELIMITER AS ','`, `NULL AS ''`). Files, programs,
//! the binary format and the `FORCE_*` options are refused with `0A000`.

use sqlparser::ast::{self, CopyLegacyCsvOption, CopyLegacyOption, CopyOption};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use teller_net::copy::{CopyDirection, CopyFormat, CopySpec};
use teller_net::session::Column;
use teller_net::types::Type;
use teller_net::{PgError, PgResult, SqlState};

use super::{dml, names, Binder, Command};
use crate::errors;

/// The copy options as given, before they make a [`CopyFormat`].
#[derive(Default)]
struct Options {
    csv: Option<bool>,
    delimiter: Option<char>,
    null: Option<String>,
    header: Option<bool>,
    quote: Option<char>,
    escape: Option<char>,
    freeze: Option<bool>,
    encoding: Option<String>,
}

fn conflicting() -> PgError {
    PgError::new(SqlState::SYNTAX_ERROR, "conflicting or redundant options")
}

fn set<T>(slot: &mut Option<T>, value: T) -> PgResult<()> {
    if slot.is_some() {
        return Err(conflicting());
    }
    *slot = Some(value);
    Ok(())
}

fn one_byte(c: char, what: &str) -> PgResult<u8> {
    u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
        PgError::unsupported(format!("COPY {what} must be a single one-byte character"))
    })
}

impl Options {
    fn from_ast(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> PgResult<Options> {
        let mut o = Options::default();
        for option in options {
            match option {
                CopyOption::Format(name) => {
                    let csv = match name.value.to_ascii_lowercase().as_str() {
                        "text" => false,
                        "csv" => true,
                        "binary" => {
                            return Err(PgError::unsupported(
                                "COPY in binary format is not supported",
                            ))
                        }
                        other => {
                            return Err(PgError::new(
                                SqlState::INVALID_PARAMETER_VALUE,
                                format!("COPY format \"{other}\" not recognized"),
                            ))
                        }
                    };
                    set(&mut o.csv, csv)?;
                }
                CopyOption::Freeze(on) => set(&mut o.freeze, *on)?,
                CopyOption::Delimiter(c) => set(&mut o.delimiter, *c)?,
                CopyOption::Null(s) => set(&mut o.null, s.clone())?,
                CopyOption::Header(on) => set(&mut o.header, *on)?,
                CopyOption::Quote(c) => set(&mut o.quote, *c)?,
                CopyOption::Escape(c) => set(&mut o.escape, *c)?,
                CopyOption::Encoding(e) => set(&mut o.encoding, e.clone())?,
                CopyOption::ForceQuote(_)
                | CopyOption::ForceNotNull(_)
                | CopyOption::ForceNull(_) => {
                    return Err(PgError::unsupported(
                        "COPY FORCE_QUOTE, FORCE_NOT_NULL and FORCE_NULL are not supported",
                    ))
                }
            }
        }
        for option in legacy {
            match option {
                CopyLegacyOption::Binary => {
                    return Err(PgError::unsupported(
                        "COPY in binary format is not supported",
                    ))
                }
                CopyLegacyOption::Csv(csv) => {
                    set(&mut o.csv, true)?;
                    for c in csv {
                        match c {
                            CopyLegacyCsvOption::Header => set(&mut o.header, true)?,
                            CopyLegacyCsvOption::Quote(q) => set(&mut o.quote, *q)?,
                            CopyLegacyCsvOption::Escape(e) => set(&mut o.escape, *e)?,
                            CopyLegacyCsvOption::ForceQuote(_)
                            | CopyLegacyCsvOption::ForceNotNull(_) => {
                                return Err(PgError::unsupported(
                                    "COPY FORCE QUOTE and FORCE NOT NULL are not supported",
                                ))
                            }
                        }
                    }
                }
                CopyLegacyOption::Delimiter(c) => set(&mut o.delimiter, *c)?,
                CopyLegacyOption::Null(s) => set(&mut o.null, s.clone())?,
                CopyLegacyOption::Header => set(&mut o.header, true)?,
                other => {
                    return Err(PgError::syntax(format!(
                        "syntax error at or near \"{other}\""
                    )))
                }
            }
        }
        Ok(o)
    }

    fn format(self) -> PgResult<CopyFormat> {
        if let Some(encoding) = &self.encoding {
            let e = encoding.to_ascii_lowercase().replace(['-', '_'], "");
            if e != "utf8" && e != "unicode" {
                return Err(PgError::unsupported(format!(
                    "COPY encoding \"{encoding}\" is not supported (only UTF8)"
                )));
            }
        }
        let _ = self.freeze;
        if self.csv == Some(true) {
            let delimiter = one_byte(self.delimiter.unwrap_or(','), "delimiter")?;
            let quote = one_byte(self.quote.unwrap_or('"'), "quote")?;
            let escape = match self.escape {
                Some(e) => one_byte(e, "escape")?,
                None => quote,
            };
            Ok(CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null: self.null.unwrap_or_default(),
                header: self.header.unwrap_or(false),
            })
        } else {
            if self.header == Some(true) {
                return Err(PgError::unsupported(
                    "COPY HEADER is only supported in CSV mode",
                ));
            }
            if self.quote.is_some() {
                return Err(PgError::unsupported(
                    "COPY quote available only in CSV mode",
                ));
            }
            if self.escape.is_some() {
                return Err(PgError::unsupported(
                    "COPY escape available only in CSV mode",
                ));
            }
            Ok(CopyFormat::Text {
                delimiter: one_byte(self.delimiter.unwrap_or('\t'), "delimiter")?,
                null: self.null.unwrap_or_else(|| "\\N".into()),
            })
        }
    }
}

/// Binds a `Statement::Copy`.
pub fn bind_copy(
    binder: &mut Binder<'_>,
    statement: &ast::Statement,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Command> {
    let ast::Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        values,
    } = statement
    else {
        return Err(PgError::internal("not a COPY statement"));
    };
    match (target, *to) {
        (ast::CopyTarget::Stdin, false) | (ast::CopyTarget::Stdout, true) => {}
        (ast::CopyTarget::Stdin, true) | (ast::CopyTarget::Stdout, false) => {
            let word = if *to { "STDIN" } else { "STDOUT" };
            return Err(PgError::syntax(format!(
                "syntax error at or near \"{word}\""
            )));
        }
        _ => {
            return Err(PgError::unsupported(
                "COPY to or from a file or program is not supported; use COPY ... FROM STDIN or TO STDOUT (psql's \\copy)",
            ))
        }
    }
    if !values.is_empty() {
        return Err(PgError::unsupported(
            "COPY data inside the query text is not supported; send it after the statement",
        ));
    }
    let format = Options::from_ast(options, legacy_options)?.format()?;
    if !*to {
        let ast::CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(PgError::syntax("COPY ... FROM does not support a query"));
        };
        copy_table(binder, table_name, "to")?;
        let insert = dml::bind_copy_insert(binder, table_name, columns, params)?;
        let spec = CopySpec {
            direction: CopyDirection::FromStdin,
            format,
            columns: insert
                .targets
                .iter()
                .map(|&p| {
                    let c = &insert.write.table.columns[p];
                    let mut column = Column::new(c.name.clone(), c.ty);
                    column.type_modifier = c.typmod;
                    column
                })
                .collect(),
        };
        return Ok(Command::CopyIn {
            insert: Box::new(insert),
            spec,
        });
    }
    let query = match source {
        ast::CopySource::Query(q) => q.clone(),
        ast::CopySource::Table {
            table_name,
            columns,
        } => Box::new(table_query(binder, table_name, columns)?),
    };
    let out = binder.query(&query, params)?;
    let plan = crate::plan::optimize::optimize(out.plan, binder.env)?;
    Ok(Command::CopyOut {
        plan,
        spec: CopySpec {
            direction: CopyDirection::ToStdout,
            format,
            columns: out.columns,
        },
    })
}

/// The table COPY reads or writes; PostgreSQL's words for other relations.
fn copy_table(
    binder: &Binder<'_>,
    table_name: &ast::ObjectName,
    direction: &str,
) -> PgResult<crate::catalog::TableRef> {
    dml::target_table(binder, table_name).map_err(|e| {
        if e.code != errors::WRONG_OBJECT_TYPE {
            return e;
        }
        let parts = names::object_parts(table_name).unwrap_or_default();
        let name = parts.last().cloned().unwrap_or_default();
        let relation = binder
            .resolve_schema(&parts)
            .ok()
            .and_then(|(schema, table)| binder.catalog().relation(schema, table));
        let sequence = matches!(relation, Some(crate::catalog::Relation::Sequence(_)));
        let kind = match relation {
            Some(crate::catalog::Relation::Sequence(_)) => "sequence",
            Some(crate::catalog::Relation::View(_)) => "view",
            _ => "non-table relation",
        };
        let error = PgError::new(
            errors::WRONG_OBJECT_TYPE,
            format!("cannot copy {direction} {kind} \"{name}\""),
        );
        if direction == "from" && !sequence {
            error.with_hint("Try the COPY (SELECT ...) TO variant.")
        } else {
            error
        }
    })
}

/// `SELECT columns FROM table` for `COPY table [(columns)] TO STDOUT`.
fn table_query(
    binder: &Binder<'_>,
    table_name: &ast::ObjectName,
    columns: &[ast::Ident],
) -> PgResult<ast::Query> {
    let table = copy_table(binder, table_name, "from")?;
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let list: Vec<String> = if columns.is_empty() {
        table
            .columns
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| quote(&c.name))
            .collect()
    } else {
        let mut seen = Vec::new();
        for c in columns {
            let name = names::ident(c);
            if !table.columns.iter().any(|t| t.name == name) {
                return Err(errors::undefined_column_of(&name, &table.name));
            }
            if seen.contains(&name) {
                return Err(PgError::new(
                    errors::DUPLICATE_COLUMN,
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            seen.push(name);
        }
        seen.iter().map(|n| quote(n)).collect()
    };
    let sql = format!("SELECT {} FROM {table_name}", list.join(", "));
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| PgError::internal(format!("COPY query: {e}")))?;
    match statements.pop() {
        Some(ast::Statement::Query(q)) => Ok(*q),
        _ => Err(PgError::internal("COPY query did not parse as a query")),
    }
}

/// Rewrites the boolean words PostgreSQL accepts for COPY options (`FREEZE
/// on`, `HEADER 1`, ...), which sqlparser only knows as TRUE and FALSE.
/// `None` when `sql` is not a COPY statement or needs no change.
pub fn rewrite_options(sql: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let head = sql.trim_start();
    if head.len() < 4 || !head[..4].eq_ignore_ascii_case("copy") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut out = String::with_capacity(sql.len());
    let mut changed = false;
    let mut after_flag = false;
    for token in &tokens {
        let replacement = match token {
            Token::Word(w) if after_flag && w.quote_style.is_none() => {
                match w.value.to_ascii_lowercase().as_str() {
                    "on" => Some("TRUE"),
                    "off" => Some("FALSE"),
                    _ => None,
                }
            }
            Token::Number(n, _) if after_flag => match n.as_str() {
                "1" => Some("TRUE"),
                "0" => Some("FALSE"),
                _ => None,
            },
            _ => None,
        };
        match replacement {
            Some(r) => {
                out.push_str(r);
                changed = true;
            }
            None => out.push_str(&token.to_string()),
        }
        match token {
            Token::Whitespace(_) => {}
            Token::Word(w) => {
                after_flag = w.quote_style.is_none()
                    && ["freeze", "header"].contains(&w.value.to_ascii_lowercase().as_str());
            }
            _ => after_flag = false,
        }
    }
    changed.then_some(out)
}
