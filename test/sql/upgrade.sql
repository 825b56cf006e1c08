-- upgrade: walk the upgrade chain from the first release; data survives
-- and the result equals a fresh install.
SELECT source, target, path FROM pg_extension_update_paths('strata')
WHERE path IS NOT NULL ORDER BY source, target;

-- the objects of a fresh install of the current version
CREATE TEMP TABLE fresh AS
SELECT pg_describe_object(classid, objid, objsubid) AS object
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata');

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
CREATE FUNCTION up_count(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
SELECT strata.define_aggregate('up', 'up_count(jsonb, strata.events)');
SELECT * FROM strata.load('up-1');
SELECT strata.append('up-1', '{"type": "C"}', 1);

-- an inline projection defined under 0.2.0 stays inline under 0.3.0
CREATE TABLE up_seen (stream text, version bigint);
CREATE FUNCTION up_project(e strata.events) RETURNS void LANGUAGE sql
AS $$ INSERT INTO up_seen VALUES (e.stream, e.version) $$;
SELECT strata.define_projection('up_proj', 'up_project(strata.events)');
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

-- the upgraded extension has exactly the objects of a fresh install
SELECT object AS missing_after_upgrade FROM fresh
EXCEPT SELECT pg_describe_object(classid, objid, objsubid)
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata');
SELECT pg_describe_object(classid, objid, objsubid) AS extra_after_upgrade
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata')
EXCEPT SELECT object FROM fresh;
