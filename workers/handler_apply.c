/*-------------------------------------------------------------------------
 *
 * handler_apply.c
 *	  Running a subscription's handler over a list of events in a handler
 *	  process: batches of strata.worker_batch_size events, each one
 *	  transaction with the subscription's new progress; and what happens
 *	  when a handler fails: retries with backoff, parking, stopping.
 *
 * Progress is written only under the generation the job was made for:
 * a pause, a resume or a drop by SQL meanwhile makes the batch roll back
 * and the worker read the subscription again.  The watermark samples
 * (handler_sample) let a live subscription's watermark follow the
 * stream (docs/architecture.md, "Checkpoints").
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
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "strata.h"
#include "events.h"
#include "define.h"
#include "privilege.h"
#include "settings.h"
#include "subscription.h"
#include "subscription_catalog.h"
#include "usercall.h"
#include "handler.h"

/* handler_run_batch: the handler cannot be called at all */
#define WORKER_BAD_HANDLER (-3)

/* Watermark samples kept (older ones are dropped, which is safe) */
#define WORKER_MAX_SAMPLES 256

/* "every position below 'watermark' settles at or before 'lsn'" */
typedef struct WorkerSample
{
	int64	   watermark;
	XLogRecPtr lsn;
} WorkerSample;

static WorkerSample samples[WORKER_MAX_SAMPLES];
static int			nsamples = 0;
static Oid			samples_extoid = InvalidOid;

static bool
handler_matches(WorkerSub *sub, WorkerEvent *ev)
{
	return define_in_list(sub->categories, sub->ncategories, ev->category) &&
		   define_in_list(sub->types, sub->ntypes, ev->type);
}

/* ---------- progress ---------- */

/*
 * Take a watermark sample (see docs/architecture.md, "Checkpoints"): every
 * position below the settled position belongs to a transaction whose
 * commit record, if any, was inserted before the WAL insert position read
 * after it.  A new extension (DROP and CREATE EXTENSION) starts positions
 * again from 1: the samples of the old one are dropped.  In a
 * transaction, connected to SPI.
 */
void
handler_sample(void)
{
	Oid extoid = get_extension_oid("strata", true);

	if (extoid != samples_extoid)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		nsamples = 0;
		samples_extoid = extoid;
		if (events_desc != NULL)
			FreeTupleDesc(events_desc);
		events_desc = lookup_rowtype_tupdesc_copy(define_events_type(), -1);
		events_check_desc(events_desc);
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
handler_apply_samples(SubProgress *p, XLogRecPtr done)
{
	for (int k = 0; k < nsamples; k++)
		if (samples[k].lsn <= done)
			subscription_settle(p, samples[k].watermark);
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

/* ---------- batches and failures ---------- */

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
	SubProgress	   work;
	volatile int   current = -1;
	MemoryContext  old = CurrentMemoryContext;
	UserCallEvent  errarg = {.kind = USERCALL_SUBSCRIPTION};
	volatile int64 last_position = 0;
	UserFunc	   uf;
	volatile int   result = -1;
	volatile bool  read_checked = false;

	subscription_progress_copy(&work, &sub->progress, job_cxt);

	worker_begin();
	current = WORKER_BAD_HANDLER;
	/* the handler calls' timeout and grace (handler_call.c) */
	handler_tick_start();
	PG_TRY();
	{
		/* dropped, no EXECUTE for the owner, owner dropped */
		usercall_prepare(&uf, sub->handler, sub->owner, sub->what,
						 CurrentMemoryContext);
		current = -1;

		errarg.subject = sub->name;
		usercall_context_push(&errarg);

		for (int i = from; i < to; i++)
		{
			WorkerEvent *ev = &list[i];

			CHECK_FOR_INTERRUPTS();
			/* a stream job reads only the rows of events that match */
			if (ev->tuple != NULL &&
				!subscription_processed(&work, ev->position) &&
				handler_matches(sub, ev))
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
				handler_check_killed(sub, ev->position);
				/* as the owner, restricted, its settings rolled back */
				handler_call(sub, &uf, arg, ev->position);
				MemoryContextSwitchTo(old);
				MemoryContextReset(event_cxt);
				current = -1;
				last_position = ev->position;
			}
			worker_mark_done(&work, ev);
			if (job_kind == JOB_CATCHUP)
				handler_catchup_tick(sub, ev->position);
		}
		usercall_context_pop(&errarg);

		if (sub->live)
			handler_apply_samples(&work, work.checkpoint_lsn);
		if (!subcat_save_progress(sub, &work, false, InvalidXLogRecPtr,
								  last_position, job_stream_id))
			result = -2;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		handler_tick_stop();
		if (current == -1)
			PG_RE_THROW();
		*edata = CopyErrorData();
		FlushErrorState();
		result = current;
		if ((*edata)->sqlerrcode == ERRCODE_QUERY_CANCELED)
			result = handler_cancelled(sub, *edata, current);
		if (result == -2)
		{
			FreeErrorData(*edata);
			*edata = NULL;
		}
	}
	PG_END_TRY();
	handler_tick_stop();

	if (result == -1)
	{
		PopActiveSnapshot();
		worker_commit();
		MemoryContextSwitchTo(old);
		subscription_progress_free(&sub->progress);
		subscription_progress_copy(&sub->progress, &work, job_cxt);
		if (last_position > 0)
			sub->attempts = 0;
		ConditionVariableBroadcast(&handler_db->progress);
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
bool
handler_commit_progress(WorkerSub *sub, int64 settle, bool go_live,
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
		handler_apply_samples(&work, live_lsn);
	}

	worker_begin();
	ok = subcat_save_progress(sub, &work, go_live, live_lsn, 0, job_stream_id);
	PopActiveSnapshot();
	if (!worker_end(sub, ok))
		return false;
	subscription_progress_free(&sub->progress);
	subscription_progress_copy(&sub->progress, &work, job_cxt);
	if (go_live)
		sub->live = true;
	ConditionVariableBroadcast(&handler_db->progress);
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
	bool		last;
	bool		ok = true;
	SubProgress work;

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

	subscription_progress_copy(&work, &sub->progress, job_cxt);

	worker_begin();
	SPI_connect();
	ok = subcat_record_error(sub, ev->position, edata, last);
	if (ok && last && !sub->on_error_stop)
	{
		subcat_park(sub, ev->position, edata);
		worker_mark_done(&work, ev);
	}
	SPI_finish();
	if (ok && last && !sub->on_error_stop)
		ok = subcat_save_progress(sub, &work, false, InvalidXLogRecPtr,
								  ev->position, job_stream_id);
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
	ConditionVariableBroadcast(&handler_db->progress);
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
	ereport(WARNING, (errmsg("strata subscription \"%s\" stopped: %s",
							 sub->name, edata->message),
					  errhint("Fix the handler, then call "
							  "strata.resume_subscription.")));
	worker_begin();
	SPI_connect();
	subcat_stop(sub, edata->message ? edata->message : "");
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
bool
handler_run_list(WorkerSub *sub, WorkerEvent *list, int n)
{
	int from = 0;

	/* a catch-up reports its own progress (handler_catchup.c) */
	if (n > 0 && job_kind != JOB_CATCHUP)
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
