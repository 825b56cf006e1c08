/*-------------------------------------------------------------------------
 *
 * worker_dispatch.h
 *	  The strata worker's side of its handler processes
 *	  (worker_dispatch.c): starting them, feeding each subscription its
 *	  events, handing out jobs and taking their results.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_DISPATCH_H
#define STRATA_WORKER_DISPATCH_H

#include "postgres.h"

#include "access/xlogdefs.h"

#include "worker_subs.h"

/* What a handler process is told of the worker that started it */
typedef struct HandlerStartInfo
{
	pid_t  worker_pid;
	uint64 worker_generation;
} HandlerStartInfo;

extern void		  dispatch_init(void);
extern void		  dispatch_start_handlers(void);
extern void		  dispatch_stop_handlers(void);
extern void		  dispatch_collect(void);
extern void		  dispatch_feed(WorkerSub *sub);
extern void		  dispatch_drop_pending(WorkerSub *sub);
extern bool		  dispatch_jobs(long *wait_ms);
extern bool		  dispatch_job_out(WorkerSub *sub);
extern XLogRecPtr dispatch_catchup_floor(XLogRecPtr confirm);

#endif /* STRATA_WORKER_DISPATCH_H */
