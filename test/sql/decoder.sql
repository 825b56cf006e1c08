-- decoder: the "strata" logical decoding output plugin through the SQL
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- interface (needs wal_level = logical and, from PostgreSQL 15.19 on,
-- strata in output_plugin_libraries: see scripts/cluster.sh).
--
-- Every decoded object is parsed back with ::jsonb, which also checks that
-- the plugin writes valid JSON.  Positions, ids, xids, LSNs and times vary
-- from run to run: they are checked against strata.events instead of being
-- printed.
\set VERBOSITY default
SET client_min_messages = warning;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_strata', 'strata');

-- feed(options...): consume the slot, one row per decoded object, in order
CREATE FUNCTION public.feed(VARIADIC options text[] DEFAULT '{}')
	RETURNS TABLE (n bigint, lsn pg_lsn, d text, e jsonb) LANGUAGE sql AS $$
	SELECT row_number() OVER (), lsn, data, data::jsonb
	FROM pg_logical_slot_get_changes('regress_strata', NULL, NULL, VARIADIC options)
$$;
-- the stable part of an event object
CREATE FUNCTION public.ev(e jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(' ', e->>'stream', e->>'version', e->>'type',
					 e->>'category', e->'data', e->'metadata')
$$;

-- 1. Nothing written yet: nothing decoded.
SELECT count(*) FROM feed();

-- 2. Two appends: three events, in order, with every field.
SELECT strata.append('dacct-1', '[
	{"type": "Opened", "data": {"owner": "Ada \"the\" first\n"}},
	{"type": "Deposited", "data": {"amount": 100}, "metadata": {"by": "teller-7"}}]', -1);
SELECT strata.append('dorder-7', '{"type": "Placed", "data": [1, "two", null, 3.5, true]}');
CREATE TEMP TABLE got AS SELECT * FROM feed();
SELECT n, ev(e) FROM got ORDER BY n;
-- the keys of an event object, in the order written; one line each
SELECT string_agg(k, ' ') FROM got, LATERAL json_object_keys(d::json) k WHERE n = 1;
SELECT count(*) FILTER (WHERE d LIKE '%' || chr(10) || '%') AS multi_line FROM got;
-- every field agrees with the stored row
SELECT count(*) AS events,
	bool_and(x.id = (e->>'id')::uuid) AS id,
	bool_and(x.recorded_at = (e->>'recorded_at')::timestamptz) AS recorded_at,
	bool_and(e->>'recorded_at' LIKE '%+00:00') AS utc,
	bool_and(x.xmin = (e->>'xid')::xid) AS xid,
	bool_and((e->>'commit_lsn')::pg_lsn > got.lsn) AS commit_lsn,
	bool_and((e->>'commit_time')::timestamptz >= x.recorded_at) AS commit_time,
	bool_and(x.data = e->'data' AND x.metadata = e->'metadata') AS payload
	FROM got JOIN strata.events x ON x.position = (e->>'position')::bigint;
-- positions increase; the first two events share a transaction
SELECT bool_and(p > lag_p) AS increasing FROM (
	SELECT (e->>'position')::bigint p, lag((e->>'position')::bigint) OVER (ORDER BY n) lag_p FROM got) s;
SELECT count(DISTINCT e->>'xid') AS transactions, count(DISTINCT e->>'commit_lsn') AS commit_lsns FROM got;
DROP TABLE got;

-- 3. Other tables, updates and deletes, and the streams table: nothing.
CREATE TABLE public.other (k int PRIMARY KEY, v text);
INSERT INTO public.other VALUES (1, 'a'), (2, 'b');
UPDATE public.other SET v = 'c';
DELETE FROM public.other WHERE k = 1;
UPDATE strata.streams SET version = version WHERE stream = 'dorder-7';
SELECT count(*) FROM feed();

-- 4. Rolled back: never decoded.  A rolled-back savepoint drops only its part.
BEGIN;
SELECT strata.append('dacct-1', '{"type": "Withdrawn"}');
ROLLBACK;
BEGIN;
SELECT strata.append('dacct-2', '{"type": "Opened"}');
SAVEPOINT s;
SELECT strata.append('dacct-2', '{"type": "Lost"}');
ROLLBACK TO SAVEPOINT s;
SELECT strata.append('dacct-2', '{"type": "Kept"}');
INSERT INTO public.other VALUES (3, 'in the same transaction');
COMMIT;
SELECT n, ev(e) FROM feed() ORDER BY n;

-- 5. Empty transactions: no output, even with include-transaction.
BEGIN;
COMMIT;
INSERT INTO public.other VALUES (4, 'no event');
SELECT count(*) FROM feed('include-transaction', 'true');

-- 6. Filters.
SELECT strata.append('dacct-3', '[{"type": "Opened"}, {"type": "Deposited", "data": {"amount": 5}}]');
SELECT strata.append('dorder-8', '[{"type": "Placed"}, {"type": "Deposited"}]');
SELECT strata.append('daudit-1', '{"type": "LoginSeen"}');
SELECT strata.append('Mixed_Case-1', '{"type": "Opened"}');
SELECT n, ev(e) FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
	'categories', 'dacct') WITH ORDINALITY AS f(lsn, xid, d, n), LATERAL (SELECT d::jsonb e) j ORDER BY n;
