//! SCRAM-SHA-256 server side (RFC 5802, RFC 7677), as PostgreSQL runs it.
//!
//! Sans-I/O: [`ScramServer`] takes the client's SASL payloads and returns the
//! server's; the caller frames them (AuthenticationSASLContinue/Final), supplies
//! the random server nonce, and looks up the stored [`ScramVerifier`]. Nothing
//! here reads a clock or an RNG, so the exchange is reproducible in tests.
//!
//! The exchange:
//! 1. client-first `n,,n=<ignored>,r=<client nonce>` → server-first
//!    `r=<client nonce><server nonce>,s=<salt b64>,i=<iterations>`;
//! 2. client-final `c=<b64 gs2 header>,r=<nonce>,p=<proof b64>` → server-final
//!    `v=<server signature b64>`, only when `H(proof ⊕ HMAC(StoredKey, AuthMessage))
//!    == StoredKey` (compared in constant time).
//!
//! PostgreSQL's choices kept here: the user name inside the SCRAM message is
//! ignored (the startup packet's user counts); an authorization identity and
//! mandatory extensions are refused (0A000); without TLS, channel binding flags
//! `n` and `y` are accepted and `p=` is refused. A failed proof is FATAL 28P01
//! naming the startup user; a malformed or out-of-order message is FATAL 08P01.
//! An unknown user runs the same exchange against [`mock_verifier`] and fails at
//! the proof, so a client cannot tell unknown users from wrong passwords.
//!
//! Passwords are used as their UTF-8 bytes: SASLprep is the identity for ASCII,
//! which is all this implementation normalises (see the module's limits below).
//!
//! Limits: no SCRAM-SHA-256-PLUS (channel binding needs TLS); no SASLprep
//! mapping of non-ASCII passwords (PostgreSQL maps and NFKC-normalises them).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{PgError, PgResult, SqlState};

/// The SASL mechanism name offered in AuthenticationSASL.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// PostgreSQL's default iteration count (`scram_iterations`).
pub const ITERATIONS_DEFAULT: u32 = 4096;
/// PostgreSQL's salt length in bytes.
pub const SALT_BYTES: usize = 16;
/// Random bytes PostgreSQL puts in a server nonce (base64-encoded on the wire).
pub const SERVER_NONCE_BYTES: usize = 18;
/// Length of a SHA-256 key or signature.
const KEY_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// What PostgreSQL stores in `pg_authid.rolpassword` for a SCRAM user:
/// `SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; KEY_BYTES],
    pub server_key: [u8; KEY_BYTES],
}

impl fmt::Debug for ScramVerifier {
    /// Keys stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt", &BASE64.encode(&self.salt))
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_BYTES] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        unreachable!("HMAC-SHA-256 takes keys of any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; KEY_BYTES] {
    Sha256::digest(data).into()
}

impl ScramVerifier {
    /// Derives the verifier of `password` (RFC 5802 §3: SaltedPassword =
    /// PBKDF2-HMAC-SHA-256(password, salt, iterations)).
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
        assert!(iterations > 0, "SCRAM needs at least one iteration");
        let mut salted = [0u8; KEY_BYTES];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        ScramVerifier::from_salted_password(&salted, salt, iterations)
    }

    fn from_salted_password(
        salted: &[u8; KEY_BYTES],
        salt: &[u8],
        iterations: u32,
    ) -> ScramVerifier {
        let client_key = hmac(salted, &[b"Client Key"]);
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac(salted, &[b"Server Key"]),
        }
    }

    /// Parses PostgreSQL's stored form. Fails (22023) on anything else.
    pub fn parse(s: &str) -> PgResult<ScramVerifier> {
        let bad = |why: &str| {
            PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid SCRAM secret: {why}"),
            )
        };
        let rest = s
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or_else(|| bad("not a SCRAM-SHA-256 secret"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or_else(|| bad("missing '$' before the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| bad("missing ':' after the iteration count"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or_else(|| bad("missing ':' between the keys"))?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|&i| i > 0)
            .ok_or_else(|| bad("iteration count is not a positive integer"))?;
        let salt = BASE64
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("salt is not base64"))?;
        let key = |k: &str, what: &str| -> PgResult<[u8; KEY_BYTES]> {
            BASE64
                .decode(k)
                .ok()
                .and_then(|k| <[u8; KEY_BYTES]>::try_from(k).ok())
                .ok_or_else(|| bad(&format!("{what} is not 32 bytes of base64")))
        };
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: key(stored, "StoredKey")?,
            server_key: key(server, "ServerKey")?,
        })
    }
}

