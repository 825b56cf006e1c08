-- bench/setup.sql: schema of the append benchmarks (bench/run.sh runs it
-- once in a fresh throwaway database).
--
-- public.raw_events is the baseline ("the physical limit"): a plain table
-- with the same columns, constraints and indexes as strata.events, written
-- by a bare INSERT.  Positions come from a sequence, like strata's.  Ids
-- default to a time-ordered (version 7 layout) UUID because strata.append
-- generates version 7 ids: a random (version 4) id would scatter the
-- inserts over the whole id index and make the baseline slower and its WAL
-- larger than the work strata really does.
\set ON_ERROR_STOP on

CREATE EXTENSION IF NOT EXISTS strata;

-- 48 bits of Unix time in milliseconds, then random bits, version 7.
-- A single SELECT: the planner inlines it into the INSERT.
CREATE FUNCTION public.bench_uuid_v7() RETURNS uuid
	LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
	SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
		placing substring(int8send((date_part('epoch', clock_timestamp())
			* 1000)::bigint) from 3) from 1 for 6), 52, 1), 53, 1),
		'hex')::uuid
$$;

CREATE SEQUENCE public.raw_events_position_seq AS bigint START 1 NO CYCLE;

CREATE TABLE public.raw_events (
	position	bigint		NOT NULL DEFAULT nextval('public.raw_events_position_seq'),
	stream		text		NOT NULL,
	version		bigint		NOT NULL,
	id			uuid		NOT NULL DEFAULT public.bench_uuid_v7(),
	type		text		NOT NULL,
	data		jsonb		NOT NULL,
	metadata	jsonb		NOT NULL DEFAULT '{}',
	recorded_at	timestamptz	NOT NULL DEFAULT now(),
	category	text		NOT NULL,
	CONSTRAINT raw_events_pkey PRIMARY KEY (position),
	CONSTRAINT raw_events_stream_version_key UNIQUE (stream, version),
	CONSTRAINT raw_events_id_key UNIQUE (id),
	CONSTRAINT raw_events_version_check CHECK (version >= 0),
	CONSTRAINT raw_events_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
ALTER SEQUENCE public.raw_events_position_seq OWNED BY public.raw_events.position;
CREATE INDEX raw_events_category_position_idx
	ON public.raw_events (category, position);

-- The 10,000 streams exist before the first measured append (an append
-- to an existing stream is the steady state), and both tables start with
-- the same 10,000 rows.
SELECT count(strata.append('stream-' || g, '{"type": "Opened"}'))
	FROM generate_series(1, 10000) AS g;
INSERT INTO public.raw_events (position, stream, version, type, data, category)
	SELECT p, 'stream-' || g, p, 'Opened', '{}', 'stream'
	FROM (SELECT nextval('public.raw_events_position_seq') AS p, g
		  FROM generate_series(1, 10000) AS g) AS x;

VACUUM ANALYZE strata.events, strata.streams, public.raw_events;

-- For the diagnostic bench/raw_single_stream.sql: a plain
-- copy of strata.streams, one row per stream.
CREATE TABLE public.raw_streams (
	stream		text		NOT NULL,
	version		bigint		NOT NULL,
	CONSTRAINT raw_streams_pkey PRIMARY KEY (stream)
) WITH (fillfactor = 80);
INSERT INTO public.raw_streams SELECT 'stream-' || g, 0
	FROM generate_series(1, 10000) AS g;
VACUUM ANALYZE public.raw_streams;
