//! Session variables (PostgreSQL's GUCs as a session sees them): `SET`, `SHOW`,
//! `RESET`, `current_setting()`, and the ParameterStatus reports of the ones
//! marked `report`.
//!
//! Names are case-insensitive; each keeps its canonical spelling for SHOW ALL
//! and ParameterStatus. Values are stored as text, validated when set.

use std::collections::BTreeMap;

use teller_net::{PgError, PgResult, SqlState};

/// One variable's definition.
struct VarDef {
    name: &'static str,
    default: &'static str,
    /// Sent as ParameterStatus at startup and whenever it changes.
    report: bool,
    read_only: bool,
    description: &'static str,
    check: fn(&str) -> PgResult<String>,
}

fn any(value: &str) -> PgResult<String> {
    Ok(value.to_string())
}

fn boolean(value: &str) -> PgResult<String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" => Ok("on".into()),
        "off" | "false" | "no" | "0" | "f" => Ok("off".into()),
        _ => Err(invalid("boolean", value)),
    }
}

fn non_negative_integer(value: &str) -> PgResult<String> {
    value
        .trim()
        .parse::<u64>()
        .map(|n| n.to_string())
        .map_err(|_| invalid("integer", value))
}

fn extra_float_digits(value: &str) -> PgResult<String> {
    match value.trim().parse::<i32>() {
        Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
        _ => Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("{value} is outside the valid range for parameter \"extra_float_digits\" (-15 .. 3)"),
        )),
    }
}

fn utf8_only(value: &str) -> PgResult<String> {
    match value.trim().to_ascii_uppercase().replace('-', "").as_str() {
        "UTF8" | "UNICODE" => Ok("UTF8".into()),
        _ => Err(PgError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("client encoding \"{value}\" is not supported: TellerDB speaks UTF8 only"),
        )),
    }
}

fn iso_datestyle(value: &str) -> PgResult<String> {
    let parts: Vec<String> = value
        .split(',')
        .map(|p| p.trim().to_ascii_uppercase())
        .collect();
    let order = parts
        .iter()
        .find(|p| matches!(p.as_str(), "MDY" | "DMY" | "YMD"))
        .cloned()
        .unwrap_or_else(|| "MDY".into());
    if parts
        .iter()
        .all(|p| matches!(p.as_str(), "ISO" | "MDY" | "DMY" | "YMD" | ""))
    {
        Ok(format!("ISO, {order}"))
    } else {
        Err(PgError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("DateStyle \"{value}\" is not supported: only ISO output is"),
        ))
    }
}

fn utc_only(value: &str) -> PgResult<String> {
    match value.trim().to_ascii_uppercase().as_str() {
        "UTC" | "ETC/UTC" | "GMT" | "Z" | "ZULU" | "+00" | "+00:00" | "0" | "UCT" => {
            Ok("UTC".into())
        }
        _ => Err(PgError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("time zone \"{value}\" is not supported yet: sessions run in UTC"),
        )),
    }
}

fn postgres_interval_style(value: &str) -> PgResult<String> {
    if value.trim().eq_ignore_ascii_case("postgres") {
        Ok("postgres".into())
    } else {
        Err(PgError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("IntervalStyle \"{value}\" is not supported: only postgres is"),
        ))
    }
}

/// Parses an isolation level as SET and SHOW spell it.
pub fn isolation_level(value: &str) -> PgResult<String> {
    let normal = value
        .trim()
        .to_ascii_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match normal.as_str() {
        "serializable" => Ok("serializable".into()),
        "repeatable read" => Ok("repeatable read".into()),
        // As in PostgreSQL, READ UNCOMMITTED behaves as READ COMMITTED.
        "read committed" | "read uncommitted" => Ok("read committed".into()),
        _ => Err(invalid("transaction_isolation", value)),
    }
}

