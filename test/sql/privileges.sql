-- privileges: nothing is granted to PUBLIC; a DBA grants what a role needs,
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- one of the documented sets of strata.grant_privileges.  Nobody but the
-- extension's owner writes the extension's tables: the functions do it.
CREATE ROLE strata_app_test LOGIN;
CREATE ROLE strata_reader_test LOGIN;
CREATE ROLE strata_nobody_test LOGIN;
GRANT USAGE ON SCHEMA strata TO strata_nobody_test;
SET ROLE strata_nobody_test;
SELECT strata.append('priv-1', '{"type": "A"}');
SELECT count(*) FROM strata.read_all(0, 1);
RESET ROLE;

-- an aggregate and a command, defined by the superuser, for the sets to use
CREATE FUNCTION priv_count(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
CREATE FUNCTION priv_handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('type', 'Pinged') $$;
SELECT strata.define_aggregate('priv', 'priv_count(jsonb, strata.events)');
SELECT strata.define_command('PrivPing', 'priv', 'priv_handle(jsonb, jsonb)');

-- the writer set of docs/api.md: append, execute, load and the reads
SELECT strata.grant_privileges('strata_app_test', 'writer');
SET ROLE strata_app_test;
SELECT strata.append('priv-1', '{"type": "A"}');
SELECT strata.execute('priv-1', '{"type": "PrivPing"}');
SELECT version, type FROM strata.read_stream('priv-1');
SELECT type FROM strata.read_all((SELECT min(position) - 1 FROM strata.events WHERE stream = 'priv-1'), 10);
SELECT strata.stream_version('priv-1');
SELECT version FROM strata.streams WHERE stream = 'priv-1';
SELECT * FROM strata.load('priv-1');
-- but not the tables themselves: no event is written past append
INSERT INTO strata.events VALUES (1000000, 'priv-1', 2, gen_random_uuid(),
	'Forged', '{}', '{}', now(), 'priv');
UPDATE strata.streams SET version = 10 WHERE stream = 'priv-1';
-- and nothing a writer was not given
SELECT strata.define_aggregate('priv', 'priv_count(jsonb, strata.events)');
SELECT strata.subscribe('priv_sub', 'strata.category(text)');
RESET ROLE;
SELECT strata.stream_version('priv-1');

-- the reader set: the reads and load, no writes
SELECT strata.grant_privileges('strata_reader_test', 'reader');
SET ROLE strata_reader_test;
SELECT version, type FROM strata.read_stream('priv-1');
SELECT type FROM strata.read_all((SELECT min(position) - 1 FROM strata.events WHERE stream = 'priv-1'), 10);
SELECT version FROM strata.streams WHERE stream = 'priv-1';
SELECT * FROM strata.load('priv-1');
SELECT strata.append('priv-1', '{"type": "A"}');
SELECT strata.execute('priv-1', '{"type": "PrivPing"}');
INSERT INTO strata.events VALUES (1000000, 'priv-1', 2, gen_random_uuid(),
	'Forged', '{}', '{}', now(), 'priv');
RESET ROLE;

-- even a role allowed to DELETE cannot change the log
GRANT DELETE ON strata.events TO strata_app_test;
SET ROLE strata_app_test;
DELETE FROM strata.events WHERE stream = 'priv-1';
RESET ROLE;
SELECT strata.stream_version('priv-1');

SELECT strata.drop_command('PrivPing');
SELECT strata.drop_aggregate('priv');
DROP FUNCTION priv_count(jsonb, strata.events), priv_handle(jsonb, jsonb);
DROP OWNED BY strata_app_test, strata_reader_test, strata_nobody_test;
DROP ROLE strata_app_test, strata_reader_test, strata_nobody_test;
