//! The PostgreSQL v3 connection state machine, written on pgwire's frame codecs.
//!
//! [`serve`] drives one client connection over any byte stream: SSL/GSS
//! negotiation (always refused with `N`), the startup packet, authentication
//! (trust or SCRAM-SHA-256), then the simple and extended query protocols until
//! Terminate or EOF. Statements run in a [`Session`]; everything that needs the
//! runtime (registering the connection, routing a CancelRequest, randomness, the
//! cancel signal) comes from the [`ConnHost`] the caller supplies, so this module
//! opens no sockets, reads no clocks and spawns nothing.
//!
//! Output is buffered and flushed whenever the driver is about to wait for input
//! (or the buffer passes [`WRITE_FLUSH_BYTES`]), so pipelined requests are
//! answered with one write.
//!
//! Failure model: an error in a statement is an ErrorResponse and the session
//! goes on (in the extended protocol, messages are skipped until Sync); a broken
//! frame, an unknown message type or an oversized message is a FATAL
//! ErrorResponse and the connection closes; a client that disappears mid-message
//! is logged and dropped. Nothing a client sends can panic the server.

use std::collections::HashMap;
use std::future::Future;
use std::io;

use bytes::{Buf, BufMut, BytesMut};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use pgwire::messages::copy::{CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{FieldDescription, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete,
    PortalSuspended, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, ErrorResponse, NoticeResponse, ReadyForQuery, SslResponse,
    TransactionStatus,
};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, NegotiateProtocolVersion, ParameterStatus,
    PasswordMessageFamily, SecretKey, Startup,
};
use pgwire::messages::{
    DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, SslNegotiationMetaMessage,
};

use crate::copy::{self, CopyDecoder, CopyDirection, CopySpec};
use crate::error::{PgError, PgResult, SqlState};
use crate::scram::{mock_verifier, ScramServer, ScramVerifier};
use crate::session::{Column, Completion, Session, SessionEvent, StartupInfo, TxStatus};
use crate::types::{self, Type, Value};

/// The longest startup packet accepted (PostgreSQL's MAX_STARTUP_PACKET_LENGTH).
pub const STARTUP_PACKET_MAX_BYTES: usize = 10_000;
/// How much is read from the socket at once.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Buffered output is written out once it passes this size, even mid-result.
pub const WRITE_FLUSH_BYTES: usize = 64 * 1024;
/// Rows asked of the session per step when streaming a result.
pub const ROW_BATCH_ROWS: usize = 256;
/// SSLRequest/GSSENCRequest rounds tolerated before the startup packet.
const NEGOTIATION_ROUNDS_MAX: u32 = 2;
/// The "major version" of SSLRequest, GSSENCRequest and CancelRequest codes.
const SPECIAL_REQUEST_MAJOR: i32 = 1234;
/// Bytes of server nonce in a SCRAM exchange.
pub const SCRAM_NONCE_BYTES: usize = 18;
/// COPY FROM: rows decoded before they are handed to the session.
pub const COPY_BATCH_ROWS: usize = 1024;
/// COPY FROM: bytes of CopyData decoded before the rows so far are handed to
/// the session, so decoded rows in flight stay near this size.
pub const COPY_BATCH_BYTES: usize = 1024 * 1024;

/// Limits on what one connection may ask for.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest message accepted after startup, header included.
    pub max_frame_bytes: usize,
    /// Named prepared statements per connection.
    pub max_prepared_statements: usize,
    /// Named portals per connection.
    pub max_portals: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 64 * 1024 * 1024,
            max_prepared_statements: 10_000,
            max_portals: 1_000,
        }
    }
}

/// How clients prove who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// Anyone may connect as any user.
    Trust,
    /// SCRAM-SHA-256 against the configured users' verifiers.
    ScramSha256,
}

/// What the driver needs from the node around it.
pub trait ConnHost {
    type Session: Session;

    fn limits(&self) -> &Limits;

    fn auth_method(&self) -> AuthMethod;

    /// The stored verifier of `user`, or `None` if there is no such user (the
    /// exchange then runs against a mock verifier and fails at the proof, so a
    /// client cannot tell unknown users from wrong passwords).
    fn scram_verifier(&self, user: &str) -> Option<ScramVerifier>;

    /// A server secret from which mock verifiers are derived.
    fn mock_secret(&self) -> &[u8];

    /// Fresh random bytes (SCRAM nonces).
    fn random_bytes(&mut self, out: &mut [u8]);

    /// Registers the connection once its startup packet is read and returns the
    /// BackendKeyData (process id, secret key). Fails (e.g. 53300, too many
    /// connections) if it may not proceed.
    fn admit(&mut self) -> PgResult<(i32, i32)>;

    /// Opens the session for an authenticated client.
    fn open_session(&mut self, startup: &StartupInfo) -> PgResult<Self::Session>;

    /// A CancelRequest arrived on this connection for (process id, secret key).
    fn cancel_request(&mut self, process_id: i32, secret_key: i32);

    /// Authentication is over and the connection now waits for queries (a host
    /// may switch from an authentication timeout to an idle timeout here).
    fn ready_for_queries(&mut self);

    /// Resolves, with the FATAL error to send, once the client has kept the
    /// driver waiting for input too long; pending forever if there is no limit.
    /// Raced against every socket read.
    fn input_timeout(&self) -> impl Future<Output = PgError>;

    /// Resolves when a cancel of this connection's running statement is requested.
    fn cancelled(&self) -> impl Future<Output = ()>;

    /// Forgets cancel requests that arrived before the current statement.
    fn clear_cancel(&self);

