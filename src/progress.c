/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  Progress of long work, readable by every session through
 *	  strata.progress (the SQL function strata._progress): rebuilds of
 *	  inline projections and subscriptions catching up from strata.events.
 *
 * PostgreSQL's own progress reporting (pgstat_progress_*) knows a fixed
 * set of commands, and pg_stat_get_progress_info reads only those: an
 * extension cannot add one.  This module keeps the same design in its own
 * shared memory: an array of entries, each written by one process at a
 * time without a lock, under a change counter that readers check (as
 * PgBackendStatus.st_changecount), so that reporting costs a few stores
 * and a reader never waits for a writer.  Entries are taken and given
 * back under one LWLock.
 *
 * A catch-up outlives the job that started it: it runs a step per job,
 * maybe in different handler processes, so its entry stays between steps
 * (pid 0) and the next step takes it over.  The worker prunes entries of
 * subscriptions that stopped catching up (progress_prune).  A process
 * that exits gives back its rebuild entry, and detaches from a catch-up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "progress.h"

/* Longest name of a projection or subscription, with its zero */
#define PROGRESS_NAME_LEN 129

/* Entries beyond one per backend: catch-ups waiting for their next step */
#define PROGRESS_EXTRA_ENTRIES 256

PG_FUNCTION_INFO_V1(strata_progress);

typedef struct ProgressEntry
{
	/* odd while its owner writes; readers copy until it is even and same */
	pg_atomic_uint32 changecount;

	/* under the lock */
	bool		 in_use;
	Oid			 dbid;
	ProgressKind kind;
	char		 name[PROGRESS_NAME_LEN];
	Oid			 owner;
	pid_t		 pid; /* the process at work on it, 0 between steps */

	/* written by that process */
	TimestampTz started_at;
	TimestampTz updated_at;
	int64		start_position;
	int64		position;
	int64		target;
	int64		done;
	int64		total;
} ProgressEntry;

