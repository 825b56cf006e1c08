/*-------------------------------------------------------------------------
 *
 * worker_internal.h
 *	  What the processes of workers/ share and nothing else sees: their
 *	  shared memory (workers.c), a database's slot, the handler
 *	  processes' slots and the jobs the database's worker hands them
 *	  (worker_dispatch.c to handler.c).  src/ sees none of it: it asks
 *	  through src/workers.h.
 *
 * A database's "strata worker" (worker.c) decodes the WAL and decides
 * what each subscription must run next; it never calls a handler.  Its
 * "strata handler" processes (handler.c, strata.handler_workers of them)
 * run the handlers: each takes one job at a time, for one subscription,
 * so that a handler that sleeps holds only its own subscription (and one
 * handler process), never the others of the database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_INTERNAL_H
#define STRATA_WORKER_INTERNAL_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"

#include "settings.h"
#include "subscription.h"

/* Longest subscription name, with its terminating zero */
#define WORKER_SUB_NAME_LEN 129

/* Longest worker error kept for strata.subscription_status */
#define WORKER_ERROR_LEN 256

/*
 * One database's entry in shared memory.  The launcher assigns entries
 * (dbid, absent, dropper: under WorkerShared.lock); the worker claims
 * its entry, publishing its pid and latch and a new 'generation', and
 * broadcasts 'progress' after each transaction that moved a checkpoint.
 * 'pid' is cleared by the exiting worker itself (an on_shmem_exit
 * callback, which every exit but a crash runs, and a crash resets shared
 * memory), so a non-zero pid is a live worker: no kill(pid, 0) is needed.
 */
typedef struct WorkerSlot
{
	Oid				  dbid;		  /* InvalidOid: free */
	pid_t			  pid;		  /* worker's pid, 0 when none runs */
	Latch			 *latch;	  /* worker's latch, NULL when none runs */
	uint64			  generation; /* bumped by each worker that claims it */
	bool			  absent;	  /* the database has no extension */
	pid_t			  dropper;	  /* backend dropping the database, or 0 */
	ConditionVariable progress;

	/* flags set by any process, read and cleared by the worker/launcher */
	pg_atomic_uint32 notified;	 /* start the worker without delay */
	pg_atomic_uint32 changed;	 /* subscriptions changed: run a round */
	pg_atomic_uint32 async_wake; /* woken by an unflushed (async) commit */

	slock_t mutex;

	/*
	 * Under 'mutex': failures in a row of the worker ('failed_sub' "") or
	 * of the jobs of one subscription in a handler process, and the last
	 * error
	 */
	int	 failures;
	char failed_sub[WORKER_SUB_NAME_LEN];
	bool failed_start; /* the worker could not start a handler process */
	char last_error[WORKER_ERROR_LEN];
	TimestampTz last_error_at;
} WorkerSlot;

/* Most events in one job, and so most runs (they are in shared memory) */
#define HANDLER_JOB_MAX 2048

/* Longest identity of a stream (strata._stream), with its zero */
#define WORKER_STREAM_ID_LEN 96

/* Longest sleep of an idle handler process before it looks at its worker */
#define HANDLER_NAPTIME_MS 1000

/* A handler process's argument: slot index * this + its index */
#define HANDLER_ARG_BASE (SETTINGS_MAX_HANDLER_WORKERS + 1)

/*
 * A run of a job: 'count' consecutive positions from 'first', all
 * written by one transaction, and their place in the stream: the end of
 * that transaction's commit record, the index in it of the run's first
 * event, and how many events it has (which moves the checkpoint).  The
 * handler process reads the rows itself from strata.events.
 */
typedef struct HandlerRun
{
	int64	   first;
	XLogRecPtr end_lsn;
	int32	   count;
	int32	   index;
	int32	   nevents;
} HandlerRun;

typedef enum HandlerJobState
{
	JOB_NONE = 0, /* the slot takes a job */
	JOB_ASSIGNED, /* written by the worker, not taken yet */
	JOB_RUNNING,  /* taken by the handler process */
	JOB_DONE	  /* 'result' says how it ended */
} HandlerJobState;

typedef enum HandlerJobKind
{
	JOB_STREAM, /* run 'runs', events of the stream */
	JOB_CATCHUP /* one catching-up step from strata.events */
} HandlerJobKind;

typedef enum HandlerJobResult
{
	RESULT_THROUGH, /* every event ran (stream), or a step was made */
	RESULT_LIVE,	/* caught up: handed over to the stream at live_lsn */
	RESULT_HALTED	/* it stopped: a failure, a stop, a change by SQL */
} HandlerJobResult;

