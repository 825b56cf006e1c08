/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Shared-memory registry of in-flight appends.
 *
 * Global positions come from a sequence, so they are handed out in one
 * order and committed in another.  A reader of the global feed that
 * returned position 7 while position 5 was still uncommitted would move
 * its cursor past 5 and never see it.  The registry closes that hole:
 *
 * - Each backend owns one slot holding the lowest position its current
 *   transaction allocated (0 when it holds none) and its database.
 * - A transaction's first allocation runs under the registry lock in
 *   exclusive mode, so "take a position" and "publish it in the slot" are
 *   one step as far as readers can tell.  Later allocations of the same
 *   transaction are larger and need no lock.
 * - The slot is cleared by a transaction callback that runs after the
 *   commit (or abort) became visible in the proc array.
 * - A reader takes the lock in shared mode, computes the horizon (the
 *   lowest position of its database still in flight) and takes its
 *   snapshot before releasing the lock.  Every position below the horizon
 *   belongs to a transaction that had ended before that snapshot, so the
 *   snapshot shows all of them that committed; positions allocated later
 *   come from transactions still running when the snapshot was taken, and
 *   the snapshot shows none of them.
 *
 * docs/architecture.md explains the technique and what it costs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/snapmgr.h"

#include "strata.h"
#include "compat.h"
#include "registry.h"
#include "workers.h"

typedef struct RegistrySlot
{
	pg_atomic_uint64 min_position; /* lowest in-flight position, 0 = none */
	Oid				 dbid;		   /* database of the owning backend */
} RegistrySlot;

typedef struct RegistryShared
{
	LWLock		*lock;
	int			 nslots;
	RegistrySlot slots[FLEXIBLE_ARRAY_MEMBER];
} RegistryShared;

static RegistryShared *registry = NULL;
static RegistrySlot	  *my_slot = NULL;
static bool			   registered_in_xact = false;
static bool			   exit_callback_set = false;

static int
registry_slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
registry_shmem_size(void)
{
	return add_size(offsetof(RegistryShared, slots),
					mul_size(registry_slot_count(), sizeof(RegistrySlot)));
}

/* From the library's shmem_request_hook */
void
registry_shmem_request(void)
{
	RequestAddinShmemSpace(registry_shmem_size());
	RequestNamedLWLockTranche("strata registry", 1);
}

/* From the library's shmem_startup_hook, under AddinShmemInitLock */
void
registry_shmem_init(void)
{
	bool found;

	registry =
		ShmemInitStruct("strata registry", registry_shmem_size(), &found);
	if (!found)
	{
		registry->lock = &(GetNamedLWLockTranche("strata registry"))->lock;
		registry->nslots = registry_slot_count();
		for (int i = 0; i < registry->nslots; i++)
		{
			pg_atomic_init_u64(&registry->slots[i].min_position, 0);
			registry->slots[i].dbid = InvalidOid;
		}
	}
}

/* Clear this backend's slot: its transaction has ended (or it exits). */
static void
registry_release(void)
{
	if (my_slot != NULL && registered_in_xact)
	{
		pg_atomic_write_u64(&my_slot->min_position, 0);
		registered_in_xact = false;
	}
}

/*
 * Transaction callback.  COMMIT and ABORT run after the proc array shows
 * the transaction as ended, which is what makes clearing the slot here
 * safe.  A prepared transaction would outlive the slot, so a transaction
 * that appended refuses PREPARE TRANSACTION.
 */
static void
registry_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			/* a commit that appended wakes the worker of its database */
			if (registered_in_xact)
				workers_wake(MyDatabaseId);
			registry_release();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			registry_release();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (registered_in_xact)
				ereport(
					ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg(
						 "cannot prepare a transaction that appended events"),
					 errdetail("Events appended by a prepared transaction "
							   "would hold back every reader of the "
							   "global feed until it is committed."),
					 errhint(
						 "Commit the append in an ordinary transaction.")));
			break;
		default:
			break;
	}
}

static void
registry_exit_callback(int code, Datum arg)
{
	registry_release();
}

/*
 * Install the transaction callback.  Called from _PG_init when the
 * library is preloaded.
 */
void
registry_init(void)
{
	RegisterXactCallback(registry_xact_callback, NULL);
}

static RegistrySlot *
registry_my_slot(void)
{
	int procno;

	if (my_slot != NULL)
		return my_slot;

	if (registry == NULL || MyProc == NULL)
		elog(ERROR, "strata registry is not initialized");

	procno = compat_my_procno();
	if (procno < 0 || procno >= registry->nslots)
		elog(ERROR, "strata registry has no slot for process number %d",
			 procno);

	my_slot = &registry->slots[procno];
	if (!exit_callback_set)
	{
		before_shmem_exit(registry_exit_callback, (Datum) 0);
		exit_callback_set = true;
	}
	return my_slot;
}

/*
 * Allocate 'count' global positions from the sequence 'seqoid' for the
 * current transaction, in increasing order, registering the transaction
 * as in flight from its first position on.
 */
void
registry_allocate_positions(Oid seqoid, int count, int64 *positions)
{
	RegistrySlot *slot = registry_my_slot();
	int			  i = 0;

	Assert(count > 0);

	/*
	 * Do everything that may wait on a heavyweight lock or assign an xid
	 * before taking the registry lock, which is held only around the
	 * sequence bump itself.
	 */
	(void) GetTopTransactionId();
	LockRelationOid(seqoid, RowExclusiveLock);

	if (!registered_in_xact)
	{
		LWLockAcquire(registry->lock, LW_EXCLUSIVE);
		positions[0] = nextval_internal(seqoid, false);
		slot->dbid = MyDatabaseId;
		pg_atomic_write_u64(&slot->min_position, (uint64) positions[0]);
		registered_in_xact = true;
		LWLockRelease(registry->lock);
		i = 1;
	}

	for (; i < count; i++)
	{
		CHECK_FOR_INTERRUPTS();
		positions[i] = nextval_internal(seqoid, false);
	}
}

/* The lowest in-flight position of this database; the lock is held */
static int64
registry_lowest(void)
{
	int64 horizon = REGISTRY_NO_HORIZON;

	for (int i = 0; i < registry->nslots; i++)
	{
		RegistrySlot *slot = &registry->slots[i];
		uint64		  pos = pg_atomic_read_u64(&slot->min_position);

		if (pos != 0 && slot->dbid == MyDatabaseId && (int64) pos < horizon)
			horizon = (int64) pos;
	}
	return horizon;
}

/*
 * Return the read horizon of the current database and a registered
 * snapshot taken together with it.  Every committed event with a position
 * below the horizon is visible in the snapshot, and no event at or above
 * it can become visible later with a lower position than one returned.
 * The caller unregisters the snapshot.  With a NULL 'snapshot', only the
 * horizon (the worker's watermark samples).
 */
int64
registry_read_horizon(Snapshot *snapshot)
{
	int64 horizon;

	if (registry == NULL)
		elog(ERROR, "strata registry is not initialized");

	LWLockAcquire(registry->lock, LW_SHARED);
	horizon = registry_lowest();
	if (snapshot != NULL)
		*snapshot = RegisterSnapshot(GetLatestSnapshot());
	LWLockRelease(registry->lock);

	return horizon;
}
