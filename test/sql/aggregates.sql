-- aggregates: define_aggregate, load, snapshots, time travel, redefinition,
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- read-only loads, reducer errors.
CREATE FUNCTION acct_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	CASE e.type
		WHEN 'Opened' THEN
			RETURN jsonb_build_object('owner', e.data->'owner', 'balance', 0);
		WHEN 'Deposited' THEN
			RETURN jsonb_set(state, '{balance}',
				to_jsonb((state->>'balance')::numeric + (e.data->>'amount')::numeric));
		WHEN 'Withdrawn' THEN
			RETURN jsonb_set(state, '{balance}',
				to_jsonb((state->>'balance')::numeric - (e.data->>'amount')::numeric));
		WHEN 'Poison' THEN
			RAISE EXCEPTION 'cannot fold poison' USING ERRCODE = '22012';
		ELSE
			RETURN state;
	END CASE;
END $$;

-- a reducer in SQL counts events: the fold is the same whatever the language
CREATE FUNCTION count_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1,
							  'last', e.type) $$;

SELECT strata.define_aggregate('acct', 'acct_reduce(jsonb, strata.events)',
	'{"balance": null}', snapshot_every => 3);
SELECT strata.define_aggregate('counter', 'count_reduce(jsonb, strata.events)');

-- a stream without events: the initial state at version -1
SELECT * FROM strata.load('acct-1');

SELECT strata.append('acct-1', '[
	{"type": "Opened", "data": {"owner": "ann"}},
	{"type": "Deposited", "data": {"amount": 100}},
	{"type": "Withdrawn", "data": {"amount": 30}},
	{"type": "Deposited", "data": {"amount": 5}},
	{"type": "Noted"}
]');
SELECT * FROM strata.load('acct-1');
SELECT (strata.load('acct-1')).state->>'balance' AS balance;

-- time travel: the state as of a version
SELECT v, (strata.load('acct-1', v)).* FROM generate_series(-1, 6) v;

-- snapshots: the load above folded 5 events (>= 3): one snapshot at the head
SELECT stream, category, version, state FROM strata.snapshots ORDER BY version;
-- a load starts from the newest usable snapshot, folding only what follows
SELECT strata.append('acct-1', '{"type": "Deposited", "data": {"amount": 1}}');
SELECT * FROM strata.load('acct-1');
SELECT count(*) AS snapshots FROM strata.snapshots WHERE stream = 'acct-1';
SELECT strata.append('acct-1', '[{"type": "Deposited", "data": {"amount": 1}}, {"type": "Deposited", "data": {"amount": 1}}]');
SELECT * FROM strata.load('acct-1');
SELECT version FROM strata.snapshots WHERE stream = 'acct-1' ORDER BY version;
-- a snapshot is used only at or below at_version
SELECT * FROM strata.load('acct-1', 3);

-- the same state with snapshots off: snapshot_every 0 folds from scratch
SELECT strata.define_aggregate('counter', 'count_reduce(jsonb, strata.events)', '{}', 0);

