//! Consistency conditions of clause 3.3.2, as `tpcc check` runs them.
//!
//! Conditions 1-5, 8 and 9 are checked from per-district aggregates compared
//! by the client, so that a young SQL layer needs only `GROUP BY`; 6 and 7
//! compare orders with their lines, and 10 and 12 customers with their
//! delivered lines and payments, through joins. Money is compared exactly.
//! 11 (orders minus new orders per district) holds only right after the
//! load and is not checked.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::DISTRICTS;
use crate::conn::{connect, CheckReport};

type Key = (i32, i32);

/// Rows of (warehouse, district or 0, value) as a map.
async fn by_district(
    client: &Client,
    sql: &str,
) -> Result<BTreeMap<Key, i64>, tokio_postgres::Error> {
    client
        .query(sql, &[])
        .await?
        .iter()
        .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
        .collect()
}

/// Compares two per-key maps; returns a description of the first mismatches.
fn compare(left: &BTreeMap<Key, i64>, right: &BTreeMap<Key, i64>, what: &str) -> (bool, String) {
    let keys: std::collections::BTreeSet<&Key> = left.keys().chain(right.keys()).collect();
    let bad: Vec<String> = keys
        .iter()
        .filter(|k| left.get(k) != right.get(k))
        .take(3)
        .map(|k| format!("{k:?}: {:?} vs {:?}", left.get(k), right.get(k)))
        .collect();
    if bad.is_empty() {
        (true, format!("{} {what} agree", keys.len()))
    } else {
        (false, bad.join("; "))
    }
}

async fn count(client: &Client, sql: &str) -> Result<i64, tokio_postgres::Error> {
    client.query_one(sql, &[]).await?.try_get(0)
}

