//! SCRAM-SHA-256 server side (RFC 5802, RFC 7677). (Placeholder; being written.)

use crate::error::{PgError, PgResult};

/// A stored SCRAM-SHA-256 verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramVerifier;

impl ScramVerifier {
    pub fn parse(_text: &str) -> PgResult<ScramVerifier> {
        Err(PgError::unsupported("SCRAM placeholder"))
    }

    pub fn from_password(_password: &str, _salt: &[u8], _iterations: u32) -> ScramVerifier {
        ScramVerifier
    }
}

pub fn mock_verifier(_user: &str, _secret: &[u8]) -> ScramVerifier {
    ScramVerifier
}

pub struct ScramServer;

impl ScramServer {
    pub fn new(_verifier: ScramVerifier, _user: &str, _nonce: &[u8]) -> ScramServer {
        ScramServer
    }
    pub fn client_first(&mut self, _msg: &[u8]) -> PgResult<Vec<u8>> {
        Err(PgError::unsupported("SCRAM placeholder"))
    }
    pub fn client_final(&mut self, _msg: &[u8]) -> PgResult<Vec<u8>> {
        Err(PgError::unsupported("SCRAM placeholder"))
    }
}
