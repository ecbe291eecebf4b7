//! The all-versions iterator: every version once, in (key asc, ts desc)
//! order, across memtables and tables, honouring range tombstones.

use super::tests::{open, small_config};
use super::*;
use crate::disk::{SimDisk, SimDiskOptions};
use futures_lite::future::block_on;

fn ts(n: u64) -> Timestamp {
    Timestamp::new(n, 0)
}

async fn versions(
    engine: &Engine<SimDisk>,
    lower: &[u8],
    upper: Option<&[u8]>,
) -> Vec<(String, u64, Option<String>)> {
    let mut it = engine.iter_versions(lower, upper);
    it.seek_to_first().await.unwrap();
    let mut out = Vec::new();
    while it.valid() {
        out.push((
            String::from_utf8(it.key().to_vec()).unwrap(),
            it.ts().wall_nanos,
            it.value().map(|v| String::from_utf8(v.to_vec()).unwrap()),
        ));
        it.next().await.unwrap();
    }
    out
}

fn v(key: &str, at: u64, value: Option<&str>) -> (String, u64, Option<String>) {
    (key.to_string(), at, value.map(str::to_string))
}

#[test]
fn every_version_once_in_order_across_memtable_and_tables() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 11 });
        let (engine, _) = open(&disk, &small_config(11)).await.unwrap();
        let mut b = WriteBatch::new();
        b.put(b"a", ts(5), b"a5")
            .put(b"a", ts(7), b"a7")
            .put(b"b", ts(3), b"b3")
            .delete(b"b", ts(6));
        engine.write(b, true).await.unwrap();
        engine.flush().await.unwrap();
        // Newer versions in the memtable, one of them rewriting a flushed
        // (key, ts): the newer source's value wins and shows once.
        let mut b = WriteBatch::new();
        b.put(b"a", ts(9), b"a9")
            .put(b"a", ts(7), b"a7'")
            .put(b"c", ts(1), b"c1");
        engine.write(b, true).await.unwrap();

        assert_eq!(
            versions(&engine, b"", None).await,
            vec![
                v("a", 9, Some("a9")),
                v("a", 7, Some("a7'")),
                v("a", 5, Some("a5")),
                v("b", 6, None),
                v("b", 3, Some("b3")),
                v("c", 1, Some("c1")),
            ]
        );
        // Bounds are [lower, upper).
        assert_eq!(
            versions(&engine, b"b", Some(b"c")).await,
            vec![v("b", 6, None), v("b", 3, Some("b3"))]
        );
    });
}

#[test]
fn a_range_tombstone_hides_older_sources_only() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 12 });
        let (engine, _) = open(&disk, &small_config(12)).await.unwrap();
        let mut b = WriteBatch::new();
        b.put(b"k1", ts(2), b"old").put(b"k2", ts(2), b"old");
        engine.write(b, true).await.unwrap();
        engine.flush().await.unwrap();
        let mut b = WriteBatch::new();
        b.delete_range(b"k1", b"k2");
        engine.write(b, true).await.unwrap();
        let mut b = WriteBatch::new();
        b.put(b"k1", ts(4), b"new");
        engine.write(b, true).await.unwrap();

        let got = versions(&engine, b"", None).await;
        assert!(
            !got.contains(&v("k1", 2, Some("old"))),
            "a deleted range's older version is hidden: {got:?}"
        );
        assert!(got.contains(&v("k2", 2, Some("old"))), "{got:?}");
        assert!(got.contains(&v("k1", 4, Some("new"))), "{got:?}");
    });
}

/// The MVCC iterator over a key with many versions (it seeks instead of
/// stepping over them): at every read timestamp it returns exactly the
/// newest version at or below it, and the neighbouring keys.
#[test]
fn mvcc_iteration_over_a_much_rewritten_key() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 13 });
        let (engine, _) = open(&disk, &small_config(13)).await.unwrap();
        let mut b = WriteBatch::new();
        b.put(b"g", ts(1), b"g1").put(b"i", ts(60), b"i60");
        engine.write(b, true).await.unwrap();
        for at in 1..=60u64 {
            if at % 3 == 0 {
                continue; // gaps: some read timestamps fall between versions
            }
            let mut b = WriteBatch::new();
            b.put(b"h", ts(at * 10), format!("h{at}").as_bytes());
            engine.write(b, true).await.unwrap();
            if at == 30 {
                engine.flush().await.unwrap();
            }
        }
        for read in [0u64, 5, 10, 11, 30, 295, 300, 301, 600, 601, 10_000] {
            let mut it = engine.iter(b"", None, ts(read));
            it.seek_to_first().await.unwrap();
            let mut got = Vec::new();
            while it.valid() {
                got.push((
                    String::from_utf8(it.key().to_vec()).unwrap(),
                    it.ts().wall_nanos,
                ));
                it.next().await.unwrap();
            }
            let mut want = Vec::new();
            if read >= 1 {
                want.push(("g".to_string(), 1));
            }
            let newest_h = (1..=60u64).filter(|a| a % 3 != 0 && a * 10 <= read).max();
            if let Some(a) = newest_h {
                want.push(("h".to_string(), a * 10));
            }
            if read >= 60 {
                want.push(("i".to_string(), 60));
            }
            assert_eq!(got, want, "read at {read}");
        }
    });
}
