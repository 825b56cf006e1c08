/*-------------------------------------------------------------------------
 *
 * append.c
 *	  strata.append(): write events to a stream with an optimistic version
 *	  check and idempotent event ids; and the trigger that keeps the
 *	  events table immutable.
 *
 * Concurrency: the row of the stream in strata.streams is the stream's
 * lock.  An append bumps that row's version first (an UPDATE, which waits
 * for any other appender of the same stream and then sees its result), so
 * appends to one stream serialize and appends to different streams never
 * wait for each other.  Global positions come from registry.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "strata.h"
#include "epoch.h"
#include "settings.h"
#include "append.h"
#include "events.h"
#include "privilege.h"
#include "registry.h"
#include "projection.h"
#include "stream.h"
#include "version.h"

PG_FUNCTION_INFO_V1(strata_append);
PG_FUNCTION_INFO_V1(strata_append_0_2);
PG_FUNCTION_INFO_V1(strata_append_0_3);
PG_FUNCTION_INFO_V1(strata_append_0_4);
PG_FUNCTION_INFO_V1(strata_append_0_6);
PG_FUNCTION_INFO_V1(strata_forbid_change);

/* One event of an append call, validated */
typedef struct AppendEvent
{
	char	 *type;
	Jsonb	 *data;
	Jsonb	 *metadata;
	pg_uuid_t id;
	bool	  has_id; /* the caller gave the id */
} AppendEvent;

/* Saved plans, prepared on first use in each backend */
static SPIPlanPtr plan_bump = NULL;
static SPIPlanPtr plan_create = NULL;
static SPIPlanPtr plan_reset = NULL;
static SPIPlanPtr plan_ids = NULL;
static SPIPlanPtr plan_insert_one = NULL;
static SPIPlanPtr plan_insert_many = NULL;

/* The types of the columns of strata.events */
static Oid append_column_types[Natts_events] = {
	[Anum_events_position - 1] = INT8OID,
	[Anum_events_stream - 1] = TEXTOID,
	[Anum_events_version - 1] = INT8OID,
	[Anum_events_id - 1] = UUIDOID,
	[Anum_events_type - 1] = TEXTOID,
	[Anum_events_data - 1] = JSONBOID,
	[Anum_events_metadata - 1] = JSONBOID,
	[Anum_events_recorded_at - 1] = TIMESTAMPTZOID,
	[Anum_events_category - 1] = TEXTOID,
};

/*
 * Parse a UUID in its canonical 8-4-4-4-12 form or as 32 hex digits.
 * Returns false when the text is not one.
 */
bool
append_parse_uuid(const char *s, int len, pg_uuid_t *out)
{
	int nhex = 0;

	for (int i = 0; i < len; i++)
	{
		int	 v;
		char c = s[i];

		if (c == '-' && nhex > 0 && nhex < 32 && nhex % 4 == 0 &&
			(len == 36 ? (i == 8 || i == 13 || i == 18 || i == 23) : false))
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		if (nhex >= 32)
			return false;
		if (nhex % 2 == 0)
			out->data[nhex / 2] = (unsigned char) (v << 4);
		else
			out->data[nhex / 2] |= (unsigned char) v;
		nhex++;
	}
	return nhex == 32 && (len == 32 || len == 36);
}

/*
 * Fill 'id' with a version 7 UUID: 48 bits of Unix time in milliseconds,
 * then random bits.  Time-ordered ids keep the id index append-mostly.
 */
