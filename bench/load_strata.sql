-- bench/load_strata.sql: one strata.load of the stream :stream (pgbench -D stream=...).
SELECT state, version FROM strata.load(:stream);