SELECT n, ev(e) FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
	'categories', ' dorder ,daudit,	Mixed_Case ') WITH ORDINALITY AS f(lsn, xid, d, n), LATERAL (SELECT d::jsonb e) j ORDER BY n;
SELECT n, ev(e) FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
	'types', 'Opened,LoginSeen') WITH ORDINALITY AS f(lsn, xid, d, n), LATERAL (SELECT d::jsonb e) j ORDER BY n;
SELECT n, ev(e) FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
	'types', 'Deposited', 'categories', 'dorder') WITH ORDINALITY AS f(lsn, xid, d, n), LATERAL (SELECT d::jsonb e) j ORDER BY n;
-- case matters, and a filter matching nothing gives nothing
SELECT count(*) FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'categories', 'mixed_case');
-- include-data, include-metadata
SELECT (SELECT string_agg(key, ' ' ORDER BY key) FROM jsonb_object_keys(data::jsonb) key)
	FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
		'include-data', 'false', 'include-metadata', 'off') LIMIT 1;
SELECT count(*) FILTER (WHERE data::jsonb ? 'data') AS with_data,
	count(*) FILTER (WHERE data::jsonb ? 'metadata') AS with_metadata
	FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'include-data', '0', 'include-metadata', '1');
-- include-transaction: a begin and a commit object around each transaction
-- with events, and only around those that pass the filters
SELECT n, CASE WHEN e ? 'kind' THEN concat_ws(' ', e->>'kind', e->>'events') ELSE ev(e) END
	FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
		'include-transaction', 'on', 'categories', 'dacct,daudit')
	WITH ORDINALITY AS f(lsn, xid, d, n), LATERAL (SELECT d::jsonb e) j ORDER BY n;
SELECT bool_and(b.e->>'xid' = c.e->>'xid' AND b.e->>'commit_lsn' = c.e->>'commit_lsn'
		AND b.e->>'commit_time' = c.e->>'commit_time'
		AND (c.e->>'end_lsn')::pg_lsn > (c.e->>'commit_lsn')::pg_lsn) AS begin_matches_commit,
	bool_and(b.e->>'xid' = x.e->>'xid') AS events_carry_xid
	FROM (SELECT data::jsonb e, row_number() OVER () n FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'include-transaction', 'on')) b
	JOIN (SELECT data::jsonb e, row_number() OVER () n FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'include-transaction', 'on')) c
		ON c.e->>'kind' = 'commit' AND c.e->>'xid' = b.e->>'xid'
	JOIN (SELECT data::jsonb e FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL)) x
		ON x.e->>'commit_lsn' = b.e->>'commit_lsn'
	WHERE b.e->>'kind' = 'begin';