static void
append_generate_uuid(pg_uuid_t *id)
{
	uint64 ms = (uint64) ((GetCurrentTimestamp() / 1000) +
						  (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
							  SECS_PER_DAY * 1000);

	if (!pg_strong_random(id->data + 6, UUID_LEN - 6))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("could not generate random values")));
	for (int i = 0; i < 6; i++)
		id->data[i] = (unsigned char) (ms >> (40 - 8 * i));
	id->data[6] = (id->data[6] & 0x0f) | 0x70; /* version 7 */
	id->data[8] = (id->data[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

static Jsonb *
append_empty_object(void)
{
	JsonbValue obj;

	obj.type = jbvObject;
	obj.val.object.nPairs = 0;
	obj.val.object.pairs = NULL;
	return JsonbValueToJsonb(&obj);
}

static JsonbValue *
append_find_key(JsonbContainer *obj, const char *key)
{
	JsonbValue k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

/* Name the first key of an event object that append does not know. */
static void
append_reject_unknown_key(JsonbContainer *obj, int index)
{
	JsonbIterator	  *it = JsonbIteratorInit(obj);
	JsonbValue		   v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if ((v.val.string.len == 4 &&
			 (strncmp(v.val.string.val, "type", 4) == 0 ||
			  strncmp(v.val.string.val, "data", 4) == 0)) ||
			(v.val.string.len == 8 &&
			 strncmp(v.val.string.val, "metadata", 8) == 0) ||
			(v.val.string.len == 2 && strncmp(v.val.string.val, "id", 2) == 0))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown key \"%.*s\" in events[%d]", v.val.string.len,
						v.val.string.val, index),
				 errhint("An event object has the keys \"type\", \"data\", "
						 "\"metadata\" and \"id\".")));
	}
}

/* Validate one event object and fill 'ev'. */
static void
append_parse_event(JsonbContainer *obj, int index, AppendEvent *ev)
{
	JsonbValue *v;
	int			known = 0;
	Size		size;

	/* type: a non-empty string */
	v = append_find_key(obj, "type");
	if (v == NULL || v->type == jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events[%d] has no type", index),
				 errhint("Give every event a \"type\", for example "
						 "{\"type\": \"Deposited\", \"data\": {...}}.")));
	if (v->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("type of events[%d] must be a string", index)));
	ev->type = stream_validate_name(v->val.string.val, v->val.string.len,
									psprintf("type of events[%d]", index),
									EVENT_TYPE_MAX_BYTES);
	known++;

	/* data: any JSON value, {} when absent */
	v = append_find_key(obj, "data");
	if (v != NULL)
	{
		ev->data = JsonbValueToJsonb(v);
		known++;
	}
	else
		ev->data = append_empty_object();

	/* metadata: an object, {} when absent or null */
	v = append_find_key(obj, "metadata");
	if (v != NULL)
	{
		known++;
		if (v->type == jbvNull)
			ev->metadata = append_empty_object();
		else if (v->type == jbvBinary &&
				 JsonContainerIsObject(v->val.binary.data))
			ev->metadata = JsonbValueToJsonb(v);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("metadata of events[%d] must be a JSON object",
							index)));
	}
	else
		ev->metadata = append_empty_object();

	/* id: a UUID string; generated when absent or null */
	v = append_find_key(obj, "id");
	ev->has_id = false;
	if (v != NULL)
	{
		known++;
		if (v->type == jbvString)
		{
			if (!append_parse_uuid(v->val.string.val, v->val.string.len,
								   &ev->id))
				ereport(
					ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid id in events[%d]", index),
					 errdetail("\"%.*s\" is not a UUID.",
							   Min(v->val.string.len, 64), v->val.string.val),
					 errhint("Give ids as UUID strings, for example "
							 "\"0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8b\".")));
			ev->has_id = true;
		}
		else if (v->type != jbvNull)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid id in events[%d]", index),
							errdetail("The id is not a string.")));
	}
	if (!ev->has_id)
		append_generate_uuid(&ev->id);

	if (JsonContainerSize(obj) > (uint32) known)
		append_reject_unknown_key(obj, index);

	size = strlen(ev->type) + VARSIZE(ev->data) + VARSIZE(ev->metadata);
	if (size > (Size) strata_max_event_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("events[%d] is too large", index),
				 errdetail("The event takes %zu bytes; strata.max_event_size "
						   "is %d bytes.",
						   size, strata_max_event_size),
				 errhint("Store large payloads elsewhere and reference them, "
						 "or raise strata.max_event_size.")));
}

/* An id of a batch, and the first of its events that has it */
typedef struct AppendIdEntry
{
	pg_uuid_t id; /* the key */
	int		  index;
} AppendIdEntry;

/*
 * Refuse evs[i] if an earlier event of the batch has its id: one hash
 * lookup per id (made on the first id), so that a batch of any size is
 * checked in linear time.
 */
