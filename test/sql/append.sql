-- append: writing events, versions, returned values, what is stored.
-- the extension and the helpers, also when run without setup
\set ECHO none
\i test/helpers.sql
\set ECHO all

-- a batch of two events creates the stream; the new version is returned
SELECT strata.append('account-1', '[
	{"type": "Opened", "data": {"owner": "ann"}, "metadata": {"by": "test"}},
	{"type": "Deposited", "data": {"amount": 10}}
]');
-- a single object is a one-event batch
SELECT strata.append('account-1', '{"type": "Deposited", "data": {"amount": 5}}');
SELECT strata.stream_version('account-1'), strata.stream_version('account-404');

-- stored rows: consecutive versions, positions, category, defaults
SELECT position, stream, version, type, data, metadata, category
FROM strata.events ORDER BY position;

-- data may be any JSON value; absent data is {}; null metadata is {}
SELECT strata.append('misc', '[
	{"type": "Scalar", "data": 42},
	{"type": "Text", "data": "hello"},
	{"type": "Null", "data": null},
	{"type": "Array", "data": [1, 2, 3]},
	{"type": "NoData", "metadata": null}
]');
SELECT version, type, data, jsonb_typeof(data), metadata
FROM strata.read_stream('misc');

-- generated ids are version 7 UUIDs, unique
SELECT count(DISTINCT id) = count(*) AS unique_ids,
	   bool_and(substr(id::text, 15, 1) = '7') AS uuid_v7
FROM strata.events;

-- recorded_at is set, and one batch shares one time
SELECT count(DISTINCT recorded_at) FROM strata.events WHERE stream = 'misc';
SELECT bool_and(recorded_at <= now() + interval '1 minute') FROM strata.events;

-- several appends in one transaction are atomic together
BEGIN;
SELECT strata.append('order-1', '{"type": "Placed"}');
SELECT strata.append('order-2', '{"type": "Placed"}');
ROLLBACK;
SELECT strata.stream_version('order-1'), strata.stream_version('order-2');
SELECT count(*) FROM strata.events WHERE category = 'order';

BEGIN;
SELECT strata.append('order-1', '{"type": "Placed"}');
SELECT strata.append('order-1', '{"type": "Paid"}', 0);
SELECT strata.append('order-2', '{"type": "Placed"}', -1);
COMMIT;
SELECT stream, version, type FROM strata.events WHERE category = 'order' ORDER BY position;

-- a savepoint rolled back takes its events and its version bump with it
BEGIN;
SELECT strata.append('order-3', '{"type": "Placed"}');
SAVEPOINT s;
SELECT strata.append('order-3', '{"type": "Cancelled"}', 0);
ROLLBACK TO SAVEPOINT s;
SELECT strata.append('order-3', '{"type": "Paid"}', 0);
COMMIT;
SELECT version, type FROM strata.read_stream('order-3');

-- the category helper
SELECT strata.category('account-1'), strata.category('account-1-2'),
	   strata.category('misc');

-- the streams catalogue
SELECT stream, version FROM strata.streams ORDER BY stream;
