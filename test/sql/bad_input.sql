-- bad_input: every malformed argument gets a clear error and writes nothing.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all
SELECT count(*) AS events_before FROM strata.events \gset
SELECT count(*) AS streams_before FROM strata.streams \gset

-- events not an array or object
SELECT strata.append('bad-1', '42');
SELECT strata.append('bad-1', '"Opened"');
SELECT strata.append('bad-1', 'null');
-- an empty array
SELECT strata.append('bad-1', '[]');
-- an element that is not an object
SELECT strata.append('bad-1', '[{"type": "A"}, 7]');
SELECT strata.append('bad-1', '[[{"type": "A"}]]');
-- missing, null, empty or non-string type
SELECT strata.append('bad-1', '{"data": {}}');
SELECT strata.append('bad-1', '{"type": null}');
SELECT strata.append('bad-1', '{"type": ""}');
SELECT strata.append('bad-1', '{"type": 5}');
SELECT strata.append('bad-1', E'{"type": "A\\u0000B"}');
SELECT strata.append('bad-1', E'{"type": "A\\nB"}');
SELECT try(format($$SELECT strata.append('bad-1', '{"type": "%s"}')$$, repeat('t', 257)));
-- metadata that is not an object
SELECT strata.append('bad-1', '{"type": "A", "metadata": [1]}');
SELECT strata.append('bad-1', '{"type": "A", "metadata": "x"}');
SELECT strata.append('bad-1', '{"type": "A", "metadata": 1}');
-- invalid ids
SELECT strata.append('bad-1', '{"type": "A", "id": "not-a-uuid"}');
SELECT strata.append('bad-1', '{"type": "A", "id": "00000000-0000-7000-8000-00000000000"}');
SELECT strata.append('bad-1', '{"type": "A", "id": "00000000-0000-7000-8000-0000000000001"}');
SELECT strata.append('bad-1', '{"type": "A", "id": "0000000-00000-7000-8000-000000000001"}');
SELECT strata.append('bad-1', '{"type": "A", "id": "g0000000-0000-7000-8000-000000000001"}');
SELECT strata.append('bad-1', '{"type": "A", "id": 12}');
SELECT strata.append('bad-1', '{"type": "A", "id": ""}');
-- two events with one id
SELECT strata.append('bad-1', '[
	{"type": "A", "id": "00000000-0000-7000-8000-0000000000aa"},
	{"type": "B", "id": "00000000-0000-7000-8000-0000000000AA"}
]');
-- a repeated id far apart in a large batch: named with its first event
SELECT strata.append('bad-1', (SELECT jsonb_agg(jsonb_build_object('type', 'A',
		'id', '0badbad0-0000-7000-8000-' || lpad(to_hex(CASE WHEN i = 19999 THEN 7 ELSE i END), 12, '0')))
	FROM generate_series(0, 19999) i));
SELECT count(*) FROM strata.events WHERE stream = 'bad-1';
-- and 20,000 distinct ids are accepted (rolled back: later counts stay)
BEGIN;
SELECT strata.append('bad-ids', (SELECT jsonb_agg(jsonb_build_object('type', 'A',
		'id', '0badbad0-0000-7000-8000-' || lpad(to_hex(i), 12, '0')))
	FROM generate_series(0, 19999) i));
ROLLBACK;
-- an unknown key (a typo of metadata)
SELECT strata.append('bad-1', '{"type": "A", "metdata": {}}');
-- a bad event late in a batch rejects the whole batch
SELECT strata.append('bad-1', '[{"type": "A"}, {"type": "B"}, {"type": ""}]');

-- events larger than strata.max_event_size
SET strata.max_event_size = '1kB';
SELECT strata.append('bad-1', jsonb_build_object('type', 'Big', 'data', repeat('x', 2000)));
SELECT strata.append('bad-1', jsonb_build_object('type', 'Big', 'metadata', jsonb_build_object('k', repeat('x', 2000))));
SELECT try($$SELECT strata.append('bad-1', jsonb_build_array(jsonb_build_object('type', 'Small'), jsonb_build_object('type', 'Big', 'data', repeat('x', 2000))))$$);
SELECT strata.append('bad-size', jsonb_build_object('type', 'Fits', 'data', repeat('x', 500)));
RESET strata.max_event_size;
SHOW strata.max_event_size;
-- (its message differs between versions: the SQLSTATE only)
SELECT left(try('SET strata.max_event_size = 10'), 5) AS out_of_range;
SET strata.no_such_setting = 1;

-- invalid stream names
SELECT strata.append('', '{"type": "A"}');
SELECT strata.append('-1', '{"type": "A"}');
SELECT strata.append(E'bad\tname', '{"type": "A"}');
SELECT strata.append(E'bad\u0085name', '{"type": "A"}');
SELECT try(format($$SELECT strata.append('%s', '{"type": "A"}')$$, repeat('s', 513)));
SELECT try(format($$SELECT strata.append('%s', '{"type": "A"}')$$, repeat('s', 512)));
-- NULL arguments
SELECT strata.append(NULL, '{"type": "A"}');
SELECT strata.append('bad-1', NULL);

-- names are checked by the other functions too
SELECT strata.stream_version('');
SELECT strata.stream_version(NULL);
SELECT strata.category('-x');

-- nothing was written (but the two appends that fit)
SELECT count(*) - :events_before AS new_events FROM strata.events;
SELECT count(*) - :streams_before AS new_streams FROM strata.streams;
SELECT left(stream, 10), length(stream) FROM strata.streams
WHERE stream LIKE 'bad%' OR stream LIKE 's%s' ORDER BY 1;
