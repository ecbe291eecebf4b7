//! Small helpers over the [`crate::kv`] API used by the catalog and the
//! executor: scanning spans to their end (following resume spans) in as few
//! batches as possible.

use crate::kv::{Batch, KeyValue, KvTxn, Response, ScanRequest, Span};
use teller_net::{PgError, PgResult};

/// Most batches one [`scan_spans`] call sends before giving up; each must
/// make progress, so this bounds a misbehaving engine, not real data.
pub const SCAN_BATCHES_MAX: usize = 1_000_000;

/// Scans every span to its end; all spans go in each batch until done.
pub async fn scan_spans<T: KvTxn>(txn: &mut T, spans: Vec<Span>) -> PgResult<Vec<Vec<KeyValue>>> {
    let mut out: Vec<Vec<KeyValue>> = vec![Vec::new(); spans.len()];
    let mut pending: Vec<(usize, Span)> = spans.into_iter().enumerate().collect();
    let mut batches = 0;
    while !pending.is_empty() {
        batches += 1;
        if batches > SCAN_BATCHES_MAX {
            return Err(PgError::internal("scan does not make progress"));
        }
        let mut batch = Batch::new();
        for (_, span) in &pending {
            batch.scan(ScanRequest::new(span.clone()));
        }
        let response = txn.batch(batch).await?;
        let mut next = Vec::new();
        for ((which, _), answer) in pending.iter().zip(response.responses) {
            let Response::Scan(scan) = answer else {
                return Err(PgError::internal("a scan was answered with something else"));
            };
            out[*which].extend(scan.rows);
            if let Some(resume) = scan.resume {
                next.push((*which, resume));
            }
        }
        pending = next;
    }
    Ok(out)
}
