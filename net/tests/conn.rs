//! The connection driver over an in-memory stream with a toy session: no
//! runtime, no sockets. Checks message sequences byte by byte and that a
//! pipelined batch is answered with a single write.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::future::block_on;
use futures_lite::{AsyncRead, AsyncWrite};
use teller_net::conn::{serve, AuthMethod, ConnEnd, ConnHost, Limits};
use teller_net::scram::ScramVerifier;
use teller_net::session::{Column, Completion, Session, SessionEvent, StartupInfo, TxStatus};
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

/// Client bytes handed out in fixed chunks; server output collected per write.
struct Pipe {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
    writes: Vec<Vec<u8>>,
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
        self.writes.push(buf.to_vec());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `select N` returns N rows of int4; `fail` fails; anything else completes.
struct ToySession {
    in_block: bool,
}

struct ToyStatement(String);

struct ToyPortal {
    remaining: i32,
    next: i32,
}

impl Session for ToySession {
    type Statement = ToyStatement;
    type Portal = ToyPortal;

    fn startup_parameters(&self) -> Vec<(String, String)> {
        vec![("server_version".into(), "15.0".into())]
    }
    fn parse(&mut self, sql: &str, _: &[u32]) -> PgResult<Vec<ToyStatement>> {
        Ok(sql
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| ToyStatement(s.into()))
            .collect())
    }
    fn parameter_types(&self, _: &ToyStatement) -> Vec<Type> {
        Vec::new()
    }
    fn result_columns(&self, statement: &ToyStatement) -> Option<Vec<Column>> {
        statement
            .0
            .starts_with("select")
            .then(|| vec![Column::new("n", Type::Int4)])
    }
    fn bind(&mut self, statement: &ToyStatement, _: Vec<Value>) -> PgResult<ToyPortal> {
        if statement.0 == "fail" {
            return Err(PgError::new(SqlState::DIVISION_BY_ZERO, "division by zero"));
        }
        if statement.0 == "begin" {
            self.in_block = true;
        }
        let rows = statement
            .0
            .strip_prefix("select ")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(ToyPortal {
            remaining: rows,
            next: 1,
        })
    }
    async fn execute(
        &mut self,
        portal: &mut ToyPortal,
        max_rows: usize,
        rows: &mut Vec<Vec<Value>>,
    ) -> PgResult<Completion> {
        while portal.remaining > 0 && rows.len() < max_rows {
            rows.push(vec![Value::Int4(portal.next)]);
            portal.next += 1;
            portal.remaining -= 1;
        }
        if portal.remaining > 0 {
            Ok(Completion::Suspended)
        } else {
            Ok(Completion::Done(format!("SELECT {}", portal.next - 1)))
        }
    }
    fn statement_failed(&mut self) {}
    fn transaction_status(&self) -> TxStatus {
        if self.in_block {
            TxStatus::InBlock
        } else {
            TxStatus::Idle
        }
    }
    fn take_events(&mut self) -> Vec<SessionEvent> {
        Vec::new()
    }
}

struct ToyHost {
    limits: Limits,
}

impl ConnHost for ToyHost {
    type Session = ToySession;
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
    fn open_session(&mut self, _: &StartupInfo) -> PgResult<ToySession> {
        Ok(ToySession { in_block: false })
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
    fn sleep(&self, _after: std::time::Duration) -> impl Future<Output = ()> + use<> {
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

/// Runs the driver over `input`; returns the message tags written and the writes.
fn run(input: Vec<u8>, chunk: usize) -> (Vec<u8>, Vec<Vec<u8>>, ConnEnd) {
    let mut pipe = Pipe {
        input,
        at: 0,
        chunk,
        writes: Vec::new(),
    };
    let host = ToyHost {
        limits: Limits::default(),
    };
    let end = block_on(serve(&mut pipe, host));
    let bytes: Vec<u8> = pipe.writes.concat();
    let mut tags = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        tags.push(bytes[at]);
        let len = i32::from_be_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]])
            as usize;
        at += 1 + len;
    }
    (tags, pipe.writes, end)
}

#[test]
fn startup_then_queries_produce_postgres_message_sequence() {
    let mut input = startup();
    input.extend(query("select 2"));
    input.extend(query(""));
    input.extend(query("begin"));
    input.extend(typed(b'X', b""));
    let (tags, _, end) = run(input, 1 << 20);
    assert!(matches!(end, ConnEnd::Closed));
    // R(ok) S K Z | T D D C Z | I Z | C Z
    assert_eq!(tags, b"RSKZTDDCZIZCZ".to_vec());
}

#[test]
fn pipelined_batch_is_answered_with_one_write() {
    let mut input = startup();
    for n in 1..=50 {
        input.extend(query(&format!("select {n}")));
    }
    let (tags, writes, _) = run(input, 1 << 20);
    assert_eq!(tags.iter().filter(|&&t| t == b'Z').count(), 51);
    assert_eq!(writes.len(), 1, "one write for the whole batch");
}

#[test]
fn byte_at_a_time_input_gives_the_same_answers() {
    let mut input = startup();
    input.extend(query("select 3; fail; select 1"));
    let (one_chunk, _, _) = run(input.clone(), 1 << 20);
    let (byte_by_byte, _, _) = run(input, 1);
    assert_eq!(one_chunk, byte_by_byte);
    // T D D D C then the error stops the rest of the query string.
    assert_eq!(one_chunk, b"RSKZTDDDCEZ".to_vec());
}

#[test]
fn long_results_are_streamed_in_several_writes() {
    let mut input = startup();
    input.extend(query("select 20000"));
    let (tags, writes, _) = run(input, 1 << 20);
    assert_eq!(tags.iter().filter(|&&t| t == b'D').count(), 20000);
    assert!(
        writes.len() > 2,
        "rows are flushed while the result is produced"
    );
}

#[test]
fn extended_protocol_row_limit_suspends_the_portal() {
    let mut input = startup();
    input.extend(typed(b'P', b"\0select 5\0\0\0"));
    input.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
    input.extend(typed(b'E', &[0, 0, 0, 0, 2]));
    input.extend(typed(b'E', &[0, 0, 0, 0, 2]));
    input.extend(typed(b'E', &[0, 0, 0, 0, 2]));
    input.extend(typed(b'E', &[0, 0, 0, 0, 2]));
    input.extend(typed(b'S', b""));
    let (tags, _, _) = run(input, 1 << 20);
    // 1 2 | D D s | D D s | D C | C (completed portal: no rows) | Z
    assert_eq!(tags, b"RSKZ12DDsDDsDCCZ".to_vec());
}
