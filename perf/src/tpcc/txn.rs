//! The five transactions (clauses 2.4-2.8) and the terminal that runs them.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use tokio_postgres::{Client, Statement, Transaction};

use super::{last_name, results, NuRandC, Scale, DISTRICTS, TERMINALS_PER_WAREHOUSE};
use crate::conn::Isolation;
use crate::driver::{OpError, Worker, Workload};
use crate::gen::nurand;
use crate::stats::Summary;

/// Run-time parameters of TPC-C.
#[derive(Clone, Debug)]
pub struct Tpcc {
    pub scale: Scale,
    /// Warehouses that have terminals (at most those loaded).
    pub active_warehouses: u32,
    pub c: NuRandC,
    pub think_time: bool,
    pub isolation: Isolation,
}

/// Operation types in [`Tpcc::op_names`] order, with the standard mix
/// (cumulative percent), keying time and mean think time in seconds
/// (clause 5.2.5.7).
const NEW_ORDER: usize = 0;
const PAYMENT: usize = 1;
const ORDER_STATUS: usize = 2;
const DELIVERY: usize = 3;
const STOCK_LEVEL: usize = 4;
const MIX: [(usize, u32, u64, f64); 5] = [
    (NEW_ORDER, 45, 18, 12.0),
    (PAYMENT, 88, 3, 12.0),
    (ORDER_STATUS, 92, 2, 10.0),
    (DELIVERY, 96, 2, 5.0),
    (STOCK_LEVEL, 100, 2, 5.0),
];

#[derive(Clone, Debug)]
pub enum CustomerKey {
    Id(i32),
    LastName(String),
}

/// One transaction with all its inputs.
#[derive(Clone, Debug)]
pub enum TpccOp {
    NewOrder {
        d: i32,
        c: i32,
        /// (item, supplying warehouse, quantity), sorted to take row locks
        /// in one order and so avoid deadlocks between terminals.
        lines: Vec<(i32, i32, i32)>,
    },
    Payment {
        d: i32,
        c_w: i32,
        c_d: i32,
        customer: CustomerKey,
        amount_cents: i64,
    },
    OrderStatus {
        d: i32,
        customer: CustomerKey,
    },
    Delivery {
        carrier: i32,
    },
    StockLevel {
        threshold: i32,
    },
}

/// Prepared statements of one terminal.
struct Statements {
    no_warehouse: Statement,
    no_district: Statement,
    no_district_next: Statement,
    no_customer: Statement,
    no_order: Statement,
    no_new_order: Statement,
    no_item: Statement,
    /// Stock row with the `s_dist_xx` of each district.
    no_stock: Vec<Statement>,
    no_stock_update: Statement,
    no_line: Statement,
    p_warehouse: Statement,
    p_warehouse_read: Statement,
    p_district: Statement,
    p_district_read: Statement,
    customer_by_name: Statement,
    p_customer: Statement,
    p_customer_bc: Statement,
    p_customer_gc: Statement,
    p_history: Statement,
    os_customer: Statement,
    os_order: Statement,
    os_lines: Statement,
    d_new_order: Statement,
    d_delete: Statement,
    d_order: Statement,
    d_order_update: Statement,
    d_lines_update: Statement,
    d_lines_sum: Statement,
    d_customer: Statement,
    sl_next: Statement,
    sl_count: Statement,
}

