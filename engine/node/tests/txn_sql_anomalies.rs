//! The isolation anomalies of issue 5, end to end: golden scripts under
//! `tests/anomalies/`, one per anomaly, each driving two or three
//! tokio-postgres sessions against a real `teller` process, step by step,
//! at SERIALIZABLE, REPEATABLE READ and READ COMMITTED.
//!
//! The scenarios are those of the KV layer's goldens
//! (`engine/kv/tests/testdata/anomalies/<level>/<name>`, same file names,
//! same keys and values) written in SQL over a table `kv (k text primary
//! key, v int8)`, so both layers prove the same table of prevented and
//! allowed anomalies (see `docs/transactions.md`).
//!
//! # Script format
//!
//! - `# ...` comments and blank lines are kept as they are.
//! - `setup x=10 y=20`: a fresh table `kv` holding those rows.
//! - `s1: <SQL>`: runs the SQL on session 1 (`s1`..`s3`; `$LEVEL` becomes
//!   the isolation level of the run).
//! - `dump`: every row of `kv`, read by a separate autocommit session.
//! - `> text`: an outcome the step produced at every level; `> [level]
//!   text` one it produced at that level only. Outcomes are `ok`, the rows
//!   of a query (`k=v` pairs, or bare values), `error <SQLSTATE>: <message>`,
//!   `blocked` (the statement is still running: it waits for a lock), and
//!   `s2: <SQL> -> <outcome>` when a blocked statement finished after this
//!   step.
//!
//! Each script runs once per level; the outcomes are merged back into the
//! file and the file must come out unchanged. `UPDATE_GOLDEN=1` rewrites
//! the files instead.
//!
//! # Blocking, without flakes
//!
//! A step runs as a spawned future. When the golden says it blocks, the
//! runner checks that it is still pending after [`BLOCK_CONFIRM`] and goes
//! on with the other sessions; when the golden says it (or a blocked
//! statement) completes, the runner waits up to [`COMPLETE_MAX`], so a slow
//! machine never turns a completion into a false "blocked". Without a
//! golden (a new step, or `UPDATE_GOLDEN=1`) it waits [`RECORD_WAIT`].
//! Steps are [`PACE`]d apart in time, beyond the clock uncertainty.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};

/// How long a step the golden says blocks must stay pending.
const BLOCK_CONFIRM: Duration = Duration::from_millis(500);
/// How long a step the golden says completes may take.
const COMPLETE_MAX: Duration = Duration::from_secs(30);
/// How long a step without a golden outcome may take before it is
/// reported blocked.
const RECORD_WAIT: Duration = Duration::from_secs(2);
/// Time between two steps, as if typed (the KV goldens' pace): well beyond
/// the node's clock uncertainty (`max_offset`, 1 ms), so that a
/// transaction begun in a later step never has a timestamp inside the
/// uncertainty window of one begun earlier. Without it, a read may meet a
/// value committed "at the same time" and restart (`40001 ... read within
/// uncertainty interval`): correct, but a matter of timing, not isolation.
const PACE: Duration = Duration::from_millis(10);
/// Sessions a script may use (`s1`..`s3`).
const SESSIONS_MAX: usize = 3;
/// Anomaly scripts expected in `tests/anomalies/`.
const SCRIPTS_MIN: usize = 10;

/// The levels every script runs at: (golden tag, SQL spelling).
const LEVELS: [(&str, &str); 3] = [
    ("serializable", "SERIALIZABLE"),
    ("repeatable read", "REPEATABLE READ"),
    ("read committed", "READ COMMITTED"),
];

// ----- scripts ---------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Action {
    Setup(Vec<(String, i64)>),
    Dump,
    Sql { session: usize, sql: String },
}

#[derive(Debug)]
struct Step {
    /// The step as written.
    text: String,
    action: Action,
    /// Comment and blank lines written before the step.
    preamble: Vec<String>,
    /// Golden outcome lines: `(level tag or None for all, text)`.
    golden: Vec<(Option<String>, String)>,
}

impl Step {
    /// The golden outcome lines of this step at `level`, if it has any.
    fn expected(&self, level: &str) -> Option<Vec<&str>> {
        if self.golden.is_empty() {
            return None;
        }
        Some(
            self.golden
                .iter()
                .filter(|(tag, _)| tag.as_deref().is_none_or(|t| t == level))
                .map(|(_, text)| text.as_str())
                .collect(),
        )
    }
}

