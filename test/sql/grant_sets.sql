-- grant_sets: strata.grant_privileges and the five documented sets
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- (docs/api.md, "Privileges").  For each set: what it grants, in the
-- catalogs; what it allows, working; a sample of what it does not allow,
-- refused with 42501.  Nothing but SELECT on a table of the extension is
-- ever granted: the functions write as the extension's owner.
CREATE ROLE regress_gs_none;
CREATE ROLE regress_gs_reader;
CREATE ROLE regress_gs_writer;
CREATE ROLE regress_gs_subscriber;
CREATE ROLE regress_gs_definer;
CREATE ROLE regress_gs_operator;
CREATE ROLE regress_gs_other;   -- subscriber and definer: owns what others must not touch
SELECT strata.grant_privileges('regress_gs_reader', 'reader');
SELECT strata.grant_privileges('regress_gs_writer', 'writer');
SELECT strata.grant_privileges('regress_gs_subscriber', 'subscriber');
SELECT strata.grant_privileges('regress_gs_definer', 'definer');
SELECT strata.grant_privileges('regress_gs_operator', 'operator');
SELECT strata.grant_privileges('regress_gs_other', 'subscriber');
SELECT strata.grant_privileges('regress_gs_other', 'definer');
-- granting twice is harmless
SELECT strata.grant_privileges('regress_gs_reader', 'reader');
-- bad input, and no one but a superuser (or the extension's owner) grants
SELECT try($$SELECT strata.grant_privileges('regress_gs_reader', 'admin')$$);
SELECT try($$SELECT strata.grant_privileges('regress_gs_nobody', 'reader')$$);
SET ROLE regress_gs_definer;
SELECT try($$SELECT strata.grant_privileges('regress_gs_definer', 'writer')$$);
RESET ROLE;

-- what each set is: the functions of the extension it may execute beyond
-- what every role may (regress_gs_none has no grant)...
SELECT r.rolname AS role, string_agg(p.proname, ', ' ORDER BY p.proname) AS functions
FROM pg_roles r
CROSS JOIN pg_proc p
WHERE r.rolname LIKE 'regress_gs_%' AND r.rolname <> 'regress_gs_other'
  AND p.pronamespace = 'strata'::regnamespace
  AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
  AND NOT has_function_privilege('regress_gs_none', p.oid, 'EXECUTE')
GROUP BY r.rolname ORDER BY r.rolname;
-- ... what every role may execute ...
SELECT string_agg(p.proname, ', ' ORDER BY p.proname) AS public_functions
FROM pg_proc p
WHERE p.pronamespace = 'strata'::regnamespace
  AND has_function_privilege('regress_gs_none', p.oid, 'EXECUTE');
-- ... its privileges on the relations of the extension (all of them, for
-- every privilege a table or sequence has) ...
SELECT r.rolname AS role, c.relname, string_agg(priv, ', ' ORDER BY priv) AS privileges
FROM pg_roles r
CROSS JOIN pg_class c
CROSS JOIN unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
				  ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
							 'TRIGGER'] END) AS priv
WHERE r.rolname LIKE 'regress_gs_%' AND r.rolname <> 'regress_gs_other'
  AND c.relnamespace = 'strata'::regnamespace AND c.relkind IN ('r', 'v', 'S')
  AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(r.oid, c.oid, priv)
		   ELSE has_table_privilege(r.oid, c.oid, priv) END
GROUP BY r.rolname, c.relname ORDER BY r.rolname, c.relname;
-- ... and the roles it is a member of
SELECT r.rolname AS role, string_agg(g.rolname, ', ' ORDER BY g.rolname) AS member_of
FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid
WHERE r.rolname LIKE 'regress_gs_%' AND r.rolname <> 'regress_gs_admin'
GROUP BY r.rolname ORDER BY r.rolname;

-- What the other role owns, for the sets to leave alone
CREATE SCHEMA regress_gs;
GRANT USAGE, CREATE ON SCHEMA regress_gs TO PUBLIC;
CREATE TABLE regress_gs.seen (who text, type text);
GRANT SELECT, INSERT, DELETE ON regress_gs.seen TO PUBLIC;
CREATE FUNCTION regress_gs.record(e strata.events) RETURNS void LANGUAGE sql
AS $$ INSERT INTO regress_gs.seen VALUES (current_user, e.type) $$;
CREATE FUNCTION regress_gs.reset() RETURNS void LANGUAGE sql
AS $$ DELETE FROM regress_gs.seen $$;
CREATE FUNCTION regress_gs.count_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1,
											 'by', current_user) $$;
