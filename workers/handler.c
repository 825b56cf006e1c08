/*-------------------------------------------------------------------------
 *
 * handler.c
 *	  The "strata handler" processes: they run subscriptions' handlers, a
 *	  job at a time, for the database's worker (worker_dispatch.c).
 *
 * The worker decodes the WAL and hands each handler process a job in its
 * shared slot (worker_internal.h): the events of one subscription, as
 * positions in commit order (a stream job), or one step of catching up
 * from strata.events.  The handler process reads the subscription and
 * the events' rows itself, calls the handler on each event as the
 * subscription's owner (usercall.c), in transactions of up to
 * strata.worker_batch_size events that also move the subscription's
 * progress, and tells the worker how the job ended.  A handler that
 * sleeps holds its own process and subscription, never the worker or
 * the other subscriptions of the database.
 *
 * This file has the process's main loop, taking jobs and reading their
 * events; handler_apply.c runs the handler over them (batches, progress,
 * failures), handler_catchup.c catches a subscription up from the table,
 * handler_call.c watches each call (timeout, cancellation).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "strata.h"
#include "define.h"
#include "events.h"
#include "settings.h"
#include "handler.h"
#include "worker_dispatch.h"

bool handler_process = false;

WorkerSlot	  *handler_db; /* the database's slot */
HandlerSlot	  *handler_me; /* this process's slot in it */
MemoryContext  job_cxt;	   /* the job: its subscription, its events */
MemoryContext  event_cxt;  /* one handler call */
TupleDesc	   events_desc = NULL;
HandlerJobKind job_kind;
XLogRecPtr	   job_live_lsn;
char		   job_stream_id[WORKER_STREAM_ID_LEN];
TimestampTz	   job_first_failed_at;

/* The worker that started this process */
static HandlerStartInfo started_by;

/*
 * The events of a stream job's runs, with the rows of those 'sub' takes
 * (its categories and types), in the job's (commit) order: the runs in
 * their order, each run's positions ascending.  The worker waited until
 * their transactions were visible before it made the job, and events
 * never change, so these are the rows it decoded: every position of a
 * run must have one.  The positions are looked up one by one (at most
 * HANDLER_JOB_MAX of them), not by range: a join on ranges has no row
 * estimate the planner can make, and the estimate it falls back to would
 * have it compile the query (JIT) for every job once the table is large.
 * In a transaction, connected to SPI.
 */
static WorkerEvent *
handler_read_events(WorkerSub *sub, HandlerRun *runs, int nruns, int *nevents)
{
	static SPIPlanPtr plan = NULL;
	WorkerEvent		 *list;
	Datum			 *positions;
	TupleDesc		  desc;
	MemoryContext	  old;
	int				  n = 0;

	for (int r = 0; r < nruns; r++)
		n += runs[r].count;
	if (n > HANDLER_JOB_MAX)
		elog(ERROR, "a strata worker's job has %d events", n);
	*nevents = n;
	list = MemoryContextAllocZero(job_cxt, sizeof(WorkerEvent) * Max(n, 1));
	if (n == 0)
		return list;
	positions = palloc(sizeof(Datum) * n);
	n = 0;
	for (int r = 0; r < nruns; r++)
		for (int k = 0; k < runs[r].count; k++, n++)
		{
			WorkerEvent *ev = &list[n];

			ev->position = runs[r].first + k;
			ev->end_lsn = runs[r].end_lsn;
			ev->index = runs[r].index + k;
			ev->nevents = runs[r].nevents;
			positions[n] = Int64GetDatum(ev->position);
		}

	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"SELECT e.* FROM pg_catalog.unnest($1::pg_catalog.int8[]) "
				"WITH ORDINALITY AS u(position, n) JOIN strata.events e "
				"ON e.position OPERATOR(pg_catalog.=) u.position "
				"ORDER BY u.n",
				1, (Oid[]){INT8ARRAYOID}),
			(Datum[]){PointerGetDatum(construct_array(
				positions, n, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE))},
			NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.events");
	if (SPI_processed != (uint64) n)
		elog(ERROR,
			 "%d events of a strata worker's job are not in strata.events",
			 n - (int) SPI_processed);

	desc = SPI_tuptable->tupdesc;
	old = MemoryContextSwitchTo(job_cxt);
	for (int i = 0; i < n; i++)
	{
		WorkerEvent *ev = &list[i];
		HeapTuple	 tup = SPI_tuptable->vals[i];
		bool		 isnull;

		if (DatumGetInt64(SPI_getbinval(tup, desc, Anum_events_position,
										&isnull)) != ev->position)
			elog(ERROR, "a strata worker's job read the wrong event");
		ev->category = SPI_getvalue(tup, desc, Anum_events_category);
		ev->type = SPI_getvalue(tup, desc, Anum_events_type);
		/* only the rows of events the handler is called on are kept */
		if (define_in_list(sub->categories, sub->ncategories, ev->category) &&
			define_in_list(sub->types, sub->ntypes, ev->type))
			ev->tuple = heap_copytuple(tup);
	}
	MemoryContextSwitchTo(old);
	return list;
}

