/*-------------------------------------------------------------------------
 *
 * workers.c
 *	  The workers' side of the seam (src/workers.h): their shared memory
 *	  and its slots, the wake-ups and cancellations that backends send
 *	  them at commit, strata.wait_for's sleep, the stop before DROP
 *	  DATABASE, and the SQL functions strata._worker_notify and
 *	  strata._worker_error.
 *
 * Shared memory holds one WorkerSlot per database served (at most
 * strata.max_workers) and, after them, strata.handler_workers
 * HandlerSlots per database slot.  The launcher assigns database slots
 * under WorkerShared.lock; everything a backend sets for a worker to
 * find is an atomic flag or a latch, so that a commit never waits for a
 * worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "compat.h"
#include "health.h"
#include "settings.h"
#include "workers.h"
#include "worker_internal.h"

/* How long DROP DATABASE waits for the database's worker to exit */
#define DROP_WAIT_MS 30000

/* On a standby, how often strata.wait_for looks at the progress again */
#define WAIT_POLL_MS 10

PG_FUNCTION_INFO_V1(strata_worker_notify);
PG_FUNCTION_INFO_V1(strata_worker_error);
PG_FUNCTION_INFO_V1(strata_worker_status);

WorkerShared *worker_shared = NULL;
bool		  worker_self_appended = false;

/* This backend's pending wake-ups at commit, and its DROP DATABASE */
static bool		   notify_at_commit = false;
static bool		   notify_launcher = false;
static List		  *cancel_at_commit = NIL; /* in TopTransactionContext */
static WorkerSlot *dropping_slot = NULL;
static bool		   xact_callback_set = false;

/* ---------- shared memory ---------- */

/* The slots, then the handler processes' slots */
Size
workers_shmem_size(void)
{
	Size size = add_size(offsetof(WorkerShared, slots),
						 mul_size(worker_max_workers, sizeof(WorkerSlot)));

	size = MAXALIGN(size);
	return add_size(
		size, mul_size(mul_size(worker_max_workers, worker_handler_workers),
					   sizeof(HandlerSlot)));
}

/* From the library's shmem_request_hook: space and the slots' lock */
void
workers_shmem_request(void)
{
	RequestAddinShmemSpace(workers_shmem_size());
	RequestNamedLWLockTranche("strata workers", 1);
}

/* From the library's shmem_startup_hook, under AddinShmemInitLock */
void
workers_shmem_init(void)
{
	bool found;

	worker_shared =
		ShmemInitStruct("strata workers", workers_shmem_size(), &found);
	if (found)
		return;
	worker_shared->lock = &(GetNamedLWLockTranche("strata workers"))->lock;
	worker_shared->launcher_latch = NULL;
	worker_shared->nslots = worker_max_workers;
	worker_shared->nhandlers = worker_handler_workers;
	worker_shared->handlers =
		(HandlerSlot *) ((char *) worker_shared +
						 MAXALIGN(offsetof(WorkerShared, slots) +
								  sizeof(WorkerSlot) * worker_max_workers));
	for (int i = 0; i < worker_max_workers; i++)
	{
		WorkerSlot *slot = &worker_shared->slots[i];

		memset(slot, 0, sizeof(WorkerSlot));
		ConditionVariableInit(&slot->progress);
		SpinLockInit(&slot->mutex);
		pg_atomic_init_u32(&slot->notified, 0);
		pg_atomic_init_u32(&slot->changed, 0);
		pg_atomic_init_u32(&slot->async_wake, 0);
	}
	for (int i = 0; i < worker_max_workers * worker_handler_workers; i++)
	{
		HandlerSlot *hs = &worker_shared->handlers[i];

		memset(hs, 0, offsetof(HandlerSlot, runs));
		SpinLockInit(&hs->mutex);
	}
}

/* Register the launcher; at server start, while preloading */
void
workers_register(void)
{
	BackgroundWorker bgw;

	if (worker_max_workers == 0)
		return;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags =
		BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "strata");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "strata_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "strata launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "strata launcher");
	RegisterBackgroundWorker(&bgw);
}

/* ---------- the slots ---------- */

/* The slot of a database, or NULL */
WorkerSlot *
worker_slot_for(Oid dbid)
{
	if (worker_shared == NULL)
		return NULL;
	for (int i = 0; i < worker_shared->nslots; i++)
		if (worker_shared->slots[i].dbid == dbid)
			return &worker_shared->slots[i];
	return NULL;
}