    /// Resolves once `after` has passed (the statement timeout's timer).
    fn sleep(&self, after: std::time::Duration) -> impl Future<Output = ()> + use<Self>;
}

/// Why a running statement stopped before it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interrupt {
    /// A CancelRequest for this connection arrived.
    Cancel,
    /// The statement ran past `statement_timeout`.
    Timeout,
}

impl Interrupt {
    fn error(self) -> PgError {
        let why = match self {
            Interrupt::Cancel => "user request",
            Interrupt::Timeout => "statement timeout",
        };
        PgError::new(
            SqlState::QUERY_CANCELED,
            format!("canceling statement due to {why}"),
        )
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnEnd {
    /// Terminate, or EOF between messages.
    Closed,
    /// A CancelRequest connection, handled.
    CancelRequest,
    /// A FATAL error was sent and the connection closed.
    Fatal(PgError),
    /// The client went away mid-message or the socket failed.
    Io(io::Error),
}

/// Serves one client connection to its end.
pub async fn serve<IO, H>(io: IO, host: H) -> ConnEnd
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: ConnHost,
{
    let mut conn = Conn {
        io,
        host,
        rbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        wbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        decode: DecodeContext::default(),
    };
    match conn.run().await {
        // Answers to messages pipelined before a Terminate still go out.
        Ok(end) => match conn.flush().await {
            Ok(()) => end,
            Err(error) => ConnEnd::Io(error),
        },
        Err(Stop::Io(error)) => ConnEnd::Io(error),
        Err(Stop::Closed) => ConnEnd::Closed,
        Err(Stop::Fatal(error)) => {
            // Best effort: the client may already be gone.
            if conn.send(error_message(&error)).is_ok() {
                let _ = conn.flush().await;
            }
            ConnEnd::Fatal(error)
        }
    }
}

/// Why the driver stops early.
enum Stop {
    Fatal(PgError),
    Io(io::Error),
    /// Terminate in the middle of a sub-protocol (COPY).
    Closed,
}

impl From<io::Error> for Stop {
    fn from(error: io::Error) -> Stop {
        Stop::Io(error)
    }
}

fn fatal_protocol(message: impl Into<String>) -> Stop {
    Stop::Fatal(PgError::fatal(SqlState::PROTOCOL_VIOLATION, message))
}

struct Conn<IO, H> {
    io: IO,
    host: H,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decode: DecodeContext,
}

/// A prepared statement as the driver keeps it.
struct Prepared<St> {
    /// `None` for an empty query string.
    statement: Option<St>,
    params: Vec<Type>,
    columns: Option<Vec<Column>>,
    /// Set when the statement is a COPY to or from the client.
    copy: Option<CopySpec>,
}

/// A bound portal as the driver keeps it.
struct Portal<P> {
    /// `None` for an empty query string.
    portal: Option<P>,
    columns: Option<Vec<Column>>,
    /// One format code per result column (0 text, 1 binary).
    formats: Vec<i16>,
    /// Format code and declared type of each result column.
    encodings: Vec<(i16, Type)>,
    /// Once complete, the tag a further Execute reports.
    done: Option<String>,
    copy: Option<CopySpec>,
}

impl<IO, H> Conn<IO, H>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: ConnHost,
{
    async fn run(&mut self) -> Result<ConnEnd, Stop> {
        let Some(startup) = self.read_startup().await? else {
            return Ok(ConnEnd::CancelRequest);
        };
        let (process_id, secret_key) = self.host.admit().map_err(|e| Stop::Fatal(as_fatal(e)))?;
        let info = startup_info(&startup, process_id)?;
        self.negotiate_version(&startup)?;
        self.authenticate(&info.user).await?;
        let mut session = self
            .host
            .open_session(&info)
            .map_err(|e| Stop::Fatal(as_fatal(e)))?;
        self.send(PgWireBackendMessage::Authentication(Authentication::Ok))?;
        for (name, value) in session.startup_parameters() {
            self.send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))?;
        }
        self.send(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
            process_id,
            SecretKey::I32(secret_key),
        )))?;
        self.send_ready(&mut session)?;
        self.host.ready_for_queries();
        self.serve_queries(&mut session).await
    }

    /// Reads SSL/GSS negotiation and the startup packet. `None` if the
    /// connection carried a CancelRequest instead.
    async fn read_startup(&mut self) -> Result<Option<Startup>, Stop> {
        let mut rounds = 0;
        loop {
            let Some(message) = self.next_message().await? else {
                return Err(Stop::Io(io::ErrorKind::UnexpectedEof.into()));
            };
            match message {
                PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::None) => {
                    self.decode.awaiting_frontend_ssl = false;
                }
                PgWireFrontendMessage::SslNegotiation(_) => {
                    rounds += 1;
                    if rounds > NEGOTIATION_ROUNDS_MAX {
                        return Err(fatal_protocol("too many SSL/GSS negotiation requests"));
                    }
                    // TLS and GSS encryption are not offered: answer `N`, the
                    // client then goes on in plain text or gives up.
                    self.send(PgWireBackendMessage::SslResponse(SslResponse::Refuse))?;
                }
                PgWireFrontendMessage::CancelRequest(cancel) => {
                    if let Some(key) = cancel.secret_key.as_i32() {
                        self.host.cancel_request(cancel.pid, key);
                    }
                    return Ok(None);
                }
                PgWireFrontendMessage::Startup(startup) => {
                    self.decode.awaiting_frontend_startup = false;
                    return Ok(Some(startup));
                }
                other => {
                    return Err(fatal_protocol(format!(
                        "unexpected message before startup: {}",
                        message_name(&other)
                    )))
                }
            }
        }
    }

    /// Protocol 3.x with x > 0, or `_pq_.` options: say what we speak (3.0).
    fn negotiate_version(&mut self, startup: &Startup) -> Result<(), Stop> {
        let unsupported: Vec<String> = startup
            .parameters
            .keys()
            .filter(|k| k.starts_with("_pq_."))
            .cloned()
            .collect();
        if startup.protocol_number_minor > 0 || !unsupported.is_empty() {
            self.send(PgWireBackendMessage::NegotiateProtocolVersion(
                NegotiateProtocolVersion::new(0, unsupported),
            ))?;
        }
        Ok(())
    }

    async fn authenticate(&mut self, user: &str) -> Result<(), Stop> {
        match self.host.auth_method() {
            AuthMethod::Trust => Ok(()),
            AuthMethod::ScramSha256 => self.authenticate_scram(user).await,
        }
    }

    async fn authenticate_scram(&mut self, user: &str) -> Result<(), Stop> {
        let verifier = self
            .host
            .scram_verifier(user)
            .unwrap_or_else(|| mock_verifier(user, self.host.mock_secret()));
        let mut nonce = [0u8; SCRAM_NONCE_BYTES];
        self.host.random_bytes(&mut nonce);
        let mut scram = ScramServer::new(verifier, &nonce, user);
        self.send(PgWireBackendMessage::Authentication(Authentication::SASL(
            vec!["SCRAM-SHA-256".to_string()],
        )))?;

        let initial = self.read_password_message().await?;
        let initial = initial
            .into_sasl_initial_response()
            .map_err(|e| fatal_protocol(format!("malformed SASLInitialResponse message: {e}")))?;
        if initial.auth_method != "SCRAM-SHA-256" {
            return Err(fatal_protocol(format!(
                "client selected an invalid SASL authentication mechanism \"{}\"",
                initial.auth_method
            )));
        }
        let client_first = initial.data.unwrap_or_default();
        let server_first = scram
            .client_first(&client_first)
            .map_err(|e| Stop::Fatal(as_fatal(e)))?;
        self.send(PgWireBackendMessage::Authentication(
            Authentication::SASLContinue(server_first.into()),
        ))?;

        let response = self.read_password_message().await?;
        let response = response
            .into_sasl_response()
            .map_err(|e| fatal_protocol(format!("malformed SASLResponse message: {e}")))?;
        let server_final = scram
            .client_final(&response.data)
            .map_err(|e| Stop::Fatal(as_fatal(e)))?;
        self.send(PgWireBackendMessage::Authentication(
            Authentication::SASLFinal(server_final.into()),
        ))?;
        Ok(())
    }

    async fn read_password_message(&mut self) -> Result<PasswordMessageFamily, Stop> {
        match self.next_message().await? {
            Some(PgWireFrontendMessage::PasswordMessageFamily(message)) => Ok(message),
            Some(other) => Err(fatal_protocol(format!(
                "expected SASL response, got message type {}",
                message_name(&other)
            ))),
            None => Err(Stop::Io(io::ErrorKind::UnexpectedEof.into())),
        }
    }

    async fn serve_queries(&mut self, session: &mut H::Session) -> Result<ConnEnd, Stop> {
        let mut statements: HashMap<String, Prepared<<H::Session as Session>::Statement>> =
            HashMap::new();
        let mut portals: HashMap<String, Portal<<H::Session as Session>::Portal>> = HashMap::new();
        // After an error in the extended protocol, skip messages until Sync.
        let mut skip_until_sync = false;
        loop {
            let Some(message) = self.next_message().await? else {
                return Ok(ConnEnd::Closed);
            };
            let result = match message {
                PgWireFrontendMessage::Query(query) if !skip_until_sync => {
                    portals.remove("");
                    self.simple_query(session, &query.query).await?;
                    self.send_ready(session)?;
                    continue;
                }
                PgWireFrontendMessage::Sync(_) => {
                    skip_until_sync = false;
                    self.send_ready(session)?;
                    if session.transaction_status() == TxStatus::Idle {
                        portals.clear();
                    }
                    continue;
                }
                PgWireFrontendMessage::Flush(_) => {
                    self.flush().await?;
                    continue;
                }
                PgWireFrontendMessage::Terminate(_) => return Ok(ConnEnd::Closed),
                // Outside COPY these are ignored, as PostgreSQL does.
                PgWireFrontendMessage::CopyData(_)
                | PgWireFrontendMessage::CopyDone(_)
                | PgWireFrontendMessage::CopyFail(_) => continue,
                _ if skip_until_sync => continue,
                PgWireFrontendMessage::Parse(parse) => match session.refresh().await {
                    Ok(()) => self.parse(session, &mut statements, parse),
                    Err(error) => Err(error),
                },
                PgWireFrontendMessage::Bind(bind) => {
                    self.bind(session, &statements, &mut portals, bind)
                }
                PgWireFrontendMessage::Describe(describe) => {
                    self.describe(&statements, &portals, describe)
                }
                PgWireFrontendMessage::Execute(execute) => {
                    self.execute(session, &mut portals, execute).await?
                }
                PgWireFrontendMessage::Close(close) => {
                    close_target(&mut statements, &mut portals, &close).and_then(|()| {
                        self.send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
                            .map_err(|_| PgError::internal("encoding CloseComplete"))
                    })
                }
                other => {
                    return Err(fatal_protocol(format!(
                        "unexpected message in query phase: {}",
                        message_name(&other)
                    )))
                }
            };
            if let Err(error) = result {
                if error.is_fatal() {
                    return Err(Stop::Fatal(error));
                }
                session.statement_failed();
                self.send_events(session)?;
                self.send(error_message(&error))?;
                skip_until_sync = true;
            }
        }
    }

    async fn simple_query(&mut self, session: &mut H::Session, sql: &str) -> Result<(), Stop> {
        let outcome = self.simple_query_inner(session, sql).await?;
        if let Err(error) = outcome {
            if error.is_fatal() {
                return Err(Stop::Fatal(error));
            }
            session.statement_failed();
            self.send_events(session)?;
            self.send(error_message(&error))?;
        }
        Ok(())
    }

    /// Outer `Err` stops the connection; inner `Err` is a statement error.
    async fn simple_query_inner(
        &mut self,
        session: &mut H::Session,
        sql: &str,
    ) -> Result<PgResult<()>, Stop> {
        if let Err(error) = session.refresh().await {
            return Ok(Err(error));
        }
        let parsed = match session.parse(sql, &[]) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err(error)),
        };
        if parsed.is_empty() {
            self.send(PgWireBackendMessage::EmptyQueryResponse(
                EmptyQueryResponse::new(),
            ))?;
            return Ok(Ok(()));
        }
        for statement in parsed {
            let columns = session.result_columns(&statement);
            let mut portal = match session.bind(&statement, Vec::new()) {
                Ok(portal) => portal,
                Err(error) => return Ok(Err(error)),
            };
            if let Some(spec) = session.copy_spec(&statement) {
                match self.run_copy(session, &mut portal, &spec).await? {
                    Ok(tag) => {
                        self.send_events(session)?;
                        self.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                            tag,
                        )))?;
                        continue;
                    }
                    Err(error) => return Ok(Err(error)),
                }
            }
            let formats = vec![0; columns.as_ref().map_or(0, Vec::len)];
            let encodings = column_encodings(columns.as_deref(), &formats);
            if let Some(columns) = &columns {
                self.send(row_description(columns, &formats))?;
            }
            match self.run_portal(session, &mut portal, &encodings, 0).await? {
                Ok(Completion::Done(tag)) => {
                    self.send_events(session)?;
                    self.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                        tag,
                    )))?;
                }
                Ok(Completion::Suspended) => unreachable!("run_portal without a limit completes"),
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(()))
    }

    /// The statement timeout's timer for a statement starting now: pending
    /// for ever without a limit.
    fn deadline(&self, session: &H::Session) -> impl Future<Output = ()> + use<IO, H> {
        let timer = session
            .statement_timeout()
            .map(|after| self.host.sleep(after));
        async move {
            match timer {
                Some(timer) => timer.await,
                None => future::pending().await,
            }
        }
    }

    /// Runs one step of a statement unless a cancel request or the
    /// statement's `deadline` comes first.
    async fn interruptible<T>(
        &self,
        step: impl Future<Output = T>,
        deadline: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<T, Interrupt> {
        let step = async { Ok(step.await) };
        let cancel = async {
            self.host.cancelled().await;
            Err(Interrupt::Cancel)
        };
        let timeout = async {
            deadline.await;
            Err(Interrupt::Timeout)
        };
        future::or(step, future::or(cancel, timeout)).await
    }

    /// Runs a portal, streaming rows as DataRow messages. `max_rows` 0 means
    /// all rows. The statement is raced against the connection's cancel
    /// signal and its statement timeout.
    async fn run_portal(
        &mut self,
        session: &mut H::Session,
        portal: &mut <H::Session as Session>::Portal,
        encodings: &[(i16, Type)],
        max_rows: usize,
    ) -> Result<PgResult<Completion>, Stop> {
        self.host.clear_cancel();
        let mut deadline = std::pin::pin!(self.deadline(session));
        let mut sent = 0usize;
        let mut rows = Vec::new();
        loop {
            let batch = if max_rows == 0 {
                ROW_BATCH_ROWS
            } else {
                (max_rows - sent).min(ROW_BATCH_ROWS)
            };
            rows.clear();
            let run = session.execute(portal, batch, &mut rows);
            let completion = match self.interruptible(run, deadline.as_mut()).await {
                Err(interrupt) => return Ok(Err(interrupt.error())),
                Ok(Err(error)) => return Ok(Err(error)),
                Ok(Ok(completion)) => completion,
            };
            sent += rows.len();
            for row in &rows {
                if let Err(error) = encode_data_row(&mut self.wbuf, row, encodings) {
                    return Ok(Err(error));
                }
            }
            if self.wbuf.len() >= WRITE_FLUSH_BYTES {
                self.flush().await?;
            }
            match completion {
                Completion::Done(tag) => return Ok(Ok(Completion::Done(tag))),
                Completion::Suspended if max_rows != 0 && sent >= max_rows => {
                    return Ok(Ok(Completion::Suspended))
                }
                Completion::Suspended => {}
            }
        }
    }

    /// Runs a COPY to or from the client. Outer `Err` stops the connection;
    /// inner `Err` is a statement error.
    async fn run_copy(
        &mut self,
        session: &mut H::Session,
        portal: &mut <H::Session as Session>::Portal,
        spec: &CopySpec,
    ) -> Result<PgResult<String>, Stop> {
        if let Err(error) = spec.format.validate() {
            return Ok(Err(error));
        }
        match spec.direction {
            CopyDirection::FromStdin => self.copy_in(session, portal, spec).await,
            CopyDirection::ToStdout => self.copy_out(session, portal, spec).await,
        }
    }

    /// COPY FROM STDIN: CopyInResponse, then CopyData until CopyDone or
    /// CopyFail. Rows go to the session in batches of at most
    /// [`COPY_BATCH_ROWS`] rows or [`COPY_BATCH_BYTES`] bytes of input.
    async fn copy_in(
        &mut self,
        session: &mut H::Session,
        portal: &mut <H::Session as Session>::Portal,
        spec: &CopySpec,
    ) -> Result<PgResult<String>, Stop> {
        let n = spec.columns.len();
        self.send(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(
            0,
            n as i16,
            vec![0; n],
        )))?;
        let mut decoder = CopyDecoder::new(spec.format.clone(), spec.columns.clone());
        let mut rows = Vec::new();
        let result = loop {
            let Some(message) = self.next_message().await? else {
                session.copy_in_failed(portal);
                return Err(Stop::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client closed the connection during COPY FROM STDIN",
                )));
            };
            let step = match message {
                PgWireFrontendMessage::CopyData(data) => {
                    self.copy_in_data(session, portal, &mut decoder, &mut rows, &data.data)
                        .await
                }
                PgWireFrontendMessage::CopyDone(_) => {
                    let finished = match decoder.finish(&mut rows) {
                        Ok(()) => self.copy_in_batch(session, portal, &mut rows).await,
                        Err(error) => Err(error),
                    };
                    break match finished {
                        Ok(()) => session.copy_in_done(portal).await,
                        Err(error) => Err(error),
                    };
                }
                PgWireFrontendMessage::CopyFail(fail) => {
                    break Err(PgError::new(
                        SqlState::QUERY_CANCELED,
                        format!("COPY from stdin failed: {}", fail.message),
                    ));
                }
                // PostgreSQL ignores these during COPY FROM STDIN.
                PgWireFrontendMessage::Flush(_) | PgWireFrontendMessage::Sync(_) => Ok(()),
                PgWireFrontendMessage::Terminate(_) => {
                    session.copy_in_failed(portal);
                    return Err(Stop::Closed);
                }
                other => Err(PgError::protocol(format!(
                    "unexpected message type {} during COPY from stdin",
                    message_name(&other)
                ))),
            };
            if let Err(error) = step {
                break Err(error);
            }
        };
        if result.is_err() {
            session.copy_in_failed(portal);
        }
        Ok(result)
    }

    /// Decodes one CopyData payload, handing rows over as batches fill.
    async fn copy_in_data(
        &mut self,
        session: &mut H::Session,
        portal: &mut <H::Session as Session>::Portal,
        decoder: &mut CopyDecoder,
        rows: &mut Vec<Vec<Value>>,
        data: &[u8],
    ) -> PgResult<()> {
        for chunk in data.chunks(COPY_BATCH_BYTES) {
            let mut at = 0;
            while at < chunk.len() {
                at += decoder.feed_until(&chunk[at..], rows, COPY_BATCH_ROWS)?;
                if rows.len() >= COPY_BATCH_ROWS {
                    self.copy_in_batch(session, portal, rows).await?;
                }
            }
            if chunk.len() == COPY_BATCH_BYTES {
                self.copy_in_batch(session, portal, rows).await?;
            }
        }
        Ok(())
    }

    async fn copy_in_batch(
        &mut self,
        session: &mut H::Session,
        portal: &mut <H::Session as Session>::Portal,
        rows: &mut Vec<Vec<Value>>,
    ) -> PgResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        session.copy_in(portal, std::mem::take(rows)).await
    }

    /// COPY TO STDOUT: CopyOutResponse, one CopyData per row (the CSV header
    /// first), CopyDone. Rows come from the portal like a query's.
    async fn copy_out(
        &mut self,
        session: &mut H::Session,
        portal: &mut <H::Session as Session>::Portal,
        spec: &CopySpec,
    ) -> Result<PgResult<String>, Stop> {
        let n = spec.columns.len();
        self.send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            0,
            n as i16,
            vec![0; n],
        )))?;
        let mut line = BytesMut::new();
        if matches!(spec.format, copy::CopyFormat::Csv { header: true, .. }) {
            copy::encode_header(&spec.format, &spec.columns, &mut line);
            put_copy_data(&mut self.wbuf, &line);
        }
        self.host.clear_cancel();
        let mut deadline = std::pin::pin!(self.deadline(session));
        let mut sent = 0u64;
        let mut rows = Vec::new();
        loop {
            rows.clear();
            let run = session.execute(portal, ROW_BATCH_ROWS, &mut rows);
            let completion = match self.interruptible(run, deadline.as_mut()).await {
                Err(interrupt) => return Ok(Err(interrupt.error())),
                Ok(Err(error)) => return Ok(Err(error)),
                Ok(Ok(completion)) => completion,
            };
            for row in &rows {
                line.clear();
                copy::encode_row(&spec.format, row, &spec.columns, &mut line);
                put_copy_data(&mut self.wbuf, &line);
            }
            sent += rows.len() as u64;
            if self.wbuf.len() >= WRITE_FLUSH_BYTES {
                self.flush().await?;
            }
            if let Completion::Done(_) = completion {
                break;
            }
        }
        self.wbuf.put_slice(&[b'c', 0, 0, 0, 4]);
        Ok(Ok(format!("COPY {sent}")))
    }

    fn parse(
        &mut self,
        session: &mut H::Session,
        statements: &mut HashMap<String, Prepared<<H::Session as Session>::Statement>>,
        parse: Parse,
    ) -> PgResult<()> {
        let name = parse.name.unwrap_or_default();
        if !name.is_empty() && statements.contains_key(&name) {
            return Err(PgError::new(
                SqlState::DUPLICATE_PREPARED_STATEMENT,
                format!("prepared statement \"{name}\" already exists"),
            ));
        }
        if !name.is_empty() && statements.len() >= self.host.limits().max_prepared_statements {
            return Err(PgError::new(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "too many prepared statements (limit {})",
                    self.host.limits().max_prepared_statements
                ),
            ));
        }
        let mut parsed = session.parse(&parse.query, &parse.type_oids)?;
        if parsed.len() > 1 {
            return Err(PgError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let prepared = match parsed.pop() {
            None => Prepared {
                statement: None,
                params: Vec::new(),
                columns: None,
                copy: None,
            },
            Some(statement) => Prepared {
                params: session.parameter_types(&statement),
                columns: session.result_columns(&statement),
                copy: session.copy_spec(&statement),
                statement: Some(statement),
            },
        };
        statements.insert(name, prepared);
        self.send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .map_err(|_| PgError::internal("encoding ParseComplete"))
    }

    fn bind(
        &mut self,
        session: &mut H::Session,
        statements: &HashMap<String, Prepared<<H::Session as Session>::Statement>>,
        portals: &mut HashMap<String, Portal<<H::Session as Session>::Portal>>,
        bind: Bind,
    ) -> PgResult<()> {
        let statement_name = bind.statement_name.unwrap_or_default();
        let portal_name = bind.portal_name.unwrap_or_default();
        let prepared = statements.get(&statement_name).ok_or_else(|| {
            PgError::new(
                SqlState::INVALID_SQL_STATEMENT_NAME,
                format!("prepared statement \"{statement_name}\" does not exist"),
            )
        })?;
        if !portal_name.is_empty() {
            if portals.contains_key(&portal_name) {
                return Err(PgError::new(
                    SqlState::DUPLICATE_CURSOR,
                    format!("portal \"{portal_name}\" already exists"),
                ));
            }
            if portals.len() >= self.host.limits().max_portals {
                return Err(PgError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    format!(
                        "too many portals (limit {})",
                        self.host.limits().max_portals
                    ),
                ));
            }
        }
        if bind.parameters.len() != prepared.params.len() {
            return Err(PgError::protocol(format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                bind.parameters.len(),
                statement_name,
                prepared.params.len()
            )));
        }
        let param_formats = expand_formats(
            &bind.parameter_format_codes,
            prepared.params.len(),
            "parameter formats",
        )?;
        let mut values = Vec::with_capacity(prepared.params.len());
        for (i, raw) in bind.parameters.iter().enumerate() {
            let ty = prepared.params[i];
            let value = match raw {
                None => Ok(Value::Null),
                Some(bytes) if param_formats[i] == 1 => types::decode_binary(ty, bytes),
                Some(bytes) => types::decode_text(ty, bytes),
            }
            .map_err(|e| {
                if e.code == SqlState::INVALID_BINARY_REPRESENTATION {
                    PgError {
                        message: format!("{} in parameter ${}", e.message, i + 1),
                        ..e
                    }
                } else {
                    e
                }
            })?;
            values.push(value);
        }
        let column_count = prepared.columns.as_ref().map_or(0, Vec::len);
        let formats = expand_formats(
            &bind.result_column_format_codes,
            column_count,
            "result formats",
        )?;
        let portal = match &prepared.statement {
            None => None,
            Some(statement) => Some(session.bind(statement, values)?),
        };
        portals.insert(
            portal_name,
            Portal {
                portal,
                encodings: column_encodings(prepared.columns.as_deref(), &formats),
                columns: prepared.columns.clone(),
                formats,
                done: None,
                copy: prepared.copy.clone(),
            },
        );
        self.send(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .map_err(|_| PgError::internal("encoding BindComplete"))
    }

    fn describe(
        &mut self,
        statements: &HashMap<String, Prepared<<H::Session as Session>::Statement>>,
        portals: &HashMap<String, Portal<<H::Session as Session>::Portal>>,
        describe: Describe,
    ) -> PgResult<()> {
        let name = describe.name.unwrap_or_default();
        let encoding = |_| PgError::internal("encoding a description");
        match describe.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                let prepared = statements.get(&name).ok_or_else(|| {
                    PgError::new(
                        SqlState::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{name}\" does not exist"),
                    )
                })?;
                let oids = prepared.params.iter().map(|t| t.oid()).collect();
                self.send(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(oids),
                ))
                .map_err(encoding)?;
                match &prepared.columns {
                    Some(columns) => {
                        let formats = vec![0; columns.len()];
                        self.send(row_description(columns, &formats))
                            .map_err(encoding)
                    }
                    None => self
                        .send(PgWireBackendMessage::NoData(Default::default()))
                        .map_err(encoding),
                }
            }
            TARGET_TYPE_BYTE_PORTAL => {
                let portal = portals.get(&name).ok_or_else(|| {
                    PgError::new(
                        SqlState::INVALID_CURSOR_NAME,
                        format!("portal \"{name}\" does not exist"),
                    )
                })?;
                match &portal.columns {
                    Some(columns) => self
                        .send(row_description(columns, &portal.formats))
                        .map_err(encoding),
                    None => self
                        .send(PgWireBackendMessage::NoData(Default::default()))
                        .map_err(encoding),
                }
            }
            other => Err(PgError::protocol(format!(
                "invalid DESCRIBE message subtype {other}"
            ))),
        }
    }

    async fn execute(
        &mut self,
        session: &mut H::Session,
        portals: &mut HashMap<String, Portal<<H::Session as Session>::Portal>>,
        execute: Execute,
    ) -> Result<PgResult<()>, Stop> {
        let name = execute.name.unwrap_or_default();
        let Some(entry) = portals.get_mut(&name) else {
            return Ok(Err(PgError::new(
                SqlState::INVALID_CURSOR_NAME,
                format!("portal \"{name}\" does not exist"),
            )));
        };
        let Some(portal) = entry.portal.as_mut() else {
            self.send(PgWireBackendMessage::EmptyQueryResponse(
                EmptyQueryResponse::new(),
            ))?;
            return Ok(Ok(()));
        };
        if let Some(tag) = &entry.done {
            // A completed portal yields nothing more, as in PostgreSQL.
            let tag = tag.clone();
            self.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                tag,
            )))?;
            return Ok(Ok(()));
        }
        if let Some(spec) = entry.copy.clone() {
            return match self.run_copy(session, portal, &spec).await? {
                Ok(tag) => {
                    entry.done = Some(tag.clone());
                    self.send_events(session)?;
                    self.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                        tag,
                    )))?;
                    Ok(Ok(()))
                }
                Err(error) => Ok(Err(error)),
            };
        }
        let max_rows = usize::try_from(execute.max_rows).unwrap_or(0);
        let encodings = entry.encodings.clone();
        match self
            .run_portal(session, portal, &encodings, max_rows)
            .await?
        {
            Ok(Completion::Done(tag)) => {
                entry.done = Some(rerun_tag(&tag));
                self.send_events(session)?;
                self.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                    tag,
                )))?;
            }
            Ok(Completion::Suspended) => {
                self.send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))?;
            }
            Err(error) => return Ok(Err(error)),
        }
        Ok(Ok(()))
    }

    fn send_ready(&mut self, session: &mut H::Session) -> Result<(), Stop> {
        self.send_events(session)?;
        let status = match session.transaction_status() {
            TxStatus::Idle => TransactionStatus::Idle,
            TxStatus::InBlock => TransactionStatus::Transaction,
            TxStatus::Failed => TransactionStatus::Error,
        };
        self.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            status,
        )))
    }

    fn send_events(&mut self, session: &mut H::Session) -> Result<(), Stop> {
        for event in session.take_events() {
            let message = match event {
                SessionEvent::Notice(notice) => {
                    PgWireBackendMessage::NoticeResponse(NoticeResponse::new(notice.fields()))
                }
                SessionEvent::ParameterStatus(name, value) => {
                    PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name, value))
                }
            };
            self.send(message)?;
        }
        Ok(())
    }

    fn send(&mut self, message: PgWireBackendMessage) -> Result<(), Stop> {
        message
            .encode(&mut self.wbuf)
            .map_err(|e| Stop::Fatal(PgError::fatal(SqlState::INTERNAL_ERROR, e.to_string())))
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.io.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Decodes the next complete message, reading (and first flushing pending
    /// output) as needed. `None` on a clean EOF between messages.
    async fn next_message(&mut self) -> Result<Option<PgWireFrontendMessage>, Stop> {
        loop {
            self.check_frame_length()?;
            match PgWireFrontendMessage::decode(&mut self.rbuf, &self.decode) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(error) => return Err(decode_error(error)),
            }
            self.flush().await?;
            let start = self.rbuf.len();
            self.rbuf.resize(start + READ_CHUNK_BYTES, 0);
            let read = {
                let read = async { Ok(self.io.read(&mut self.rbuf[start..]).await) };
                let timeout = async { Err(self.host.input_timeout().await) };
                future::or(read, timeout).await
            };
            let n = match read {
                Ok(Ok(n)) => n,
                Ok(Err(error)) => {
                    self.rbuf.truncate(start);
                    return Err(error.into());
                }
                Err(timeout) => {
                    self.rbuf.truncate(start);
                    return Err(Stop::Fatal(as_fatal(timeout)));
                }
            };
            self.rbuf.truncate(start + n);
            if n == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(Stop::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "client closed the connection mid-message ({} bytes pending)",
                            start
                        ),
                    )))
                };
            }
        }
    }

    /// Refuses a frame whose length header is out of bounds before any of its
    /// body is buffered, so an oversized frame costs no memory.
    fn check_frame_length(&self) -> Result<(), Stop> {
        let startup = self.decode.awaiting_frontend_startup;
        let offset = usize::from(!startup);
        if self.rbuf.len() < offset + 4 {
            return Ok(());
        }
        let length = (&self.rbuf[offset..offset + 4]).get_i32();
        let limit = if startup {
            STARTUP_PACKET_MAX_BYTES
        } else {
            self.host.limits().max_frame_bytes
        };
        if startup && (length < 8 || length as usize > limit) {
            return Err(fatal_protocol(format!(
                "invalid length of startup packet: {length}"
            )));
        }
        if startup && self.rbuf.len() >= 8 {
            let code = (&self.rbuf[4..8]).get_i32();
            let (major, minor) = (code >> 16, code & 0xffff);
            if major != 3 && major != SPECIAL_REQUEST_MAJOR {
                return Err(Stop::Fatal(PgError::fatal(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    format!(
                        "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                    ),
                )));
            }
        }
        if length < 4 {
            return Err(fatal_protocol(format!("invalid message length: {length}")));
        }
        if length as usize > limit {
            return Err(Stop::Fatal(PgError::fatal(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!("message of {length} bytes exceeds the limit of {limit} bytes"),
            )));
        }
        Ok(())
    }
}

