-- bench/load_loop_noop.sql (pgbench, A of the diagnostic fold comparison):
-- public.load_loop_noop (bench/load_setup.sql), bench/load_loop.sql with a
-- reducer that returns the state unchanged, of the stream :stream
-- (pgbench -D stream=... -D warm=0).  The \if block: see bench/load_fold.sql.
\if :warm = 0
SELECT public.account_reducer('{}', NULL), public.noop_reducer('{}', NULL);
\set warm 1
\endif
SELECT state, version FROM public.load_loop_noop(:stream);
