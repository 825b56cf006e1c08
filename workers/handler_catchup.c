/*-------------------------------------------------------------------------
 *
 * handler_catchup.c
 *	  Catching a subscription up from strata.events in a handler
 *	  process, a batch per job, and its hand-over to the stream once
 *	  what remains fits in one batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "strata.h"
#include "events.h"
#include "progress.h"
#include "settings.h"
#include "subscription.h"
#include "handler.h"

/* Copy rows of strata.events from the last SPI result, skipping processed ones */
static void
worker_collect_rows(WorkerSub *sub, WorkerEvent **list, int *n, int *cap,
					int64 *last)
{
	MemoryContext old = MemoryContextSwitchTo(job_cxt);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool	  isnull;
		int64	  pos = DatumGetInt64(
				SPI_getbinval(tup, desc, Anum_events_position, &isnull));
		WorkerEvent *ev;

		*last = pos;
		if (subscription_processed(&sub->progress, pos))
			continue;
		if (*n == *cap)
		{
			*cap = *cap == 0 ? 256 : *cap * 2;
			*list = *list == NULL
						? palloc(sizeof(WorkerEvent) * *cap)
						: repalloc(*list, sizeof(WorkerEvent) * *cap);
		}
		ev = &(*list)[(*n)++];
		ev->position = pos;
		ev->tuple = heap_copytuple(tup);
		ev->category = SPI_getvalue(tup, desc, Anum_events_category);
		ev->type = SPI_getvalue(tup, desc, Anum_events_type);
		ev->end_lsn = InvalidXLogRecPtr;
		ev->index = 0;
		ev->nevents = 0;
	}
	MemoryContextSwitchTo(old);
}

/* When the handler process's activity last showed the progress */
static TimestampTz catchup_reported_at = 0;

/* How often the activity shows it (a catch-up step may take long) */
#define CATCHUP_REPORT_MS 1000

/* The activity line of a catch-up of 'sub' */
static void
handler_catchup_report(WorkerSub *sub)
{
	char what[NAMEDATALEN + 160];

	snprintf(what, sizeof(what), "strata subscription \"%s\" catching up",
			 sub->name);
	pgstat_report_activity(STATE_RUNNING, progress_describe(what));
	catchup_reported_at = GetCurrentTimestamp();
}

/*
 * The catch-up of 'sub' got through the event at 'position' (processed or
 * not its): strata.progress shows it at once, the activity once a second.
 */
void
handler_catchup_tick(WorkerSub *sub, int64 position)
{
	static int n = 0;

	progress_advance(position, 1);
	if (++n % 256 == 0 &&
		TimestampDifferenceExceeds(catchup_reported_at, GetCurrentTimestamp(),
								   CATCHUP_REPORT_MS))
		handler_catchup_report(sub);
}

/*
 * Start or resume reporting the catch-up of 'sub', whose step reads up to
 * 'settled': a new catch-up (not an entry left by an earlier step) is
 * logged with where it starts and about how much it has to do.
 */
static void
handler_catchup_begin(WorkerSub *sub, int64 settled)
{
	int64			 from = sub->progress.watermark;
	int64			 left = Max(settled - from, 0);
	ProgressSnapshot p;

	if (progress_begin(PROGRESS_CATCHUP, sub->name, sub->owner, from, settled,
					   left) &&
		left > 0)
		ereport(LOG, (errmsg("strata subscription \"%s\" catching up from "
							 "strata.events at position " INT64_FORMAT
							 ": about " INT64_FORMAT
							 " events up to position " INT64_FORMAT,
							 sub->name, from, left, settled)));
	else if (progress_current(&p))
		progress_set_target(settled,
							p.done + Max(settled - Max(p.position, from), 0));
	handler_catchup_report(sub);
}

/*
 * The catch-up of 'sub' handed over to the WAL at 'lsn': log what it did,
 * and its entry goes.
 */
static void
handler_catchup_live(WorkerSub *sub, XLogRecPtr lsn)
{
	ProgressSnapshot p;

	/* one that had nothing to do (start_from 'now') was not logged */
	if (progress_current(&p) && p.total > 0)
	{
		double secs =
			(double) (GetCurrentTimestamp() - p.started_at) / USECS_PER_SEC;

		ereport(
			LOG,
			(errmsg("strata subscription \"%s\" caught up: " INT64_FORMAT
					" events from position " INT64_FORMAT
					" in %.1f s (%.0f events/s); it follows the WAL "
					"from %X/%X",
					sub->name, p.done, p.start_position, secs,
					secs > 0 ? p.done / secs : 0.0, LSN_FORMAT_ARGS(lsn))));
	}
	progress_end();
}

