-- bench/load_loop.sql (pgbench, A of the fold comparison): the baseline,
-- public.load_loop (bench/load_setup.sql), the PL/pgSQL fold over
-- strata.read_stream, of the stream :stream (pgbench -D stream=... -D warm=0).
-- The \if block is the work-around of bench/load_fold.sql, made here too
-- so that both sides run the same statements.
\if :warm = 0
SELECT public.account_reducer('{}', NULL), public.noop_reducer('{}', NULL);
\set warm 1
\endif
SELECT state, version FROM public.load_loop(:stream);
