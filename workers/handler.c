/*-------------------------------------------------------------------------
 *
 * handler.c
 *	  The "strata handler" processes: they run subscriptions' handlers, a
 *	  job at a time, for the database's worker (worker.c).
 *
 * The worker decodes the WAL and hands each handler process a job in its
 * shared slot (worker_internal.h): the events of one subscription, as
 * positions in commit order (a stream job), or one step of catching up
 * from strata.events.  The handler process reads the subscription and
 * the events' rows itself, calls the handler on each event as the
 * subscription's owner (usercall.c), in transactions of up to
 * strata.worker_batch_size events that also move the subscription's
 * progress, and tells the worker how the job ended.  A handler that
 * sleeps holds its own process and subscription, never the worker or
 * the other subscriptions of the database.
 *
 * Also here, because it happens while a handler runs: the timeout of a
 * handler call (strata.handler_timeout), its cancellation by a pause or
 * an unsubscribe, and the end of a process whose handler ignores its
 * cancellation; failures, retries, parking and stopping.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "strata.h"
#include "define.h"
#include "privilege.h"
#include "subscription.h"
#include "usercall.h"
#include "worker_internal.h"
#include "worker_subs.h"

/* worker_run_batch: the handler cannot be called at all */
#define WORKER_BAD_HANDLER (-3)

/* Watermark samples kept (older ones are dropped, which is safe) */
#define WORKER_MAX_SAMPLES 256

/* "every position below 'watermark' settles at or before 'lsn'" */
typedef struct WorkerSample
{
	int64	   watermark;
	XLogRecPtr lsn;
} WorkerSample;

bool handler_process = false;

static WorkerSlot  *worker_me;	 /* the database's slot */
static HandlerSlot *handler_me;	 /* this process's slot in it */
static pid_t		worker_pid;	 /* the worker that started this process */
static MemoryContext job_cxt;	 /* the job: its subscription, its events */
static MemoryContext event_cxt;	 /* one handler call */
static TupleDesc	 events_desc = NULL;
static Oid			 handler_extoid = InvalidOid;

static WorkerSample samples[WORKER_MAX_SAMPLES];
static int			nsamples = 0;

/* The job under way, copied out of the slot */
static HandlerJobKind job_kind;
static XLogRecPtr	  job_live_lsn;
static char			  job_stream_id[WORKER_STREAM_ID_LEN];
static TimestampTz	  job_first_failed_at;

static bool
worker_matches(WorkerSub *sub, WorkerEvent *ev)
{
	return define_in_list(sub->categories, sub->ncategories, ev->category) &&
		   define_in_list(sub->types, sub->ntypes, ev->type);
}

/* ---------- running handlers ---------- */

/*
 * End the transaction of a subscription's progress update: commit it if
 * the update found the generation it was made under ('ok'), else roll it
 * back and mark the subscription to be read again.  Returns 'ok'.
 */
static bool
worker_end(WorkerSub *sub, bool ok)
{
	if (!ok)
	{
		worker_abort();
		sub->stale = true;
		return false;
	}
	worker_commit();
	return true;
}

/*
 * Raise the watermark with every sample whose WAL position the
 * subscription has passed: positions below the sample's watermark all
 * belong to transactions that committed before that position.
 */
static void
worker_apply_samples(SubProgress *p, XLogRecPtr done)
{
	for (int k = 0; k < nsamples; k++)
		if (samples[k].lsn <= done)
			subscription_settle(p, samples[k].watermark);
}

typedef struct WorkerErrorArg
{
	const char *name;
	int64		position;
} WorkerErrorArg;

static void
worker_error_callback(void *arg)
{
	WorkerErrorArg *a = arg;

	errcontext("subscription \"%s\", event at position " INT64_FORMAT, a->name,
			   a->position);
}

/*
 * Record 'ev' as done in 'p': its position, and for an event of the
 * stream the checkpoint (past its transaction when it was the last event).
 */
static void
worker_mark_done(SubProgress *p, WorkerEvent *ev)
{
	subscription_mark_processed(p, ev->position);
	if (!XLogRecPtrIsInvalid(ev->end_lsn))
	{
		if (ev->index == ev->nevents - 1)
		{
			p->checkpoint_lsn = ev->end_lsn;
			p->checkpoint_index = 0;
		}
		else
			p->checkpoint_index = ev->index + 1;
	}
}

/*
 * Write the subscription's progress and clear its error, in the current
 * transaction, unless SQL changed the subscription meanwhile (then the
 * caller's transaction must be rolled back).  'go_live' hands it over to
 * the stream at 'live_lsn'.
 */