-- format text, for people
SELECT regexp_replace(data, '^(BEGIN|COMMIT|event) [0-9]+', '\1 <n>')
	FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL,
		'format', 'text', 'include-transaction', 'yes', 'categories', 'dacct');
SELECT count(*) FROM feed();

-- 7. Bad options: clear errors, and the slot is left as it was.
SELECT strata.append('dacct-4', '{"type": "Opened"}');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'include_data', 'false');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'include-data', 'maybe');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'include-transaction', '');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'format', 'xml');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'format', 'JSON');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'categories', '');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'categories', 'dacct,,dorder');
SELECT data FROM pg_logical_slot_peek_changes('regress_strata', NULL, NULL, 'types', ' , ');
SELECT data FROM pg_logical_slot_get_changes('regress_strata', NULL, NULL, 'include-data', 'true', 'x', 'y');
SELECT n, ev(e) FROM feed() ORDER BY n;

-- 8. Large values (TOASTed data) come back whole.
SELECT strata.append('blob-1', jsonb_build_object('type', 'Blob', 'data',
	jsonb_build_object('text', repeat('x', 300000), 'list', (SELECT jsonb_agg(g) FROM generate_series(1, 20000) g))));
SELECT count(*), bool_and(x.data = e->'data') AS same_data,
	bool_and(length(e->'data'->>'text') = 300000) AS length
	FROM feed() JOIN strata.events x ON x.position = (e->>'position')::bigint;

-- 9. A large transaction: 100,000 events, spilled to disk beyond a small
-- logical_decoding_work_mem, come out whole and in order.
SET logical_decoding_work_mem = '64kB';
BEGIN;
SELECT count(strata.append('dbulk-' || (g % 100),
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bulk', 'data', jsonb_build_object('i', i)))
	 FROM generate_series(1, 100) i)))
	FROM generate_series(1, 1000) g;
INSERT INTO public.other SELECT g, 'noise' FROM generate_series(100, 20099) g;
COMMIT;
SELECT count(*) AS events, count(DISTINCT e->>'xid') AS transactions,
	bool_and(p > lag_p) AS in_position_order,
	max(p) = (SELECT max(position) FROM strata.events) AS up_to_the_last
	FROM (SELECT e, (e->>'position')::bigint p, lag((e->>'position')::bigint) OVER (ORDER BY n) lag_p
		  FROM feed('include-metadata', 'false')) s;
RESET logical_decoding_work_mem;

-- 10. Another database's events never reach this database's slot.
SELECT current_database() AS home \gset
CREATE DATABASE regression_strata_other;
\c regression_strata_other
SET client_min_messages = warning;
CREATE EXTENSION strata;
SELECT strata.append('elsewhere-1', '{"type": "Elsewhere"}');
\c :home
SET client_min_messages = warning;
SELECT strata.append('here-1', '{"type": "Here"}');
SELECT n, ev(e) FROM feed() ORDER BY n;
DROP DATABASE regression_strata_other;

-- 11. DROP and CREATE EXTENSION between two events decoded in one call: the
-- plugin forgets the old table and finds the new one (a new OID).
SELECT strata.append('before-1', '{"type": "Before"}');
-- (CASCADE: earlier suites left reducers and handlers that take strata.events)
SET client_min_messages = warning;
DROP EXTENSION strata CASCADE;
RESET client_min_messages;
CREATE EXTENSION strata;
SELECT strata.append('reborn-1', '{"type": "Again"}');
SELECT n, ev(e), (e->>'position')::bigint = 1 AS new_sequence FROM feed() ORDER BY n;

SELECT pg_drop_replication_slot('regress_strata');
DROP FUNCTION public.feed(text[]), public.ev(jsonb);
DROP TABLE public.other;
