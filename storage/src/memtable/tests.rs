//! Memtable tests, chiefly a seeded comparison against a `BTreeMap` model.

use super::*;
use std::cmp::Reverse;
use std::collections::BTreeMap;

type Model = BTreeMap<(Vec<u8>, Reverse<Timestamp>), Option<Vec<u8>>>;

/// Small timestamps with a shared wall part, so logical order is exercised too.
fn ts(n: u64) -> Timestamp {
    Timestamp::new(n / 4, (n % 4) as u32)
}

fn owned(e: Entry<'_>) -> (Vec<u8>, Timestamp, Option<Vec<u8>>) {
    let value = match e.value {
        Value::Put(v) => Some(v.to_vec()),
        Value::Delete => None,
    };
    (e.key.to_vec(), e.ts, value)
}

fn model_entries<'a>(
    it: impl Iterator<Item = (&'a (Vec<u8>, Reverse<Timestamp>), &'a Option<Vec<u8>>)>,
) -> Vec<(Vec<u8>, Timestamp, Option<Vec<u8>>)> {
    it.map(|((k, Reverse(ts)), v)| (k.clone(), *ts, v.clone()))
        .collect()
}

fn model_get(
    model: &Model,
    key: &[u8],
    read_ts: Timestamp,
) -> Option<(Vec<u8>, Timestamp, Option<Vec<u8>>)> {
    let from = (key.to_vec(), Reverse(read_ts));
    let ((k, Reverse(ts)), v) = model.range(from..).next()?;
    (k == key).then(|| (k.clone(), *ts, v.clone()))
}

fn random_key(rng: &mut SimRng) -> Vec<u8> {
    // A small alphabet and short keys: many shared prefixes and many versions per key.
    let len = rng.below(4) as usize;
    (0..len).map(|_| b'a' + rng.below(4) as u8).collect()
}

#[test]
fn matches_btreemap_model() {
    for seed in 0..120 {
        let mut rng = SimRng::new(seed);
        let mut mt = Memtable::new(MEMTABLE_BYTES_DEFAULT, seed);
        let mut model = Model::new();
        for _ in 0..rng.range(1, 400) {
            let key = random_key(&mut rng);
            let at = ts(rng.below(50));
            let value = rng.chance(80).then(|| {
                let mut v = vec![0; rng.below(20) as usize];
                rng.fill(&mut v);
                v
            });
            let v = value.as_deref().map_or(Value::Delete, Value::Put);
            // Writing an existing (key, ts) again replaces its value.
            assert_eq!(mt.insert(&key, at, v), Ok(()), "seed {seed}");
            model.insert((key.clone(), Reverse(at)), value);
            if rng.chance(3) {
                let (a, b) = (random_key(&mut rng), random_key(&mut rng));
                let erased = mt.delete_range(&a, &b);
                let before = model.len();
                model.retain(|(k, _), _| {
                    !(a.as_slice() <= k.as_slice() && k.as_slice() < b.as_slice())
                });
                assert_eq!(erased, before - model.len(), "seed {seed}: erased");
                if a < b {
                    assert!(mt.range_dels().covers(&a), "seed {seed}");
                }
            }
            if rng.chance(10) {
                let (key, read_ts) = (random_key(&mut rng), ts(rng.below(60)));
                assert_eq!(
                    mt.get(&key, read_ts).map(owned),
                    model_get(&model, &key, read_ts),
                    "seed {seed}"
                );
            }
        }
        mt.assert_invariants();
        assert_eq!(mt.len(), model.len());
        let mut back = Vec::new();
        let mut c = Cursor::last(&mt);
        while let Some(e) = c.entry(&mt) {
            back.push(owned(e));
            c.retreat(&mt);
        }
        back.reverse();
        assert_eq!(back, model_entries(model.iter()), "seed {seed}: backwards");
        assert_eq!(
            mt.iter().map(owned).collect::<Vec<_>>(),
            model_entries(model.iter()),
            "seed {seed}"
        );
        for _ in 0..50 {
            let (key, at) = (random_key(&mut rng), ts(rng.below(60)));
            let got: Vec<_> = mt.seek(&key, at).map(owned).collect();
            let want = model_entries(model.range((key.clone(), Reverse(at))..));
            assert_eq!(got, want, "seed {seed}: seek");
            let before = Cursor::seek_before(&mt, &key, at).entry(&mt).map(owned);
            let want = model_entries(model.range(..(key.clone(), Reverse(at)))).pop();
            assert_eq!(before, want, "seed {seed}: seek_before");
            let read_ts = ts(rng.below(60));
            let visible: Vec<_> = mt.scan_at(&key, read_ts).map(owned).collect();
            let mut want = Vec::new();
            for ((k, Reverse(t)), v) in model.range((key.clone(), Reverse(Timestamp::MAX))..) {
                let newer_seen = want
                    .last()
                    .is_some_and(|(wk, _, _): &(Vec<u8>, Timestamp, _)| wk == k);
                if *t <= read_ts && !newer_seen {
                    want.push((k.clone(), *t, v.clone()));
                }
            }
            assert_eq!(visible, want, "seed {seed}: scan_at");
        }
    }
}

