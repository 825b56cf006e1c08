/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The "strata launcher" background worker, the workers' shared memory
 *	  and GUCs, and the hooks that keep them in step with the databases.
 *
 * The launcher is registered at server start (the library must be in
 * shared_preload_libraries).  It connects to no database, lists
 * pg_database every few seconds or when woken, and keeps one "strata
 * worker" running for each database that allows connections, is not a
 * template and is named in strata.databases (all when empty).  A worker
 * that finds no extension in its database says so in its slot and exits;
 * the launcher then leaves that database alone until CREATE EXTENSION
 * strata commits there (the install script calls strata._worker_notify).
 *
 * Workers are dynamic and never restarted by the postmaster: the launcher
 * restarts one that stopped, after WORKER_RESTART_DELAY_MS, unless its
 * database is being dropped.  DROP DATABASE would fail while a worker is
 * connected and holds the database's slot, so a utility hook stops the
 * worker first and keeps it stopped until the dropping transaction ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "strata.h"
#include "worker_internal.h"

/* Seconds between two scans of pg_database when nothing wakes the launcher */
#define LAUNCHER_NAPTIME_MS 10000

/* Delay before a stopped worker is started again */
#define WORKER_RESTART_DELAY_MS 5000

/* How long DROP DATABASE waits for the database's worker to exit */
#define DROP_WAIT_MS 30000

char *worker_databases = NULL;
int	  worker_max_workers = 8;
int	  worker_retry_base_delay = 100;
int	  worker_max_attempts = 5;
int	  worker_wal_warning_size = 1024;
int	  worker_batch_size = 1000;
int	  worker_handler_timeout = 60 * 1000;
int	  worker_handler_workers = 2;
bool  worker_self_appended = false;

typedef struct WorkerShared
{
	LWLock		*lock;			 /* protects the slots' assignment */
	Latch		*launcher_latch; /* NULL when no launcher runs */
	int			 nslots;
	int			 nhandlers;		 /* handler slots per slot */
	HandlerSlot *handlers;		 /* nslots * nhandlers of them */
	WorkerSlot	 slots[FLEXIBLE_ARRAY_MEMBER];
} WorkerShared;

PG_FUNCTION_INFO_V1(strata_worker_notify);
PG_FUNCTION_INFO_V1(strata_worker_error);

static WorkerShared *worker_shared = NULL;

static shmem_request_hook_type	prev_shmem_request_hook = NULL;
static shmem_startup_hook_type	prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* This backend's pending wake-ups at commit, and its DROP DATABASE */
static bool		   notify_at_commit = false;
static bool		   notify_launcher = false;
static List		  *cancel_at_commit = NIL; /* in TopTransactionContext */
static WorkerSlot *dropping_slot = NULL;
static bool		   xact_callback_set = false;

/* The launcher's handles and restart times, by slot */
typedef struct LauncherEntry
{
	BackgroundWorkerHandle *handle;
	TimestampTz				restart_at;
} LauncherEntry;

static LauncherEntry *launcher_entries = NULL;

/* The slots, then the handler processes' slots */
static Size
worker_shmem_size(void)
{
	Size size = add_size(offsetof(WorkerShared, slots),
						 mul_size(worker_max_workers, sizeof(WorkerSlot)));

	size = MAXALIGN(size);
	return add_size(size, mul_size(mul_size(worker_max_workers,
											worker_handler_workers),
								   sizeof(HandlerSlot)));
}

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(worker_shmem_size());
	RequestNamedLWLockTranche("strata workers", 1);
}