async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
    let p = |sql: String| async move { client.prepare(&sql).await };
    let mut no_stock = Vec::with_capacity(DISTRICTS as usize);
    for d in 1..=DISTRICTS {
        no_stock.push(
            p(format!(
                "SELECT s_quantity, s_data, s_dist_{d:02} FROM stock \
                 WHERE s_w_id = $1 AND s_i_id = $2 FOR UPDATE"
            ))
            .await?,
        );
    }
    let s = |sql: &str| p(sql.to_string());
    Ok(Statements {
        no_warehouse: s("SELECT w_tax FROM warehouse WHERE w_id = $1").await?,
        no_district: s("SELECT d_tax, d_next_o_id FROM district \
                        WHERE d_w_id = $1 AND d_id = $2 FOR UPDATE")
        .await?,
        no_district_next: s("UPDATE district SET d_next_o_id = $3 WHERE d_w_id = $1 AND d_id = $2")
            .await?,
        no_customer: s("SELECT c_discount, c_last, c_credit FROM customer \
                        WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3")
        .await?,
        no_order: s("INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, \
                     o_ol_cnt, o_all_local) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP, NULL, $5, $6)")
        .await?,
        no_new_order: s("INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ($1, $2, $3)")
            .await?,
        no_item: s("SELECT (i_price * 100)::BIGINT, i_name, i_data FROM item WHERE i_id = $1").await?,
        no_stock,
        no_stock_update: s("UPDATE stock SET s_quantity = $3, s_ytd = s_ytd + $4, \
                            s_order_cnt = s_order_cnt + 1, s_remote_cnt = s_remote_cnt + $5 \
                            WHERE s_w_id = $1 AND s_i_id = $2")
        .await?,
        no_line: s("INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, \
                    ol_supply_w_id, ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) \
                    VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8::BIGINT * 0.01, $9)")
        .await?,
        p_warehouse: s("UPDATE warehouse SET w_ytd = w_ytd + $2::BIGINT * 0.01 WHERE w_id = $1")
            .await?,
        p_warehouse_read: s("SELECT w_name, w_street_1, w_street_2, w_city, w_state, w_zip \
                             FROM warehouse WHERE w_id = $1")
        .await?,
        p_district: s("UPDATE district SET d_ytd = d_ytd + $3::BIGINT * 0.01 \
                       WHERE d_w_id = $1 AND d_id = $2")
        .await?,
        p_district_read: s("SELECT d_name, d_street_1, d_street_2, d_city, d_state, d_zip \
                            FROM district WHERE d_w_id = $1 AND d_id = $2")
        .await?,
        customer_by_name: s("SELECT c_id FROM customer \
                             WHERE c_w_id = $1 AND c_d_id = $2 AND c_last = $3 ORDER BY c_first")
        .await?,
        p_customer: s("SELECT c_first, c_middle, c_last, c_street_1, c_street_2, c_city, \
                       c_state, c_zip, c_phone, c_since, c_credit, c_credit_lim, c_discount, \
                       c_balance FROM customer \
                       WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3 FOR UPDATE")
        .await?,
        p_customer_bc: s("UPDATE customer SET c_balance = c_balance - $4::BIGINT * 0.01, \
                          c_ytd_payment = c_ytd_payment + $4::BIGINT * 0.01, \
                          c_payment_cnt = c_payment_cnt + 1, \
                          c_data = substr($5 || c_data, 1, 500) \
                          WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3")
        .await?,
        p_customer_gc: s("UPDATE customer SET c_balance = c_balance - $4::BIGINT * 0.01, \
                          c_ytd_payment = c_ytd_payment + $4::BIGINT * 0.01, \
                          c_payment_cnt = c_payment_cnt + 1 \
                          WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3")
        .await?,
        p_history: s("INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, \
                      h_amount, h_data) \
                      VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP, $6::BIGINT * 0.01, $7)")
        .await?,
        os_customer: s("SELECT c_balance, c_first, c_middle, c_last FROM customer \
                        WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3")
        .await?,
        os_order: s("SELECT o_id, o_entry_d, o_carrier_id FROM orders \
                     WHERE o_w_id = $1 AND o_d_id = $2 AND o_c_id = $3 ORDER BY o_id DESC LIMIT 1")
        .await?,
        os_lines: s("SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d \
                     FROM order_line WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3")
        .await?,
        d_new_order: s("SELECT no_o_id FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 \
                        ORDER BY no_o_id LIMIT 1 FOR UPDATE")
        .await?,
        d_delete: s("DELETE FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 AND no_o_id = $3")
            .await?,
        d_order: s("SELECT o_c_id FROM orders WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3")
            .await?,
        d_order_update: s("UPDATE orders SET o_carrier_id = $4 \
                           WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3")
        .await?,
        d_lines_update: s("UPDATE order_line SET ol_delivery_d = CURRENT_TIMESTAMP \
                           WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3")
        .await?,
        d_lines_sum: s("SELECT COALESCE(sum(ol_amount) * 100, 0)::BIGINT FROM order_line \
                        WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3")
        .await?,
        d_customer: s("UPDATE customer SET c_balance = c_balance + $4::BIGINT * 0.01, \
                       c_delivery_cnt = c_delivery_cnt + 1 \
                       WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3")
        .await?,
        sl_next: s("SELECT d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2").await?,
        sl_count: s("SELECT count(DISTINCT s_i_id) FROM order_line, stock \
                     WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id < $3 AND ol_o_id >= $3 - 20 \
                     AND s_w_id = $1 AND s_i_id = ol_i_id AND s_quantity < $4")
        .await?,
    })
}

