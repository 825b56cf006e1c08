-- commands: define_command, execute, idempotent command ids, rejections,
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
-- conflicts and retries, and every error.
CREATE FUNCTION todo_reduce(state jsonb, e strata.events) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	CASE e.type
		WHEN 'ListCreated' THEN RETURN jsonb_build_object('title', e.data->'title', 'items', '[]'::jsonb, 'open', 0);
		WHEN 'ItemAdded' THEN RETURN jsonb_set(jsonb_set(state, '{items}', (state->'items') || to_jsonb(e.data->>'text')),
			'{open}', to_jsonb((state->>'open')::int + 1));
		WHEN 'ItemDone' THEN RETURN jsonb_set(state, '{open}', to_jsonb((state->>'open')::int - 1));
		ELSE RETURN state;
	END CASE;
END $$;

CREATE FUNCTION todo_handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	CASE cmd->>'type'
		WHEN 'CreateList' THEN
			IF state ? 'title' THEN
				RAISE EXCEPTION 'list already exists' USING ERRCODE = 'P0001';
			END IF;
			RETURN jsonb_build_object('type', 'ListCreated', 'data', jsonb_build_object('title', cmd->'title'));
		WHEN 'AddItem' THEN
			IF NOT state ? 'title' THEN
				RAISE EXCEPTION 'no such list';
			END IF;
			IF (state->>'open')::int >= 3 THEN
				RAISE EXCEPTION 'too many open items (%)', state->>'open' USING ERRCODE = 'P0002';
			END IF;
			RETURN jsonb_build_object('type', 'ItemAdded', 'data', jsonb_build_object('text', cmd->'text'),
				'metadata', jsonb_build_object('by', cmd->'by'));
		WHEN 'CompleteItem' THEN
			IF (state->>'open')::int = 0 THEN
				RAISE EXCEPTION 'nothing to complete';
			END IF;
			RETURN jsonb_build_object('type', 'ItemDone');
		WHEN 'Bad' THEN
			RETURN cmd->'result';
	END CASE;
END $$;

SELECT strata.define_aggregate('todo', 'todo_reduce(jsonb, strata.events)');
SELECT strata.define_command('CreateList', 'todo', 'todo_handle(jsonb, jsonb)');
SELECT strata.define_command('AddItem', 'todo', 'todo_handle(jsonb, jsonb)', record_rejections => true);
SELECT strata.define_command('CompleteItem', 'todo', 'todo_handle(jsonb, jsonb)');
SELECT strata.define_command('Bad', 'todo', 'todo_handle(jsonb, jsonb)');

-- execute: load, handle, append with the loaded version; returns the version
SELECT strata.execute('todo-1', '{"type": "CreateList", "title": "groceries"}');
SELECT strata.execute('todo-1', '{"type": "AddItem", "text": "milk", "by": "ann"}');
SELECT strata.execute('todo-1', '{"type": "AddItem", "text": "eggs"}');
SELECT strata.execute('todo-1', '{"type": "CompleteItem"}');
SELECT * FROM strata.load('todo-1');
SELECT version, type, data, metadata FROM strata.read_stream('todo-1');

-- a denied command (no record_rejections): the handler's error, nothing appended
SELECT strata.execute('todo-1', '{"type": "CreateList", "title": "again"}');
SELECT try($$SELECT strata.execute('todo-1', '{"type": "CreateList", "title": "again"}')$$);
SELECT strata.stream_version('todo-1');

-- a denied command with record_rejections: a CommandRejected event instead
SELECT strata.execute('todo-1', '{"type": "AddItem", "text": "a"}');
SELECT strata.execute('todo-1', '{"type": "AddItem", "text": "b"}');
SELECT strata.execute('todo-1', '{"type": "AddItem", "text": "c"}');
SELECT version, type, data, metadata FROM strata.read_stream('todo-1', 5);
-- the rejection does not change the state
SELECT * FROM strata.load('todo-1');

-- command ids: executing the same command twice appends once
SELECT strata.execute('todo-2', '{"type": "CreateList", "title": "work", "id": "00000000-0000-7000-8000-0000000000c1"}');
SELECT strata.execute('todo-2', '{"type": "CreateList", "title": "work", "id": "00000000-0000-7000-8000-0000000000c1"}');
SELECT strata.execute('todo-2', '{"type": "AddItem", "text": "report", "id": "00000000-0000-7000-8000-0000000000c2"}');
SELECT strata.execute('todo-2', '{"type": "AddItem", "text": "report", "id": "00000000-0000-7000-8000-0000000000c2"}');
SELECT version, type, id, metadata FROM strata.read_stream('todo-2');
-- the command id names the command: executed again with another payload, it
-- returns the version of the event the first execution appended, and the
-- handler does not run (the command itself is not stored to compare)
SELECT strata.execute('todo-2', '{"type": "AddItem", "text": "other", "id": "00000000-0000-7000-8000-0000000000c2"}');
SELECT version, type, data FROM strata.read_stream('todo-2');
-- an id the handler gives its event itself (the command has none) is an
-- event id as in strata.append: reused with other content, ST002
SELECT strata.execute('todo-8', '{"type": "Bad", "result": {"type": "Noted", "id": "00000000-0000-7000-8000-0000000000c8", "data": {"n": 1}}}');
SELECT strata.execute('todo-8', '{"type": "Bad", "result": {"type": "Noted", "id": "00000000-0000-7000-8000-0000000000c8", "data": {"n": 2}}}');
SELECT version, type, data FROM strata.read_stream('todo-8');
-- a command id used on another stream
SELECT strata.execute('todo-3', '{"type": "CreateList", "title": "x", "id": "00000000-0000-7000-8000-0000000000c1"}');
-- a rejected command with an id is recorded once too
SELECT strata.execute('todo-9', '{"type": "AddItem", "text": "x", "id": "00000000-0000-7000-8000-0000000000c3"}');
SELECT strata.execute('todo-9', '{"type": "AddItem", "text": "x", "id": "00000000-0000-7000-8000-0000000000c3"}');
SELECT version, type, id FROM strata.read_stream('todo-9');

