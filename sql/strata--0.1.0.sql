/* sql/strata--0.1.0.sql: install script of pg_strata 0.1.0 */

\echo Use "CREATE EXTENSION strata" to load this file. \quit

-- Fail early, with a hint, when the library is not preloaded.
CREATE FUNCTION strata._check_preload() RETURNS void
	LANGUAGE c AS 'MODULE_PATHNAME', 'strata_check_preload';
SELECT strata._check_preload();
COMMENT ON FUNCTION strata._check_preload() IS
	'Private: raises an error unless strata is in shared_preload_libraries.';

-- Global positions.  Handed out by strata.append under the registry lock
-- (see docs/architecture.md); never call nextval on it yourself.
CREATE SEQUENCE strata._position_seq AS bigint START 1 NO CYCLE;
COMMENT ON SEQUENCE strata._position_seq IS
	'Private: source of global event positions, used by strata.append only.';

CREATE TABLE strata.events (
	position	bigint		NOT NULL,
	stream		text		NOT NULL,
	version		bigint		NOT NULL,
	id			uuid		NOT NULL,
	type		text		NOT NULL,
	data		jsonb		NOT NULL,
	metadata	jsonb		NOT NULL,
	recorded_at	timestamptz	NOT NULL,
	category	text		NOT NULL,
	CONSTRAINT events_pkey PRIMARY KEY (position),
	CONSTRAINT events_stream_version_key UNIQUE (stream, version),
	CONSTRAINT events_id_key UNIQUE (id),
	CONSTRAINT events_version_check CHECK (version >= 0),
	CONSTRAINT events_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX events_category_position_idx ON strata.events (category, position);

COMMENT ON TABLE strata.events IS
	'The event log: one row per event, immutable. Write with strata.append, read with strata.read_stream, strata.read_all and strata.read_category.';
COMMENT ON COLUMN strata.events.position IS
	'Global position: unique, increasing in the order strata.read_all returns events.';
COMMENT ON COLUMN strata.events.stream IS 'Stream name, category-id.';
COMMENT ON COLUMN strata.events.version IS
	'Version of the event within its stream, from 0.';
COMMENT ON COLUMN strata.events.id IS
	'Event id, unique; given by the writer or generated (UUID version 7).';
COMMENT ON COLUMN strata.events.type IS 'Event type.';
COMMENT ON COLUMN strata.events.data IS 'Event payload, any JSON ({} when not given).';
COMMENT ON COLUMN strata.events.metadata IS 'Event metadata, a JSON object.';
COMMENT ON COLUMN strata.events.recorded_at IS 'When strata.append wrote the event.';
COMMENT ON COLUMN strata.events.category IS
	'Category of the stream: the stream name up to its first ''-''.';

-- One row per stream: its current version.  The row is the stream's lock.
CREATE TABLE strata.streams (
	stream		text		NOT NULL,
	version		bigint		NOT NULL,
	CONSTRAINT streams_pkey PRIMARY KEY (stream)
) WITH (fillfactor = 80);
COMMENT ON TABLE strata.streams IS
	'One row per stream with its current version; maintained by strata.append, do not write to it.';
COMMENT ON COLUMN strata.streams.stream IS 'Stream name.';
COMMENT ON COLUMN strata.streams.version IS 'Version of the last event of the stream.';

-- Immutability of the log.
CREATE FUNCTION strata._forbid_change() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'strata_forbid_change';
COMMENT ON FUNCTION strata._forbid_change() IS
	'Private: trigger that refuses UPDATE, DELETE and TRUNCATE of strata.events.';
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE OR TRUNCATE
	ON strata.events FOR EACH STATEMENT EXECUTE FUNCTION strata._forbid_change();

-- pg_dump keeps the log, the streams and the position sequence.
SELECT pg_catalog.pg_extension_config_dump('strata.events', '');
SELECT pg_catalog.pg_extension_config_dump('strata.streams', '');
SELECT pg_catalog.pg_extension_config_dump('strata._position_seq', '');

CREATE FUNCTION strata.append(stream text, events jsonb,
							  expected_version bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_append';
COMMENT ON FUNCTION strata.append(text, jsonb, bigint) IS
	'Append events (an array of {type, data, metadata, id} objects, or one) to a stream atomically; returns the stream''s new version. expected_version: NULL or -2 any, -1 no stream, -4 stream exists, n exactly n.';

CREATE FUNCTION strata.stream_version(stream text) RETURNS bigint
	LANGUAGE c STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'strata_stream_version';
COMMENT ON FUNCTION strata.stream_version(text) IS
	'Version of the last event of a stream, -1 when the stream has none.';

CREATE FUNCTION strata.category(stream text) RETURNS text
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'strata_category';
COMMENT ON FUNCTION strata.category(text) IS
	'Category of a stream name: the text before its first ''-'' (the whole name when it has none).';

CREATE FUNCTION strata.read_stream(stream text, from_version bigint DEFAULT 0,
								   max_count int DEFAULT 1000)
	RETURNS SETOF strata.events
	LANGUAGE c STABLE STRICT PARALLEL SAFE ROWS 100
	AS 'MODULE_PATHNAME', 'strata_read_stream';
COMMENT ON FUNCTION strata.read_stream(text, bigint, int) IS
	'Events of a stream from a version on, by version, at most max_count.';

CREATE FUNCTION strata.read_all(after_position bigint DEFAULT 0,
								max_count int DEFAULT 1000)
	RETURNS SETOF strata.events
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE ROWS 1000
	AS 'MODULE_PATHNAME', 'strata_read_all';
COMMENT ON FUNCTION strata.read_all(bigint, int) IS
	'Committed events after a position, in position order, at most max_count; never skips an event that commits later with a lower position.';

CREATE FUNCTION strata.read_category(category text,
									 after_position bigint DEFAULT 0,
									 max_count int DEFAULT 1000)
	RETURNS SETOF strata.events
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE ROWS 1000
	AS 'MODULE_PATHNAME', 'strata_read_category';
COMMENT ON FUNCTION strata.read_category(text, bigint, int) IS
	'Like strata.read_all, for the streams of one category.';

-- Nothing is granted to PUBLIC: see "Privileges" in docs/api.md.
REVOKE ALL ON strata.events, strata.streams, strata._position_seq FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION strata.append(text, jsonb, bigint) FROM PUBLIC;
