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
