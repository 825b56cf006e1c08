-- bench/subscribe_append.sql (pgbench script of bench/subscribe.sh, the
-- throughput runs): one strata.append of one event to a random stream
-- among 10,000, as bench/append_single.sql.
\set s random(1, 10000)
SELECT strata.append('acct-' || :s::int,
	jsonb_build_object('type', 'Deposited',
		'data', jsonb_build_object('amount', :s::int)));
