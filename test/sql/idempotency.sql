-- idempotency: retrying an append with the same ids writes nothing.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all

SELECT strata.append('idem-1', '[
	{"type": "A", "id": "00000000-0000-7000-8000-000000000001"},
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}
]', -1);
-- the same call again (a retry after a lost reply) returns the same version
SELECT strata.append('idem-1', '[
	{"type": "A", "id": "00000000-0000-7000-8000-000000000001"},
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}
]', -1);
-- with expected version any, too
SELECT strata.append('idem-1', '[
	{"type": "A", "id": "00000000-0000-7000-8000-000000000001"},
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}
]');
SELECT version, type, id FROM strata.read_stream('idem-1');
SELECT strata.stream_version('idem-1');

-- the stream moves on; a retry of the first append still succeeds
SELECT strata.append('idem-1', '{"type": "C", "id": "00000000-0000-7000-8000-000000000003"}', 1);
SELECT strata.append('idem-1', '[
	{"type": "A", "id": "00000000-0000-7000-8000-000000000001"},
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}
]', -1);
-- a retry of a single-event append with its expected version
SELECT strata.append('idem-1', '{"type": "C", "id": "00000000-0000-7000-8000-000000000003"}', 1);
-- and the stream's version did not move
SELECT strata.stream_version('idem-1');
SELECT count(*) FROM strata.events WHERE stream = 'idem-1';

-- ids in uppercase or without hyphens are the same ids
SELECT strata.append('idem-1', '{"type": "C", "id": "00000000000070008000000000000003"}', 1);

-- an id used by an event of another stream: ST002
SELECT strata.append('idem-2', '{"type": "A", "id": "00000000-0000-7000-8000-000000000001"}');
-- an event already stored, appended again alone with "any": the same event, a retry
SELECT strata.append('idem-1', '{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}');
-- the same, with an expected version that would put it elsewhere: ST001
SELECT strata.append('idem-1', '{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}', 2);
-- a retry where the expected version does not fit the stored events: ST001
SELECT strata.append('idem-1', '[
	{"type": "A", "id": "00000000-0000-7000-8000-000000000001"},
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"}
]', 0);
-- part of the batch stored, part new: ST002
SELECT strata.append('idem-1', '[
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"},
	{"type": "C", "id": "00000000-0000-7000-8000-000000000003"},
	{"type": "D", "id": "00000000-0000-7000-8000-000000000004"}
]');
SELECT strata.append('idem-1', '[
	{"type": "C", "id": "00000000-0000-7000-8000-000000000003"},
	{"type": "D"}
]');
-- the same ids in another order: ST002
SELECT strata.append('idem-1', '[
	{"type": "B", "id": "00000000-0000-7000-8000-000000000002"},
	{"type": "A", "id": "00000000-0000-7000-8000-000000000001"}
]');
SELECT try($$SELECT strata.append('idem-3', '{"type": "A", "id": "00000000-0000-7000-8000-000000000003"}')$$);

-- nothing was written by the failures
SELECT count(*) FROM strata.events WHERE stream LIKE 'idem-%';
SELECT stream, version FROM strata.streams WHERE stream LIKE 'idem-%' ORDER BY 1;

-- a retry inside the transaction that made the first append
BEGIN;
SELECT strata.append('idem-4', '{"type": "A", "id": "00000000-0000-7000-8000-000000000010"}', -1);
SELECT strata.append('idem-4', '{"type": "A", "id": "00000000-0000-7000-8000-000000000010"}', -1);
COMMIT;
SELECT version, type FROM strata.read_stream('idem-4');