/*
 * Run the job of 'name': read the subscription (and, for a stream job,
 * the events), check that the worker made the job for what the
 * subscription still is (its generation, active, in the phase the job is
 * for), then run it.
 */
static HandlerJobResult
handler_run_job(const char *name, int64 generation, HandlerRun *runs,
				int nruns)
{
	WorkerSub	   **found;
	WorkerSub		*sub = NULL;
	WorkerEvent		*list = NULL;
	int				 n = 0;
	HandlerJobResult result;

	worker_begin();
	if (!worker_extension_present())
	{
		PopActiveSnapshot();
		worker_commit();
		return RESULT_HALTED;
	}
	SPI_connect();
	handler_sample();
	if (subcat_load(name, job_stream_id, job_cxt, &found) == 1 &&
		found[0]->generation == generation && found[0]->state == 'a' &&
		found[0]->live == (job_kind == JOB_STREAM))
	{
		sub = found[0];
		if (job_kind == JOB_STREAM)
			list = handler_read_events(sub, runs, nruns, &n);
	}
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	if (sub == NULL)
		return RESULT_HALTED;

	handler_take_killed(sub);
	if (sub->attempts > 0)
		sub->first_failed_at = job_first_failed_at;
	if (job_kind == JOB_CATCHUP)
		result = handler_catchup(sub);
	else
		result =
			handler_run_list(sub, list, n) ? RESULT_THROUGH : RESULT_HALTED;
	job_first_failed_at = sub->attempts > 0 ? sub->first_failed_at : 0;
	return result;
}

/*
 * At exit: a job under way ends as halted, the call a stopped handler
 * ignored its cancellation in is left for the next job of its
 * subscription, the slot is free again, and the worker is told.
 */
