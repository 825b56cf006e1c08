-- bench/load_setup.sql: schema and streams of the aggregate-load
-- benchmarks (bench/load.sh runs it once in a fresh throwaway database).
--
-- One PL/pgSQL reducer, a bank account, serves three aggregates:
--   acct   snapshot_every 0: strata.load folds the whole stream every call;
--   big    snapshot_every 100, one stream of 100,000 events (+ 50);
--   small  snapshot_every 100, one stream of 1,000 events (+ 50).
-- public.load_loop() is the baseline of the first comparison: the fold
-- written by hand in PL/pgSQL over strata.read_stream, with the same
-- reducer and initial state.
-- For the diagnostic comparison (BENCH_DIAG=1): the aggregate noop
-- (snapshot_every 0) with a PL/pgSQL reducer that returns the state
-- unchanged, its baseline public.load_loop_noop(), and a stream noop-1 of
-- the same 10,000 events: the cost of the fold without the reducer's work.
\set ON_ERROR_STOP on

CREATE EXTENSION IF NOT EXISTS strata;

-- The reducer: a bank account.  The state is
-- {"owner": ..., "balance": n, "deposits": n, "withdrawals": n}.
CREATE FUNCTION public.account_reducer(state jsonb, e strata.events)
	RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	CASE e.type
		WHEN 'Deposited' THEN
			RETURN jsonb_set(jsonb_set(state, '{balance}',
					to_jsonb((state->>'balance')::numeric
							 + (e.data->>'amount')::numeric)),
				'{deposits}', to_jsonb((state->>'deposits')::int + 1));
		WHEN 'Withdrawn' THEN
			RETURN jsonb_set(jsonb_set(state, '{balance}',
					to_jsonb((state->>'balance')::numeric
							 - (e.data->>'amount')::numeric)),
				'{withdrawals}', to_jsonb((state->>'withdrawals')::int + 1));
		WHEN 'Opened' THEN
			RETURN jsonb_set(state, '{owner}', e.data->'owner');
		ELSE
			RETURN state;
	END CASE;
END
$$;

-- The baseline: the same fold by hand, over read_stream, returning the
-- same (state, version) as strata.load.
CREATE FUNCTION public.load_loop(s text, OUT state jsonb, OUT version bigint)
	LANGUAGE plpgsql AS $$
DECLARE
	e strata.events;
BEGIN
	state := '{"balance": 0, "deposits": 0, "withdrawals": 0}';
	version := -1;
	FOR e IN SELECT * FROM strata.read_stream(s, 0, 1000000) LOOP
		state := public.account_reducer(state, e);
		version := e.version;
	END LOOP;
END
$$;

-- The diagnostic reducer and its loop: the same, minus the reducer's work.
CREATE FUNCTION public.noop_reducer(state jsonb, e strata.events)
	RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	RETURN state;
END
$$;

CREATE FUNCTION public.load_loop_noop(s text, OUT state jsonb, OUT version bigint)
	LANGUAGE plpgsql AS $$
DECLARE
	e strata.events;
BEGIN
	state := '{"balance": 0, "deposits": 0, "withdrawals": 0}';
	version := -1;
	FOR e IN SELECT * FROM strata.read_stream(s, 0, 1000000) LOOP
		state := public.noop_reducer(state, e);
		version := e.version;
	END LOOP;
END
$$;

-- Milliseconds of one strata.load (for the one-off timings).
CREATE FUNCTION public.timed_load(s text) RETURNS double precision
	LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM strata.load(s);
	RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END
$$;

-- The events n0 .. n0 + n - 1 of an account as one JSON array: event 0
-- opens it, then two deposits for one withdrawal, amounts 1 to 100.
CREATE FUNCTION public.account_events(n0 int, n int) RETURNS jsonb
	LANGUAGE sql AS $$
	SELECT jsonb_agg(CASE
		WHEN g = 0 THEN jsonb_build_object('type', 'Opened',
			'data', jsonb_build_object('owner', 'bench'))
		ELSE jsonb_build_object(
			'type', CASE WHEN g % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
			'data', jsonb_build_object('amount', g % 100 + 1))
		END ORDER BY g)
	FROM generate_series(n0, n0 + n - 1) AS g
$$;

-- account_fill(stream, total): append 'total' events in batches of 1,000.
CREATE PROCEDURE public.account_fill(s text, total int) LANGUAGE plpgsql AS $$
DECLARE
	i int := 0;
BEGIN
	WHILE i < total LOOP
		PERFORM strata.append(s, public.account_events(i, least(1000, total - i)));
		i := i + 1000;
	END LOOP;
END
$$;

SELECT strata.define_aggregate('acct', 'public.account_reducer(jsonb, strata.events)',
	'{"balance": 0, "deposits": 0, "withdrawals": 0}', snapshot_every => 0);
SELECT strata.define_aggregate('noop', 'public.noop_reducer(jsonb, strata.events)',
	'{"balance": 0, "deposits": 0, "withdrawals": 0}', snapshot_every => 0);
SELECT strata.define_aggregate('big', 'public.account_reducer(jsonb, strata.events)',
	'{"balance": 0, "deposits": 0, "withdrawals": 0}', snapshot_every => 100);
SELECT strata.define_aggregate('small', 'public.account_reducer(jsonb, strata.events)',
	'{"balance": 0, "deposits": 0, "withdrawals": 0}', snapshot_every => 100);

CALL public.account_fill('acct-1', 10000);
CALL public.account_fill('noop-1', 10000);
CALL public.account_fill('big-1', 100000);
CALL public.account_fill('small-1', 1000);

VACUUM ANALYZE strata.events, strata.streams;
