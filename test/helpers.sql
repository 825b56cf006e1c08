-- test/helpers.sql: what the pg_regress suites need from setup, made so
-- that a suite also runs on its own, in a new database: a suite includes
-- it (with ECHO none, and it prints nothing) before anything else.  The
-- functions are the ones test/sql/setup.sql creates; keep them the same.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS strata;
RESET client_min_messages;
-- a helper: run a statement, return 'ok' or its SQLSTATE and message
CREATE OR REPLACE FUNCTION public.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- a helper: wait (at most 30 s) until a query returns true; the workers
-- are asynchronous
CREATE OR REPLACE FUNCTION public.wait_until(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	ok boolean;
BEGIN
	FOR i IN 1..3000 LOOP
		EXECUTE q INTO ok;
		IF ok THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN false;
END $$;
