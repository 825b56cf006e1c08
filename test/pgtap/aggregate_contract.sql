-- aggregate_contract.sql (pgTAP): the aggregate, command and projection
-- surface as assertions: function properties and the SQLSTATE of every
-- refusal.
BEGIN;
SELECT plan(29);

SELECT has_table('strata', 'aggregates', 'strata.aggregates exists');
SELECT has_table('strata', 'snapshots', 'strata.snapshots exists');
SELECT has_table('strata', 'commands', 'strata.commands exists');
SELECT has_table('strata', 'projections', 'strata.projections exists');
SELECT has_view('strata', 'definitions', 'strata.definitions exists');
SELECT function_returns('strata', 'load', ARRAY['text', 'bigint'], 'record');
SELECT is((SELECT string_agg(parameter_name || ':' || parameter_mode, ',' ORDER BY ordinal_position)
		   FROM information_schema.parameters WHERE specific_schema = 'strata'
		   AND specific_name = (SELECT specific_name FROM information_schema.routines
								WHERE routine_schema = 'strata' AND routine_name = 'load')),
	'stream:IN,at_version:IN,state:OUT,version:OUT', 'load returns (state jsonb, version bigint) as OUT parameters');
SELECT volatility_is('strata', 'load', ARRAY['text', 'bigint'], 'volatile');
SELECT function_returns('strata', 'execute', ARRAY['text', 'jsonb'], 'bigint');
SELECT function_returns('strata', 'rebuild_projection', ARRAY['text', 'regprocedure'], 'bigint');
SELECT ok(NOT has_table_privilege('public', 'strata.projections', 'SELECT'),
	'the definition tables are private (the functions read them as the extension owner)');
SELECT ok(has_table_privilege('public', 'strata.definitions', 'SELECT'),
	'every role can read strata.definitions (its own definitions)');
SELECT ok(NOT has_function_privilege('public', 'strata.execute(text, jsonb)', 'EXECUTE'),
	'PUBLIC cannot execute commands');

CREATE FUNCTION pg_temp.r(state jsonb, e strata.events) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
CREATE FUNCTION pg_temp.h(state jsonb, cmd jsonb) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT cmd->'emit' $$;
CREATE FUNCTION pg_temp.bad(state jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT state $$;

SELECT lives_ok($$SELECT strata.define_aggregate('tapagg', 'pg_temp.r(jsonb, strata.events)')$$, 'define an aggregate');
SELECT lives_ok($$SELECT strata.define_command('TapEmit', 'tapagg', 'pg_temp.h(jsonb, jsonb)')$$, 'define a command');
SELECT is(strata.execute('tapagg-1', '{"type": "TapEmit", "emit": {"type": "Emitted"}}'), 0::bigint, 'execute appends version 0');
SELECT is((strata.load('tapagg-1')).state, '{"n": 1}'::jsonb, 'load folds it');

SELECT throws_ok($$SELECT strata.load('tapnone-1')$$, '42704', NULL, 'no aggregate for the category: 42704');
SELECT throws_ok($$SELECT strata.execute('tapagg-1', '{"type": "TapNothing"}')$$, '42704', NULL, 'unknown command type: 42704');
SELECT throws_ok($$SELECT strata.drop_projection('tap-nothing')$$, '42704', NULL, 'unknown projection: 42704');
SELECT throws_ok($$SELECT strata.define_aggregate('tapagg', 'pg_temp.bad(jsonb)')$$, '42P13', NULL, 'reducer with the wrong signature: 42P13');
SELECT throws_ok($$SELECT strata.define_command('TapX', 'tapagg', 'pg_temp.bad(jsonb)')$$, '42P13', NULL, 'handler with the wrong signature: 42P13');
SELECT throws_ok($$SELECT strata.execute('tapagg-1', '{"type": "TapEmit", "emit": [{"type": "A"}]}')$$, 'ST004', NULL, 'handler result not one event: ST004');
SELECT throws_ok($$SELECT strata.execute('tapagg-1', '{"type": "TapEmit"}')$$, 'ST004', NULL, 'handler result NULL: ST004');
SELECT throws_ok($$SELECT strata.execute('tapagg-1', '{"no": "type"}')$$, '22023', NULL, 'command without type: 22023');
SELECT throws_ok($$SELECT strata.execute('other-1', '{"type": "TapEmit"}')$$, '22023', NULL, 'command on another category: 22023');
SELECT throws_ok($$SELECT strata.load('tapagg-1', -5)$$, '22023', NULL, 'at_version below -1: 22023');
SELECT throws_ok($$SELECT strata.grant_privileges(current_user::regrole, 'admin')$$, '22023', NULL, 'unknown privilege set: 22023');
SELECT is(strata.stream_version('tapagg-1'), 0::bigint, 'the refusals appended nothing');

SELECT * FROM finish();
ROLLBACK;
