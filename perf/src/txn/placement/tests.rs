use super::*;

fn range(id: &str, start: Option<i64>, end: Option<i64>, shard: usize) -> TableRange {
    TableRange {
        range_id: id.into(),
        start,
        end,
        shard,
    }
}

/// Rows 0..100 in five ranges: [.., 20) and [20, 40) on shard 0, [40, 60)
/// on shard 1, [60, 80) on shard 0, [80, ..) on shard 1.
fn layout() -> Layout {
    Layout::new(vec![
        range("a", None, Some(20), 0),
        range("b", Some(20), Some(40), 0),
        range("c", Some(40), Some(60), 1),
        range("d", Some(60), Some(80), 0),
        range("e", Some(80), None, 1),
    ])
    .expect("tiles")
}

fn plan(placement: Placement, clients: usize, per_client: usize) -> Plan {
    Plan {
        unit_rows: 2,
        placement,
        rows: 100,
        clients,
        per_client,
        shared: false,
        seed: 7,
    }
}

fn disjoint(a: &Assignment) -> bool {
    let all: Vec<i64> = a.clients.iter().flatten().flatten().copied().collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    all.len() == distinct.len()
}

#[test]
fn bounds_parse_as_keys_or_ends() {
    assert_eq!(parse_bound("/Min"), Ok(None));
    assert_eq!(parse_bound("/Max"), Ok(None));
    assert_eq!(parse_bound("<before:/Table/100/1/7>"), Ok(None));
    assert_eq!(parse_bound("<after:/Max>"), Ok(None));
    assert_eq!(parse_bound("/42"), Ok(Some(42)));
    assert_eq!(parse_bound("/-5"), Ok(Some(-5)));
    assert!(parse_bound("/\"ann\"/7").is_err());
    assert!(parse_bound("\\x8b89").is_err());
}

#[test]
fn a_layout_must_tile_the_keys() {
    let l = layout();
    assert_eq!(l.locate(-3).range_id, "a");
    assert_eq!(l.locate(20).range_id, "b");
    assert_eq!(l.locate(59).range_id, "c");
    assert_eq!(l.locate(i64::MAX).range_id, "e");
    assert_eq!(l.shards(), BTreeSet::from([0, 1]));
    let gap = vec![range("a", None, Some(20), 0), range("b", Some(21), None, 0)];
    assert!(Layout::new(gap).is_err());
    assert!(Layout::new(vec![range("a", Some(0), None, 0)]).is_err());
    assert!(Layout::new(vec![range("a", None, Some(9), 0)]).is_err());
    assert!(Layout::new(Vec::new()).is_err());
}

#[test]
fn every_placement_gives_units_that_have_it() {
    let l = layout();
    for placement in [
        Placement::SameRange,
        Placement::SameShard,
        Placement::CrossShard,
        Placement::Any,
    ] {
        let a = assign(&plan(placement, 4, 3), Some(&l)).expect("enough rows");
        assert_eq!(a.clients.len(), 4);
        assert!(
            a.clients.iter().all(|c| c.len() == 3),
            "{placement:?}: {a:?}"
        );
        assert!(disjoint(&a), "{placement:?}: {a:?}");
        for unit in a.clients.iter().flatten() {
            assert_eq!(unit.len(), 2);
            assert!((0..100).contains(&unit[0]) && (0..100).contains(&unit[1]));
            assert_ne!(unit[0], unit[1]);
            assert!(holds(placement, unit, &l), "{placement:?}: {unit:?}");
        }
        let held = check_held(&a, placement, &l, &l);
        assert_eq!((held.units, held.broken, held.rows_moved), (12, 0, 0));
    }
}

#[test]
fn load_spreads_over_ranges_and_shards() {
    let l = layout();
    let a = assign(&plan(Placement::SameRange, 4, 1), Some(&l)).unwrap();
    // Four clients, one pair each: four different ranges, both shards.
    assert_eq!(a.spread(&l), (4, 2));
    let first_shards: Vec<usize> = a.clients.iter().map(|c| l.locate(c[0][0]).shard).collect();
    assert_eq!(first_shards, vec![0, 1, 0, 1]);
    // One pair per shard, each across two of that shard's ranges.
    let a = assign(&plan(Placement::SameShard, 2, 1), Some(&l)).unwrap();
    assert_eq!(a.spread(&l), (4, 2));
}

#[test]
fn too_few_rows_or_the_wrong_placement_fail_clearly() {
    let l = layout();
    let e = assign(&plan(Placement::SameRange, 51, 1), Some(&l)).unwrap_err();
    assert!(e.contains("only 50 units"), "{e}");
    let one_shard = Layout::new(vec![
        range("a", None, Some(50), 0),
        range("b", Some(50), None, 0),
    ])
    .unwrap();
    let e = assign(&plan(Placement::CrossShard, 1, 1), Some(&one_shard)).unwrap_err();
    assert!(e.contains("only 0 units"), "{e}");
    let one_range = Layout::new(vec![range("a", None, None, 0)]).unwrap();
    assert!(assign(&plan(Placement::SameShard, 1, 1), Some(&one_range)).is_err());
    let e = assign(&plan(Placement::CrossShard, 1, 1), None).unwrap_err();
    assert!(e.contains("needs to know where rows live"), "{e}");
    let update = Plan {
        unit_rows: 1,
        ..plan(Placement::SameShard, 1, 1)
    };
    assert!(assign(&update, Some(&l)).unwrap_err().contains("update"));
    // Fewer units than asked per client: each client gets what there is.
    let a = assign(&plan(Placement::SameRange, 10, 8), Some(&l)).unwrap();
    assert!(a.clients.iter().all(|c| c.len() == 5), "{a:?}");
}

#[test]
fn updates_take_single_rows_and_shared_rows_are_shared() {
    let update = Plan {
        unit_rows: 1,
        ..plan(Placement::Any, 8, 4)
    };
    let a = assign(&update, None).unwrap();
    assert!(disjoint(&a));
    assert!(a.clients.iter().flatten().all(|u| u.len() == 1));
    // The seed decides the rows; the same seed, the same rows.
    assert_eq!(a, assign(&update, None).unwrap());
    let shared = Plan {
        shared: true,
        ..plan(Placement::SameRange, 3, 2)
    };
    let a = assign(&shared, Some(&layout())).unwrap();
    assert_eq!(a.clients[0], a.clients[1]);
    assert_eq!(a.clients[1], a.clients[2]);
    assert_eq!(a.clients[0].len(), 2);
}

#[test]
fn a_move_or_split_shows_as_placement_lost() {
    let before = layout();
    let a = assign(&plan(Placement::SameRange, 2, 2), Some(&before)).unwrap();
    // Range b moved to shard 1 and range a split in two.
    let after = Layout::new(vec![
        range("a1", None, Some(1), 0),
        range("a2", Some(1), Some(20), 0),
        range("b2", Some(20), Some(40), 1),
        range("c", Some(40), Some(60), 1),
        range("d", Some(60), Some(80), 0),
        range("e", Some(80), None, 1),
    ])
    .unwrap();
    let held = check_held(&a, Placement::SameRange, &before, &after);
    assert_eq!(held.units, 4);
    // Units from a: (0, 1) is split apart; (2, 3) is not. Units from c
    // and e did not change.
    assert_eq!(held.broken, 1, "{a:?}");
    let rows_in_b = a
        .rows()
        .iter()
        .filter(|&&id| (20..40).contains(&id))
        .count();
    assert_eq!(held.rows_moved, rows_in_b);
}