WorkerSlot *
worker_slot(int index)
{
	Assert(worker_shared != NULL && index >= 0 &&
		   index < worker_shared->nslots);
	return &worker_shared->slots[index];
}

int
worker_slot_index(WorkerSlot *slot)
{
	return (int) (slot - worker_shared->slots);
}

/* The handler slot 'index' (0 .. strata.handler_workers - 1) of a slot */
HandlerSlot *
worker_handler_slot(WorkerSlot *slot, int index)
{
	Assert(index >= 0 && index < worker_shared->nhandlers);
	return &worker_shared
				->handlers[worker_slot_index(slot) * worker_shared->nhandlers +
						   index];
}

/* Does a handler process of 'slot' still run? */
bool
worker_handlers_running(WorkerSlot *slot)
{
	for (int i = 0; i < worker_shared->nhandlers; i++)
		if (worker_handler_slot(slot, i)->pid != 0)
			return true;
	return false;
}

/*
 * A starting worker takes its slot: not while its database is being
 * dropped, nor while another worker of the slot runs (a launcher
 * restarted after an error has no handles and may start a second one).
 * Its new generation tells its handler processes from those of an
 * earlier worker of the slot.
 */
bool
worker_claim(WorkerSlot *slot)
{
	bool ok = false;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	if (slot->dropper == 0 && slot->pid == 0)
	{
		SpinLockAcquire(&slot->mutex);
		slot->pid = MyProcPid;
		slot->latch = MyLatch;
		slot->generation++;
		SpinLockRelease(&slot->mutex);
		ok = true;
	}
	LWLockRelease(worker_shared->lock);
	return ok;
}

/* A worker that exits gives its slot back (if it is still its own). */
void
worker_release(WorkerSlot *slot)
{
	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		SpinLockAcquire(&slot->mutex);
		slot->pid = 0;
		slot->latch = NULL;
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(worker_shared->lock);
}

/*
 * A worker found no extension: the launcher leaves the database alone,
 * unless a CREATE EXTENSION committed meanwhile.
 */
void
worker_mark_absent(WorkerSlot *slot)
{
	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u32(&slot->notified) == 0)
		slot->absent = true;
	LWLockRelease(worker_shared->lock);
}

static void
worker_wake_launcher(void)
{
	Latch *latch = worker_shared ? worker_shared->launcher_latch : NULL;

	if (latch != NULL)
		SetLatch(latch);
}

/* ---------- what backends ask ---------- */

/*
 * Wake the worker of a database, if one runs: called at the commit of
 * every transaction that appended, so it must stay cheap and lock-free.
 * A latch pointer read while its worker exits only costs a spurious
 * wake-up of whatever process owns that latch next.
 */
void
workers_wake(Oid dbid)
{
	if (worker_shared == NULL)
		return;
	for (int i = 0; i < worker_shared->nslots; i++)
	{
		WorkerSlot *slot = &worker_shared->slots[i];
		Latch	   *latch = slot->latch;

		if (slot->dbid == dbid && latch != NULL)
		{
			if (slot->pid == MyProcPid || handler_process)
				worker_self_appended = true;
			else if (synchronous_commit == SYNCHRONOUS_COMMIT_OFF)
				pg_atomic_write_u32(&slot->async_wake, 1);
			SetLatch(latch);
		}
	}
}

/*
 * After the commit of a pause or an unsubscribe: if one of this
 * database's handler processes is running the handler of one of 'names'
 * now, interrupt it (the process then finds the subscription changed,
 * rolls the batch back and does not count the interruption as a
 * failure).  The signal is sent with no lock held; a signal that arrives
 * after that call ended interrupts nothing (see handler_call.c).
 */
static void
worker_cancel_handlers(List *names)
{
	WorkerSlot *slot = worker_slot_for(MyDatabaseId);

	if (slot == NULL)
		return;
	for (int i = 0; i < worker_shared->nhandlers; i++)
	{
		HandlerSlot *hs = worker_handler_slot(slot, i);
		pid_t		 pid = 0;
		ListCell	*lc;

		SpinLockAcquire(&hs->mutex);
		foreach (lc, names)
			if (hs->running[0] != '\0' &&
				strcmp(hs->running, (char *) lfirst(lc)) == 0)
			{
				hs->cancel_running = true;
				pid = hs->pid;
			}
		SpinLockRelease(&hs->mutex);
		if (pid != 0)
			(void) kill(pid, SIGINT);
	}
}

