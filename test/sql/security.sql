-- security: the trust boundary of 0.4.0, one section per finding of the
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- security review of 0.3.0.  Each section shows something a role could do
-- in 0.3.0 (with the grants 0.3.0 documented) that it can no longer do,
-- or that now happens as the right role.  The worker's side (handlers of
-- several owners in one session, timeouts, pause) is in
-- test/t/030_security_worker.pl, pg_dump and role OIDs in
-- test/t/031_security_dump.pl.
--
-- Roles: alice (subscriber and definer), bob (writer and subscriber),
-- carol (reader), team (a group alice belongs to, reader), root (a
-- superuser: what an attacker wants to run as), stats (reader and member
-- of pg_read_all_stats).
CREATE ROLE regress_sec_alice;
CREATE ROLE regress_sec_bob;
CREATE ROLE regress_sec_carol;
CREATE ROLE regress_sec_team;
CREATE ROLE regress_sec_root SUPERUSER;
CREATE ROLE regress_sec_stats;
CREATE ROLE regress_sec_nosel;
GRANT regress_sec_team TO regress_sec_alice;
GRANT pg_read_all_stats TO regress_sec_stats;
SELECT strata.grant_privileges(r::regrole, k)
FROM (VALUES ('regress_sec_alice', 'subscriber'), ('regress_sec_alice', 'definer'),
			 ('regress_sec_bob', 'writer'), ('regress_sec_bob', 'subscriber'),
			 ('regress_sec_carol', 'reader'), ('regress_sec_team', 'reader'),
			 ('regress_sec_stats', 'reader')) AS g (r, k);
-- a schema for the roles' functions and tables; 'calls' records who ran what
CREATE SCHEMA regress_sec;
GRANT USAGE, CREATE ON SCHEMA regress_sec TO PUBLIC;
CREATE TABLE regress_sec.calls (n serial, what text, cu text, path text);
GRANT SELECT, INSERT ON regress_sec.calls TO PUBLIC;
GRANT USAGE ON SEQUENCE regress_sec.calls_n_seq TO PUBLIC;
-- the handlers of this file record: what, current_user, search_path
CREATE FUNCTION regress_sec.record(e strata.events) RETURNS void LANGUAGE sql
AS $$ INSERT INTO regress_sec.calls (what, cu, path)
	  VALUES (e.type, current_user, current_setting('search_path')) $$;

-- 9. subscribe with the default start_from => 'now', as a role with just
-- the subscriber grants (0.3.0: permission denied for the position
-- sequence)
SET ROLE regress_sec_alice;
SELECT strata.subscribe('regress_sec_alice_sub', 'regress_sec.record(strata.events)',
						categories => ARRAY['regsecsub']);
SELECT name, owner, state FROM strata.subscriptions WHERE name = 'regress_sec_alice_sub';
RESET ROLE;

-- 1. the owner of a subscription is what its handler runs as: nobody but
-- the extension writes strata.subscriptions, and
-- strata.alter_subscription_owner checks what ALTER ... OWNER TO checks.
SET ROLE regress_sec_alice;
-- 0.3.0: the subscriber grants let alice make her handler run as a superuser
SELECT try($$UPDATE strata.subscriptions SET owner = 'regress_sec_root'::regrole::oid
			 WHERE name = 'regress_sec_alice_sub'$$);
SELECT try($$INSERT INTO strata.subscriptions (name, handler, owner, watermark)
			 VALUES ('regress_sec_evil', 'regress_sec.record(strata.events)',
					 'regress_sec_root'::regrole::oid, 1)$$);
SELECT try($$DELETE FROM strata.subscriptions WHERE name = 'regress_sec_alice_sub'$$);
SELECT try($$DELETE FROM strata.parked_events$$);
-- a role alice is no member of: refused
SELECT try($$SELECT strata.alter_subscription_owner('regress_sec_alice_sub', 'regress_sec_root')$$);
SELECT try($$SELECT strata.alter_subscription_owner('regress_sec_alice_sub', 'regress_sec_bob')$$);
RESET ROLE;
-- a role she is a member of, which may not read the events: refused
CREATE ROLE regress_sec_noread;
GRANT regress_sec_noread TO regress_sec_alice;
SET ROLE regress_sec_alice;
SELECT try($$SELECT strata.alter_subscription_owner('regress_sec_alice_sub', 'regress_sec_noread')$$);
-- the team: allowed; the handler runs as the team from now on
SELECT strata.alter_subscription_owner('regress_sec_alice_sub', 'regress_sec_team');
SELECT name, owner FROM strata.subscriptions WHERE name = 'regress_sec_alice_sub';
RESET ROLE;
-- bob has not the privileges of the team: he may not take it, nor pause it
SET ROLE regress_sec_bob;
SELECT try($$SELECT strata.alter_subscription_owner('regress_sec_alice_sub', 'regress_sec_bob')$$);
SELECT try($$SELECT strata.pause_subscription('regress_sec_alice_sub')$$);
SELECT try($$SELECT strata.unsubscribe('regress_sec_alice_sub')$$);
SELECT strata.append('regsecsub-1', '{"type": "AfterAlter"}');
RESET ROLE;
SELECT strata.wait_for('regress_sec_alice_sub', (SELECT max(position) FROM strata.events), '30s');
SELECT what, cu, path FROM regress_sec.calls ORDER BY n;
SELECT owner, state, attempts, last_error FROM strata.subscriptions WHERE name = 'regress_sec_alice_sub';
-- a superuser may give it to anyone (as ALTER ... OWNER TO), here back to alice
SELECT strata.alter_subscription_owner('regress_sec_alice_sub', 'regress_sec_alice');
SELECT name, owner FROM strata.subscriptions WHERE name = 'regress_sec_alice_sub';
TRUNCATE regress_sec.calls;

