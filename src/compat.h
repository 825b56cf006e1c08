/*-------------------------------------------------------------------------
 *
 * compat.h
 *		What differs between the PostgreSQL major versions pg_strata
 *		supports (15, 17 and 18: scripts/releases), as small inline shims.
 *
 * Every PG_VERSION_NUM test of the code is here, and nowhere else: a file
 * calls compat_x() and reads the same on every version.  Where a newer
 * version offers something better (a failover slot on 17), the shim takes
 * it and says what the older versions do instead.  16 is not built or
 * tested (no Debian release ships it); the tests below draw the lines
 * where the API changed, so it should build, but nothing says it does.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_COMPAT_H
#define STRATA_COMPAT_H

#include "access/genam.h"
#include "catalog/pg_database.h"
#include "catalog/pg_proc.h"
#include "replication/reorderbuffer.h"
#include "replication/slot.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "strata.h"

/*
 * May 'roleid' execute function 'funcid'?  (16 folded the per-object
 * aclcheck functions into object_aclcheck.)
 */
static inline bool
compat_proc_executable(Oid funcid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, funcid, roleid, ACL_EXECUTE) ==
		   ACLCHECK_OK;
#else
	return pg_proc_aclcheck(funcid, roleid, ACL_EXECUTE) == ACLCHECK_OK;
#endif
}

/* Does 'roleid' own (or have the privileges of the owner of) database 'dbid'? */
static inline bool
compat_database_owner(Oid dbid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, dbid, roleid);
#else
	return pg_database_ownercheck(dbid, roleid);
#endif
}

/* make_range without a soft-error context (16 added the argument) */
static inline RangeType *
compat_make_range(TypeCacheEntry *typcache, RangeBound *lower,
				  RangeBound *upper, bool empty)
{
#if PG_VERSION_NUM >= 160000
	return make_range(typcache, lower, upper, empty, NULL);
#else
	return make_range(typcache, lower, upper, empty);
#endif
}

/* index_beginscan without instrumentation (18 added the argument) */
static inline IndexScanDesc
compat_index_beginscan(Relation heap, Relation index, Snapshot snapshot,
					   int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

/* This backend's index into the PGPROC array (17: MyProcNumber) */
static inline int
compat_my_procno(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProcNumber;
#else
	return MyProc->pgprocno;
#endif
}

/*
 * Restrict search_path to pg_catalog, pg_temp for the rest of the current
 * GUC nest level, as maintenance commands do (17: RestrictSearchPath; the
 * same setting before it).
 */
static inline void
compat_restrict_search_path(void)
{
#if PG_VERSION_NUM >= 170000
	RestrictSearchPath();
#else
	(void) set_config_option("search_path", STRATA_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
							 0, false);
#endif
}

/*
 * Has the slot been invalidated (its WAL removed, its rows vacuumed)?
 * (16 records why; 15 only that restart_lsn was cleared.)
 */
static inline bool
compat_slot_invalidated(ReplicationSlot *slot)
{
#if PG_VERSION_NUM >= 160000
	return slot->data.invalidated != RS_INVAL_NONE;
#else
	return slot->data.invalidated_at != InvalidXLogRecPtr &&
		   XLogRecPtrIsInvalid(slot->data.restart_lsn);
#endif
}

/*
 * Memory for the "extra" of a GUC check hook, which the GUC machinery
 * frees when the value is replaced: 16 and later free it with guc_free
 * (memory of their GUC context), before with free().  NULL when out of
 * memory.
 */
static inline void *
compat_guc_extra_alloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/*
 * Does this version create logical slots that a standby can synchronize
 * (sync_replication_slots) and so keep across a failover?  17 and later.
 */
#define COMPAT_HAS_FAILOVER_SLOTS (PG_VERSION_NUM >= 170000)

/*
 * Create a database-specific logical slot, not two-phase; with 'failover'
 * (17 and later) a standby with sync_replication_slots keeps a copy of it
 * that the new primary uses after a promotion.  Before 17 'failover' is
 * ignored: a promoted standby has no slot, and the worker makes a new one.
 */
static inline void
compat_slot_create(const char *name, ReplicationSlotPersistency persistency,
				   bool failover)
{
#if PG_VERSION_NUM >= 170000
	ReplicationSlotCreate(name, true, persistency, false, failover, false);
#else
	(void) failover;
	ReplicationSlotCreate(name, true, persistency, false);
#endif
}

/*
 * Acquire the slot 'name'; an invalidated one too (18 would raise an error
 * for it): the caller looks at compat_slot_invalidated and recreates it.
 */
static inline void
compat_slot_acquire(const char *name, bool nowait)
{
#if PG_VERSION_NUM >= 180000
	ReplicationSlotAcquire(name, nowait, false);
#else
	ReplicationSlotAcquire(name, nowait);
#endif
}

/*
 * Is the slot one that standbys may synchronize?  Always false before 17,
 * where no slot can be.
 */
static inline bool
compat_slot_failover(ReplicationSlot *slot)
{
#if PG_VERSION_NUM >= 170000
	return slot->data.failover;
#else
	(void) slot;
	return false;
#endif
}

/*
 * Is the slot a standby's synchronized copy of its primary's (17 and
 * later; it stays marked so after a promotion)?  Never before 17.
 */
static inline bool
compat_slot_synced(ReplicationSlot *slot)
{
#if PG_VERSION_NUM >= 170000
	return slot->data.synced;
#else
	(void) slot;
	return false;
#endif
}

/*
 * Make the (unacquired) slot 'name' one that standbys may synchronize, as
 * ALTER_REPLICATION_SLOT name (FAILOVER) does: a slot made before 17, or
 * by an older pg_strata, becomes one.  Nothing before 17.
 */
static inline void
compat_slot_set_failover(const char *name)
{
#if PG_VERSION_NUM >= 180000
	bool failover = true;

	ReplicationSlotAlter(name, &failover, NULL);
#elif PG_VERSION_NUM >= 170000
	ReplicationSlotAlter(name, true);
#else
	(void) name;
#endif
}

/*
 * Have the standbys of synchronized_standby_slots flushed the WAL up to
 * 'lsn'?  A failover slot must not confirm a position before they have
 * the WAL of what it confirms (there, the subscriptions' progress): a
 * standby promoted with a synchronized slot ahead of its own copy of the
 * progress would skip events.  True when the setting is empty, and always
 * before 17.  Never waits; 'elevel' is for a listed slot that is missing
 * or invalid.
 */
static inline bool
compat_standbys_have(XLogRecPtr lsn, int elevel)
{
#if PG_VERSION_NUM >= 170000
	return StandbySlotsHaveCaughtup(lsn, elevel);
#else
	(void) lsn;
	(void) elevel;
	return true;
#endif
}

/* The new tuple of an insert, update or delete, or NULL (17: no wrapper) */
static inline HeapTuple
compat_change_newtuple(ReorderBufferChange *change)
{
#if PG_VERSION_NUM >= 170000
	return change->data.tp.newtuple;
#else
	return change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
#endif
}

/*
 * Must an output plugin send progress updates itself while it skips
 * changes?  Before 16, a walsender waiting on a long transaction of
 * changes the plugin ignores could time out; 16's decoding does it.
 */
#define COMPAT_PLUGIN_SENDS_PROGRESS (PG_VERSION_NUM < 160000)

#endif /* STRATA_COMPAT_H */
