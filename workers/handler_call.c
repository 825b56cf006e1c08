/*-------------------------------------------------------------------------
 *
 * handler_call.c
 *	  One call of a subscription's handler in a handler process: its
 *	  timeout (strata.handler_timeout), its cancellation by a pause or an
 *	  unsubscribe, and the end of a process whose handler ignores its
 *	  cancellation, counted as a failed attempt by the next job.
 *
 * The call itself goes through usercall.c (as the owner, restricted,
 * its settings rolled back); this file only watches it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "settings.h"
#include "usercall.h"
#include "workers.h"
#include "handler.h"

/*
 * How long a handler may go on after its cancellation (by the timeout or
 * a pause) before the worker exits: PL/pgSQL can catch a cancel
 * (EXCEPTION WHEN query_canceled), but not the FATAL of a terminate.
 */
#define WORKER_CANCEL_GRACE_MS 5000

/*
 * How often, during a batch, the handler call under way is looked at: for
 * strata.handler_timeout, and for the grace above.  One periodic timer per
 * batch rather than timers per call, which would cost system calls for
 * every event; the timeout is kept to within this.
 */
#define WORKER_TICK_MS 100

/* Set while a handler runs: only then may SIGINT or the timeout cancel */
static volatile sig_atomic_t worker_in_handler = false;

/* The handler call under way passed strata.handler_timeout */
static volatile sig_atomic_t worker_timed_out = false;

/* Ticks since the handler under way was cancelled (0: it was not) */
static volatile sig_atomic_t worker_cancel_ticks = 0;

/* When the handler call under way started */
static volatile TimestampTz worker_call_start = 0;

/* The call was cancelled by a pause or unsubscribe (set after the call) */
static bool worker_call_cancelled = false;

/* The call a previous worker of the slot was stopped in (handler_tick) */
static char *killed_sub = NULL;
static int64 killed_position;
static int64 killed_generation;

static TimeoutId worker_tick_id;

/*
 * Cancel the handler under way, as a query cancel does: its next
 * CHECK_FOR_INTERRUPTS raises 57014.  With 'ours' (the timeout, a pause
 * or a drop), a handler that catches the cancel is terminated after
 * WORKER_CANCEL_GRACE_MS (handler_tick).  Outside a handler call, nothing.
 */
static void
worker_cancel_handler(bool ours)
{
	if (worker_in_handler)
	{
		InterruptPending = true;
		QueryCancelPending = true;
		if (ours && worker_cancel_ticks == 0)
			worker_cancel_ticks = 1;
	}
	SetLatch(MyLatch);
}

/*
 * SIGINT.  PostgreSQL's own lock_timeout and statement_timeout signal the
 * process itself: those cancel as usual, in a handler or not.  Otherwise
 * it comes from a backend that paused or dropped the subscription whose
 * handler runs (cancel_running, read without the lock: a stale value
 * only decides whether a caught cancel is escalated), or from
 * pg_cancel_backend, and cancels the handler under way only: a signal
 * arriving after the call it was meant for ended is ignored, and the
 * worker's own work is never interrupted that way.
 */
void
handler_sigint(SIGNAL_ARGS)
{
	int save_errno = errno;

	if (worker_own_timeout())
		SetLatch(MyLatch);
	else
		worker_cancel_handler(handler_me->cancel_running);
	errno = save_errno;
}

/*
 * Every WORKER_TICK_MS of a batch (a timeout handler, in the signal
 * handler of SIGALRM), during a handler call: past
 * strata.handler_timeout, cancel it; still running WORKER_CANCEL_GRACE_MS
 * after a cancellation of ours, it caught it: terminate the worker (a
 * FATAL, which no handler can catch).  The launcher starts it again, and
 * the next worker counts the call as a failed attempt
 * (handler_check_killed).  The slot's fields written here are read only by
 * the next worker of the slot.
 */
static void
handler_tick(void)
{
	if (!worker_in_handler)
		return;
	if (!worker_timed_out && worker_handler_timeout > 0 &&
		GetCurrentTimestamp() >=
			worker_call_start + (TimestampTz) worker_handler_timeout * 1000)
	{
		worker_timed_out = true;
		worker_cancel_handler(true);
	}
	if (worker_cancel_ticks == 0)
		return;
	if (worker_cancel_ticks++ * WORKER_TICK_MS < WORKER_CANCEL_GRACE_MS)
		return;
	handler_me->killed = true;
	InterruptPending = true;
	ProcDiePending = true;
	SetLatch(MyLatch);
}

/*
 * Is this process a strata worker running the handler of 'subscription'?
 * Such a handler may not change its own subscription: the change would
 * roll back with the batch it belongs to, forever.
 */
bool
workers_in_handler_of(const char *subscription)
{
	return worker_in_handler && handler_me != NULL &&
		   strcmp(handler_me->running, subscription) == 0;
}

