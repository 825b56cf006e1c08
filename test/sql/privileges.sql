-- privileges: nothing is granted to PUBLIC; a DBA grants what a role needs.
CREATE ROLE strata_app_test LOGIN;
CREATE ROLE strata_reader_test LOGIN;
GRANT USAGE ON SCHEMA strata TO strata_app_test, strata_reader_test;
SET ROLE strata_reader_test;
SELECT strata.append('priv-1', '{"type": "A"}');
SELECT count(*) FROM strata.read_all(0, 1);
RESET ROLE;
-- the writer role of docs/api.md
GRANT EXECUTE ON FUNCTION strata.append(text, jsonb, bigint) TO strata_app_test;
GRANT SELECT, INSERT ON strata.events TO strata_app_test;
GRANT SELECT, INSERT, UPDATE ON strata.streams TO strata_app_test;
SET ROLE strata_app_test;
SELECT strata.append('priv-1', '{"type": "A"}');
SELECT count(*) FROM strata.read_stream('priv-1');
-- even a role allowed to DELETE cannot change the log
RESET ROLE;
GRANT DELETE ON strata.events TO strata_app_test;
SET ROLE strata_app_test;
DELETE FROM strata.events WHERE stream = 'priv-1';
RESET ROLE;
DROP OWNED BY strata_app_test, strata_reader_test;
DROP ROLE strata_app_test, strata_reader_test;