CREATE FUNCTION regress_gs.handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('type', 'Done', 'data', jsonb_build_object('by', current_user)) $$;
CREATE FUNCTION regress_gs.fail(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'failing on %', e.type;
END $$;
SET ROLE regress_gs_other;
SELECT strata.define_aggregate('regsgo', 'regress_gs.count_reduce(jsonb, strata.events)');
SELECT strata.define_command('RegGsOther', 'regsgo', 'regress_gs.handle(jsonb, jsonb)');
SELECT strata.define_projection('regress_gs_other_proj', 'regress_gs.record(strata.events)',
								ARRAY['regsgo']);
SELECT strata.subscribe('regress_gs_other_sub', 'regress_gs.fail(strata.events)',
						categories => ARRAY['regsgofail']);
RESET ROLE;

-- reader: read, load; nothing else
SET ROLE regress_gs_reader;
SELECT count(*) >= 0 AS ok FROM strata.events;
SELECT count(*) >= 0 AS ok FROM strata.streams;
SELECT count(*) >= 0 AS ok FROM strata.read_all(0, 1);
SELECT count(*) FROM strata.read_stream('regsgo-1');
SELECT count(*) FROM strata.read_category('regsgo');
SELECT strata.stream_version('regsgo-1');
SELECT * FROM strata.load('regsgo-1');
SELECT count(*) FROM strata.definitions;
SELECT count(*) FROM strata.subscription_status;
SELECT try($$SELECT strata.append('regsgr-1', '{"type": "A"}')$$);
SELECT try($$SELECT strata.execute('regsgo-1', '{"type": "RegGsOther"}')$$);
SELECT try($$SELECT strata.subscribe('regress_gs_r', 'regress_gs.record(strata.events)')$$);
SELECT try($$SELECT strata.define_aggregate('regsgr', 'regress_gs.count_reduce(jsonb, strata.events)')$$);
SELECT try($$SELECT strata.pause_subscription('regress_gs_other_sub')$$);
SELECT try($$SELECT strata.rebuild_projection('regress_gs_other_proj')$$);
SELECT try($$INSERT INTO strata.streams VALUES ('regsgr-1', 0)$$);
SELECT try($$SELECT count(*) FROM strata.aggregates$$);
SELECT try($$SELECT count(*) FROM strata.snapshots$$);
RESET ROLE;

-- writer: append (the other role's inline projection runs, as its owner),
-- execute, load
SET ROLE regress_gs_writer;
SELECT strata.append('regsgo-1', '[{"type": "A"}, {"type": "B"}]');
SELECT strata.execute('regsgo-1', '{"type": "RegGsOther"}');
SELECT * FROM strata.load('regsgo-1');
SELECT type, data FROM strata.read_stream('regsgo-1', 2);
SELECT try($$INSERT INTO strata.events SELECT * FROM strata.events LIMIT 1$$);
SELECT try($$UPDATE strata.streams SET version = 0 WHERE stream = 'regsgo-1'$$);
SELECT try($$DELETE FROM strata.streams WHERE stream = 'regsgo-1'$$);
SELECT try($$INSERT INTO strata.snapshots (stream, category, definition_id, version, state)
			 VALUES ('regsgo-1', 'regsgo', 1, 0, '{}')$$);
SELECT try($$SELECT strata.subscribe('regress_gs_w', 'regress_gs.record(strata.events)')$$);
SELECT try($$SELECT strata.define_projection('regress_gs_w', 'regress_gs.record(strata.events)')$$);
SELECT try($$SELECT strata.drop_command('RegGsOther')$$);
SELECT try($$SELECT strata.retry_parked('regress_gs_other_sub')$$);
RESET ROLE;
SELECT who, type FROM regress_gs.seen ORDER BY type;

-- subscriber: subscribe (from now, by default), pause, resume, retry its
-- parked events, give a subscription away, unsubscribe: its own only
SET ROLE regress_gs_subscriber;
SELECT strata.subscribe('regress_gs_sub', 'regress_gs.record(strata.events)', categories => ARRAY['regsgs']);
SELECT strata.subscribe('regress_gs_sub_fail', 'regress_gs.fail(strata.events)', categories => ARRAY['regsgsfail']);
SELECT strata.pause_subscription('regress_gs_sub');
SELECT strata.resume_subscription('regress_gs_sub');
SELECT strata.alter_subscription_owner('regress_gs_sub', 'regress_gs_subscriber');
SELECT name, owner FROM strata.subscriptions ORDER BY name;
SELECT try($$SELECT strata.append('regsgs-1', '{"type": "A"}')$$);
SELECT try($$SELECT strata.define_projection('regress_gs_s', 'regress_gs.record(strata.events)')$$);
SELECT try($$UPDATE strata.subscriptions SET state = 'paused' WHERE name = 'regress_gs_sub'$$);
SELECT try($$DELETE FROM strata.parked_events$$);
SELECT try($$SELECT strata.pause_subscription('regress_gs_other_sub')$$);
SELECT try($$SELECT strata.unsubscribe('regress_gs_other_sub')$$);
SELECT try($$SELECT strata.retry_parked('regress_gs_other_sub')$$);
SELECT try($$SELECT strata.alter_subscription_owner('regress_gs_sub', 'regress_gs_other')$$);
RESET ROLE;
SET ROLE regress_gs_writer;
SELECT strata.append('regsgs-1', '{"type": "ForSubscriber"}');
SELECT strata.append('regsgsfail-1', '{"type": "Fails"}');
SELECT strata.append('regsgofail-1', '{"type": "Fails"}');
RESET ROLE;
SELECT strata.wait_for('regress_gs_sub', (SELECT max(position) FROM strata.events), '30s');
SELECT who, type FROM regress_gs.seen WHERE type = 'ForSubscriber';
SELECT public.wait_until($$SELECT count(*) = 2 FROM strata.parked_events
	WHERE subscription LIKE 'regress_gs%'$$);
SET ROLE regress_gs_subscriber;
SELECT subscription, attempts, error FROM strata.parked_events;
SELECT strata.retry_parked('regress_gs_sub_fail');
SELECT strata.unsubscribe('regress_gs_sub');
SELECT strata.unsubscribe('regress_gs_sub_fail');
SELECT count(*) FROM strata.subscriptions;
RESET ROLE;

-- definer: define, redefine, rebuild and drop aggregates, commands and
-- projections (inline and async); its own only
SET ROLE regress_gs_definer;
SELECT strata.define_aggregate('regsgd', 'regress_gs.count_reduce(jsonb, strata.events)');
SELECT strata.define_aggregate('regsgd', 'regress_gs.count_reduce(jsonb, strata.events)', snapshot_every => 0);
SELECT strata.define_command('RegGsDefiner', 'regsgd', 'regress_gs.handle(jsonb, jsonb)');
SELECT strata.define_projection('regress_gs_def', 'regress_gs.record(strata.events)', ARRAY['regsgd']);
SELECT strata.define_projection('regress_gs_def_async', 'regress_gs.record(strata.events)', ARRAY['regsgd'],
								mode => 'async');
SELECT strata.rebuild_projection('regress_gs_def', 'regress_gs.reset()');
SELECT strata.rebuild_projection('regress_gs_def_async');
SELECT kind, name, owner FROM strata.definitions ORDER BY kind, name;
SELECT name, owner, projection FROM strata.subscriptions;
SELECT try($$SELECT strata.append('regsgd-1', '{"type": "A"}')$$);
SELECT try($$SELECT strata.execute('regsgd-1', '{"type": "RegGsDefiner"}')$$);
SELECT try($$SELECT strata.subscribe('regress_gs_d', 'regress_gs.record(strata.events)')$$);
SELECT try($$SELECT strata.pause_subscription('regress_gs_def_async')$$);
SELECT try($$INSERT INTO strata.projections (name, handler, owner)
			 VALUES ('regress_gs_evil', 'regress_gs.record(strata.events)', 'regress_gs_other')$$);
SELECT try($$SELECT strata.define_aggregate('regsgo', 'regress_gs.count_reduce(jsonb, strata.events)')$$);
SELECT try($$SELECT strata.define_command('RegGsOther', 'regsgd', 'regress_gs.handle(jsonb, jsonb)')$$);
SELECT try($$SELECT strata.define_projection('regress_gs_other_proj', 'regress_gs.record(strata.events)')$$);
SELECT try($$SELECT strata.rebuild_projection('regress_gs_other_proj')$$);
SELECT try($$SELECT strata.drop_aggregate('regsgo')$$);
SELECT try($$SELECT strata.drop_command('RegGsOther')$$);
SELECT try($$SELECT strata.drop_projection('regress_gs_other_proj')$$);
RESET ROLE;
-- the writer's execute runs the definer's reducer, command handler and
-- inline projection, and the worker its async projection, as the definer
SET ROLE regress_gs_writer;
SELECT strata.execute('regsgd-1', '{"type": "RegGsDefiner"}');
SELECT type, data FROM strata.read_stream('regsgd-1');
SELECT * FROM strata.load('regsgd-1');
RESET ROLE;
SELECT strata.wait_for('regress_gs_def_async', (SELECT max(position) FROM strata.events), '30s');
SELECT who, type FROM regress_gs.seen WHERE type = 'Done' ORDER BY who;
SET ROLE regress_gs_definer;
SELECT strata.drop_projection('regress_gs_def');
SELECT strata.drop_projection('regress_gs_def_async');
SELECT strata.drop_command('RegGsDefiner');
SELECT strata.drop_aggregate('regsgd');
SELECT count(*) FROM strata.definitions;
RESET ROLE;

-- operator: sees every subscription, parked event and definition;
-- pauses, resumes and retries the subscriptions of other roles, as
-- pg_signal_backend cancels their queries: not those of superusers
CREATE ROLE regress_gs_admin SUPERUSER;
SET ROLE regress_gs_admin;
SELECT strata.subscribe('regress_gs_super_sub', 'regress_gs.record(strata.events)',
						categories => ARRAY['regsgsuper']);
SET ROLE regress_gs_operator;
SELECT name, parked, last_error, owner FROM strata.subscription_status WHERE name LIKE 'regress_gs%' ORDER BY name;
SELECT subscription, error FROM strata.parked_events WHERE subscription LIKE 'regress_gs%';
SELECT kind, name, owner FROM strata.definitions WHERE owner::text LIKE 'regress_gs%' ORDER BY kind, name;
SELECT strata.pause_subscription('regress_gs_other_sub');
SELECT state FROM strata.subscription_status WHERE name = 'regress_gs_other_sub';
SELECT strata.retry_parked('regress_gs_other_sub');
SELECT strata.resume_subscription('regress_gs_other_sub');
SELECT try($$SELECT strata.pause_subscription('regress_gs_super_sub')$$);
SELECT try($$SELECT strata.resume_subscription('regress_gs_super_sub')$$);
SELECT try($$SELECT strata.retry_parked('regress_gs_super_sub')$$);
SELECT try($$SELECT strata.unsubscribe('regress_gs_other_sub')$$);
SELECT try($$SELECT strata.alter_subscription_owner('regress_gs_other_sub', 'regress_gs_operator')$$);
SELECT try($$SELECT strata.subscribe('regress_gs_o', 'regress_gs.record(strata.events)')$$);
SELECT try($$SELECT strata.append('regsgo-1', '{"type": "A"}')$$);
SELECT try($$SELECT strata.define_projection('regress_gs_o', 'regress_gs.record(strata.events)')$$);
SELECT try($$UPDATE strata.subscriptions SET state = 'paused'$$);
RESET ROLE;
SELECT strata.unsubscribe('regress_gs_super_sub');

-- clean up
SET ROLE regress_gs_other;
SELECT strata.unsubscribe('regress_gs_other_sub');
SELECT strata.drop_projection('regress_gs_other_proj');
SELECT strata.drop_command('RegGsOther');
SELECT strata.drop_aggregate('regsgo');
RESET ROLE;
SET client_min_messages = warning;
DROP SCHEMA regress_gs CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_gs_none, regress_gs_reader, regress_gs_writer, regress_gs_subscriber,
	regress_gs_definer, regress_gs_operator, regress_gs_other, regress_gs_admin;
DROP ROLE regress_gs_none, regress_gs_reader, regress_gs_writer, regress_gs_subscriber,
	regress_gs_definer, regress_gs_operator, regress_gs_other, regress_gs_admin;