#[test]
fn cursor_survives_concurrent_inserts() {
    let mut rng = SimRng::new(42);
    let mut mt = Memtable::new(MEMTABLE_BYTES_DEFAULT, 42);
    for i in 0..100u64 {
        mt.insert(format!("k{:03}", i * 2).as_bytes(), ts(1), Value::Put(b"v"))
            .unwrap();
    }
    let mut cursor = Cursor::seek(&mt, b"k050", Timestamp::MAX);
    let mut seen = Vec::new();
    while let Some(e) = cursor.entry(&mt) {
        seen.push(e.key.to_vec());
        cursor.advance(&mt);
        // The writer inserts between reader steps, before and after the cursor.
        let k = rng.below(400);
        let _ = mt.insert(
            format!("k{k:03}").as_bytes(),
            ts(1 + rng.below(3)),
            Value::Put(b"w"),
        );
    }
    mt.assert_invariants();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "cursor order broken");
    assert_eq!(seen.first().map(Vec::as_slice), Some(&b"k050"[..]));
    assert!(
        seen.len() >= 75,
        "entries after k050 missed: {}",
        seen.len()
    );
}

#[test]
fn size_bound_and_freeze() {
    let mut mt = Memtable::new(4096, 1);
    let mut inserted = 0;
    let full = loop {
        match mt.insert(
            format!("key{inserted}").as_bytes(),
            ts(7),
            Value::Put(&[1; 100]),
        ) {
            Ok(()) => inserted += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(full, MemtableError::Full { .. }), "{full}");
    assert!(mt.approximate_bytes() <= 4096);
    assert!(inserted > 10, "{inserted}");
    let too_big = mt.insert(&vec![0; KEY_BYTES_MAX + 1], ts(1), Value::Delete);
    assert!(matches!(too_big, Err(MemtableError::TooLarge { .. })));
    mt.freeze();
    assert!(mt.is_frozen());
    assert_eq!(mt.get(b"key3", ts(7)).map(|e| e.ts), Some(ts(7)));
    assert_eq!(mt.get(b"key3", ts(6)), None);
}

#[test]
#[should_panic(expected = "frozen")]
fn insert_after_freeze_panics() {
    let mut mt = Memtable::new(4096, 1);
    mt.freeze();
    let _ = mt.insert(b"k", ts(1), Value::Delete);
}

#[test]
fn tombstones_and_mvcc_reads() {
    let mut mt = Memtable::new(MEMTABLE_BYTES_DEFAULT, 3);
    mt.insert(b"a", ts(10), Value::Put(b"a10")).unwrap();
    mt.insert(b"a", ts(20), Value::Delete).unwrap();
    mt.insert(b"a", ts(30), Value::Put(b"a30")).unwrap();
    mt.insert(b"b", ts(5), Value::Put(b"b5")).unwrap();
    assert_eq!(mt.get(b"a", ts(9)), None);
    assert_eq!(
        mt.get(b"a", ts(15)).map(|e| e.value),
        Some(Value::Put(b"a10"))
    );
    assert_eq!(mt.get(b"a", ts(25)).map(|e| e.value), Some(Value::Delete));
    assert_eq!(
        mt.get(b"a", Timestamp::MAX).map(|e| e.value),
        Some(Value::Put(b"a30"))
    );
    let order: Vec<_> = mt.iter().map(|e| (e.key, e.ts)).collect();
    assert_eq!(
        order,
        [
            (&b"a"[..], ts(30)),
            (b"a", ts(20)),
            (b"a", ts(10)),
            (b"b", ts(5))
        ]
    );
    let at_25: Vec<_> = mt.scan_at(b"", ts(25)).map(|e| (e.key, e.ts)).collect();
    assert_eq!(at_25, [(&b"a"[..], ts(20)), (b"b", ts(5))]);
}

#[test]
fn overwrite_and_range_delete() {
    let mut mt = Memtable::new(MEMTABLE_BYTES_DEFAULT, 9);
    mt.insert(b"lock", Timestamp::ZERO, Value::Put(b"txn1"))
        .unwrap();
    mt.insert(b"lock", Timestamp::ZERO, Value::Put(b"txn2"))
        .unwrap();
    assert_eq!(mt.len(), 1);
    let got = mt.get(b"lock", Timestamp::MAX).map(|e| e.value);
    assert_eq!(got, Some(Value::Put(&b"txn2"[..])));
    mt.insert(b"lock", Timestamp::ZERO, Value::Delete).unwrap();
    let got = mt.get(b"lock", Timestamp::ZERO).map(|e| e.value);
    assert_eq!(got, Some(Value::Delete));
    for k in [b"a", b"b", b"c", b"d"] {
        mt.insert(k, ts(5), Value::Put(k)).unwrap();
    }
    assert_eq!(mt.delete_range(b"b", b"d"), 2);
    assert_eq!(mt.get(b"b", ts(9)), None);
    assert!(mt.range_dels().covers(b"c") && !mt.range_dels().covers(b"d"));
    // Written again after the deletion: visible, the erased node revived.
    mt.insert(b"b", ts(5), Value::Put(b"again")).unwrap();
    let got = mt.get(b"b", ts(9)).map(|e| e.value);
    assert_eq!(got, Some(Value::Put(&b"again"[..])));
    let keys: Vec<_> = mt.iter().map(|e| e.key.to_vec()).collect();
    assert_eq!(keys, [&b"a"[..], b"b", b"d", b"lock"]);
    mt.assert_invariants();
    assert_eq!(mt.max_ts(), ts(5));
    assert_eq!(mt.min_ts(), Timestamp::ZERO);
}