impl fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{MECHANISM}${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

impl std::str::FromStr for ScramVerifier {
    type Err = PgError;

    fn from_str(s: &str) -> PgResult<ScramVerifier> {
        ScramVerifier::parse(s)
    }
}

/// A deterministic verifier for a user that does not exist, derived from a
/// server-wide secret: the same user always gets the same salt (as a real user
/// would), nobody knows a password matching it, and without the secret it cannot
/// be told from a real one. PostgreSQL does the same with its mock nonce.
pub fn mock_verifier(user: &str, secret: &[u8]) -> ScramVerifier {
    let salt = hmac(secret, &[b"mock salt\0", user.as_bytes()]);
    let salted = hmac(secret, &[b"mock salted password\0", user.as_bytes()]);
    ScramVerifier::from_salted_password(&salted, &salt[..SALT_BYTES], ITERATIONS_DEFAULT)
}

/// Where the exchange stands.
enum State {
    /// Waiting for client-first.
    Initial,
    /// server-first sent; waiting for client-final.
    Continue {
        gs2_header: Vec<u8>,
        client_first_bare: Vec<u8>,
        server_first: Vec<u8>,
        nonce: Vec<u8>,
    },
    /// Proof verified, server-final sent.
    Authenticated,
    /// A message was refused; the session must end.
    Failed,
}

/// The server side of one SCRAM-SHA-256 exchange.
pub struct ScramServer {
    verifier: ScramVerifier,
    user: String,
    server_nonce: String,
    state: State,
}

fn malformed(detail: impl Into<String>) -> PgError {
    PgError::fatal(SqlState::PROTOCOL_VIOLATION, "malformed SCRAM message").with_detail(detail)
}

/// RFC 5802 `printable`: visible ASCII except ','.
fn is_printable_nonce(nonce: &[u8]) -> bool {
    !nonce.is_empty()
        && nonce
            .iter()
            .all(|&c| (0x21..=0x7e).contains(&c) && c != b',')
}

/// Splits `attr=value` where `attr` must be `name`.
fn attribute<'a>(part: Option<&'a [u8]>, name: u8, what: &str) -> PgResult<&'a [u8]> {
    match part {
        Some([n, b'=', value @ ..]) if *n == name => Ok(value),
        _ => Err(malformed(format!(
            "Expected attribute \"{}\" in {what}.",
            char::from(name)
        ))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ScramServer {
    /// Starts an exchange for the startup packet's `user` against `verifier`.
    /// `server_nonce` is fresh random bytes (PostgreSQL uses
    /// [`SERVER_NONCE_BYTES`]); they are sent base64-encoded.
    pub fn new(verifier: ScramVerifier, server_nonce: &[u8], user: &str) -> ScramServer {
        assert!(
            !server_nonce.is_empty(),
            "a SCRAM server nonce needs random bytes"
        );
        ScramServer {
            verifier,
            user: user.to_owned(),
            server_nonce: BASE64.encode(server_nonce),
            state: State::Initial,
        }
    }

    /// Like [`ScramServer::new`] with a server nonce already in printable form
    /// (visible ASCII without ','), used verbatim — e.g. RFC 7677's test vector.
    pub fn with_printable_nonce(
        verifier: ScramVerifier,
        server_nonce: &str,
        user: &str,
    ) -> PgResult<ScramServer> {
        if !is_printable_nonce(server_nonce.as_bytes()) {
            return Err(PgError::internal(
                "SCRAM server nonce must be visible ASCII without ','",
            ));
        }
        Ok(ScramServer {
            verifier,
            user: user.to_owned(),
            server_nonce: server_nonce.to_owned(),
            state: State::Initial,
        })
    }

    /// True once client-final carried a valid proof.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
    }

    /// Takes the SASLInitialResponse payload, returns server-first-message.
    pub fn client_first(&mut self, msg: &[u8]) -> PgResult<Vec<u8>> {
        if !matches!(self.state, State::Initial) {
            self.state = State::Failed;
            return Err(PgError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                "unexpected SCRAM client-first-message: the exchange has already started",
            ));
        }
        self.state = State::Failed;
        let (gs2_header, client_first_bare, client_nonce) = parse_client_first(msg)?;
        let mut nonce = client_nonce.to_vec();
        nonce.extend_from_slice(self.server_nonce.as_bytes());
        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(
            format!(
                ",s={},i={}",
                BASE64.encode(&self.verifier.salt),
                self.verifier.iterations
            )
            .as_bytes(),
        );
        self.state = State::Continue {
            gs2_header: gs2_header.to_vec(),
            client_first_bare: client_first_bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first)
    }

    /// Takes the SASLResponse payload, returns server-final-message when the
    /// proof is right.
    pub fn client_final(&mut self, msg: &[u8]) -> PgResult<Vec<u8>> {
        let State::Continue {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(PgError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                "unexpected SCRAM client-final-message: no client-first-message is pending",
            ));
        };
        let (without_proof, proof) = parse_client_final(msg, &gs2_header, &nonce)?;
        let mut auth_message = client_first_bare;
        auth_message.push(b',');
        auth_message.extend_from_slice(&server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(without_proof);

        let client_signature = hmac(&self.verifier.stored_key, &[&auth_message]);
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(client_signature) {
            *k ^= s;
        }
        if !constant_time_eq(&sha256(&client_key), &self.verifier.stored_key) {
            return Err(PgError::fatal(
                SqlState::INVALID_PASSWORD,
                format!("password authentication failed for user \"{}\"", self.user),
            ));
        }
        let server_signature = hmac(&self.verifier.server_key, &[&auth_message]);
        self.state = State::Authenticated;
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// client-first-message = gs2-header client-first-message-bare. Returns
/// (gs2 header, bare message, client nonce).
fn parse_client_first(msg: &[u8]) -> PgResult<(&[u8], &[u8], &[u8])> {
    let header_end = match msg.first() {
        Some(b'n' | b'y') if msg.get(1) == Some(&b',') => 2,
        Some(b'p') => {
            return Err(PgError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                "channel binding is not supported: the client selected SCRAM-SHA-256-PLUS, \
                 but this connection offers SCRAM-SHA-256 only",
            ))
        }
        _ => {
            return Err(malformed(
                "Unexpected channel-binding flag in client-first-message.",
            ))
        }
    };
    let authzid_end = match msg.get(header_end) {
        Some(b',') => header_end,
        Some(b'a') => {
            return Err(PgError::fatal(
                SqlState::FEATURE_NOT_SUPPORTED,
                "client uses authorization identity, but it is not supported",
            ))
        }
        _ => return Err(malformed("Unexpected attribute in client-first-message.")),
    };
    let (gs2_header, bare) = msg.split_at(authzid_end + 1);
    let mut parts = bare.split(|&c| c == b',');
    let first = parts.next();
    if first.is_some_and(|p| p.starts_with(b"m=")) {
        return Err(PgError::fatal(
            SqlState::FEATURE_NOT_SUPPORTED,
            "client requires an unsupported SCRAM extension",
        ));
    }
    // The user name is ignored: PostgreSQL authenticates the startup packet's user.
    attribute(first, b'n', "client-first-message")?;
    let nonce = attribute(parts.next(), b'r', "client-first-message")?;
    if !is_printable_nonce(nonce) {
        return Err(malformed(
            "Client nonce is empty or contains non-printable characters.",
        ));
    }
    // Optional extensions after the nonce are ignored, as PostgreSQL does.
    for ext in parts {
        if !matches!(ext, [a, b'=', ..] if a.is_ascii_alphabetic()) {
            return Err(malformed("Malformed attribute in client-first-message."));
        }
    }
    Ok((gs2_header, bare, nonce))
}

/// client-final-message = c=..,r=..[,extensions],p=... Returns
/// (client-final-message-without-proof, proof).
fn parse_client_final<'m>(
    msg: &'m [u8],
    gs2_header: &[u8],
    nonce: &[u8],
) -> PgResult<(&'m [u8], [u8; KEY_BYTES])> {
    let proof_at = msg
        .windows(3)
        .rposition(|w| w == b",p=")
        .ok_or_else(|| malformed("Could not find proof in client-final-message."))?;
    let (without_proof, proof) = msg.split_at(proof_at);
    let mut parts = without_proof.split(|&c| c == b',');
    let binding = attribute(parts.next(), b'c', "client-final-message")?;
    let binding = BASE64
        .decode(binding)
        .map_err(|_| malformed("Channel binding data is not base64."))?;
    if binding != gs2_header {
        return Err(PgError::fatal(
            SqlState::PROTOCOL_VIOLATION,
            "SCRAM channel binding check failed",
        ));
    }
    let client_nonce = attribute(parts.next(), b'r', "client-final-message")?;
    if !constant_time_eq(client_nonce, nonce) {
        return Err(malformed("Nonce does not match."));
    }
    for ext in parts {
        if !matches!(ext, [a, b'=', ..] if a.is_ascii_alphabetic()) {
            return Err(malformed("Malformed attribute in client-final-message."));
        }
    }
    let proof = BASE64
        .decode(&proof[3..])
        .ok()
        .and_then(|p| <[u8; KEY_BYTES]>::try_from(p).ok())
        .ok_or_else(|| malformed("Malformed proof in client-final-message."))?;
    Ok((without_proof, proof))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3.
    const CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &[u8] =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_verifier() -> ScramVerifier {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        ScramVerifier::from_password("pencil", &salt, 4096)
    }

    fn rfc_server(verifier: ScramVerifier) -> ScramServer {
        ScramServer::with_printable_nonce(verifier, SERVER_NONCE, "user").expect("printable nonce")
    }

    fn code(result: PgResult<Vec<u8>>) -> &'static str {
        match result {
            Ok(m) => panic!("accepted: {}", String::from_utf8_lossy(&m)),
            Err(e) => {
                assert!(e.is_fatal(), "{e}");
                e.code.code()
            }
        }
    }

    #[test]
    fn rfc7677_vector() {
        let mut server = rfc_server(rfc_verifier());
        assert_eq!(
            server.client_first(CLIENT_FIRST).expect("first"),
            SERVER_FIRST
        );
        assert!(!server.is_authenticated());
        assert_eq!(
            server.client_final(CLIENT_FINAL).expect("final"),
            SERVER_FINAL
        );
        assert!(server.is_authenticated());
        // Nothing more is accepted afterwards.
        assert_eq!(code(server.client_final(CLIENT_FINAL)), "08P01");
        assert_eq!(code(server.client_first(CLIENT_FIRST)), "08P01");
    }

    #[test]
    fn verifier_text_form_round_trips() {
        let v = rfc_verifier();
        let text = v.to_string();
        assert!(
            text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"),
            "{text}"
        );
        assert_eq!(ScramVerifier::parse(&text), Ok(v.clone()));
        assert_eq!(text.parse::<ScramVerifier>(), Ok(v.clone()));
        assert!(!format!("{v:?}").contains(&BASE64.encode(v.stored_key)));
    }

    #[test]
    fn verifiers_match_secrets_postgres_15_stored() {
        // `rolpassword` of roles created by PostgreSQL 15.18 with
        // password_encryption = scram-sha-256.
        let stored = [
            ("pencil", "SCRAM-SHA-256$4096:xqaFTZVbXjs5IkZVNrBw4g==$BiUf/jxsUWuslmiGsQt9s11kSxnFWTJ9GKbPVJQLsNU=:5ppFFLsoBMQxLjfbbpQq6iWJozXMSWNOqT06EuZLLR8="),
            ("correct horse battery staple", "SCRAM-SHA-256$4096:xKOecep5esGcq+MXUqoNrg==$VywAblV9PXXlXjWBp0E4E0mlC7cDANrIirDYFJ8Y8Dc=:EOkkdSRFLMfEi6eb33k4kwwHBT6++JPTlAidxyX9t8c="),
            ("p@$$w0rd!:,=", "SCRAM-SHA-256$4096:387CigiaFKYBv3h+3CkYlw==$tf9FwmZx0cwR72ANRy0cPA04ntQpCzIrYLkZTHExozc=:4EUsLZV5D52caQDXEqpIzCWQuvUQDdo0cAA1p2uHPcU="),
        ];
        for (password, secret) in stored {
            let parsed = ScramVerifier::parse(secret).expect("postgres secret parses");
            let derived = ScramVerifier::from_password(password, &parsed.salt, parsed.iterations);
            assert_eq!(derived, parsed, "{password}");
            assert_eq!(derived.to_string(), secret);
        }
    }

    #[test]
    fn malformed_verifiers_are_refused() {
        let good = rfc_verifier().to_string();
        let (head, keys) = good.rsplit_once('$').expect("keys");
        let (stored, server) = keys.split_once(':').expect("two keys");
        for bad in [
            String::new(),
            "md5abcdef".into(),
            good.replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
            good.replace("4096:", "0:"),
            good.replace("4096:", "x:"),
            good.replace("4096:", "4096"),
            head.to_string(),
            format!("{head}${stored}"),
            format!("{head}${stored}:{}", &server[4..]),
            format!("{head}$!!!!:{server}"),
            good.replace("W22ZaJ0SNY7soEsUEjb6gQ==", ""),
            good.replace("W22ZaJ0SNY7soEsUEjb6gQ==", "%%%"),
        ] {
            let e = ScramVerifier::parse(&bad).expect_err(&bad);
            assert_eq!(e.code, SqlState::INVALID_PARAMETER_VALUE, "{bad}");
        }
    }

    #[test]
    fn wrong_password_fails_at_the_proof() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let mut server = rfc_server(ScramVerifier::from_password("pencil2", &salt, 4096));
        assert_eq!(
            server.client_first(CLIENT_FIRST).expect("first"),
            SERVER_FIRST
        );
        let e = server
            .client_final(CLIENT_FINAL)
            .expect_err("wrong password");
        assert_eq!(e.code, SqlState::INVALID_PASSWORD);
        assert_eq!(
            e.message,
            "password authentication failed for user \"user\""
        );
        assert!(e.is_fatal());
        assert!(!server.is_authenticated());
        assert_eq!(code(server.client_final(CLIENT_FINAL)), "08P01");
    }

    #[test]
    fn tampered_proof_fails() {
        let mut server = rfc_server(rfc_verifier());
        server.client_first(CLIENT_FIRST).expect("first");
        let tampered = String::from_utf8(CLIENT_FINAL.to_vec())
            .expect("ascii")
            .replace("p=dH", "p=dI");
        assert_eq!(code(server.client_final(tampered.as_bytes())), "28P01");
    }

    #[test]
    fn unknown_users_get_a_stable_mock_and_fail_at_the_proof() {
        let a = mock_verifier("alice", b"server secret");
        assert_eq!(a, mock_verifier("alice", b"server secret"));
        assert_ne!(a.salt, mock_verifier("bob", b"server secret").salt);
        assert_ne!(a.salt, mock_verifier("alice", b"other secret").salt);
        assert_eq!(a.salt.len(), SALT_BYTES);
        assert_eq!(a.iterations, ITERATIONS_DEFAULT);
        let mut server = ScramServer::new(a, &[7; SERVER_NONCE_BYTES], "alice");
        let first = server.client_first(b"n,,n=,r=abc").expect("first");
        let first = String::from_utf8(first).expect("ascii");
        assert!(
            first.starts_with("r=abc") && first.ends_with(",i=4096"),
            "{first}"
        );
        // The client answers with some proof; it must fail like a wrong password.
        let nonce = &first[2..first.find(",s=").expect("salt")];
        let proof = BASE64.encode([0u8; 32]);
        let e = server
            .client_final(format!("c=biws,r={nonce},p={proof}").as_bytes())
            .expect_err("no password matches a mock");
        assert_eq!(e.code, SqlState::INVALID_PASSWORD);
        assert_eq!(
            e.message,
            "password authentication failed for user \"alice\""
        );
    }

    #[test]
    fn server_nonce_is_base64_of_the_callers_bytes() {
        let mut server = ScramServer::new(rfc_verifier(), &[0xff; 3], "user");
        let first = server.client_first(b"y,,n=x,r=c").expect("first");
        assert!(
            first.starts_with(b"r=c////,s="),
            "{}",
            String::from_utf8_lossy(&first)
        );
        assert!(ScramServer::with_printable_nonce(rfc_verifier(), "a,b", "u").is_err());
        assert!(ScramServer::with_printable_nonce(rfc_verifier(), "", "u").is_err());
    }

    #[test]
    fn client_first_flags_and_malformed_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"p=tls-server-end-point,,n=,r=abc", "08P01"),
            (b"n,a=admin,n=,r=abc", "0A000"),
            (b"n,,m=ext,n=,r=abc", "0A000"),
            (b"", "08P01"),
            (b"x,,n=,r=abc", "08P01"),
            (b"n", "08P01"),
            (b"n,", "08P01"),
            (b"n,,", "08P01"),
            (b"n,,r=abc", "08P01"),
            (b"n,,n=,", "08P01"),
            (b"n,,n=,r=", "08P01"),
            (b"n,,n=,x=abc", "08P01"),
            (b"n,,n=,r=a\x01b", "08P01"),
            (b"n,,n=,r=ab\xffc", "08P01"),
            (b"n,,n=,r=abc,", "08P01"),
            (b"n,,n=,r=abc,=x", "08P01"),
            (b"nn,,n=,r=abc", "08P01"),
        ];
        for &(msg, expected) in cases {
            let mut server = rfc_server(rfc_verifier());
            assert_eq!(
                code(server.client_first(msg)),
                expected,
                "{}",
                String::from_utf8_lossy(msg)
            );
            // A refused exchange stays refused.
            assert_eq!(code(server.client_first(CLIENT_FIRST)), "08P01");
        }
        // Extensions after the nonce and any user name are accepted.
        let mut server = rfc_server(rfc_verifier());
        server
            .client_first(b"y,,n=someone=2Celse,r=abc,x=ext")
            .expect("accepted");
    }

    #[test]
    fn client_final_malformed_messages() {
        let good = String::from_utf8(CLIENT_FINAL.to_vec()).expect("ascii");
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "08P01"),
            (format!("c=biws,r={nonce}"), "08P01"),
            (format!("c=eSws,r={nonce},p={proof}"), "08P01"),
            (
                format!("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r={nonce},p={proof}"),
                "08P01",
            ),
            (format!("c=!!!,r={nonce},p={proof}"), "08P01"),
            (format!("r={nonce},c=biws,p={proof}"), "08P01"),
            (format!("c=biws,r={nonce}x,p={proof}"), "08P01"),
            (format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,p={proof}"), "08P01"),
            (format!("c=biws,r={nonce},p=dHzb"), "08P01"),
            (format!("c=biws,r={nonce},p=***"), "08P01"),
            (format!("c=biws,r={nonce},p="), "08P01"),
            (format!("c=biws,r={nonce},p={proof},x=1"), "08P01"),
            (format!("c=biws,r={nonce},,p={proof}"), "08P01"),
            (format!("c=biws,p={proof}"), "08P01"),
            (good.replace("c=biws", "c=biws,c=biws"), "08P01"),
        ];
        for (msg, expected) in cases {
            let mut server = rfc_server(rfc_verifier());
            server.client_first(CLIENT_FIRST).expect("first");
            assert_eq!(code(server.client_final(msg.as_bytes())), expected, "{msg}");
            assert_eq!(
                code(server.client_final(CLIENT_FINAL)),
                "08P01",
                "after {msg}"
            );
        }
        // An extension between the nonce and the proof is part of the signed text.
        let mut server = rfc_server(rfc_verifier());
        server.client_first(CLIENT_FIRST).expect("first");
        let with_ext = good.replace(",p=", ",x=1,p=");
        assert_eq!(code(server.client_final(with_ext.as_bytes())), "28P01");
    }

    #[test]
    fn y_flag_binding_must_match_its_header() {
        // A client that sent "y,," must echo "y,," (base64 "eSws") in c=.
        let mut server = rfc_server(rfc_verifier());
        server
            .client_first(b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .expect("first");
        assert_eq!(code(server.client_final(CLIENT_FINAL)), "08P01");
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut server = rfc_server(rfc_verifier());
        assert_eq!(code(server.client_final(CLIENT_FINAL)), "08P01");
        assert_eq!(code(server.client_first(CLIENT_FIRST)), "08P01");
        let mut server = rfc_server(rfc_verifier());
        server.client_first(CLIENT_FIRST).expect("first");
        assert_eq!(code(server.client_first(CLIENT_FIRST)), "08P01");
        assert_eq!(code(server.client_final(CLIENT_FINAL)), "08P01");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: [&[u8]; 12] = [
            b"n", b"y", b"p=", b",", b"a=", b"n=", b"r=", b"c=", b"p=", b"biws", b"=", b"\xff",
        ];
        let verifier = rfc_verifier();
        for _ in 0..5000 {
            let mut msg = Vec::new();
            for _ in 0..next() % 8 {
                msg.extend_from_slice(pieces[(next() % 12) as usize]);
            }
            let mut server = rfc_server(verifier.clone());
            let _ = server.client_first(&msg);
            let _ = server.client_final(&msg);
            let mut server = rfc_server(verifier.clone());
            if server.client_first(CLIENT_FIRST).is_ok() {
                let mut fin = CLIENT_FINAL.to_vec();
                let cut = (next() as usize) % fin.len();
                fin.truncate(cut);
                fin.extend_from_slice(&msg);
                let verdict = server.client_final(&fin);
                assert!(fin == CLIENT_FINAL || verdict.is_err());
            }
        }
    }
}