/// Runs the conditions; `Err` only for database errors.
pub async fn check(url: &str) -> Result<CheckReport, tokio_postgres::Error> {
    let client = connect(url).await?;
    let mut report = CheckReport::default();

    // 1: W_YTD = sum(D_YTD).
    let w_ytd = by_district(
        &client,
        "SELECT w_id, 0, (w_ytd * 100)::BIGINT FROM warehouse",
    )
    .await?;
    let d_ytd_sum = by_district(
        &client,
        "SELECT d_w_id, 0, (sum(d_ytd) * 100)::BIGINT FROM district GROUP BY d_w_id",
    )
    .await?;
    let (ok, detail) = compare(&w_ytd, &d_ytd_sum, "warehouses");
    report.add("1 W_YTD = sum(D_YTD)", ok, detail);

    // 2: D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID).
    let next = by_district(
        &client,
        "SELECT d_w_id, d_id, (d_next_o_id - 1)::BIGINT FROM district",
    )
    .await?;
    let max_o = by_district(
        &client,
        "SELECT o_w_id, o_d_id, max(o_id)::BIGINT FROM orders GROUP BY o_w_id, o_d_id",
    )
    .await?;
    // (warehouse, district, max, min, count) of NEW-ORDER per district.
    let no: Vec<(i32, i32, i64, i64, i64)> = client
        .query(
            "SELECT no_w_id, no_d_id, max(no_o_id)::BIGINT, min(no_o_id)::BIGINT, count(*) \
             FROM new_order GROUP BY no_w_id, no_d_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    let max_no: BTreeMap<Key, i64> = no.iter().map(|r| ((r.0, r.1), r.2)).collect();
    let (ok_o, detail_o) = compare(&next, &max_o, "districts (orders)");
    // A district whose backlog was fully delivered has no NEW-ORDER rows.
    let next_with_no: BTreeMap<Key, i64> = next
        .iter()
        .filter(|(k, _)| max_no.contains_key(k))
        .map(|(k, v)| (*k, *v))
        .collect();
    let (ok_no, detail_no) = compare(&next_with_no, &max_no, "districts (new orders)");
    report.add(
        "2 D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID)",
        ok_o && ok_no && next.len() == max_o.len() && !next.is_empty(),
        format!("{detail_o}; {detail_no}"),
    );

    // 3: max(NO_O_ID) - min(NO_O_ID) + 1 = count(NEW_ORDER).
    let gaps: Vec<String> = no
        .iter()
        .filter(|r| r.2 - r.3 + 1 != r.4)
        .take(3)
        .map(|r| format!("({}, {})", r.0, r.1))
        .collect();
    report.add(
        "3 NEW_ORDER ids contiguous",
        gaps.is_empty(),
        if gaps.is_empty() {
            format!("{} districts with a backlog", no.len())
        } else {
            format!("gaps in {}", gaps.join(", "))
        },
    );

    // 4: sum(O_OL_CNT) = count(ORDER_LINE).
    let ol_cnt = by_district(
        &client,
        "SELECT o_w_id, o_d_id, sum(o_ol_cnt)::BIGINT FROM orders GROUP BY o_w_id, o_d_id",
    )
    .await?;
    let lines = by_district(
        &client,
        "SELECT ol_w_id, ol_d_id, count(*) FROM order_line GROUP BY ol_w_id, ol_d_id",
    )
    .await?;
    let (ok, detail) = compare(&ol_cnt, &lines, "districts");
    report.add("4 sum(O_OL_CNT) = count(ORDER_LINE)", ok, detail);

    // 5: O_CARRIER_ID is null exactly for orders with a NEW-ORDER row
    // (checked as equal counts per district).
    let undelivered = by_district(
        &client,
        "SELECT o_w_id, o_d_id, count(*) FROM orders WHERE o_carrier_id IS NULL \
         GROUP BY o_w_id, o_d_id",
    )
    .await?;
    let backlog: BTreeMap<Key, i64> = no.iter().map(|r| ((r.0, r.1), r.4)).collect();
    let (ok, detail) = compare(&undelivered, &backlog, "districts");
    report.add("5 undelivered orders = NEW_ORDER rows", ok, detail);

    // 6: O_OL_CNT = the order's lines, for every order.
    let bad = count(
        &client,
        "SELECT count(*) FROM orders LEFT JOIN \
           (SELECT ol_w_id, ol_d_id, ol_o_id, count(*) AS n FROM order_line \
            GROUP BY ol_w_id, ol_d_id, ol_o_id) l \
         ON l.ol_w_id = o_w_id AND l.ol_d_id = o_d_id AND l.ol_o_id = o_id \
         WHERE l.n IS NULL OR l.n <> o_ol_cnt",
    )
    .await?;
    report.add(
        "6 O_OL_CNT = lines per order",
        bad == 0,
        format!("{bad} orders differ"),
    );

    // 7: OL_DELIVERY_D is null exactly when O_CARRIER_ID is.
    let bad = count(
        &client,
        "SELECT count(*) FROM orders JOIN order_line \
         ON ol_w_id = o_w_id AND ol_d_id = o_d_id AND ol_o_id = o_id \
         WHERE (o_carrier_id IS NULL) <> (ol_delivery_d IS NULL)",
    )
    .await?;
    report.add(
        "7 OL_DELIVERY_D null iff O_CARRIER_ID null",
        bad == 0,
        format!("{bad} lines differ"),
    );

    // 8: W_YTD = sum(H_AMOUNT) per warehouse.
    let h_w = by_district(
        &client,
        "SELECT h_w_id, 0, (sum(h_amount) * 100)::BIGINT FROM history GROUP BY h_w_id",
    )
    .await?;
    let (ok, detail) = compare(&w_ytd, &h_w, "warehouses");
    report.add("8 W_YTD = sum(H_AMOUNT)", ok, detail);

    // 9: D_YTD = sum(H_AMOUNT) per district.
    let d_ytd = by_district(
        &client,
        "SELECT d_w_id, d_id, (d_ytd * 100)::BIGINT FROM district",
    )
    .await?;
    let h_d = by_district(
        &client,
        "SELECT h_w_id, h_d_id, (sum(h_amount) * 100)::BIGINT FROM history GROUP BY h_w_id, h_d_id",
    )
    .await?;
    let (ok, detail) = compare(&d_ytd, &h_d, "districts");
    report.add("9 D_YTD = sum(H_AMOUNT)", ok, detail);

    // 10 and 12, per customer: delivered order-line amounts against the
    // balance and the payments (history) and year-to-date payments.
    let per_customer = |lhs: &str| {
        format!(
            "SELECT count(*) FROM customer              LEFT JOIN (SELECT o_w_id, o_d_id, o_c_id, sum(ol_amount) AS delivered                         FROM orders JOIN order_line                         ON ol_w_id = o_w_id AND ol_d_id = o_d_id AND ol_o_id = o_id                         WHERE ol_delivery_d IS NOT NULL GROUP BY o_w_id, o_d_id, o_c_id) d                ON d.o_w_id = c_w_id AND d.o_d_id = c_d_id AND d.o_c_id = c_id              LEFT JOIN (SELECT h_c_w_id, h_c_d_id, h_c_id, sum(h_amount) AS paid FROM history                         GROUP BY h_c_w_id, h_c_d_id, h_c_id) h                ON h.h_c_w_id = c_w_id AND h.h_c_d_id = c_d_id AND h.h_c_id = c_id              WHERE {lhs}"
        )
    };
    let bad = count(
        &client,
        &per_customer("c_balance <> COALESCE(d.delivered, 0) - COALESCE(h.paid, 0)"),
    )
    .await?;
    report.add(
        "10 C_BALANCE = delivered OL_AMOUNT - H_AMOUNT",
        bad == 0,
        format!("{bad} customers differ"),
    );
    let bad = count(
        &client,
        &per_customer("c_balance + c_ytd_payment <> COALESCE(d.delivered, 0)"),
    )
    .await?;
    report.add(
        "12 C_BALANCE + C_YTD_PAYMENT = delivered OL_AMOUNT",
        bad == 0,
        format!("{bad} customers differ"),
    );

    let districts = d_ytd.len();
    let warehouses = w_ytd.len();
    report.add(
        "districts per warehouse",
        districts == warehouses * DISTRICTS as usize && warehouses > 0,
        format!("{districts} districts in {warehouses} warehouses"),
    );
    Ok(report)
}
