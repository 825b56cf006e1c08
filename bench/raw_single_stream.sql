-- bench/raw_single_stream.sql (pgbench script, diagnostic; bench/run.sh
-- runs it with the single-event rounds unless BENCH_DIAG=0):
-- bench/raw_single.sql plus the UPDATE of the stream's row in a plain
-- table that strata.append does in strata.streams, in one statement.  Its
-- distance to bench/raw_single.sql is the cost of the stream row; its
-- distance to bench/append_single.sql the cost of the rest of
-- strata.append (function call, SPI, validation, registry).
\set s random(1, 10000)
WITH s AS (
	UPDATE public.raw_streams SET version = version + 1
	WHERE stream = 'stream-' || :s::int
	RETURNING version
)
INSERT INTO public.raw_events (position, stream, version, type, data,
	metadata, category)
SELECT p, 'stream-' || :s::int, p, 'Deposited',
	jsonb_build_object('amount', :s::int), '{}', 'stream'
FROM s, (SELECT nextval('public.raw_events_position_seq') AS p) AS n;