/// A terminal: one home warehouse, one Stock-Level district.
pub struct TpccWorker {
    tpcc: Arc<Tpcc>,
    client: Client,
    rng: SmallRng,
    w: i32,
    stock_level_d: i32,
    st: Statements,
}

impl Workload for Tpcc {
    type Worker = TpccWorker;

    fn name(&self) -> String {
        "tpcc".to_string()
    }

    fn op_names(&self) -> Vec<&'static str> {
        vec![
            "new_order",
            "payment",
            "order_status",
            "delivery",
            "stock_level",
        ]
    }

    async fn open(
        &self,
        client: Client,
        client_id: usize,
        seed: u64,
    ) -> Result<TpccWorker, tokio_postgres::Error> {
        let st = prepare(&client).await?;
        let active = self.active_warehouses as usize;
        Ok(TpccWorker {
            tpcc: Arc::new(self.clone()),
            client,
            rng: SmallRng::seed_from_u64(seed),
            w: (client_id % active) as i32 + 1,
            stock_level_d: ((client_id / active) % DISTRICTS as usize) as i32 + 1,
            st,
        })
    }

    /// Ten terminals per driven warehouse, as the specification has.
    fn default_concurrency(&self) -> usize {
        TERMINALS_PER_WAREHOUSE * self.active_warehouses as usize
    }

    fn extra(&self, summary: &Summary) -> Map<String, Value> {
        let mut m = results(summary, self.active_warehouses);
        m.insert("isolation".into(), self.isolation.name().into());
        m.insert("think_time".into(), self.think_time.into());
        m
    }
}

/// Customer id of the one chosen by last name: the middle one by first
/// name, position ceil(n/2) (clause 2.5.2.2).
async fn customer_id(
    tx: &Transaction<'_>,
    by_name: &Statement,
    w: i32,
    d: i32,
    key: &CustomerKey,
) -> Result<i32, OpError> {
    match key {
        CustomerKey::Id(c) => Ok(*c),
        CustomerKey::LastName(name) => {
            let rows = tx.query(by_name, &[&w, &d, name]).await?;
            if rows.is_empty() {
                return Err(OpError::Invariant(format!(
                    "no customer named {name} in warehouse {w} district {d}"
                )));
            }
            Ok(rows[rows.len().div_ceil(2) - 1].try_get(0)?)
        }
    }
}

impl TpccWorker {
    fn customer_key(&mut self) -> CustomerKey {
        let t = &self.tpcc;
        if self.rng.random_range(0..100) < 60 {
            let names = u64::from(t.scale.last_names());
            CustomerKey::LastName(last_name(
                nurand(&mut self.rng, 255, 0, names - 1, t.c.c_last) as u32,
            ))
        } else {
            let customers = u64::from(t.scale.customers);
            CustomerKey::Id(nurand(&mut self.rng, 1023, 1, customers, t.c.c_id) as i32)
        }
    }