fn decode_error(error: pgwire::error::PgWireError) -> Stop {
    use pgwire::error::PgWireError as E;
    let message = match error {
        E::InvalidMessageType(byte) => format!("invalid frontend message type {byte}"),
        E::UnsupportedProtocolVersion(major, minor) => {
            return Stop::Fatal(PgError::fatal(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                ),
            ))
        }
        other => format!("malformed message: {other}"),
    };
    fatal_protocol(message)
}

fn startup_info(startup: &Startup, process_id: i32) -> Result<StartupInfo, Stop> {
    let params = startup.parameters.clone();
    let user = params.get("user").cloned().unwrap_or_default();
    if user.is_empty() {
        return Err(Stop::Fatal(PgError::fatal(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            "no PostgreSQL user name specified in startup packet",
        )));
    }
    let database = params
        .get("database")
        .filter(|d| !d.is_empty())
        .cloned()
        .unwrap_or_else(|| user.clone());
    Ok(StartupInfo {
        user,
        database,
        params,
        process_id,
    })
}

fn as_fatal(error: PgError) -> PgError {
    PgError {
        severity: crate::error::Severity::Fatal,
        ..error
    }
}

fn error_message(error: &PgError) -> PgWireBackendMessage {
    PgWireBackendMessage::ErrorResponse(ErrorResponse::new(error.fields()))
}

