-- pgbench's built-in "select-only" transaction (pgbench -S), checked in so
-- that both sides run exactly this text through `pgbench -f`.
-- :scale is pgbench's -s; the tables come from `pgbench -i -s N`.
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
