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
#include "subscription_catalog.h"
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

/*
 * A subscription, as the worker and its handler processes keep it: the
 * catalogue's (subscription_catalog.h), with the fields the workers keep
 * between loads.
 */
typedef Subscription WorkerSub;

/* After a transaction of the worker's processes, this context is current */
extern MemoryContext worker_xact_cxt;

extern void worker_begin(void);
extern void worker_commit(void);
extern void worker_abort(void);
extern bool worker_extension_present(void);

/* The worker's list of subscriptions, and when it was read */
extern WorkerSub **worker_subs;
extern int		   worker_nsubs;
extern TimestampTz worker_loaded_at;

extern WorkerSub *worker_find_sub(const char *name);
extern void		  worker_load_subs(void);
extern bool worker_sub_ready(WorkerSub *sub, TimestampTz now, long *wait_ms);

#endif /* STRATA_WORKER_SUBS_H */