fn message_name(message: &PgWireFrontendMessage) -> &'static str {
    match message {
        PgWireFrontendMessage::SslNegotiation(_) => "SSLRequest",
        PgWireFrontendMessage::Startup(_) => "StartupMessage",
        PgWireFrontendMessage::CancelRequest(_) => "CancelRequest",
        PgWireFrontendMessage::PasswordMessageFamily(_) => "PasswordMessage",
        PgWireFrontendMessage::Query(_) => "Query",
        PgWireFrontendMessage::Parse(_) => "Parse",
        PgWireFrontendMessage::Close(_) => "Close",
        PgWireFrontendMessage::Bind(_) => "Bind",
        PgWireFrontendMessage::Describe(_) => "Describe",
        PgWireFrontendMessage::Execute(_) => "Execute",
        PgWireFrontendMessage::PortalSuspended(_) => "PortalSuspended",
        PgWireFrontendMessage::Flush(_) => "Flush",
        PgWireFrontendMessage::Sync(_) => "Sync",
        PgWireFrontendMessage::Terminate(_) => "Terminate",
        PgWireFrontendMessage::CopyData(_) => "CopyData",
        PgWireFrontendMessage::CopyFail(_) => "CopyFail",
        PgWireFrontendMessage::CopyDone(_) => "CopyDone",
    }
}

