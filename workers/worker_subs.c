/*-------------------------------------------------------------------------
 *
 * worker_subs.c
 *	  What the worker (worker.c) and its handler processes (handler.c)
 *	  share: reading strata.subscriptions into WorkerSubs, their
 *	  transactions, the failure record that strata.subscription_status
 *	  shows, and the check that the extension is there; and the worker's
 *	  list of subscriptions, read again when SQL or a job changed them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "postmaster/bgworker.h"

#include "strata.h"
#include "version.h"
#include "define.h"
#include "settings.h"
#include "worker.h"
#include "worker_decode.h"
#include "worker_dispatch.h"
#include "worker_subs.h"

MemoryContext worker_xact_cxt = NULL;

/* The worker's subscriptions (in subs_cxt, renewed by each load) */
WorkerSub		   **worker_subs = NULL;
int					 worker_nsubs = 0;
TimestampTz			 worker_loaded_at = 0;
static MemoryContext subs_cxt = NULL;

/*
 * Fill 'bgw' for a dynamic worker of this library that connects to a
 * database, runs 'function' and is never restarted by the postmaster
 * (the launcher restarts workers, a worker its handler processes).
 */
void
worker_bgw_init(BackgroundWorker *bgw, const char *function)
{
	memset(bgw, 0, sizeof(*bgw));
	bgw->bgw_flags =
		BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw->bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw->bgw_library_name, BGW_MAXLEN, "strata");
	snprintf(bgw->bgw_function_name, BGW_MAXLEN, "%s", function);
}

/*
 * In a SIGINT handler of the worker or a handler process: PostgreSQL's
 * own lock_timeout and statement_timeout signal the process itself, and
 * cancel as usual (true); any other SIGINT is strata's to interpret.
 */
bool
worker_own_timeout(void)
{
	if (get_timeout_indicator(LOCK_TIMEOUT, false) ||
		get_timeout_indicator(STATEMENT_TIMEOUT, false))
	{
		InterruptPending = true;
		QueryCancelPending = true;
		return true;
	}
	return false;
}

/* Start a transaction with an active snapshot. */
void
worker_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/*
 * Commit (abort) it and make worker_xact_cxt current: what the process
 * allocates between its transactions lives there.
 */
void
worker_commit(void)
{
	CommitTransactionCommand();
	MemoryContextSwitchTo(worker_xact_cxt);
}

void
worker_abort(void)
{
	AbortCurrentTransaction();
	MemoryContextSwitchTo(worker_xact_cxt);
}

/* Is the extension installed here, at 0.3.0 or later?  In a transaction. */
bool
worker_extension_present(void)
{
	return strata_installed_api() >= STRATA_API_0_3;
}

/*
 * The worker, or a handler process running a job of 'subscription',
 * failed ('message', or the error being handled when NULL: in a
 * PG_CATCH, before the process exits): keep the error where
 * strata.subscription_status shows it ('failing'), so that a process
 * that fails at every start is not taken for a live one.
 */
void
worker_note_failure(WorkerSlot *slot, const char *subscription,
					const char *message)
{
	ErrorData  *edata = NULL;
	TimestampTz now = GetCurrentTimestamp();

	if (message == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		edata = CopyErrorData();
		MemoryContextSwitchTo(old);
		message = edata->message ? edata->message : "";
	}
	SpinLockAcquire(&slot->mutex);
	slot->failures++;
	strlcpy(slot->last_error, message, sizeof(slot->last_error));
	strlcpy(slot->failed_sub, subscription ? subscription : "",
			sizeof(slot->failed_sub));
	slot->failed_start = false;
	slot->last_error_at = now;
	SpinLockRelease(&slot->mutex);
	if (edata != NULL)
		FreeErrorData(edata);
}

/*
 * The worker (subscription NULL) or a job of 'subscription' went through:
 * a failure it had recorded is over.  One of another subscription stays,
 * and so does a handler process the worker could not start, until it
 * could ('started').
 */
