-- bench/raw_batch.sql (pgbench script, A of the batch comparison): the same
-- 100 events as bench/append_batch.sql (the same :events JSON array,
-- parsed by the server on every call) written by one 100-row INSERT into
-- public.raw_events.  version = position keeps UNIQUE (stream, version)
-- satisfied; id and recorded_at come from the column defaults.
\set s random(1, 10000)
INSERT INTO public.raw_events (position, stream, version, type, data,
	metadata, category)
SELECT p, 'stream-' || :s::int, p, e->>'type', e->'data',
	coalesce(e->'metadata', '{}'), 'stream'
FROM (SELECT nextval('public.raw_events_position_seq') AS p, e
	  FROM jsonb_array_elements(:events::jsonb) AS e) AS x;
