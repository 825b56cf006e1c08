/*-------------------------------------------------------------------------
 *
 * handler.h
 *	  The state of a "strata handler" process (handler.c) shared by its
 *	  other files: handler_call.c (one handler call: timeout and
 *	  cancellation), handler_apply.c (batches, progress, failures,
 *	  parking, stopping) and handler_catchup.c (catching up from
 *	  strata.events and the hand-over to the stream).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_HANDLER_H
#define STRATA_HANDLER_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "utils/elog.h"

#include "usercall.h"
#include "worker_internal.h"
#include "worker_subs.h"

/* The database's slot, and this process's handler slot in it */
extern WorkerSlot  *handler_db;
extern HandlerSlot *handler_me;

/* The job under way (in job_cxt), one handler call (in event_cxt) */
extern MemoryContext job_cxt;
extern MemoryContext event_cxt;

/* The job under way, copied out of the slot */
extern HandlerJobKind job_kind;
extern XLogRecPtr	  job_live_lsn;
extern char			  job_stream_id[WORKER_STREAM_ID_LEN];
extern TimestampTz	  job_first_failed_at;

/* The row type of strata.events, for the rows handed to handlers */
extern TupleDesc events_desc;

/* handler_call.c */
extern void handler_call_init(void);
extern void handler_sigint(SIGNAL_ARGS);
extern void handler_tick_start(void);
extern void handler_tick_stop(void);
extern void handler_call(WorkerSub *sub, UserFunc *uf, Datum event,
						 int64 position);
extern void handler_check_killed(WorkerSub *sub, int64 position);
extern void handler_take_killed(WorkerSub *sub);
extern int	handler_cancelled(WorkerSub *sub, ErrorData *edata, int current);

/* handler_apply.c */
extern void handler_sample(void);
extern bool handler_run_list(WorkerSub *sub, WorkerEvent *list, int n);
extern bool handler_commit_progress(WorkerSub *sub, int64 settle, bool go_live,
									XLogRecPtr live_lsn);

/* handler_catchup.c */
extern HandlerJobResult handler_catchup(WorkerSub *sub);
extern void				handler_catchup_tick(WorkerSub *sub, int64 position);

#endif /* STRATA_HANDLER_H */
