-- projections: inline projections in the appending transaction, filters,
-- rollback, errors, rebuild, drop.
CREATE TABLE order_totals (stream text PRIMARY KEY, items int NOT NULL, total numeric NOT NULL);
CREATE TABLE event_log (position bigint, stream text, type text);

CREATE FUNCTION order_totals_project(e strata.events) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
	IF e.type = 'ItemAdded' AND (e.data->>'price')::numeric < 0 THEN
		RAISE EXCEPTION 'negative price in %', e.stream USING ERRCODE = '22003';
	END IF;
	INSERT INTO order_totals VALUES (e.stream, 0, 0) ON CONFLICT DO NOTHING;
	IF e.type = 'ItemAdded' THEN
		UPDATE order_totals SET items = items + 1, total = total + (e.data->>'price')::numeric
		WHERE stream = e.stream;
	END IF;
END $$;
-- an SQL handler: SQL functions returning void are fine too
CREATE FUNCTION event_log_project(e strata.events) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp
AS $$ INSERT INTO event_log VALUES (e.position, e.stream, e.type) $$;
CREATE FUNCTION order_totals_reset() RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$ TRUNCATE order_totals $$;

SELECT strata.define_projection('order_totals', 'order_totals_project(strata.events)', ARRAY['ord']);
SELECT strata.define_projection('placed_log', 'event_log_project(strata.events)', ARRAY['ord', 'cart'], ARRAY['Placed']);

-- inline: the read model moves with the append, in the same transaction
SELECT strata.append('ord-1', '[{"type": "Placed"}, {"type": "ItemAdded", "data": {"price": 10}}, {"type": "ItemAdded", "data": {"price": 5}}]');
SELECT * FROM order_totals;
SELECT stream, type FROM event_log;
-- filters: category and type
SELECT strata.append('cart-1', '[{"type": "Placed"}, {"type": "ItemAdded", "data": {"price": 1}}]');
SELECT strata.append('user-1', '{"type": "Placed"}');
SELECT * FROM order_totals ORDER BY stream;
SELECT stream, type FROM event_log ORDER BY position;

-- a rolled-back append leaves no trace in the read model
BEGIN;
SELECT strata.append('ord-2', '[{"type": "Placed"}, {"type": "ItemAdded", "data": {"price": 7}}]');
SELECT * FROM order_totals ORDER BY stream;
ROLLBACK;
SELECT * FROM order_totals ORDER BY stream;
SELECT strata.stream_version('ord-2');

-- a projection error aborts the append: no event, no read-model change
SELECT strata.append('ord-1', '{"type": "ItemAdded", "data": {"price": -1}}');
SELECT strata.stream_version('ord-1');
SELECT * FROM order_totals ORDER BY stream;

-- commands run the projections too (their event is an append)
CREATE FUNCTION ord_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE sql AS $$ SELECT state $$;
CREATE FUNCTION ord_handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('type', 'ItemAdded', 'data', jsonb_build_object('price', cmd->'price')) $$;
SELECT strata.define_aggregate('ord', 'ord_reduce(jsonb, strata.events)');
SELECT strata.define_command('AddToOrder', 'ord', 'ord_handle(jsonb, jsonb)');
SELECT strata.execute('ord-1', '{"type": "AddToOrder", "price": 2.5}');
SELECT * FROM order_totals WHERE stream = 'ord-1';

-- rebuild: reset, then replay every matching event; same read model
CREATE TABLE before_rebuild AS SELECT * FROM order_totals;
SELECT strata.rebuild_projection('order_totals', 'order_totals_reset()');
SELECT (SELECT count(*) FROM (SELECT * FROM order_totals EXCEPT SELECT * FROM before_rebuild) d) AS differences,
	   (SELECT count(*) FROM order_totals) AS rows;
-- rebuild of a filtered projection replays only its events
TRUNCATE event_log;
SELECT strata.rebuild_projection('placed_log');
SELECT stream, type FROM event_log ORDER BY position;
-- a rebuild that fails rolls back entirely, reset included
SELECT strata.append('ord-3', '{"type": "Placed"}');
CREATE FUNCTION fail_reset() RETURNS void LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN TRUNCATE order_totals; RAISE EXCEPTION 'reset failed'; END $$;
SELECT strata.rebuild_projection('order_totals', 'fail_reset()');
SELECT count(*) AS rows_kept FROM order_totals;

-- the definitions view
SELECT kind, name, function, categories, types, options FROM strata.definitions
WHERE kind = 'projection' ORDER BY name;

