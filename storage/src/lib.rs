//! teller-storage