/*
 * A handler process's entry in shared memory, one per handler process of
 * each database slot.  The job fields are written by the database's
 * worker while the state is JOB_NONE and read by the handler process
 * once it is JOB_ASSIGNED; the state moves under 'mutex'.  The handler
 * process writes 'result' and 'first_failed_at' before it sets JOB_DONE.
 */
typedef struct HandlerSlot
{
	pid_t  pid;				  /* the handler process, 0 when none runs */
	Latch *latch;			  /* its latch */
	uint64 worker_generation; /* of the worker that started it */

	slock_t			 mutex;
	HandlerJobState	 state;
	HandlerJobKind	 kind;
	HandlerJobResult result;
	char			 sub[WORKER_SUB_NAME_LEN]; /* the job's subscription */
	int64			 generation; /* the one the job was made under */
	XLogRecPtr		 live_lsn;	 /* catch-up: where the stream stands */
	char			 stream_id[WORKER_STREAM_ID_LEN]; /* its identity */
	TimestampTz		 first_failed_at; /* first failed attempt, 0: none */
	int				 nruns;

	/* under 'mutex': the handler call under way, and its cancellation */
	char running[WORKER_SUB_NAME_LEN]; /* its subscription, "" if none */
	bool cancel_running; /* pause or unsubscribe asked to stop it */

	/*
	 * The call under way, written by the process at the start of every
	 * call; 'killed' is set when the process is about to exit because that
	 * call caught its cancellation.
	 */
	char  killed_sub[WORKER_SUB_NAME_LEN];
	bool  killed;
	int64 killed_position;
	int64 killed_generation;

	/*
	 * Under 'mutex': the record of that call, left at its exit by the
	 * process that was stopped, for the next job of its subscription in
	 * whichever handler process of the database (handler_take_killed).
	 * One per handler slot: processes stopped at the same time for
	 * different subscriptions each leave their own.  Unless the
	 * subscription was changed since (a pause, a drop), the call is a
	 * failed attempt.
	 */
	bool  left;
	char  left_sub[WORKER_SUB_NAME_LEN];
	int64 left_position;
	int64 left_generation;

	HandlerRun runs[HANDLER_JOB_MAX];
} HandlerSlot;

/* The workers' shared memory (workers.c) */
typedef struct WorkerShared
{
	LWLock		*lock;			 /* protects the slots' assignment */
	Latch		*launcher_latch; /* NULL when no launcher runs */
	int			 nslots;
	int			 nhandlers; /* handler slots per slot */
	HandlerSlot *handlers;	/* nslots * nhandlers of them */
	WorkerSlot	 slots[FLEXIBLE_ARRAY_MEMBER];
} WorkerShared;

extern WorkerShared *worker_shared;

/* workers.c: the slots */
extern WorkerSlot  *worker_slot_for(Oid dbid);
extern WorkerSlot  *worker_slot(int index);
extern int			worker_slot_index(WorkerSlot *slot);
extern HandlerSlot *worker_handler_slot(WorkerSlot *slot, int index);
extern bool			worker_handlers_running(WorkerSlot *slot);
extern bool			worker_claim(WorkerSlot *slot);
extern void			worker_release(WorkerSlot *slot);
extern void			worker_mark_absent(WorkerSlot *slot);

/* In a worker or handler process: one of its own transactions appended */
extern bool worker_self_appended;

/* the mains of the three kinds of process */
extern PGDLLEXPORT void strata_launcher_main(Datum arg);
extern PGDLLEXPORT void strata_worker_main(Datum arg);

/* handler.c */
extern PGDLLEXPORT void strata_handler_main(Datum arg);
extern bool handler_process; /* this process is a handler process */

/* Record a failure of the worker or a handler process (status 'failing') */
extern void worker_note_failure(WorkerSlot *slot, const char *subscription,
								const char *message);
extern void worker_clear_failure(WorkerSlot *slot, const char *subscription,
								 bool started);
extern void worker_note_start_failure(WorkerSlot *slot, const char *message);

/* A dynamic background worker of strata's, connected to a database */
struct BackgroundWorker;
extern void worker_bgw_init(struct BackgroundWorker *bgw,
							const char				*function);

/* In a SIGINT handler: a lock_timeout or statement_timeout of its own? */
extern bool worker_own_timeout(void);

#endif /* STRATA_WORKER_INTERNAL_H */