    /// Any warehouse but the home one (the home one if it is alone).
    fn other_warehouse(&mut self) -> i32 {
        let n = self.tpcc.scale.warehouses as i32;
        if n == 1 {
            return self.w;
        }
        let other = self.rng.random_range(1..n);
        if other >= self.w {
            other + 1
        } else {
            other
        }
    }

    fn new_order(&mut self) -> TpccOp {
        let t = self.tpcc.clone();
        let count = self.rng.random_range(5..=15);
        let rollback = self.rng.random_range(0..100) == 0;
        let mut lines: Vec<(i32, i32, i32)> = (0..count)
            .map(|i| {
                let item = if rollback && i == count - 1 {
                    t.scale.items as i32 + 1 // unused: the transaction rolls back
                } else {
                    nurand(
                        &mut self.rng,
                        8191,
                        1,
                        u64::from(t.scale.items),
                        t.c.ol_i_id,
                    ) as i32
                };
                let supply = if self.rng.random_range(0..100) == 0 {
                    self.other_warehouse()
                } else {
                    self.w
                };
                (item, supply, self.rng.random_range(1..=10))
            })
            .collect();
        lines.sort_unstable_by_key(|&(item, supply, _)| (supply, item));
        TpccOp::NewOrder {
            d: self.rng.random_range(1..=DISTRICTS as i32),
            c: nurand(
                &mut self.rng,
                1023,
                1,
                u64::from(t.scale.customers),
                t.c.c_id,
            ) as i32,
            lines,
        }
    }

    fn payment(&mut self) -> TpccOp {
        let d = self.rng.random_range(1..=DISTRICTS as i32);
        let (c_w, c_d) = if self.rng.random_range(0..100) < 85 {
            (self.w, d)
        } else {
            (
                self.other_warehouse(),
                self.rng.random_range(1..=DISTRICTS as i32),
            )
        };
        TpccOp::Payment {
            d,
            c_w,
            c_d,
            customer: self.customer_key(),
            amount_cents: self.rng.random_range(100..=500_000),
        }
    }
}

impl Worker for TpccWorker {
    type Op = TpccOp;

    fn next_op(&mut self) -> TpccOp {
        let dice = self.rng.random_range(0..100);
        match MIX.iter().find(|m| dice < m.1).map_or(NEW_ORDER, |m| m.0) {
            NEW_ORDER => self.new_order(),
            PAYMENT => self.payment(),
            ORDER_STATUS => TpccOp::OrderStatus {
                d: self.rng.random_range(1..=DISTRICTS as i32),
                customer: self.customer_key(),
            },
            DELIVERY => TpccOp::Delivery {
                carrier: self.rng.random_range(1..=10),
            },
            _ => TpccOp::StockLevel {
                threshold: self.rng.random_range(10..=20),
            },
        }
    }

    fn kind(&self, op: &TpccOp) -> usize {
        match op {
            TpccOp::NewOrder { .. } => NEW_ORDER,
            TpccOp::Payment { .. } => PAYMENT,
            TpccOp::OrderStatus { .. } => ORDER_STATUS,
            TpccOp::Delivery { .. } => DELIVERY,
            TpccOp::StockLevel { .. } => STOCK_LEVEL,
        }
    }

