-- expected_version: EventStoreDB's modes.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all

-- -1: the stream must not exist
SELECT strata.append('ev-a', '{"type": "Created"}', -1);
SELECT strata.append('ev-a', '{"type": "Created"}', -1);
-- -4: the stream must exist
SELECT strata.append('ev-b', '{"type": "Touched"}', -4);
SELECT strata.append('ev-a', '{"type": "Touched"}', -4);
-- n: the current version must be exactly n
SELECT strata.append('ev-a', '{"type": "Touched"}', 1);
SELECT strata.append('ev-a', '{"type": "Touched"}', 0);
SELECT strata.append('ev-a', '{"type": "Touched"}', 5);
SELECT strata.append('ev-c', '{"type": "Touched"}', 0);
-- -2 and NULL: any
SELECT strata.append('ev-a', '{"type": "Touched"}', -2);
SELECT strata.append('ev-a', '{"type": "Touched"}', NULL);
SELECT strata.append('ev-d', '{"type": "Touched"}', -2);

-- a wrong expected version writes nothing
SELECT version, type FROM strata.read_stream('ev-a');
SELECT strata.stream_version('ev-b'), strata.stream_version('ev-c');
SELECT count(*) FROM strata.events WHERE stream IN ('ev-b', 'ev-c');

-- the SQLSTATE is ST001
SELECT try($$SELECT strata.append('ev-a', '{"type": "X"}', 0)$$);
SELECT try($$SELECT strata.append('ev-a', '{"type": "X"}', -1)$$);
SELECT try($$SELECT strata.append('ev-z', '{"type": "X"}', -4)$$);

-- invalid modes: below -4, and -3
SELECT strata.append('ev-a', '{"type": "X"}', -3);
SELECT strata.append('ev-a', '{"type": "X"}', -5);
SELECT try($$SELECT strata.append('ev-a', '{"type": "X"}', -9223372036854775808)$$);