fn close_target<St, P>(
    statements: &mut HashMap<String, Prepared<St>>,
    portals: &mut HashMap<String, Portal<P>>,
    close: &Close,
) -> PgResult<()> {
    let name = close.name.clone().unwrap_or_default();
    // Closing something that does not exist is not an error.
    match close.target_type {
        TARGET_TYPE_BYTE_STATEMENT => {
            statements.remove(&name);
        }
        TARGET_TYPE_BYTE_PORTAL => {
            portals.remove(&name);
        }
        other => {
            return Err(PgError::protocol(format!(
                "invalid CLOSE message subtype {other}"
            )))
        }
    }
    Ok(())
}

/// Expands Bind's format codes: none means all text, one applies to all.
fn expand_formats(codes: &[i16], count: usize, what: &str) -> PgResult<Vec<i16>> {
    let formats = match codes.len() {
        0 => vec![0; count],
        1 => vec![codes[0]; count],
        n if n == count => codes.to_vec(),
        n => {
            return Err(PgError::protocol(format!(
                "bind message has {n} {what} but {count} are needed"
            )))
        }
    };
    if let Some(bad) = formats.iter().find(|&&f| f != 0 && f != 1) {
        return Err(PgError::protocol(format!("unsupported format code: {bad}")));
    }
    Ok(formats)
}