-- handler results that are not one event object
SELECT strata.execute('todo-1', '{"type": "Bad", "result": [{"type": "A"}, {"type": "B"}]}');
SELECT strata.execute('todo-1', '{"type": "Bad", "result": "ItemDone"}');
SELECT strata.execute('todo-1', '{"type": "Bad", "result": {"data": 1}}');
SELECT strata.execute('todo-1', '{"type": "Bad", "result": {"type": ""}}');
SELECT strata.execute('todo-1', '{"type": "Bad", "result": {"type": "X", "metadata": 5}}');
SELECT strata.execute('todo-1', '{"type": "Bad"}');
SELECT strata.stream_version('todo-1');

-- a timeout or cancel while the handler runs is not a rejection, even for
-- a command that records rejections: the error propagates, nothing is
-- appended
CREATE FUNCTION slow_handle(state jsonb, cmd jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(5);
	RETURN jsonb_build_object('type', 'Slow');
END $$;
SELECT strata.define_command('Slow', 'todo', 'slow_handle(jsonb, jsonb)', record_rejections => true);
SELECT strata.stream_version('todo-1') AS before \gset
SET statement_timeout = '200ms';
SELECT strata.execute('todo-1', '{"type": "Slow"}');
RESET statement_timeout;
SELECT strata.stream_version('todo-1') - :before AS appended;
SELECT strata.drop_command('Slow');

-- retries: strata.command_retries bounds the reloads after conflicts
SHOW strata.command_retries;
SET strata.command_retries = 0;
SELECT strata.execute('todo-1', '{"type": "CompleteItem"}');
RESET strata.command_retries;
SET strata.command_retries = -1;
SET strata.command_retries = 1001;

-- bad commands
SELECT strata.execute('todo-1', '{"title": "no type"}');
SELECT strata.execute('todo-1', '{"type": 5}');
SELECT strata.execute('todo-1', '[{"type": "AddItem"}]');
SELECT strata.execute('todo-1', '{"type": "AddItem", "id": "nope"}');
SELECT strata.execute('todo-1', '{"type": "Unknown"}');
SELECT strata.execute('other-1', '{"type": "AddItem"}');
SELECT strata.execute('-x', '{"type": "AddItem"}');
SELECT strata.execute(NULL, '{"type": "AddItem"}');
SELECT strata.execute('todo-1', NULL);
-- a command whose category has no aggregate
SELECT strata.define_command('Ping', 'ping', 'todo_handle(jsonb, jsonb)');
SELECT strata.execute('ping-1', '{"type": "Ping"}');
-- execute needs a read-write transaction
BEGIN READ ONLY;
SELECT strata.execute('todo-1', '{"type": "CompleteItem"}');
ROLLBACK;

-- bad definitions
CREATE FUNCTION wrong_handle(state jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT state $$;
SELECT strata.define_command('X', 'todo', 'wrong_handle(jsonb)');
SELECT strata.define_command('X', 'todo-1', 'todo_handle(jsonb, jsonb)');
SELECT strata.define_command('', 'todo', 'todo_handle(jsonb, jsonb)');
SELECT strata.define_command('X', 'todo', 'todo_handle(jsonb, jsonb)', NULL);
SELECT strata.drop_command('Nothing');

-- a handler dropped after the definition
CREATE FUNCTION gone_handle(state jsonb, cmd jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"type": "X"}'::jsonb $$;
SELECT strata.define_command('Gone', 'todo', 'gone_handle(jsonb, jsonb)');
DROP FUNCTION gone_handle(jsonb, jsonb);
SELECT strata.execute('todo-1', '{"type": "Gone"}');
SELECT strata.drop_command('Gone');

-- redefinition replaces; drop removes
SELECT strata.define_command('Ping', 'todo', 'todo_handle(jsonb, jsonb)', true);
SELECT kind, name, function, categories, options FROM strata.definitions WHERE kind = 'command' ORDER BY name;
SELECT strata.drop_command('Ping');
SELECT count(*) FROM strata.definitions WHERE kind = 'command';