-- 5. writers write through strata.append only: no row with a position of
-- their choosing (0.3.0: the documented INSERT on strata.events), no
-- stream version rewound (0.3.0: UPDATE on strata.streams)
SET ROLE regress_sec_bob;
SELECT strata.append('regsecw-1', '[{"type": "A"}, {"type": "B"}]');
SELECT try($$INSERT INTO strata.events (position, stream, version, id, type, data, metadata,
										recorded_at, category)
			 VALUES (9223372036854775807, 'regsecw-1', 2, gen_random_uuid(), 'Forged', '{}', '{}',
					 now(), 'regsecw')$$);
SELECT try($$UPDATE strata.streams SET version = 0 WHERE stream = 'regsecw-1'$$);
SELECT try($$INSERT INTO strata.streams VALUES ('regsecw-2', 41)$$);
SELECT try($$DELETE FROM strata.streams WHERE stream = 'regsecw-1'$$);
SELECT try($$SELECT nextval('strata._position_seq')$$);
SELECT version, type FROM strata.read_stream('regsecw-1');
SELECT strata.stream_version('regsecw-1');
RESET ROLE;
-- and positions stop one below the largest bigint: position + 1 never
-- overflows in the subscriptions' progress ranges
SELECT seqmax FROM pg_sequence WHERE seqrelid = 'strata._position_seq'::regclass;

-- 7. an inline projection's handler runs as the projection's owner, not as
-- the appender: bob appends without any privilege on alice's handler or
-- read model, and alice's code cannot use bob's session
SET ROLE regress_sec_alice;
CREATE TABLE regress_sec.alice_model (type text, cu text, path text);
-- a deferred constraint trigger would fire at commit, after the call
CREATE TABLE regress_sec.alice_deferred (x int);
CREATE FUNCTION regress_sec.alice_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_sec.alice_model VALUES ('trigger', current_user, current_setting('search_path'));
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER alice_deferred AFTER INSERT ON regress_sec.alice_deferred
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION regress_sec.alice_trigger();
CREATE FUNCTION regress_sec.alice_project(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF e.type = 'TempTable' THEN
		CREATE TEMP TABLE regress_sec_alice_tmp (x int);
	ELSIF e.type = 'SetRole' THEN
		SET ROLE regress_sec_team;
	ELSIF e.type = 'SessionAuthorization' THEN
		SET SESSION AUTHORIZATION regress_sec_alice;
	ELSIF e.type = 'Prepare' THEN
		PREPARE regress_sec_alice_stmt AS SELECT 1;
	ELSIF e.type = 'Listen' THEN
		LISTEN regress_sec_alice_channel;
	ELSIF e.type = 'Deferred' THEN
		INSERT INTO regress_sec.alice_deferred VALUES (1);
	ELSIF e.type = 'SetConfig' THEN
		PERFORM set_config('search_path', 'regress_sec, public', false);
		PERFORM set_config('work_mem', '77kB', false);
	END IF;
	INSERT INTO regress_sec.alice_model VALUES (e.type, current_user, current_setting('search_path'));
END $$;
REVOKE EXECUTE ON FUNCTION regress_sec.alice_project(strata.events) FROM PUBLIC;
SELECT strata.define_projection('regress_sec_alice_model', 'regress_sec.alice_project(strata.events)',
								ARRAY['regsecp']);
RESET ROLE;
SET ROLE regress_sec_bob;
SELECT has_function_privilege('regress_sec.alice_project(strata.events)', 'EXECUTE') AS bob_may_execute,
	   has_table_privilege('regress_sec.alice_model', 'INSERT') AS bob_may_insert;
SELECT strata.append('regsecp-1', '{"type": "Opened"}');
-- the handler's settings do not outlive its call
SET work_mem = '1MB';
SELECT strata.append('regsecp-1', '{"type": "SetConfig"}');
SELECT current_user, current_setting('search_path') AS path, current_setting('work_mem') AS work_mem;
-- no temporary table, no SET ROLE: a security-restricted operation
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "TempTable"}')$$);
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "SetRole"}')$$);
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "SessionAuthorization"}')$$);
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "Prepare"}')$$);
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "Listen"}')$$);
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "Deferred"}')$$);
SELECT name FROM pg_prepared_statements;
SELECT pg_listening_channels();
RESET work_mem;
-- bob cannot read the model; alice can: written as alice, by bob's appends
SELECT try($$SELECT * FROM regress_sec.alice_model$$);
RESET ROLE;
SELECT * FROM regress_sec.alice_model;
SELECT strata.stream_version('regsecp-1');