#[derive(Debug)]
struct Script {
    steps: Vec<Step>,
    /// Comment and blank lines after the last step.
    trailer: Vec<String>,
}

fn parse_action(line: &str) -> Result<Action, String> {
    if line == "dump" {
        return Ok(Action::Dump);
    }
    if let Some(rows) = line.strip_prefix("setup") {
        let mut out = Vec::new();
        for pair in rows.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("setup row {pair:?} is not k=v"))?;
            let v = v
                .parse()
                .map_err(|_| format!("setup value {v:?} is not an integer"))?;
            out.push((k.to_string(), v));
        }
        return Ok(Action::Setup(out));
    }
    let (session, sql) = line
        .split_once(": ")
        .ok_or_else(|| format!("step {line:?} is neither setup, dump nor `sN: SQL`"))?;
    let session = session
        .strip_prefix('s')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=SESSIONS_MAX).contains(n))
        .ok_or_else(|| format!("unknown session {session:?} (s1..s{SESSIONS_MAX})"))?;
    Ok(Action::Sql {
        session: session - 1,
        sql: sql.to_string(),
    })
}

fn parse_script(text: &str) -> Result<Script, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut pending_comments = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            pending_comments.push(line.to_string());
        } else if let Some(outcome) = line.strip_prefix("> ") {
            let step = steps
                .last_mut()
                .filter(|_| pending_comments.is_empty())
                .ok_or_else(|| format!("line {n}: an outcome without a step"))?;
            let tagged = outcome
                .strip_prefix('[')
                .and_then(|rest| rest.split_once("] "));
            step.golden.push(match tagged {
                Some((tag, text)) => {
                    if !LEVELS.iter().any(|(t, _)| *t == tag) {
                        return Err(format!("line {n}: unknown level [{tag}]"));
                    }
                    (Some(tag.to_string()), text.to_string())
                }
                None => (None, outcome.to_string()),
            });
        } else {
            let action = parse_action(line).map_err(|e| format!("line {n}: {e}"))?;
            steps.push(Step {
                text: line.to_string(),
                action,
                preamble: std::mem::take(&mut pending_comments),
                golden: Vec::new(),
            });
        }
    }
    Ok(Script {
        steps,
        trailer: pending_comments,
    })
}

/// The script with `outcomes[level][step]` merged in: lines every level
/// shares are written once, the others tagged with their level.
fn render(script: &Script, outcomes: &[Vec<Vec<String>>]) -> String {
    let mut out = String::new();
    for (i, step) in script.steps.iter().enumerate() {
        for line in &step.preamble {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&step.text);
        out.push('\n');
        let first = &outcomes[0][i];
        if outcomes.iter().all(|level| level[i] == *first) {
            for line in first {
                out.push_str(&format!("> {line}\n"));
            }
        } else {
            for (level, (tag, _)) in outcomes.iter().zip(LEVELS) {
                for line in &level[i] {
                    out.push_str(&format!("> [{tag}] {line}\n"));
                }
            }
        }
    }
    for line in &script.trailer {
        out.push_str(line);
        out.push('\n');
    }
    out
}

// ----- running ---------------------------------------------------------------

/// A statement still running on a session.
struct Pending {
    sql: String,
    task: JoinHandle<String>,
}

/// One run of a script at one level.
struct Run<'a> {
    server: &'a TestServer,
    level_sql: &'static str,
    admin: Client,
    sessions: Vec<Option<Arc<Client>>>,
    pending: Vec<Option<Pending>>,
}

/// A query's result as one line: rows separated by spaces, the columns of
/// a row joined by `=`.
fn format_messages(messages: &[SimpleQueryMessage]) -> String {
    let mut rows = Vec::new();
    let mut has_rows = false;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(_) => has_rows = true,
            SimpleQueryMessage::Row(row) => {
                has_rows = true;
                let cols: Vec<&str> = (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL"))
                    .collect();
                rows.push(cols.join("="));
            }
            _ => {}
        }
    }
    match (has_rows, rows.is_empty()) {
        (false, _) => "ok".to_string(),
        (true, true) => "(no rows)".to_string(),
        (true, false) => rows.join(" "),
    }
}

