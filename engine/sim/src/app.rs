//! The replicated application: an append-only list of values with
//! per-client deduplication, so a retried append lands exactly once.

use std::collections::BTreeMap;

/// A value appended by a client: `(client, seq)` packed into a u64.
pub fn encode_op(client: u32, seq: u32) -> Vec<u8> {
    ((u64::from(client) << 32) | u64::from(seq))
        .to_le_bytes()
        .to_vec()
}

pub fn decode_op(data: &[u8]) -> Option<(u32, u32)> {
    let bytes: [u8; 8] = data.try_into().ok()?;
    let v = u64::from_le_bytes(bytes);
    Some(((v >> 32) as u32, v as u32))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct App {
    /// The replicated list, as `(client, seq)` pairs.
    pub list: Vec<(u32, u32)>,
    /// Highest seq applied per client (the dedup table).
    pub last_seq: BTreeMap<u32, u32>,
}

impl App {
    /// Applies one normal entry's payload. Returns false if it was a
    /// duplicate of an already applied op.
    pub fn apply(&mut self, data: &[u8]) -> bool {
        let (client, seq) = decode_op(data).expect("sim payloads are ops");
        let last = self.last_seq.entry(client).or_insert(0);
        if seq <= *last {
            return false;
        }
        assert_eq!(
            seq,
            *last + 1,
            "client {client} skipped a seq: {} -> {seq}",
            *last
        );
        *last = seq;
        self.list.push((client, seq));
        true
    }

    pub fn contains(&self, client: u32, seq: u32) -> bool {
        self.last_seq.get(&client).is_some_and(|&s| s >= seq)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * (self.list.len() + 1));
        out.extend_from_slice(&(self.list.len() as u64).to_le_bytes());
        for &(c, s) in &self.list {
            out.extend_from_slice(&encode_op(c, s));
        }
        out
    }

    pub fn decode(data: &[u8]) -> App {
        let mut app = App::default();
        if data.is_empty() {
            return app;
        }
        let word =
            |i: usize| u64::from_le_bytes(data[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        let n = word(0) as usize;
        for i in 0..n {
            let (c, s) = decode_op(&data[8 * (i + 1)..8 * (i + 2)]).expect("op");
            assert!(app.apply(&encode_op(c, s)), "snapshot holds a duplicate");
        }
        app
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_and_round_trips() {
        let mut app = App::default();
        assert!(app.apply(&encode_op(1, 1)));
        assert!(app.apply(&encode_op(2, 1)));
        assert!(!app.apply(&encode_op(1, 1)));
        assert!(app.apply(&encode_op(1, 2)));
        assert_eq!(App::decode(&app.encode()), app);
        assert!(app.contains(1, 2) && !app.contains(2, 2));
    }
}
