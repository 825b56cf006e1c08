-- reads: read_stream, read_all and read_category, and their arguments.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
CREATE TEMP TABLE seen AS SELECT max(position) AS before FROM strata.events;
UPDATE seen SET before = 0 WHERE before IS NULL; -- run alone: no events yet

SELECT strata.append('cart-1', '[{"type": "Created"}, {"type": "ItemAdded", "data": {"sku": "a"}}, {"type": "ItemAdded", "data": {"sku": "b"}}]');
SELECT strata.append('cart-2', '{"type": "Created"}');
SELECT strata.append('wish-1', '{"type": "Created"}');
SELECT strata.append('cart-1', '{"type": "CheckedOut"}');

-- read_stream: by version, from a version, at most max_count
SELECT version, type, data FROM strata.read_stream('cart-1');
SELECT version, type FROM strata.read_stream('cart-1', 2);
SELECT version, type FROM strata.read_stream('cart-1', 1, 2);
SELECT version, type FROM strata.read_stream('cart-1', 9);
SELECT count(*) FROM strata.read_stream('cart-404');

-- read_all: positions in increasing order, after a position
SELECT r.position - s.before AS rel, stream, version, type
FROM strata.read_all((SELECT before FROM seen)) r, seen s;
SELECT r.position - s.before AS rel, stream
FROM strata.read_all((SELECT before FROM seen) + 2, 2) r, seen s;
-- a consumer loop: read pages of 2 until nothing comes back
DO $$
DECLARE
	cursor_pos bigint := (SELECT before FROM seen);
	got int;
	total int := 0;
	pages int := 0;
BEGIN
	LOOP
		SELECT count(*), coalesce(max(position), cursor_pos) INTO got, cursor_pos
		FROM strata.read_all(cursor_pos, 2);
		EXIT WHEN got = 0;
		total := total + got;
		pages := pages + 1;
	END LOOP;
	RAISE NOTICE 'read % events in % pages', total, pages;
END $$;

-- read_category: only the category's streams
SELECT r.position - s.before AS rel, stream, version
FROM strata.read_category('cart', (SELECT before FROM seen)) r, seen s;
SELECT stream FROM strata.read_category('wish');
SELECT count(*) FROM strata.read_category('nothing');

-- all reads return the same row type, strata.events
SELECT pg_get_function_result(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'strata' AND p.proname LIKE 'read_%' ORDER BY p.proname;

-- uncommitted events are not returned by read_all, even to their writer
BEGIN;
SELECT strata.append('cart-9', '{"type": "Created"}');
SELECT count(*) FROM strata.read_all((SELECT before FROM seen)) WHERE stream = 'cart-9';
SELECT count(*) FROM strata.read_stream('cart-9');
COMMIT;
SELECT count(*) FROM strata.read_all((SELECT before FROM seen)) WHERE stream = 'cart-9';

-- read_all sees the latest committed events even in REPEATABLE READ
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM strata.read_all((SELECT before FROM seen));
SELECT count(*) FROM strata.read_all((SELECT before FROM seen), 1);
COMMIT;

-- every read is one index range scan (the functions scan the index
-- themselves, whatever the statistics): count the scans of this transaction
SELECT strata.append('bulk-1', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', i)) FROM generate_series(1, 3000) i));
ANALYZE strata.events;
-- scans not yet reported by this backend, per relation
CREATE FUNCTION pg_temp.scans() RETURNS TABLE (relation text, scans bigint)
LANGUAGE sql AS $$
	SELECT c.relname::text, pg_stat_get_xact_numscans(c.oid)
	FROM pg_class c WHERE c.relnamespace = 'strata'::regnamespace
	AND c.relname IN ('events', 'events_pkey', 'events_stream_version_key',
		'events_category_position_idx', 'events_id_key') $$;
CREATE TEMP TABLE base (relation text, scans bigint);
-- the scans a read made, in a transaction (pending counts are not flushed
-- inside a transaction block)
CREATE FUNCTION pg_temp.delta() RETURNS TABLE (relation text, scans bigint)
LANGUAGE sql AS $$
	SELECT s.relation, s.scans - b.scans FROM pg_temp.scans() s
	JOIN base b USING (relation) WHERE s.scans <> b.scans ORDER BY 1 $$;
BEGIN;
INSERT INTO base SELECT * FROM pg_temp.scans();
SELECT count(*), min(version), max(version) FROM strata.read_stream('bulk-1', 0, 5000);
SELECT * FROM pg_temp.delta();
COMMIT;
BEGIN;
TRUNCATE base;
INSERT INTO base SELECT * FROM pg_temp.scans();
SELECT count(*) FROM strata.read_all(0, 2);
SELECT * FROM pg_temp.delta();
COMMIT;
BEGIN;
TRUNCATE base;
INSERT INTO base SELECT * FROM pg_temp.scans();
SELECT count(*) FROM strata.read_category('wish');
SELECT * FROM pg_temp.delta();
COMMIT;
SELECT count(*) FROM strata.read_stream('bulk-1', 2990);

-- bad arguments
SELECT * FROM strata.read_stream('cart-1', -1);
SELECT * FROM strata.read_stream('cart-1', 0, 0);
SELECT * FROM strata.read_stream('cart-1', 0, 1000001);
SELECT * FROM strata.read_stream('');
SELECT * FROM strata.read_all(-1);
SELECT * FROM strata.read_all(0, -5);
SELECT * FROM strata.read_category('cart-1');
SELECT * FROM strata.read_category('');
SELECT * FROM strata.read_category(E'ca\rt');
SELECT * FROM strata.read_category('cart', -1);
SELECT * FROM strata.read_category('cart', 0, 0);
-- NULL arguments give no rows (the functions are strict)
SELECT count(*) FROM strata.read_all(NULL);
SELECT count(*) FROM strata.read_stream(NULL);
