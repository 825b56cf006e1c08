/* sql/strata.sql: install script of the current version of pg_strata */

\echo Use "CREATE EXTENSION strata" to load this file. \quit

-- The Makefile installs this file as sql/strata--<default_version>.sql.
-- It creates what the first release's script followed by every upgrade
-- script creates (test/sql/upgrade.sql and TAP 006 compare the two): an
-- upgrade script that changes the schema changes this file the same way.

-- Fail early, with a hint, when the library is not preloaded.
CREATE FUNCTION strata._check_preload() RETURNS void
	LANGUAGE c AS 'MODULE_PATHNAME', 'strata_check_preload';
SELECT strata._check_preload();
COMMENT ON FUNCTION strata._check_preload() IS
	'Private: raises an error unless strata is in shared_preload_libraries.';

--
-- The log: events, streams, global positions
--

-- Global positions.  Handed out by strata.append under the registry lock
-- (see docs/architecture.md); never call nextval on it yourself.  A
-- position plus one never overflows (progress ranges are half-open).
CREATE SEQUENCE strata._position_seq AS bigint START 1 NO CYCLE
	MAXVALUE 9223372036854775806;
COMMENT ON SEQUENCE strata._position_seq IS
	'Private: source of global event positions, used by strata.append only.';

-- Epochs (0.6.0): the stretches of positions issued on one system and
-- timeline.  A new one opens before any position is issued when the
-- database finds itself on another system or timeline than its last
-- epoch's (a promotion, a restore of a physical backup, pg_upgrade): its
-- first position is far above the last that survived, so that no
-- position is handed out twice, and the positions in between
-- (survived_position, first_position) are the epoch's lost range, where
-- strata.read_all, strata.read_category and strata.wait_for refuse a
-- cursor (ST006).  Written by the extension only (docs/architecture.md,
-- "Epochs").
CREATE TABLE strata.epochs (
	system_identifier	text		NOT NULL,
	timeline			integer		NOT NULL,
	first_position		bigint		NOT NULL,
	survived_position	bigint,
	started_at			timestamptz	NOT NULL,
	PRIMARY KEY (system_identifier, timeline)
);
COMMENT ON TABLE strata.epochs IS
	'Epochs: positions issued on one system and timeline; the positions between survived_position and first_position were lost at a failover.';
COMMENT ON COLUMN strata.epochs.system_identifier IS
	'The system identifier of the server (pg_control_system()).';
COMMENT ON COLUMN strata.epochs.timeline IS 'The timeline of the WAL.';
COMMENT ON COLUMN strata.epochs.first_position IS
	'The first position the epoch may issue.';
COMMENT ON COLUMN strata.epochs.survived_position IS
	'The last position that survived from the epochs before (0: none); NULL for the first epoch, which lost nothing.';
COMMENT ON COLUMN strata.epochs.started_at IS 'When the epoch opened.';

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

-- Writing and reading the log
CREATE FUNCTION strata.append(stream text, events jsonb,
							  expected_version bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_append_0_6';
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
	AS 'MODULE_PATHNAME', 'strata_read_all_0_6';
COMMENT ON FUNCTION strata.read_all(bigint, int) IS
	'Committed events after a position, in position order, at most max_count; never skips an event that commits later with a lower position; raises ST006 for a position lost at a failover.';

CREATE FUNCTION strata.read_category(category text,
									 after_position bigint DEFAULT 0,
									 max_count int DEFAULT 1000)
	RETURNS SETOF strata.events
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE ROWS 1000
	AS 'MODULE_PATHNAME', 'strata_read_category_0_6';
COMMENT ON FUNCTION strata.read_category(text, bigint, int) IS
	'Like strata.read_all, for the streams of one category.';

--
-- Definitions: aggregates, commands, projections.  Each records the role
-- that owns it: its function runs as that role (src/usercall.c).
--

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
	defined_at			timestamptz	NOT NULL DEFAULT now(),
	owner				regrole
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
COMMENT ON COLUMN strata.aggregates.owner IS
	'Role that owns the aggregate; the reducer runs as this role (NULL: the role was dropped; define the aggregate again).';

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
	defined_at			timestamptz	NOT NULL DEFAULT now(),
	owner				regrole
);
COMMENT ON TABLE strata.commands IS
	'Command definitions; written by strata.define_command.';
