/*-------------------------------------------------------------------------
 *
 * worker_dispatch.c
 *	  The strata worker's side of its handler processes: it starts them
 *	  (strata.handler_workers, once the database has a subscription),
 *	  adds each live subscription's decoded events to those waiting for
 *	  it, hands out jobs and takes their results.
 *
 * A job is one subscription's next piece of work: at most
 * HANDLER_JOB_MAX of the stream events waiting for it (runs of
 * positions in commit order, each with its transaction's end LSN and its
 * index there), or one step of catching up from strata.events.  What
 * waits for a subscription is the decoded transactions themselves
 * (worker_txns.c), held, not copied: a transaction of millions of events
 * is a few runs however many subscriptions wait for it, and reaches
 * each of them a job at a time.  A subscription has at most one job
 * out, so its events run one at a time and in order; different
 * subscriptions run side by side.  Jobs travel in the handler processes'
 * shared slots (worker_internal.h); the handler process's side is
 * handler.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "define.h"
#include "settings.h"
#include "worker.h"
#include "worker_decode.h"
#include "worker_dispatch.h"
#include "worker_internal.h"
#include "worker_subs.h"
#include "worker_txns.h"

/*
 * Most transactions waiting for a handler process, per subscription
 * (what they take is counted against strata.worker_memory too)
 */
#define WORKER_PENDING_MAX 32768

/* Delay before a handler process that stopped is started again */
#define HANDLER_RESTART_DELAY_MS 1000

/* A handler process, as the worker sees it, and the job it was given */
typedef struct HandlerProc
{
	BackgroundWorkerHandle *handle;
	TimestampTz				restart_at;
	bool					busy; /* a job is out */
	char					sub[WORKER_SUB_NAME_LEN];
	int64					generation;
	HandlerJobKind			kind;
	XLogRecPtr				live_lsn;	 /* a catch-up's stream end */
	XLogRecPtr				through_lsn; /* where a stream job brings it */
	uint64					from;		 /* a stream job: the 'serial' of
										  * what it took from */
	int64					nevents;	 /* events it took */
	int						ntxns_done;	 /* whole transactions it ends */
	TxnCursor				cursor;		 /* where the rest starts */
} HandlerProc;

/*
 * The transactions waiting for one subscription's handler, in commit
 * order, each held (worker_txns.h): the first from 'cursor' on, the
 * others whole.  Their events are the subscription's 'npending'.
 */
typedef struct WorkerPending
{
	uint64		 serial; /* unique among the worker's */
	DecodedTxn **txns;
	int			 ntxns;
	int			 cap;
	TxnCursor	 cursor; /* in txns[0] */
} WorkerPending;

static HandlerProc	*handlers = NULL;
static MemoryContext pending_cxt;		/* the subscriptions' pending events */
static int			 dispatch_from = 0; /* where the next dispatch starts */

static HandlerProc *dispatch_job_of(WorkerSub *sub);

/* The worker's view of its handler processes; once, at its start */
void
dispatch_init(void)
{
	handlers = MemoryContextAllocZero(
		TopMemoryContext, sizeof(HandlerProc) * worker_handler_workers);
	pending_cxt = AllocSetContextCreate(
		TopMemoryContext, "strata worker pending", ALLOCSET_DEFAULT_SIZES);
}

/* At the worker's exit: its handler processes go with it */
void
dispatch_stop_handlers(void)
{
	for (int i = 0; handlers != NULL && i < worker_handler_workers; i++)
	{
		pid_t pid = worker_handler_slot(worker_me, i)->pid;

		if (pid != 0)
			(void) kill(pid, SIGTERM);
	}
}

/* Does 'sub' have a job out? */
bool
dispatch_job_out(WorkerSub *sub)
{
	return dispatch_job_of(sub) != NULL;
}

/*
 * The slot may be confirmed no further than where a catch-up out to a
 * handler process may hand its subscription over (the stream end it was
 * given): 'confirm', lowered to that.
 */
XLogRecPtr
dispatch_catchup_floor(XLogRecPtr confirm)
{
	for (int i = 0; i < worker_handler_workers; i++)
		if (handlers[i].busy && handlers[i].kind == JOB_CATCHUP)
			confirm = Min(confirm, handlers[i].live_lsn);
	return confirm;
}

/* Is a job of 'sub' out (to a handler process)? */
static HandlerProc *
dispatch_job_of(WorkerSub *sub)
{
	for (int i = 0; i < worker_handler_workers; i++)
		if (handlers[i].busy && strcmp(handlers[i].sub, sub->name) == 0)
			return &handlers[i];
	return NULL;
}

