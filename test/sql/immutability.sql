-- immutability: the log only grows.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
SELECT count(*) AS n FROM strata.events \gset
UPDATE strata.events SET type = 'Changed';
UPDATE strata.events SET type = 'Changed' WHERE false;
DELETE FROM strata.events WHERE stream = 'account-1';
TRUNCATE strata.events;
TRUNCATE strata.events CASCADE;
SELECT try('DELETE FROM strata.events');
SELECT count(*) = :n AS nothing_changed FROM strata.events;
-- the trigger function cannot be called directly
SELECT strata._forbid_change();
