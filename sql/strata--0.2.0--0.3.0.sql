/* sql/strata--0.2.0--0.3.0.sql: upgrade of pg_strata from 0.2.0 to 0.3.0 */

\echo Use "ALTER EXTENSION strata UPDATE TO '0.3.0'" to load this file. \quit

-- Subscriptions: handlers run by the database's strata worker, fed from
-- the WAL in commit order (docs/architecture.md, "Workers").
CREATE TABLE strata.subscriptions (
	name				text		NOT NULL PRIMARY KEY,
	handler				regprocedure NOT NULL,
	categories			text[],
	types				text[],
	owner				oid			NOT NULL,
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
COMMENT ON COLUMN strata.subscriptions.owner IS 'Role that subscribed; the handler runs as this role.';
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

-- Not dumped: a restored database gets a new stream.
CREATE TABLE strata._stream (
	id					text		NOT NULL
);
COMMENT ON TABLE strata._stream IS
	'Private: the identity of the worker''s current decoding stream (its slot), written before the slot is created.';
COMMENT ON COLUMN strata._stream.id IS 'Identity of the stream.';

SELECT pg_catalog.pg_extension_config_dump('strata.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('strata.parked_events', '');

ALTER TABLE strata.projections
	ADD COLUMN mode text NOT NULL DEFAULT 'inline' CHECK (mode IN ('inline', 'async'));
COMMENT ON COLUMN strata.projections.mode IS
	'inline: runs in the appending transaction; async: runs as a subscription of the same name.';

CREATE OR REPLACE VIEW strata.definitions AS
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
		   jsonb_build_object('mode', mode), defined_at
	FROM strata.projections;

DROP FUNCTION strata.define_projection(text, regprocedure, text[], text[]);
CREATE FUNCTION strata.define_projection(name text, handler regprocedure,
										 categories text[] DEFAULT NULL,
										 types text[] DEFAULT NULL,
										 mode text DEFAULT 'inline')
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_projection_0_3';
COMMENT ON FUNCTION strata.define_projection(text, regprocedure, text[], text[], text) IS
	'Create or replace a projection: handler (event strata.events) RETURNS void, run in the appending transaction (mode inline) or by the worker as a subscription (mode async).';

COMMENT ON FUNCTION strata.rebuild_projection(text, regprocedure) IS
	'Call the reset function, then replay every matching event through the projection (inline: now, returning the count; async: by the worker, returning 0).';

-- Each version binds the C entry points of its own API (src/version.h):
-- strata.append runs only the projections of mode inline from 0.3.0 on.
CREATE OR REPLACE FUNCTION strata.append(stream text, events jsonb,
										 expected_version bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_append_0_3';

-- Subscriptions
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

CREATE FUNCTION strata.wait_for(subscription text, "position" bigint,
								timeout interval DEFAULT '5s')
	RETURNS boolean LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_wait_for';
COMMENT ON FUNCTION strata.wait_for(text, bigint, interval) IS
	'Wait until the subscription has processed the event at that position (true) or the timeout passed (false); works on standbys.';

CREATE FUNCTION strata._worker_notify() RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_worker_notify';
COMMENT ON FUNCTION strata._worker_notify() IS
	'Private: wake the strata launcher and this database''s worker when the transaction commits.';

CREATE VIEW strata.subscription_status AS
	SELECT s.name,
		   CASE WHEN s.state <> 'active' THEN s.state
				WHEN NOT x.following THEN 'catching up'
				WHEN s.attempts > 0 THEN 'retrying'
				ELSE 'live' END AS state,
		   s.checkpoint_lsn AS checkpoint,
		   s.checkpoint_index,
		   s.watermark,
		   b.events_behind,
		   coalesce(extract(epoch FROM now() - b.oldest_behind), 0)::float8 AS seconds_behind,
		   w.retained_wal_bytes,
		   coalesce(w.retained_wal_bytes > pg_catalog.pg_size_bytes(
				pg_catalog.current_setting('strata.wal_warning_size')), false)
				AS wal_warning,
		   (SELECT count(*) FROM strata.parked_events p
			WHERE p.subscription = s.name) AS parked,
		   s.last_position,
		   s.last_processed_at,
		   s.last_error,
		   s.last_error_at,
		   s.projection
	FROM strata.subscriptions s
	CROSS JOIN LATERAL (
		SELECT count(*) AS events_behind, min(e.recorded_at) AS oldest_behind
		FROM strata.events e
		WHERE e.position >= s.watermark
		  AND NOT s.delivered @> e.position
		  AND (s.categories IS NULL OR e.category = ANY (s.categories))
		  AND (s.types IS NULL OR e.type = ANY (s.types))) b
	CROSS JOIN LATERAL (
		SELECT s.phase = 'live' AND s.stream_id IS NOT DISTINCT FROM
			   (SELECT id FROM strata._stream LIMIT 1) AS following) x
	CROSS JOIN LATERAL (
		SELECT CASE WHEN x.following AND NOT pg_catalog.pg_is_in_recovery()
					THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
													s.checkpoint_lsn)::bigint
			   END AS retained_wal_bytes) w;
COMMENT ON VIEW strata.subscription_status IS
	'Each subscription: state, checkpoint, events and seconds behind, WAL it retains, parked events, last error.';
COMMENT ON COLUMN strata.subscription_status.name IS 'Name of the subscription.';
COMMENT ON COLUMN strata.subscription_status.state IS
	'live, catching up, retrying (a handler error is being retried), paused or stopped.';
COMMENT ON COLUMN strata.subscription_status.checkpoint IS
	'End LSN of the last transaction fully processed from the WAL (NULL while catching up for the first time).';
COMMENT ON COLUMN strata.subscription_status.checkpoint_index IS 'Events of the next transaction already processed.';
COMMENT ON COLUMN strata.subscription_status.watermark IS 'Every position below it is processed.';
COMMENT ON COLUMN strata.subscription_status.events_behind IS 'Committed matching events not yet processed.';
COMMENT ON COLUMN strata.subscription_status.seconds_behind IS 'Age of the oldest of those events (0 when none).';
COMMENT ON COLUMN strata.subscription_status.retained_wal_bytes IS
	'WAL written since the checkpoint, which the worker''s slot keeps for it (NULL while catching up or on a standby).';
COMMENT ON COLUMN strata.subscription_status.wal_warning IS
	'retained_wal_bytes is above strata.wal_warning_size.';
COMMENT ON COLUMN strata.subscription_status.parked IS 'Events parked after their last attempt.';
COMMENT ON COLUMN strata.subscription_status.last_position IS 'Position of the last event processed.';
COMMENT ON COLUMN strata.subscription_status.last_processed_at IS 'When it was processed.';
COMMENT ON COLUMN strata.subscription_status.last_error IS 'Message of the last handler error.';
COMMENT ON COLUMN strata.subscription_status.last_error_at IS 'When it happened.';
COMMENT ON COLUMN strata.subscription_status.projection IS 'Async projection the subscription runs, or NULL.';

REVOKE ALL ON strata.subscriptions, strata.parked_events,
	strata.subscription_status, strata._stream FROM PUBLIC;
-- wait_for and the status are for every reader of a projection.
GRANT SELECT ON strata.subscriptions, strata.subscription_status TO PUBLIC;
REVOKE EXECUTE ON FUNCTION strata._worker_notify() FROM PUBLIC;

SELECT strata._worker_notify();
