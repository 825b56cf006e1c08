/*-------------------------------------------------------------------------
 *
 * progress.h
 *	  Progress of long work, in shared memory, for strata.progress: a
 *	  rebuild of an inline projection (in the calling backend) and a
 *	  subscription catching up from strata.events (in the worker's
 *	  handler processes, one step per job).  Implemented in progress.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_PROGRESS_H
#define STRATA_PROGRESS_H

#include "postgres.h"

#include "utils/timestamp.h"

typedef enum ProgressKind
{
	PROGRESS_REBUILD = 1, /* strata.rebuild_projection of an inline one */
	PROGRESS_CATCHUP	  /* a subscription catching up from the table */
} ProgressKind;

/* At server start */
extern Size progress_shmem_size(void);
extern void progress_shmem_request(void);
extern void progress_shmem_init(void);

/*
 * Start reporting the work of 'kind' on 'name' in this database, or take
 * it over where an earlier step left it (a catch-up goes on in later jobs,
 * maybe in another process).  Returns true when it is new.  Only one piece
 * of work per process at a time; without a free entry nothing is shown.
 */
extern bool progress_begin(ProgressKind kind, const char *name, Oid owner,
						   int64 position, int64 target, int64 total);

/* The work reached 'position', 'ndone' more events done */
extern void progress_advance(int64 position, int64 ndone);

/* Where the work now ends, and how many events it has in all */
extern void progress_set_target(int64 target, int64 total);

/* This process stops working on it for now (a catch-up's next step) */
extern void progress_detach(void);

/* The work is over: its entry goes */
extern void progress_end(void);

/* What this process's work has done so far (valid after progress_begin) */
typedef struct ProgressSnapshot
{
	TimestampTz started_at;
	int64		start_position;
	int64		position;
	int64		target;
	int64		done;
	int64		total;
} ProgressSnapshot;
extern bool progress_current(ProgressSnapshot *out);

/* A line for pg_stat_activity: "<what>: position p of t, n of m events..." */
extern char *progress_describe(const char *what);

/*
 * Drop the entries of 'kind' in this database that no process works on
 * and keep(name) does not want: a catch-up of a subscription that was
 * paused, stopped or dropped.  Calls done(name, position) for each.
 */
extern void progress_prune(ProgressKind kind, bool (*keep)(const char *name),
						   void (*done)(const char *name, int64 position));

#endif /* STRATA_PROGRESS_H */