static bool
worker_save_progress(WorkerSub *sub, SubProgress *p, bool go_live,
					 XLogRecPtr live_lsn, int64 last_position)
{
	static SPIPlanPtr plan = NULL;
	Oid	  argtypes[9] = {TEXTOID, INT8OID, LSNOID,	INT4OID, INT8OID,
						 TEXTOID, INT8OID, BOOLOID, TEXTOID};
	Datum args[9];
	char  nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool  ok;

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int64GetDatum(sub->generation);
	if (go_live)
		args[2] = LSNGetDatum(live_lsn);
	else if (XLogRecPtrIsInvalid(p->checkpoint_lsn))
		nulls[2] = 'n';
	else
		args[2] = LSNGetDatum(p->checkpoint_lsn);
	args[3] = Int32GetDatum(go_live ? 0 : p->checkpoint_index);
	args[4] = Int64GetDatum(p->watermark);
	args[5] = CStringGetTextDatum(subscription_format_delivered(p));
	args[6] = Int64GetDatum(last_position);
	if (last_position <= 0)
		nulls[6] = 'n';
	args[7] = BoolGetDatum(go_live);
	args[8] = CStringGetTextDatum(job_stream_id);

	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"UPDATE strata.subscriptions SET checkpoint_lsn = $3, "
				"checkpoint_index = $4, watermark = $5, "
				"delivered = $6::pg_catalog.int8multirange, "
				"last_position = coalesce($7, last_position), "
				"last_processed_at = CASE WHEN $7 IS NULL "
				"THEN last_processed_at ELSE pg_catalog.now() END, "
				"attempts = CASE WHEN $7 IS NULL THEN attempts ELSE 0 END, "
				"phase = CASE WHEN $8 THEN 'live' ELSE phase END, "
				"stream_id = CASE WHEN $8 THEN $9 ELSE stream_id END "
				"WHERE name OPERATOR(pg_catalog.=) $1 "
				"AND generation OPERATOR(pg_catalog.=) $2",
				9, argtypes),
			args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not save the progress of a subscription");
	ok = SPI_processed == 1;
	SPI_finish();
	return ok;
}

/* ---------- one handler call: timeout and cancellation ---------- */

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

/* The call a previous worker of the slot was stopped in (worker_tick) */
static char *killed_sub = NULL;
static int64 killed_position;
static int64 killed_generation;

static TimeoutId worker_tick_id;

/*
 * Cancel the handler under way, as a query cancel does: its next
 * CHECK_FOR_INTERRUPTS raises 57014.  With 'ours' (the timeout, a pause
 * or a drop), a handler that catches the cancel is terminated after
 * WORKER_CANCEL_GRACE_MS (worker_tick).  Outside a handler call, nothing.
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
static void
worker_sigint(SIGNAL_ARGS)
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
 * (worker_check_killed).  The slot's fields written here are read only by
 * the next worker of the slot.
 */
static void
worker_tick(void)
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
worker_in_handler_of(const char *subscription)
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
static void
worker_call_handler(WorkerSub *sub, UserFunc *uf, Datum event, int64 position)
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
static void
worker_check_killed(WorkerSub *sub, int64 position)
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
 * the subscription left when it was stopped (worker_tick, handler_detach).
 */