/*
 * One step of a catching-up subscription.  Reads, under a snapshot taken
 * with the registry's horizon, up to a batch of settled events past its
 * watermark and runs them.  When fewer than a batch remain, it also runs
 * every event visible in that snapshot past them and hands the
 * subscription over to the stream at its current end: every transaction
 * that ended before that point is visible in the snapshot (the round
 * waited for them), and every later one comes through the stream, where
 * the positions already processed are skipped.  The stream's end is the
 * job's live_lsn: the worker made the job after it had waited until every
 * transaction it decoded up to there was visible, and this snapshot is
 * taken after that.  RESULT_THROUGH when a step was made (more remains),
 * RESULT_LIVE after the hand-over, RESULT_HALTED when it stopped.
 */
HandlerJobResult
handler_catchup(WorkerSub *sub)
{
	static SPIPlanPtr plan_settled = NULL;
	static SPIPlanPtr plan_rest = NULL;
	Oid				  argtypes[3] = {INT8OID, INT8OID, INT8OID};
	Datum			  args[3];
	Snapshot		  snapshot;
	int64			  settled;
	int64			  last = 0;
	WorkerEvent		 *list = NULL;
	int				  n = 0;
	int				  cap = 0;
	bool			  final;
	bool			  go_live = false;
	HandlerJobResult  result;

	worker_begin();
	SPI_connect();
	settled = subscription_settled(&snapshot);
	handler_catchup_begin(sub, settled);
	args[0] = Int64GetDatum(sub->progress.watermark);
	args[1] = Int64GetDatum(settled);
	args[2] = Int64GetDatum(worker_batch_size);
	if (SPI_execute_snapshot(
			strata_prepare(&plan_settled,
						   "SELECT " EVENTS_COLUMNS
						   " FROM strata.events WHERE position "
						   "OPERATOR(pg_catalog.>=) $1 AND position "
						   "OPERATOR(pg_catalog.<) $2 ORDER BY position "
						   "LIMIT $3",
						   3, argtypes),
			args, NULL, snapshot, InvalidSnapshot, true, false,
			0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.events");
	final = SPI_processed < (uint64) worker_batch_size;
	worker_collect_rows(sub, &list, &n, &cap, &last);
	if (final)
	{
		Oid	  rest_types[3] = {INT8OID, INT8MULTIRANGEOID, INT8OID};
		Datum rest_args[3];

		rest_args[0] = Int64GetDatum(settled);
		rest_args[1] = subscription_delivered_datum(&sub->progress);
		rest_args[2] = Int64GetDatum(worker_batch_size);
		/*
		 * At most a batch of it: more (a long transaction holding the
		 * horizon down while others commit) is run a batch per round, and
		 * the hand-over waits until the rest fits in one.
		 */
		if (SPI_execute_snapshot(
				strata_prepare(&plan_rest,
							   "SELECT " EVENTS_COLUMNS
							   " FROM strata.events WHERE position "
							   "OPERATOR(pg_catalog.>=) $1 AND NOT $2 "
							   "OPERATOR(pg_catalog.@>) position "
							   "ORDER BY position LIMIT $3",
							   3, rest_types),
				rest_args, NULL, snapshot, InvalidSnapshot, true, false,
				0) != SPI_OK_SELECT)
			elog(ERROR, "could not read strata.events");
		go_live = SPI_processed < (uint64) worker_batch_size;
		worker_collect_rows(sub, &list, &n, &cap, &last);
	}
	UnregisterSnapshot(snapshot);
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();

	if (!handler_run_list(sub, list, n))
		result = RESULT_HALTED;
	else if (!final || !go_live)
		result = handler_commit_progress(sub, final ? settled : last + 1,
										 false, InvalidXLogRecPtr)
					 ? RESULT_THROUGH
					 : RESULT_HALTED;
	else
		result = handler_commit_progress(sub, settled, true, job_live_lsn)
					 ? RESULT_LIVE
					 : RESULT_HALTED;

	/* the next step goes on from here, maybe in another process */
	if (result == RESULT_LIVE)
		handler_catchup_live(sub, job_live_lsn);
	else
		progress_detach();
	return result;
}
