-- upgrade: walk the upgrade chain from the first release; data survives
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- and the result equals a fresh install.
SELECT source, target, path FROM pg_extension_update_paths('strata')
WHERE path IS NOT NULL ORDER BY source, target;

-- the objects of a fresh install of the current version
CREATE TEMP TABLE fresh AS
SELECT pg_describe_object(classid, objid, objsubid) AS object
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata');

-- and their initial privileges (what pg_dump takes as given)
CREATE TEMP TABLE fresh_privs AS
SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid) AS object,
	   ip.initprivs::text AS initprivs
FROM pg_init_privs ip JOIN pg_depend d ON d.classid = ip.classoid
	 AND d.objid = ip.objoid AND d.refclassid = 'pg_extension'::regclass
	 AND d.deptype = 'e'
	 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata');

SET client_min_messages = warning;
DROP EXTENSION strata CASCADE;
RESET client_min_messages;
CREATE EXTENSION strata VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'strata';
SELECT strata.append('up-1', '[{"type": "A"}, {"type": "B"}]');
SELECT to_regproc('strata.load') IS NULL AS no_load_in_0_1_0;

ALTER EXTENSION strata UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'strata';

-- the events written under 0.1.0 are intact and usable by 0.2.0
SELECT version, type FROM strata.read_stream('up-1');
-- this library defines nothing before 0.4.0 (it records owners) ...
CREATE ROLE strata_up_owner;
GRANT USAGE ON SCHEMA strata TO strata_up_owner;
GRANT SELECT ON strata.events TO strata_up_owner;
CREATE FUNCTION up_count(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
ALTER FUNCTION up_count(jsonb, strata.events) OWNER TO strata_up_owner;
SELECT try($$SELECT strata.define_aggregate('up', 'up_count(jsonb, strata.events)')$$);
SELECT try($$SELECT strata.drop_aggregate('up')$$);
-- ... so the definitions of 0.2.0 are written as its define_aggregate did
-- (the fingerprint hashes the reducer's language and source)
INSERT INTO strata.aggregates (category, reducer, initial_state,
							   snapshot_every, reducer_fingerprint)
SELECT 'up', p.oid::regprocedure, '{}', 100,
	   hashtextextended(p.prosrc, hashoidextended(p.prolang, 0))
FROM pg_proc p WHERE p.oid = 'up_count(jsonb, strata.events)'::regprocedure;
SELECT * FROM strata.load('up-1');
SELECT strata.append('up-1', '{"type": "C"}', 1);

-- an inline projection defined under 0.2.0 stays inline under 0.3.0
CREATE TABLE up_seen (stream text, version bigint);
GRANT INSERT ON up_seen TO strata_up_owner;
CREATE FUNCTION up_project(e strata.events) RETURNS void LANGUAGE sql
SET search_path = public, pg_temp
AS $$ INSERT INTO up_seen VALUES (e.stream, e.version) $$;
ALTER FUNCTION up_project(strata.events) OWNER TO strata_up_owner;
SELECT try($$SELECT strata.define_projection('up_proj', 'up_project(strata.events)')$$);
INSERT INTO strata.projections (name, handler)
VALUES ('up_proj', 'up_project(strata.events)');
SELECT to_regclass('strata.subscriptions') IS NULL AS no_subscriptions_in_0_2_0;

ALTER EXTENSION strata UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'strata';
SELECT name, options FROM strata.definitions WHERE kind = 'projection';
SELECT strata.append('up-2', '{"type": "D"}');
SELECT * FROM up_seen;
-- the 0.3.0 objects work on the upgraded schema
CREATE FUNCTION up_handler(e strata.events) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT strata.subscribe('up_sub', 'up_handler(strata.events)');
SELECT name, state, watermark FROM strata.subscriptions;
SELECT strata.unsubscribe('up_sub');
-- what needs owners is refused until the update to 0.4.0
SELECT try($$SELECT strata.rebuild_projection('up_proj')$$);
SELECT try($$SELECT strata.drop_projection('up_proj')$$);
-- the writer grants 0.3.0 documented, which 0.4.0 takes back, also from
-- a role whose name needs quotes
GRANT SELECT, INSERT ON strata.events TO strata_up_owner;
GRANT SELECT, INSERT, UPDATE ON strata.streams TO strata_up_owner;
CREATE ROLE "Strata Up-Writer";
GRANT INSERT ON strata.events TO "Strata Up-Writer";
GRANT EXECUTE ON FUNCTION strata.append(text, jsonb, bigint) TO "Strata Up-Writer";
-- an aggregate whose reducer a superuser owns: it ran as its callers,
-- and is given no owner rather than a superuser
CREATE FUNCTION up_count_su(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT state $$;
INSERT INTO strata.aggregates (category, reducer, initial_state,
							   snapshot_every, reducer_fingerprint)
VALUES ('upsu', 'up_count_su(jsonb, strata.events)', '{}', 0, 0);

ALTER EXTENSION strata UPDATE TO '0.4.0';
SELECT extversion FROM pg_extension WHERE extname = 'strata';
SELECT has_table_privilege('strata_up_owner', 'strata.events', 'INSERT') AS insert_events,
	   has_table_privilege('strata_up_owner', 'strata.streams', 'UPDATE') AS update_streams,
	   has_table_privilege('strata_up_owner', 'strata.events', 'SELECT') AS select_events,
	   has_table_privilege('Strata Up-Writer', 'strata.events', 'INSERT') AS quoted_insert,
	   has_function_privilege('Strata Up-Writer', 'strata.append(text, jsonb, bigint)',
							  'EXECUTE') AS quoted_append;
-- the superuser's reducer has no owner, and fails until defined again
SELECT owner IS NULL AS no_owner FROM strata.aggregates WHERE category = 'upsu';
SELECT try($$SELECT * FROM strata.load('upsu-1')$$);
SELECT strata.drop_aggregate('upsu');
-- the definitions made before 0.4.0 belong to the owner of their function
SELECT kind, name, owner FROM strata.definitions ORDER BY kind, name;
-- and work, run as that owner
SELECT * FROM strata.load('up-1');
SELECT strata.append('up-3', '{"type": "E"}');
SELECT * FROM up_seen ORDER BY stream;
-- the define functions run now; a redefinition keeps the owner
SELECT strata.define_aggregate('up', 'up_count(jsonb, strata.events)');
SELECT kind, name, owner FROM strata.definitions ORDER BY kind, name;
SELECT * FROM strata.load('up-1');
SELECT strata.drop_aggregate('up');
SELECT strata.drop_projection('up_proj');

-- 0.5.0: the status view estimates its backlog and says when no worker
-- can run; strata.progress; wait_for raises on parked events
ALTER EXTENSION strata UPDATE TO '0.5.0';
SELECT extversion FROM pg_extension WHERE extname = 'strata';
SELECT count(*) >= 0 AS status_reads FROM strata.subscription_status;
SELECT count(*) AS progress_rows FROM strata.progress;

-- 0.6.0: epochs; the first opens at the first append after the update
ALTER EXTENSION strata UPDATE TO '0.6.0';
SELECT extversion FROM pg_extension WHERE extname = 'strata';
SELECT count(*) AS epochs_before FROM strata.epochs;
SELECT strata.append('up-6', '{"type": "E"}');
SELECT timeline > 0 AS has_timeline, first_position, survived_position
FROM strata.epochs;

-- the upgraded extension has exactly the objects of a fresh install
SELECT object AS missing_after_upgrade FROM fresh
EXCEPT SELECT pg_describe_object(classid, objid, objsubid)
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata');
SELECT pg_describe_object(classid, objid, objsubid) AS extra_after_upgrade
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata')
EXCEPT SELECT object FROM fresh;

-- and the same initial privileges: the grants made before the update are
-- the DBA's, which pg_dump must keep
SELECT * FROM fresh_privs
EXCEPT SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
	   ip.initprivs::text
FROM pg_init_privs ip JOIN pg_depend d ON d.classid = ip.classoid
	 AND d.objid = ip.objoid AND d.refclassid = 'pg_extension'::regclass
	 AND d.deptype = 'e'
	 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata');
SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid) AS object,
	   ip.initprivs::text AS extra_initprivs
FROM pg_init_privs ip JOIN pg_depend d ON d.classid = ip.classoid
	 AND d.objid = ip.objoid AND d.refclassid = 'pg_extension'::regclass
	 AND d.deptype = 'e'
	 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata')
EXCEPT SELECT * FROM fresh_privs;

DROP FUNCTION up_count_su(jsonb, strata.events);
DROP OWNED BY strata_up_owner, "Strata Up-Writer";
DROP ROLE strata_up_owner, "Strata Up-Writer";