static void
worker_take_killed(WorkerSub *sub)
{
	bool found = false;

	if (!worker_me->killed)
		return;
	SpinLockAcquire(&worker_me->mutex);
	if (worker_me->killed && strcmp(worker_me->killed_sub, sub->name) == 0)
	{
		killed_position = worker_me->killed_position;
		killed_generation = worker_me->killed_generation;
		worker_me->killed = false;
		found = true;
	}
	SpinLockRelease(&worker_me->mutex);
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
static int
worker_cancelled(WorkerSub *sub, ErrorData *edata, int current)
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

/*
 * Run the handler of 'sub' on list[from..to) in one transaction.  On
 * success the transaction commits together with the subscription's new
 * progress and -1 is returned.  A handler error rolls everything back: the index
 * of the failing event is returned and *edata holds the error.  -2 means
 * SQL changed the subscription meanwhile (rolled back too);
 * WORKER_BAD_HANDLER, that the handler cannot be called (dropped, or no
 * EXECUTE privilege for the owner), with the error in *edata.
 */
static int
worker_run_batch(WorkerSub *sub, WorkerEvent *list, int from, int to,
				 ErrorData **edata)
{
	SubProgress			 work;
	volatile int		 current = -1;
	MemoryContext		 old = CurrentMemoryContext;
	ErrorContextCallback errcb;
	WorkerErrorArg		 errarg;
	volatile int64		 last_position = 0;
	UserFunc			 uf;
	volatile int		 result = -1;
	volatile bool		 read_checked = false;

	subscription_progress_copy(&work, &sub->progress, job_cxt);

	worker_begin();
	current = WORKER_BAD_HANDLER;
	/* the handler calls' timeout and grace (worker_tick) */
	enable_timeout_every(
		worker_tick_id,
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_TICK_MS),
		WORKER_TICK_MS);
	PG_TRY();
	{
		/* dropped, no EXECUTE for the owner, owner dropped */
		usercall_prepare(&uf, sub->handler, sub->owner, sub->what,
						 CurrentMemoryContext);
		current = -1;

		errarg.name = sub->name;
		errcb.callback = worker_error_callback;
		errcb.arg = &errarg;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;

		for (int i = from; i < to; i++)
		{
			WorkerEvent *ev = &list[i];

			CHECK_FOR_INTERRUPTS();
			/* a stream job reads only the rows of events that match */
			if (ev->tuple != NULL &&
				!subscription_processed(&work, ev->position) &&
				worker_matches(sub, ev))
			{
				Datum arg;

				/* no SELECT on the events, or RLS: once, if any is its */
				if (!read_checked)
				{
					current = WORKER_BAD_HANDLER;
					priv_check_read_events(sub->owner,
										   psprintf("the %s", sub->what));
					read_checked = true;
				}
				current = i;
				errarg.position = ev->position;
				MemoryContextSwitchTo(event_cxt);
				arg = heap_copy_tuple_as_datum(ev->tuple, events_desc);
				worker_check_killed(sub, ev->position);
				/* as the owner, restricted, its settings rolled back */
				worker_call_handler(sub, &uf, arg, ev->position);
				MemoryContextSwitchTo(old);
				MemoryContextReset(event_cxt);
				current = -1;
				last_position = ev->position;
			}
			worker_mark_done(&work, ev);
		}
		error_context_stack = errcb.previous;

		if (sub->live)
			worker_apply_samples(&work, work.checkpoint_lsn);
		if (!worker_save_progress(sub, &work, false, InvalidXLogRecPtr,
								  last_position))
			result = -2;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		disable_timeout(worker_tick_id, false);
		if (current == -1)
			PG_RE_THROW();
		*edata = CopyErrorData();
		FlushErrorState();
		result = current;
		if ((*edata)->sqlerrcode == ERRCODE_QUERY_CANCELED)
			result = worker_cancelled(sub, *edata, current);
		if (result == -2)
		{
			FreeErrorData(*edata);
			*edata = NULL;
		}
	}
	PG_END_TRY();
	disable_timeout(worker_tick_id, false);

	if (result == -1)
	{
		PopActiveSnapshot();
		worker_commit();
		MemoryContextSwitchTo(old);
		subscription_progress_free(&sub->progress);
		subscription_progress_copy(&sub->progress, &work, job_cxt);
		if (last_position > 0)
			sub->attempts = 0;
		ConditionVariableBroadcast(&worker_me->progress);
	}
	else
	{
		worker_abort();
		MemoryContextSwitchTo(old);
		MemoryContextReset(event_cxt);
	}
	return result;
}

/*
 * Write the subscription's progress, with 'settle' as a new watermark
 * (0: none) and, if 'go_live', the hand-over to the stream at 'live_lsn',
 * in a transaction of its own.
 */
static bool
worker_commit_progress(WorkerSub *sub, int64 settle, bool go_live,
					   XLogRecPtr live_lsn)
{
	SubProgress work;
	bool		ok;

	subscription_progress_copy(&work, &sub->progress, job_cxt);
	if (settle > 0)
		subscription_settle(&work, settle);
	if (go_live)
	{
		work.checkpoint_lsn = live_lsn;
		work.checkpoint_index = 0;
		worker_apply_samples(&work, live_lsn);
	}

	worker_begin();
	ok = worker_save_progress(sub, &work, go_live, live_lsn, 0);
	PopActiveSnapshot();
	if (!worker_end(sub, ok))
		return false;
	subscription_progress_free(&sub->progress);
	subscription_progress_copy(&sub->progress, &work, job_cxt);
	if (go_live)
		sub->live = true;
	ConditionVariableBroadcast(&worker_me->progress);
	return true;
}

