-- schema.sql (pgTAP): the catalogue of the extension, checked object by
-- object: tables, columns, constraints, indexes, function properties,
-- comments on every public object, and privileges.
BEGIN;
SELECT plan(47);

SELECT has_schema('strata');
SELECT has_table('strata', 'events', 'strata.events exists');
SELECT has_table('strata', 'streams', 'strata.streams exists');
SELECT has_sequence('strata', '_position_seq', 'the position sequence exists');

SELECT columns_are('strata', 'events',
	ARRAY['position', 'stream', 'version', 'id', 'type', 'data', 'metadata',
		  'recorded_at', 'category']);
SELECT col_type_is('strata', 'events', 'position', 'bigint', 'events.position is bigint');
SELECT col_type_is('strata', 'events', 'stream', 'text', 'events.stream is text');
SELECT col_type_is('strata', 'events', 'version', 'bigint', 'events.version is bigint');
SELECT col_type_is('strata', 'events', 'id', 'uuid', 'events.id is uuid');
SELECT col_type_is('strata', 'events', 'type', 'text', 'events.type is text');
SELECT col_type_is('strata', 'events', 'data', 'jsonb', 'events.data is jsonb');
SELECT col_type_is('strata', 'events', 'metadata', 'jsonb', 'events.metadata is jsonb');
SELECT col_type_is('strata', 'events', 'recorded_at', 'timestamp with time zone', 'events.recorded_at is timestamp with time zone');
SELECT col_type_is('strata', 'events', 'category', 'text', 'events.category is text');
SELECT is((SELECT count(*)::int FROM information_schema.columns
		   WHERE table_schema = 'strata' AND table_name = 'events'
		   AND is_nullable = 'YES'), 0, 'no column of strata.events is nullable');

SELECT col_is_pk('strata', 'events', 'position', 'position is the primary key');
SELECT col_is_unique('strata', 'events', ARRAY['stream', 'version'],
	'(stream, version) is unique');
SELECT col_is_unique('strata', 'events', 'id', 'id is unique');
SELECT has_index('strata', 'events', 'events_category_position_idx',
	ARRAY['category', '"position"'], 'category reads have their index');
SELECT col_is_pk('strata', 'streams', 'stream', 'stream is the key of streams');
SELECT has_trigger('strata', 'events', 'events_immutable', 'the immutability trigger exists');

-- functions: signature, volatility, strictness, parallel safety
SELECT function_returns('strata', 'append', ARRAY['text', 'jsonb', 'bigint'], 'bigint');
SELECT volatility_is('strata', 'append', ARRAY['text', 'jsonb', 'bigint'], 'volatile');
SELECT isnt_strict('strata', 'append', ARRAY['text', 'jsonb', 'bigint'],
	'append is not strict: NULL expected_version means any');
SELECT function_returns('strata', 'stream_version', ARRAY['text'], 'bigint');
SELECT volatility_is('strata', 'stream_version', ARRAY['text'], 'stable');
SELECT is_strict('strata', 'stream_version', ARRAY['text']);
SELECT volatility_is('strata', 'category', ARRAY['text'], 'immutable');
SELECT function_returns('strata', 'read_stream', ARRAY['text', 'bigint', 'integer'], 'setof strata.events');
SELECT function_returns('strata', 'read_all', ARRAY['bigint', 'integer'], 'setof strata.events');
SELECT function_returns('strata', 'read_category', ARRAY['text', 'bigint', 'integer'], 'setof strata.events');
SELECT volatility_is('strata', 'read_stream', ARRAY['text', 'bigint', 'integer'], 'stable');
SELECT volatility_is('strata', 'read_all', ARRAY['bigint', 'integer'], 'volatile');
SELECT volatility_is('strata', 'read_category', ARRAY['text', 'bigint', 'integer'], 'volatile');
SELECT is(
	(SELECT string_agg(proname || '=' || proparallel::text, ',' ORDER BY proname)
	 FROM pg_proc WHERE pronamespace = 'strata'::regnamespace
	 AND proname IN ('append', 'stream_version', 'category', 'read_stream', 'read_all', 'read_category')),
	'append=u,category=s,read_all=u,read_category=u,read_stream=s,stream_version=s',
	'parallel safety: safe where true, unsafe for writes and horizon reads');

-- every public object has a comment
SELECT is(
	(SELECT coalesce(string_agg(p.oid::regprocedure::text, ', '), '')
	 FROM pg_proc p WHERE p.pronamespace = 'strata'::regnamespace
	 AND obj_description(p.oid, 'pg_proc') IS NULL),
	'', 'every function has a comment');
SELECT is(
	(SELECT coalesce(string_agg(c.relname, ', '), '')
	 FROM pg_class c WHERE c.relnamespace = 'strata'::regnamespace
	 AND c.relkind IN ('r', 'v', 'S') AND obj_description(c.oid, 'pg_class') IS NULL),
	'', 'every table, view and sequence has a comment');
SELECT is(
	(SELECT coalesce(string_agg(c.relname || '.' || a.attname, ', '), '')
	 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	 WHERE c.relnamespace = 'strata'::regnamespace AND c.relkind = 'r'
	 AND a.attnum > 0 AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NULL),
	'', 'every column has a comment');
SELECT is(
	(SELECT coalesce(string_agg(p.proname, ', '), '')
	 FROM pg_proc p WHERE p.pronamespace = 'strata'::regnamespace
	 AND p.proname LIKE '\_%' AND obj_description(p.oid, 'pg_proc') NOT LIKE 'Private:%'),
	'', 'private functions start with _ and say so');

-- privileges: nothing for PUBLIC on the tables, no EXECUTE on append
SELECT ok(NOT has_table_privilege('public', 'strata.events', 'SELECT'), 'PUBLIC cannot read events');
SELECT ok(NOT has_table_privilege('public', 'strata.events', 'INSERT'), 'PUBLIC cannot insert events');
SELECT ok(NOT has_table_privilege('public', 'strata.streams', 'UPDATE'), 'PUBLIC cannot update streams');
SELECT ok(NOT has_function_privilege('public', 'strata.append(text, jsonb, bigint)', 'EXECUTE'),
	'PUBLIC cannot append');

-- the install is a proper extension: every object belongs to it
SELECT is(
	(SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'strata'::regnamespace
	 AND c.relkind IN ('r', 'S', 'v')
	 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')),
	0, 'every relation is a member of the extension');
SELECT is(
	(SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_extension e,
	 unnest(e.extconfig) cfg JOIN pg_class c ON c.oid = cfg WHERE e.extname = 'strata'),
	ARRAY['_definition_seq', '_position_seq', 'aggregates', 'commands', 'events',
		  'parked_events', 'projections', 'snapshots', 'streams', 'subscriptions'],
	'pg_dump keeps the log, the streams, the positions, the definitions, the snapshots and the subscriptions');
SELECT is(current_setting('strata.max_event_size'), '1MB', 'strata.max_event_size defaults to 1MB');
SELECT is((SELECT context FROM pg_settings WHERE name = 'strata.max_event_size'), 'superuser',
	'only a superuser may change strata.max_event_size');

SELECT * FROM finish();
ROLLBACK;