/* Publish the subscription whose handler is about to run ("" after). */
static void
worker_set_running(const char *name)
{
	SpinLockAcquire(&handler_me->mutex);
	strlcpy(handler_me->running, name, sizeof(handler_me->running));
	if (name[0] == '\0')
		worker_call_cancelled = handler_me->cancel_running;
	handler_me->cancel_running = false;
	SpinLockRelease(&handler_me->mutex);
}

/*
 * Call the handler of 'sub' on one event, as its owner (usercall.c), under
 * strata.handler_timeout, cancellable by a pause or an unsubscribe.
 */
void
handler_call(WorkerSub *sub, UserFunc *uf, Datum event, int64 position)
{
	worker_set_running(sub->name);
	strlcpy(handler_me->killed_sub, sub->name, sizeof(handler_me->killed_sub));
	handler_me->killed_generation = sub->generation;
	handler_me->killed_position = position;
	worker_timed_out = false;
	worker_cancel_ticks = 0;
	worker_call_cancelled = false;
	worker_call_start = GetCurrentTimestamp();
	worker_in_handler = true;
	PG_TRY();
	{
		usercall_void(uf, 1, &event);
	}
	PG_FINALLY();
	{
		worker_in_handler = false;
		/* a cancel that came too late for the handler is not the worker's */
		QueryCancelPending = false;
		worker_set_running("");
	}
	PG_END_TRY();
}

/*
 * Before calling the handler of 'sub' on the event at 'position': did a
 * previous worker of this slot exit because that very call caught its
 * cancellation?  Then it was a failed attempt: raise it as the call's
 * error, without calling the handler again, so that it is retried, then
 * parked or stopped, like any failure.  (After a pause or a drop, the
 * subscription has a new generation: nothing to count.)
 */
void
handler_check_killed(WorkerSub *sub, int64 position)
{
	if (killed_sub == NULL || strcmp(killed_sub, sub->name) != 0)
		return;
	if (killed_generation != sub->generation)
	{
		pfree(killed_sub);
		killed_sub = NULL; /* paused, dropped or changed since */
		return;
	}
	if (killed_position != position)
		return;
	pfree(killed_sub);
	killed_sub = NULL;
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("handler of subscription \"%s\" ignored its "
					"cancellation",
					sub->name),
			 errdetail("It was cancelled (strata.handler_timeout is %d ms) "
					   "and ran on; the strata worker was restarted to stop "
					   "it.",
					   worker_handler_timeout)));
}

/*
 * Before a job of 'sub': take over the call a handler process that ran
 * the subscription left when it was stopped (handler_tick, handler_detach).
 */
void
handler_take_killed(WorkerSub *sub)
{
	bool found = false;

	for (int i = 0; i < worker_handler_workers && !found; i++)
	{
		HandlerSlot *hs = worker_handler_slot(handler_db, i);

		if (!hs->left)
			continue;
		SpinLockAcquire(&hs->mutex);
		if (hs->left && strcmp(hs->left_sub, sub->name) == 0)
		{
			killed_position = hs->left_position;
			killed_generation = hs->left_generation;
			hs->left = false;
			found = true;
		}
		SpinLockRelease(&hs->mutex);
	}
	if (found)
	{
		/* nothing that may fail under the spinlock */
		if (killed_sub != NULL)
			pfree(killed_sub);
		killed_sub = MemoryContextStrdup(TopMemoryContext, sub->name);
	}
	if (found)
		ereport(LOG, (errmsg("strata subscription \"%s\": the previous "
							 "handler process was stopped while its handler "
							 "ignored a cancellation",
							 sub->name)));
}

/*
 * A handler call ended with 57014: a pause or unsubscribe of 'sub' (not a
 * failure: -2, read the subscription again), the timeout (a failure, with
 * a message that says so), or a cancel by a DBA (a failure).  Returns the
 * result of the batch, 'current' for a failure at that event.
 */
int
handler_cancelled(WorkerSub *sub, ErrorData *edata, int current)
{
	if (worker_call_cancelled)
		return -2;
	if (worker_timed_out)
	{
		edata->message = psprintf("handler of subscription \"%s\" ran "
								  "longer than strata.handler_timeout (%d ms)",
								  sub->name, worker_handler_timeout);
		worker_timed_out = false;
	}
	return current;
}

/* Register the tick; once, at the start of the process */
void
handler_call_init(void)
{
	worker_tick_id = RegisterTimeout(USER_TIMEOUT, handler_tick);
}

/* The handler calls' timeout and grace (handler_tick), for a batch */
void
handler_tick_start(void)
{
	enable_timeout_every(
		worker_tick_id,
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_TICK_MS),
		WORKER_TICK_MS);
}

void
handler_tick_stop(void)
{
	disable_timeout(worker_tick_id, false);
}