/*
 * A handler failed on 'ev'.  Count the attempt; after the last one, park
 * the event and go on (returns true), or stop the subscription
 * (on_error 'stop').  Before the last, the subscription waits for its
 * retry (exponential backoff from strata.retry_base_delay).
 */
static bool
worker_handle_failure(WorkerSub *sub, WorkerEvent *ev, ErrorData *edata)
{
	static SPIPlanPtr plan_error = NULL;
	static SPIPlanPtr plan_park = NULL;
	Oid				  argtypes[8] = {TEXTOID, INT8OID, INT4OID,		   TEXTOID,
									 TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID};
	Datum			  args[8];
	bool			  last;
	bool			  ok = true;
	SubProgress		  work;

	sub->attempts++;
	sub->last_error_at = GetCurrentTimestamp();
	if (sub->attempts == 1 || sub->first_failed_at == 0)
		sub->first_failed_at = sub->last_error_at;
	last = sub->attempts >= worker_max_attempts;

	ereport(
		LOG,
		(errmsg("strata subscription \"%s\": handler failed on the event "
				"at position " INT64_FORMAT " (attempt %d of %d): %s",
				sub->name, ev->position, sub->attempts, worker_max_attempts,
				edata->message),
		 last ? errdetail(sub->on_error_stop
							  ? "The subscription stops."
							  : "The event is parked in strata.parked_events.")
			  : 0));

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int64GetDatum(ev->position);
	args[2] = Int32GetDatum(sub->attempts);
	args[3] = CStringGetTextDatum(edata->message ? edata->message : "");
	args[4] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[5] = CStringGetTextDatum(
		last ? (sub->on_error_stop ? "stopped" : "active") : "active");
	args[6] = TimestampTzGetDatum(sub->first_failed_at);
	args[7] = Int64GetDatum(sub->generation);

	subscription_progress_copy(&work, &sub->progress, job_cxt);

	worker_begin();
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan_error,
				"UPDATE strata.subscriptions SET attempts = $3, "
				"last_error = $4, last_error_at = pg_catalog.now(), "
				"state = $6 WHERE name OPERATOR(pg_catalog.=) $1 "
				"AND generation OPERATOR(pg_catalog.=) $8",
				8, argtypes),
			args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record a handler error");
	ok = SPI_processed == 1;
	if (ok && last && !sub->on_error_stop)
	{
		if (SPI_execute_plan(
				strata_prepare(
					&plan_park,
					"INSERT INTO strata.parked_events (subscription, "
					"position, attempts, error, sqlstate, first_failed_at) "
					"VALUES ($1, $2, $3, $4, $5, $7) "
					"ON CONFLICT (subscription, position) DO UPDATE SET "
					"attempts = EXCLUDED.attempts, error = EXCLUDED.error, "
					"sqlstate = EXCLUDED.sqlstate, parked_at = "
					"pg_catalog.now()",
					7, argtypes),
				args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not park an event");
		worker_mark_done(&work, ev);
	}
	SPI_finish();
	if (ok && last && !sub->on_error_stop)
		ok = worker_save_progress(sub, &work, false, InvalidXLogRecPtr,
								  ev->position);
	PopActiveSnapshot();
	if (!worker_end(sub, ok))
		return false;

	if (!last)
		return false;
	if (sub->on_error_stop)
	{
		sub->state = 's';
		return false;
	}
	subscription_progress_free(&sub->progress);
	subscription_progress_copy(&sub->progress, &work, job_cxt);
	sub->attempts = 0;
	sub->last_error_at = 0;
	sub->first_failed_at = 0;
	ConditionVariableBroadcast(&worker_me->progress);
	return true;
}

/*
 * The handler of 'sub' cannot be called: stop the subscription (whatever
 * its on_error), since every event would fail the same way, and say why.
 * resume_subscription starts it again once the handler is fixed.
 */
static void
worker_stop_sub(WorkerSub *sub, ErrorData *edata)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum			  args[3];

	ereport(WARNING, (errmsg("strata subscription \"%s\" stopped: %s",
							 sub->name, edata->message),
					  errhint("Fix the handler, then call "
							  "strata.resume_subscription.")));
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int64GetDatum(sub->generation);
	args[2] = CStringGetTextDatum(edata->message ? edata->message : "");
	worker_begin();
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"UPDATE strata.subscriptions SET state = 'stopped', "
				"last_error = $3, last_error_at = pg_catalog.now(), "
				/* a dropped owner's OID must not name a role later */
				"owner = CASE WHEN EXISTS (SELECT FROM "
				"pg_catalog.pg_authid a WHERE a.oid OPERATOR(pg_catalog.=) "
				"owner::pg_catalog.oid) THEN owner END "
				"WHERE name OPERATOR(pg_catalog.=) $1 AND "
				"generation OPERATOR(pg_catalog.=) $2",
				3, argtypes),
			args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not stop a subscription");
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	sub->state = 's';
}

