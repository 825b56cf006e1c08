-- schema.sql (pgTAP): the catalogue of the extension, checked object by
-- object: tables, columns, constraints, indexes, function properties,
-- comments on every public object, and privileges.
BEGIN;
SELECT plan(73);

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

-- 0.4.0: owners, the grant sets, and the tables only the extension writes
SELECT has_function('strata', 'alter_subscription_owner', ARRAY['text', 'regrole']);
SELECT has_function('strata', 'grant_privileges', ARRAY['regrole', 'text']);
-- 0.5.0: the status view's worker state, progress
SELECT has_function('strata', '_worker_status', ARRAY[]::text[]);
SELECT hasnt_function('strata', '_worker_error', ARRAY[]::text[]);
SELECT has_function('strata', '_progress', ARRAY[]::text[]);
SELECT has_view('strata', 'progress', 'strata.progress exists');
-- 0.6.0: epochs
SELECT has_table('strata', 'epochs', 'strata.epochs exists');
SELECT has_pk('strata', 'epochs', 'strata.epochs has a primary key');
SELECT col_is_null('strata', 'epochs', 'survived_position', 'epochs.survived_position may be NULL (the first epoch)');
SELECT ok(NOT has_table_privilege('public', 'strata.epochs', 'INSERT'), 'PUBLIC cannot write epochs');
SELECT col_type_is('strata', 'aggregates', 'owner', 'regrole', 'aggregates.owner is regrole');
SELECT col_type_is('strata', 'commands', 'owner', 'regrole', 'commands.owner is regrole');
SELECT col_type_is('strata', 'projections', 'owner', 'regrole', 'projections.owner is regrole');
SELECT col_type_is('strata', 'subscriptions', 'owner', 'regrole', 'subscriptions.owner is regrole');
SELECT col_is_null('strata', 'aggregates', 'owner', 'aggregates.owner is NULL once its role is dropped');
SELECT col_is_null('strata', 'commands', 'owner', 'commands.owner is NULL once its role is dropped');
SELECT col_is_null('strata', 'projections', 'owner', 'projections.owner is NULL once its role is dropped');
SELECT col_is_null('strata', 'subscriptions', 'owner', 'subscriptions.owner is NULL once its role is dropped');
SELECT is(
	(SELECT attname::text FROM pg_attribute WHERE attrelid = 'strata.definitions'::regclass
	 ORDER BY attnum DESC LIMIT 1), 'owner', 'the last column of strata.definitions is owner');
SELECT is(
	(SELECT attname::text FROM pg_attribute WHERE attrelid = 'strata.subscription_status'::regclass
	 ORDER BY attnum DESC LIMIT 1), 'owner', 'the last column of strata.subscription_status is owner');
SELECT is(
	(SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text)
	 FROM pg_proc p WHERE p.pronamespace = 'strata'::regnamespace
	 AND has_function_privilege('public', p.oid, 'EXECUTE')),
	'strata._forbid_change(), strata._progress(), strata._worker_status(), '
	'strata.category(text), '
	'strata.read_all(bigint,integer), strata.read_category(text,bigint,integer), '
	'strata.read_stream(text,bigint,integer), strata.stream_version(text), '
	'strata.wait_for(text,bigint,interval)',
	'PUBLIC executes only the reads (and what the trigger and the status views call)');
SELECT is(
	(SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
	 FROM pg_class c WHERE c.relnamespace = 'strata'::regnamespace
	 AND c.relkind IN ('r', 'v', 'S') AND has_table_privilege('public', c.oid, 'SELECT')),
	'definitions, epochs, parked_events, progress, subscription_status, subscriptions',
	'PUBLIC reads only the views, the subscription tables and the epochs');
SELECT is(
	(SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
	 FROM pg_class c WHERE c.relnamespace = 'strata'::regnamespace AND c.relrowsecurity),
	'parked_events, subscriptions',
	'row-level security shows each role its own subscriptions and parked events');
SELECT is(
	(SELECT count(*)::int FROM pg_class c
	 CROSS JOIN LATERAL aclexplode(c.relacl) a
	 WHERE c.relnamespace = 'strata'::regnamespace AND c.relkind IN ('r', 'S')
	 AND a.grantee <> c.relowner
	 AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'USAGE')),
	0, 'nobody but the extension owner may write the extension''s tables');

-- the install is a proper extension: every object belongs to it
SELECT is(
	(SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'strata'::regnamespace
	 AND c.relkind IN ('r', 'S', 'v')
	 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')),
	0, 'every relation is a member of the extension');
SELECT is(
	(SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_extension e,
	 unnest(e.extconfig) cfg JOIN pg_class c ON c.oid = cfg WHERE e.extname = 'strata'),
	ARRAY['_definition_seq', '_position_seq', 'aggregates', 'commands', 'epochs',
		  'events', 'parked_events', 'projections', 'snapshots', 'streams',
		  'subscriptions'],
	'pg_dump keeps the log, the streams, the positions, the definitions, the snapshots, the subscriptions and the epochs');
SELECT is(current_setting('strata.max_event_size'), '1MB', 'strata.max_event_size defaults to 1MB');
SELECT is((SELECT context FROM pg_settings WHERE name = 'strata.max_event_size'), 'superuser',
	'only a superuser may change strata.max_event_size');
SELECT is(current_setting('strata.worker_memory'), '32MB', 'strata.worker_memory defaults to 32MB');
SELECT is((SELECT context || ' ' || unit || ' ' || min_val FROM pg_settings WHERE name = 'strata.worker_memory'),
	'sighup kB 64', 'strata.worker_memory is set in kB, from 64kB, at reload');

SELECT * FROM finish();
ROLLBACK;