static void
handler_detach(int code, Datum arg)
{
	Latch *latch;

	SpinLockAcquire(&handler_me->mutex);
	if (handler_me->killed)
	{
		memcpy(handler_me->left_sub, handler_me->killed_sub,
			   sizeof(handler_me->left_sub));
		handler_me->left_position = handler_me->killed_position;
		handler_me->left_generation = handler_me->killed_generation;
		handler_me->left = true;
		handler_me->killed = false;
	}
	if (handler_me->state == JOB_ASSIGNED || handler_me->state == JOB_RUNNING)
	{
		handler_me->result = RESULT_HALTED;
		handler_me->state = JOB_DONE;
	}
	handler_me->running[0] = '\0';
	handler_me->pid = 0;
	handler_me->latch = NULL;
	SpinLockRelease(&handler_me->mutex);
	latch = handler_db->latch;
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Take the job the worker assigned, if any: copy it out of the slot into
 * job_cxt.  Returns its number of runs, or -1 when there is none.
 */
static int
handler_take_job(char *name, int64 *generation, HandlerRun **runs)
{
	int n = -1;

	SpinLockAcquire(&handler_me->mutex);
	if (handler_me->state == JOB_ASSIGNED)
	{
		handler_me->state = JOB_RUNNING;
		strlcpy(name, handler_me->sub, WORKER_SUB_NAME_LEN);
		*generation = handler_me->generation;
		job_kind = handler_me->kind;
		job_live_lsn = handler_me->live_lsn;
		job_first_failed_at = handler_me->first_failed_at;
		strlcpy(job_stream_id, handler_me->stream_id, sizeof(job_stream_id));
		n = handler_me->nruns;
	}
	SpinLockRelease(&handler_me->mutex);
	if (n > 0)
	{
		*runs = MemoryContextAlloc(job_cxt, sizeof(HandlerRun) * n);
		memcpy(*runs, handler_me->runs, sizeof(HandlerRun) * n);
	}
	return n;
}

/*
 * Does the worker that started this process still run?  A worker that
 * exited and a new one of the slot are told apart by the slot's
 * generation, bumped by every worker that claims the slot.
 */
static bool
handler_worker_alive(void)
{
	bool alive;

	SpinLockAcquire(&handler_db->mutex);
	alive = handler_db->pid == started_by.worker_pid &&
			handler_db->generation == started_by.worker_generation;
	SpinLockRelease(&handler_db->mutex);
	return alive;
}

/*
 * Take this process's handler slot: only while its worker still runs (so
 * that a process a previous worker started, late to start, never takes a
 * slot the current worker's process should have) and if no other process
 * holds it.
 */
static bool
handler_claim(void)
{
	bool ok = false;

	if (!handler_worker_alive())
		return false;
	SpinLockAcquire(&handler_me->mutex);
	if (handler_me->pid == 0)
	{
		handler_me->pid = MyProcPid;
		handler_me->latch = MyLatch;
		handler_me->worker_generation = started_by.worker_generation;
		handler_me->state = JOB_NONE; /* nothing of an earlier worker's jobs */
		ok = true;
	}
	SpinLockRelease(&handler_me->mutex);
	/* a worker gone between the two is seen at the top of the main loop */
	return ok;
}

/*
 * Main of a handler process: take the jobs of the worker that started it,
 * one at a time, until that worker is gone.
 */
void
strata_handler_main(Datum arg)
{
	int slot_index = DatumGetInt32(arg) / HANDLER_ARG_BASE;
	int index = DatumGetInt32(arg) % HANDLER_ARG_BASE;

	memcpy(&started_by, MyBgworkerEntry->bgw_extra, sizeof(started_by));
	handler_db = worker_slot(slot_index);
	handler_me = worker_handler_slot(handler_db, index);
	handler_process = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, handler_sigint);
	BackgroundWorkerUnblockSignals();

	job_cxt = AllocSetContextCreate(TopMemoryContext, "strata handler job",
									ALLOCSET_DEFAULT_SIZES);
	event_cxt = AllocSetContextCreate(TopMemoryContext, "strata handler event",
									  ALLOCSET_DEFAULT_SIZES);
	worker_xact_cxt = job_cxt;

	/* only for the worker that started it, and once per slot */
	if (!handler_worker_alive() || handler_db->dropper != 0)
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(handler_db->dbid, InvalidOid, 0);
	if (!handler_claim())
		proc_exit(0);
	on_shmem_exit(handler_detach, (Datum) 0);

	/*
	 * As in the worker: a crash loses the last transactions only whole
	 * (the handlers' effects with the progress that records them); the
	 * worker flushes the WAL before it confirms its slot.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", STRATA_SAFE_SEARCH_PATH, PGC_SUSET,
					PGC_S_OVERRIDE);
	handler_call_init();

	for (;;)
	{
		char			 name[WORKER_SUB_NAME_LEN];
		int64			 generation;
		HandlerRun		*runs = NULL;
		HandlerJobResult result;
		Latch			*latch;
		int				 n;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* its worker is gone: so are its jobs */
		if (!handler_worker_alive())
			proc_exit(0);

		MemoryContextSwitchTo(job_cxt);
		MemoryContextReset(job_cxt);
		n = handler_take_job(name, &generation, &runs);
		if (n < 0)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 HANDLER_NAPTIME_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		PG_TRY();
		{
			result = handler_run_job(name, generation, runs, n);
		}
		PG_CATCH();
		{
			worker_note_failure(handler_db, name, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
		worker_clear_failure(handler_db, name, false);

		/* handlers that appended: flush, so that the worker decodes it now */
		if (worker_self_appended)
		{
			worker_self_appended = false;
			XLogFlush(XactLastCommitEnd);
		}
		SpinLockAcquire(&handler_me->mutex);
		handler_me->result = result;
		handler_me->first_failed_at = job_first_failed_at;
		handler_me->state = JOB_DONE;
		SpinLockRelease(&handler_me->mutex);
		latch = handler_db->latch;
		if (latch != NULL)
			SetLatch(latch);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
}
