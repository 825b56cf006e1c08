/* sql/strata--0.5.0--0.6.0.sql: upgrade of pg_strata from 0.5.0 to 0.6.0 */

\echo Use "ALTER EXTENSION strata UPDATE TO '0.6.0'" to load this file. \quit

-- 0.6.0: positions never go back across a failover (docs/ha.md):
--  * strata.epochs records the stretches of positions issued on one
--    system and timeline; the first append on another (or the worker
--    when it starts there) opens a new epoch far above what survived;
--  * strata.read_all, strata.read_category and strata.wait_for raise
--    ST006 for a position in a range lost at a failover.
-- The first epoch opens at the first append after this update, and
-- lost nothing (it has no survived_position).

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

REVOKE ALL ON strata.epochs FROM PUBLIC;
GRANT SELECT ON strata.epochs TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('strata.epochs', '');

-- The worker's slot belongs to the node: the timeline it was last taken
-- on, beside the stream's identity (which begins with the system
-- identifier); unknown for the current stream until the worker takes it
ALTER TABLE strata._stream ADD COLUMN timeline integer;
COMMENT ON COLUMN strata._stream.timeline IS
	'The timeline the stream''s slot was last taken on (0.6.0): a slot found on another one that is no synchronized copy is replaced.';

-- The functions that append (a new epoch first) and the readers (lost
-- positions): the C entry points of 0.6.0; CREATE OR REPLACE keeps their
-- privileges
CREATE OR REPLACE FUNCTION strata.append(stream text, events jsonb,
							  expected_version bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_append_0_6';
COMMENT ON FUNCTION strata.append(text, jsonb, bigint) IS
	'Append events (an array of {type, data, metadata, id} objects, or one) to a stream atomically; returns the stream''s new version. expected_version: NULL or -2 any, -1 no stream, -4 stream exists, n exactly n.';

CREATE OR REPLACE FUNCTION strata.execute(stream text, command jsonb) RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_execute_0_6';
COMMENT ON FUNCTION strata.execute(text, jsonb) IS
	'Execute a command on a stream: load, handle, append the one resulting event; retries on conflicts; returns the new version.';

CREATE OR REPLACE FUNCTION strata.read_all(after_position bigint DEFAULT 0,
								max_count int DEFAULT 1000)
	RETURNS SETOF strata.events
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE ROWS 1000
	AS 'MODULE_PATHNAME', 'strata_read_all_0_6';
COMMENT ON FUNCTION strata.read_all(bigint, int) IS
	'Committed events after a position, in position order, at most max_count; never skips an event that commits later with a lower position; raises ST006 for a position lost at a failover.';

CREATE OR REPLACE FUNCTION strata.read_category(category text,
									 after_position bigint DEFAULT 0,
									 max_count int DEFAULT 1000)
	RETURNS SETOF strata.events
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE ROWS 1000
	AS 'MODULE_PATHNAME', 'strata_read_category_0_6';
COMMENT ON FUNCTION strata.read_category(text, bigint, int) IS
	'Like strata.read_all, for the streams of one category.';

CREATE OR REPLACE FUNCTION strata.wait_for(subscription text, "position" bigint,
								timeout interval DEFAULT '5s')
	RETURNS boolean LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_wait_for_0_6';
COMMENT ON FUNCTION strata.wait_for(text, bigint, interval) IS
	'Wait until the subscription has processed the event at that position (true) or the timeout passed (false, with a NOTICE when the subscription or its worker does not run); raises ST005 when the event was parked, ST006 for a position lost at a failover, 55000 when no worker can run on this server; works on standbys.';
