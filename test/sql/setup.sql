-- setup: install the extension; every later suite uses this database.
CREATE EXTENSION strata;
SELECT extname, extversion FROM pg_extension WHERE extname = 'strata';
\dx+ strata
-- a helper: run a statement, return 'ok' or its SQLSTATE and message
CREATE FUNCTION public.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- a helper: wait (at most 30 s) until a query returns true; the workers
-- are asynchronous
CREATE FUNCTION public.wait_until(q text) RETURNS boolean LANGUAGE plpgsql AS $$
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