/*
 * Run 'sub' over list[0..n), in batches of strata.worker_batch_size.
 * Returns true when it got through the list, false when it stopped
 * (waiting to retry, stopped, or changed by SQL).
 */
static bool
worker_run_list(WorkerSub *sub, WorkerEvent *list, int n)
{
	int from = 0;

	if (n > 0)
	{
		char activity[NAMEDATALEN + 64];

		snprintf(activity, sizeof(activity), "subscription %s: %d events",
				 sub->name, n);
		pgstat_report_activity(STATE_RUNNING, activity);
	}

	while (from < n)
	{
		int		   to = Min(n, from + worker_batch_size);
		int		   failed = -1; /* the event whose handler failed */
		ErrorData *error = NULL;

		for (;;)
		{
			ErrorData *edata = NULL;
			int		   r = worker_run_batch(sub, list, from, to, &edata);

			if (r == -1)
				break;
			if (error != NULL)
				FreeErrorData(error);
			error = edata;
			if (r == -2)
			{
				/* SQL changed the subscription: no error to keep */
				sub->stale = true;
				return false;
			}
			if (r == WORKER_BAD_HANDLER)
			{
				worker_stop_sub(sub, error);
				FreeErrorData(error);
				return false;
			}
			/* commit the events before the failing one, then count it */
			failed = r;
			if (r == from)
				break;
			to = r;
		}
		if (failed >= 0)
		{
			bool parked = worker_handle_failure(sub, &list[failed], error);

			FreeErrorData(error);
			if (!parked)
				return false;
			to = failed + 1;
		}
		from = to;
	}
	return true;
}

/* Copy rows of strata.events from the last SPI result, skipping processed ones */
static void
worker_collect_rows(WorkerSub *sub, WorkerEvent **list, int *n, int *cap,
					int64 *last)
{
	MemoryContext old = MemoryContextSwitchTo(job_cxt);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	 tup = SPI_tuptable->vals[i];
		TupleDesc	 desc = SPI_tuptable->tupdesc;
		bool		 isnull;
		int64		 pos = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		WorkerEvent *ev;

		*last = pos;
		if (subscription_processed(&sub->progress, pos))
			continue;
		if (*n == *cap)
		{
			*cap = *cap == 0 ? 256 : *cap * 2;
			*list = *list == NULL
						? palloc(sizeof(WorkerEvent) * *cap)
						: repalloc(*list, sizeof(WorkerEvent) * *cap);
		}
		ev = &(*list)[(*n)++];
		ev->position = pos;
		ev->tuple = heap_copytuple(tup);
		ev->category = SPI_getvalue(tup, desc, 9);
		ev->type = SPI_getvalue(tup, desc, 5);
		ev->end_lsn = InvalidXLogRecPtr;
		ev->index = 0;
		ev->nevents = 0;
	}
	MemoryContextSwitchTo(old);
}

/*
 * One step of a catching-up subscription.  Reads, under a snapshot taken
 * with the registry's horizon, up to a batch of settled events past its
 * watermark and runs them.  When fewer than a batch remain, it also runs
 * every event visible in that snapshot past them and hands the
 * subscription over to the stream at its current end: every transaction
 * that ended before that point is visible in the snapshot (the round
 * waited for them), and every later one comes through the stream, where
 * the positions already processed are skipped.  The stream's end is the
 * job's live_lsn: the worker made the job after it had waited until every
 * transaction it decoded up to there was visible, and this snapshot is
 * taken after that.  RESULT_THROUGH when a step was made (more remains),
 * RESULT_LIVE after the hand-over, RESULT_HALTED when it stopped.
 */
