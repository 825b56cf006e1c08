/*-------------------------------------------------------------------------
 *
 * worker_subs.h
 *	  A subscription as the worker's processes keep it (worker.c decides
 *	  what it runs next, handler.c runs it), read from strata.subscriptions
 *	  by worker_subs.c, and the transactions those processes run.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_SUBS_H
#define STRATA_WORKER_SUBS_H

#include "postgres.h"

#include "access/htup.h"
#include "access/xlogdefs.h"
#include "utils/timestamp.h"

#include "subscription.h"
#include "worker_internal.h"

/* An event of the stream or of the table, as handed to a handler */
typedef struct WorkerEvent
{
	int64	   position;
	char	  *category;
	char	  *type;
	HeapTuple  tuple;
	XLogRecPtr end_lsn; /* of its transaction; invalid: from the table */
	int		   index;	/* index within its transaction */
	int		   nevents; /* events in its transaction */
} WorkerEvent;

/* A subscription, as read from strata.subscriptions */
typedef struct WorkerSub
{
	char	   *name;
	int64		generation;
	Oid			handler;
	Oid			owner;
	int			ncategories;
	char	  **categories;
	int			ntypes;
	char	  **types;
	bool		on_error_stop;
	char		state; /* 'a'ctive, 'p'aused, 's'topped */
	bool		live;
	SubProgress progress;
	int			attempts;
	TimestampTz last_error_at;
	TimestampTz first_failed_at; /* first failed attempt at the event */
	bool		stale;			 /* SQL changed it under us: reload */
	char	   *what;			 /* "handler of subscription \"name\"" */

	/* the worker's (worker.c), kept across reloads while nothing changed */
	XLogRecPtr	  stream_lsn; /* its events are dispatched up to here */
	XLogRecPtr	  done_lsn;	  /* and processed up to here */
	HandlerEntry *pending;	  /* dispatched, waiting for a handler process */
	int			  npending;
	int			  pending_cap;
} WorkerSub;

/* After a transaction of the worker's processes, this context is current */
extern MemoryContext worker_xact_cxt;

extern void worker_begin(void);
extern void worker_commit(void);
extern void worker_abort(void);
extern int	worker_read_subs(const char *name, const char *stream_id,
							 MemoryContext cxt, WorkerSub ***list);
extern bool worker_extension_present(void);

/* The worker's list of subscriptions, and when it was read */
extern WorkerSub **worker_subs;
extern int		   worker_nsubs;
extern TimestampTz worker_loaded_at;

extern WorkerSub *worker_find_sub(const char *name);
extern void		  worker_drop_pending(WorkerSub *sub);
extern void		  worker_load_subs(void);
extern bool worker_sub_ready(WorkerSub *sub, TimestampTz now, long *wait_ms);

#endif /* STRATA_WORKER_SUBS_H */
