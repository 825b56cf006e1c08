/*-------------------------------------------------------------------------
 *
 * read.c
 *	  Reads of the event log.
 *
 * Each read is one forward scan of one index of strata.events, run here
 * rather than through the planner, so it is a range scan whatever the
 * statistics say (a generic plan once chose the primary key and a filter
 * for read_category).
 *
 * read_stream() reads one stream by version under the caller's snapshot:
 * versions of a stream are written in order (each append waits for the
 * previous one), so a stream never shows a gap.
 *
 * read_all() and read_category() read in global position order, where a
 * position can commit after a larger one.  They read under a snapshot
 * taken together with the registry's horizon (registry.c) and return only
 * positions below the horizon, so a consumer that passes the highest
 * position it has seen never skips an event and never sees one twice.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xlog.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "strata.h"
#include "epoch.h"
#include "compat.h"
#include "events.h"
#include "privilege.h"
#include "read.h"
#include "registry.h"
#include "version.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(strata_read_stream);
PG_FUNCTION_INFO_V1(strata_read_all);
PG_FUNCTION_INFO_V1(strata_read_category);
PG_FUNCTION_INFO_V1(strata_read_all_0_6);
PG_FUNCTION_INFO_V1(strata_read_category_0_6);

static int32
read_max_count_arg(FunctionCallInfo fcinfo, int argno)
{
	int32 max_count = PG_GETARG_INT32(argno);

	if (max_count < 1 || max_count > READ_MAX_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be between 1 and %d", READ_MAX_COUNT),
				 errdetail("max_count is %d.", max_count)));
	return max_count;
}

static int64
read_nonnegative_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int64 value = PG_GETARG_INT64(argno);

	if (value < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must not be negative", name),
						errdetail("%s is " INT64_FORMAT ".", name, value)));
	return value;
}

/* The global reads need the primary's registry of in-flight appends. */
static void
read_refuse_in_recovery(const char *func)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot run on a hot standby", func),
				 errdetail("Global positions commit out of order on the "
						   "primary, and a standby cannot tell which "
						   "positions are still in flight there."),
				 errhint("Read the global feed on the primary; "
						 "strata.read_stream works on a standby.")));
}

/* Fill a btree scan key on column 'attno' of index 'index'. */
static void
read_key(ScanKey key, Relation index, AttrNumber attno,
		 StrategyNumber strategy, RegProcedure proc, Datum arg)
{
	ScanKeyEntryInitialize(key, 0, attno, strategy, InvalidOid,
						   index->rd_indcollation[attno - 1], proc, arg);
}

/*
 * Scan index 'indexname' of strata.events forward with 'nkeys' keys built
 * by 'build' and return up to 'max_count' rows as the function's result
 * set.  The caller needs SELECT on strata.events, and row-level security
 * that applies to it there is refused (priv_check_read_events).
 */