static void
worker_shmem_startup(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_shared =
		ShmemInitStruct("strata workers", worker_shmem_size(), &found);
	if (!found)
	{
		worker_shared->lock = &(GetNamedLWLockTranche("strata workers"))->lock;
		worker_shared->launcher_latch = NULL;
		worker_shared->nslots = worker_max_workers;
		worker_shared->nhandlers = worker_handler_workers;
		worker_shared->handlers = (HandlerSlot *) ((char *) worker_shared +
			MAXALIGN(offsetof(WorkerShared, slots) +
					 sizeof(WorkerSlot) * worker_max_workers));
		for (int i = 0; i < worker_max_workers; i++)
		{
			WorkerSlot *slot = &worker_shared->slots[i];

			memset(slot, 0, sizeof(WorkerSlot));
			ConditionVariableInit(&slot->progress);
			SpinLockInit(&slot->mutex);
		}
		for (int i = 0; i < worker_max_workers * worker_handler_workers; i++)
		{
			HandlerSlot *hs = &worker_shared->handlers[i];

			memset(hs, 0, offsetof(HandlerSlot, entries));
			SpinLockInit(&hs->mutex);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Wake the worker of a database, if one runs: called at the commit of
 * every transaction that appended, so it must stay cheap and lock-free.
 * A latch pointer read while its worker exits only costs a spurious
 * wake-up of whatever process owns that latch next.
 */
void
worker_wake(Oid dbid)
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
				slot->async_wake = true;
			SetLatch(latch);
		}
	}
}

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

HandlerSlot *
worker_handler_slot(WorkerSlot *slot, int index)
{
	Assert(index >= 0 && index < worker_shared->nhandlers);
	return &worker_shared->handlers[worker_slot_index(slot) *
										worker_shared->nhandlers +
									index];
}

/* Does a handler process of 'slot' still run? */
static bool
worker_handlers_running(WorkerSlot *slot)
{
	for (int i = 0; i < worker_shared->nhandlers; i++)
		if (worker_handler_slot(slot, i)->pid != 0)
			return true;
	return false;
}

/*
 * A starting worker takes its slot: not while its database is being
 * dropped, nor while another worker of the slot is alive (a launcher
 * restarted after an error has no handles and may start a second one).
 */
bool
worker_claim(WorkerSlot *slot)
{
	bool ok = false;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	if (slot->dropper == 0 &&
		(slot->pid == 0 || slot->pid == MyProcPid || kill(slot->pid, 0) != 0))
	{
		slot->pid = MyProcPid;
		slot->latch = MyLatch;
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
		slot->pid = 0;
		slot->latch = NULL;
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
	if (!slot->notified)
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

/*
 * After the commit of a pause or an unsubscribe: if one of this
 * database's handler processes is running the handler of one of 'names'
 * now, interrupt it (the process then finds the subscription changed,
 * rolls the batch back and does not count the interruption as a
 * failure).  The signal is sent with no lock held; a signal that arrives
 * after that call ended interrupts nothing (see worker_sigint).
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
			slot->changed = true;
			if (notify_launcher)
			{
				slot->absent = false;
				slot->notified = true;
			}
		}
		LWLockRelease(worker_shared->lock);
		worker_wake(MyDatabaseId);
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
worker_notify_at_commit(void)
{
	worker_set_xact_callback();
	notify_at_commit = true;
}

/*
 * When this transaction commits, interrupt the handler of 'subscription'
 * if this database's worker is running it: it was paused or dropped.
 */
void
worker_cancel_at_commit(const char *subscription)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	worker_set_xact_callback();
	cancel_at_commit = lappend(cancel_at_commit, pstrdup(subscription));
	MemoryContextSwitchTo(old);
}

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
	TimestampTz at = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "strata._worker_error must return a composite type");
	if (slot != NULL)
	{
		SpinLockAcquire(&slot->mutex);
		failures = slot->failures;
		memcpy(error, slot->last_error, sizeof(error));
		at = slot->last_error_at;
		SpinLockRelease(&slot->mutex);
	}
	values[0] = Int32GetDatum(failures);
	if (failures > 0)
	{
		error[sizeof(error) - 1] = '\0';
		values[1] = CStringGetTextDatum(error);
		values[2] = TimestampTzGetDatum(at);
		nulls[1] = nulls[2] = false;
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
	worker_notify_at_commit();
	notify_launcher = true;
	PG_RETURN_VOID();
}

/*
 * Before DROP DATABASE: stop the database's worker (which holds a
 * connection and a replication slot there, either of which makes DROP
 * DATABASE fail) and keep the launcher from starting it again until this
 * transaction ends.
 */