-- redefining makes old snapshots unusable (and deletes them)
CREATE FUNCTION acct_reduce_doubled(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql SET search_path = public, pg_temp
AS $$ SELECT jsonb_set(acct_reduce(state, e), '{version2}', 'true') $$;
SELECT definition_id AS old_def FROM strata.aggregates WHERE category = 'acct' \gset
SELECT strata.define_aggregate('acct', 'acct_reduce_doubled(jsonb, strata.events)', '{"balance": null}', 3);
SELECT definition_id > :old_def AS new_definition FROM strata.aggregates WHERE category = 'acct';
SELECT count(*) AS old_snapshots FROM strata.snapshots WHERE stream = 'acct-1';
SELECT * FROM strata.load('acct-1');
SELECT version, state->'version2' AS from_new_reducer FROM strata.snapshots WHERE stream = 'acct-1';

-- a reducer replaced with CREATE OR REPLACE: snapshots are not used
CREATE OR REPLACE FUNCTION acct_reduce_doubled(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql SET search_path = public, pg_temp
AS $$ SELECT jsonb_set(acct_reduce(state, e), '{version3}', 'true') $$;
SELECT * FROM strata.load('acct-1');
SELECT count(*) AS snapshots_unchanged FROM strata.snapshots WHERE stream = 'acct-1';
SELECT strata.define_aggregate('acct', 'acct_reduce(jsonb, strata.events)', '{"balance": null}', 3);

-- load in a read-only transaction: works, writes no snapshot
SELECT count(*) AS before FROM strata.snapshots \gset
BEGIN READ ONLY;
SELECT * FROM strata.load('acct-1');
COMMIT;
SELECT count(*) - :before AS written_read_only FROM strata.snapshots;
SELECT * FROM strata.load('acct-1');
SELECT count(*) - :before AS written_read_write FROM strata.snapshots;

-- load sees the transaction's own appends, and a rollback takes its snapshot
BEGIN;
SELECT strata.append('acct-2', '[{"type": "Opened", "data": {"owner": "bob"}}, {"type": "Deposited", "data": {"amount": 7}}, {"type": "Deposited", "data": {"amount": 7}}]');
SELECT * FROM strata.load('acct-2');
ROLLBACK;
SELECT * FROM strata.load('acct-2');
SELECT count(*) FROM strata.snapshots WHERE stream = 'acct-2';

-- a reducer error: load fails with it, naming the stream and the version
SELECT strata.append('acct-3', '[{"type": "Opened"}, {"type": "Poison"}]');
SELECT count(*) AS before FROM strata.snapshots \gset
SELECT * FROM strata.load('acct-3');
SELECT count(*) - :before AS written FROM strata.snapshots;
SELECT * FROM strata.load('acct-3', 0);

-- a reducer returning NULL
CREATE FUNCTION null_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT strata.define_aggregate('nul', 'null_reduce(jsonb, strata.events)');
SELECT strata.append('nul-1', '{"type": "X"}');
SELECT * FROM strata.load('nul-1');

-- the counter aggregate (an SQL reducer)
SELECT strata.append('counter-1', '[{"type": "A"}, {"type": "B"}, {"type": "C"}]');
SELECT * FROM strata.load('counter-1');

-- errors
SELECT * FROM strata.load('nothing-1');
SELECT * FROM strata.load('acct-1', -2);
SELECT * FROM strata.load(NULL);
SELECT * FROM strata.load('');
SELECT strata.define_aggregate('acct-x', 'acct_reduce(jsonb, strata.events)');
SELECT strata.define_aggregate('', 'acct_reduce(jsonb, strata.events)');
SELECT strata.define_aggregate('acct', 'count_reduce(jsonb, strata.events)', '{}', -1);
SELECT strata.define_aggregate('acct', NULL);
CREATE FUNCTION wrong_reduce(state jsonb, e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT state $$;
SELECT strata.define_aggregate('acct', 'wrong_reduce(jsonb, jsonb)');
CREATE FUNCTION wrong_reduce2(state jsonb, e strata.events) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;
SELECT strata.define_aggregate('acct', 'wrong_reduce2(jsonb, strata.events)');
CREATE FUNCTION wrong_reduce3(state jsonb, e strata.events) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT state $$;
SELECT strata.define_aggregate('acct', 'wrong_reduce3(jsonb, strata.events)');
SELECT strata.define_aggregate('acct', 'no_such_function(jsonb, strata.events)');
SELECT strata.drop_aggregate('nothing');

-- a reducer dropped after the definition
CREATE FUNCTION gone_reduce(state jsonb, e strata.events) RETURNS jsonb LANGUAGE sql AS $$ SELECT state $$;
SELECT strata.define_aggregate('gone', 'gone_reduce(jsonb, strata.events)');
DROP FUNCTION gone_reduce(jsonb, strata.events);
SELECT strata.append('gone-1', '{"type": "X"}');
SELECT * FROM strata.load('gone-1');

-- drop_aggregate removes the definition and its snapshots
SELECT strata.drop_aggregate('acct');
SELECT count(*) FROM strata.snapshots WHERE category = 'acct';
SELECT * FROM strata.load('acct-1');
SELECT kind, name FROM strata.definitions ORDER BY 1, 2;

-- the first load of a new session: the initial state and the snapshot
-- state read by SPI must outlive the lookup (a use-after-free once made
-- this fail with "unknown type of jsonb container")
CREATE FUNCTION fresh_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	RETURN jsonb_set(state, '{balance}',
		to_jsonb((state->>'balance')::numeric + (e.data->>'amount')::numeric));
END $$;
SELECT strata.define_aggregate('fresh', 'fresh_reduce(jsonb, strata.events)', '{"balance": 0}', 0);
SELECT strata.define_aggregate('freshsnap', 'fresh_reduce(jsonb, strata.events)', '{"balance": 0}', 10);
SELECT strata.append('fresh-1', (SELECT jsonb_agg(jsonb_build_object('type', 'D', 'data', jsonb_build_object('amount', i))) FROM generate_series(1, 1000) i));
SELECT strata.append('freshsnap-1', (SELECT jsonb_agg(jsonb_build_object('type', 'D', 'data', jsonb_build_object('amount', i))) FROM generate_series(1, 1000) i));
SELECT version FROM strata.load('freshsnap-1');
SELECT strata.append('freshsnap-1', '{"type": "D", "data": {"amount": 1}}');
\c -
SELECT * FROM strata.load('fresh-1');
\c -
SELECT * FROM strata.load('freshsnap-1');
