-- scripts/demo.sql: the showcase `make demo` runs against a throwaway cluster.
\set ON_ERROR_STOP off
\pset footer off
\echo
\echo '=== 1. Install: CREATE EXTENSION strata (the library is in shared_preload_libraries)'
CREATE EXTENSION strata;

\echo
\echo '=== 2. Append: a new bank account (expected version -1: the stream must not exist)'
SELECT strata.append('ledger-42', '[
  {"type": "AccountOpened", "data": {"owner": "Ada"}},
  {"type": "MoneyDeposited", "data": {"amount": 100}, "metadata": {"by": "teller-7"}}
]', -1) AS new_version;

\echo
\echo '=== 3. Optimistic concurrency: two clients both read version 1 and decide'
SELECT strata.append('ledger-42', '{"type": "MoneyWithdrawn", "data": {"amount": 30}}', 1) AS client_a;
\echo '--- client B comes second with the same expected version: ST001, nothing written'
SELECT strata.append('ledger-42', '{"type": "MoneyWithdrawn", "data": {"amount": 90}}', 1) AS client_b;

\echo
\echo '=== 4. Idempotent retry: the reply was lost, the client sends the same event id again'
SELECT strata.append('ledger-42', '{"type": "MoneyDeposited", "data": {"amount": 5}, "id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8b"}', 2) AS first_try;
SELECT strata.append('ledger-42', '{"type": "MoneyDeposited", "data": {"amount": 5}, "id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8b"}', 2) AS retry;
\echo '--- the same id with another amount is not a retry: ST002, nothing written'
SELECT strata.append('ledger-42', '{"type": "MoneyDeposited", "data": {"amount": 50}, "id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8b"}', 2) AS changed;
SELECT count(*) AS deposits_of_5 FROM strata.read_stream('ledger-42') WHERE data->>'amount' = '5';

\echo
\echo '=== 5. Reads: one stream by version'
SELECT version, type, data, metadata FROM strata.read_stream('ledger-42');
SELECT strata.append('ledger-43', '{"type": "AccountOpened", "data": {"owner": "Grace"}}');
SELECT strata.append('audit-1', '{"type": "LoginSeen"}');
\echo '--- the whole log and one category, in global order'
SELECT position, stream, version, type FROM strata.read_all(after_position => 0);
SELECT position, stream, type FROM strata.read_category('ledger', after_position => 2);

\echo
\echo '=== 6. The no-skip contract: this session takes a position and commits last'
BEGIN;
SELECT strata.append('ledger-44', '{"type": "AccountOpened"}') AS held_open;
\echo '--- meanwhile another session appends and commits a larger position'
\! psql -X -c "SELECT strata.append('audit-1', '{\"type\": \"LoginSeen\"}')"
\echo '--- a consumer after position 5 gets 6, but not 8: position 7 (ours) is still in flight,'
\echo '--- and a consumer that moved its cursor to 8 would never see 7'
\! psql -X -c "SELECT position, stream, type FROM strata.read_all(after_position => 5)"
COMMIT;
\echo '--- committed: the consumer now gets both, in position order'
\! psql -X -c "SELECT position, stream, type FROM strata.read_all(after_position => 5)"

\echo
\echo '=== 7. The log is immutable'
DELETE FROM strata.events WHERE stream = 'ledger-42';

\echo
\echo '=== 8. Bad input gets a clear error and a SQLSTATE'
\set VERBOSITY verbose
SELECT strata.append('ledger-42', '[{"type": "MoneyDeposited", "metdata": {}}]');
SELECT strata.append('ledger-42', '{"type": "X"}', -3);
\set VERBOSITY default

\echo
\echo '=== 9. The feed: logical decoding with the strata output plugin'
\echo '--- (the cluster has wal_level = logical and strata in output_plugin_libraries)'
SELECT 'created' AS feed_slot FROM pg_create_logical_replication_slot('demo_feed', 'strata');
SELECT strata.append('ledger-42', '{"type": "MoneyWithdrawn", "data": {"amount": 10}}');
BEGIN;
SELECT strata.append('ledger-43', '{"type": "MoneyDeposited", "data": {"amount": 7}}');
ROLLBACK;
SELECT strata.append('audit-1', '{"type": "LoginSeen"}');
\echo '--- every committed event once, in commit order, one JSON object each (the rolled-back one never appears)'
\pset format unaligned
\pset tuples_only on
SELECT data FROM pg_logical_slot_get_changes('demo_feed', NULL, NULL);
\pset format aligned
\pset tuples_only off
SELECT strata.append('ledger-42', '{"type": "MoneyDeposited", "data": {"amount": 3}}');
SELECT strata.append('audit-1', '{"type": "LoginSeen"}');
\echo '--- options: only one category, thin notifications (no data), transaction markers'
\pset format unaligned
\pset tuples_only on
SELECT data FROM pg_logical_slot_get_changes('demo_feed', NULL, NULL,
	'categories', 'ledger', 'include-data', 'false', 'include-transaction', 'true');
\pset format aligned
\pset tuples_only off
\echo '--- a bad option is refused before anything is consumed'
SELECT data FROM pg_logical_slot_get_changes('demo_feed', NULL, NULL, 'include_data', 'false');
\echo '--- drop the slot when no one reads it: a forgotten slot keeps WAL forever'
SELECT pg_drop_replication_slot('demo_feed');

\echo
\echo '=== 10. Aggregates, commands and a projection: the worked example of docs/guide.md'
\set ON_ERROR_STOP off
\i /tmp/strata-demo-guide.sql
