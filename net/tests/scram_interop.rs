//! Drives the SCRAM client that tokio-postgres uses (`postgres-protocol`) against
//! our server, end to end, as a real connection would.

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use teller_net::scram::{mock_verifier, ScramServer, ScramVerifier, SERVER_NONCE_BYTES};
use teller_net::SqlState;

fn nonce(seed: u8) -> [u8; SERVER_NONCE_BYTES] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

/// Runs one exchange; returns the server's verdict and whether the client
/// accepted the server's signature.
fn exchange(
    verifier: ScramVerifier,
    password: &[u8],
    binding: ChannelBinding,
) -> (Result<(), teller_net::PgError>, bool) {
    let mut client = ScramSha256::new(password, binding);
    let mut server = ScramServer::new(verifier, &nonce(7), "alice");
    let server_first = match server.client_first(client.message()) {
        Ok(m) => m,
        Err(e) => return (Err(e), false),
    };
    client
        .update(&server_first)
        .expect("client accepts server-first");
    match server.client_final(client.message()) {
        Ok(server_final) => (Ok(()), client.finish(&server_final).is_ok()),
        Err(e) => (Err(e), false),
    }
}

#[test]
fn postgres_protocol_client_authenticates() {
    let verifier = ScramVerifier::from_password("s3cr3t pass", b"0123456789abcdef", 4096);
    for binding in [ChannelBinding::unsupported(), ChannelBinding::unrequested()] {
        let (verdict, client_ok) = exchange(verifier.clone(), b"s3cr3t pass", binding);
        assert_eq!(verdict, Ok(()));
        assert!(client_ok, "client verifies the server signature");
    }
}

#[test]
fn stored_form_survives_a_round_trip_before_use() {
    let stored = ScramVerifier::from_password("pw", b"salt-salt-salt!!", 1000).to_string();
    let verifier = ScramVerifier::parse(&stored).expect("parses its own output");
    let (verdict, client_ok) = exchange(verifier, b"pw", ChannelBinding::unsupported());
    assert_eq!(verdict, Ok(()));
    assert!(client_ok);
}

#[test]
fn wrong_password_is_28p01() {
    let verifier = ScramVerifier::from_password("right", b"0123456789abcdef", 4096);
    let (verdict, _) = exchange(verifier, b"wrong", ChannelBinding::unsupported());
    let e = verdict.expect_err("wrong password");
    assert_eq!(e.code, SqlState::INVALID_PASSWORD);
    assert_eq!(
        e.message,
        "password authentication failed for user \"alice\""
    );
}

#[test]
fn unknown_user_fails_like_a_wrong_password() {
    let (verdict, _) = exchange(
        mock_verifier("alice", b"node secret"),
        b"anything",
        ChannelBinding::unsupported(),
    );
    let e = verdict.expect_err("mock verifier");
    assert_eq!(e.code, SqlState::INVALID_PASSWORD);
    assert_eq!(
        e.message,
        "password authentication failed for user \"alice\""
    );
}

#[test]
fn channel_binding_plus_is_refused() {
    let verifier = ScramVerifier::from_password("pw", b"0123456789abcdef", 4096);
    let (verdict, _) = exchange(
        verifier,
        b"pw",
        ChannelBinding::tls_server_end_point(vec![1, 2, 3]),
    );
    assert_eq!(
        verdict.expect_err("no TLS").code,
        SqlState::PROTOCOL_VIOLATION
    );
}
