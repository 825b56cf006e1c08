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

-- a retry is recognised by id and content: the same type, and the same data
-- and metadata as jsonb (key order, whitespace and 100.0 for 100 do not matter)
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', -1);
SELECT version, type, data, metadata FROM strata.read_stream('idem-5');
-- the exact retry: data and metadata omitted, null or {} are all the stored {}
SELECT strata.append('idem-5', '[
	{"metadata": {"channel":"web",   "by":"teller-7"}, "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"tags": ["a","b"], "limits": {"month": 1000, "day": 100}, "owner": "Ada"}, "type": "Opened"},
	{"data": {"amount": 100.0}, "type": "Deposited", "id": "00000000000070008000000000000021", "metadata": null},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022", "data": {}, "metadata": {}}
]', -1);
SELECT count(*) FROM strata.events WHERE stream = 'idem-5';
SELECT strata.stream_version('idem-5');
-- another type: ST002, the detail names the event and what differs
SELECT strata.append('idem-5', '[
	{"type": "Created", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', -1);
-- other data (array order matters)
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["b", "a"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', -1);
-- other metadata
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-8", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', -1);
-- metadata omitted where it was given: the stored metadata is not {}
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', -1);
-- metadata given where it was omitted (stored as {}), in the last event
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022", "metadata": {"by": "teller-7"}}
]', -1);
-- the second and third events differ: the detail names the second; a string
-- is not a number
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": "100"}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022", "data": 1}
]', -1);
-- data omitted where it was given, and everything else differing too
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Ada", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Withdrawn", "id": "00000000-0000-7000-8000-000000000021", "metadata": {"by": "teller-7"}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', -1);
-- other content with an expected version that does not fit either: still
-- ST002, the events are not those of the first append
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000020",
	 "data": {"owner": "Bob", "limits": {"day": 100, "month": 1000}, "tags": ["a", "b"]},
	 "metadata": {"by": "teller-7", "channel": "web"}},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]', 2);
-- one event, appended alone again with other data
SELECT strata.append('idem-5', '{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022", "data": {"x": 1}}');
-- part of the batch stored (with other content), part new: the partial
-- repeat is reported, as before
SELECT strata.append('idem-5', '[
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 5}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"},
	{"type": "Closed", "id": "00000000-0000-7000-8000-000000000023"}
]');
-- a new event first, then stored ones: the detail gives the version of the
-- first stored one
SELECT strata.append('idem-5', '[
	{"type": "Opened", "id": "00000000-0000-7000-8000-000000000024"},
	{"type": "Deposited", "id": "00000000-0000-7000-8000-000000000021", "data": {"amount": 100}},
	{"type": "Noted", "id": "00000000-0000-7000-8000-000000000022"}
]');
-- nothing was written by the failures, and the stored events are the first ones
SELECT version, type, data, metadata FROM strata.read_stream('idem-5');
SELECT strata.stream_version('idem-5');
