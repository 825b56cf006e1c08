-- bench/append_batch.sql (pgbench script, B of the batch comparison): one
-- strata.append of 100 events to a random stream among 10,000.  :events is
-- the JSON array of the 100 events, given by bench/run.sh with -D; it is
-- sent as a parameter and parsed by the server on every call, exactly as
-- in bench/raw_batch.sql.
\set s random(1, 10000)
SELECT strata.append('stream-' || :s::int, :events::jsonb);