static void
worker_stop_for_drop(const char *dbname)
{
	Oid			dbid = get_database_oid(dbname, true);
	WorkerSlot *slot;
	pid_t		pid = 0;
	TimestampTz deadline;

	if (!OidIsValid(dbid) || worker_shared == NULL)
		return;
		/* only for a role that may drop it: dropdb checks that later */
#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(DatabaseRelationId, dbid, GetUserId()))
		return;
#else
	if (!pg_database_ownercheck(dbid, GetUserId()))
		return;
#endif

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

static void
worker_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, DropdbStmt))
		worker_stop_for_drop(((DropdbStmt *) parsetree)->dbname);

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * GUCs of the workers, and, at server start, their shared memory, the
 * launcher and the DROP DATABASE hook.  Called from _PG_init.
 */
void
worker_init(void)
{
	BackgroundWorker bgw;

	DefineCustomStringVariable(
		"strata.databases", "Databases the strata launcher runs workers in.",
		"A comma-separated list of names; empty means every database "
		"that has the extension.",
		&worker_databases, "", PGC_SIGHUP, GUC_LIST_INPUT, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.retry_base_delay",
		"Delay before the first retry of a failed subscription handler.",
		"Each further retry waits twice as long.", &worker_retry_base_delay,
		100, 1, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.max_attempts",
		"Attempts at an event before a subscription parks it (or stops).",
		NULL, &worker_max_attempts, 5, 1, 1000, PGC_SIGHUP, 0, NULL, NULL,
		NULL);
	DefineCustomIntVariable(
		"strata.wal_warning_size",
		"Retained WAL above which strata.subscription_status warns.", NULL,
		&worker_wal_warning_size, 1024, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_MB,
		NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.worker_batch_size",
		"Most events a strata worker hands to a subscription in one "
		"transaction.",
		NULL, &worker_batch_size, 1000, 1, 1000000, PGC_SIGHUP, 0, NULL, NULL,
		NULL);
	DefineCustomIntVariable(
		"strata.handler_timeout",
		"Longest call of a subscription handler by a strata worker.",
		"A call that takes longer is interrupted and counts as a failed "
		"attempt (retried, then parked or stopped); 0 turns it off.",
		&worker_handler_timeout, 60 * 1000, 0, INT_MAX, PGC_SIGHUP,
		GUC_UNIT_MS, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	/* a server-start setting can only be defined while preloading */
	DefineCustomIntVariable("strata.max_workers",
							"Most databases served by strata workers at once.",
							NULL, &worker_max_workers, 8, 0, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.handler_workers",
		"Handler processes of each database's strata worker.",
		"The handlers of one database's subscriptions run in this many "
		"processes at once: a handler that hangs holds one of them.",
		&worker_handler_workers, 2, 1, HANDLER_ARG_BASE - 1, PGC_POSTMASTER,
		0, NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = worker_process_utility;

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

/* Is 'dbname' one of the databases of strata.databases (or is it empty)? */
static bool
launcher_database_wanted(const char *dbname)
{
	char	 *raw;
	List	 *names;
	ListCell *lc;
	bool	  wanted = false;

	if (worker_databases == NULL || worker_databases[0] == '\0')
		return true;

	raw = pstrdup(worker_databases);
	if (!SplitIdentifierString(raw, ',', &names))
	{
		ereport(LOG, (errmsg("invalid list syntax in \"strata.databases\"")));
		return false;
	}
	foreach (lc, names)
		if (strcmp((char *) lfirst(lc), dbname) == 0)
			wanted = true;
	return wanted;
}

/* The databases the launcher should serve, as a palloc'd array of OIDs */
static int
launcher_list_databases(Oid **dbids)
{
	Relation	  rel;
	TableScanDesc scan;
	HeapTuple	  tup;
	int			  n = 0;
	int			  cap = 16;
	MemoryContext caller = CurrentMemoryContext;

	*dbids = palloc(sizeof(Oid) * cap);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (!db->datallowconn || db->datistemplate ||
			!launcher_database_wanted(NameStr(db->datname)))
			continue;
		if (n == cap)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			cap *= 2;
			*dbids = repalloc(*dbids, sizeof(Oid) * cap);
			MemoryContextSwitchTo(old);
		}
		(*dbids)[n++] = db->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return n;
}

/* Start the worker of slot 'index' */
static void
launcher_start_worker(int index)
{
	BackgroundWorker bgw;
	WorkerSlot		*slot = &worker_shared->slots[index];
	MemoryContext	 old;
	bool			 registered;

	worker_bgw_init(&bgw, "strata_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "strata worker for database %u",
			 slot->dbid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "strata worker");
	bgw.bgw_main_arg = Int32GetDatum(index);
	bgw.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	registered =
		RegisterDynamicBackgroundWorker(&bgw, &launcher_entries[index].handle);
	MemoryContextSwitchTo(old);
	if (!registered)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the strata worker for database %u",
						slot->dbid),
				 errhint("Raise max_worker_processes.")));
		launcher_entries[index].handle = NULL;
		launcher_entries[index].restart_at = TimestampTzPlusMilliseconds(
			GetCurrentTimestamp(), WORKER_RESTART_DELAY_MS);
	}
}

