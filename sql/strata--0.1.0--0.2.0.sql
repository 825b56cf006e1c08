/* sql/strata--0.1.0--0.2.0.sql: upgrade of pg_strata from 0.1.0 to 0.2.0 */

\echo Use "ALTER EXTENSION strata UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 adds aggregates (reducers, snapshots), command handlers and inline
-- projections.  A fresh CREATE EXTENSION runs 0.1.0 and then this script.

-- Every define_aggregate starts a new definition: snapshots name it.
CREATE SEQUENCE strata._definition_seq AS bigint;
COMMENT ON SEQUENCE strata._definition_seq IS
	'Private: ids of aggregate definitions, used by strata.define_aggregate.';

CREATE TABLE strata.aggregates (
	category			text		NOT NULL PRIMARY KEY,
	reducer				regprocedure NOT NULL,
	initial_state		jsonb		NOT NULL,
	snapshot_every		int			NOT NULL CHECK (snapshot_every >= 0),
	definition_id		bigint		NOT NULL DEFAULT nextval('strata._definition_seq'),
	reducer_fingerprint	bigint		NOT NULL,
	defined_at			timestamptz	NOT NULL DEFAULT now()
);
COMMENT ON TABLE strata.aggregates IS
	'Aggregate definitions, one per category; written by strata.define_aggregate.';
COMMENT ON COLUMN strata.aggregates.category IS 'Category whose streams the aggregate folds.';
COMMENT ON COLUMN strata.aggregates.reducer IS 'Reducer: (state jsonb, event strata.events) RETURNS jsonb.';
COMMENT ON COLUMN strata.aggregates.initial_state IS 'State of a stream without events.';
COMMENT ON COLUMN strata.aggregates.snapshot_every IS
	'strata.load saves a snapshot after folding this many events (0: never).';
COMMENT ON COLUMN strata.aggregates.definition_id IS
	'New at every definition; snapshots of other definitions are never used.';
COMMENT ON COLUMN strata.aggregates.reducer_fingerprint IS
	'Hash of the reducer''s source at definition time; a replaced reducer disables snapshots.';
COMMENT ON COLUMN strata.aggregates.defined_at IS 'When the aggregate was last defined.';

CREATE TABLE strata.snapshots (
	stream			text		NOT NULL,
	category		text		NOT NULL,
	definition_id	bigint		NOT NULL,
	version			bigint		NOT NULL CHECK (version >= 0),
	state			jsonb		NOT NULL,
	taken_at		timestamptz	NOT NULL DEFAULT now(),
	PRIMARY KEY (stream, definition_id, version)
);
CREATE INDEX snapshots_category_idx ON strata.snapshots (category);
COMMENT ON TABLE strata.snapshots IS
	'Aggregate states saved by strata.load, to start later loads from.';
COMMENT ON COLUMN strata.snapshots.stream IS 'Stream of the state.';
COMMENT ON COLUMN strata.snapshots.category IS 'Category of the stream.';
COMMENT ON COLUMN strata.snapshots.definition_id IS 'Aggregate definition that produced the state.';
COMMENT ON COLUMN strata.snapshots.version IS 'Version of the last event folded into the state.';
COMMENT ON COLUMN strata.snapshots.state IS 'The state.';
COMMENT ON COLUMN strata.snapshots.taken_at IS 'When the snapshot was saved.';

CREATE TABLE strata.commands (
	command_type		text		NOT NULL PRIMARY KEY,
	category			text		NOT NULL,
	handler				regprocedure NOT NULL,
	record_rejections	boolean		NOT NULL,
	defined_at			timestamptz	NOT NULL DEFAULT now()
);
COMMENT ON TABLE strata.commands IS
	'Command definitions; written by strata.define_command.';
COMMENT ON COLUMN strata.commands.command_type IS 'The "type" of the commands it handles.';
COMMENT ON COLUMN strata.commands.category IS 'Category of the streams the command applies to.';
COMMENT ON COLUMN strata.commands.handler IS 'Handler: (state jsonb, command jsonb) RETURNS jsonb, one event.';
COMMENT ON COLUMN strata.commands.record_rejections IS
	'true: a denied command appends a CommandRejected event instead of raising the error.';
COMMENT ON COLUMN strata.commands.defined_at IS 'When the command was last defined.';

CREATE TABLE strata.projections (
	name			text		NOT NULL PRIMARY KEY,
	handler			regprocedure NOT NULL,
	categories		text[],
	types			text[],
	defined_at		timestamptz	NOT NULL DEFAULT now()
);
COMMENT ON TABLE strata.projections IS
	'Projection definitions; written by strata.define_projection.';
COMMENT ON COLUMN strata.projections.name IS 'Name of the projection.';
COMMENT ON COLUMN strata.projections.handler IS 'Handler: (event strata.events) RETURNS void.';
COMMENT ON COLUMN strata.projections.categories IS 'Categories it takes events of (NULL: all).';
COMMENT ON COLUMN strata.projections.types IS 'Event types it takes (NULL: all).';
COMMENT ON COLUMN strata.projections.defined_at IS 'When the projection was last defined.';

