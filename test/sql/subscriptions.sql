-- subscriptions: the SQL surface of subscriptions and async projections,
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- and its errors.  The worker runs them; wait_for makes the test
-- deterministic.
CREATE TABLE sub_seen (n serial, position bigint, type text);
CREATE FUNCTION sub_record(e strata.events) RETURNS void LANGUAGE sql
SET search_path = public, pg_temp
AS $$ INSERT INTO sub_seen (position, type) VALUES (e.position, e.type) $$;
CREATE FUNCTION sub_wrong(e jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION sub_returns(e strata.events) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;

SELECT strata.append('sub-1', '{"type": "Before"}');

-- start from now: only later events
SELECT strata.subscribe('from_now', 'sub_record(strata.events)');
SELECT strata.append('sub-1', '[{"type": "A"}, {"type": "B"}]');
SELECT strata.wait_for('from_now', (SELECT max(position) FROM strata.events));
SELECT type FROM sub_seen ORDER BY n;
-- the hand-over to the WAL commits just after the last event of history
DO $$
BEGIN
	FOR i IN 1..500 LOOP
		EXIT WHEN (SELECT state FROM strata.subscription_status WHERE name = 'from_now') = 'live';
		PERFORM pg_sleep(0.01);
	END LOOP;
END $$;
SELECT name, state, checkpoint IS NOT NULL AS has_checkpoint, events_behind,
	   seconds_behind, parked, last_error, wal_warning
FROM strata.subscription_status;

-- filters, and start from the beginning
CREATE TABLE sub_seen_b (n serial, position bigint, type text);
CREATE FUNCTION sub_record_b(e strata.events) RETURNS void LANGUAGE sql
SET search_path = public, pg_temp
AS $$ INSERT INTO sub_seen_b (position, type) VALUES (e.position, e.type) $$;
SELECT strata.subscribe('only_b', 'sub_record_b(strata.events)',
						categories => ARRAY['sub'], types => ARRAY['B', 'Before'],
						start_from => 'beginning');
SELECT strata.wait_for('only_b', (SELECT max(position) FROM strata.events));
SELECT type FROM sub_seen_b ORDER BY n;

-- pause: nothing more is processed; resume: it catches up
SELECT strata.pause_subscription('only_b');
SELECT state FROM strata.subscription_status WHERE name = 'only_b';
SELECT strata.append('sub-2', '{"type": "B"}');
SELECT strata.wait_for('only_b', (SELECT max(position) FROM strata.events), '200ms');
SELECT strata.resume_subscription('only_b');
SELECT strata.wait_for('only_b', (SELECT max(position) FROM strata.events));
SELECT type, count(*) FROM sub_seen_b GROUP BY type ORDER BY type;

-- bad input
SELECT try($$SELECT strata.subscribe(NULL, 'sub_record(strata.events)')$$);
SELECT try($$SELECT strata.subscribe('', 'sub_record(strata.events)')$$);
SELECT try($$SELECT strata.subscribe('x', NULL)$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_wrong(jsonb)')$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_returns(strata.events)')$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_record(strata.events)', start_from => 'yesterday')$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_record(strata.events)', start_from => NULL)$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_record(strata.events)', on_error => 'ignore')$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_record(strata.events)', categories => '{}')$$);
SELECT try($$SELECT strata.subscribe('x', 'sub_record(strata.events)', types => ARRAY[NULL])$$);
SELECT try($$SELECT strata.subscribe('from_now', 'sub_record(strata.events)')$$);
SELECT try($$SELECT strata.unsubscribe('nope')$$);
SELECT try($$SELECT strata.pause_subscription('nope')$$);
SELECT try($$SELECT strata.resume_subscription('nope')$$);
SELECT try($$SELECT strata.retry_parked('nope')$$);
SELECT try($$SELECT strata.wait_for('nope', 1)$$);
SELECT try($$SELECT strata.wait_for('from_now', 1, '-1s')$$);
SELECT try($$SELECT strata.wait_for('from_now', 1, '1 month')$$);
SELECT strata.wait_for('from_now', NULL) IS NULL AS strict;
BEGIN READ ONLY;
SELECT try($$SELECT strata.subscribe('x', 'sub_record(strata.events)')$$);
SELECT try($$SELECT strata.pause_subscription('from_now')$$);
ROLLBACK;
SELECT strata.retry_parked('from_now') AS nothing_parked;

-- a position that never comes: false after the timeout
SELECT strata.wait_for('from_now', (SELECT max(position) FROM strata.events) + 1000, '100ms');

-- only the role that subscribed (or a member of it) may change it
CREATE ROLE sub_other;
GRANT USAGE ON SCHEMA strata TO sub_other;
SET ROLE sub_other;
-- without the subscriber privileges
SELECT try($$SELECT strata.pause_subscription('from_now')$$);
RESET ROLE;
-- with them: still not another role's subscription
SELECT strata.grant_privileges('sub_other', 'subscriber');
SET ROLE sub_other;
SELECT try($$SELECT strata.pause_subscription('from_now')$$);
SELECT try($$SELECT strata.unsubscribe('from_now')$$);
SELECT try($$SELECT strata.wait_for('from_now', 1, '0s')$$);
-- nor see it
SELECT count(*) AS visible FROM strata.subscriptions;
SELECT count(*) AS visible FROM strata.subscription_status;
RESET ROLE;

-- async projections run as the subscription of their name
CREATE TABLE sub_counts (stream text PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION sub_count(e strata.events) RETURNS void LANGUAGE sql
SET search_path = public, pg_temp AS $$
	INSERT INTO sub_counts VALUES (e.stream, 1)
	ON CONFLICT (stream) DO UPDATE SET n = sub_counts.n + 1 $$;
CREATE FUNCTION sub_counts_reset() RETURNS void LANGUAGE sql
SET search_path = public, pg_temp AS $$ TRUNCATE sub_counts $$;
SELECT strata.define_projection('counts', 'sub_count(strata.events)', ARRAY['sub'], mode => 'async');
SELECT name, options FROM strata.definitions WHERE kind = 'projection';
SELECT strata.wait_for('counts', (SELECT max(position) FROM strata.events));
SELECT * FROM sub_counts ORDER BY stream;
SELECT strata.rebuild_projection('counts', 'sub_counts_reset()');
SELECT strata.wait_for('counts', (SELECT max(position) FROM strata.events));
SELECT * FROM sub_counts ORDER BY stream;
SELECT try($$SELECT strata.unsubscribe('counts')$$);
SELECT try($$SELECT strata.define_projection('from_now', 'sub_count(strata.events)', mode => 'async')$$);
SELECT try($$SELECT strata.define_projection('p', 'sub_count(strata.events)', mode => 'later')$$);
SELECT try($$SELECT strata.define_projection('p', 'sub_count(strata.events)', mode => NULL)$$);
-- back to inline: its subscription goes
SELECT strata.define_projection('counts', 'sub_count(strata.events)');
SELECT count(*) AS counts_subscriptions FROM strata.subscriptions WHERE name = 'counts';
SELECT strata.drop_projection('counts');

SELECT strata.unsubscribe('from_now');
SELECT strata.unsubscribe('only_b');
SELECT count(*) FROM strata.subscriptions;
DROP OWNED BY sub_other;
DROP ROLE sub_other;
