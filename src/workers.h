/*-------------------------------------------------------------------------
 *
 * workers.h
 *	  The seam between the SQL side (src/) and the background workers
 *	  (workers/): everything src/ may ask of the workers, and nothing of
 *	  how they work.  Implemented in workers/workers.c.
 *
 * What replication/logicallauncher.h is to PostgreSQL's logical
 * replication workers: src/ includes no workers/ header (the build
 * compiles src/ without workers/ on the include path), and the workers'
 * shared-memory structures stay private to workers/ (worker_internal.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKERS_H
#define STRATA_WORKERS_H

#include "postgres.h"

#include "utils/timestamp.h"

/* At server start, from _PG_init's shared-memory hooks and while preloading */
extern Size workers_shmem_size(void);
extern void workers_shmem_request(void);
extern void workers_shmem_init(void);
extern void workers_register(void);

/* A transaction of this backend appended and commits now: wake database X */
extern void workers_wake(Oid dbid);

/* Subscriptions of this database changed: wake its worker at commit */
extern void workers_wake_at_commit(void);

/* At commit, interrupt the handler call of 'subscription' if one runs */
extern void workers_cancel_at_commit(const char *subscription);

/* Is this process running the handler of 'subscription' now? */
extern bool workers_in_handler_of(const char *subscription);

/*
 * Sleep until reached(arg) is true or 'deadline' passes; returns the last
 * answer of reached().  On a primary the sleep ends when this database's
 * worker records progress; on a standby reached() is polled.
 */
extern bool workers_wait(bool (*reached)(void *arg), void *arg,
						 TimestampTz deadline);

/*
 * Why this database's worker makes no progress, when it knows: no worker
 * runs, or it keeps failing (palloc'd message); NULL otherwise and on a
 * standby.
 */
extern char *workers_trouble(void);

/* Before DROP DATABASE 'dbname': stop and hold off its worker */
extern void workers_before_drop_database(const char *dbname);

#endif /* STRATA_WORKERS_H */