/* Is the worker of slot 'index' (as far as this launcher knows) running? */
static bool
launcher_worker_running(int index)
{
	pid_t pid;

	if (launcher_entries[index].handle == NULL)
	{
		/* a worker started by an earlier launcher */
		pid_t other = worker_shared->slots[index].pid;

		return other != 0 && kill(other, 0) == 0;
	}
	if (GetBackgroundWorkerPid(launcher_entries[index].handle, &pid) ==
		BGWH_STOPPED)
	{
		pfree(launcher_entries[index].handle);
		launcher_entries[index].handle = NULL;
		launcher_entries[index].restart_at = TimestampTzPlusMilliseconds(
			GetCurrentTimestamp(), WORKER_RESTART_DELAY_MS);
		return false;
	}
	return true;
}

/*
 * Drop the replication slot of a database the launcher no longer serves
 * (taken out of strata.databases), which would otherwise keep WAL
 * forever.  Its subscriptions catch up from strata.events if it is served
 * again.  A dropped database took its slot with it.
 */
static void
launcher_drop_replication_slot(Oid dbid)
{
	char			 name[NAMEDATALEN];
	ReplicationSlot *rs;
	bool			 drop;

	snprintf(name, sizeof(name), "strata_%u", dbid);
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	rs = SearchNamedReplicationSlot(name, false);
	drop = rs != NULL && rs->active_pid == 0;
	LWLockRelease(ReplicationSlotControlLock);
	if (!drop)
		return;
	ReplicationSlotDrop(name, true);
	ereport(LOG, (errmsg("strata launcher dropped replication slot \"%s\" of "
						 "a database it no longer serves",
						 name)));
}

/*
 * One pass of the launcher: free the slots of databases that are gone or
 * no longer wanted (stopping their workers), give a slot to each new
 * database, and start the workers that should run and do not.  Returns
 * the time of the next restart due, or 0.
 */