typedef struct ProgressShared
{
	LWLock		 *lock;
	int			  nentries;
	ProgressEntry entries[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

static ProgressShared *progress = NULL;

/* This process's entry, if it works on one */
static ProgressEntry *my_entry = NULL;
static bool			  exit_registered = false;

static int
progress_nentries(void)
{
	return MaxBackends + PROGRESS_EXTRA_ENTRIES;
}

Size
progress_shmem_size(void)
{
	return add_size(offsetof(ProgressShared, entries),
					mul_size(progress_nentries(), sizeof(ProgressEntry)));
}

/* From the library's shmem_request_hook */
void
progress_shmem_request(void)
{
	RequestAddinShmemSpace(progress_shmem_size());
	RequestNamedLWLockTranche("strata progress", 1);
}

/* From the library's shmem_startup_hook, under AddinShmemInitLock */
void
progress_shmem_init(void)
{
	bool found;

	progress =
		ShmemInitStruct("strata progress", progress_shmem_size(), &found);
	if (!found)
	{
		progress->lock = &(GetNamedLWLockTranche("strata progress"))->lock;
		progress->nentries = progress_nentries();
		for (int i = 0; i < progress->nentries; i++)
		{
			pg_atomic_init_u32(&progress->entries[i].changecount, 0);
			progress->entries[i].in_use = false;
		}
	}
}

/* The owner of 'e' starts writing it / is done */
static inline void
progress_write_begin(ProgressEntry *e)
{
	pg_atomic_fetch_add_u32(&e->changecount, 1);
	pg_write_barrier();
}

static inline void
progress_write_end(ProgressEntry *e)
{
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&e->changecount, 1);
}

/* A consistent copy of 'e' (which its owner may be writing) */
static void
progress_read(ProgressEntry *e, ProgressEntry *copy)
{
	for (;;)
	{
		uint32 before = pg_atomic_read_u32(&e->changecount);
		uint32 after;

		pg_read_barrier();
		memcpy(copy, e, sizeof(ProgressEntry));
		pg_read_barrier();
		after = pg_atomic_read_u32(&e->changecount);
		if (before == after && (before & 1) == 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

/* At exit: a rebuild is over, a catch-up waits for its next step */
static void
progress_at_exit(int code, Datum arg)
{
	if (my_entry == NULL)
		return;
	if (my_entry->kind == PROGRESS_CATCHUP)
		progress_detach();
	else
		progress_end();
}

bool
progress_begin(ProgressKind kind, const char *name, Oid owner, int64 position,
			   int64 target, int64 total)
{
	ProgressEntry *e = NULL;
	ProgressEntry *free_entry = NULL;
	bool		   created = false;

	if (progress == NULL)
		return false;
	if (my_entry != NULL)
		progress_end();
	if (!exit_registered)
	{
		on_shmem_exit(progress_at_exit, (Datum) 0);
		exit_registered = true;
	}

	LWLockAcquire(progress->lock, LW_EXCLUSIVE);
	for (int i = 0; i < progress->nentries; i++)
	{
		ProgressEntry *x = &progress->entries[i];

		if (!x->in_use)
		{
			if (free_entry == NULL)
				free_entry = x;
		}
		else if (x->dbid == MyDatabaseId && x->kind == kind &&
				 strcmp(x->name, name) == 0)
		{
			e = x;
			break;
		}
	}
	if (e == NULL && free_entry != NULL)
	{
		TimestampTz now = GetCurrentTimestamp();

		e = free_entry;
		created = true;
		progress_write_begin(e);
		e->in_use = true;
		e->dbid = MyDatabaseId;
		e->kind = kind;
		strlcpy(e->name, name, sizeof(e->name));
		e->started_at = now;
		e->updated_at = now;
		e->start_position = position;
		e->position = position;
		e->target = target;
		e->done = 0;
		e->total = total;
		progress_write_end(e);
	}
	if (e != NULL)
	{
		progress_write_begin(e);
		e->owner = owner;
		e->pid = MyProcPid;
		progress_write_end(e);
	}
	LWLockRelease(progress->lock);
	my_entry = e;
	return created;
}

void
progress_advance(int64 position, int64 ndone)
{
	ProgressEntry *e = my_entry;

	if (e == NULL)
		return;
	progress_write_begin(e);
	if (position > e->position)
		e->position = position;
	e->done += ndone;
	progress_write_end(e);
}

void
progress_set_target(int64 target, int64 total)
{
	ProgressEntry *e = my_entry;

	if (e == NULL)
		return;
	progress_write_begin(e);
	e->target = target;
	e->total = total;
	e->updated_at = GetCurrentTimestamp();
	progress_write_end(e);
}

void
progress_detach(void)
{
	ProgressEntry *e = my_entry;

	if (e == NULL)
		return;
	LWLockAcquire(progress->lock, LW_EXCLUSIVE);
	progress_write_begin(e);
	e->pid = 0;
	e->updated_at = GetCurrentTimestamp();
	progress_write_end(e);
	LWLockRelease(progress->lock);
	my_entry = NULL;
}

void
progress_end(void)
{
	ProgressEntry *e = my_entry;

	if (e == NULL)
		return;
	LWLockAcquire(progress->lock, LW_EXCLUSIVE);
	progress_write_begin(e);
	e->in_use = false;
	e->pid = 0;
	progress_write_end(e);
	LWLockRelease(progress->lock);
	my_entry = NULL;
}

bool
progress_current(ProgressSnapshot *out)
{
	ProgressEntry *e = my_entry;

	if (e == NULL)
		return false;
	/* this process is its only writer: no counter to check */
	out->started_at = e->started_at;
	out->start_position = e->start_position;
	out->position = e->position;
	out->target = e->target;
	out->done = e->done;
	out->total = e->total;
	return true;
}

/* Events per second of 'p' since it started, 0 when too early to say */
static double
progress_rate(ProgressSnapshot *p, TimestampTz now)
{
	double secs = (double) (now - p->started_at) / USECS_PER_SEC;

	if (secs < 0.001 || p->done == 0)
		return 0;
	return p->done / secs;
}

char *
progress_describe(const char *what)
{
	ProgressSnapshot p;
	double			 rate;

	if (!progress_current(&p))
		return pstrdup(what);
	rate = progress_rate(&p, GetCurrentTimestamp());
	if (rate > 0 && p.total > p.done)
		return psprintf("%s: position " INT64_FORMAT " of " INT64_FORMAT
						", " INT64_FORMAT " of about " INT64_FORMAT
						" events, %.0f events/s, about %.0f s left",
						what, p.position, p.target, p.done, p.total, rate,
						(p.total - p.done) / rate);
	return psprintf("%s: position " INT64_FORMAT " of " INT64_FORMAT
					", " INT64_FORMAT " events",
					what, p.position, p.target, p.done);
}

void
progress_prune(ProgressKind kind, bool (*keep)(const char *name),
			   void (*done)(const char *name, int64 position))
{
	typedef struct Pruned
	{
		char  name[PROGRESS_NAME_LEN];
		int64 position;
	} Pruned;
	Pruned *pruned = NULL;
	int		npruned = 0;

	if (progress == NULL)
		return;
	/* before the lock: nothing under it may raise an error */
	pruned = palloc(sizeof(Pruned) * progress->nentries);
	LWLockAcquire(progress->lock, LW_EXCLUSIVE);
	for (int i = 0; i < progress->nentries; i++)
	{
		ProgressEntry *e = &progress->entries[i];

		if (!e->in_use || e->dbid != MyDatabaseId || e->kind != kind ||
			e->pid != 0 || keep(e->name))
			continue;
		progress_write_begin(e);
		e->in_use = false;
		progress_write_end(e);
		memcpy(pruned[npruned].name, e->name, PROGRESS_NAME_LEN);
		pruned[npruned].position = e->position;
		npruned++;
	}
	LWLockRelease(progress->lock);
	/* what the caller says of them, once the lock is released */
	for (int i = 0; i < npruned && done != NULL; i++)
		done(pruned[i].name, pruned[i].position);
	pfree(pruned);
}

/*
 * strata._progress(): the entries of the current database whose owner
 * the current role has the privileges of (all of them for
 * pg_read_all_stats), for the view strata.progress, which computes the
 * rate and the time left.
 */
Datum
strata_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (progress == NULL)
		return (Datum) 0;
	for (int i = 0; i < progress->nentries; i++)
	{
		ProgressEntry copy;
		Datum		  values[11];
		bool		  nulls[11] = {0};

		if (!progress->entries[i].in_use)
			continue;
		progress_read(&progress->entries[i], &copy);
		if (!copy.in_use || copy.dbid != MyDatabaseId)
			continue;
		/* as pg_stat_activity: the work of the roles one has the rights of */
		if (!has_privs_of_role(GetUserId(), copy.owner) &&
			!has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS))
			continue;
		values[0] = CStringGetTextDatum(
			copy.kind == PROGRESS_REBUILD ? "rebuild" : "catch-up");
		values[1] = CStringGetTextDatum(copy.name);
		values[2] = ObjectIdGetDatum(copy.owner);
		values[3] = Int32GetDatum(copy.pid);
		nulls[3] = copy.pid == 0;
		values[4] = TimestampTzGetDatum(copy.started_at);
		values[5] = TimestampTzGetDatum(copy.updated_at);
		values[6] = Int64GetDatum(copy.start_position);
		values[7] = Int64GetDatum(copy.position);
		values[8] = Int64GetDatum(copy.target);
		values[9] = Int64GetDatum(copy.done);
		values[10] = Int64GetDatum(copy.total);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
