/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The "strata worker": follows one database's WAL for its
 *	  subscriptions, and hands their handlers' work to the database's
 *	  handler processes.  This file has the main loop, the pacing of the
 *	  rounds and the round itself; worker_decode.c the slot and the
 *	  decoding, worker_dispatch.c the jobs of the handler processes,
 *	  worker_subs.c the list of subscriptions.
 *
 * The worker decodes the WAL itself, in its own process, through the
 * database's logical slot and the strata output plugin (worker_decode.c).
 * One decoding stream serves every subscription of the database.  The
 * worker never calls a handler: a handler that sleeps holds one handler
 * process (handler.c), and the other subscriptions go on in the others.
 *
 * A round of the worker:
 *	1. takes the results of the jobs its handler processes finished;
 *	2. restarts decoding from the slot if a subscription is behind the
 *	   stream (resumed, due for a retry, busy for long), creating the slot
 *	   if needed;
 *	3. decodes the WAL flushed since the last round (never waiting for
 *	   more; at most a round's worth of events, whole transactions),
 *	   keeping of each transaction only its commit and the runs of
 *	   positions it wrote (worker_txns.c);
 *	4. in one transaction: checks the extension, reads the subscriptions
 *	   again when SQL or a job changed them, and waits until the decoded
 *	   transactions are visible to new snapshots;
 *	5. adds each live subscription's events, in commit order, to those
 *	   waiting for its handler;
 *	6. gives each subscription that has no job out and is due its next
 *	   job, if a handler process is idle: its waiting events, or a step of
 *	   catching up from strata.events that may hand it over to the stream;
 *	7. confirms to the slot (at most once a second) what every live
 *	   subscription has durably done.
 * Then it sleeps on its latch, which every commit that appended and every
 * job that ended sets; rounds start at least WORKER_MIN_ROUND_MS apart.
 *
 * A subscription's progress is kept two ways (see docs/architecture.md):
 * the stream checkpoint (end LSN of the last transaction processed, and
 * how many events of the next one), and the positions processed (every
 * position below the watermark, and the set 'delivered' above it).  The
 * first says where the stream resumes; the second makes the hand-over from
 * the table to the stream exact and answers strata.wait_for.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/walwriter.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "epoch.h"
#include "progress.h"
#include "settings.h"
#include "version.h"
#include "worker.h"
#include "worker_decode.h"
#include "worker_dispatch.h"
#include "worker_internal.h"
#include "worker_subs.h"

/* Longest sleep when nothing wakes the worker */
#define WORKER_NAPTIME_MS 10000

/*
 * Shortest time between the starts of two rounds: under a high append
 * rate, the commits of that time share a round (and its fixed cost of
 * cache resets and queries) instead of each waking one.
 */
#define WORKER_MIN_ROUND_MS 1

/* Round interval of a worker with no subscription: it only moves its slot */
#define WORKER_IDLE_ROUND_MS 1000

/* The worker's state */
int					 worker_index;
WorkerSlot			*worker_me;
static MemoryContext round_cxt; /* the round's allocations */

static Oid	worker_extoid = InvalidOid;
static bool worker_rewind = false; /* restart decoding next round */

/* ---------- the round ---------- */

/*
 * No extension here (never installed, dropped, or older than 0.3.0): drop
 * the slot if there is one, so that it keeps no WAL, say so in the shared
 * slot for the launcher, and exit.  CREATE EXTENSION and ALTER EXTENSION
 * UPDATE wake the launcher again.
 */
static void
worker_exit_absent(bool was_running)
{
	ereport(was_running ? LOG : DEBUG1,
			(errmsg("strata worker: extension strata is not installed "
					"(at version 0.3.0 or later) in this database; "
					"exiting")));
	worker_mark_absent(worker_me);
	decode_drop_slot();
	proc_exit(0);
}

/*
 * Wait until the decoded transactions are visible to new snapshots.  The
 * transaction's snapshot tells which may still be running (one scan of
 * the proc array for the round, not one per transaction); the lock of
 * each of those is waited for.
 */
static void
worker_wait_visible(void)
{
	Snapshot snapshot = GetActiveSnapshot();

	for (int i = 0; i < decoded.ntxns; i++)
		if (XidInMVCCSnapshot(decoded.txns[i]->xid, snapshot))
			XactLockTableWait(decoded.txns[i]->xid, NULL, NULL, XLTW_None);
}

/*
 * After decoding, in one transaction: check that the extension is still
 * there, read the subscriptions again if SQL changed them, and wait until
 * the decoded transactions are visible to the snapshots the handler
 * processes will take.  Returns false when the extension is gone.
 */
static bool
worker_prepare_round(bool reload)
{
	Oid	 extoid;
	bool present;
	bool new_extension = false;

	for (int i = 0; i < worker_nsubs; i++)
		if (worker_subs[i]->stale)
			reload = true;
	/* rows can also come without a notification (a restore's COPY) */
	if (TimestampDifferenceExceeds(worker_loaded_at, GetCurrentTimestamp(),
								   WORKER_NAPTIME_MS))
		reload = true;

	/*
	 * Nothing decoded and nothing to read again (a round woken by a job
	 * that ended): no transaction.  The extension is looked at again at
	 * the next round that decodes, reloads, or within WORKER_NAPTIME_MS.
	 */
	if (decoded.ntxns == 0 && !reload && worker_subs != NULL &&
		OidIsValid(worker_extoid))
		return true;

	worker_begin();
	extoid = get_extension_oid("strata", true);
	present = worker_extension_present();

	/* a new extension (DROP and CREATE EXTENSION): a new stream */
	if (extoid != worker_extoid)
	{
		new_extension = OidIsValid(worker_extoid);
		worker_extoid = extoid;
		reload = true;
	}
	if (!present)
	{
		PopActiveSnapshot();
		worker_commit();
		return false;
	}

	if (reload || worker_subs == NULL)
	{
		SPI_connect();
		/* a promoted node opens its epoch before the first append does */
		if (worker_subs == NULL && strata_installed_api() >= STRATA_API_0_6)
			epoch_ensure();
		worker_load_subs();
		SPI_finish();
	}

	worker_wait_visible();
	PopActiveSnapshot();
	worker_commit();

	/* a new extension has a new (empty) strata._stream: label the stream */
	if (new_extension)
		decode_new_stream();
	return true;
}

/* Does the catch-up of subscription 'name' go on (strata.progress)? */
static bool
worker_catchup_goes_on(const char *name)
{
	WorkerSub *sub = worker_find_sub(name);

	return sub != NULL && !sub->live && sub->state == 'a';
}

/* It does not: say so, with where it got to */
static void
worker_catchup_ended(const char *name, int64 position)
{
	ereport(LOG, (errmsg("strata subscription \"%s\" stopped catching up "
						 "at position " INT64_FORMAT
						 ": it was paused, stopped or dropped",
						 name, position)));
}

/*
 * Drop the progress entries of catch-ups that ended without a hand-over
 * (the subscription was paused, stopped or dropped): after the
 * subscriptions were read again, and once a second.
 */
static void
worker_prune_progress(bool reload)
{
	static TimestampTz last = 0;
	TimestampTz		   now = GetCurrentTimestamp();

	if (!reload && !TimestampDifferenceExceeds(last, now, 1000))
		return;
	last = now;
	progress_prune(PROGRESS_CATCHUP, worker_catchup_goes_on,
				   worker_catchup_ended);
}

/*
 * One round (see the file's header).  'reload': SQL changed the
 * subscriptions.  Returns how long the worker may sleep: 0 when work
 * remains.
 */
static long
worker_round(bool reload)
{
	long		wait_ms = WORKER_NAPTIME_MS;
	TimestampTz now;
	int			limit = worker_batch_size * WORKER_ROUND_BATCHES;
	XLogRecPtr	round_start;
	bool		async_wake;

	MemoryContextSwitchTo(round_cxt);
	MemoryContextReset(round_cxt);
	decode_new_round();

	async_wake = pg_atomic_exchange_u32(&worker_me->async_wake, 0) != 0;

	dispatch_collect();
	if (worker_rewind || !decode_started())
		decode_start();
	worker_rewind = false;
	round_start = decode_lsn;

	decode_round();
	if (!worker_prepare_round(reload))
		worker_exit_absent(true);
	worker_prune_progress(reload);
	dispatch_start_handlers();

	/* the round's events to every live subscription that follows */
	for (int i = 0; i < worker_nsubs; i++)
	{
		WorkerSub *sub = worker_subs[i];

		if (!sub->stale && sub->live && sub->state == 'a' &&
			sub->stream_lsn >= round_start)
			dispatch_feed(sub);
	}
	if (dispatch_jobs(&wait_ms))
		wait_ms = Min(wait_ms, HANDLER_NAPTIME_MS);

	decode_confirm();

	now = GetCurrentTimestamp();
	for (int i = 0; i < worker_nsubs; i++)
	{
		WorkerSub *sub = worker_subs[i];

		if (sub->stale)
			wait_ms = 0;
		else if (sub->live && sub->stream_lsn < decode_lsn &&
				 sub->npending == 0 && !dispatch_job_out(sub))
		{
			/* behind: rewind for it now, or when its retry is due */
			if (worker_sub_ready(sub, now, &wait_ms))
			{
				worker_rewind = true;
				wait_ms = 0;
			}
		}
	}
	if (decoded.nevents >= limit)
		wait_ms = 0;

	/*
	 * A transaction that appended with synchronous_commit = off woke the
	 * worker before its commit record was flushed: look again once the
	 * WAL writer has flushed it.
	 */
	if (async_wake)
		wait_ms = Min(wait_ms, WalWriterDelay);
	pgstat_report_activity(STATE_IDLE, NULL);
	return wait_ms;
}

/*
 * At exit, after the transaction was aborted and the replication slot
 * released (both before_shmem_exit callbacks): only then may DROP
 * DATABASE, which waits for this, go on.
 */
static void
worker_detach(int code, Datum arg)
{
	/* its handler processes go with it (they also see it gone) */
	dispatch_stop_handlers();
	worker_release(worker_me);
}

/* A round, whose failure (before the worker exits) is recorded */
static long
worker_round_recorded(bool reload)
{
	long wait_ms;

	PG_TRY();
	{
		wait_ms = worker_round(reload);
	}
	PG_CATCH();
	{
		worker_note_failure(worker_me, NULL, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	worker_clear_failure(worker_me, NULL, false);
	return wait_ms;
}

/*
 * SIGINT: the worker runs no handler, and its own work is not cancelled
 * by pg_cancel_backend (pg_terminate_backend restarts it).  PostgreSQL's
 * own lock_timeout and statement_timeout, which signal the process
 * itself, cancel as usual.
 */
static void
worker_sigint(SIGNAL_ARGS)
{
	int save_errno = errno;

	(void) worker_own_timeout();
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * Main of a worker: connect to the slot's database, then run rounds,
 * sleeping on the latch in between.
 */
void
strata_worker_main(Datum arg)
{
	TimestampTz last_round = 0;

	worker_index = DatumGetInt32(arg);
	worker_me = worker_slot(worker_index);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, worker_sigint);
	BackgroundWorkerUnblockSignals();

	round_cxt = AllocSetContextCreate(TopMemoryContext, "strata worker round",
									  ALLOCSET_DEFAULT_SIZES);
	worker_xact_cxt = round_cxt;
	dispatch_init();

	/* not while the database is being dropped, nor twice */
	if (worker_me->dropper != 0)
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(worker_me->dbid, InvalidOid, 0);
	if (!worker_claim(worker_me))
		proc_exit(0);
	on_shmem_exit(worker_detach, (Datum) 0);

	/*
	 * A crash may lose the last transactions of the worker, but only whole:
	 * the handlers' effects together with the checkpoint that records them,
	 * so the events are run again and exactly-once holds.  The slot is
	 * confirmed only past flushed commits (decode_confirm).
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * The worker's own queries name their schemas; with this path no object
	 * another role planted can be found by an unqualified name either.
	 * Handlers get the same path (usercall.c).
	 */
	SetConfigOption("search_path", STRATA_SAFE_SEARCH_PATH, PGC_SUSET,
					PGC_S_OVERRIDE);

	/* the slot's name first: a worker without the extension drops it */
	decode_init();

	/* nothing to do (and no slot to create) without the extension */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!worker_extension_present())
	{
		worker_commit();
		worker_exit_absent(false);
	}
	worker_commit();

	for (;;)
	{
		long		wait_ms;
		TimestampTz now;
		long		pause_ms = 0;
		bool		reload;
		bool		changed;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* pace the rounds (see WORKER_MIN_ROUND_MS, WORKER_IDLE_ROUND_MS) */
		changed = pg_atomic_read_u32(&worker_me->changed) != 0;
		now = GetCurrentTimestamp();
		if (last_round != 0)
		{
			long since;
			int	 usecs;

			TimestampDifference(last_round, now, &since, &usecs);
			since = since * 1000 + usecs / 1000;
			if (worker_nsubs == 0 && !changed && since < WORKER_IDLE_ROUND_MS)
				pause_ms = WORKER_IDLE_ROUND_MS - since;
			else if (since < WORKER_MIN_ROUND_MS)
				pause_ms = WORKER_MIN_ROUND_MS - since;
		}
		if (pause_ms > 0 && worker_nsubs == 0 && !changed)
		{
			/*
			 * Idle: appends do not end the pause (they would wake the worker
			 * for nothing at every commit); a SIGTERM waits for it, at most
			 * WORKER_IDLE_ROUND_MS.
			 */
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 pause_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		if (pause_ms > 0)
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 pause_ms, PG_WAIT_EXTENSION);

		/* cleared before reading: a change after this sets it again */
		reload = pg_atomic_exchange_u32(&worker_me->changed, 0) != 0;
		last_round = GetCurrentTimestamp();
		wait_ms = worker_round_recorded(reload);
		if (wait_ms > 0)
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
