/* sql/strata--0.4.0--0.5.0.sql: upgrade of pg_strata from 0.4.0 to 0.5.0 */

\echo Use "ALTER EXTENSION strata UPDATE TO '0.5.0'" to load this file. \quit

-- 0.5.0 makes failures and progress visible where the user looks
-- (docs/api.md, "Subscriptions"):
--  * strata.subscription_status says "not running", with the setting to
--    change in last_error, when the server keeps every worker from
--    running, and estimates the backlog from positions instead of
--    counting it (one query no longer reads every event behind);
--  * strata.wait_for raises an error when no worker can run and when the
--    event it waits for was parked (ST005), and says with a NOTICE why a
--    wait timed out;
--  * strata.progress shows rebuilds and catch-ups under way.


CREATE OR REPLACE FUNCTION strata.wait_for(subscription text, "position" bigint,
								timeout interval DEFAULT '5s')
	RETURNS boolean LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_wait_for_0_5';
COMMENT ON FUNCTION strata.wait_for(text, bigint, interval) IS
	'Wait until the subscription has processed the event at that position (true) or the timeout passed (false, with a NOTICE when the subscription or its worker does not run); raises ST005 when the event was parked, 55000 when no worker can run on this server; works on standbys.';

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
CREATE OR REPLACE VIEW strata.subscription_status WITH (security_barrier) AS
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

-- the view no longer uses it (the 0.4.0 library's entry point stays)
DROP FUNCTION strata._worker_error();

GRANT SELECT ON strata.progress TO PUBLIC;
