//! teller-raft