fn format_result(result: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>) -> String {
    match result {
        Ok(messages) => format_messages(&messages),
        Err(e) => match e.as_db_error() {
            Some(db) => format!("error {}: {}", db.code().code(), db.message()),
            None => format!("error: {e}"),
        },
    }
}

/// Waits up to `limit` for `task`; `None` if it is still running.
async fn wait_for(task: &mut JoinHandle<String>, limit: Duration) -> Option<String> {
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(outcome)) => Some(outcome),
        Ok(Err(join)) => Some(format!("error: the statement's task failed: {join}")),
        Err(_) => None,
    }
}

impl<'a> Run<'a> {
    async fn new(server: &'a TestServer, level_sql: &'static str) -> Run<'a> {
        Run {
            server,
            level_sql,
            admin: server.connect().await,
            sessions: (0..SESSIONS_MAX).map(|_| None).collect(),
            pending: (0..SESSIONS_MAX).map(|_| None).collect(),
        }
    }

    async fn session(&mut self, n: usize) -> Arc<Client> {
        if self.sessions[n].is_none() {
            self.sessions[n] = Some(Arc::new(self.server.connect().await));
        }
        self.sessions[n].clone().expect("connected above")
    }

    async fn admin(&self, sql: &str) -> Result<String, String> {
        match self.admin.simple_query(sql).await {
            Ok(messages) => Ok(format_messages(&messages)),
            Err(e) => Err(format_result(Err(e))),
        }
    }

    /// Runs one step; returns its outcome lines.
    async fn step(&mut self, step: &Step, level: &str) -> Result<Vec<String>, String> {
        let expected = step.expected(level);
        let mut lines = Vec::new();
        match &step.action {
            Action::Setup(rows) => {
                self.admin("DROP TABLE IF EXISTS kv").await?;
                self.admin("CREATE TABLE kv (k text PRIMARY KEY, v int8)")
                    .await?;
                let values: Vec<String> =
                    rows.iter().map(|(k, v)| format!("('{k}', {v})")).collect();
                if !values.is_empty() {
                    self.admin(&format!("INSERT INTO kv VALUES {}", values.join(", ")))
                        .await?;
                }
                lines.push("ok".to_string());
            }
            Action::Dump => {
                lines.push(
                    self.admin("SELECT k, v FROM kv ORDER BY k")
                        .await
                        .unwrap_or_else(|e| e),
                );
            }
            Action::Sql { session, sql } => {
                if let Some(p) = &self.pending[*session] {
                    return Err(format!(
                        "{}: s{} is still running {:?}",
                        step.text,
                        session + 1,
                        p.sql
                    ));
                }
                let client = self.session(*session).await;
                let text = sql.replace("$LEVEL", self.level_sql);
                let mut task =
                    tokio::spawn(async move { format_result(client.simple_query(&text).await) });
                let limit = match expected.as_ref().and_then(|e| e.first()) {
                    Some(&"blocked") => BLOCK_CONFIRM,
                    Some(_) => COMPLETE_MAX,
                    None => RECORD_WAIT,
                };
                match wait_for(&mut task, limit).await {
                    Some(outcome) => lines.push(outcome),
                    None => {
                        lines.push("blocked".to_string());
                        self.pending[*session] = Some(Pending {
                            sql: sql.clone(),
                            task,
                        });
                    }
                }
            }
        }
        self.finish_pending(step, expected.as_deref(), &mut lines)
            .await;
        Ok(lines)
    }

    /// Reports the blocked statements that finished after this step (in
    /// session order), waiting for those the golden says finish here.
    async fn finish_pending(
        &mut self,
        step: &Step,
        expected: Option<&[&str]>,
        lines: &mut Vec<String>,
    ) {
        let own = match &step.action {
            Action::Sql { session, .. } => Some(*session),
            _ => None,
        };
        for n in 0..SESSIONS_MAX {
            let Some(p) = self.pending[n].as_mut() else {
                continue;
            };
            let prefix = format!("s{}: {} -> ", n + 1, p.sql);
            let limit = match expected {
                None => RECORD_WAIT,
                Some(e) if e.iter().any(|l| l.starts_with(&prefix)) => COMPLETE_MAX,
                // The golden says it is still blocked: just look.
                Some(_) => Duration::ZERO,
            };
            // A statement that blocked in this very step was just given
            // its time.
            let limit = if own == Some(n) && lines.last().map(String::as_str) == Some("blocked") {
                Duration::ZERO
            } else {
                limit
            };
            if let Some(outcome) = wait_for(&mut p.task, limit).await {
                lines.push(format!("{prefix}{outcome}"));
                self.pending[n] = None;
            }
        }
    }

    /// Ends the run: every statement must have finished.
    async fn close(mut self) -> Result<(), String> {
        let mut stuck = Vec::new();
        for (n, p) in self.pending.iter_mut().enumerate() {
            if let Some(p) = p.take() {
                p.task.abort();
                stuck.push(format!("s{}: {}", n + 1, p.sql));
            }
        }
        self.sessions.clear();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!("still blocked at the end of the script: {stuck:?}"))
        }
    }
}

