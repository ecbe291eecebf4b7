//! teller-node