SELECT pg_catalog.pg_extension_config_dump('strata.aggregates', '');
SELECT pg_catalog.pg_extension_config_dump('strata.snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('strata.commands', '');
SELECT pg_catalog.pg_extension_config_dump('strata.projections', '');
SELECT pg_catalog.pg_extension_config_dump('strata._definition_seq', '');

CREATE VIEW strata.definitions AS
	SELECT 'aggregate'::text AS kind, category AS name, reducer AS function,
		   ARRAY[category] AS categories, NULL::text[] AS types,
		   jsonb_build_object('initial_state', initial_state,
							  'snapshot_every', snapshot_every,
							  'definition_id', definition_id) AS options,
		   defined_at
	FROM strata.aggregates
	UNION ALL
	SELECT 'command', command_type, handler, ARRAY[category], NULL,
		   jsonb_build_object('record_rejections', record_rejections),
		   defined_at
	FROM strata.commands
	UNION ALL
	SELECT 'projection', name, handler, categories, types,
		   jsonb_build_object('mode', 'inline'), defined_at
	FROM strata.projections;
COMMENT ON VIEW strata.definitions IS
	'Every aggregate, command and projection definition: kind, name, function, categories, types, options.';
COMMENT ON COLUMN strata.definitions.kind IS 'aggregate, command or projection.';
COMMENT ON COLUMN strata.definitions.name IS 'Category (aggregate), command type (command) or name (projection).';
COMMENT ON COLUMN strata.definitions.function IS 'Reducer or handler.';
COMMENT ON COLUMN strata.definitions.categories IS 'Categories it applies to (NULL: all).';
COMMENT ON COLUMN strata.definitions.types IS 'Event types it takes (NULL: all).';
COMMENT ON COLUMN strata.definitions.options IS 'The other settings of the definition.';
COMMENT ON COLUMN strata.definitions.defined_at IS 'When it was last defined.';

-- Aggregates
CREATE FUNCTION strata.define_aggregate(category text, reducer regprocedure,
										initial_state jsonb DEFAULT '{}',
										snapshot_every int DEFAULT 100)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_aggregate';
COMMENT ON FUNCTION strata.define_aggregate(text, regprocedure, jsonb, int) IS
	'Create or replace the aggregate of a category: its reducer (state jsonb, event strata.events) RETURNS jsonb, initial state and snapshot interval.';

CREATE FUNCTION strata.drop_aggregate(category text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_aggregate';
COMMENT ON FUNCTION strata.drop_aggregate(text) IS
	'Drop the aggregate of a category and its snapshots.';

CREATE FUNCTION strata.load(stream text, at_version bigint DEFAULT NULL,
							OUT state jsonb, OUT version bigint)
	RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_load';
COMMENT ON FUNCTION strata.load(text, bigint) IS
	'State of a stream''s aggregate and the version it reflects (at_version: as of that version); may save a snapshot.';

-- Commands
CREATE FUNCTION strata.define_command(command_type text, category text,
									  handler regprocedure,
									  record_rejections boolean DEFAULT false)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_command';
COMMENT ON FUNCTION strata.define_command(text, text, regprocedure, boolean) IS
	'Create or replace the handler (state jsonb, command jsonb) RETURNS jsonb of a command type, for the streams of a category.';

CREATE FUNCTION strata.drop_command(command_type text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_command';
COMMENT ON FUNCTION strata.drop_command(text) IS 'Drop a command definition.';

CREATE FUNCTION strata.execute(stream text, command jsonb) RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_execute';
COMMENT ON FUNCTION strata.execute(text, jsonb) IS
	'Execute a command on a stream: load, handle, append the one resulting event; retries on conflicts; returns the new version.';

-- Projections
CREATE FUNCTION strata.define_projection(name text, handler regprocedure,
										 categories text[] DEFAULT NULL,
										 types text[] DEFAULT NULL)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_projection';
COMMENT ON FUNCTION strata.define_projection(text, regprocedure, text[], text[]) IS
	'Create or replace an inline projection: handler (event strata.events) RETURNS void runs in the appending transaction for matching events.';

CREATE FUNCTION strata.drop_projection(name text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_projection';
COMMENT ON FUNCTION strata.drop_projection(text) IS 'Drop a projection definition.';

CREATE FUNCTION strata.rebuild_projection(name text, reset regprocedure DEFAULT NULL)
	RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_rebuild_projection';
COMMENT ON FUNCTION strata.rebuild_projection(text, regprocedure) IS
	'Call the reset function, then replay every matching event through the projection; returns the number of events replayed.';

-- Each version binds the C entry points of its own API (src/version.h):
-- strata.append runs inline projections from 0.2.0 on.
CREATE OR REPLACE FUNCTION strata.append(stream text, events jsonb,
										 expected_version bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_append_0_2';

REVOKE ALL ON strata.aggregates, strata.snapshots, strata.commands,
	strata.projections, strata._definition_seq, strata.definitions FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION strata.execute(text, jsonb) FROM PUBLIC;
-- Every append reads the projection definitions, whoever appends.
GRANT SELECT ON strata.projections TO PUBLIC;