-- reducers run as the aggregate's owner, command handlers as the
-- command's owner; neither needs a privilege of the caller
SET ROLE regress_sec_alice;
CREATE FUNCTION regress_sec.alice_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('work_mem', '77kB', false);
	RETURN jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1, 'cu', current_user,
							  'path', current_setting('search_path'));
END $$;
CREATE FUNCTION regress_sec.alice_handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('type', 'Handled',
	'data', jsonb_build_object('cu', current_user, 'seen', state->'n')) $$;
REVOKE EXECUTE ON FUNCTION regress_sec.alice_reduce(jsonb, strata.events),
	regress_sec.alice_handle(jsonb, jsonb) FROM PUBLIC;
SELECT strata.define_aggregate('regsecp', 'regress_sec.alice_reduce(jsonb, strata.events)');
SELECT strata.define_command('RegSecHandle', 'regsecp', 'regress_sec.alice_handle(jsonb, jsonb)');
RESET ROLE;
SET ROLE regress_sec_bob;
SELECT state, version FROM strata.load('regsecp-1');
SELECT current_setting('work_mem') AS work_mem;
SELECT strata.execute('regsecp-1', '{"type": "RegSecHandle"}');
SELECT type, data FROM strata.read_stream('regsecp-1', 2);
RESET ROLE;
SELECT type, cu FROM regress_sec.alice_model WHERE type = 'Handled';

-- 4. load and execute hand out what events make: the caller needs SELECT
-- on strata.events, like the read functions (0.3.0: load folded events
-- its caller could not SELECT).  An aggregate anyone may run the reducer of,
-- defined by a superuser:
SET ROLE regress_sec_root;
CREATE FUNCTION regress_sec.count_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
SELECT strata.define_aggregate('regsecw', 'regress_sec.count_reduce(jsonb, strata.events)');
SELECT strata.define_command('RegSecCount', 'regsecw', 'regress_sec.alice_handle(jsonb, jsonb)');
CREATE FUNCTION regress_sec.any_handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT '{"type": "Handled"}'::jsonb $$;
RESET ROLE;
GRANT USAGE ON SCHEMA strata TO regress_sec_nosel;
GRANT EXECUTE ON FUNCTION strata.load(text, bigint), strata.execute(text, jsonb) TO regress_sec_nosel;
-- the other grants 0.3.0 documented "to load aggregates and execute commands"
GRANT SELECT ON strata.aggregates, strata.commands, strata.snapshots TO regress_sec_nosel;
SET ROLE regress_sec_nosel;
SELECT try($$SELECT * FROM strata.load('regsecw-1')$$);
SELECT try($$SELECT strata.execute('regsecw-1', '{"type": "RegSecCount"}')$$);
SELECT try($$SELECT * FROM strata.read_all(0, 1)$$);
SELECT try($$SELECT * FROM strata.read_stream('regsecw-1')$$);
RESET ROLE;
REVOKE SELECT ON strata.aggregates, strata.commands, strata.snapshots FROM regress_sec_nosel;
-- nor may it own code that is handed events, or states made of them
GRANT EXECUTE ON FUNCTION strata.define_aggregate(text, regprocedure, jsonb, integer),
	strata.define_command(text, text, regprocedure, boolean),
	strata.define_projection(text, regprocedure, text[], text[], text),
	strata.subscribe(text, regprocedure, text[], text[], text, text) TO regress_sec_nosel;
SET ROLE regress_sec_nosel;
SELECT try($$SELECT strata.define_aggregate('regsecnosel', 'regress_sec.count_reduce(jsonb, strata.events)')$$);
SELECT try($$SELECT strata.define_command('RegSecNosel', 'regsecw', 'regress_sec.any_handle(jsonb, jsonb)')$$);
SELECT try($$SELECT strata.define_projection('regress_sec_nosel', 'regress_sec.record(strata.events)')$$);
SELECT try($$SELECT strata.subscribe('regress_sec_nosel', 'regress_sec.record(strata.events)',
									 start_from => 'beginning')$$);
