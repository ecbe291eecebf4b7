use bytes::Bytes;

use super::*;
use crate::encoding::key::index_prefix;

#[test]
fn spans_are_half_open() {
    let span = Span::new(&b"b"[..], &b"d"[..]);
    assert!(!span.contains(b"a"));
    assert!(span.contains(b"b"));
    assert!(span.contains(b"c\xff"));
    assert!(!span.contains(b"d"));
    assert!(!span.is_empty());
    assert!(Span::new(&b"d"[..], &b"d"[..]).is_empty());
    assert!(Span::new(&b"e"[..], &b"d"[..]).is_empty());

    let point = Span::point(b"k");
    assert!(point.contains(b"k"));
    assert!(!point.contains(b"k\0"));

    let prefix = Span::prefix(&index_prefix(52, 1));
    assert!(prefix.contains(&[52, 1]));
    assert!(prefix.contains(&[52, 1, 0xFF, 0xFF]));
    assert!(!prefix.contains(&[52, 2]));
    assert!(!prefix.contains(&[52, 0, 0xFF]));

    let all = Span::prefix(b"");
    assert_eq!(all.end, None);
    assert!(all.contains(&[0xFF; 9]));
    assert!(Span::from_key(&b"x"[..]).contains(&[0xFF]));
    assert_eq!(
        format!("{:?}", Span::prefix(&[52, 1])),
        "[/Table/52/1, /Table/52/2)"
    );
}

#[test]
fn errors_map_to_sqlstates() {
    let key = Bytes::from(index_prefix(52, 1));
    let cases = [
        (
            KvError::ConditionFailed {
                index: 0,
                key: key.clone(),
                actual: Some(Bytes::from_static(b"v")),
            },
            "23505",
        ),
        (
            KvError::Retry {
                reason: RetryReason::WriteConflict,
                key: Some(key.clone()),
            },
            "40001",
        ),
        (KvError::Deadlock { key: None }, "40P01"),
        (KvError::LockTimeout { key: key.clone() }, "55P03"),
        (KvError::ReadOnly, "25006"),
        (
            KvError::Unavailable("range 7 has no leaseholder".into()),
            "58000",
        ),
        (KvError::Io("EIO".into()), "58030"),
        (KvError::Corrupt("bad block".into()), "XX001"),
        (KvError::Internal("empty span".into()), "XX000"),
    ];
    for (error, code) in cases {
        let pg = error.to_pg_error();
        assert_eq!(pg.code.code(), code, "{error:?}");
        let retryable = matches!(code, "40001" | "40P01");
        assert_eq!(error.is_retryable(), retryable, "{error:?}");
    }
    let pg = KvError::Retry {
        reason: RetryReason::WriteConflict,
        key: Some(key),
    }
    .to_pg_error();
    assert_eq!(pg.detail.as_deref(), Some("key /Table/52/1"));
    assert!(
        pg.message.contains("write-write conflict"),
        "{}",
        pg.message
    );
}

#[test]
fn batch_validation() {
    let mut batch = Batch::new();
    batch.get(&b"a"[..]).put(&b"a"[..], &b"1"[..]);
    assert_eq!(batch.len(), 2);
    assert!(batch.has_writes());
    assert!(batch.validate().is_ok());
    batch.scan(ScanRequest::new(Span::new(&b"b"[..], &b"a"[..])));
    assert!(matches!(batch.validate(), Err(KvError::Internal(_))));
    let mut big = Batch::new();
    for _ in 0..=BATCH_REQUESTS_MAX {
        big.get(Bytes::new());
    }
    assert!(matches!(big.validate(), Err(KvError::Internal(_))));
}

#[test]
fn range_descriptions_must_tile_the_span() {
    let r = |id: u64, start: &'static [u8], end: Option<&'static [u8]>| RangeDescription {
        range_id: id,
        span: Span {
            start: Bytes::from_static(start),
            end: end.map(Bytes::from_static),
        },
        shard: 0,
        generation: 0,
        approx_bytes: None,
    };
    let all = Span::from_key(Bytes::new());
    let tiles = [
        r(1, b"", Some(b"f")),
        r(2, b"f", Some(b"p")),
        r(3, b"p", None),
    ];
    assert_eq!(check_tiling(&tiles, &all), Ok(()));
    assert_eq!(
        check_tiling(&tiles[1..2], &Span::new(&b"g"[..], &b"h"[..])),
        Ok(())
    );
    assert!(check_tiling(&tiles[1..], &all).is_err(), "starts late");
    assert!(check_tiling(&tiles[..2], &all).is_err(), "ends early");
    assert!(
        check_tiling(&[tiles[0].clone(), tiles[2].clone()], &all).is_err(),
        "hole"
    );
    assert!(check_tiling(&[], &all).is_err(), "nothing");

    assert!(spans_overlap(&tiles[0].span, &all));
    assert!(spans_overlap(
        &tiles[1].span,
        &Span::new(&b"a"[..], &b"g"[..])
    ));
    assert!(!spans_overlap(
        &tiles[1].span,
        &Span::new(&b"a"[..], &b"f"[..])
    ));
    assert!(!spans_overlap(&tiles[1].span, &Span::from_key(&b"p"[..])));
    assert!(spans_overlap(&tiles[2].span, &Span::from_key(&b"x"[..])));
    assert!(
        !spans_overlap(&Span::new(&b"x"[..], &b"x"[..]), &all),
        "empty"
    );
}
