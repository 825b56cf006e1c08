-- bench/load_loop.sql: the baseline, the PL/pgSQL fold over strata.read_stream
-- (public.load_loop, bench/load_setup.sql) of the stream :stream.
SELECT state, version FROM public.load_loop(:stream);