static void
read_scan(FunctionCallInfo fcinfo, const char *func, const char *indexname,
		  int max_count, Snapshot snapshot,
		  int (*build)(ScanKey keys, Relation index, Datum *args), Datum *args)
{
	ReturnSetInfo  *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid				relid = strata_relid(EVENTS_RELNAME);
	Relation		rel;
	Relation		index;
	IndexScanDesc	scan;
	TupleTableSlot *slot;
	ScanKeyData		keys[3];
	int				nkeys;
	int				n = 0;

	priv_check_read_events(GetUserId(), func);

	InitMaterializedSRF(fcinfo, 0);

	rel = table_open(relid, AccessShareLock);
	index = index_open(strata_relid(indexname), AccessShareLock);
	nkeys = build(keys, index, args);

	slot = table_slot_create(rel, NULL);
	scan = compat_index_beginscan(rel, index, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (n < max_count &&
		   index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		tuplestore_puttupleslot(rsinfo->setResult, slot);
		n++;
		CHECK_FOR_INTERRUPTS();
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* stream = args[0] AND version >= args[1] on (stream, version) */
static int
read_stream_keys(ScanKey keys, Relation index, Datum *args)
{
	read_key(&keys[0], index, 1, BTEqualStrategyNumber, F_TEXTEQ, args[0]);
	read_key(&keys[1], index, 2, BTGreaterEqualStrategyNumber, F_INT8GE,
			 args[1]);
	return 2;
}

/* position > args[0] AND position < args[1] on (position) */
static int
read_all_keys(ScanKey keys, Relation index, Datum *args)
{
	read_key(&keys[0], index, 1, BTGreaterStrategyNumber, F_INT8GT, args[0]);
	read_key(&keys[1], index, 1, BTLessStrategyNumber, F_INT8LT, args[1]);
	return 2;
}

/* category = args[0] AND position > args[1] AND < args[2] */
static int
read_category_keys(ScanKey keys, Relation index, Datum *args)
{
	read_key(&keys[0], index, 1, BTEqualStrategyNumber, F_TEXTEQ, args[0]);
	read_key(&keys[1], index, 2, BTGreaterStrategyNumber, F_INT8GT, args[1]);
	read_key(&keys[2], index, 2, BTLessStrategyNumber, F_INT8LT, args[2]);
	return 3;
}

/*
 * strata.read_stream(stream text, from_version bigint, max_count int):
 * the stream's events from a version on, by version.
 */
Datum
strata_read_stream(PG_FUNCTION_ARGS)
{
	Datum args[2];
	int32 max_count;

	strata_require_preload();
	args[0] = CStringGetTextDatum(stream_name_arg(PG_GETARG_TEXT_PP(0), NULL));
	args[1] = Int64GetDatum(read_nonnegative_arg(fcinfo, 1, "from_version"));
	max_count = read_max_count_arg(fcinfo, 2);

	read_scan(fcinfo, "strata.read_stream", "events_stream_version_key",
			  max_count, GetActiveSnapshot(), read_stream_keys, args);
	return (Datum) 0;
}

/*
 * strata.read_all(after_position bigint, max_count int): committed
 * events after a position, in position order, below the horizon.  From
 * 0.6.0 a position lost at a failover is refused (epoch.c).
 */
static Datum
read_all_entry(FunctionCallInfo fcinfo, StrataApi api)
{
	Datum	 args[2];
	int32	 max_count;
	Snapshot snapshot;
	int64	 after;

	strata_require_preload();
	after = read_nonnegative_arg(fcinfo, 0, "after_position");
	args[0] = Int64GetDatum(after);
	max_count = read_max_count_arg(fcinfo, 1);
	read_refuse_in_recovery("strata.read_all()");
	if (api >= STRATA_API_0_6)
		epoch_check_cursor(after, "strata.read_all");

	args[1] = Int64GetDatum(registry_read_horizon(&snapshot));
	read_scan(fcinfo, "strata.read_all", "events_pkey", max_count, snapshot,
			  read_all_keys, args);
	UnregisterSnapshot(snapshot);
	return (Datum) 0;
}

/* strata.read_all up to 0.5.0 */
Datum
strata_read_all(PG_FUNCTION_ARGS)
{
	return read_all_entry(fcinfo, STRATA_API_0_1);
}

/* from 0.6.0 */
Datum
strata_read_all_0_6(PG_FUNCTION_ARGS)
{
	return read_all_entry(fcinfo, STRATA_API_0_6);
}

/*
 * strata.read_category(category text, after_position bigint, max_count
 * int): like read_all, for the streams of one category.
 */
static Datum
read_category_entry(FunctionCallInfo fcinfo, StrataApi api)
{
	Datum	 args[3];
	int32	 max_count;
	Snapshot snapshot;
	text	*arg = PG_GETARG_TEXT_PP(0);
	char	*category;
	int64	 after;

	strata_require_preload();
	category =
		stream_validate_category(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg));
	args[0] = CStringGetTextDatum(category);
	after = read_nonnegative_arg(fcinfo, 1, "after_position");
	args[1] = Int64GetDatum(after);
	max_count = read_max_count_arg(fcinfo, 2);
	read_refuse_in_recovery("strata.read_category()");
	if (api >= STRATA_API_0_6)
		epoch_check_cursor(after, "strata.read_category");

	args[2] = Int64GetDatum(registry_read_horizon(&snapshot));
	read_scan(fcinfo, "strata.read_category", "events_category_position_idx",
			  max_count, snapshot, read_category_keys, args);
	UnregisterSnapshot(snapshot);
	return (Datum) 0;
}

/* strata.read_category up to 0.5.0 */
Datum
strata_read_category(PG_FUNCTION_ARGS)
{
	return read_category_entry(fcinfo, STRATA_API_0_1);
}

/* from 0.6.0 */
Datum
strata_read_category_0_6(PG_FUNCTION_ARGS)
{
	return read_category_entry(fcinfo, STRATA_API_0_6);
}
