-- bench/append_single.sql (pgbench script, B of the single-event comparison):
-- one strata.append of one event to a random stream among 10,000.
\set s random(1, 10000)
SELECT strata.append('stream-' || :s::int,
	jsonb_build_object('type', 'Deposited',
		'data', jsonb_build_object('amount', :s::int)));