/*
 * End of a transaction of this backend: deliver the pending wake-up of a
 * committed CREATE EXTENSION or subscription change, and let the launcher
 * restart the worker of a database whose DROP DATABASE has ended (if it
 * failed; if it succeeded the launcher frees the slot).
 */
static void
worker_xact_callback(XactEvent event, void *arg)
{
	/*
	 * A prepared transaction commits later, maybe in another session, which
	 * will not wake anyone; what was pending here (in TopTransactionContext,
	 * about to go) is dropped.
	 */
	if (event == XACT_EVENT_PREPARE)
	{
		notify_at_commit = false;
		notify_launcher = false;
		cancel_at_commit = NIL;
		return;
	}
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PARALLEL_ABORT)
		return;

	if (notify_at_commit && event == XACT_EVENT_COMMIT &&
		worker_shared != NULL)
	{
		WorkerSlot *slot;

		LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
		slot = worker_slot_for(MyDatabaseId);
		if (slot != NULL)
		{
			pg_atomic_write_u32(&slot->changed, 1);
			if (notify_launcher)
			{
				slot->absent = false;
				pg_atomic_write_u32(&slot->notified, 1);
			}
		}
		LWLockRelease(worker_shared->lock);
		workers_wake(MyDatabaseId);
		if (notify_launcher)
			worker_wake_launcher();
	}
	notify_at_commit = false;
	notify_launcher = false;

	if (cancel_at_commit != NIL && event == XACT_EVENT_COMMIT &&
		worker_shared != NULL)
		worker_cancel_handlers(cancel_at_commit);
	cancel_at_commit = NIL;

	if (dropping_slot != NULL)
	{
		LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
		if (dropping_slot->dropper == MyProcPid)
			dropping_slot->dropper = 0;
		LWLockRelease(worker_shared->lock);
		dropping_slot = NULL;
		worker_wake_launcher();
	}
}

static void
worker_set_xact_callback(void)
{
	if (!xact_callback_set)
	{
		RegisterXactCallback(worker_xact_callback, NULL);
		xact_callback_set = true;
	}
}

/*
 * Wake this database's worker when this transaction commits: its
 * subscriptions changed.  (strata._worker_notify also wakes the launcher.)
 */
void
workers_wake_at_commit(void)
{
	worker_set_xact_callback();
	notify_at_commit = true;
}

/*
 * When this transaction commits, interrupt the handler of 'subscription'
 * if one of this database's handler processes is running it: it was
 * paused or dropped.
 */
void
workers_cancel_at_commit(const char *subscription)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	worker_set_xact_callback();
	cancel_at_commit = lappend(cancel_at_commit, pstrdup(subscription));
	MemoryContextSwitchTo(old);
}

/*
 * strata.wait_for's sleep: until reached(arg) or 'deadline'.  On the
 * primary it sleeps on the worker's condition variable, broadcast after
 * each transaction that moved a checkpoint (at most a second at a time,
 * in case the worker is restarting); on a standby, where the progress
 * arrives by replication and nothing can wake it, it polls.
 */
bool
workers_wait(bool (*reached)(void *arg), void *arg, TimestampTz deadline)
{
	WorkerSlot *slot;
	bool		done;

	slot = RecoveryInProgress() ? NULL : worker_slot_for(MyDatabaseId);
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	for (;;)
	{
		TimestampTz now;
		long		secs;
		int			usecs;
		long		left;

		done = reached(arg);
		now = GetCurrentTimestamp();
		if (done || now >= deadline)
			break;
		TimestampDifference(now, deadline, &secs, &usecs);
		left = secs * 1000 + usecs / 1000 + 1;
		if (slot != NULL)
			(void) ConditionVariableTimedSleep(
				&slot->progress, Min(left, 1000), PG_WAIT_EXTENSION);
		else
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, WAIT_POLL_MS), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (slot != NULL)
		ConditionVariableCancelSleep();
	pgstat_report_wait_end();
	return done;
}

/* Copy the failure record of 'slot' (failures 0 when none) */
static int
worker_failure(WorkerSlot *slot, char *error, char *sub, TimestampTz *at)
{
	int failures;

	SpinLockAcquire(&slot->mutex);
	failures = slot->failures;
	memcpy(error, slot->last_error, WORKER_ERROR_LEN);
	memcpy(sub, slot->failed_sub, WORKER_SUB_NAME_LEN);
	*at = slot->last_error_at;
	SpinLockRelease(&slot->mutex);
	error[WORKER_ERROR_LEN - 1] = '\0';
	sub[WORKER_SUB_NAME_LEN - 1] = '\0';
	return failures;
}