RESET ROLE;

-- and refuse where row-level security on strata.events applies to the
-- caller: the extension reads the table by index, without the policies
-- (0.3.0: load folded the rows the policy hides)
ALTER TABLE strata.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_sec_hide_regsecw ON strata.events FOR SELECT
	USING (category <> 'regsecw');
GRANT EXECUTE ON FUNCTION strata.execute(text, jsonb) TO regress_sec_carol;
SET ROLE regress_sec_carol;
-- what the policy lets carol see
SELECT category, count(*) FROM strata.events WHERE category LIKE 'regsec%' GROUP BY 1 ORDER BY 1;
SELECT try($$SELECT * FROM strata.load('regsecw-1')$$);
SELECT try($$SELECT strata.execute('regsecw-1', '{"type": "RegSecCount"}')$$);
SELECT try($$SELECT * FROM strata.read_all(0, 1)$$);
SELECT try($$SELECT * FROM strata.read_stream('regsecw-1')$$);
RESET ROLE;
-- a role the policies do not apply to (the superuser) loads as before
SELECT * FROM strata.load('regsecw-1');
-- but the owners of the code are checked too: the superuser's append,
-- load and execute would hand alice's projection, reducer and command
-- handler rows the policies may hide from alice
SELECT try($$SELECT strata.append('regsecp-1', '{"type": "UnderRLS"}')$$);
SELECT try($$SELECT * FROM strata.load('regsecp-1')$$);
SELECT try($$SELECT strata.execute('regsecp-1', '{"type": "RegSecHandle"}')$$);
-- and alice cannot define such code while they apply to her
SET ROLE regress_sec_alice;
SELECT try($$SELECT strata.define_aggregate('regsecrls', 'regress_sec.count_reduce(jsonb, strata.events)')$$);
SELECT try($$SELECT strata.define_projection('regress_sec_rls', 'regress_sec.record(strata.events)')$$);
SELECT try($$SELECT strata.subscribe('regress_sec_rls', 'regress_sec.record(strata.events)')$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION strata.execute(text, jsonb) FROM regress_sec_carol;
DROP POLICY regress_sec_hide_regsecw ON strata.events;
ALTER TABLE strata.events DISABLE ROW LEVEL SECURITY;

-- 8. a role sees only the subscriptions, parked events and definitions of
-- the roles whose privileges it has (0.3.0: every role saw every
-- subscription's errors); pg_read_all_stats sees them all
SET ROLE regress_sec_alice;
CREATE FUNCTION regress_sec.alice_fail(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'alice''s secret %', e.type;
END $$;
SELECT strata.subscribe('regress_sec_alice_stop', 'regress_sec.alice_fail(strata.events)',
						categories => ARRAY['regsecfail'], on_error => 'stop');
SELECT strata.subscribe('regress_sec_alice_park', 'regress_sec.alice_fail(strata.events)',
						categories => ARRAY['regsecfail']);
RESET ROLE;
SET ROLE regress_sec_bob;
SELECT strata.append('regsecfail-1', '{"type": "Boom"}');
RESET ROLE;
SELECT public.wait_until($$SELECT count(*) = 1 FROM strata.subscriptions
	WHERE name = 'regress_sec_alice_stop' AND state = 'stopped'$$);
SELECT public.wait_until($$SELECT count(*) = 1 FROM strata.parked_events
	WHERE subscription = 'regress_sec_alice_park'$$);
SELECT public.wait_until($$SELECT count(*) = 3 FROM strata.subscription_status
	WHERE name LIKE 'regress_sec_alice%' AND state IN ('live', 'stopped')$$);
-- alice sees her own, and those of the team she belongs to
SET ROLE regress_sec_alice;
SELECT name, state, parked, last_error, owner FROM strata.subscription_status
WHERE name LIKE 'regress_sec%' ORDER BY name;
SELECT subscription, attempts, error, sqlstate FROM strata.parked_events ORDER BY 1;
SELECT kind, name, owner FROM strata.definitions WHERE name ILIKE 'regsec%' OR name LIKE 'regress_sec%'
ORDER BY 1, 2;
RESET ROLE;
-- bob sees none of them, in none of the four
SET ROLE regress_sec_bob;
SELECT count(*) FROM strata.subscription_status;
SELECT count(*) FROM strata.subscriptions;
SELECT count(*) FROM strata.parked_events;
SELECT count(*) FROM strata.definitions;
-- his own only
SELECT strata.subscribe('regress_sec_bob_sub', 'regress_sec.record(strata.events)',
						categories => ARRAY['regsecbob']);
SELECT name, owner FROM strata.subscription_status;
SELECT name, owner FROM strata.subscriptions;
-- nor can he read the private tables
SELECT try($$SELECT count(*) FROM strata.projections$$);
SELECT try($$SELECT count(*) FROM strata.aggregates$$);
SELECT try($$SELECT count(*) FROM strata.commands$$);
SELECT try($$SELECT count(*) FROM strata.snapshots$$);
RESET ROLE;
-- the team sees the team's: none left (alice took hers back)
SET ROLE regress_sec_team;
SELECT count(*) FROM strata.subscription_status;
RESET ROLE;
-- a member of pg_read_all_stats sees them all
SET ROLE regress_sec_stats;
SELECT name, parked, last_error, owner FROM strata.subscription_status
WHERE name LIKE 'regress_sec%' ORDER BY name;
SELECT subscription, error FROM strata.parked_events WHERE subscription LIKE 'regress_sec%';
SELECT kind, name, owner FROM strata.definitions WHERE name ILIKE 'regsec%' OR name LIKE 'regress_sec%'
ORDER BY 1, 2;
-- seeing is not changing
SELECT try($$SELECT strata.retry_parked('regress_sec_alice_park')$$);
RESET ROLE;

-- 3. no query of the extension can be captured through the search_path:
-- decoys for every function, operator and type its SQL uses, in a schema
-- put before pg_catalog, and temporary views named as its tables, all of
-- which raise a WARNING and log when used.  Every function of the
-- extension runs with that path; no decoy may fire.  (0.3.0:
-- rebuild_projection called to_jsonb() and ->>, execute ->, a change of a
-- projection's mode IS NOT DISTINCT FROM (text = text), and several
-- queries cast to oid and text, all unqualified.)
CREATE SCHEMA regress_decoy;
CREATE TABLE regress_decoy.hits (what text);
GRANT USAGE ON SCHEMA regress_decoy TO PUBLIC;
GRANT INSERT ON regress_decoy.hits TO PUBLIC;
CREATE FUNCTION regress_decoy.hit(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'decoy % called', what;
	INSERT INTO regress_decoy.hits VALUES (what);
	RETURN true;
END $$;
DO $$
DECLARE
	op record;
	fn record;
	n int := 0;
BEGIN
	-- operators, with the signatures of pg_catalog's
	FOR op IN SELECT * FROM (VALUES
		('=', 'text', 'text', 'boolean'), ('=', 'bigint', 'bigint', 'boolean'),
		('=', 'integer', 'integer', 'boolean'), ('=', 'oid', 'oid', 'boolean'),
		('=', 'name', 'name', 'boolean'), ('=', 'uuid', 'uuid', 'boolean'),
		('<>', 'text', 'text', 'boolean'), ('<>', 'bigint', 'bigint', 'boolean'),
		('<', 'bigint', 'bigint', 'boolean'), ('<=', 'bigint', 'bigint', 'boolean'),
		('>', 'bigint', 'bigint', 'boolean'), ('>=', 'bigint', 'bigint', 'boolean'),
		('<', 'integer', 'integer', 'boolean'), ('>=', 'integer', 'integer', 'boolean'),
		('+', 'bigint', 'bigint', 'bigint'), ('+', 'bigint', 'integer', 'bigint'),
		('+', 'integer', 'integer', 'integer'), ('-', 'bigint', 'bigint', 'bigint'),
		('-', 'timestamptz', 'timestamptz', 'interval'),
		('@>', 'int8multirange', 'bigint', 'boolean'),
		('->', 'jsonb', 'text', 'jsonb'), ('->>', 'jsonb', 'text', 'text'),
		('||', 'jsonb', 'jsonb', 'jsonb'), ('?', 'jsonb', 'text', 'boolean'))
		AS t (name, l, r, res)
	LOOP
		n := n + 1;
		EXECUTE format('CREATE FUNCTION regress_decoy.op%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS $f$
			BEGIN PERFORM regress_decoy.hit(%L); RETURN $1 OPERATOR(pg_catalog.%s) $2; END $f$',
			n, op.l, op.r, op.res, format('operator %s(%s,%s)', op.name, op.l, op.r), op.name);
		EXECUTE format('CREATE OPERATOR regress_decoy.%s (LEFTARG = %s, RIGHTARG = %s,
			FUNCTION = regress_decoy.op%s)', op.name, op.l, op.r, n);
	END LOOP;
	-- functions, with the signatures of pg_catalog's
	FOR fn IN SELECT * FROM (VALUES
		('to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)'),
		('now', '', 'timestamptz', 'pg_catalog.now()'),
		('nextval', 'regclass', 'bigint', 'pg_catalog.nextval($1)'),
		('unnest', 'anyarray', 'SETOF anyelement', NULL),
		('jsonb_strip_nulls', 'jsonb', 'jsonb', 'pg_catalog.jsonb_strip_nulls($1)'),
		('jsonb_typeof', 'jsonb', 'text', 'pg_catalog.jsonb_typeof($1)'),
		('jsonb_build_object', 'text, text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2)'),
		('pg_has_role', 'oid, text', 'boolean', 'pg_catalog.pg_has_role($1, $2)'),
		('pg_has_role', 'name, text', 'boolean', 'pg_catalog.pg_has_role($1, $2)'),
		('current_setting', 'text', 'text', 'pg_catalog.current_setting($1)'),
		('pg_current_wal_lsn', '', 'pg_lsn', 'pg_catalog.pg_current_wal_lsn()'),
		('pg_is_in_recovery', '', 'boolean', 'pg_catalog.pg_is_in_recovery()'),
		('lower', 'text', 'text', 'pg_catalog.lower($1)'),
		('length', 'text', 'integer', 'pg_catalog.length($1)'),
		('gen_random_uuid', '', 'uuid', 'pg_catalog.gen_random_uuid()'))
		AS t (name, args, res, body)
	LOOP
		IF fn.body IS NULL THEN
			EXECUTE format('CREATE FUNCTION regress_decoy.%I(%s) RETURNS %s LANGUAGE plpgsql AS $f$
				BEGIN PERFORM regress_decoy.hit(%L); RETURN QUERY SELECT pg_catalog.unnest($1); END $f$',
				fn.name, fn.args, fn.res, format('function %s(%s)', fn.name, fn.args));
		ELSE
			EXECUTE format('CREATE FUNCTION regress_decoy.%I(%s) RETURNS %s LANGUAGE plpgsql AS $f$
				BEGIN PERFORM regress_decoy.hit(%L); RETURN %s; END $f$',
				fn.name, fn.args, fn.res, format('function %s(%s)', fn.name, fn.args), fn.body);
		END IF;
	END LOOP;
END $$;
-- aggregates
CREATE FUNCTION regress_decoy.count_step(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_decoy.hit('aggregate count(*)'); RETURN $1 OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE regress_decoy.count(*) (SFUNC = regress_decoy.count_step, STYPE = bigint, INITCOND = 0);
CREATE FUNCTION regress_decoy.max_step(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_decoy.hit('aggregate max/min(bigint)'); RETURN pg_catalog.int8larger($1, $2); END $$;
CREATE AGGREGATE regress_decoy.max(bigint) (SFUNC = regress_decoy.max_step, STYPE = bigint);
CREATE AGGREGATE regress_decoy.min(bigint) (SFUNC = regress_decoy.max_step, STYPE = bigint);
-- types: a cast to a decoy domain checks it
CREATE DOMAIN regress_decoy.oid AS pg_catalog.oid CHECK (regress_decoy.hit('type oid'));
CREATE DOMAIN regress_decoy.text AS pg_catalog.text CHECK (regress_decoy.hit('type text'));
CREATE DOMAIN regress_decoy.jsonb AS pg_catalog.jsonb CHECK (regress_decoy.hit('type jsonb'));
CREATE DOMAIN regress_decoy.regrole AS pg_catalog.regrole CHECK (regress_decoy.hit('type regrole'));
CREATE DOMAIN regress_decoy.regclass AS pg_catalog.regclass CHECK (regress_decoy.hit('type regclass'));
CREATE DOMAIN regress_decoy.int8multirange AS pg_catalog.int8multirange
	CHECK (regress_decoy.hit('type int8multirange'));
-- relations named as the extension's, in the decoy schema and as
-- temporary views (pg_temp comes first for relations unless placed)
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['events', 'streams', 'snapshots', 'aggregates', 'commands',
							 'projections', 'subscriptions', 'parked_events', '_stream',
							 'definitions', 'subscription_status'] LOOP
		EXECUTE format('CREATE VIEW regress_decoy.%I AS SELECT * FROM strata.%I
						WHERE regress_decoy.hit(%L)', t, t, 'relation regress_decoy.' || t);
		EXECUTE format('CREATE TEMP VIEW %I AS SELECT * FROM strata.%I
						WHERE regress_decoy.hit(%L)', t, t, 'relation pg_temp.' || t);
	END LOOP;
	EXECUTE 'CREATE TEMP SEQUENCE _position_seq';
	EXECUTE 'CREATE TEMP SEQUENCE _definition_seq';
END $$;
-- the user code the calls below run (qualified throughout, so that it
-- cannot fire a decoy itself, whatever path it runs with)
CREATE TABLE regress_sec.decoy_model (type text, path text);
GRANT INSERT, DELETE ON regress_sec.decoy_model TO PUBLIC;
CREATE FUNCTION regress_sec.decoy_project(e strata.events) RETURNS void LANGUAGE sql
AS $$ INSERT INTO regress_sec.decoy_model VALUES (e.type, pg_catalog.current_setting('search_path')) $$;
CREATE FUNCTION regress_sec.decoy_reset() RETURNS void LANGUAGE sql
AS $$ DELETE FROM regress_sec.decoy_model $$;
CREATE FUNCTION regress_sec.decoy_reduce(state jsonb, e strata.events) RETURNS jsonb LANGUAGE sql
AS $$ SELECT pg_catalog.jsonb_build_object('last', e.type) $$;
CREATE FUNCTION regress_sec.decoy_handle(state jsonb, cmd jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF cmd OPERATOR(pg_catalog.?) 'reject' THEN
		RAISE EXCEPTION 'rejected' USING ERRCODE = 'P0001';
	END IF;
	RETURN '{"type": "Commanded"}';
END $$;
CREATE FUNCTION regress_sec.decoy_fail(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'decoy test failure';
END $$;
CREATE ROLE regress_sec_decoy_owner;
SELECT strata.grant_privileges('regress_sec_decoy_owner', 'reader');

SET search_path = regress_decoy, pg_catalog, public;
SELECT strata.append('regsecd-1', '[{"type": "A"}, {"type": "B"}]');
SELECT strata.append('regsecd-1', '{"type": "C"}', 1);
SELECT strata.append('regsecd-1', '{"type": "C", "id": "00000000-0000-7000-8000-000000000001"}', 2);
SELECT strata.append('regsecd-1', '{"type": "C", "id": "00000000-0000-7000-8000-000000000001"}', 2);
SELECT strata.stream_version('regsecd-1');
SELECT strata.category('regsecd-1');
SELECT version, type FROM strata.read_stream('regsecd-1');
SELECT version, type FROM strata.read_category('regsecd', 0, 2);
SELECT 1 AS one FROM strata.read_all(0, 1);
SELECT strata.define_aggregate('regsecd', 'regress_sec.decoy_reduce(pg_catalog.jsonb, strata.events)',
							   snapshot_every => 1);
SELECT state, version FROM strata.load('regsecd-1');
SELECT state, version FROM strata.load('regsecd-1', 1);
SELECT state, version FROM strata.load('regsecd-1');
SELECT strata.define_command('RegSecDecoy', 'regsecd', 'regress_sec.decoy_handle(pg_catalog.jsonb, pg_catalog.jsonb)',
							 record_rejections => true);
SELECT strata.execute('regsecd-1', '{"type": "RegSecDecoy"}');
SELECT strata.execute('regsecd-1', '{"type": "RegSecDecoy", "id": "00000000-0000-7000-8000-000000000002"}');
SELECT strata.execute('regsecd-1', '{"type": "RegSecDecoy", "id": "00000000-0000-7000-8000-000000000002"}');
SELECT strata.execute('regsecd-1', '{"type": "RegSecDecoy", "reject": true}');
SELECT strata.define_projection('regsecd_inline', 'regress_sec.decoy_project(strata.events)',
								ARRAY['regsecd'], ARRAY['A', 'C']);
SELECT strata.append('regsecd-2', '{"type": "A"}');
SELECT strata.rebuild_projection('regsecd_inline', 'regress_sec.decoy_reset()');
SELECT strata.define_projection('regsecd_async', 'regress_sec.decoy_project(strata.events)',
								ARRAY['regsecd'], mode => 'async');
SELECT strata.rebuild_projection('regsecd_async', 'regress_sec.decoy_reset()');
SELECT strata.define_projection('regsecd_async', 'regress_sec.decoy_project(strata.events)',
								ARRAY['regsecd'], mode => 'inline');
SELECT strata.subscribe('regress_sec_decoy_sub', 'regress_sec.decoy_project(strata.events)',
						categories => ARRAY['regsecd'], start_from => 'beginning');
SELECT strata.subscribe('regress_sec_decoy_now', 'regress_sec.decoy_project(strata.events)');
SELECT strata.subscribe('regress_sec_decoy_fail', 'regress_sec.decoy_fail(strata.events)',
						categories => ARRAY['regsecdfail'], on_error => 'stop');
SELECT strata.append('regsecdfail-1', '{"type": "Fail"}');
SELECT strata.wait_for('regress_sec_decoy_sub',
	(SELECT position FROM strata.events ORDER BY position DESC LIMIT 1), '30s');
SELECT strata.wait_for('regress_sec_decoy_now',
	(SELECT position FROM strata.events ORDER BY position DESC LIMIT 1), '30s');
SELECT strata.pause_subscription('regress_sec_decoy_sub');
SELECT strata.resume_subscription('regress_sec_decoy_sub');
SELECT strata.alter_subscription_owner('regress_sec_decoy_sub', 'regress_sec_decoy_owner');
SELECT strata.retry_parked('regress_sec_decoy_sub');
SELECT strata.retry_parked('regress_sec_alice_park');
SELECT name FROM strata.subscription_status WHERE name LIKE 'regress_sec_decoy%' ORDER BY name;
SELECT name FROM strata.subscriptions WHERE name LIKE 'regress_sec_decoy%' ORDER BY name;
SELECT subscription FROM strata.parked_events WHERE subscription LIKE 'regress_sec_decoy%';
SELECT kind, name FROM strata.definitions WHERE name LIKE 'regsecd%' ORDER BY kind, name;
SELECT strata.grant_privileges('regress_sec_decoy_owner', 'operator');
SELECT strata.unsubscribe('regress_sec_decoy_sub');
SELECT strata.unsubscribe('regress_sec_decoy_now');
SELECT strata.unsubscribe('regress_sec_decoy_fail');
SELECT strata.drop_projection('regsecd_inline');
SELECT strata.drop_projection('regsecd_async');
SELECT strata.drop_command('RegSecDecoy');
SELECT strata.drop_aggregate('regsecd');
RESET search_path;
-- the calls worked; no decoy fired
SELECT DISTINCT type FROM regress_sec.decoy_model ORDER BY type;
SELECT * FROM regress_decoy.hits;
-- and the handlers ran with the safe path, not the caller's
SELECT DISTINCT path FROM regress_sec.decoy_model;
SET client_min_messages = warning;
DROP SCHEMA regress_decoy CASCADE;
RESET client_min_messages;
DISCARD TEMP;

-- 6 (in this cluster). A role that owns definitions or subscriptions
-- cannot be dropped (0.3.0: it could, and the next role to get its OID
-- inherited them); REASSIGN OWNED moves them
-- dave has bob's grants through membership, and owns nothing but a
-- subscription
CREATE ROLE regress_sec_dave IN ROLE regress_sec_bob;
SET ROLE regress_sec_dave;
SELECT strata.subscribe('regress_sec_dave_sub', 'regress_sec.record(strata.events)',
						categories => ARRAY['regsecdave'], start_from => 'beginning');
RESET ROLE;
DROP ROLE regress_sec_dave;
SELECT name, owner FROM strata.subscriptions WHERE name = 'regress_sec_dave_sub';
REASSIGN OWNED BY regress_sec_dave TO regress_sec_bob;
SELECT name, owner FROM strata.subscriptions WHERE name = 'regress_sec_dave_sub';
DROP ROLE regress_sec_dave;
-- a role with more: the message lists them; the role stays
DROP ROLE regress_sec_alice;
REASSIGN OWNED BY regress_sec_alice, regress_sec_bob TO regress_sec_team;
SELECT kind, name, owner FROM strata.definitions WHERE name ILIKE 'regsec%' OR name LIKE 'regress_sec%'
ORDER BY 1, 2;
SELECT name, owner FROM strata.subscriptions WHERE name LIKE 'regress_sec%' ORDER BY name;
-- the team's handlers now: the reducer runs as the team
SELECT state->>'cu' AS cu FROM strata.load('regsecp-1');

-- a subscription paused in a prepared transaction: the interruption of
-- its handler that was pending at commit goes with the transaction's
-- memory, and later changes in this session do not touch it
SELECT strata.subscribe('regress_sec_prep1', 'regress_sec.record(strata.events)',
						categories => ARRAY['regsecprep']);
SELECT strata.subscribe('regress_sec_prep2', 'regress_sec.record(strata.events)',
						categories => ARRAY['regsecprep']);
BEGIN;
SELECT strata.pause_subscription('regress_sec_prep1');
PREPARE TRANSACTION 'regress_sec_prep';
SELECT 1 AS after_prepare;
BEGIN;
SELECT strata.pause_subscription('regress_sec_prep2');
COMMIT;
COMMIT PREPARED 'regress_sec_prep';
SELECT name, state FROM strata.subscriptions WHERE name LIKE 'regress_sec_prep%' ORDER BY name;

-- clean up
SELECT strata.unsubscribe(name) FROM strata.subscriptions WHERE name LIKE 'regress_sec%' ORDER BY name;
SELECT strata.drop_projection('regress_sec_alice_model');
SELECT strata.drop_command('RegSecHandle');
SELECT strata.drop_aggregate('regsecp');
SELECT strata.drop_aggregate('regsecw');
SELECT strata.drop_command('RegSecCount');
SET client_min_messages = warning;
DROP SCHEMA regress_sec CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_sec_alice, regress_sec_bob, regress_sec_carol, regress_sec_team,
	regress_sec_root, regress_sec_stats, regress_sec_nosel, regress_sec_noread,
	regress_sec_decoy_owner;
DROP ROLE regress_sec_alice, regress_sec_bob, regress_sec_carol, regress_sec_team,
	regress_sec_root, regress_sec_stats, regress_sec_nosel, regress_sec_noread,
	regress_sec_decoy_owner;
