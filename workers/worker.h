/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background workers of pg_strata: the launcher (launcher.c), which
 *	  keeps one worker per database that has the extension, and the
 *	  worker (worker.c), which runs that database's subscriptions from the
 *	  WAL.  Declares the GUCs of both and the shared state other
 *	  subsystems use to wake a worker or wait for its progress.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_H
#define STRATA_WORKER_H

#include "postgres.h"

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* Longest subscription name, with its terminating zero */
#define WORKER_SUB_NAME_LEN 129

/* Longest worker error kept for strata.subscription_status */
#define WORKER_ERROR_LEN 256

/* GUC strata.databases: databases to run workers in ("" = all) */
extern char *worker_databases;

/* GUC strata.max_workers: most databases served at once */
extern int worker_max_workers;

/* GUC strata.retry_base_delay (ms): first delay before a handler retry */
extern int worker_retry_base_delay;

/* GUC strata.max_attempts: attempts at an event before parking it */
extern int worker_max_attempts;

/* GUC strata.wal_warning_size (MB): retained WAL flagged by the status */
extern int worker_wal_warning_size;

/* GUC strata.worker_batch_size: events per handler transaction */
extern int worker_batch_size;

/* GUC strata.handler_timeout (ms): longest call of a handler, 0 = none */
extern int worker_handler_timeout;

/*
 * One database's entry in shared memory.  The launcher assigns entries;
 * the worker publishes its pid and latch in its entry and broadcasts the
 * condition variable after each transaction that moved a checkpoint.
 */
typedef struct WorkerSlot
{
	Oid				  dbid;		  /* InvalidOid: free */
	pid_t			  pid;		  /* worker's pid, 0 when none runs */
	Latch			 *latch;	  /* worker's latch, NULL when none runs */
	bool			  absent;	  /* the database has no extension */
	bool			  notified;	  /* start the worker without delay */
	bool			  changed;	  /* subscriptions changed: run a round */
	bool			  async_wake; /* woken by an unflushed (async) commit */
	pid_t			  dropper;	  /* backend dropping the database, or 0 */
	ConditionVariable progress;

	slock_t mutex;

	/*
	 * Under 'mutex': left by a handler process that exited because the
	 * handler call under way caught its cancellation, for the next job of
	 * that subscription: the call (at that position, under that
	 * generation).  Unless the subscription was changed since (a pause, a
	 * drop), the call is a failed attempt.
	 */
	char  killed_sub[WORKER_SUB_NAME_LEN];
	bool  killed;
	int64 killed_position;
	int64 killed_generation;

	/*
	 * Under 'mutex': failures in a row of the worker ('failed_sub' "") or
	 * of the jobs of one subscription in a handler process, and the last
	 * error
	 */
	int			failures;
	char		failed_sub[WORKER_SUB_NAME_LEN];
	bool		failed_start; /* the worker could not start a handler process */
	char		last_error[WORKER_ERROR_LEN];
	TimestampTz last_error_at;
} WorkerSlot;

/* In a worker: one of its own transactions (a handler) appended events */
extern bool worker_self_appended;

extern void		   worker_init(void);
extern void		   worker_wake(Oid dbid);
extern void		   worker_notify_at_commit(void);
extern void		   worker_cancel_at_commit(const char *subscription);
extern bool		   worker_in_handler_of(const char *subscription);
extern WorkerSlot *worker_slot_for(Oid dbid);
extern WorkerSlot *worker_slot(int index);
extern bool		   worker_claim(WorkerSlot *slot);
extern void		   worker_release(WorkerSlot *slot);
extern void		   worker_mark_absent(WorkerSlot *slot);

extern PGDLLEXPORT void strata_launcher_main(Datum arg);
extern PGDLLEXPORT void strata_worker_main(Datum arg);

#endif /* STRATA_WORKER_H */