static void
append_check_repeated_id(HTAB **ids, AppendEvent *evs, int i)
{
	AppendIdEntry *entry;
	bool		   found;

	if (*ids == NULL)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(AppendIdEntry);
		ctl.hcxt = CurrentMemoryContext;
		*ids = hash_create("strata append ids", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(*ids, &evs[i].id, HASH_ENTER, &found);
	if (found)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("events[%d] repeats the id of events[%d]", i,
							   entry->index),
						errdetail("Every event needs its own id.")));
	entry->index = i;
}

/*
 * Turn the events argument (an array of event objects, or one object)
 * into validated AppendEvents.  Returns their number.
 */
static int
append_parse_events(Jsonb *events, AppendEvent **out)
{
	int			 count;
	AppendEvent *evs;
	HTAB		*ids = NULL;

	if (JB_ROOT_IS_SCALAR(events))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("events must be a JSON array or object"),
						errhint("Pass an array of event objects, or one event "
								"object.")));

	if (JB_ROOT_IS_OBJECT(events))
	{
		evs = palloc0(sizeof(AppendEvent));
		append_parse_event(&events->root, 0, evs);
		*out = evs;
		return 1;
	}

	count = JB_ROOT_COUNT(events);
	if (count == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("events must not be an empty array")));

	evs = palloc0(sizeof(AppendEvent) * count);
	for (int i = 0; i < count; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&events->root, i);

		CHECK_FOR_INTERRUPTS();
		if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("events[%d] must be a JSON object", i)));
		append_parse_event(v->val.binary.data, i, &evs[i]);
		if (evs[i].has_id && count > 1)
			append_check_repeated_id(&ids, evs, i);
	}
	if (ids != NULL)
		hash_destroy(ids);

	*out = evs;
	return count;
}

static int64
append_expected_arg(FunctionCallInfo fcinfo)
{
	int64 expected;

	if (PG_ARGISNULL(2))
		return APPEND_EXPECT_ANY;
	expected = PG_GETARG_INT64(2);
	if (expected < APPEND_EXPECT_STREAM_EXISTS || expected == -3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid expected version %lld", (long long) expected),
				 errhint("Use NULL or -2 (any), -1 (no stream), "
						 "-4 (stream exists) or a version >= 0.")));
	return expected;
}

static bool
append_expected_matches(int64 expected, int64 current)
{
	switch (expected)
	{
		case APPEND_EXPECT_ANY:
			return true;
		case APPEND_EXPECT_NO_STREAM:
			return current == -1;
		case APPEND_EXPECT_STREAM_EXISTS:
			return current >= 0;
		default:
			return current == expected;
	}
}

static const char *
append_expected_text(int64 expected)
{
	switch (expected)
	{
		case APPEND_EXPECT_ANY:
			return "-2 (any)";
		case APPEND_EXPECT_NO_STREAM:
			return "-1 (no stream)";
		case APPEND_EXPECT_STREAM_EXISTS:
			return "-4 (stream exists)";
		default:
			return psprintf(INT64_FORMAT, expected);
	}
}

/*
 * Lock the stream's row, raising its version by 'count' (or creating it),
 * and return the version the stream had before.  *existed tells whether
 * the row was there.  The UPDATE waits for a concurrent appender of the
 * same stream and, in READ COMMITTED, then sees its committed version.
 */
