//! SCRAM-SHA-256 server side (RFC 5802, RFC 7677). (Placeholder; being written.)
