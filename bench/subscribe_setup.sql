-- bench/subscribe_setup.sql: schema of the subscription benchmarks
-- (bench/subscribe.sh runs it once in a fresh throwaway database).
\set ON_ERROR_STOP on

CREATE EXTENSION IF NOT EXISTS strata;
-- Subscriptions came with 0.3.0: fail early, and clearly, without them.
DO $$
BEGIN
	IF to_regprocedure('strata.subscribe(text, regprocedure, text[], text[], text, text)') IS NULL
		OR to_regclass('strata.subscription_status') IS NULL THEN
		RAISE EXCEPTION 'strata % has no subscriptions (strata.subscribe, strata.subscription_status)',
			(SELECT extversion FROM pg_extension WHERE extname = 'strata');
	END IF;
END $$;

-- Latency: the handler records when the worker called it, per event.
CREATE TABLE public.bench_seen (
	stream		text		NOT NULL,
	version		bigint		NOT NULL,
	seen_at		timestamptz	NOT NULL
);
CREATE FUNCTION public.bench_record(e strata.events) RETURNS void
	LANGUAGE sql AS $$
	INSERT INTO public.bench_seen VALUES (e.stream, e.version, clock_timestamp())
$$;

-- Throughput: a handler that does nothing.
CREATE FUNCTION public.bench_noop(e strata.events) RETURNS void
	LANGUAGE plpgsql AS $$
BEGIN
	RETURN;
END $$;

-- The 10,000 streams of the throughput runs exist before the first
-- measured append (an append to an existing stream is the steady state),
-- as in bench/setup.sql.
SELECT count(strata.append('acct-' || g, '{"type": "Opened"}'))
	FROM generate_series(1, 10000) AS g;

VACUUM ANALYZE strata.events, strata.streams;