void
worker_clear_failure(WorkerSlot *slot, const char *subscription, bool started)
{
	if (slot->failures == 0)
		return;
	SpinLockAcquire(&slot->mutex);
	if (strcmp(slot->failed_sub, subscription ? subscription : "") == 0 &&
		(!slot->failed_start || started))
		slot->failures = 0;
	SpinLockRelease(&slot->mutex);
}

/* The worker could not start a handler process: see worker_clear_failure */
void
worker_note_start_failure(WorkerSlot *slot, const char *message)
{
	worker_note_failure(slot, NULL, message);
	SpinLockAcquire(&slot->mutex);
	slot->failed_start = true;
	SpinLockRelease(&slot->mutex);
}

/* ---------- the worker's list ---------- */

/* The subscription named 'name' in the worker's list, or NULL */
WorkerSub *
worker_find_sub(const char *name)
{
	for (int i = 0; i < worker_nsubs; i++)
		if (strcmp(worker_subs[i]->name, name) == 0)
			return worker_subs[i];
	return NULL;
}

/*
 * Read the subscriptions table into a new subs_cxt.  A subscription whose
 * generation did not change keeps what the worker knows beyond the table
 * (how far the stream was dispatched to it and processed, the events
 * waiting for a handler process).  Must run in a transaction, connected
 * to SPI.
 */
void
worker_load_subs(void)
{
	MemoryContext new_cxt;
	WorkerSub	**list;
	int			  n;
	bool		  failed_found = false;

	new_cxt = AllocSetContextCreate(TopMemoryContext, "strata subscriptions",
									ALLOCSET_DEFAULT_SIZES);
	n = subcat_load(NULL, decode_stream_id, new_cxt, &list);
	for (int i = 0; i < n; i++)
	{
		WorkerSub *sub = list[i];
		WorkerSub *prev = worker_find_sub(sub->name);

		if (prev != NULL && prev->attempts > 0 && sub->attempts > 0)
			sub->first_failed_at = prev->first_failed_at;
		if (prev != NULL && prev->generation == sub->generation &&
			!prev->stale && prev->live == sub->live)
		{
			sub->stream_lsn =
				Max(prev->stream_lsn, sub->progress.checkpoint_lsn);
			sub->done_lsn = Max(prev->done_lsn, sub->progress.checkpoint_lsn);
			sub->pending = prev->pending;
			sub->npending = prev->npending;
			prev->pending = NULL;
			prev->npending = 0;
		}
		else
		{
			sub->stream_lsn =
				Max(sub->progress.checkpoint_lsn, decode_confirmed_lsn());
			sub->done_lsn = sub->stream_lsn;
		}
		if (strcmp(worker_me->failed_sub, sub->name) == 0 && sub->state == 'a')
			failed_found = true;
	}
	for (int i = 0; i < worker_nsubs; i++)
		dispatch_drop_pending(worker_subs[i]);

	if (subs_cxt != NULL)
		MemoryContextDelete(subs_cxt);
	subs_cxt = new_cxt;
	worker_subs = list;
	worker_nsubs = n;
	worker_loaded_at = GetCurrentTimestamp();

	/* a failing job's subscription was paused or dropped: not failing now */
	if (!failed_found && worker_me->failed_sub[0] != '\0')
		worker_clear_failure(worker_me, worker_me->failed_sub, false);
}

/* Is the subscription due to run now (active, not waiting to retry)? */
bool
worker_sub_ready(WorkerSub *sub, TimestampTz now, long *wait_ms)
{
	TimestampTz retry_at;
	int			shift;

	if (sub->state != 'a')
		return false;
	if (sub->attempts == 0 || sub->last_error_at == 0)
		return true;
	shift = Min(sub->attempts - 1, 20);
	retry_at = TimestampTzPlusMilliseconds(
		sub->last_error_at, (int64) worker_retry_base_delay << shift);
	if (retry_at <= now)
		return true;
	if (wait_ms != NULL)
	{
		long secs;
		int	 usecs;

		TimestampDifference(now, retry_at, &secs, &usecs);
		*wait_ms = Min(*wait_ms, secs * 1000 + usecs / 1000 + 1);
	}
	return false;
}