static HandlerJobResult
worker_catchup(WorkerSub *sub)
{
	static SPIPlanPtr plan_settled = NULL;
	static SPIPlanPtr plan_rest = NULL;
	Oid				  argtypes[3] = {INT8OID, INT8OID, INT8OID};
	Datum			  args[3];
	Snapshot		  snapshot;
	int64			  settled;
	int64			  last = 0;
	WorkerEvent		 *list = NULL;
	int				  n = 0;
	int				  cap = 0;
	bool			  final;
	bool			  go_live = false;

	worker_begin();
	SPI_connect();
	settled = subscription_settled(&snapshot);
	args[0] = Int64GetDatum(sub->progress.watermark);
	args[1] = Int64GetDatum(settled);
	args[2] = Int64GetDatum(worker_batch_size);
	if (SPI_execute_snapshot(
			strata_prepare(&plan_settled,
						   "SELECT * FROM strata.events WHERE position "
						   "OPERATOR(pg_catalog.>=) $1 AND position "
						   "OPERATOR(pg_catalog.<) $2 ORDER BY position "
						   "LIMIT $3",
						   3, argtypes),
			args, NULL, snapshot, InvalidSnapshot, true, false,
			0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.events");
	final = SPI_processed < (uint64) worker_batch_size;
	worker_collect_rows(sub, &list, &n, &cap, &last);
	if (final)
	{
		Oid	  rest_types[3] = {INT8OID, TEXTOID, INT8OID};
		Datum rest_args[3];

		rest_args[0] = Int64GetDatum(settled);
		rest_args[1] =
			CStringGetTextDatum(subscription_format_delivered(&sub->progress));
		rest_args[2] = Int64GetDatum(worker_batch_size);
		/*
		 * At most a batch of it: more (a long transaction holding the
		 * horizon down while others commit) is run a batch per round, and
		 * the hand-over waits until the rest fits in one.
		 */
		if (SPI_execute_snapshot(
				strata_prepare(&plan_rest,
							   "SELECT * FROM strata.events WHERE position "
							   "OPERATOR(pg_catalog.>=) $1 AND NOT "
							   "$2::pg_catalog.int8multirange "
							   "OPERATOR(pg_catalog.@>) position "
							   "ORDER BY position LIMIT $3",
							   3, rest_types),
				rest_args, NULL, snapshot, InvalidSnapshot, true, false,
				0) != SPI_OK_SELECT)
			elog(ERROR, "could not read strata.events");
		go_live = SPI_processed < (uint64) worker_batch_size;
		worker_collect_rows(sub, &list, &n, &cap, &last);
	}
	UnregisterSnapshot(snapshot);
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();

	if (!worker_run_list(sub, list, n))
		return RESULT_HALTED;
	if (!final)
		return worker_commit_progress(sub, last + 1, false, InvalidXLogRecPtr)
				   ? RESULT_THROUGH
				   : RESULT_HALTED;
	if (!go_live)
		return worker_commit_progress(sub, settled, false, InvalidXLogRecPtr)
				   ? RESULT_THROUGH
				   : RESULT_HALTED;
	return worker_commit_progress(sub, settled, true, job_live_lsn)
			   ? RESULT_LIVE
			   : RESULT_HALTED;
}


/* ---------- jobs ---------- */

/*
 * Take a watermark sample (see docs/architecture.md, "Checkpoints"): every
 * position below the settled position belongs to a transaction whose
 * commit record, if any, was inserted before the WAL insert position read
 * after it.  A new extension (DROP and CREATE EXTENSION) starts positions
 * again from 1: the samples of the old one are dropped.  In a
 * transaction, connected to SPI.
 */
static void
handler_sample(void)
{
	Oid extoid = get_extension_oid("strata", true);

	if (extoid != handler_extoid)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		nsamples = 0;
		handler_extoid = extoid;
		if (events_desc != NULL)
			FreeTupleDesc(events_desc);
		events_desc = lookup_rowtype_tupdesc_copy(define_events_type(), -1);
		MemoryContextSwitchTo(old);
	}
	if (nsamples == WORKER_MAX_SAMPLES)
	{
		memmove(samples, samples + WORKER_MAX_SAMPLES / 2,
				sizeof(WorkerSample) * (WORKER_MAX_SAMPLES / 2));
		nsamples = WORKER_MAX_SAMPLES / 2;
	}
	samples[nsamples].watermark = subscription_settled(NULL);
	samples[nsamples].lsn = GetXLogInsertRecPtr();
	nsamples++;
}

/*
 * The rows of a stream job's events, in the job's (commit) order.  The
 * worker waited until their transactions were visible before it made the
 * job, and events never change, so these are the rows it decoded.  In a
 * transaction, connected to SPI.
 */
static WorkerEvent *
handler_read_events(HandlerEntry *entries, int n)
{
	static SPIPlanPtr plan = NULL;
	Datum		 *positions = palloc(sizeof(Datum) * Max(n, 1));
	WorkerEvent	 *list = MemoryContextAllocZero(job_cxt,
												sizeof(WorkerEvent) * Max(n, 1));
	ArrayType	 *arr;
	MemoryContext old;
	int			  nread = 0;
	int			  row = 0;

	/* only the rows of events the handler is called on */
	for (int i = 0; i < n; i++)
	{
		list[i].position = entries[i].position;
		list[i].end_lsn = entries[i].end_lsn;
		list[i].index = entries[i].index;
		list[i].nevents = entries[i].nevents;
		if (entries[i].matches)
			positions[nread++] = Int64GetDatum(entries[i].position);
	}
	if (nread == 0)
		return list;
	arr = construct_array(positions, nread, INT8OID, sizeof(int64), true,
						  TYPALIGN_DOUBLE);
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"SELECT e.* FROM pg_catalog.unnest($1::pg_catalog.int8[]) "
				"WITH ORDINALITY AS u(position, n) JOIN strata.events e "
				"ON e.position OPERATOR(pg_catalog.=) u.position "
				"ORDER BY u.n",
				1, (Oid[]){INT8ARRAYOID}),
			(Datum[]){PointerGetDatum(arr)}, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.events");
	if (SPI_processed != (uint64) nread)
		elog(ERROR, "%d events of a strata worker's job are not in "
			 "strata.events", nread - (int) SPI_processed);

	old = MemoryContextSwitchTo(job_cxt);
	for (int i = 0; i < n; i++)
	{
		HeapTuple tup;
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool	  isnull;

		if (!entries[i].matches)
			continue;
		tup = SPI_tuptable->vals[row++];
		if (DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)) !=
			list[i].position)
			elog(ERROR, "a strata worker's job read the wrong event");
		list[i].tuple = heap_copytuple(tup);
		list[i].category = SPI_getvalue(tup, desc, 9);
		list[i].type = SPI_getvalue(tup, desc, 5);
	}
	MemoryContextSwitchTo(old);
	return list;
}

