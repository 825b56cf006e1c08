-- bench/load_snap.sql (pgbench, both sides of the snapshot comparison): one
-- strata.load of the stream :stream (pgbench -D stream=... -D warm=0), which
-- starts from the stream's snapshot.  The \if block is the work-around of
-- bench/load_fold.sql (first transaction of each connection only).
\if :warm = 0
SELECT public.account_reducer('{}', NULL), public.noop_reducer('{}', NULL);
\set warm 1
\endif
SELECT state, version FROM strata.load(:stream);
