//! Bad input never takes the server down: every case gets a proper
//! ErrorResponse or a clean close, and afterwards the server still serves.
//! Limits (frame size, connections per shard, timeouts) are each exercised.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{closed_by_server, first_error, frame, raw_session, read_messages, TestServer};

/// The server still answers a normal client.
async fn assert_serving(server: &TestServer) {
    let client = server.connect().await;
    let rows = client.simple_query("select 42").await.unwrap();
    assert!(
        matches!(&rows[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("42"))
    );
}

#[tokio::test]
async fn ssl_and_gss_requests_are_refused_with_n_and_startup_proceeds() {
    let server = TestServer::start(1);
    let mut stream = server.raw();
    // SSLRequest
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .unwrap();
    let mut answer = [0u8; 1];
    std::io::Read::read_exact(&mut stream, &mut answer).unwrap();
    assert_eq!(&answer, b"N");
    // GSSENCRequest
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30])
        .unwrap();
    std::io::Read::read_exact(&mut stream, &mut answer).unwrap();
    assert_eq!(&answer, b"N");
    stream
        .write_all(&frame::startup(&[("user", "teller")]))
        .unwrap();
    let messages = read_messages(&mut stream);
    assert_eq!(
        messages.first().map(|m| m.0),
        Some(b'R'),
        "AuthenticationOk first"
    );
    assert_eq!(messages.last().map(|m| m.0), Some(b'Z'));
    assert!(messages.iter().any(|m| m.0 == b'K'), "BackendKeyData sent");
    let statuses: Vec<String> = messages
        .iter()
        .filter(|m| m.0 == b'S')
        .map(|m| {
            String::from_utf8_lossy(&m.1)
                .split('\0')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for name in [
        "server_version",
        "client_encoding",
        "DateStyle",
        "integer_datetimes",
        "standard_conforming_strings",
        "TimeZone",
    ] {
        assert!(
            statuses.iter().any(|s| s == name),
            "ParameterStatus {name} missing: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn startup_without_user_is_a_fatal_28000() {
    let server = TestServer::start(1);
    let mut stream = server.raw();
    stream
        .write_all(&frame::startup(&[("database", "x")]))
        .unwrap();
    let messages = read_messages(&mut stream);
    assert_eq!(first_error(&messages).unwrap().0, "28000");
    assert!(closed_by_server(&mut stream));
    assert_serving(&server).await;
}

#[tokio::test]
async fn unsupported_protocol_version_is_refused() {
    let server = TestServer::start(1);
    let mut stream = server.raw();
    let mut packet = frame::startup(&[("user", "teller")]);
    packet[4..8].copy_from_slice(&(4i32 << 16).to_be_bytes());
    stream.write_all(&packet).unwrap();
    let messages = read_messages(&mut stream);
    assert_eq!(first_error(&messages).unwrap().0, "0A000");
    assert_serving(&server).await;
}

#[tokio::test]
async fn oversized_startup_packet_is_refused() {
    let server = TestServer::start(1);
    let mut stream = server.raw();
    stream.write_all(&1_000_000i32.to_be_bytes()).unwrap();
    stream.write_all(&196608i32.to_be_bytes()).unwrap();
    let messages = read_messages(&mut stream);
    let (code, message) = first_error(&messages).unwrap();
    assert_eq!(code, "08P01");
    assert!(message.contains("startup packet"), "{message}");
    assert_serving(&server).await;
}

#[tokio::test]
async fn malformed_frame_length_is_a_fatal_protocol_violation() {
    let server = TestServer::start(1);
    let mut stream = raw_session(&server);
    // A Query whose length field says 2 (less than the 4 bytes of the length).
    stream.write_all(&[b'Q', 0, 0, 0, 2]).unwrap();
    let messages = read_messages(&mut stream);
    assert_eq!(first_error(&messages).unwrap().0, "08P01");
    assert!(closed_by_server(&mut stream));
    assert_serving(&server).await;
}

#[tokio::test]
async fn oversized_frame_is_refused_before_it_is_buffered() {
    let server = TestServer::with_config(1, &[("max_frame_bytes", "4096")], "");
    let mut stream = raw_session(&server);
    // Announce 100 MB but send only the header: the server must refuse now,
    // not wait for (or allocate) the body.
    stream.write_all(b"Q").unwrap();
    stream.write_all(&100_000_000i32.to_be_bytes()).unwrap();
    let messages = read_messages(&mut stream);
    let (code, message) = first_error(&messages).unwrap();
    assert_eq!(code, "54000");
    assert!(
        message.contains("exceeds the limit of 4096 bytes"),
        "{message}"
    );
    assert!(closed_by_server(&mut stream));
    // A query just under the limit still works.
    let mut stream = raw_session(&server);
    let sql = format!("select '{}'", "x".repeat(3000));
    stream.write_all(&frame::query(&sql)).unwrap();
    let messages = read_messages(&mut stream);
    assert!(first_error(&messages).is_none());
    assert!(messages.iter().any(|m| m.0 == b'D'));
}

#[tokio::test]
async fn unknown_message_type_is_a_fatal_protocol_violation() {
    let server = TestServer::start(1);
    let mut stream = raw_session(&server);
    stream.write_all(&frame::typed(b'!', b"junk")).unwrap();
    let messages = read_messages(&mut stream);
    let (code, message) = first_error(&messages).unwrap();
    assert_eq!(code, "08P01");
    assert!(
        message.contains("invalid frontend message type 33"),
        "{message}"
    );
    assert!(closed_by_server(&mut stream));
    assert_serving(&server).await;
}

#[tokio::test]
async fn garbage_instead_of_a_startup_packet_is_refused() {
    let server = TestServer::start(1);
    let mut stream = server.raw();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let messages = read_messages(&mut stream);
    assert_eq!(first_error(&messages).unwrap().0, "08P01");
    assert_serving(&server).await;
}

#[tokio::test]
async fn client_disconnecting_mid_message_does_not_harm_the_server() {
    let server = TestServer::start(2);
    for _ in 0..20 {
        let mut stream = raw_session(&server);
        let query = frame::query("select 1");
        stream.write_all(&query[..query.len() / 2]).unwrap();
        drop(stream);
        // And mid-startup.
        let mut stream = server.raw();
        stream
            .write_all(&frame::startup(&[("user", "teller")])[..7])
            .unwrap();
    }
    assert_serving(&server).await;
    let log = server.log();
    assert!(
        log.contains("mid-message"),
        "disconnects are logged:\n{log}"
    );
}

#[tokio::test]
async fn extended_protocol_errors_skip_to_sync_and_the_session_goes_on() {
    let server = TestServer::start(1);
    let mut stream = raw_session(&server);
    let mut batch = Vec::new();
    // Bind to a statement that does not exist, then an Execute that must be
    // skipped, then Sync.
    batch.extend(frame::typed(b'B', b"\0nope\0\0\0\0\0\0\0"));
    batch.extend(frame::typed(b'E', b"\0\0\0\0\0"));
    batch.extend(frame::typed(b'S', b""));
    stream.write_all(&batch).unwrap();
    let messages = read_messages(&mut stream);
    let tags: Vec<u8> = messages.iter().map(|m| m.0).collect();
    assert_eq!(
        tags,
        vec![b'E', b'Z'],
        "one error, Execute skipped, then ReadyForQuery"
    );
    assert_eq!(first_error(&messages).unwrap().0, "26000");
    stream.write_all(&frame::query("select 7")).unwrap();
    let messages = read_messages(&mut stream);
    assert!(messages.iter().any(|m| m.0 == b'D'));
}

#[tokio::test]
async fn bind_with_malformed_binary_parameter_is_22p03() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    drop(client);
    let mut stream = raw_session(&server);
    let mut batch = Vec::new();
    let mut parse = b"s1\0select $1::int4\0".to_vec();
    parse.extend_from_slice(&1i16.to_be_bytes());
    parse.extend_from_slice(&23u32.to_be_bytes());
    batch.extend(frame::typed(b'P', &parse));
    // Bind: portal "", statement s1, 1 format (binary), 1 param of 3 bytes.
    let mut bind = b"\0s1\0".to_vec();
    bind.extend_from_slice(&1i16.to_be_bytes());
    bind.extend_from_slice(&1i16.to_be_bytes());
    bind.extend_from_slice(&1i16.to_be_bytes());
    bind.extend_from_slice(&3i32.to_be_bytes());
    bind.extend_from_slice(&[1, 2, 3]);
    bind.extend_from_slice(&0i16.to_be_bytes());
    batch.extend(frame::typed(b'B', &bind));
    batch.extend(frame::typed(b'S', b""));
    stream.write_all(&batch).unwrap();
    let messages = read_messages(&mut stream);
    assert_eq!(first_error(&messages).unwrap().0, "22P03");
    assert_eq!(messages.last().map(|m| m.0), Some(b'Z'));
}

#[tokio::test]
async fn too_many_connections_per_shard_is_53300() {
    let server = TestServer::with_config(1, &[("max_connections_per_shard", "3")], "");
    let held: Vec<_> = (0..3).map(|_| raw_session(&server)).collect();
    let error = refused(
        server.connect_with(&server.url()).await,
        "fourth is refused",
    );
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
    );
    drop(held);
    // Slots free up once the others leave.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match server.connect_with(&server.url()).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("slots never freed: {error}"),
        }
    }
}