/*
 * Run the job of 'name': read the subscription (and, for a stream job,
 * the events), check that the worker made the job for what the
 * subscription still is (its generation, active, in the phase the job is
 * for), then run it.
 */
static HandlerJobResult
handler_run_job(const char *name, int64 generation, HandlerEntry *entries,
				int n)
{
	WorkerSub	   **found;
	WorkerSub	    *sub = NULL;
	WorkerEvent	    *list = NULL;
	HandlerJobResult result;

	worker_begin();
	if (!worker_extension_present())
	{
		PopActiveSnapshot();
		worker_commit();
		return RESULT_HALTED;
	}
	SPI_connect();
	handler_sample();
	if (worker_read_subs(name, job_stream_id, job_cxt, &found) == 1 &&
		found[0]->generation == generation && found[0]->state == 'a' &&
		found[0]->live == (job_kind == JOB_STREAM))
	{
		sub = found[0];
		if (job_kind == JOB_STREAM)
			list = handler_read_events(entries, n);
	}
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	if (sub == NULL)
		return RESULT_HALTED;

	worker_take_killed(sub);
	if (sub->attempts > 0)
		sub->first_failed_at = job_first_failed_at;
	if (job_kind == JOB_CATCHUP)
		result = worker_catchup(sub);
	else
		result = worker_run_list(sub, list, n) ? RESULT_THROUGH
											   : RESULT_HALTED;
	job_first_failed_at = sub->attempts > 0 ? sub->first_failed_at : 0;
	return result;
}

/*
 * At exit: a job under way ends as halted, the call a stopped handler
 * ignored its cancellation in is left for the next job of its
 * subscription, the slot is free again, and the worker is told.
 */