-- errors
SELECT strata.define_projection('', 'event_log_project(strata.events)');
SELECT strata.define_projection('p', NULL);
CREATE FUNCTION wrong_project(e strata.events) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
SELECT strata.define_projection('p', 'wrong_project(strata.events)');
SELECT strata.define_projection('p', 'order_totals_reset()');
SELECT strata.define_projection('p', 'event_log_project(strata.events)', ARRAY[]::text[]);
SELECT strata.define_projection('p', 'event_log_project(strata.events)', ARRAY['ord-1']);
SELECT strata.define_projection('p', 'event_log_project(strata.events)', ARRAY['ord', NULL]);
SELECT strata.define_projection('p', 'event_log_project(strata.events)', NULL, ARRAY[]::text[]);
SELECT strata.rebuild_projection('nothing');
SELECT strata.rebuild_projection('order_totals', 'order_totals_project(strata.events)');
SELECT strata.drop_projection('nothing');

-- a handler dropped after the definition: appends to its categories fail
-- clearly until the projection is dropped
CREATE FUNCTION gone_project(e strata.events) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT strata.define_projection('gone', 'gone_project(strata.events)', ARRAY['gone']);
DROP FUNCTION gone_project(strata.events);
SELECT strata.append('gone-1', '{"type": "X"}');
SELECT strata.append('other-1', '{"type": "X"}');
SELECT strata.drop_projection('gone');
SELECT strata.append('gone-1', '{"type": "X"}');

-- the handler runs as the projection's owner, not as the appending role:
-- a writer needs no right on the handler nor on the read model's table
CREATE ROLE strata_proj_test;
SELECT strata.grant_privileges('strata_proj_test', 'writer');
REVOKE EXECUTE ON FUNCTION event_log_project(strata.events) FROM PUBLIC;
SET ROLE strata_proj_test;
INSERT INTO event_log VALUES (0, 'cart-7', 'Forged');
SELECT strata.append('cart-7', '{"type": "Placed"}');
SELECT strata.append('misc-7', '{"type": "Placed"}');
RESET ROLE;
SELECT stream, type FROM event_log WHERE stream IN ('cart-7', 'misc-7');
-- the owner must be allowed to run the handler
CREATE ROLE strata_proj_owner;
SELECT strata.grant_privileges('strata_proj_owner', 'definer');
GRANT EXECUTE ON FUNCTION event_log_project(strata.events) TO strata_proj_owner;
GRANT INSERT ON event_log TO strata_proj_owner;
SET ROLE strata_proj_owner;
SELECT strata.define_projection('owned_log', 'event_log_project(strata.events)', ARRAY['owned']);
RESET ROLE;
SELECT name, owner FROM strata.definitions WHERE name = 'owned_log';
SET ROLE strata_proj_test;
SELECT strata.append('owned-1', '{"type": "Placed"}');
RESET ROLE;
SELECT stream, type FROM event_log WHERE stream = 'owned-1';
REVOKE EXECUTE ON FUNCTION event_log_project(strata.events) FROM strata_proj_owner;
SET ROLE strata_proj_test;
SELECT strata.append('owned-2', '{"type": "Placed"}');
RESET ROLE;
SELECT strata.drop_projection('owned_log');
DROP OWNED BY strata_proj_test, strata_proj_owner;
DROP ROLE strata_proj_test, strata_proj_owner;

-- a handler (in SQL) that appends to a stream it projects itself: the
-- nested call gets its own function state (this once crashed the server)
CREATE TABLE chain_log (stream text, version bigint, step text);
CREATE FUNCTION chain_project(e strata.events) RETURNS void LANGUAGE sql
SET search_path = public, pg_temp AS $$
	INSERT INTO chain_log VALUES (e.stream, e.version, 'before');
	SELECT strata.append('chain-' || (e.version + 10), '{"type": "Echo"}')
	WHERE e.stream = 'chain-1' AND e.version < 2;
	INSERT INTO chain_log VALUES (e.stream, e.version, 'after');
$$;
SELECT strata.define_projection('chain', 'chain_project(strata.events)', ARRAY['chain']);
SELECT strata.append('chain-1', '[{"type": "A"}, {"type": "B"}]');
SELECT stream, version, step FROM chain_log ORDER BY stream, version, step DESC;
SELECT strata.drop_projection('chain');

-- NULL name
SELECT strata.rebuild_projection(NULL);
SELECT strata.rebuild_projection(NULL, 'order_totals_reset()');

-- drop: appends no longer run it
SELECT strata.drop_projection('placed_log');
SELECT count(*) AS before FROM event_log \gset
SELECT strata.append('cart-2', '{"type": "Placed"}');
SELECT count(*) - :before AS new_rows FROM event_log;
