/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The "strata launcher" background worker: one "strata worker" for
 *	  each database that has the extension.
 *
 * The launcher is registered at server start (workers_register; the
 * library must be in shared_preload_libraries).  It connects to no
 * database, lists pg_database every few seconds or when woken, and keeps
 * one worker running for each database that allows connections, is not a
 * template and is named in strata.databases (all when empty).  A worker
 * that finds no extension in its database says so in its slot and exits;
 * the launcher then leaves that database alone until CREATE EXTENSION
 * strata commits there (the install script calls strata._worker_notify).
 *
 * Workers are dynamic and never restarted by the postmaster: the launcher
 * restarts one that stopped, after WORKER_RESTART_DELAY_MS, unless its
 * database is being dropped (workers_before_drop_database holds it off).
 * A scan decides under the slots' lock and acts after releasing it:
 * starting a worker, signalling one and logging all happen unlocked.
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
#include "settings.h"
#include "worker_internal.h"

/* Seconds between two scans of pg_database when nothing wakes the launcher */
#define LAUNCHER_NAPTIME_MS 10000

/* Delay before a stopped worker is started again */
#define WORKER_RESTART_DELAY_MS 5000

/* The launcher's handles and restart times, by slot */
typedef struct LauncherEntry
{
	BackgroundWorkerHandle *handle;
	TimestampTz				restart_at;
} LauncherEntry;

static LauncherEntry *launcher_entries = NULL;

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
			!settings_database_wanted(NameStr(db->datname)))
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

/*
 * Start the worker of slot 'index' for database 'dbid'.  Called with no
 * lock held: registration takes the postmaster's own lock, and a failure
 * is logged.
 */
static void
launcher_start_worker(int index, Oid dbid)
{
	BackgroundWorker bgw;
	MemoryContext	 old;
	bool			 registered;

	worker_bgw_init(&bgw, "strata_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "strata worker for database %u", dbid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "strata worker");
	bgw.bgw_main_arg = Int32GetDatum(index);
	bgw.bgw_notify_pid = MyProcPid;

	/* the handle outlives the scan */
	old = MemoryContextSwitchTo(TopMemoryContext);
	registered =
		RegisterDynamicBackgroundWorker(&bgw, &launcher_entries[index].handle);
	MemoryContextSwitchTo(old);
	if (!registered)
	{
		launcher_entries[index].handle = NULL;
		launcher_entries[index].restart_at = TimestampTzPlusMilliseconds(
			GetCurrentTimestamp(), WORKER_RESTART_DELAY_MS);
		ereport(
			WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("could not start the strata worker for database %u", dbid),
			 errhint("Raise max_worker_processes.")));
	}
}

/*
 * Is the worker of slot 'index' (or one of its handler processes)
 * running?  One this launcher started is known by its handle; one an
 * earlier launcher started (this one restarted after an error) by the
 * pid in its slot, which its worker clears when it exits.
 */
static bool
launcher_worker_running(int index)
{
	WorkerSlot *slot = &worker_shared->slots[index];
	pid_t		pid;

	if (worker_handlers_running(slot))
		return true;
	if (launcher_entries[index].handle == NULL)
		return slot->pid != 0;
	if (GetBackgroundWorkerPid(launcher_entries[index].handle, &pid) ==
		BGWH_STOPPED)
	{
		pfree(launcher_entries[index].handle);
		launcher_entries[index].handle = NULL;
		launcher_entries[index].restart_at = TimestampTzPlusMilliseconds(
			GetCurrentTimestamp(), WORKER_RESTART_DELAY_MS);
		return slot->pid != 0;
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

/* Give free slot 'slot' to database 'dbid': nothing carries over */
static void
launcher_assign_slot(WorkerSlot *slot, Oid dbid)
{
	slot->dbid = dbid;
	slot->absent = false;
	slot->dropper = 0;
	SpinLockAcquire(&slot->mutex);
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
		hs->left = false;
		SpinLockRelease(&hs->mutex);
	}
	launcher_entries[worker_slot_index(slot)].restart_at = 0;
}

/*
 * One pass of the launcher: free the slots of databases that are gone or
 * no longer wanted (stopping their workers first), give a slot to each
 * new database, and start the workers that should run and do not.  The
 * decisions are taken under the slots' lock; the signals, the starts and
 * the messages come after it is released.  Returns the time of the next
 * restart due, or 0.
 */
static TimestampTz
launcher_scan(void)
{
	Oid		   *dbids;
	int			n = launcher_list_databases(&dbids);
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	int			nslots = worker_shared->nslots;
	Oid		   *to_drop = palloc(sizeof(Oid) * nslots);
	pid_t	   *to_stop = palloc(sizeof(pid_t) * nslots);
	int		   *to_start = palloc(sizeof(int) * nslots);
	Oid		   *start_dbid = palloc(sizeof(Oid) * nslots);
	int			ndrop = 0;
	int			nstop = 0;
	int			nstart = 0;
	bool		too_few = false;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);

	for (int i = 0; i < nslots; i++)
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
		/* freed only once its worker and handler processes are gone */
		if (launcher_worker_running(i))
		{
			if (slot->pid != 0)
				to_stop[nstop++] = slot->pid;
			continue;
		}
		to_drop[ndrop++] = slot->dbid;
		slot->dbid = InvalidOid;
		slot->absent = false;
	}

	for (int j = 0; j < n; j++)
	{
		WorkerSlot *slot;
		int			index = -1;

		for (int i = 0; i < nslots; i++)
			if (worker_shared->slots[i].dbid == dbids[j])
				index = i;
		if (index < 0)
		{
			for (int i = 0; i < nslots && index < 0; i++)
				if (!OidIsValid(worker_shared->slots[i].dbid) &&
					!launcher_worker_running(i))
					index = i;
			if (index < 0)
			{
				too_few = true;
				break;
			}
			launcher_assign_slot(&worker_shared->slots[index], dbids[j]);
		}
		slot = &worker_shared->slots[index];

		if (slot->absent || slot->dropper != 0 ||
			launcher_worker_running(index))
			continue;
		if (pg_atomic_exchange_u32(&slot->notified, 0) != 0)
		{
			/* a CREATE EXTENSION or ALTER EXTENSION UPDATE just committed */
			launcher_entries[index].restart_at = 0;
		}
		if (launcher_entries[index].restart_at > now)
		{
			if (next == 0 || launcher_entries[index].restart_at < next)
				next = launcher_entries[index].restart_at;
			continue;
		}
		to_start[nstart] = index;
		start_dbid[nstart++] = slot->dbid;
	}

	LWLockRelease(worker_shared->lock);

	for (int i = 0; i < nstop; i++)
		(void) kill(to_stop[i], SIGTERM);
	/*
	 * A slot given out above is not given to another database before the
	 * next scan, and a worker started now finds its slot as assigned: only
	 * this process assigns slots.
	 */
	for (int i = 0; i < nstart; i++)
		launcher_start_worker(to_start[i], start_dbid[i]);
	if (too_few)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("strata.max_workers (%d) is too low to serve every "
						"database",
						worker_max_workers),
				 errhint("Raise strata.max_workers, or list the databases "
						 "to serve in strata.databases.")));
	for (int i = 0; i < ndrop; i++)
		launcher_drop_replication_slot(to_drop[i]);
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