fn invalid(name: &str, value: &str) -> PgError {
    PgError::new(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

const DEFS: &[VarDef] = &[
    VarDef {
        name: "server_version",
        default: "15.0",
        report: true,
        read_only: true,
        description: "PostgreSQL version TellerDB is compatible with.",
        check: any,
    },
    VarDef {
        name: "server_version_num",
        default: "150000",
        report: false,
        read_only: true,
        description: "The compatible PostgreSQL version as a number.",
        check: any,
    },
    VarDef {
        name: "server_encoding",
        default: "UTF8",
        report: true,
        read_only: true,
        description: "The database encoding.",
        check: any,
    },
    VarDef {
        name: "client_encoding",
        default: "UTF8",
        report: true,
        read_only: false,
        description: "The client's character set (UTF8 only).",
        check: utf8_only,
    },
    VarDef {
        name: "DateStyle",
        default: "ISO, MDY",
        report: true,
        read_only: false,
        description: "Display format for dates (ISO only).",
        check: iso_datestyle,
    },
    VarDef {
        name: "IntervalStyle",
        default: "postgres",
        report: true,
        read_only: false,
        description: "Display format for intervals.",
        check: postgres_interval_style,
    },
    VarDef {
        name: "TimeZone",
        default: "UTC",
        report: true,
        read_only: false,
        description: "Time zone for displaying timestamps (UTC only for now).",
        check: utc_only,
    },
    VarDef {
        name: "integer_datetimes",
        default: "on",
        report: true,
        read_only: true,
        description: "Datetimes are 64-bit integers.",
        check: any,
    },
    VarDef {
        name: "standard_conforming_strings",
        default: "on",
        report: true,
        read_only: false,
        description: "'...' strings treat backslashes literally.",
        check: boolean,
    },
    VarDef {
        name: "application_name",
        default: "",
        report: true,
        read_only: false,
        description: "The client application's name.",
        check: any,
    },
    VarDef {
        name: "is_superuser",
        default: "on",
        report: true,
        read_only: true,
        description: "Whether the session user is a superuser.",
        check: any,
    },
    VarDef {
        name: "session_authorization",
        default: "",
        report: true,
        read_only: true,
        description: "The session user.",
        check: any,
    },
    VarDef {
        name: "default_transaction_isolation",
        default: "serializable",
        report: false,
        read_only: false,
        description: "Isolation level of new transactions.",
        check: isolation_level,
    },
    VarDef {
        name: "transaction_isolation",
        default: "serializable",
        report: false,
        read_only: false,
        description: "Isolation level of the current transaction.",
        check: isolation_level,
    },
    VarDef {
        name: "default_transaction_read_only",
        default: "off",
        report: false,
        read_only: false,
        description: "Whether new transactions are read-only.",
        check: boolean,
    },
    VarDef {
        name: "transaction_read_only",
        default: "off",
        report: false,
        read_only: false,
        description: "Whether the current transaction is read-only.",
        check: boolean,
    },
    VarDef {
        name: "search_path",
        default: "\"$user\", public",
        report: false,
        read_only: false,
        description: "Schema search order for unqualified names.",
        check: any,
    },
    VarDef {
        name: "extra_float_digits",
        default: "1",
        report: false,
        read_only: false,
        description: "Extra digits for floating-point output.",
        check: extra_float_digits,
    },
    VarDef {
        name: "bytea_output",
        default: "hex",
        report: false,
        read_only: false,
        description: "Output format of bytea (hex).",
        check: any,
    },
    VarDef {
        name: "statement_timeout",
        default: "0",
        report: false,
        read_only: false,
        description: "Milliseconds a statement may run (0: no limit).",
        check: non_negative_integer,
    },
    VarDef {
        name: "lock_timeout",
        default: "0",
        report: false,
        read_only: false,
        description: "Milliseconds to wait for a lock (0: no limit).",
        check: non_negative_integer,
    },
    VarDef {
        name: "idle_in_transaction_session_timeout",
        default: "0",
        report: false,
        read_only: false,
        description: "Milliseconds a transaction may stay idle (0: no limit).",
        check: non_negative_integer,
    },
    VarDef {
        name: "client_min_messages",
        default: "notice",
        report: false,
        read_only: false,
        description: "Lowest message level sent to the client.",
        check: any,
    },
    VarDef {
        name: "synchronous_commit",
        default: "on",
        report: false,
        read_only: false,
        description: "Commits wait for durability (always on in TellerDB).",
        check: boolean,
    },
    VarDef {
        name: "max_identifier_length",
        default: "63",
        report: false,
        read_only: true,
        description: "Longest identifier.",
        check: any,
    },
    VarDef {
        name: "teller.shard",
        default: "0",
        report: false,
        read_only: true,
        description: "The shard (core) serving this session.",
        check: any,
    },
    VarDef {
        name: "teller.shards",
        default: "1",
        report: false,
        read_only: true,
        description: "Shards in this node.",
        check: any,
    },
];

/// A session's variables.
#[derive(Clone, Debug)]
pub struct Vars {
    /// Lower-case name → value.
    values: BTreeMap<String, String>,
    /// Custom (`prefix.name`) variables set by the client.
    custom: BTreeMap<String, String>,
}

fn def(name: &str) -> Option<&'static VarDef> {
    DEFS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

fn unrecognized(name: &str) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

impl Vars {
    pub fn new(user: &str, shard: usize, shards: usize) -> Vars {
        let mut values: BTreeMap<String, String> = DEFS
            .iter()
            .map(|d| (d.name.to_ascii_lowercase(), d.default.to_string()))
            .collect();
        values.insert("session_authorization".into(), user.to_string());
        values.insert("teller.shard".into(), shard.to_string());
        values.insert("teller.shards".into(), shards.to_string());
        Vars {
            values,
            custom: BTreeMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> PgResult<String> {
        let key = name.to_ascii_lowercase();
        if let Some(value) = self.values.get(&key) {
            return Ok(value.clone());
        }
        self.custom
            .get(&key)
            .cloned()
            .ok_or_else(|| unrecognized(name))
    }

    /// Sets a variable from client input (SET, startup options). Returns the
    /// canonical name and stored value if the variable is reported to clients.
    pub fn set(&mut self, name: &str, value: &str) -> PgResult<Option<(String, String)>> {
        let key = name.to_ascii_lowercase();
        match def(&key) {
            Some(d) => {
                if d.read_only {
                    return Err(PgError::new(
                        SqlState::CANT_CHANGE_RUNTIME_PARAM,
                        format!("parameter \"{}\" cannot be changed", d.name),
                    ));
                }
                let value = (d.check)(value)?;
                self.values.insert(key, value.clone());
                Ok(d.report.then(|| (d.name.to_string(), value)))
            }
            // Like PostgreSQL, any two-part name is a custom placeholder, except
            // in the namespace TellerDB itself owns.
            None if key.contains('.') && !key.starts_with("teller.") => {
                self.custom.insert(key, value.to_string());
                Ok(None)
            }
            None => Err(unrecognized(name)),
        }
    }

    /// Resets a variable to its default.
    pub fn reset(&mut self, name: &str) -> PgResult<Option<(String, String)>> {
        let key = name.to_ascii_lowercase();
        match def(&key) {
            Some(d) if !d.read_only => self.set(d.name, d.default),
            Some(d) => Err(PgError::new(
                SqlState::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{}\" cannot be changed", d.name),
            )),
            None if self.custom.remove(&key).is_some() => Ok(None),
            None if key.contains('.') => Ok(None),
            None => Err(unrecognized(name)),
        }
    }

    /// Resets every settable variable; returns the reported ones that changed.
    pub fn reset_all(&mut self) -> Vec<(String, String)> {
        let mut changed = Vec::new();
        for d in DEFS.iter().filter(|d| !d.read_only) {
            let key = d.name.to_ascii_lowercase();
            if self.values.get(&key).map(String::as_str) != Some(d.default) {
                self.values.insert(key, d.default.to_string());
                if d.report {
                    changed.push((d.name.to_string(), d.default.to_string()));
                }
            }
        }
        self.custom.clear();
        changed
    }

    /// The variables reported at startup, in a stable order.
    pub fn reported(&self) -> Vec<(String, String)> {
        DEFS.iter()
            .filter(|d| d.report)
            .map(|d| {
                (
                    d.name.to_string(),
                    self.values[&d.name.to_ascii_lowercase()].clone(),
                )
            })
            .collect()
    }

    /// Every variable with its value and description, for SHOW ALL.
    pub fn all(&self) -> Vec<(String, String, String)> {
        let mut rows: Vec<_> = DEFS
            .iter()
            .map(|d| {
                (
                    d.name.to_string(),
                    self.values[&d.name.to_ascii_lowercase()].clone(),
                    d.description.to_string(),
                )
            })
            .chain(
                self.custom
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone(), String::new())),
            )
            .collect();
        rows.sort_by_key(|r| r.0.to_ascii_lowercase());
        rows
    }

    /// Canonical spelling of a known variable name (for SHOW's column name).
    pub fn canonical_name(name: &str) -> String {
        def(name).map_or_else(
            || name.to_ascii_lowercase(),
            |d| d.name.to_ascii_lowercase(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_reported_changes_are_returned() {
        let mut vars = Vars::new("alice", 1, 2);
        assert_eq!(vars.get("DATESTYLE").unwrap(), "ISO, MDY");
        let reported = vars.set("application_name", "psql").unwrap();
        assert_eq!(reported, Some(("application_name".into(), "psql".into())));
        assert_eq!(vars.set("extra_float_digits", "3").unwrap(), None);
        assert_eq!(vars.get("session_authorization").unwrap(), "alice");
        assert_eq!(vars.get("teller.shard").unwrap(), "1");
    }

    #[test]
    fn errors_carry_postgres_sqlstates() {
        let mut vars = Vars::new("u", 0, 1);
        assert_eq!(
            vars.set("no_such_thing", "1").unwrap_err().code,
            SqlState::UNDEFINED_OBJECT
        );
        assert_eq!(
            vars.set("server_version", "9").unwrap_err().code,
            SqlState::CANT_CHANGE_RUNTIME_PARAM
        );
        assert_eq!(
            vars.set("extra_float_digits", "9").unwrap_err().code,
            SqlState::INVALID_PARAMETER_VALUE
        );
        assert_eq!(
            vars.set("TimeZone", "Europe/Paris").unwrap_err().code,
            SqlState::FEATURE_NOT_SUPPORTED
        );
        assert_eq!(
            vars.set("teller.shard", "3").unwrap_err().code,
            SqlState::CANT_CHANGE_RUNTIME_PARAM
        );
    }

    #[test]
    fn custom_variables_and_reset() {
        let mut vars = Vars::new("u", 0, 1);
        vars.set("myapp.tenant", "42").unwrap();
        assert_eq!(vars.get("myapp.tenant").unwrap(), "42");
        vars.set("application_name", "x").unwrap();
        let changed = vars.reset_all();
        assert_eq!(
            changed,
            vec![("application_name".to_string(), String::new())]
        );
        assert!(vars.get("myapp.tenant").is_err());
        assert_eq!(
            isolation_level("READ   UNCOMMITTED").unwrap(),
            "read committed"
        );
    }
}