/*
 * Keep the handler processes running while there are subscriptions: start
 * those that are not (with this worker as the one they serve and notify),
 * a stopped one HANDLER_RESTART_DELAY_MS after it stopped.  One that
 * cannot be started (max_worker_processes) is tried again later, and the
 * status says why meanwhile.
 */
void
dispatch_start_handlers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		failed = false;

	if (worker_nsubs == 0)
		return;
	for (int i = 0; i < worker_handler_workers; i++)
	{
		HandlerProc		*h = &handlers[i];
		HandlerSlot		*hs = worker_handler_slot(worker_me, i);
		BackgroundWorker bgw;
		HandlerStartInfo info;
		pid_t			 pid;
		MemoryContext	 old;
		bool			 registered;

		if (h->handle != NULL &&
			GetBackgroundWorkerPid(h->handle, &pid) != BGWH_STOPPED)
			continue;
		if (h->handle != NULL)
		{
			pfree(h->handle);
			h->handle = NULL;
			h->restart_at =
				TimestampTzPlusMilliseconds(now, HANDLER_RESTART_DELAY_MS);
		}
		/* the slot is free once a process of an earlier worker has gone */
		if (now < h->restart_at || hs->pid != 0)
		{
			/* not started yet: a failure to start it is not over */
			failed = failed || worker_me->failed_start;
			continue;
		}

		worker_bgw_init(&bgw, "strata_handler_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "strata handler %d for database %u",
				 i + 1, MyDatabaseId);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "strata handler");
		bgw.bgw_main_arg = Int32GetDatum(worker_index * HANDLER_ARG_BASE + i);
		info.worker_pid = MyProcPid;
		info.worker_generation = worker_me->generation;
		memcpy(bgw.bgw_extra, &info, sizeof(info));
		bgw.bgw_notify_pid = MyProcPid;
		/* the handle lives as long as the worker, not the round */
		old = MemoryContextSwitchTo(TopMemoryContext);
		registered = RegisterDynamicBackgroundWorker(&bgw, &h->handle);
		MemoryContextSwitchTo(old);
		if (!registered)
		{
			h->handle = NULL;
			h->restart_at =
				TimestampTzPlusMilliseconds(now, HANDLER_RESTART_DELAY_MS * 5);
			ereport(WARNING,
					(errmsg("strata worker could not start a handler process"),
					 errhint("Raise max_worker_processes: each database "
							 "with strata needs 1 + strata.handler_workers "
							 "(%d) of them.",
							 worker_handler_workers)));
			worker_note_start_failure(worker_me,
									  "could not start a strata handler "
									  "process: raise max_worker_processes");
			failed = true;
		}
	}
	if (!failed)
		worker_clear_failure(worker_me, NULL, true);
}

/*
 * A job came back: a stream job that got through leaves the events it
 * ran out of the subscription's pending ones; a catch-up that handed over
 * makes the subscription live where the stream stood; anything else (a
 * failure, a stop, a change by SQL) has the subscriptions read again.
 */
static void
worker_job_done(HandlerProc *h, HandlerJobResult result,
				TimestampTz first_failed_at)
{
	WorkerSub	  *sub = worker_find_sub(h->sub);
	WorkerPending *p;

	h->busy = false;
	if (sub == NULL || sub->generation != h->generation)
		return;
	sub->first_failed_at = first_failed_at;
	if (result == RESULT_HALTED || sub->stale)
	{
		sub->stale = true;
		return;
	}
	if (h->kind == JOB_CATCHUP)
	{
		if (result == RESULT_LIVE)
		{
			sub->live = true;
			sub->stream_lsn = sub->done_lsn = h->live_lsn;
			dispatch_drop_pending(sub);
		}
		return;
	}
	/*
	 * What the job took must still be what waits: not so when the
	 * subscription was read again meanwhile without keeping it (its
	 * progress is then read from the table too)
	 */
	p = sub->pending;
	if (p == NULL || p->serial != h->from || h->nevents > sub->npending ||
		h->ntxns_done > p->ntxns)
	{
		sub->stale = true;
		return;
	}
	for (int i = 0; i < h->ntxns_done; i++)
		txns_release(p->txns[i]);
	p->ntxns -= h->ntxns_done;
	memmove(p->txns, p->txns + h->ntxns_done, sizeof(DecodedTxn *) * p->ntxns);
	p->cursor = h->cursor;
	sub->npending -= h->nevents;
	Assert(sub->npending > 0 || p->ntxns == 0);
	sub->done_lsn = sub->npending == 0 ? sub->stream_lsn : h->through_lsn;
	sub->attempts = 0;
}

