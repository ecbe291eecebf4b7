//! COPY FROM STDIN and COPY TO STDOUT through the connection driver, over an
//! in-memory stream, with a toy session holding one two-column table
//! `t (id int4, name text)`.
//!
//! The toy recognises `copy t from stdin [csv [header]]` and
//! `copy t to stdout [csv [header]]`; `copy nope ...` is a COPY the session
//! claims but does not implement (the trait's defaults answer 0A000).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::future::block_on;
use futures_lite::{AsyncRead, AsyncWrite};
use teller_net::conn::{serve, AuthMethod, ConnEnd, ConnHost, Limits, COPY_BATCH_ROWS};
use teller_net::scram::ScramVerifier;
use teller_net::session::{
    Column, Completion, CopyDirection, CopyFormat, CopySpec, Session, SessionEvent, StartupInfo,
    TxStatus,
};
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult};

struct Pipe {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
    output: Vec<u8>,
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = (self.input.len() - self.at).min(buf.len()).min(self.chunk);
        let at = self.at;
        buf[..n].copy_from_slice(&self.input[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The table, the rows of a COPY in progress, and the batch sizes seen.
#[derive(Default)]
struct Table {
    rows: Vec<Vec<Value>>,
    batches: Vec<usize>,
}

struct CopySession {
    table: std::rc::Rc<std::cell::RefCell<Table>>,
}

#[derive(Clone)]
struct Statement(String);

struct Portal {
    sql: String,
    staged: Vec<Vec<Value>>,
    out: Option<std::vec::IntoIter<Vec<Value>>>,
}

fn table_columns() -> Vec<Column> {
    vec![
        Column::new("id", Type::Int4),
        Column::new("name", Type::Text),
    ]
}

impl Session for CopySession {
    type Statement = Statement;
    type Portal = Portal;

    fn startup_parameters(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn parse(&mut self, sql: &str, _: &[u32]) -> PgResult<Vec<Statement>> {
        Ok(sql
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Statement(s.to_lowercase()))
            .collect())
    }
    fn parameter_types(&self, _: &Statement) -> Vec<Type> {
        Vec::new()
    }
    fn result_columns(&self, _: &Statement) -> Option<Vec<Column>> {
        None
    }
    fn bind(&mut self, statement: &Statement, _: Vec<Value>) -> PgResult<Portal> {
        Ok(Portal {
            sql: statement.0.clone(),
            staged: Vec::new(),
            out: None,
        })
    }
    async fn execute(
        &mut self,
        portal: &mut Portal,
        max_rows: usize,
        rows: &mut Vec<Vec<Value>>,
    ) -> PgResult<Completion> {
        if !portal.sql.contains("to stdout") {
            return Ok(Completion::Done("OK".into()));
        }
        let table = self.table.clone();
        let out = portal
            .out
            .get_or_insert_with(|| table.borrow().rows.clone().into_iter());
        rows.extend(out.by_ref().take(max_rows));
        Ok(if out.len() > 0 {
            Completion::Suspended
        } else {
            Completion::Done("COPY".into())
        })
    }
    fn statement_failed(&mut self) {}
    fn transaction_status(&self) -> TxStatus {
        TxStatus::Idle
    }
    fn take_events(&mut self) -> Vec<SessionEvent> {
        Vec::new()
    }

    fn copy_spec(&self, statement: &Statement) -> Option<CopySpec> {
        let sql = &statement.0;
        if !sql.starts_with("copy ") {
            return None;
        }
        let direction = if sql.contains("from stdin") {
            CopyDirection::FromStdin
        } else {
            CopyDirection::ToStdout
        };
        let format = if sql.contains("csv") {
            CopyFormat::csv(sql.contains("header"))
        } else if sql.contains("delimiter '\\'") {
            CopyFormat::Text {
                delimiter: b'\\',
                null: "\\N".into(),
            }
        } else {
            CopyFormat::text()
        };
        Some(CopySpec {
            direction,
            format,
            columns: table_columns(),
        })
    }

    async fn copy_in(&mut self, portal: &mut Portal, rows: Vec<Vec<Value>>) -> PgResult<()> {
        if portal.sql.starts_with("copy nope") {
            return Err(PgError::unsupported("no COPY for nope"));
        }
        self.table.borrow_mut().batches.push(rows.len());
        portal.staged.extend(rows);
        Ok(())
    }

    async fn copy_in_done(&mut self, portal: &mut Portal) -> PgResult<String> {
        if portal.sql.starts_with("copy nope") {
            return Err(PgError::unsupported("no COPY for nope"));
        }
        let n = portal.staged.len();
        self.table.borrow_mut().rows.append(&mut portal.staged);
        Ok(format!("COPY {n}"))
    }

    fn copy_in_failed(&mut self, portal: &mut Portal) {
        portal.staged.clear();
    }
}

/// A session that claims COPY statements but implements none of the COPY
/// methods: the trait's defaults answer.
struct DefaultsSession;

impl Session for DefaultsSession {
    type Statement = ();
    type Portal = ();
    fn startup_parameters(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn parse(&mut self, _: &str, _: &[u32]) -> PgResult<Vec<()>> {
        Ok(vec![()])
    }
    fn parameter_types(&self, _: &()) -> Vec<Type> {
        Vec::new()
    }
    fn result_columns(&self, _: &()) -> Option<Vec<Column>> {
        None
    }
    fn bind(&mut self, _: &(), _: Vec<Value>) -> PgResult<()> {
        Ok(())
    }
    async fn execute(
        &mut self,
        _: &mut (),
        _: usize,
        _: &mut Vec<Vec<Value>>,
    ) -> PgResult<Completion> {
        Ok(Completion::Done("OK".into()))
    }
    fn statement_failed(&mut self) {}
    fn transaction_status(&self) -> TxStatus {
        TxStatus::Idle
    }
    fn take_events(&mut self) -> Vec<SessionEvent> {
        Vec::new()
    }
    fn copy_spec(&self, _: &()) -> Option<CopySpec> {
        Some(CopySpec {
            direction: CopyDirection::FromStdin,
            format: CopyFormat::text(),
            columns: table_columns(),
        })
    }
}

struct Host<S> {
    limits: Limits,
    session: Option<S>,
}

impl<S: Session> ConnHost for Host<S> {
    type Session = S;
    fn limits(&self) -> &Limits {
        &self.limits
    }
    fn auth_method(&self) -> AuthMethod {
        AuthMethod::Trust
    }
    fn scram_verifier(&self, _: &str) -> Option<ScramVerifier> {
        None
    }
    fn mock_secret(&self) -> &[u8] {
        b"secret"
    }
    fn random_bytes(&mut self, out: &mut [u8]) {
        out.fill(7);
    }
    fn admit(&mut self) -> PgResult<(i32, i32)> {
        Ok((42, 4242))
    }
    fn open_session(&mut self, _: &StartupInfo) -> PgResult<S> {
        self.session
            .take()
            .ok_or_else(|| PgError::internal("one session per test"))
    }
    fn cancel_request(&mut self, _: i32, _: i32) {}
    fn ready_for_queries(&mut self) {}
    fn input_timeout(&self) -> impl Future<Output = PgError> {
        futures_lite::future::pending()
    }
    fn cancelled(&self) -> impl Future<Output = ()> {
        futures_lite::future::pending()
    }
    fn clear_cancel(&self) {}
    fn sleep(&self, _after: std::time::Duration) -> impl Future<Output = ()> + use<S> {
        futures_lite::future::pending()
    }
}

fn startup() -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0u\0\0");
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn query(sql: &str) -> Vec<u8> {
    typed(b'Q', format!("{sql}\0").as_bytes())
}

fn copy_data(data: &[u8]) -> Vec<u8> {
    typed(b'd', data)
}

fn copy_done() -> Vec<u8> {
    typed(b'c', b"")
}

fn copy_fail(why: &str) -> Vec<u8> {
    typed(b'f', format!("{why}\0").as_bytes())
}

/// One server message: its tag and body.
struct Message {
    tag: u8,
    body: Vec<u8>,
}

impl Message {
    /// The SQLSTATE of an ErrorResponse.
    fn code(&self) -> String {
        let mut fields = self.body.split(|&b| b == 0);
        fields
            .find(|f| f.first() == Some(&b'C'))
            .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
            .unwrap_or_default()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Run {
    messages: Vec<Message>,
    end: ConnEnd,
}

impl Run {
    /// The tags after startup (R S K Z are dropped).
    fn tags(&self) -> String {
        self.messages
            .iter()
            .skip(3)
            .map(|m| m.tag as char)
            .collect()
    }

    fn with_tag(&self, tag: u8) -> Vec<&Message> {
        self.messages.iter().filter(|m| m.tag == tag).collect()
    }

    /// Concatenated CopyData payloads sent by the server.
    fn copy_out(&self) -> String {
        self.with_tag(b'd').iter().map(|m| m.text()).collect()
    }
}

fn run_with<S: Session>(session: S, input: Vec<u8>, chunk: usize) -> Run {
    let mut pipe = Pipe {
        input,
        at: 0,
        chunk,
        output: Vec::new(),
    };
    let host = Host {
        limits: Limits::default(),
        session: Some(session),
    };
    let end = block_on(serve(&mut pipe, host));
    let bytes = pipe.output;
    let mut messages = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = i32::from_be_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]])
            as usize;
        messages.push(Message {
            tag: bytes[at],
            body: bytes[at + 5..at + 1 + len].to_vec(),
        });
        at += 1 + len;
    }
    Run { messages, end }
}

fn run(table: &std::rc::Rc<std::cell::RefCell<Table>>, input: Vec<u8>, chunk: usize) -> Run {
    run_with(
        CopySession {
            table: table.clone(),
        },
        input,
        chunk,
    )
}

fn new_table() -> std::rc::Rc<std::cell::RefCell<Table>> {
    Default::default()
}

#[test]
fn text_copy_in_then_copy_out_round_trips() {
    let table = new_table();
    let mut input = startup();
    input.extend(query("copy t from stdin"));
    // Lines split across CopyData messages, escapes and NULLs.
    input.extend(copy_data(b"1\talpha\n2\t"));
    input.extend(copy_data(b"be\\tta\n3\t\\N\n"));
    input.extend(copy_done());
    input.extend(query("copy t to stdout"));
    input.extend(typed(b'X', b""));
    for chunk in [1 << 20, 3] {
        table.borrow_mut().rows.clear();
        let run = run(&table, input.clone(), chunk);
        assert!(matches!(run.end, ConnEnd::Closed));
        // G C Z | H d d d c C Z
        assert_eq!(run.tags(), "GCZHdddcCZ", "chunk {chunk}");
        let completes = run.with_tag(b'C');
        assert_eq!(completes[0].text(), "COPY 3\0");
        assert_eq!(completes[1].text(), "COPY 3\0");
        assert_eq!(run.copy_out(), "1\talpha\n2\tbe\\tta\n3\t\\N\n");
        // CopyInResponse: text format, two text-format columns.
        let g = run.with_tag(b'G')[0];
        assert_eq!(g.body, vec![0, 0, 2, 0, 0, 0, 0]);
    }
    assert_eq!(
        table.borrow().rows[1],
        vec![Value::Int4(2), Value::Text("be\tta".into())]
    );
}

#[test]
fn csv_with_header_both_ways() {
    let table = new_table();
    let mut input = startup();
    input.extend(query("copy t from stdin csv header"));
    input.extend(copy_data(
        b"id,name\n1,\"a,b\"\n2,\n3,\"\"\n4,\"multi\nline\"\n",
    ));
    input.extend(copy_done());
    input.extend(query("copy t to stdout csv header"));
    let run = run(&table, input, 1 << 20);
    assert_eq!(run.tags(), "GCZHdddddcCZ");
    assert_eq!(run.with_tag(b'C')[0].text(), "COPY 4\0");
    assert_eq!(
        run.copy_out(),
        "id,name\n1,\"a,b\"\n2,\n3,\"\"\n4,\"multi\nline\"\n"
    );
    assert_eq!(table.borrow().rows[1][1], Value::Null);
    assert_eq!(table.borrow().rows[2][1], Value::Text(String::new()));
}

#[test]
fn malformed_data_fails_the_copy_with_22p04_or_22p02_and_keeps_nothing() {
    let cases: [(&[u8], &str); 3] = [
        (b"1\ta\textra\n", "22P04"),
        (b"1\n", "22P04"),
        (b"one\ta\n", "22P02"),
    ];
    for (data, code) in cases {
        let table = new_table();
        let mut input = startup();
        input.extend(query("copy t from stdin"));
        input.extend(copy_data(b"7\tfine\n"));
        input.extend(copy_data(data));
        // The client keeps sending until it reads the error: dropped.
        input.extend(copy_data(b"8\tlate\n"));
        input.extend(copy_done());
        input.extend(query("copy t to stdout"));
        let run = run(&table, input, 1 << 20);
        assert_eq!(run.tags(), "GEZHcCZ", "{data:?}");
        assert_eq!(run.with_tag(b'E')[0].code(), code, "{data:?}");
        assert!(
            table.borrow().rows.is_empty(),
            "rows of a failed COPY stay out"
        );
    }
}

#[test]
fn copy_fail_cancels_with_57014() {
    let table = new_table();
    let mut input = startup();
    input.extend(query("copy t from stdin"));
    input.extend(copy_data(b"1\ta\n"));
    input.extend(copy_fail("client gave up"));
    let run = run(&table, input, 1 << 20);
    assert_eq!(run.tags(), "GEZ");
    let error = run.with_tag(b'E')[0];
    assert_eq!(error.code(), "57014");
    assert!(error
        .text()
        .contains("COPY from stdin failed: client gave up"));
    assert!(table.borrow().rows.is_empty());
}

#[test]
fn extended_protocol_copy_in_and_out() {
    let table = new_table();
    let mut input = startup();
    input.extend(typed(b'P', b"\0copy t from stdin\0\0\0"));
    input.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
    input.extend(typed(b'E', &[0, 0, 0, 0, 0]));
    input.extend(typed(b'H', b""));
    input.extend(copy_data(b"1\tx\n"));
    input.extend(typed(b'S', b"")); // ignored during COPY FROM STDIN
    input.extend(copy_done());
    input.extend(typed(b'S', b""));
    input.extend(typed(b'P', b"\0copy t to stdout\0\0\0"));
    input.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
    input.extend(typed(b'E', &[0, 0, 0, 0, 0]));
    input.extend(typed(b'S', b""));
    let run = run(&table, input, 1 << 20);
    // 1 2 G C Z | 1 2 H d c C Z
    assert_eq!(run.tags(), "12GCZ12HdcCZ");
    assert_eq!(run.copy_out(), "1\tx\n");
}

#[test]
fn extended_protocol_error_skips_to_sync() {
    let table = new_table();
    let mut input = startup();
    input.extend(typed(b'P', b"\0copy t from stdin\0\0\0"));
    input.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
    input.extend(typed(b'E', &[0, 0, 0, 0, 0]));
    input.extend(copy_data(b"x\ty\n"));
    input.extend(copy_done());
    input.extend(typed(b'E', &[0, 0, 0, 0, 0])); // skipped until Sync
    input.extend(typed(b'S', b""));
    let run = run(&table, input, 1 << 20);
    assert_eq!(run.tags(), "12GEZ");
    assert_eq!(run.with_tag(b'E')[0].code(), "22P02");
}

#[test]
fn large_copies_reach_the_session_in_bounded_batches() {
    let table = new_table();
    let rows = 5 * COPY_BATCH_ROWS + 7;
    let mut data = String::new();
    for i in 0..rows {
        data.push_str(&format!("{i}\tname {i}\n"));
    }
    let mut input = startup();
    input.extend(query("copy t from stdin"));
    input.extend(copy_data(data.as_bytes()));
    input.extend(copy_done());
    let run = run(&table, input, 1 << 20);
    assert_eq!(run.tags(), "GCZ");
    assert_eq!(table.borrow().rows.len(), rows);
    let batches = &table.borrow().batches;
    assert!(batches.len() > 1, "{batches:?}");
    assert!(
        batches.iter().all(|&b| b <= 2 * COPY_BATCH_ROWS),
        "{batches:?}"
    );
}

#[test]
fn sessions_without_copy_support_answer_0a000() {
    let mut input = startup();
    input.extend(query("copy t from stdin"));
    input.extend(copy_data(b"1\ta\n"));
    input.extend(copy_done());
    let run = run_with(DefaultsSession, input, 1 << 20);
    assert_eq!(run.tags(), "GEZ");
    assert_eq!(run.with_tag(b'E')[0].code(), "0A000");
}

#[test]
fn bad_copy_options_are_refused_before_copy_mode() {
    let table = new_table();
    let mut input = startup();
    input.extend(query("copy t from stdin delimiter '\\'"));
    let run = run(&table, input, 1 << 20);
    assert_eq!(run.tags(), "EZ");
    assert_eq!(run.with_tag(b'E')[0].code(), "0A000");
}

#[test]
fn terminate_during_copy_closes_cleanly() {
    let table = new_table();
    let mut input = startup();
    input.extend(query("copy t from stdin"));
    input.extend(copy_data(b"1\ta\n"));
    input.extend(typed(b'X', b""));
    let run = run(&table, input, 1 << 20);
    assert!(matches!(run.end, ConnEnd::Closed));
    assert!(table.borrow().rows.is_empty());
}

#[test]
fn a_query_message_during_copy_in_is_a_protocol_error() {
    let table = new_table();
    let mut input = startup();
    input.extend(query("copy t from stdin"));
    input.extend(query("select 1"));
    let run = run(&table, input, 1 << 20);
    assert_eq!(run.tags(), "GEZ");
    assert_eq!(run.with_tag(b'E')[0].code(), "08P01");
}