static TimestampTz
launcher_scan(void)
{
	Oid		   *dbids;
	int			n = launcher_list_databases(&dbids);
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	Oid		   *to_drop = palloc(sizeof(Oid) * worker_shared->nslots);
	int			ndrop = 0;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);

	for (int i = 0; i < worker_shared->nslots; i++)
	{
		WorkerSlot *slot = &worker_shared->slots[i];
		bool		listed = false;

		if (!OidIsValid(slot->dbid))
			continue;
		for (int j = 0; j < n; j++)
			if (dbids[j] == slot->dbid)
				listed = true;
		if (listed || slot->dropper != 0)
			continue;
		if (launcher_worker_running(i))
		{
			if (slot->pid != 0)
				kill(slot->pid, SIGTERM);
			continue;
		}
		to_drop[ndrop++] = slot->dbid;
		slot->dbid = InvalidOid;
		slot->absent = false;
	}

	for (int j = 0; j < n; j++)
	{
		WorkerSlot *slot = NULL;
		int			index = -1;

		for (int i = 0; i < worker_shared->nslots; i++)
			if (worker_shared->slots[i].dbid == dbids[j])
				index = i;
		if (index < 0)
		{
			for (int i = 0; i < worker_shared->nslots && index < 0; i++)
				if (!OidIsValid(worker_shared->slots[i].dbid) &&
					!launcher_worker_running(i))
					index = i;
			if (index < 0)
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("strata.max_workers (%d) is too low to serve "
								"every database",
								worker_max_workers),
						 errhint("Raise strata.max_workers, or list the "
								 "databases to serve in strata.databases.")));
				break;
			}
			slot = &worker_shared->slots[index];
			slot->dbid = dbids[j];
			slot->absent = false;
			slot->dropper = 0;
			/* nothing of the previous database's worker carries over */
			SpinLockAcquire(&slot->mutex);
			slot->killed = false;
			slot->failures = 0;
			slot->failed_sub[0] = '\0';
			slot->last_error[0] = '\0';
			SpinLockRelease(&slot->mutex);
			for (int k = 0; k < worker_shared->nhandlers; k++)
			{
				HandlerSlot *hs = worker_handler_slot(slot, k);

				SpinLockAcquire(&hs->mutex);
				hs->state = JOB_NONE;
				hs->running[0] = '\0';
				hs->cancel_running = false;
				hs->killed = false;
				SpinLockRelease(&hs->mutex);
			}
			launcher_entries[index].restart_at = 0;
		}
		slot = &worker_shared->slots[index];

		if (slot->absent || slot->dropper != 0 ||
			launcher_worker_running(index))
			continue;
		if (slot->notified)
		{
			/* a CREATE EXTENSION or ALTER EXTENSION UPDATE just committed */
			slot->notified = false;
			launcher_entries[index].restart_at = 0;
		}
		if (launcher_entries[index].restart_at > now)
		{
			if (next == 0 || launcher_entries[index].restart_at < next)
				next = launcher_entries[index].restart_at;
			continue;
		}
		launcher_start_worker(index);
	}

	LWLockRelease(worker_shared->lock);
	for (int i = 0; i < ndrop; i++)
		launcher_drop_replication_slot(to_drop[i]);
	pfree(to_drop);
	pfree(dbids);
	return next;
}

static void
launcher_detach(int code, Datum arg)
{
	worker_shared->launcher_latch = NULL;
}

/*
 * Main of the launcher: scan, then sleep until woken (a notification, a
 * worker that stopped, SIGHUP) or until the next scan or restart is due.
 */
void
strata_launcher_main(Datum arg)
{
	MemoryContext scan_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	launcher_entries = MemoryContextAllocZero(
		TopMemoryContext, sizeof(LauncherEntry) * worker_max_workers);
	scan_cxt = AllocSetContextCreate(TopMemoryContext, "strata launcher scan",
									 ALLOCSET_DEFAULT_SIZES);
	worker_shared->launcher_latch = MyLatch;
	before_shmem_exit(launcher_detach, (Datum) 0);

	if (wal_level < WAL_LEVEL_LOGICAL)
		ereport(LOG, (errmsg("strata launcher: wal_level is not logical, so "
							 "no strata worker will run"),
					  errhint("Set wal_level = logical and restart the "
							  "server to run subscriptions.")));

	for (;;)
	{
		TimestampTz next = 0;
		long		timeout = LAUNCHER_NAPTIME_MS;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (wal_level >= WAL_LEVEL_LOGICAL)
		{
			MemoryContext old = MemoryContextSwitchTo(scan_cxt);

			pgstat_report_activity(STATE_RUNNING, "scanning databases");
			next = launcher_scan();
			pgstat_report_activity(STATE_IDLE, NULL);
			MemoryContextSwitchTo(old);
			MemoryContextReset(scan_cxt);
		}
		if (next != 0)
		{
			long secs;
			int	 usecs;

			TimestampDifference(GetCurrentTimestamp(), next, &secs, &usecs);
			timeout = Min(timeout, secs * 1000 + usecs / 1000 + 1);
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
