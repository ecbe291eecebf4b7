//! A golden-script interpreter for transaction scenarios.
//!
//! A script is a list of commands, one per line; the golden file holds the
//! script with each command's outcome on the lines after it, prefixed `> `.
//! The runner strips the `> ` lines, runs the commands and compares what it
//! would write with the file; `UPDATE_GOLDEN=1` rewrites the file instead.
//!
//! Commands (`tN:` names a session; each session is one concurrent client):
//! - `setup k=v ...` — commits the pairs before anything else.
//! - `tN: begin` — starts a transaction at the file's isolation level.
//! - `tN: get K [for update|for share] [nowait|skip locked]`
//! - `tN: scan START END [for update|for share] [nowait|skip locked]`
//! - `tN: put K V`, `tN: delete K`, `tN: cput K V EXPECTED|-`
//! - `tN: commit`, `tN: rollback`
//! - `dump` — the committed state, read by a fresh transaction.
//! - `wait D` — lets `D` (e.g. `6s`) of simulated time pass.
//! - `kill tN` — the session's gateway crashes (no cleanup at all).
//!
//! A command that has not finished when the simulation goes idle prints
//! `> blocked`; when it finishes later, its outcome is printed after the
//! command that unblocked it as `> tN: <command> -> <outcome>`.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use teller_kv::sim::{Backend, Sim, SimCluster};
use teller_kv::{
    BatchOptions, Isolation, KvClient, KvConfig, KvError, Request, Response, ScanRequest, Span,
    Strength, Txn, TxnOptions, WaitPolicy,
};

/// How long the runner lets the simulation run after each command before it
/// declares the command blocked.
const SETTLE: Duration = Duration::from_millis(50);
/// Time between two commands, as if typed: well beyond the clock
/// uncertainty, so scripts show isolation, not uncertainty restarts (those
/// have their own tests).
const PACE: Duration = Duration::from_millis(10);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[derive(Default)]
struct Session {
    queue: VecDeque<(usize, String)>,
    signal: teller_kv::sync::Signal,
}

type Log = Rc<RefCell<Vec<(usize, String)>>>;

/// Runs the script at `path` with `isolation` on every storage backend;
/// compares each run with (or rewrites, from the memory backend) the file.
/// Panics with a diff on mismatch.
pub fn run_golden(path: &Path, isolation: Isolation) {
    for backend in Backend::ALL {
        run_golden_on(path, isolation, backend);
    }
}

/// Runs the script at `path` with `isolation` on `backend`.
pub fn run_golden_on(path: &Path, isolation: Isolation, backend: Backend) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let commands: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("> "))
        .map(str::to_owned)
        .collect();
    let output = run_script(&commands, isolation, backend);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if backend != Backend::Memory {
            return;
        }
        std::fs::write(path, &output).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    if output != text {
        panic!(
            "golden mismatch for {} on {backend:?} (rerun with UPDATE_GOLDEN=1 to accept)\n--- expected\n{text}\n--- got\n{output}",
            path.display()
        );
    }
}

fn cluster(backend: Backend) -> SimCluster {
    let cfg = KvConfig {
        max_offset: Duration::from_millis(1),
        ..KvConfig::default()
    };
    let sim = Sim::new(7, Duration::from_micros(2));
    SimCluster::with_backend(backend, sim, cfg, 2, &[b"m"], &[])
}

/// Runs the commands; returns the golden text.
pub fn run_script(commands: &[String], isolation: Isolation, backend: Backend) -> String {
    let c = cluster(backend);
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sessions: BTreeMap<String, (Rc<RefCell<Session>>, u32)> = BTreeMap::new();
    let mut out = String::new();
    let (admin, admin_group) = c.client(0);
    for (line_no, line) in commands.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        c.sim.advance(PACE);
        let before = log.borrow().len();
        let finished_here = if let Some((name, cmd)) = trimmed.split_once(": ") {
            let session = sessions.entry(name.to_owned()).or_insert_with(|| {
                let (client, group) = c.client(0);
                let s = Rc::new(RefCell::new(Session::default()));
                c.sim.spawn(
                    group,
                    Box::pin(session_loop(client, s.clone(), log.clone(), isolation)),
                );
                (s, group)
            });
            session
                .0
                .borrow_mut()
                .queue
                .push_back((line_no, cmd.to_owned()));
            session.0.borrow().signal.fire();
            c.sim.run_for(SETTLE);
            None
        } else {
            Some(top_level(&c, &admin, admin_group, trimmed, &sessions))
        };
        if let Some(result) = &finished_here {
            out.push_str(&format!("> {result}\n"));
        }
        let entries: Vec<(usize, String)> = log.borrow()[before..].to_vec();
        let mut mine = false;
        for (n, result) in &entries {
            if *n == line_no {
                out.push_str(&format!("> {result}\n"));
                mine = true;
            }
        }
        for (n, result) in &entries {
            if *n != line_no {
                out.push_str(&format!(
                    "> {}: {} -> {result}\n",
                    name_of(&commands[*n]),
                    cmd_of(&commands[*n])
                ));
            }
        }
        if !mine && finished_here.is_none() && trimmed.contains(": ") {
            out.push_str("> blocked\n");
        }
    }
    out
}

fn name_of(line: &str) -> &str {
    line.trim().split_once(": ").map_or("", |(n, _)| n)
}

fn cmd_of(line: &str) -> &str {
    line.trim().split_once(": ").map_or("", |(_, c)| c)
}