#[tokio::test]
async fn a_connection_flood_is_capped_at_twice_the_limit() {
    let server = TestServer::with_config(1, &[("max_connections_per_shard", "2")], "");
    // Let the harness's readiness probe connection finish first.
    std::thread::sleep(Duration::from_millis(500));
    // Silent sockets: two take the slots, two more wait to be refused, and the
    // rest are closed at once instead of piling up.
    let mut silent: Vec<_> = (0..8).map(|_| server.raw()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut closed_at_once = 0;
    for stream in silent.iter_mut() {
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if common::closed_by_server(stream) {
            closed_at_once += 1;
        }
    }
    assert_eq!(
        closed_at_once, 4,
        "sockets beyond twice the limit are closed"
    );
    assert!(server.log().contains("connection flood"));
    drop(silent);
    // Once the flood is gone the server serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connect_with(&server.url()).await.is_err() {
        assert!(Instant::now() < deadline, "server did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn idle_connections_are_closed_with_57p05() {
    let server = TestServer::with_config(1, &[("idle_timeout_secs", "1")], "");
    let mut stream = raw_session(&server);
    let started = Instant::now();
    let messages = read_messages(&mut stream);
    assert_eq!(first_error(&messages).unwrap().0, "57P05");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(closed_by_server(&mut stream));
}

#[tokio::test]
async fn silent_clients_are_cut_off_at_the_authentication_timeout() {
    let server = TestServer::with_config(1, &[("auth_timeout_secs", "1")], "");
    let mut stream = server.raw();
    let started = Instant::now();
    assert!(
        closed_by_server(&mut stream),
        "a client that sends nothing is dropped"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn scram_authentication_accepts_the_right_password_only() {
    let users = "[[auth.users]]\nname = \"alice\"\npassword = \"s3cret\"\n";
    let server = TestServer::with_config(1, &[("method", "\"scram-sha-256\"")], users);
    let ok = format!(
        "host=127.0.0.1 port={} user=alice password=s3cret dbname=x",
        server.port
    );
    let client = server.connect_with(&ok).await.expect("right password");
    client.simple_query("select 1").await.unwrap();

    let wrong = format!(
        "host=127.0.0.1 port={} user=alice password=nope dbname=x",
        server.port
    );
    let error = refused(server.connect_with(&wrong).await, "wrong password refused");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
    );

    // An unknown user fails the same way, at the proof.
    let unknown = format!(
        "host=127.0.0.1 port={} user=mallory password=s3cret dbname=x",
        server.port
    );
    let error = refused(server.connect_with(&unknown).await, "unknown user refused");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
    );

    // A client that offers no password at all cannot get in either.
    let none = format!("host=127.0.0.1 port={} user=alice dbname=x", server.port);
    assert!(server.connect_with(&none).await.is_err());
    assert_serving_as(&server, &ok).await;
}

fn refused(
    result: Result<tokio_postgres::Client, tokio_postgres::Error>,
    what: &str,
) -> tokio_postgres::Error {
    match result {
        Ok(_) => panic!("connection accepted: {what}"),
        Err(error) => error,
    }
}

async fn assert_serving_as(server: &TestServer, url: &str) {
    let client = server.connect_with(url).await.unwrap();
    client.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn garbage_sasl_messages_are_refused() {
    let users = "[[auth.users]]\nname = \"alice\"\npassword = \"pw\"\n";
    let server = TestServer::with_config(1, &[("method", "\"scram-sha-256\"")], users);
    let mut stream = server.raw();
    stream
        .write_all(&frame::startup(&[("user", "alice")]))
        .unwrap();
    // AuthenticationSASL
    let mut header = [0u8; 5];
    std::io::Read::read_exact(&mut stream, &mut header).unwrap();
    assert_eq!(header[0], b'R');
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    std::io::Read::read_exact(&mut stream, &mut body).unwrap();
    let mut initial = b"SCRAM-SHA-256\0".to_vec();
    initial.extend_from_slice(&7i32.to_be_bytes());
    initial.extend_from_slice(b"garbage");
    stream.write_all(&frame::typed(b'p', &initial)).unwrap();
    let messages = read_messages(&mut stream);
    let (code, _) = first_error(&messages).expect("an error");
    assert!(code == "08P01" || code == "28P01", "{code}");
    assert!(closed_by_server(&mut stream));
}