COMMENT ON COLUMN strata.commands.command_type IS 'The "type" of the commands it handles.';
COMMENT ON COLUMN strata.commands.category IS 'Category of the streams the command applies to.';
COMMENT ON COLUMN strata.commands.handler IS 'Handler: (state jsonb, command jsonb) RETURNS jsonb, one event.';
COMMENT ON COLUMN strata.commands.record_rejections IS
	'true: a denied command appends a CommandRejected event instead of raising the error.';
COMMENT ON COLUMN strata.commands.defined_at IS 'When the command was last defined.';
COMMENT ON COLUMN strata.commands.owner IS
	'Role that owns the command; the handler runs as this role (NULL: the role was dropped; define the command again).';

-- (the column order is the upgrade chain's: mode and owner came later)
CREATE TABLE strata.projections (
	name			text		NOT NULL PRIMARY KEY,
	handler			regprocedure NOT NULL,
	categories		text[],
	types			text[],
	defined_at		timestamptz	NOT NULL DEFAULT now(),
	mode			text		NOT NULL DEFAULT 'inline'
					CHECK (mode IN ('inline', 'async')),
	owner			regrole
);
COMMENT ON TABLE strata.projections IS
	'Projection definitions; written by strata.define_projection.';
COMMENT ON COLUMN strata.projections.name IS 'Name of the projection.';
COMMENT ON COLUMN strata.projections.handler IS 'Handler: (event strata.events) RETURNS void.';
COMMENT ON COLUMN strata.projections.categories IS 'Categories it takes events of (NULL: all).';
COMMENT ON COLUMN strata.projections.types IS 'Event types it takes (NULL: all).';
COMMENT ON COLUMN strata.projections.defined_at IS 'When the projection was last defined.';
COMMENT ON COLUMN strata.projections.mode IS
	'inline: runs in the appending transaction; async: runs as a subscription of the same name.';
COMMENT ON COLUMN strata.projections.owner IS
	'Role that owns the projection; the handler (inline or async) runs as this role (NULL: the role was dropped; define the projection again).';

-- The tables are private: definitions are read through this view, which
-- shows a role the definitions it owns (or whose owner it is a member
-- of), and all of them to members of pg_read_all_stats.
CREATE VIEW strata.definitions WITH (security_barrier) AS
	SELECT d.kind, d.name, d.function, d.categories, d.types, d.options,
		   d.defined_at, d.owner
	FROM (
		SELECT 'aggregate'::text AS kind, category AS name,
			   reducer AS function, ARRAY[category] AS categories,
			   NULL::text[] AS types,
			   pg_catalog.jsonb_build_object(
				   'initial_state', initial_state,
				   'snapshot_every', snapshot_every,
				   'definition_id', definition_id) AS options,
			   defined_at, owner
		FROM strata.aggregates
		UNION ALL
		SELECT 'command', command_type, handler, ARRAY[category], NULL,
			   pg_catalog.jsonb_build_object('record_rejections',
											 record_rejections),
			   defined_at, owner
		FROM strata.commands
		UNION ALL
		SELECT 'projection', name, handler, categories, types,
			   pg_catalog.jsonb_build_object('mode', mode), defined_at, owner
		FROM strata.projections) d
	WHERE pg_catalog.pg_has_role(d.owner::pg_catalog.oid, 'USAGE')
	   OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name, 'USAGE');
COMMENT ON VIEW strata.definitions IS
	'Every aggregate, command and projection definition whose owner the current role has the privileges of (all of them for pg_read_all_stats): kind, name, function, categories, types, options, owner.';
COMMENT ON COLUMN strata.definitions.kind IS 'aggregate, command or projection.';
COMMENT ON COLUMN strata.definitions.name IS 'Category (aggregate), command type (command) or name (projection).';
COMMENT ON COLUMN strata.definitions.function IS 'Reducer or handler.';
COMMENT ON COLUMN strata.definitions.categories IS 'Categories it applies to (NULL: all).';
COMMENT ON COLUMN strata.definitions.types IS 'Event types it takes (NULL: all).';
COMMENT ON COLUMN strata.definitions.options IS 'The other settings of the definition.';
COMMENT ON COLUMN strata.definitions.defined_at IS 'When it was last defined.';
COMMENT ON COLUMN strata.definitions.owner IS 'Role that owns the definition; its function runs as this role.';

-- Aggregates
CREATE FUNCTION strata.define_aggregate(category text, reducer regprocedure,
										initial_state jsonb DEFAULT '{}',
										snapshot_every int DEFAULT 100)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_aggregate_0_4';