static int64
append_lock_stream(Datum stream, int count, bool *existed)
{
	Oid	  bump_types[2] = {TEXTOID, INT8OID};
	Datum args[2];

	args[0] = stream;

	for (int attempt = 0;; attempt++)
	{
		int ret;

		args[1] = Int64GetDatum(count);
		ret = SPI_execute_plan(
			strata_prepare(
				&plan_bump,
				"UPDATE strata.streams SET version = version "
				"OPERATOR(pg_catalog.+) $2 "
				"WHERE stream OPERATOR(pg_catalog.=) $1 RETURNING version",
				2, bump_types),
			args, NULL, false, 0);
		if (ret != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not lock stream: %s",
				 SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			bool  isnull;
			int64 newv;

			newv = DatumGetInt64(SPI_getbinval(
				SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			*existed = true;
			return newv - count;
		}

		/* No row: create it with the version it will have */
		args[1] = Int64GetDatum((int64) count - 1);
		ret = SPI_execute_plan(
			strata_prepare(
				&plan_create,
				"INSERT INTO strata.streams (stream, version) VALUES ($1, $2) "
				"ON CONFLICT (stream) DO NOTHING",
				2, bump_types),
			args, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "could not create stream: %s",
				 SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			*existed = false;
			return -1;
		}

		/*
		 * A concurrent append created the stream and committed between our
		 * UPDATE and INSERT; the next UPDATE will see it.  Under REPEATABLE
		 * READ the INSERT raises a serialization failure instead, so this
		 * cannot loop for long.
		 */
		if (attempt >= 100)
			elog(ERROR, "could not lock stream after %d attempts", attempt);
		CHECK_FOR_INTERRUPTS();
	}
}

/* The parts of an event that a retry must repeat */
#define APPEND_DIFF_TYPE	 0x01
#define APPEND_DIFF_DATA	 0x02
#define APPEND_DIFF_METADATA 0x04

/*
 * Is the caller's jsonb 'given' equal, as jsonb (jsonb's '='), to the
 * stored 'stored'?  The same bytes are the same value, which is the
 * common case of a retry; other bytes may still be equal (1.0 and 1).
 */
static bool
append_jsonb_equal(Jsonb *given, Datum stored)
{
	Jsonb *s = DatumGetJsonbP(stored);
	bool   equal;

	equal =
		(VARSIZE(given) == VARSIZE(s) &&
		 memcmp(VARDATA(given), VARDATA(s), VARSIZE(given) - VARHDRSZ) == 0) ||
		compareJsonbContainers(&given->root, &s->root) == 0;
	/* a detoasted copy: a batch's copies would add up */
	if ((Pointer) s != DatumGetPointer(stored))
		pfree(s);
	return equal;
}

/* Is the text datum 'd' the string 's'? */
static bool
append_text_equal(Datum d, const char *s)
{
	text  *t = DatumGetTextPP(d);
	size_t len = VARSIZE_ANY_EXHDR(t);

	return len == strlen(s) && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* The bigint in column 'col' of row 'r' of SPI_tuptable (never NULL) */
static int64
append_row_int8(uint64 r, int col)
{
	bool isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
									   SPI_tuptable->tupdesc, col, &isnull));
}

/* "type", "data and metadata", ...: the parts 'diff' names. */
static const char *
append_diff_text(int diff)
{
	const char *parts[3];
	int			n = 0;

	if (diff & APPEND_DIFF_TYPE)
		parts[n++] = "type";
	if (diff & APPEND_DIFF_DATA)
		parts[n++] = "data";
	if (diff & APPEND_DIFF_METADATA)
		parts[n++] = "metadata";
	Assert(n > 0);
	if (n == 1)
		return parts[0];
	if (n == 2)
		return psprintf("%s and %s", parts[0], parts[1]);
	return psprintf("%s, %s and %s", parts[0], parts[1], parts[2]);
}

/*
 * If some of the events' ids are already stored, decide between an
 * idempotent retry and a conflict.  A retry has all of the batch stored,
 * in order, at consecutive versions of this stream, with the same type,
 * data and metadata (compared as jsonb) when 'check_content', and where
 * this call's expected version would have put them.  Otherwise: ST002
 * (an id stored elsewhere, part of the batch stored, or the same ids with
 * other content) or ST001 (the same events, but not where the expected
 * version would have put them).  Errors name the first event of the
 * batch, in batch order, that has the problem.  Returns true and sets
 * *version to the version of the last stored event for a retry; false
 * when no id is stored.
 *
 * One query reads the stored events of every id of the batch; the work
 * is linear in the size of the batch.
 */
static bool
append_check_ids(const char *stream, AppendEvent *evs, int count,
				 int64 expected, bool check_content, int64 *version)
{
	Oid		  argtypes[1] = {UUIDARRAYOID};
	Datum	 *ids = palloc(sizeof(Datum) * count);
	int		  nids = 0;
	int		 *row_k; /* the index in evs of each row's event */
	Datum	  arg;
	int		  ret;
	TupleDesc desc;
	int64	  first = -1;
	int		  first_k = count;
	int64	  misplaced_r = -1, differing_r = -1;
	int		  misplaced_k = count, differing_k = count;
	int		  differing = 0;
	bool	  isnull;

	/* the columns of the query */
	enum
	{
		IDS_ID = 1,
		IDS_STREAM,
		IDS_VERSION,
		IDS_TYPE,
		IDS_DATA,
		IDS_METADATA
	};

	for (int i = 0; i < count; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (evs[i].has_id)
			ids[nids++] = UUIDPGetDatum(&evs[i].id);
	}
	if (nids == 0)
		return false;

	arg = PointerGetDatum(
		construct_array(ids, nids, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	ret = SPI_execute_plan(
		strata_prepare(
			&plan_ids,
			"SELECT id, stream, version, type, data, metadata "
			"FROM strata.events WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
			1, argtypes),
		&arg, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not look up event ids: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	desc = SPI_tuptable->tupdesc;

	/*
	 * Which event of the batch each row is: through a hash table of the
	 * batch's ids, made only now that some are stored, so that an append
	 * of new events never builds it.
	 */
	row_k = palloc(sizeof(int) * SPI_processed);
	if (count == 1)
		row_k[0] = 0;
	else
	{
		HTAB *byid = NULL;

		for (int i = 0; i < count; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (evs[i].has_id)
				append_check_repeated_id(&byid, evs, i);
		}
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			AppendIdEntry *entry =
				hash_search(byid,
							DatumGetUUIDP(SPI_getbinval(
								SPI_tuptable->vals[r], desc, IDS_ID, &isnull)),
							HASH_FIND, NULL);

			CHECK_FOR_INTERRUPTS();
			if (entry == NULL)
				elog(ERROR, "stored event id not found in the batch");
			row_k[r] = entry->index;
		}
		hash_destroy(byid);
	}

	/*
	 * Where the batch would begin if it is a retry: the version of its
	 * first stored event, less that event's index.
	 */
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		int k = row_k[r];

		CHECK_FOR_INTERRUPTS();
		if (k < first_k)
		{
			first_k = k;
			first = append_row_int8(r, IDS_VERSION) - k;
		}
	}

	/*
	 * Find the first event of the batch stored elsewhere (another stream,
	 * another version), and the first stored with other content.
	 */
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple tup = SPI_tuptable->vals[r];
		int		  k = row_k[r];
		int		  diff = 0;

		CHECK_FOR_INTERRUPTS();
		if (first < 0 || append_row_int8(r, IDS_VERSION) - k != first ||
			!append_text_equal(SPI_getbinval(tup, desc, IDS_STREAM, &isnull),
							   stream))
		{
			if (k < misplaced_k)
			{
				misplaced_k = k;
				misplaced_r = r;
			}
			continue;
		}
		if (!check_content || misplaced_r >= 0 || k > differing_k)
			continue;

		if (!append_text_equal(SPI_getbinval(tup, desc, IDS_TYPE, &isnull),
							   evs[k].type))
			diff |= APPEND_DIFF_TYPE;
		if (!append_jsonb_equal(evs[k].data,
								SPI_getbinval(tup, desc, IDS_DATA, &isnull)))
			diff |= APPEND_DIFF_DATA;
		if (!append_jsonb_equal(
				evs[k].metadata,
				SPI_getbinval(tup, desc, IDS_METADATA, &isnull)))
			diff |= APPEND_DIFF_METADATA;
		if (diff != 0)
		{
			differing_k = k;
			differing_r = r;
			differing = diff;
		}
	}

	if (misplaced_r >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_STRATA_DUPLICATE_EVENT_ID),
				 errmsg("event id %s is already used by another event",
						DatumGetCString(DirectFunctionCall1(
							uuid_out, UUIDPGetDatum(&evs[misplaced_k].id)))),
				 errdetail("The id is stored in stream \"%s\" at "
						   "version " INT64_FORMAT ".",
						   TextDatumGetCString(
							   SPI_getbinval(SPI_tuptable->vals[misplaced_r],
											 desc, IDS_STREAM, &isnull)),
						   append_row_int8(misplaced_r, IDS_VERSION)),
				 errhint("Give each event a new id; reuse an id only to "
						 "retry the very same append.")));

	/* Some ids of the batch stored, others not: not a retry */
	if (SPI_processed != (uint64) count)
		ereport(ERROR,
				(errcode(ERRCODE_STRATA_DUPLICATE_EVENT_ID),
				 errmsg("append to stream \"%s\" partly repeats stored events",
						stream),
				 errdetail("%d of the %d events are already stored at "
						   "versions from " INT64_FORMAT "; the others are "
						   "new or have no id.",
						   (int) SPI_processed, count, first + first_k),
				 errhint("Retry an append with exactly the same events, or "
						 "give the new events new ids.")));

	/* The same ids at the same place, with other content: not a retry */
	if (differing_r >= 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_STRATA_DUPLICATE_EVENT_ID),
			 errmsg("event id %s is already used with different content",
					DatumGetCString(DirectFunctionCall1(
						uuid_out, UUIDPGetDatum(&evs[differing_k].id)))),
			 errdetail("events[%d] differs in %s from the event stored "
					   "with that id in stream \"%s\" at version " INT64_FORMAT
					   ".",
					   differing_k, append_diff_text(differing), stream,
					   append_row_int8(differing_r, IDS_VERSION)),
			 errhint("Retry an append with exactly the same events, or "
					 "give changed events new ids.")));

	/* The whole batch is stored: a retry, if the expected version fits */
	if (!append_expected_matches(expected, first - 1))
		ereport(
			ERROR,
			(errcode(ERRCODE_STRATA_WRONG_EXPECTED_VERSION),
			 errmsg("wrong expected version for stream \"%s\"", stream),
			 errdetail("Expected version %s; the events of this append "
					   "are already stored after version " INT64_FORMAT ".",
					   append_expected_text(expected), first - 1)));

	*version = first + count - 1;
	return true;
}

