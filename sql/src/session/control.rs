//! Statements that need no data: SET/SHOW/RESET, transaction control,
//! DISCARD. Bound at parse time (they do not depend on the catalog).

use sqlparser::ast::{self, Statement as Ast};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use teller_net::session::Column;
use teller_net::types::Type;
use teller_net::{PgError, PgResult, SqlState};

use super::{PARSER_RECURSION_MAX, QUERY_TEXT_BYTES_MAX, STATEMENTS_PER_QUERY_MAX};
use crate::vars::{self, Vars};

/// A statement the session runs itself.
#[derive(Clone, Debug)]
pub enum Kind {
    Show(String),
    /// `SHOW RANGES [FROM TABLE name]` (the name's parts; `None`: the
    /// whole keyspace). See [`super::ranges`].
    ShowRanges(Option<Vec<String>>),
    ShowAll,
    Set {
        name: String,
        value: Option<String>,
        local: bool,
    },
    ResetAll,
    Begin {
        isolation: Option<String>,
        read_only: Option<bool>,
    },
    Commit,
    Rollback,
    SetTransaction {
        isolation: Option<String>,
        read_only: Option<bool>,
        session: bool,
    },
    DiscardAll,
    /// `PREPARE name [(types)] AS statement`.
    Prepare {
        name: String,
        statement: Box<Ast>,
        types: Vec<Option<Type>>,
    },
    /// `EXECUTE name [(args)]`.
    Execute {
        name: String,
        args: Vec<ast::Expr>,
    },
    /// `DEALLOCATE [PREPARE] name | ALL`.
    Deallocate(Option<String>),
}

/// PostgreSQL's `VACUUM [(options)] [FULL] [FREEZE] [VERBOSE] [ANALYZE]
/// [tables]`, which sqlparser does not parse: storage needs no vacuuming,
/// so it becomes `ANALYZE` (statistics for all tables) when ANALYZE is
/// asked for, else a plain `VACUUM` that does nothing.
pub fn vacuum_rewrite(sql: &str) -> Option<String> {
    let text = sql.trim().trim_end_matches(';').trim();
    let mut words = text.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("vacuum") || text.contains(';') {
        return None;
    }
    let rest = text[6..].to_ascii_lowercase();
    let analyze = rest
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .any(|w| w == "analyze" || w == "analyse");
    Some(if analyze {
        "ANALYZE".into()
    } else {
        "VACUUM".into()
    })
}

/// Binds a control statement; `Ok(None)` if `statement` is a data statement.
pub fn bind_control(statement: &Ast) -> PgResult<Option<(Kind, Option<Vec<Column>>)>> {
    Ok(Some(match statement {
        Ast::ShowVariable { variable } => {
            if variable
                .first()
                .is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case("ranges"))
            {
                return super::ranges::bind(&variable[1..]).map(Some);
            }
            // sqlparser splits `SHOW a.b` into identifiers, like multi-word names.
            let words: Vec<String> = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            let spaced = words.join(" ");
            let lower = match spaced.as_str() {
                "transaction isolation level" | "all" => spaced,
                "time zone" => "timezone".to_string(),
                "session authorization" => "session_authorization".to_string(),
                _ => words.join("."),
            };
            match lower.as_str() {
                "all" => (
                    Kind::ShowAll,
                    Some(vec![
                        Column::new("name", Type::Text),
                        Column::new("setting", Type::Text),
                        Column::new("description", Type::Text),
                    ]),
                ),
                "teller.connections" => (
                    Kind::Show(lower),
                    Some(vec![
                        Column::new("shard", Type::Int4),
                        Column::new("connections", Type::Int8),
                    ]),
                ),
                "transaction isolation level" => (
                    Kind::Show(lower),
                    Some(vec![Column::new("transaction_isolation", Type::Text)]),
                ),
                _ => (
                    Kind::Show(lower.clone()),
                    Some(vec![Column::new(Vars::canonical_name(&lower), Type::Text)]),
                ),
            }
        }
        Ast::Set(set) => (bind_set(set)?, None),
        Ast::Reset(reset) => match &reset.reset {
            ast::Reset::ALL => (Kind::ResetAll, None),
            ast::Reset::ConfigurationParameter(name) => (
                Kind::Set {
                    name: name.to_string(),
                    value: None,
                    local: false,
                },
                None,
            ),
            ast::Reset::SessionAuthorization => (
                Kind::Set {
                    name: "session_authorization".into(),
                    value: None,
                    local: false,
                },
                None,
            ),
        },
        Ast::StartTransaction { modes, .. } => {
            let (isolation, read_only) = transaction_modes(modes)?;
            (
                Kind::Begin {
                    isolation,
                    read_only,
                },
                None,
            )
        }
        Ast::Commit { chain: false, .. } => (Kind::Commit, None),
        Ast::Rollback {
            chain: false,
            savepoint: None,
        } => (Kind::Rollback, None),
        Ast::Discard { object_type } if object_type.to_string().eq_ignore_ascii_case("ALL") => {
            (Kind::DiscardAll, None)
        }
        Ast::Prepare {
            name,
            data_types,
            statement,
        } => {
            let types = data_types
                .iter()
                .map(|t| crate::expr::resolve_type(t).map(Some))
                .collect::<PgResult<Vec<_>>>()?;
            (
                Kind::Prepare {
                    name: crate::bind::names::ident(name),
                    statement: statement.clone(),
                    types,
                },
                None,
            )
        }
        Ast::Execute {
            name: Some(name),
            parameters,
            immediate: false,
            into,
            using,
            output: false,
            default: false,
            ..
        } if into.is_empty() && using.is_empty() => {
            let parts = crate::bind::names::object_parts(name)?;
            (
                Kind::Execute {
                    name: parts.last().cloned().unwrap_or_default(),
                    args: parameters.clone(),
                },
                None,
            )
        }
        Ast::Deallocate { name, .. } => {
            let all = name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all");
            (
                Kind::Deallocate((!all).then(|| crate::bind::names::ident(name))),
                None,
            )
        }
        _ => return Ok(None),
    }))
}