fn row_description(columns: &[Column], formats: &[i16]) -> PgWireBackendMessage {
    let fields = columns
        .iter()
        .zip(formats)
        .map(|(column, &format)| {
            FieldDescription::new(
                column.name.clone(),
                column.table_oid as i32,
                column.column_id,
                column.ty.oid(),
                column.ty.size(),
                column.type_modifier,
                format,
            )
        })
        .collect();
    PgWireBackendMessage::RowDescription(RowDescription::new(fields))
}

/// The tag of running a completed portal again: no more rows.
fn rerun_tag(tag: &str) -> String {
    match tag.rsplit_once(' ') {
        Some((verb, count)) if count.parse::<u64>().is_ok() => format!("{verb} 0"),
        _ => tag.to_string(),
    }
}

fn column_encodings(columns: Option<&[Column]>, formats: &[i16]) -> Vec<(i16, Type)> {
    columns
        .unwrap_or_default()
        .iter()
        .zip(formats)
        .map(|(column, &format)| (format, column.ty))
        .collect()
}

/// Appends one CopyData message.
fn put_copy_data(out: &mut BytesMut, data: &[u8]) {
    out.put_u8(b'd');
    out.put_i32((data.len() + 4) as i32);
    out.put_slice(data);
}

/// Appends one DataRow. Written by hand: it is the hottest message.
fn encode_data_row(out: &mut BytesMut, row: &[Value], encodings: &[(i16, Type)]) -> PgResult<()> {
    let start = out.len();
    out.put_u8(b'D');
    out.put_i32(0);
    out.put_i16(row.len() as i16);
    for (i, value) in row.iter().enumerate() {
        if value.is_null() {
            out.put_i32(-1);
            continue;
        }
        let length_at = out.len();
        out.put_i32(0);
        let (format, ty) = encodings
            .get(i)
            .copied()
            .unwrap_or_else(|| (0, value.natural_type()));
        if format == 1 {
            if let Err(error) = types::encode_binary(value, ty, out) {
                out.truncate(start);
                return Err(error);
            }
        } else {
            types::encode_text(value, ty, out);
        }
        let length = (out.len() - length_at - 4) as i32;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    }
    let length = (out.len() - start - 1) as i32;
    out[start + 1..start + 5].copy_from_slice(&length.to_be_bytes());
    Ok(())
}
