/*-------------------------------------------------------------------------
 *
 * read.c
 *	  Reads of the event log.
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

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "strata.h"
#include "read.h"
#include "registry.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(strata_read_stream);
PG_FUNCTION_INFO_V1(strata_read_all);
PG_FUNCTION_INFO_V1(strata_read_category);

static SPIPlanPtr plan_stream = NULL;
static SPIPlanPtr plan_all = NULL;
static SPIPlanPtr plan_category = NULL;

static int32
read_max_count_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		max_count = PG_GETARG_INT32(argno);

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
	int64		value = PG_GETARG_INT64(argno);

	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
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

/*
 * Run 'plan' and return its rows as the function's result set.  With a
 * snapshot, the plan runs under it instead of the current one.
 */
static Datum
read_run(FunctionCallInfo fcinfo, SPIPlanPtr plan, Datum *args,
		 Snapshot snapshot)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			ret;

	InitMaterializedSRF(fcinfo, 0);

	if (snapshot != InvalidSnapshot)
		ret = SPI_execute_snapshot(plan, args, NULL, snapshot,
								   InvalidSnapshot, true, false, 0);
	else
		ret = SPI_execute_plan(plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read events: %s", SPI_result_code_string(ret));

	if (SPI_tuptable->tupdesc->natts != rsinfo->setDesc->natts)
		elog(ERROR, "strata.events has %d columns, its row type %d",
			 SPI_tuptable->tupdesc->natts, rsinfo->setDesc->natts);

	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);

	return (Datum) 0;
}

/*
 * strata.read_stream(stream text, from_version bigint, max_count int):
 * the stream's events from a version on, by version.
 */
Datum
strata_read_stream(PG_FUNCTION_ARGS)
{
	Oid			argtypes[3] = {TEXTOID, INT8OID, INT4OID};
	Datum		args[3];
	char	   *stream;

	strata_require_preload();
	stream = stream_name_arg(PG_GETARG_TEXT_PP(0), NULL);
	args[0] = CStringGetTextDatum(stream);
	args[1] = Int64GetDatum(read_nonnegative_arg(fcinfo, 1, "from_version"));
	args[2] = Int32GetDatum(read_max_count_arg(fcinfo, 2));

	SPI_connect();
	read_run(fcinfo,
			 strata_prepare(&plan_stream,
							"SELECT * FROM strata.events "
							"WHERE stream OPERATOR(pg_catalog.=) $1 "
							"AND version OPERATOR(pg_catalog.>=) $2 "
							"ORDER BY version LIMIT $3",
							3, argtypes),
			 args, InvalidSnapshot);
	SPI_finish();
	return (Datum) 0;
}

/*
 * strata.read_all(after_position bigint, max_count int): committed
 * events after a position, in position order, up to the horizon.
 */
Datum
strata_read_all(PG_FUNCTION_ARGS)
{
	Oid			argtypes[3] = {INT8OID, INT8OID, INT4OID};
	Datum		args[3];
	Snapshot	snapshot;

	strata_require_preload();
	args[0] = Int64GetDatum(read_nonnegative_arg(fcinfo, 0, "after_position"));
	args[2] = Int32GetDatum(read_max_count_arg(fcinfo, 1));
	read_refuse_in_recovery("strata.read_all()");

	SPI_connect();
	args[1] = Int64GetDatum(registry_read_horizon(&snapshot));
	read_run(fcinfo,
			 strata_prepare(&plan_all,
							"SELECT * FROM strata.events "
							"WHERE position OPERATOR(pg_catalog.>) $1 "
							"AND position OPERATOR(pg_catalog.<) $2 "
							"ORDER BY position LIMIT $3",
							3, argtypes),
			 args, snapshot);
	UnregisterSnapshot(snapshot);
	SPI_finish();
	return (Datum) 0;
}

/*
 * strata.read_category(category text, after_position bigint, max_count
 * int): like read_all, for the streams of one category.
 */
Datum
strata_read_category(PG_FUNCTION_ARGS)
{
	Oid			argtypes[4] = {TEXTOID, INT8OID, INT8OID, INT4OID};
	Datum		args[4];
	Snapshot	snapshot;
	text	   *arg = PG_GETARG_TEXT_PP(0);
	char	   *category;

	strata_require_preload();
	category = stream_validate_name(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg),
									"category", STREAM_NAME_MAX_BYTES);
	if (strchr(category, '-') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid category \"%s\"", category),
				 errdetail("A category is the part of a stream name before "
						   "the first '-', so it never contains '-'."),
				 errhint("To read one stream, use strata.read_stream.")));
	args[0] = CStringGetTextDatum(category);
	args[1] = Int64GetDatum(read_nonnegative_arg(fcinfo, 1, "after_position"));
	args[3] = Int32GetDatum(read_max_count_arg(fcinfo, 2));
	read_refuse_in_recovery("strata.read_category()");

	SPI_connect();
	args[2] = Int64GetDatum(registry_read_horizon(&snapshot));
	read_run(fcinfo,
			 strata_prepare(&plan_category,
							"SELECT * FROM strata.events "
							"WHERE category OPERATOR(pg_catalog.=) $1 "
							"AND position OPERATOR(pg_catalog.>) $2 "
							"AND position OPERATOR(pg_catalog.<) $3 "
							"ORDER BY position LIMIT $4",
							4, argtypes),
			 args, snapshot);
	UnregisterSnapshot(snapshot);
	SPI_finish();
	return (Datum) 0;
}