COMMENT ON FUNCTION strata.define_aggregate(text, regprocedure, jsonb, int) IS
	'Create or replace the aggregate of a category: its reducer (state jsonb, event strata.events) RETURNS jsonb, initial state and snapshot interval.';

CREATE FUNCTION strata.drop_aggregate(category text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_aggregate_0_4';
COMMENT ON FUNCTION strata.drop_aggregate(text) IS
	'Drop the aggregate of a category and its snapshots.';

CREATE FUNCTION strata.load(stream text, at_version bigint DEFAULT NULL,
							OUT state jsonb, OUT version bigint)
	RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_load_0_4';
COMMENT ON FUNCTION strata.load(text, bigint) IS
	'State of a stream''s aggregate and the version it reflects (at_version: as of that version); may save a snapshot.';

-- Commands
CREATE FUNCTION strata.define_command(command_type text, category text,
									  handler regprocedure,
									  record_rejections boolean DEFAULT false)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_command_0_4';
COMMENT ON FUNCTION strata.define_command(text, text, regprocedure, boolean) IS
	'Create or replace the handler (state jsonb, command jsonb) RETURNS jsonb of a command type, for the streams of a category.';

CREATE FUNCTION strata.drop_command(command_type text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_command_0_4';
COMMENT ON FUNCTION strata.drop_command(text) IS 'Drop a command definition.';

CREATE FUNCTION strata.execute(stream text, command jsonb) RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_execute_0_6';
COMMENT ON FUNCTION strata.execute(text, jsonb) IS
	'Execute a command on a stream: load, handle, append the one resulting event; retries on conflicts; returns the new version.';

-- Projections
CREATE FUNCTION strata.define_projection(name text, handler regprocedure,
										 categories text[] DEFAULT NULL,
										 types text[] DEFAULT NULL,
										 mode text DEFAULT 'inline')
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_projection_0_4';
COMMENT ON FUNCTION strata.define_projection(text, regprocedure, text[], text[], text) IS
	'Create or replace a projection: handler (event strata.events) RETURNS void, run in the appending transaction (mode inline) or by the worker as a subscription (mode async).';

CREATE FUNCTION strata.drop_projection(name text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_projection_0_4';
COMMENT ON FUNCTION strata.drop_projection(text) IS 'Drop a projection definition.';

CREATE FUNCTION strata.rebuild_projection(name text, reset regprocedure DEFAULT NULL)
	RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_rebuild_projection_0_4';
COMMENT ON FUNCTION strata.rebuild_projection(text, regprocedure) IS
	'Call the reset function, then replay every matching event through the projection (inline: now, returning the count; async: by the worker, returning 0).';

--
-- Subscriptions: handlers run by the database's strata worker, fed from
-- the WAL in commit order (docs/architecture.md, "Workers").
--

CREATE TABLE strata.subscriptions (
	name				text		NOT NULL PRIMARY KEY,
	handler				regprocedure NOT NULL,
	categories			text[],
	types				text[],
	owner				regrole,
	on_error			text		NOT NULL DEFAULT 'park'
						CHECK (on_error IN ('park', 'stop')),
	state				text		NOT NULL DEFAULT 'active'
						CHECK (state IN ('active', 'paused', 'stopped')),
	phase				text		NOT NULL DEFAULT 'catchup'
						CHECK (phase IN ('catchup', 'live')),
	checkpoint_lsn		pg_lsn,
	checkpoint_index	int			NOT NULL DEFAULT 0 CHECK (checkpoint_index >= 0),
	watermark			bigint		NOT NULL CHECK (watermark >= 1),
	delivered			int8multirange NOT NULL DEFAULT '{}',
	last_position		bigint,
	last_processed_at	timestamptz,
	attempts			int			NOT NULL DEFAULT 0,
	last_error			text,
	last_error_at		timestamptz,
	projection			text,
	stream_id			text,
	generation			bigint		NOT NULL DEFAULT 1,
	created_at			timestamptz	NOT NULL DEFAULT now()
);
COMMENT ON TABLE strata.subscriptions IS
	'Subscriptions run by the strata worker of this database, with their checkpoints; written by strata.subscribe and the worker.';
COMMENT ON COLUMN strata.subscriptions.name IS 'Name of the subscription.';
COMMENT ON COLUMN strata.subscriptions.handler IS 'Handler: (event strata.events) RETURNS void.';
COMMENT ON COLUMN strata.subscriptions.categories IS 'Categories it takes events of (NULL: all).';
COMMENT ON COLUMN strata.subscriptions.types IS 'Event types it takes (NULL: all).';
COMMENT ON COLUMN strata.subscriptions.owner IS
	'Role that owns the subscription; the handler runs as this role (NULL: the role was dropped, the subscription is stopped). Change it with strata.alter_subscription_owner.';
COMMENT ON COLUMN strata.subscriptions.on_error IS
	'park: a failing event is parked after the last attempt and the subscription goes on; stop: the subscription stops.';
COMMENT ON COLUMN strata.subscriptions.state IS 'active, paused (by pause_subscription) or stopped (by an error, with on_error stop).';
COMMENT ON COLUMN strata.subscriptions.phase IS
	'catchup: reading history from strata.events; live: reading the WAL.';
COMMENT ON COLUMN strata.subscriptions.checkpoint_lsn IS
	'End of the commit record of the last transaction fully processed from the WAL.';
COMMENT ON COLUMN strata.subscriptions.checkpoint_index IS
	'Events of the next transaction already processed.';
COMMENT ON COLUMN strata.subscriptions.watermark IS
	'Every event with a position below it has been processed (or did not match).';
COMMENT ON COLUMN strata.subscriptions.delivered IS
	'Positions at or above the watermark already processed.';
COMMENT ON COLUMN strata.subscriptions.last_position IS 'Position of the last event processed.';
COMMENT ON COLUMN strata.subscriptions.last_processed_at IS 'When the last event was processed.';
COMMENT ON COLUMN strata.subscriptions.attempts IS 'Failed attempts at the event the subscription is retrying.';
COMMENT ON COLUMN strata.subscriptions.last_error IS 'Message of the last handler error.';
COMMENT ON COLUMN strata.subscriptions.last_error_at IS 'When the last handler error happened.';
COMMENT ON COLUMN strata.subscriptions.projection IS 'Async projection the subscription runs, or NULL.';
COMMENT ON COLUMN strata.subscriptions.stream_id IS
	'The worker''s decoding stream the checkpoint refers to; under another one (a new slot, a restored database) the subscription catches up from strata.events.';
COMMENT ON COLUMN strata.subscriptions.generation IS
	'Bumped by every change from SQL; the worker discards work done under an older generation.';
COMMENT ON COLUMN strata.subscriptions.created_at IS 'When the subscription was created.';

CREATE TABLE strata.parked_events (
	subscription		text		NOT NULL
						REFERENCES strata.subscriptions ON DELETE CASCADE,
	position			bigint		NOT NULL,
	attempts			int			NOT NULL,
	error				text		NOT NULL,
	sqlstate			text		NOT NULL,
	first_failed_at		timestamptz	NOT NULL,
	parked_at			timestamptz	NOT NULL DEFAULT now(),
	PRIMARY KEY (subscription, position)
);
COMMENT ON TABLE strata.parked_events IS
	'Events whose handler failed on every attempt; replayed by strata.retry_parked.';
COMMENT ON COLUMN strata.parked_events.subscription IS 'The subscription.';
COMMENT ON COLUMN strata.parked_events.position IS 'Position of the event in strata.events.';
COMMENT ON COLUMN strata.parked_events.attempts IS 'Attempts made.';
COMMENT ON COLUMN strata.parked_events.error IS 'Message of the last error.';
COMMENT ON COLUMN strata.parked_events.sqlstate IS 'SQLSTATE of the last error.';
COMMENT ON COLUMN strata.parked_events.first_failed_at IS 'When the first attempt failed.';
COMMENT ON COLUMN strata.parked_events.parked_at IS 'When the event was parked.';

-- Every role may read the rows of the subscriptions it owns (or whose
-- owner it is a member of); members of pg_read_all_stats read them all.
-- The extension's owner, which the worker and the functions write as, is
-- not subject to the policies.
ALTER TABLE strata.subscriptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_visible ON strata.subscriptions FOR SELECT
	USING (pg_catalog.pg_has_role(owner::pg_catalog.oid, 'USAGE')
		   OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
									 'USAGE'));
ALTER TABLE strata.parked_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY parked_events_visible ON strata.parked_events FOR SELECT
	USING (EXISTS (SELECT FROM strata.subscriptions s
				   WHERE s.name OPERATOR(pg_catalog.=) subscription));

-- Not dumped: a restored database gets a new stream.
CREATE TABLE strata._stream (
	id					text		NOT NULL,
	timeline			integer
);
COMMENT ON TABLE strata._stream IS
	'Private: the identity of the worker''s current decoding stream (its slot), written before the slot is created.';
COMMENT ON COLUMN strata._stream.id IS 'Identity of the stream.';
COMMENT ON COLUMN strata._stream.timeline IS
	'The timeline the stream''s slot was last taken on (0.6.0): a slot found on another one that is no synchronized copy is replaced.';

CREATE FUNCTION strata.subscribe(name text, handler regprocedure,
								 categories text[] DEFAULT NULL,
								 types text[] DEFAULT NULL,
								 start_from text DEFAULT 'now',
								 on_error text DEFAULT 'park')
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_subscribe';
COMMENT ON FUNCTION strata.subscribe(text, regprocedure, text[], text[], text, text) IS
	'Create a subscription: the worker calls handler (event strata.events) RETURNS void once for each matching committed event, in commit order, from now or from the beginning.';

CREATE FUNCTION strata.unsubscribe(name text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_unsubscribe';
COMMENT ON FUNCTION strata.unsubscribe(text) IS
	'Drop a subscription, its checkpoint and its parked events.';

CREATE FUNCTION strata.pause_subscription(name text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_pause_subscription';
COMMENT ON FUNCTION strata.pause_subscription(text) IS
	'Stop delivering events to a subscription until strata.resume_subscription; its checkpoint is kept.';

CREATE FUNCTION strata.resume_subscription(name text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_resume_subscription';
COMMENT ON FUNCTION strata.resume_subscription(text) IS
	'Resume a paused or stopped subscription from its checkpoint.';

CREATE FUNCTION strata.retry_parked(name text) RETURNS bigint
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_retry_parked';
COMMENT ON FUNCTION strata.retry_parked(text) IS
	'Replay the parked events of a subscription through its handler, in position order; returns how many succeeded (and were unparked).';

CREATE FUNCTION strata.alter_subscription_owner(name text, new_owner regrole)
	RETURNS void LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_alter_subscription_owner';
COMMENT ON FUNCTION strata.alter_subscription_owner(text, regrole) IS
	'Make another role the owner of a subscription (its handler runs as that role); for members of both roles, as ALTER ... OWNER TO.';

CREATE FUNCTION strata.wait_for(subscription text, "position" bigint,
								timeout interval DEFAULT '5s')
	RETURNS boolean LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_wait_for_0_6';
COMMENT ON FUNCTION strata.wait_for(text, bigint, interval) IS
	'Wait until the subscription has processed the event at that position (true) or the timeout passed (false, with a NOTICE when the subscription or its worker does not run); raises ST005 when the event was parked, ST006 for a position lost at a failover, 55000 when no worker can run on this server; works on standbys.';

-- The worker
CREATE FUNCTION strata._worker_notify() RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_worker_notify';
COMMENT ON FUNCTION strata._worker_notify() IS
	'Private: wake the strata launcher and this database''s worker when the transaction commits.';

-- Worker state for the status view (0.5.0): a setting that keeps every
-- worker from running here, and a worker that keeps failing
CREATE FUNCTION strata._worker_status(OUT problem text, OUT failures int,
									  OUT last_error text,
									  OUT last_error_at timestamptz)
	RETURNS record LANGUAGE c VOLATILE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'strata_worker_status';
COMMENT ON FUNCTION strata._worker_status() IS
	'Private: the setting that keeps strata workers from running in this database (NULL when none), then the consecutive failed rounds of its worker and the last error.';

-- The status of the subscriptions a role may see (as the policies above).
-- Cheap whatever the backlog: events_behind is an estimate from positions
-- (an index probe for the last position, the delivered ranges), never a
-- count of the events.
CREATE VIEW strata.subscription_status WITH (security_barrier) AS
	SELECT s.name,
		   CASE WHEN s.state <> 'active' THEN s.state
				WHEN ws.problem IS NOT NULL THEN 'not running'
				WHEN ws.failures > 0 THEN 'failing'
				WHEN NOT x.following THEN 'catching up'
				WHEN s.attempts > 0 THEN 'retrying'
				ELSE 'live' END AS state,
		   s.checkpoint_lsn AS checkpoint,
		   s.checkpoint_index,
		   s.watermark,
		   GREATEST(0::bigint, last.position OPERATOR(pg_catalog.-)
				s.watermark OPERATOR(pg_catalog.+) 1
				OPERATOR(pg_catalog.-) d.done) AS events_behind,
		   coalesce(extract(epoch FROM pg_catalog.now() - o.recorded_at), 0)::float8
				AS seconds_behind,
		   w.retained_wal_bytes,
		   coalesce(w.retained_wal_bytes > pg_catalog.pg_size_bytes(
				pg_catalog.current_setting('strata.wal_warning_size')), false)
				AS wal_warning,
		   (SELECT pg_catalog.count(*) FROM strata.parked_events p
			WHERE p.subscription OPERATOR(pg_catalog.=) s.name) AS parked,
		   s.last_position,
		   s.last_processed_at,
		   CASE WHEN s.state <> 'active' THEN s.last_error
				WHEN ws.problem IS NOT NULL THEN ws.problem
				WHEN ws.failures > 0 THEN ws.last_error
				ELSE s.last_error END AS last_error,
		   CASE WHEN s.state <> 'active' THEN s.last_error_at
				WHEN ws.problem IS NOT NULL THEN NULL
				WHEN ws.failures > 0 THEN ws.last_error_at
				ELSE s.last_error_at END AS last_error_at,
		   s.projection,
		   s.owner
	FROM strata.subscriptions s
	CROSS JOIN strata._worker_status() ws
	CROSS JOIN (SELECT coalesce(pg_catalog.max(e.position), 0) AS position
				FROM strata.events e) last
	CROSS JOIN LATERAL (
		SELECT coalesce(pg_catalog.sum(pg_catalog.upper(r)
				OPERATOR(pg_catalog.-) pg_catalog.lower(r)), 0)::bigint AS done
		FROM pg_catalog.unnest(s.delivered) r
		WHERE pg_catalog.lower(r) OPERATOR(pg_catalog.>=) s.watermark) d
	LEFT JOIN LATERAL (
		SELECT e.recorded_at FROM strata.events e
		WHERE e.position OPERATOR(pg_catalog.>=) s.watermark
		  AND NOT s.delivered OPERATOR(pg_catalog.@>) e.position
		ORDER BY e.position LIMIT 1) o ON true
	CROSS JOIN LATERAL (
		SELECT s.phase OPERATOR(pg_catalog.=) 'live' AND
			   s.stream_id IS NOT DISTINCT FROM
			   (SELECT id FROM strata._stream LIMIT 1) AS following) x
	CROSS JOIN LATERAL (
		SELECT CASE WHEN x.following AND NOT pg_catalog.pg_is_in_recovery()
					THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
													s.checkpoint_lsn)::bigint
			   END AS retained_wal_bytes) w
	WHERE pg_catalog.pg_has_role(s.owner::pg_catalog.oid, 'USAGE')
	   OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name, 'USAGE');
COMMENT ON VIEW strata.subscription_status IS
	'Each subscription whose owner the current role has the privileges of (all of them for pg_read_all_stats): state, checkpoint, an estimate of the events and seconds behind, WAL it retains, parked events, last error.';
COMMENT ON COLUMN strata.subscription_status.name IS 'Name of the subscription.';
COMMENT ON COLUMN strata.subscription_status.state IS
	'live, catching up, retrying (a handler error is being retried), failing (the database''s strata worker failed its last rounds: see last_error), not running (a server setting keeps every worker from running: last_error names it), paused or stopped.';
COMMENT ON COLUMN strata.subscription_status.checkpoint IS
	'End LSN of the last transaction fully processed from the WAL (NULL while catching up for the first time).';
COMMENT ON COLUMN strata.subscription_status.checkpoint_index IS 'Events of the next transaction already processed.';
COMMENT ON COLUMN strata.subscription_status.watermark IS 'Every position below it is processed.';
COMMENT ON COLUMN strata.subscription_status.events_behind IS
	'Estimate from positions, not a count: positions from the watermark to the last committed one, less those processed. It includes positions that hold no event (appends rolled back) and, for a subscription with categories or types, events it does not take.';
COMMENT ON COLUMN strata.subscription_status.seconds_behind IS
	'Age of the first event not processed past the watermark, of any category or type (0 when none).';
COMMENT ON COLUMN strata.subscription_status.retained_wal_bytes IS
	'WAL written since the checkpoint, which the worker''s slot keeps for it (NULL while catching up or on a standby).';
COMMENT ON COLUMN strata.subscription_status.wal_warning IS
	'retained_wal_bytes is above strata.wal_warning_size.';
COMMENT ON COLUMN strata.subscription_status.parked IS 'Events parked after their last attempt.';
COMMENT ON COLUMN strata.subscription_status.last_position IS 'Position of the last event processed.';
COMMENT ON COLUMN strata.subscription_status.last_processed_at IS 'When it was processed.';
COMMENT ON COLUMN strata.subscription_status.last_error IS
	'Message of the last handler error; while the worker is failing, of its last failure; while it is not running, the setting to change and how.';
COMMENT ON COLUMN strata.subscription_status.last_error_at IS 'When it happened (NULL while not running).';
COMMENT ON COLUMN strata.subscription_status.projection IS 'Async projection the subscription runs, or NULL.';
COMMENT ON COLUMN strata.subscription_status.owner IS 'Role that owns the subscription; its handler runs as this role.';

-- Progress of long work (0.5.0), in shared memory: every session sees it
CREATE FUNCTION strata._progress(OUT kind text, OUT name text,
								 OUT owner regrole, OUT pid int,
								 OUT started_at timestamptz,
								 OUT updated_at timestamptz,
								 OUT start_position bigint,
								 OUT "position" bigint,
								 OUT target_position bigint,
								 OUT events_done bigint,
								 OUT events_total bigint)
	RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL SAFE ROWS 4
	AS 'MODULE_PATHNAME', 'strata_progress';
COMMENT ON FUNCTION strata._progress() IS
	'Private: the long work under way in this database whose owner the current role has the privileges of (all of it for pg_read_all_stats).';

CREATE VIEW strata.progress AS
	SELECT p.kind, p.name, p.owner, p.pid, p.started_at, p.updated_at,
		   p.start_position, p.position, p.target_position,
		   p.events_done, p.events_total,
		   r.rate AS events_per_second,
		   CASE WHEN r.rate > 0 AND p.events_total > p.events_done
				THEN pg_catalog.make_interval(secs =>
					(p.events_total OPERATOR(pg_catalog.-) p.events_done)
					OPERATOR(pg_catalog./) r.rate)
				WHEN p.events_total <= p.events_done THEN '0'::interval
		   END AS time_left
	FROM strata._progress() p
	CROSS JOIN LATERAL (
		SELECT CASE WHEN e.secs > 0
					THEN p.events_done OPERATOR(pg_catalog./) e.secs END AS rate
		FROM (SELECT extract(epoch FROM pg_catalog.clock_timestamp()
							 OPERATOR(pg_catalog.-) p.started_at)::float8
					 AS secs) e) r;
COMMENT ON VIEW strata.progress IS
	'Long work under way, for roles with the privileges of its owner (all of it for pg_read_all_stats): rebuilds of inline projections and subscriptions catching up from strata.events.';
COMMENT ON COLUMN strata.progress.kind IS
	'rebuild (strata.rebuild_projection of an inline projection) or catch-up (a subscription or async projection catching up from strata.events).';
COMMENT ON COLUMN strata.progress.name IS 'The projection or subscription.';
COMMENT ON COLUMN strata.progress.owner IS 'Its owner, whose role runs the handler.';
COMMENT ON COLUMN strata.progress.pid IS
	'Process at work on it (the backend of the rebuild, the worker''s handler process of the catch-up); NULL between two steps of a catch-up.';
COMMENT ON COLUMN strata.progress.started_at IS 'When the work started.';
COMMENT ON COLUMN strata.progress.updated_at IS 'When its end was last estimated (a catch-up does at each step).';
COMMENT ON COLUMN strata.progress.start_position IS 'Position it started from.';
COMMENT ON COLUMN strata.progress."position" IS 'Position of the last event it got through.';
COMMENT ON COLUMN strata.progress.target_position IS 'Position it runs to (a catch-up moves it on at each step).';
COMMENT ON COLUMN strata.progress.events_done IS 'Events it got through (a catch-up counts those of other categories and types too).';
COMMENT ON COLUMN strata.progress.events_total IS
	'Events it has in all: exact for a rebuild, an estimate from positions for a catch-up.';
COMMENT ON COLUMN strata.progress.events_per_second IS 'Mean rate since it started.';
COMMENT ON COLUMN strata.progress.time_left IS 'Estimate at that rate.';

--
-- Privileges (docs/api.md, "Privileges")
--

-- The documented grant sets, in one call.
CREATE FUNCTION strata.grant_privileges(role regrole, kind text)
	RETURNS void LANGUAGE plpgsql VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp
	AS $fn$
DECLARE
	f text;
	funcs text[];
BEGIN
	IF kind NOT IN ('reader', 'writer', 'subscriber', 'definer', 'operator') THEN
		RAISE EXCEPTION 'invalid privilege kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use reader, writer, subscriber, definer or operator.';
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA strata TO %s', role);
	EXECUTE format('GRANT SELECT ON strata.events, strata.streams TO %s', role);
	funcs := ARRAY['strata.load(text,bigint)'];
	IF kind = 'writer' THEN
		funcs := funcs || ARRAY['strata.append(text,jsonb,bigint)',
								'strata.execute(text,jsonb)'];
	ELSIF kind = 'subscriber' THEN
		funcs := funcs || ARRAY[
			'strata.subscribe(text,regprocedure,text[],text[],text,text)',
			'strata.unsubscribe(text)', 'strata.pause_subscription(text)',
			'strata.resume_subscription(text)', 'strata.retry_parked(text)',
			'strata.alter_subscription_owner(text,regrole)'];
	ELSIF kind = 'definer' THEN
		funcs := funcs || ARRAY[
			'strata.define_aggregate(text,regprocedure,jsonb,integer)',
			'strata.drop_aggregate(text)',
			'strata.define_command(text,text,regprocedure,boolean)',
			'strata.drop_command(text)',
			'strata.define_projection(text,regprocedure,text[],text[],text)',
			'strata.drop_projection(text)',
			'strata.rebuild_projection(text,regprocedure)'];
	ELSIF kind = 'operator' THEN
		funcs := funcs || ARRAY['strata.pause_subscription(text)',
								'strata.resume_subscription(text)',
								'strata.retry_parked(text)'];
		EXECUTE format('GRANT pg_read_all_stats, pg_signal_backend TO %s',
					   role);
	END IF;
	FOREACH f IN ARRAY funcs LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION strata.grant_privileges(regrole, text) IS
	'Grant a role one of the documented privilege sets: reader, writer, subscriber, definer or operator (each includes reader).';

-- Nobody but the extension's owner writes the extension's tables; the
-- SQL functions check the caller's right and write for it.  The log is
-- read by the roles a DBA grants SELECT to, the definitions through
-- strata.definitions, the subscriptions row by row (the policies above).
REVOKE ALL ON strata.events, strata.streams, strata._position_seq,
	strata.aggregates, strata.snapshots, strata.commands, strata.projections,
	strata._definition_seq, strata._stream, strata.epochs FROM PUBLIC;
GRANT SELECT ON strata.subscriptions, strata.parked_events,
	strata.definitions, strata.subscription_status, strata.progress,
	strata.epochs TO PUBLIC;

-- Every function that writes is for the roles a DBA grants it to; reads
-- stay PUBLIC (they check SELECT on strata.events themselves).
REVOKE EXECUTE ON FUNCTION
	strata.append(text, jsonb, bigint),
	strata.execute(text, jsonb),
	strata.load(text, bigint),
	strata.define_aggregate(text, regprocedure, jsonb, int),
	strata.drop_aggregate(text),
	strata.define_command(text, text, regprocedure, boolean),
	strata.drop_command(text),
	strata.define_projection(text, regprocedure, text[], text[], text),
	strata.drop_projection(text),
	strata.rebuild_projection(text, regprocedure),
	strata.subscribe(text, regprocedure, text[], text[], text, text),
	strata.unsubscribe(text),
	strata.pause_subscription(text),
	strata.resume_subscription(text),
	strata.retry_parked(text),
	strata.alter_subscription_owner(text, regrole),
	strata.grant_privileges(regrole, text),
	strata._worker_notify(),
	strata._check_preload()
FROM PUBLIC;

--
-- What pg_dump keeps: the log, the streams, the position sequence, the
-- definitions, the subscriptions and their parked events, the epochs
-- (a restore opens a new one at the first append; not _stream:
-- a restored database gets a new decoding stream).  In the order the
-- releases added them, which is the order of pg_extension.extconfig.
--
SELECT pg_catalog.pg_extension_config_dump('strata.events', '');
SELECT pg_catalog.pg_extension_config_dump('strata.streams', '');
SELECT pg_catalog.pg_extension_config_dump('strata._position_seq', '');
SELECT pg_catalog.pg_extension_config_dump('strata.aggregates', '');
SELECT pg_catalog.pg_extension_config_dump('strata.snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('strata.commands', '');
SELECT pg_catalog.pg_extension_config_dump('strata.projections', '');
SELECT pg_catalog.pg_extension_config_dump('strata._definition_seq', '');
SELECT pg_catalog.pg_extension_config_dump('strata.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('strata.parked_events', '');
SELECT pg_catalog.pg_extension_config_dump('strata.epochs', '');

-- Wake the launcher when this transaction commits: this database has a
-- worker to run now.
SELECT strata._worker_notify();
