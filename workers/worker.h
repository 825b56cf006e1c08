/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The state of a "strata worker" process (worker.c) that its other
 *	  files (worker_decode.c, worker_dispatch.c, worker_subs.c) share.
 *	  Private to workers/: src/ asks through src/workers.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_H
#define STRATA_WORKER_H

#include "postgres.h"

#include "worker_internal.h"

/* The worker's database slot, and its index */
extern WorkerSlot *worker_me;
extern int		   worker_index;

#endif /* STRATA_WORKER_H */