char *
workers_trouble(void)
{
	WorkerSlot *slot;
	char		error[WORKER_ERROR_LEN];
	char		sub[WORKER_SUB_NAME_LEN];
	TimestampTz at;

	if (RecoveryInProgress() || worker_shared == NULL)
		return NULL;
	slot = worker_slot_for(MyDatabaseId);
	if (slot == NULL || slot->pid == 0)
		return pstrdup("no strata worker runs for this database");
	if (worker_failure(slot, error, sub, &at) == 0)
		return NULL;
	if (sub[0] != '\0')
		return psprintf("the strata worker fails to run subscription "
						"\"%s\": %s",
						sub, error);
	return psprintf("the strata worker of this database is failing: %s",
					error);
}

/*
 * Before DROP DATABASE: stop the database's worker (which holds a
 * connection and a replication slot there, either of which makes DROP
 * DATABASE fail) and keep the launcher from starting it again until this
 * transaction ends.
 */
void
workers_before_drop_database(const char *dbname)
{
	Oid			dbid = get_database_oid(dbname, true);
	WorkerSlot *slot;
	pid_t		pid = 0;
	TimestampTz deadline;

	if (!OidIsValid(dbid) || worker_shared == NULL)
		return;
	/* only for a role that may drop it: dropdb checks that later */
	if (!compat_database_owner(dbid, GetUserId()))
		return;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	slot = worker_slot_for(dbid);
	if (slot != NULL)
	{
		slot->dropper = MyProcPid;
		pid = slot->pid;
	}
	LWLockRelease(worker_shared->lock);
	if (slot == NULL)
		return;
	worker_set_xact_callback();
	dropping_slot = slot;

	if (pid != 0)
		kill(pid, SIGTERM);

	/* the worker gone, and its replication slot released */
	deadline =
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), DROP_WAIT_MS);
	while (GetCurrentTimestamp() < deadline)
	{
		int nslots;
		int nactive;

		(void) ReplicationSlotsCountDBSlots(dbid, &nslots, &nactive);
		if (slot->pid == 0 && nactive == 0 && !worker_handlers_running(slot))
			break;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* ---------- SQL functions ---------- */

/*
 * strata._worker_error(): how many rounds this database's worker failed
 * in a row, with the last error, for strata.subscription_status.
 */
Datum
strata_worker_error(PG_FUNCTION_ARGS)
{
	WorkerSlot *slot = worker_slot_for(MyDatabaseId);
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};
	int			failures = 0;
	char		error[WORKER_ERROR_LEN];
	char		sub[WORKER_SUB_NAME_LEN];
	TimestampTz at = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "strata._worker_error must return a composite type");
	if (slot != NULL)
		failures = worker_failure(slot, error, sub, &at);
	values[0] = Int32GetDatum(failures);
	if (failures > 0)
	{
		values[1] = CStringGetTextDatum(error);
		values[2] = TimestampTzGetDatum(at);
		nulls[1] = nulls[2] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(
		heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * strata._worker_status() (0.5.0): for strata.subscription_status, the
 * setting that keeps every worker from running here, if one does
 * ('problem', with what to do), then the failures in a row of this
 * database's worker and its last error.
 */
Datum
strata_worker_status(PG_FUNCTION_ARGS)
{
	WorkerSlot	  *slot = worker_slot_for(MyDatabaseId);
	HealthProblem *problem = health_problem();
	TupleDesc	   desc;
	Datum		   values[4];
	bool		   nulls[4] = {true, false, true, true};
	int			   failures = 0;
	char		   error[WORKER_ERROR_LEN];
	char		   sub[WORKER_SUB_NAME_LEN];
	TimestampTz	   at = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "strata._worker_status must return a composite type");
	if (problem != NULL)
	{
		values[0] = CStringGetTextDatum(
			psprintf("%s. %s", problem->message, problem->hint));
		nulls[0] = false;
	}
	if (slot != NULL)
		failures = worker_failure(slot, error, sub, &at);
	values[1] = Int32GetDatum(failures);
	if (failures > 0)
	{
		values[2] = CStringGetTextDatum(error);
		values[3] = TimestampTzGetDatum(at);
		nulls[2] = nulls[3] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(
		heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * strata._worker_notify(): called by the install script, so that the
 * launcher starts a worker for this database once CREATE EXTENSION
 * commits.
 */
Datum
strata_worker_notify(PG_FUNCTION_ARGS)
{
	workers_wake_at_commit();
	notify_launcher = true;
	PG_RETURN_VOID();
}
