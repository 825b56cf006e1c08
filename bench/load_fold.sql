-- bench/load_fold.sql (pgbench, B of the fold comparison): one strata.load
-- of the stream :stream (pgbench -D stream=... -D warm=0).
--
-- Work-around, first transaction of each connection only (the same in every
-- load_*.sql, so every side pays it): compile the reducer before the first
-- strata.load.  strata.load keeps the initial state and a snapshot's state
-- in memory freed before the fold (a bug of strata 0.2.0, see
-- docs/benchmarks.md); in a session where PL/pgSQL and the reducer are not
-- loaded yet, their loading reuses that memory and the first load fails
-- ("unknown type of jsonb container", a NULL state) or crashes.
\if :warm = 0
SELECT public.account_reducer('{}', NULL), public.noop_reducer('{}', NULL);
\set warm 1
\endif
SELECT state, version FROM strata.load(:stream);