static void
handler_detach(int code, Datum arg)
{
	Latch *latch;

	if (handler_me->killed)
	{
		SpinLockAcquire(&worker_me->mutex);
		strlcpy(worker_me->killed_sub, handler_me->killed_sub,
				sizeof(worker_me->killed_sub));
		worker_me->killed_position = handler_me->killed_position;
		worker_me->killed_generation = handler_me->killed_generation;
		worker_me->killed = true;
		SpinLockRelease(&worker_me->mutex);
		handler_me->killed = false;
	}
	SpinLockAcquire(&handler_me->mutex);
	if (handler_me->state == JOB_ASSIGNED || handler_me->state == JOB_RUNNING)
	{
		handler_me->result = RESULT_HALTED;
		handler_me->state = JOB_DONE;
	}
	handler_me->running[0] = '\0';
	handler_me->pid = 0;
	handler_me->latch = NULL;
	SpinLockRelease(&handler_me->mutex);
	latch = worker_me->latch;
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Take the job the worker assigned, if any: copy it out of the slot into
 * job_cxt.  Returns its number of entries, or -1 when there is none.
 */
static int
handler_take_job(char *name, int64 *generation, HandlerEntry **entries)
{
	int n = -1;

	SpinLockAcquire(&handler_me->mutex);
	if (handler_me->state == JOB_ASSIGNED)
	{
		handler_me->state = JOB_RUNNING;
		strlcpy(name, handler_me->sub, WORKER_SUB_NAME_LEN);
		*generation = handler_me->generation;
		job_kind = handler_me->kind;
		job_live_lsn = handler_me->live_lsn;
		job_first_failed_at = handler_me->first_failed_at;
		strlcpy(job_stream_id, handler_me->stream_id, sizeof(job_stream_id));
		n = handler_me->nentries;
	}
	SpinLockRelease(&handler_me->mutex);
	if (n > 0)
	{
		*entries = MemoryContextAlloc(job_cxt, sizeof(HandlerEntry) * n);
		memcpy(*entries, handler_me->entries, sizeof(HandlerEntry) * n);
	}
	return n;
}

/*
 * Main of a handler process: take the jobs of the worker that started it,
 * one at a time, until that worker is gone.
 */
void
strata_handler_main(Datum arg)
{
	int slot_index = DatumGetInt32(arg) / HANDLER_ARG_BASE;
	int index = DatumGetInt32(arg) % HANDLER_ARG_BASE;

	memcpy(&worker_pid, MyBgworkerEntry->bgw_extra, sizeof(pid_t));
	worker_me = worker_slot(slot_index);
	handler_me = worker_handler_slot(worker_me, index);
	handler_process = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, worker_sigint);
	BackgroundWorkerUnblockSignals();

	job_cxt = AllocSetContextCreate(TopMemoryContext, "strata handler job",
									ALLOCSET_DEFAULT_SIZES);
	event_cxt = AllocSetContextCreate(TopMemoryContext, "strata handler event",
									  ALLOCSET_DEFAULT_SIZES);
	worker_xact_cxt = job_cxt;

	/* only for the worker that started it, and once per slot */
	if (worker_me->pid != worker_pid || worker_me->dropper != 0)
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(worker_me->dbid, InvalidOid, 0);
	SpinLockAcquire(&handler_me->mutex);
	if (handler_me->pid != 0)
	{
		SpinLockRelease(&handler_me->mutex);
		proc_exit(0);
	}
	handler_me->pid = MyProcPid;
	handler_me->latch = MyLatch;
	handler_me->state = JOB_NONE; /* nothing of an earlier worker's jobs */
	SpinLockRelease(&handler_me->mutex);
	on_shmem_exit(handler_detach, (Datum) 0);

	/*
	 * As in the worker: a crash loses the last transactions only whole
	 * (the handlers' effects with the progress that records them); the
	 * worker flushes the WAL before it confirms its slot.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", STRATA_SAFE_SEARCH_PATH, PGC_SUSET,
					PGC_S_OVERRIDE);
	worker_tick_id = RegisterTimeout(USER_TIMEOUT, worker_tick);

	for (;;)
	{
		char			 name[WORKER_SUB_NAME_LEN];
		int64			 generation;
		HandlerEntry	*entries = NULL;
		HandlerJobResult result;
		Latch			*latch;
		int				 n;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* its worker is gone: so are its jobs */
		if (worker_me->pid != worker_pid)
			proc_exit(0);

		MemoryContextSwitchTo(job_cxt);
		MemoryContextReset(job_cxt);
		n = handler_take_job(name, &generation, &entries);
		if (n < 0)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 HANDLER_NAPTIME_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		PG_TRY();
		{
			result = handler_run_job(name, generation, entries, n);
		}
		PG_CATCH();
		{
			worker_note_failure(worker_me, name, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
		worker_clear_failure(worker_me, name, false);

		/* handlers that appended: flush, so that the worker decodes it now */
		if (worker_self_appended)
		{
			worker_self_appended = false;
			XLogFlush(XactLastCommitEnd);
		}
		SpinLockAcquire(&handler_me->mutex);
		handler_me->result = result;
		handler_me->first_failed_at = job_first_failed_at;
		handler_me->state = JOB_DONE;
		SpinLockRelease(&handler_me->mutex);
		latch = worker_me->latch;
		if (latch != NULL)
			SetLatch(latch);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
}
