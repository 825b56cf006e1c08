-- bench/decode_append.sql (pgbench script of bench/decode.sh): one
-- transaction appending :per events (given with -D per=N) to a stream of
-- its own, with data and metadata of a realistic size.
\set s random(1, 1000000000)
SELECT strata.append('account-' || :s,
	(SELECT jsonb_agg(jsonb_build_object(
		'type', 'MoneyDeposited',
		'data', jsonb_build_object('amount', i, 'currency', 'EUR',
			'note', 'deposit at branch 12', 'reference', 'ref-' || (:s::bigint * 1000 + i)),
		'metadata', jsonb_build_object('by', 'teller-7', 'channel', 'counter')))
	 FROM generate_series(1, :per) AS i));
