-- transactions: read-only, PREPARE, isolation levels.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all

-- appending needs a read-write transaction
BEGIN READ ONLY;
SELECT strata.append('tx-1', '{"type": "A"}');
ROLLBACK;
SET default_transaction_read_only = on;
SELECT strata.append('tx-1', '{"type": "A"}');
-- reads work in a read-only transaction
SELECT count(*) >= 0 FROM strata.read_all(0, 1);
SELECT strata.stream_version('tx-1');
RESET default_transaction_read_only;

-- a transaction that appended cannot be prepared
BEGIN;
SELECT strata.append('tx-2', '{"type": "A"}');
PREPARE TRANSACTION 'tx2';
SELECT strata.stream_version('tx-2');
-- one that did not append can
BEGIN;
SELECT count(*) >= 0 FROM strata.read_all(0, 1);
PREPARE TRANSACTION 'tx3';
COMMIT PREPARED 'tx3';

-- appends in REPEATABLE READ and SERIALIZABLE work without contention
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT strata.append('tx-3', '{"type": "A"}', -1);
SELECT strata.append('tx-3', '{"type": "B"}', 0);
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT strata.append('tx-3', '{"type": "C"}', 1);
COMMIT;
SELECT version, type FROM strata.read_stream('tx-3');

-- an append after an error in the same transaction is refused by PostgreSQL
BEGIN;
SELECT strata.append('tx-4', '{"type": "A"}', 5);
SELECT strata.append('tx-4', '{"type": "A"}');
ROLLBACK;
SELECT strata.stream_version('tx-4');

-- appends from a PL/pgSQL loop, catching version conflicts
DO $$
DECLARE v bigint;
BEGIN
	FOR i IN 0..9 LOOP
		v := strata.append('tx-5', jsonb_build_object('type', 'Tick', 'data', i), i - 1);
	END LOOP;
	BEGIN
		PERFORM strata.append('tx-5', '{"type": "Late"}', 3);
	EXCEPTION WHEN SQLSTATE 'ST001' THEN
		RAISE NOTICE 'conflict caught: %', SQLERRM;
	END;
	RAISE NOTICE 'version %', strata.stream_version('tx-5');
END $$;
