-- setup: install the extension; every later suite uses this database.
CREATE EXTENSION strata;
SELECT extname, extversion FROM pg_extension WHERE extname = 'strata';
-- its members, as \dx+ lists them on 15 (17 and later also record the
-- row types of its tables and views, and their arrays, as members)
SELECT pg_describe_object(classid, objid, objsubid) AS "Object description"
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata')
  AND NOT (classid = 'pg_type'::regclass AND EXISTS (
		SELECT FROM pg_type t LEFT JOIN pg_type elem ON elem.oid = t.typelem
		LEFT JOIN pg_class c ON c.oid = coalesce(nullif(t.typrelid, 0), elem.typrelid)
		WHERE t.oid = objid AND c.relkind IN ('r', 'v', 'm', 'p', 'f')))
ORDER BY 1;
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