/* Take the results of the jobs that came back. */
void
dispatch_collect(void)
{
	for (int i = 0; i < worker_handler_workers; i++)
	{
		HandlerProc		*h = &handlers[i];
		HandlerSlot		*hs = worker_handler_slot(worker_me, i);
		HandlerJobResult result = RESULT_HALTED;
		TimestampTz		 first_failed_at = 0;
		bool			 done = false;

		if (!h->busy)
			continue;
		SpinLockAcquire(&hs->mutex);
		if (hs->state == JOB_DONE)
		{
			result = hs->result;
			first_failed_at = hs->first_failed_at;
			hs->state = JOB_NONE;
			done = true;
		}
		SpinLockRelease(&hs->mutex);
		if (done)
			worker_job_done(h, result, first_failed_at);
	}
}

/* Let go of what waits for 'sub' */
void
dispatch_drop_pending(WorkerSub *sub)
{
	WorkerPending *p = sub->pending;

	if (p != NULL)
	{
		for (int i = 0; i < p->ntxns; i++)
			txns_release(p->txns[i]);
		if (p->txns != NULL)
			pfree(p->txns);
		pfree(p);
	}
	sub->pending = NULL;
	sub->npending = 0;
}

/*
 * Add the round's transactions that are past where the stream was
 * dispatched to 'sub' to what waits for its handler: at most
 * WORKER_PENDING_MAX of them, and none but the first while what the
 * subscriptions wait for exceeds strata.worker_memory (worker_txns.c).
 * A subscription that is busy for long falls behind and gets the rest by
 * a rewind once its handler is free again.  The first transaction after
 * the subscription's checkpoint starts after the events the checkpoint
 * says are done (a crash in the middle of a large transaction resumes
 * where its last batch ended).
 */
void
dispatch_feed(WorkerSub *sub)
{
	WorkerPending *p = sub->pending;
	int			   t = 0;

	if (p == NULL)
	{
		static uint64 serial = 0;

		p = sub->pending =
			MemoryContextAllocZero(pending_cxt, sizeof(WorkerPending));
		p->serial = ++serial;
	}
	while (t < decoded.ntxns && decoded.txns[t]->end_lsn <= sub->stream_lsn)
		t++;
	for (; t < decoded.ntxns; t++)
	{
		DecodedTxn *txn = decoded.txns[t];
		int64		skip = 0;

		/* one transaction at least; more within the bounds */
		if (p->ntxns >= WORKER_PENDING_MAX ||
			(p->ntxns > 0 && txns_over_budget()))
			break;
		/* the next transaction after the checkpoint: part may be done */
		if (sub->npending == 0 &&
			sub->stream_lsn == sub->progress.checkpoint_lsn)
			skip = Min((int64) sub->progress.checkpoint_index, txn->nevents);
		if (skip < txn->nevents)
		{
			if (p->ntxns == p->cap)
			{
				p->cap = p->cap == 0 ? 16 : p->cap * 2;
				p->txns =
					p->txns == NULL
						? MemoryContextAlloc(pending_cxt,
											 sizeof(DecodedTxn *) * p->cap)
						: repalloc(p->txns, sizeof(DecodedTxn *) * p->cap);
			}
			if (p->ntxns == 0)
				txns_seek(txn, &p->cursor, skip);
			txns_hold(txn);
			p->txns[p->ntxns++] = txn;
			sub->npending += txn->nevents - skip;
		}
		sub->stream_lsn = txn->end_lsn;
	}
	/* after a rewind the round may end below what was dispatched already */
	if (t == decoded.ntxns)
		sub->stream_lsn = Max(sub->stream_lsn, decode_lsn);
	if (sub->npending == 0 && dispatch_job_of(sub) == NULL)
		sub->done_lsn = sub->stream_lsn;
}

/* An idle handler process, or NULL */
static HandlerProc *
worker_idle_handler(int *index)
{
	for (int i = 0; i < worker_handler_workers; i++)
	{
		HandlerSlot *hs = worker_handler_slot(worker_me, i);

		/* a process this worker started (not one of an earlier worker) */
		if (!handlers[i].busy && handlers[i].handle != NULL && hs->pid != 0 &&
			hs->worker_generation == worker_me->generation &&
			hs->state == JOB_NONE)
		{
			*index = i;
			return &handlers[i];
		}
	}
	return NULL;
}

/*
 * Write the next job of the live 'sub' into 'runs' (a handler slot's):
 * its next HANDLER_JOB_MAX events at most, from what waits for it, and
 * in 'h' how far the job takes it.  Returns the number of runs.
 */