fn top_level(
    c: &SimCluster,
    admin: &KvClient,
    group: u32,
    cmd: &str,
    sessions: &BTreeMap<String, (Rc<RefCell<Session>>, u32)>,
) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words[0] {
        "setup" => {
            let pairs: Vec<(Bytes, Bytes)> = words[1..]
                .iter()
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("setup takes k=v pairs");
                    (b(k), b(v))
                })
                .collect();
            let client = admin.clone();
            c.sim.block_on(group, Duration::from_secs(5), async move {
                let mut txn = client.begin(TxnOptions::default());
                let reqs = pairs
                    .into_iter()
                    .map(|(key, value)| Request::Put { key, value })
                    .collect();
                txn.batch(reqs).await.expect("setup batch");
                txn.commit().await.expect("setup commit");
            });
            "ok".into()
        }
        "dump" => {
            let client = admin.clone();
            c.sim.block_on(group, Duration::from_secs(60), async move {
                let mut txn = client.begin(TxnOptions::default());
                let r = txn
                    .batch(vec![Request::Scan(ScanRequest::new(Span::all()))])
                    .await;
                let _ = txn.commit().await;
                match r {
                    Ok(r) => show(&r[0]),
                    Err(e) => show_err(&e),
                }
            })
        }
        "wait" => {
            let secs: u64 = words[1].trim_end_matches('s').parse().expect("wait Ns");
            c.sim.run_for(Duration::from_secs(secs));
            "ok".into()
        }
        "kill" => {
            let (_, g) = sessions.get(words[1]).expect("kill of a known session");
            c.sim.kill(*g);
            "ok".into()
        }
        other => panic!("unknown command {other}"),
    }
}

async fn session_loop(
    client: KvClient,
    session: Rc<RefCell<Session>>,
    log: Log,
    isolation: Isolation,
) {
    let mut txn: Option<Txn> = None;
    loop {
        let next = session.borrow_mut().queue.pop_front();
        let Some((line, cmd)) = next else {
            let signal = session.borrow().signal.clone();
            signal.wait().await;
            continue;
        };
        let result = run_command(&client, &mut txn, &cmd, isolation).await;
        log.borrow_mut().push((line, result));
    }
}

fn lock_options(words: &[&str]) -> (Option<Strength>, BatchOptions) {
    let text = words.join(" ");
    let lock = if text.contains("for update") {
        Some(Strength::Exclusive)
    } else if text.contains("for share") {
        Some(Strength::Shared)
    } else {
        None
    };
    let wait = if text.contains("nowait") {
        WaitPolicy::NoWait
    } else if text.contains("skip locked") {
        WaitPolicy::SkipLocked
    } else {
        WaitPolicy::Block
    };
    (
        lock,
        BatchOptions {
            wait,
            lock_timeout: None,
        },
    )
}

async fn run_command(
    client: &KvClient,
    txn: &mut Option<Txn>,
    cmd: &str,
    isolation: Isolation,
) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words[0] {
        "begin" => {
            *txn = Some(client.begin(TxnOptions {
                isolation,
                ..TxnOptions::default()
            }));
            return "ok".into();
        }
        "commit" => {
            return match txn.take() {
                Some(t) => match t.commit().await {
                    Ok(_) => "ok".into(),
                    Err(e) => show_err(&e),
                },
                None => "error: no transaction".into(),
            };
        }
        "rollback" => {
            if let Some(t) = txn.take() {
                let _ = t.rollback().await;
            }
            return "ok".into();
        }
        _ => {}
    }
    let Some(t) = txn.as_mut() else {
        return "error: no transaction".into();
    };
    let (request, options) = match words[0] {
        "get" => {
            let (lock, options) = lock_options(&words[2..]);
            (
                Request::Get {
                    key: b(words[1]),
                    lock,
                },
                options,
            )
        }
        "scan" => {
            let (lock, options) = lock_options(&words[3..]);
            let mut scan = ScanRequest::new(Span::new(b(words[1]), b(words[2])));
            scan.lock = lock;
            (Request::Scan(scan), options)
        }
        "put" => (
            Request::Put {
                key: b(words[1]),
                value: b(words[2]),
            },
            BatchOptions::default(),
        ),
        "delete" => (
            Request::Delete { key: b(words[1]) },
            BatchOptions::default(),
        ),
        "cput" => {
            let expected = (words[3] != "-").then(|| b(words[3]));
            (
                Request::ConditionalPut {
                    key: b(words[1]),
                    value: b(words[2]),
                    expected,
                },
                BatchOptions::default(),
            )
        }
        other => panic!("unknown session command {other}"),
    };
    match t.batch_with(vec![request], options).await {
        Ok(r) => show(&r[0]),
        Err(e) => {
            if e.ends_transaction() {
                *txn = None;
            }
            show_err(&e)
        }
    }
}

fn show(r: &Response) -> String {
    match r {
        Response::Get(None) => "(none)".into(),
        Response::Get(Some(v)) => String::from_utf8_lossy(v).into_owned(),
        Response::Scan(s) => {
            let rows: Vec<String> = s
                .rows
                .iter()
                .map(|kv| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(&kv.key),
                        String::from_utf8_lossy(&kv.value)
                    )
                })
                .collect();
            if rows.is_empty() {
                "(empty)".into()
            } else {
                rows.join(" ")
            }
        }
        Response::Written => "ok".into(),
    }
}

fn show_err(e: &KvError) -> String {
    format!("error {}: {e}", e.sqlstate())
}