/* Put the stream's version back after an idempotent retry bumped it. */
static void
append_reset_stream(Datum stream, int64 version)
{
	Oid	  argtypes[2] = {TEXTOID, INT8OID};
	Datum args[2] = {stream, Int64GetDatum(version)};
	int	  ret;

	ret = SPI_execute_plan(
		strata_prepare(&plan_reset,
					   "UPDATE strata.streams SET version = $2 "
					   "WHERE stream OPERATOR(pg_catalog.=) $1",
					   2, argtypes),
		args, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not reset stream version: %s",
			 SPI_result_code_string(ret));
}

/*
 * Insert the events with their positions and versions, then run the
 * inline projections the schema of 'api' has.  A unique violation on the
 * id index means an id was taken by a concurrent append to another
 * stream: reported as ST002 like the ids found beforehand.
 */
static void
append_insert(Datum stream, const char *category_s, AppendEvent *evs,
			  int count, int64 first_version, StrataApi api)
{
	int64		 *positions = palloc(sizeof(int64) * count);
	Datum		  recorded = TimestampTzGetDatum(GetCurrentTimestamp());
	Datum		  category = CStringGetTextDatum(category_s);
	MemoryContext oldcxt = CurrentMemoryContext;
	int			  ret;

	registry_allocate_positions(strata_relid("_position_seq"), count,
								positions);

	PG_TRY();
	{
		if (count == 1)
		{
			/* the parameters are the columns, in table order */
			Datum args[Natts_events];

			args[Anum_events_position - 1] = Int64GetDatum(positions[0]);
			args[Anum_events_stream - 1] = stream;
			args[Anum_events_version - 1] = Int64GetDatum(first_version);
			args[Anum_events_id - 1] = UUIDPGetDatum(&evs[0].id);
			args[Anum_events_type - 1] = CStringGetTextDatum(evs[0].type);
			args[Anum_events_data - 1] = JsonbPGetDatum(evs[0].data);
			args[Anum_events_metadata - 1] = JsonbPGetDatum(evs[0].metadata);
			args[Anum_events_recorded_at - 1] = recorded;
			args[Anum_events_category - 1] = category;
			ret = SPI_execute_plan(
				strata_prepare(&plan_insert_one,
							   "INSERT INTO strata.events (" EVENTS_COLUMNS
							   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
							   Natts_events, append_column_types),
				args, NULL, false, 0);
		}
		else
		{
			Oid	   types[9] = {TEXTOID,		 TIMESTAMPTZOID, TEXTOID,
							   INT8ARRAYOID, INT8ARRAYOID,	 UUIDARRAYOID,
							   TEXTARRAYOID, JSONBARRAYOID,	 JSONBARRAYOID};
			Datum  args[9];
			Datum *pos = palloc(sizeof(Datum) * count);
			Datum *ver = palloc(sizeof(Datum) * count);
			Datum *ids = palloc(sizeof(Datum) * count);
			Datum *typ = palloc(sizeof(Datum) * count);
			Datum *dat = palloc(sizeof(Datum) * count);
			Datum *met = palloc(sizeof(Datum) * count);

			for (int i = 0; i < count; i++)
			{
				pos[i] = Int64GetDatum(positions[i]);
				ver[i] = Int64GetDatum(first_version + i);
				ids[i] = UUIDPGetDatum(&evs[i].id);
				typ[i] = CStringGetTextDatum(evs[i].type);
				dat[i] = JsonbPGetDatum(evs[i].data);
				met[i] = JsonbPGetDatum(evs[i].metadata);
			}
			args[0] = stream;
			args[1] = recorded;
			args[2] = category;
			args[3] = PointerGetDatum(construct_array(
				pos, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[4] = PointerGetDatum(construct_array(
				ver, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[5] = PointerGetDatum(construct_array(
				ids, count, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
			args[6] = PointerGetDatum(
				construct_array(typ, count, TEXTOID, -1, false, TYPALIGN_INT));
			args[7] = PointerGetDatum(construct_array(dat, count, JSONBOID, -1,
													  false, TYPALIGN_INT));
			args[8] = PointerGetDatum(construct_array(met, count, JSONBOID, -1,
													  false, TYPALIGN_INT));
			ret = SPI_execute_plan(
				strata_prepare(
					&plan_insert_many,
					"INSERT INTO strata.events (" EVENTS_COLUMNS ") "
					"SELECT u.p, $1, u.v, u.i, u.t, u.d, u.m, $2, $3 "
					"FROM ROWS FROM (pg_catalog.unnest($4), "
					"pg_catalog.unnest($5), "
					"pg_catalog.unnest($6), pg_catalog.unnest($7), "
					"pg_catalog.unnest($8), pg_catalog.unnest($9)) "
					"AS u(p, v, i, t, d, m)",
					9, types),
				args, NULL, false, 0);
		}
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION ||
			edata->constraint_name == NULL ||
			strcmp(edata->constraint_name, "events_id_key") != 0)
			PG_RE_THROW();

		/* We are about to throw: no work is done after catching. */
		FlushErrorState();
		ereport(
			ERROR,
			(errcode(ERRCODE_STRATA_DUPLICATE_EVENT_ID),
			 errmsg("event id is already used by another event"),
			 errdetail("%s", edata->detail
								 ? edata->detail
								 : "A concurrent append stored the same id."),
			 errhint("Give each event a new id; reuse an id only to "
					 "retry the very same append.")));
	}
	PG_END_TRY();

	if (ret != SPI_OK_INSERT || SPI_processed != (uint64) count)
		elog(ERROR, "could not insert events: %s",
			 SPI_result_code_string(ret));

	/* Inline projections run now, inside the appending transaction */
	if (projection_inline_wanted(api, category_s))
	{
		for (int i = 0; i < count; i++)
		{
			Datum row[Natts_events];

			row[Anum_events_position - 1] = Int64GetDatum(positions[i]);
			row[Anum_events_stream - 1] = stream;
			row[Anum_events_version - 1] = Int64GetDatum(first_version + i);
			row[Anum_events_id - 1] = UUIDPGetDatum(&evs[i].id);
			row[Anum_events_type - 1] = CStringGetTextDatum(evs[i].type);
			row[Anum_events_data - 1] = JsonbPGetDatum(evs[i].data);
			row[Anum_events_metadata - 1] = JsonbPGetDatum(evs[i].metadata);
			row[Anum_events_recorded_at - 1] = recorded;
			row[Anum_events_category - 1] = category;
			projection_apply_inline(api, row, category_s, evs[i].type);
		}
	}
}

/*
 * Append 'events' (an array of event objects, or one) to 'stream' with an
 * expected version, and return the stream's new version.  The body of
 * strata.append(), also used by strata.execute(), under the SQL API
 * version 'api' of their entry point.  'stream' must have been validated
 * by stream_name_arg().  With 'check_content', an idempotent retry must
 * repeat the stored events' type, data and metadata (strata.append);
 * without, the ids and their place decide alone (strata.execute, whose
 * command id names the command, not the event its handler returns).
 */
int64
append_events(const char *stream, const char *category, Jsonb *events,
			  int64 expected, StrataApi api, bool check_content)
{
	Datum		 stream_d;
	AppendEvent *evs;
	int			 count;
	int64		 current;
	int64		 version;
	bool		 existed;
	PrivScope	 scope;

	count = append_parse_events(events, &evs);

	PreventCommandIfReadOnly("strata.append()");
	PreventCommandIfParallelMode("strata.append()");

	stream_d = CStringGetTextDatum(stream);

	/* the caller may append (EXECUTE): write as the tables' owner */
	priv_enter(&scope);
	SPI_connect();

	/* positions never go back across a failover (before any stream lock) */
	if (api >= STRATA_API_0_6)
		epoch_ensure();

	current = append_lock_stream(stream_d, count, &existed);

	if (append_check_ids(stream, evs, count, expected, check_content,
						 &version))
	{
		/* An idempotent retry: write nothing */
		if (existed)
			append_reset_stream(stream_d, current);
		SPI_finish();
		priv_exit(&scope);
		return version;
	}

	if (!append_expected_matches(expected, current))
		ereport(
			ERROR,
			(errcode(ERRCODE_STRATA_WRONG_EXPECTED_VERSION),
			 errmsg("wrong expected version for stream \"%s\"", stream),
			 errdetail("Expected version %s, actual version " INT64_FORMAT ".",
					   append_expected_text(expected), current),
			 errhint("Reload the stream and decide again, or append "
					 "with expected version NULL (any).")));

	append_insert(stream_d, category, evs, count, current + 1, api);

	SPI_finish();
	priv_exit(&scope);
	return current + count;
}

/*
 * strata.append(stream text, events jsonb, expected_version bigint)
 * RETURNS bigint: append events to a stream atomically and return the
 * stream's new version.  See docs/api.md for the contract.  The body of
 * the entry points below, one per SQL API version.
 */
static Datum
append_entry(FunctionCallInfo fcinfo, StrataApi api)
{
	char *stream;
	char *category;

	strata_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("stream must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("events must not be null")));

	stream = stream_name_arg(PG_GETARG_TEXT_PP(0), &category);
	PG_RETURN_INT64(append_events(stream, category, PG_GETARG_JSONB_P(1),
								  append_expected_arg(fcinfo), api, true));
}

/* strata.append under 0.1.0: no projections yet */
Datum
strata_append(PG_FUNCTION_ARGS)
{
	return append_entry(fcinfo, STRATA_API_0_1);
}

/* under 0.2.0: inline projections, all of them inline, no owners */
Datum
strata_append_0_2(PG_FUNCTION_ARGS)
{
	return append_entry(fcinfo, STRATA_API_0_2);
}

/* under 0.3.0: projections have a mode (inline or async), no owners */
Datum
strata_append_0_3(PG_FUNCTION_ARGS)
{
	return append_entry(fcinfo, STRATA_API_0_3);
}

/* under 0.4.0: projections have owners */
Datum
strata_append_0_4(PG_FUNCTION_ARGS)
{
	return append_entry(fcinfo, STRATA_API_0_4);
}

/* under 0.6.0: a new epoch after a failover (epoch.c) */
Datum
strata_append_0_6(PG_FUNCTION_ARGS)
{
	return append_entry(fcinfo, STRATA_API_0_6);
}

/*
 * Statement trigger on strata.events: events are immutable, so UPDATE,
 * DELETE and TRUNCATE are refused.
 */
Datum
strata_forbid_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char	*op = "change";

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(
			ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("strata._forbid_change() must be called as a trigger")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_STRATA_IMMUTABLE_EVENTS),
			 errmsg("%s of %s.%s is not allowed", op,
					get_namespace_name(
						RelationGetNamespace(trigdata->tg_relation)),
					RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("Events are immutable: the event log only grows."),
			 errhint("Append a compensating event instead.")));
	PG_RETURN_NULL();
}