    async fn execute(&mut self, op: &TpccOp) -> Result<Option<&'static str>, OpError> {
        match op {
            TpccOp::NewOrder { d, c, lines } => self.run_new_order(*d, *c, lines).await,
            TpccOp::Payment {
                d,
                c_w,
                c_d,
                customer,
                amount_cents,
            } => {
                self.run_payment(*d, *c_w, *c_d, customer, *amount_cents)
                    .await
            }
            TpccOp::OrderStatus { d, customer } => self.run_order_status(*d, customer).await,
            TpccOp::Delivery { carrier } => self.run_delivery(*carrier).await,
            TpccOp::StockLevel { threshold } => self.run_stock_level(*threshold).await,
        }
    }

    fn pauses(&mut self, op: &TpccOp) -> (Duration, Duration) {
        if !self.tpcc.think_time {
            return (Duration::ZERO, Duration::ZERO);
        }
        let (_, _, keying, think_mean) = MIX[self.kind(op)];
        // Negative exponential, truncated at ten times the mean (5.2.5.4).
        let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        let think = (-u.ln() * think_mean).min(10.0 * think_mean);
        (Duration::from_secs(keying), Duration::from_secs_f64(think))
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

async fn begin(
    client: &mut Client,
    isolation: Isolation,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(isolation.level())
        .start()
        .await
}

impl TpccWorker {
    async fn run_new_order(
        &mut self,
        d: i32,
        c: i32,
        lines: &[(i32, i32, i32)],
    ) -> Result<Option<&'static str>, OpError> {
        let w = self.w;
        let tx = begin(&mut self.client, self.tpcc.isolation).await?;
        let st = &self.st;
        tx.query_one(&st.no_warehouse, &[&w]).await?;
        let district = tx.query_one(&st.no_district, &[&w, &d]).await?;
        let o_id: i32 = district.try_get(1)?;
        tx.execute(&st.no_district_next, &[&w, &d, &(o_id + 1)])
            .await?;
        tx.query_one(&st.no_customer, &[&w, &d, &c]).await?;
        let all_local = i32::from(lines.iter().all(|&(_, s, _)| s == w));
        let ol_cnt = lines.len() as i32;
        tx.execute(&st.no_order, &[&o_id, &d, &w, &c, &ol_cnt, &all_local])
            .await?;
        tx.execute(&st.no_new_order, &[&o_id, &d, &w]).await?;
        let mut prices = Vec::with_capacity(lines.len());
        for &(item, _, _) in lines {
            match tx.query_opt(&st.no_item, &[&item]).await? {
                Some(row) => prices.push(row.try_get::<_, i64>(0)?),
                None => {
                    // The 1% of New-Orders with an unused item (2.4.2.3).
                    tx.rollback().await?;
                    return Ok(Some("new_order_rollback"));
                }
            }
        }
        let stock = &st.no_stock[(d - 1) as usize];
        for (number, (&(item, supply, qty), price)) in lines.iter().zip(prices).enumerate() {
            let row = tx.query_one(stock, &[&supply, &item]).await?;
            let quantity: i32 = row.try_get(0)?;
            let dist_info: String = row.try_get(2)?;
            let left = if quantity >= qty + 10 {
                quantity - qty
            } else {
                quantity - qty + 91
            };
            let remote = i32::from(supply != w);
            tx.execute(&st.no_stock_update, &[&supply, &item, &left, &qty, &remote])
                .await?;
            let amount = i64::from(qty) * price;
            let n = number as i32 + 1;
            tx.execute(
                &st.no_line,
                &[&o_id, &d, &w, &n, &item, &supply, &qty, &amount, &dist_info],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn run_payment(
        &mut self,
        d: i32,
        c_w: i32,
        c_d: i32,
        customer: &CustomerKey,
        amount: i64,
    ) -> Result<Option<&'static str>, OpError> {
        let w = self.w;
        let tx = begin(&mut self.client, self.tpcc.isolation).await?;
        let st = &self.st;
        tx.execute(&st.p_warehouse, &[&w, &amount]).await?;
        let w_name: String = tx
            .query_one(&st.p_warehouse_read, &[&w])
            .await?
            .try_get(0)?;
        tx.execute(&st.p_district, &[&w, &d, &amount]).await?;
        let d_name: String = tx
            .query_one(&st.p_district_read, &[&w, &d])
            .await?
            .try_get(0)?;
        let c = customer_id(&tx, &st.customer_by_name, c_w, c_d, customer).await?;
        let row = tx.query_one(&st.p_customer, &[&c_w, &c_d, &c]).await?;
        let credit: String = row.try_get(10)?;
        if credit == "BC" {
            let data = format!("{c} {c_d} {c_w} {d} {w} {amount}|");
            tx.execute(&st.p_customer_bc, &[&c_w, &c_d, &c, &amount, &data])
                .await?;
        } else {
            tx.execute(&st.p_customer_gc, &[&c_w, &c_d, &c, &amount])
                .await?;
        }
        let h_data = format!("{w_name}    {d_name}");
        tx.execute(&st.p_history, &[&c, &c_d, &c_w, &d, &w, &amount, &h_data])
            .await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn run_order_status(
        &mut self,
        d: i32,
        customer: &CustomerKey,
    ) -> Result<Option<&'static str>, OpError> {
        let w = self.w;
        let tx = begin(&mut self.client, self.tpcc.isolation).await?;
        let st = &self.st;
        let c = customer_id(&tx, &st.customer_by_name, w, d, customer).await?;
        tx.query_one(&st.os_customer, &[&w, &d, &c]).await?;
        if let Some(order) = tx.query_opt(&st.os_order, &[&w, &d, &c]).await? {
            let o_id: i32 = order.try_get(0)?;
            tx.query(&st.os_lines, &[&w, &d, &o_id]).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn run_delivery(&mut self, carrier: i32) -> Result<Option<&'static str>, OpError> {
        let w = self.w;
        let tx = begin(&mut self.client, self.tpcc.isolation).await?;
        let st = &self.st;
        let mut skipped = false;
        for d in 1..=DISTRICTS as i32 {
            let Some(row) = tx.query_opt(&st.d_new_order, &[&w, &d]).await? else {
                skipped = true; // nothing to deliver in this district (2.7.4.2)
                continue;
            };
            let o_id: i32 = row.try_get(0)?;
            if tx.execute(&st.d_delete, &[&w, &d, &o_id]).await? == 0 {
                skipped = true; // taken by a concurrent Delivery
                continue;
            }
            let c: i32 = tx
                .query_one(&st.d_order, &[&w, &d, &o_id])
                .await?
                .try_get(0)?;
            tx.execute(&st.d_order_update, &[&w, &d, &o_id, &carrier])
                .await?;
            tx.execute(&st.d_lines_update, &[&w, &d, &o_id]).await?;
            let total: i64 = tx
                .query_one(&st.d_lines_sum, &[&w, &d, &o_id])
                .await?
                .try_get(0)?;
            tx.execute(&st.d_customer, &[&w, &d, &c, &total]).await?;
        }
        tx.commit().await?;
        Ok(skipped.then_some("delivery_district_skipped"))
    }

    async fn run_stock_level(&mut self, threshold: i32) -> Result<Option<&'static str>, OpError> {
        let (w, d) = (self.w, self.stock_level_d);
        let tx = begin(&mut self.client, self.tpcc.isolation).await?;
        let st = &self.st;
        let next: i32 = tx.query_one(&st.sl_next, &[&w, &d]).await?.try_get(0)?;
        tx.query_one(&st.sl_count, &[&w, &d, &next, &threshold])
            .await?;
        tx.commit().await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Workload;

    #[test]
    fn ten_terminals_per_driven_warehouse_by_default() {
        let tpcc = Tpcc {
            scale: Scale::new(5, 1000, 30).expect("valid"),
            active_warehouses: 3,
            c: NuRandC {
                c_last: 0,
                c_id: 0,
                ol_i_id: 0,
            },
            think_time: false,
            isolation: Isolation::ReadCommitted,
        };
        assert_eq!(tpcc.default_concurrency(), 30);
    }
}
