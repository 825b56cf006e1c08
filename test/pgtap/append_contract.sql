-- append_contract.sql (pgTAP): the append contract as assertions: return
-- values, SQLSTATEs of every refusal, and that a refusal writes nothing.
BEGIN;
SELECT plan(31);

SELECT is(strata.append('tap-1', '{"type": "A"}', -1), 0::bigint, 'new stream starts at version 0');
SELECT is(strata.append('tap-1', '[{"type": "B"}, {"type": "C"}]', 0), 2::bigint, 'a batch returns the last version');
SELECT is(strata.stream_version('tap-1'), 2::bigint, 'stream_version follows');
SELECT is(strata.stream_version('tap-404'), -1::bigint, 'a stream without events has version -1');

SELECT throws_ok($$SELECT strata.append('tap-1', '{"type": "X"}', 0)$$, 'ST001', NULL, 'stale version: ST001');
SELECT throws_ok($$SELECT strata.append('tap-1', '{"type": "X"}', -1)$$, 'ST001', NULL, 'no-stream on an existing stream: ST001');
SELECT throws_ok($$SELECT strata.append('tap-2', '{"type": "X"}', -4)$$, 'ST001', NULL, 'stream-exists on a new stream: ST001');
SELECT lives_ok($$SELECT strata.append('tap-1', '{"type": "X"}', -4)$$, 'stream-exists on an existing stream');
SELECT lives_ok($$SELECT strata.append('tap-1', '{"type": "X"}', -2)$$, '-2 is any');

SELECT is(strata.append('tap-3', '{"type": "A", "id": "11111111-1111-7111-8111-111111111111"}'), 0::bigint, 'append with an id');
SELECT is(strata.append('tap-3', '{"type": "A", "id": "11111111-1111-7111-8111-111111111111"}'), 0::bigint, 'the retry returns the same version');
SELECT is((SELECT count(*)::int FROM strata.events WHERE stream = 'tap-3'), 1, 'the retry wrote nothing');
SELECT throws_ok($$SELECT strata.append('tap-4', '{"type": "A", "id": "11111111-1111-7111-8111-111111111111"}')$$, 'ST002', NULL, 'an id of another stream: ST002');
SELECT is(strata.append('tap-3', '[{"type": "B", "id": "22222222-2222-7222-8222-222222222222", "data": {"a": 1, "b": [1, 2]}, "metadata": {"m": 1}}, {"type": "C", "id": "33333333-3333-7333-8333-333333333333"}]'), 2::bigint, 'a batch with ids');
SELECT is(strata.append('tap-3', '[{"metadata": {"m": 1.0}, "data": {"b": [1, 2], "a": 1}, "type": "B", "id": "22222222-2222-7222-8222-222222222222"}, {"type": "C", "id": "33333333-3333-7333-8333-333333333333", "data": {}, "metadata": null}]'), 2::bigint, 'a retry is compared as jsonb: key order and 1.0 for 1 do not matter');
SELECT is((SELECT count(*)::int FROM strata.events WHERE stream = 'tap-3'), 3, 'the exact retry wrote nothing');
SELECT throws_ok($$SELECT strata.append('tap-3', '[{"type": "X", "id": "22222222-2222-7222-8222-222222222222", "data": {"a": 1, "b": [1, 2]}, "metadata": {"m": 1}}, {"type": "C", "id": "33333333-3333-7333-8333-333333333333"}]')$$,
	'ST002', 'event id 22222222-2222-7222-8222-222222222222 is already used with different content', 'the same id with another type: ST002');
SELECT throws_ok($$SELECT strata.append('tap-3', '[{"type": "B", "id": "22222222-2222-7222-8222-222222222222", "data": {"a": 1, "b": [2, 1]}, "metadata": {"m": 1}}, {"type": "C", "id": "33333333-3333-7333-8333-333333333333"}]')$$,
	'ST002', NULL, 'the same id with other data: ST002');
SELECT throws_ok($$SELECT strata.append('tap-3', '[{"type": "B", "id": "22222222-2222-7222-8222-222222222222", "data": {"a": 1, "b": [1, 2]}}, {"type": "C", "id": "33333333-3333-7333-8333-333333333333"}]')$$,
	'ST002', NULL, 'the same id without its metadata: ST002');
SELECT throws_ok($$SELECT strata.append('tap-3', '[{"type": "B", "id": "22222222-2222-7222-8222-222222222222", "data": {"a": 1, "b": [1, 2]}, "metadata": {"m": 1}}, {"type": "C", "id": "33333333-3333-7333-8333-333333333333", "metadata": {"m": 2}}]')$$,
	'ST002', 'event id 33333333-3333-7333-8333-333333333333 is already used with different content', 'a difference in the second event names it: ST002');

SELECT throws_ok($$SELECT strata.append('tap-5', '3')$$, '22023', NULL, 'scalar events: 22023');
SELECT throws_ok($$SELECT strata.append('tap-5', '[]')$$, '22023', NULL, 'empty array: 22023');
SELECT throws_ok($$SELECT strata.append('tap-5', '{"data": 1}')$$, '22023', NULL, 'no type: 22023');
SELECT throws_ok($$SELECT strata.append('tap-5', '{"type": "A", "metadata": 1}')$$, '22023', NULL, 'scalar metadata: 22023');
SELECT throws_ok($$SELECT strata.append('tap-5', '{"type": "A", "id": "x"}')$$, '22P02', NULL, 'bad uuid: 22P02');
SELECT throws_ok($$SELECT strata.append('tap-5', '{"type": "A"}', -3)$$, '22023', NULL, 'expected version -3: 22023');
SELECT throws_ok($$SELECT strata.append(E'tap\x01', '{"type": "A"}')$$, '22023', NULL, 'control character in a name: 22023');
SELECT throws_ok($$SELECT strata.append(NULL, '{"type": "A"}')$$, '22004', NULL, 'NULL stream: 22004');
SET LOCAL strata.max_event_size = 64;
SELECT throws_ok($$SELECT strata.append('tap-5', jsonb_build_object('type', 'A', 'data', repeat('x', 100)))$$, '54000', NULL, 'too large: 54000');
RESET strata.max_event_size;
SELECT is((SELECT count(*)::int FROM strata.streams WHERE stream IN ('tap-2', 'tap-4', 'tap-5')), 0, 'refusals created no stream');
SELECT throws_ok($$DELETE FROM strata.events$$, 'ST003', NULL, 'DELETE: ST003');

SELECT * FROM finish();
ROLLBACK;