/// Runs `script` at every level; the outcome lines per level and step.
async fn run_script(server: &TestServer, script: &Script) -> Result<Vec<Vec<Vec<String>>>, String> {
    let mut all = Vec::new();
    for (tag, level_sql) in LEVELS {
        let mut run = Run::new(server, level_sql).await;
        let mut outcomes = Vec::new();
        for step in &script.steps {
            tokio::time::sleep(PACE).await;
            let lines = run
                .step(step, tag)
                .await
                .map_err(|e| format!("[{tag}] {e}"))?;
            outcomes.push(lines);
        }
        run.close().await.map_err(|e| format!("[{tag}] {e}"))?;
        all.push(outcomes);
    }
    Ok(all)
}

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/anomalies")
}

fn script_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The first line where `want` and `got` differ, for the failure message.
fn first_difference(want: &str, got: &str) -> String {
    let mut w = want.lines();
    let mut g = got.lines();
    for n in 1.. {
        match (w.next(), g.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => return format!("line {n}: golden {a:?}, got {b:?}"),
        }
    }
    "no difference".to_string()
}

#[test]
fn anomalies_through_sql_at_every_level() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = script_files(&scripts_dir());
    assert!(
        files.len() >= SCRIPTS_MIN,
        "expected the {SCRIPTS_MIN} anomaly scripts in {}",
        scripts_dir().display()
    );
    let server = TestServer::start(2);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut failures = BTreeMap::new();
    for file in &files {
        let name = file.file_name().expect("file name").to_string_lossy();
        let text = std::fs::read_to_string(file).expect("reading the script");
        let script = parse_script(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let outcomes = match runtime.block_on(run_script(&server, &script)) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                failures.insert(name.to_string(), e);
                continue;
            }
        };
        let got = render(&script, &outcomes);
        if update {
            std::fs::write(file, &got).expect("rewriting the golden");
        } else if got != text {
            failures.insert(
                name.to_string(),
                format!("{}\n--- got ---\n{got}", first_difference(&text, &got)),
            );
        }
    }
    let report: Vec<String> = failures
        .iter()
        .map(|(name, why)| format!("=== {name}: {why}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scripts differ (UPDATE_GOLDEN=1 rewrites them):\n{}",
        failures.len(),
        files.len(),
        report.join("\n")
    );
}

#[test]
fn scripts_parse_and_render_back_unchanged() {
    for file in script_files(&scripts_dir()) {
        let text = std::fs::read_to_string(&file).expect("reading the script");
        let script = parse_script(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Rendering each level's golden lines gives the file back.
        let outcomes: Vec<Vec<Vec<String>>> = LEVELS
            .iter()
            .map(|(tag, _)| {
                script
                    .steps
                    .iter()
                    .map(|s| {
                        s.expected(tag)
                            .unwrap_or_default()
                            .into_iter()
                            .map(str::to_string)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(render(&script, &outcomes), text, "{}", file.display());
    }
    assert!(parse_script("s4: SELECT 1").is_err());
    assert!(parse_script("> ok").is_err());
    assert!(parse_script("dump\n> [snapshot] x").is_err());
    assert_eq!(
        parse_action("setup x=1 y=-2"),
        Ok(Action::Setup(vec![("x".into(), 1), ("y".into(), -2)]))
    );
}
