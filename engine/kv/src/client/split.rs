//! Splitting a transaction's batch by range, and putting the answers back
//! together in request order.
//!
//! - Point requests go to the range of their key.
//! - A scan without caller limits, and a delete-range, is cut at range
//!   boundaries; the pieces run concurrently and a scan's rows are
//!   concatenated in scan order, stopping at the first piece that stopped
//!   early (its resume span becomes the whole scan's).
//! - A scan with caller limits runs on the first range in scan order only;
//!   when it ends without hitting a limit the rest of the span comes back as
//!   the resume span (the contract allows the engine to stop early).

use std::collections::BTreeMap;

use crate::api::{Request, Response, ScanRequest, ScanResponse};
use crate::error::KvError;
use crate::keys::Span;
use crate::replica::RangeDesc;
use crate::transport::Transport;

/// Ranges more than this in one request's span are refused (a runaway
/// routing loop would be a bug).
const PIECES_MAX: usize = 100_000;

/// One range's piece of a request.
pub(crate) struct Piece {
    pub desc: RangeDesc,
    pub request: Request,
}

/// The ranges overlapping `span`, in key order, with `span` cut to each.
pub(crate) fn cut(
    transport: &dyn Transport,
    span: &Span,
) -> Result<Vec<(RangeDesc, Span)>, KvError> {
    let mut out = Vec::new();
    let mut start = span.start.clone();
    loop {
        let desc = transport.route(&start)?;
        let piece = Span {
            start: start.clone(),
            end: span.end.clone(),
        }
        .intersect(&desc.span)
        .ok_or_else(|| KvError::Internal(format!("route of {start:?} returned {desc:?}")))?;
        out.push((desc.clone(), piece));
        if out.len() > PIECES_MAX {
            return Err(KvError::Internal(format!(
                "span {span:?} over more than {PIECES_MAX} ranges"
            )));
        }
        match &desc.span.end {
            Some(end) if span.end.as_ref().is_none_or(|e| end < e) => start = end.clone(),
            _ => return Ok(out),
        }
    }
}

/// The pieces of `request`.
pub(crate) fn pieces(transport: &dyn Transport, request: &Request) -> Result<Vec<Piece>, KvError> {
    match request {
        Request::Scan(scan) => {
            let mut cuts = cut(transport, &scan.span)?;
            if !scan.is_splittable() {
                let keep = if scan.reverse { cuts.len() - 1 } else { 0 };
                cuts = vec![cuts.swap_remove(keep)];
            }
            Ok(cuts
                .into_iter()
                .map(|(desc, span)| Piece {
                    desc,
                    request: Request::Scan(ScanRequest {
                        span,
                        ..scan.clone()
                    }),
                })
                .collect())
        }
        Request::DeleteRange { span } => Ok(cut(transport, span)?
            .into_iter()
            .map(|(desc, span)| Piece {
                desc,
                request: Request::DeleteRange { span },
            })
            .collect()),
        other => Ok(vec![Piece {
            desc: transport.route(&other.first_key())?,
            request: other.clone(),
        }]),
    }
}

/// The answer to `request` from the answers to its pieces (in piece order).
pub(crate) fn merge(
    request: &Request,
    pieces: &[Piece],
    answers: Vec<Response>,
) -> Result<Response, KvError> {
    let Request::Scan(scan) = request else {
        return answers
            .into_iter()
            .next()
            .ok_or_else(|| KvError::Internal("request without an answer".into()))
            .map(|r| match r {
                Response::Written => Response::Written,
                other => other,
            });
    };
    let mut parts: Vec<(&Span, ScanResponse)> = Vec::with_capacity(answers.len());
    for (piece, answer) in pieces.iter().zip(answers) {
        let Request::Scan(piece_scan) = &piece.request else {
            return Err(KvError::Internal("scan piece is not a scan".into()));
        };
        match answer {
            Response::Scan(s) => parts.push((&piece_scan.span, s)),
            other => return Err(KvError::Internal(format!("scan answered {other:?}"))),
        }
    }
    if scan.reverse {
        parts.reverse();
    }
    let mut rows = Vec::new();
    let mut resume = None;
    let count = parts.len();
    for (i, (piece_span, part)) in parts.into_iter().enumerate() {
        rows.extend(part.rows);
        if let Some(r) = part.resume {
            resume = Some(if scan.reverse {
                Span {
                    start: scan.span.start.clone(),
                    end: r.end,
                }
            } else {
                Span {
                    start: r.start,
                    end: scan.span.end.clone(),
                }
            });
            break;
        }
        if i + 1 == count {
            // The last piece ran to its end: anything of the span beyond it
            // was not sent (a limited scan runs on one range).
            let rest = if scan.reverse {
                Span {
                    start: scan.span.start.clone(),
                    end: Some(piece_span.start.clone()),
                }
            } else {
                match &piece_span.end {
                    Some(end) => Span {
                        start: end.clone(),
                        end: scan.span.end.clone(),
                    },
                    None => Span {
                        start: scan.span.start.clone(),
                        end: Some(scan.span.start.clone()),
                    },
                }
            };
            if !rest.is_empty() && scan.span.covers(&rest) && rest != scan.span {
                resume = Some(rest);
            }
        }
    }
    Ok(Response::Scan(ScanResponse { rows, resume }))
}

/// Merges tracked spans into at most `max` spans: sorted, overlapping and
/// adjacent spans joined, then neighbours joined (conservatively covering
/// the keys between them) until few enough remain.
pub(crate) fn condense(spans: &mut Vec<Span>, max: usize) {
    spans.sort_by(|a, b| a.start.cmp(&b.start));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans.drain(..) {
        match merged.last_mut() {
            Some(last) if last.end.as_ref().is_none_or(|e| s.start <= *e) => *last = last.union(&s),
            _ => merged.push(s),
        }
    }
    while merged.len() > max {
        let mut joined = Vec::with_capacity(merged.len() / 2 + 1);
        let mut it = merged.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => joined.push(a.union(&b)),
                None => joined.push(a),
            }
        }
        merged = joined;
    }
    *spans = merged;
}

/// Range pieces grouped by range, in first-appearance order: for each range,
/// its descriptor and `(request index, piece index)` of each piece.
pub(crate) type Groups = BTreeMap<u64, (RangeDesc, Vec<(usize, usize)>)>;

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(a: &str, b: &str) -> Span {
        Span::new(
            Bytes::copy_from_slice(a.as_bytes()),
            Bytes::copy_from_slice(b.as_bytes()),
        )
    }

    #[test]
    fn condense_merges_and_bounds() {
        let mut spans = vec![
            s("a", "c"),
            s("b", "d"),
            s("x", "y"),
            s("m", "n"),
            s("d", "e"),
        ];
        condense(&mut spans, 10);
        assert_eq!(spans, vec![s("a", "e"), s("m", "n"), s("x", "y")]);
        condense(&mut spans, 2);
        assert!(spans.len() <= 2);
        assert!(
            spans.iter().any(|sp| sp.contains(b"a")) && spans.iter().any(|sp| sp.contains(b"x"))
        );
    }
}