static int
worker_job_runs(WorkerSub *sub, HandlerProc *h, HandlerRun *runs)
{
	static DecodedRun taken[HANDLER_JOB_MAX];
	WorkerPending	 *p = sub->pending;
	TxnCursor		  cur;
	int				  n = 0;
	int				  t = 0;

	/* where it stands when these ran: at the last whole transaction */
	h->through_lsn = sub->done_lsn;
	if (p == NULL)
		return 0;
	h->from = p->serial;
	cur = p->cursor;
	while (t < p->ntxns && h->nevents < HANDLER_JOB_MAX)
	{
		DecodedTxn *txn = p->txns[t];
		int64		start = cur.event;
		int64		index = start;
		int			got;

		got = txns_take(txn, &cur, HANDLER_JOB_MAX - h->nevents, taken);
		for (int k = 0; k < got; k++)
		{
			runs[n].first = taken[k].first;
			runs[n].count = (int32) taken[k].count;
			runs[n].end_lsn = txn->end_lsn;
			runs[n].index = (int32) index;
			runs[n].nevents = (int32) txn->nevents;
			index += taken[k].count;
			n++;
		}
		h->nevents += cur.event - start;
		if (cur.event < txn->nevents)
			break;
		/* the whole transaction: the next starts at its beginning */
		h->through_lsn = txn->end_lsn;
		memset(&cur, 0, sizeof(cur));
		t++;
	}
	if (h->nevents == sub->npending)
		h->through_lsn = sub->stream_lsn;
	h->ntxns_done = t;
	h->cursor = cur;
	return n;
}

/*
 * Give 'sub' to the idle handler process 'index': its pending events (as
 * many as a job holds), or, catching up, a step from the table that may
 * hand it over at the current end of the stream (decoded and visible).
 * False when the process turns out to be gone: the job is assigned under
 * the slot's mutex only while the process holds the slot, so that its
 * exit (handler_detach, under the same mutex) either comes before and no
 * job is given, or comes after and ends the job as halted.
 */
static bool
worker_give_job(WorkerSub *sub, HandlerProc *h, int index)
{
	HandlerSlot *hs = worker_handler_slot(worker_me, index);
	int			 n = 0;
	Latch		*latch;
	bool		 given = false;

	strlcpy(h->sub, sub->name, sizeof(h->sub));
	h->generation = sub->generation;
	h->kind = sub->live ? JOB_STREAM : JOB_CATCHUP;
	h->live_lsn = decode_lsn;
	h->from = 0;
	h->nevents = 0;
	h->ntxns_done = 0;
	if (sub->live)
		n = worker_job_runs(sub, h, hs->runs);

	SpinLockAcquire(&hs->mutex);
	if (hs->pid != 0 && hs->worker_generation == worker_me->generation &&
		hs->state == JOB_NONE)
	{
		strlcpy(hs->sub, sub->name, sizeof(hs->sub));
		hs->generation = sub->generation;
		hs->kind = h->kind;
		hs->live_lsn = h->live_lsn;
		strlcpy(hs->stream_id, decode_stream_id ? decode_stream_id : "",
				sizeof(hs->stream_id));
		hs->first_failed_at = sub->attempts > 0 ? sub->first_failed_at : 0;
		hs->nruns = n;
		hs->state = JOB_ASSIGNED;
		given = true;
	}
	latch = hs->latch;
	SpinLockRelease(&hs->mutex);
	h->busy = given;
	if (given && latch != NULL)
		SetLatch(latch);
	return given;
}

/*
 * Hand out jobs to the idle handler processes: to every active
 * subscription that is due (not waiting to retry), has no job out, and
 * has pending events or is catching up.  Starts where the last dispatch
 * stopped, so that no subscription waits behind the others for a handler
 * process.  Returns true when some subscription still waits for one.
 */
bool
dispatch_jobs(long *wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		waiting = false;

	for (int k = 0; k < worker_nsubs; k++)
	{
		int			 i = (dispatch_from + k) % worker_nsubs;
		WorkerSub	*sub = worker_subs[i];
		HandlerProc *h;
		int			 index;

		/* a live one with nothing waiting may be behind: see the rewind */
		if (sub->stale || (sub->live && sub->npending == 0) ||
			dispatch_job_of(sub) != NULL ||
			!worker_sub_ready(sub, now, wait_ms))
			continue;
		h = worker_idle_handler(&index);
		if (h == NULL)
		{
			waiting = true;
			continue;
		}
		if (!worker_give_job(sub, h, index))
		{
			waiting = true;
			continue;
		}
		dispatch_from = (i + 1) % worker_nsubs;
	}
	return waiting;
}
