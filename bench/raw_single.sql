-- bench/raw_single.sql (pgbench script, A of the single-event comparison):
-- the same row as bench/append_single.sql by a bare INSERT into
-- public.raw_events (bench/setup.sql).  version = position keeps
-- UNIQUE (stream, version) satisfied; id, metadata and recorded_at come
-- from the column defaults, category is given.
\set s random(1, 10000)
INSERT INTO public.raw_events (position, stream, version, type, data,
	metadata, category)
SELECT p, 'stream-' || :s::int, p, 'Deposited',
	jsonb_build_object('amount', :s::int), '{}', 'stream'
FROM (SELECT nextval('public.raw_events_position_seq') AS p) AS n;