/// Parses SQL text into sqlparser statements with our limits.
pub fn parse_sql(sql: &str) -> PgResult<Vec<Ast>> {
    if sql.len() > QUERY_TEXT_BYTES_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "query text of {} bytes exceeds the limit of {QUERY_TEXT_BYTES_MAX} bytes",
                sql.len()
            ),
        ));
    }
    if sql.trim().trim_matches(';').trim().is_empty() {
        return Ok(Vec::new());
    }
    let dialect = PostgreSqlDialect {};
    let statements = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_MAX)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| PgError::syntax(syntax_message(&e)))?;
    if statements.len() > STATEMENTS_PER_QUERY_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("more than {STATEMENTS_PER_QUERY_MAX} statements in one query"),
        ));
    }
    Ok(statements)
}

fn syntax_message(error: &sqlparser::parser::ParserError) -> String {
    use sqlparser::parser::ParserError as P;
    match error {
        P::RecursionLimitExceeded => "statement nesting is too deep".into(),
        P::TokenizerError(m) | P::ParserError(m) => format!("syntax error: {m}"),
    }
}

pub fn statement_name(statement: &Ast) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

fn transaction_modes(modes: &[ast::TransactionMode]) -> PgResult<(Option<String>, Option<bool>)> {
    let mut isolation = None;
    let mut read_only = None;
    for mode in modes {
        match mode {
            ast::TransactionMode::IsolationLevel(level) => {
                let text = match level {
                    ast::TransactionIsolationLevel::ReadUncommitted => "read uncommitted",
                    ast::TransactionIsolationLevel::ReadCommitted => "read committed",
                    ast::TransactionIsolationLevel::RepeatableRead => "repeatable read",
                    ast::TransactionIsolationLevel::Serializable => "serializable",
                    other => {
                        return Err(PgError::syntax(format!(
                            "isolation level {other} is not a PostgreSQL level"
                        )))
                    }
                };
                isolation = Some(vars::isolation_level(text)?);
            }
            ast::TransactionMode::AccessMode(mode) => {
                read_only = Some(matches!(mode, ast::TransactionAccessMode::ReadOnly));
            }
        }
    }
    Ok((isolation, read_only))
}

/// The text of a SET value: identifiers and literals as written, lists joined.
fn set_value_text(values: &[ast::Expr]) -> PgResult<String> {
    let mut parts = Vec::with_capacity(values.len());
    for value in values {
        let text = match value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                    s.clone()
                }
                ast::Value::Number(n, _) => n.clone(),
                ast::Value::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
                other => other.to_string(),
            },
            ast::Expr::Identifier(ident) => ident.value.clone(),
            ast::Expr::UnaryOp {
                op: ast::UnaryOperator::Minus,
                expr,
            } => format!("-{expr}"),
            other => other.to_string(),
        };
        parts.push(text);
    }
    Ok(parts.join(", "))
}

fn is_default(values: &[ast::Expr]) -> bool {
    matches!(values, [ast::Expr::Identifier(i)] if i.value.eq_ignore_ascii_case("default") && i.quote_style.is_none())
}

fn bind_set(set: &ast::Set) -> PgResult<Kind> {
    Ok(match set {
        ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => {
            let name = variable.to_string();
            let local = matches!(scope, Some(ast::ContextModifier::Local));
            let value = if is_default(values) {
                None
            } else {
                Some(set_value_text(values)?)
            };
            Kind::Set { name, value, local }
        }
        ast::Set::SetTimeZone { local, value } => Kind::Set {
            name: "TimeZone".into(),
            value: Some(set_value_text(std::slice::from_ref(value))?),
            local: *local,
        },
        ast::Set::SetNames { charset_name, .. } => Kind::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
            local: false,
        },
        ast::Set::SetTransaction {
            modes,
            snapshot: None,
            session,
        } => {
            let (isolation, read_only) = transaction_modes(modes)?;
            Kind::SetTransaction {
                isolation,
                read_only,
                session: *session,
            }
        }
        other => {
            return Err(PgError::unsupported(format!(
                "{other} is not supported yet"
            )))
        }
    })
}

pub fn apply_startup_options(vars: &mut Vars, options: &str) -> PgResult<()> {
    // `-c name=value` pairs, as libpq's PGOPTIONS passes them.
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next().unwrap_or_default().to_string(),
            w if w.starts_with("-c") => w[2..].to_string(),
            w if w.starts_with("--") => w[2..].to_string(),
            _ => continue,
        };
        if let Some((name, value)) = setting.split_once('=') {
            vars.set(&name.replace('-', "_"), value)
                .map_err(|e| PgError {
                    severity: teller_net::Severity::Fatal,
                    ..e
                })?;
        }
    }
    Ok(())
}
