/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The "strata worker": follows one database's WAL for its
 *	  subscriptions, and hands their handlers' work to the database's
 *	  handler processes (handler.c).
 *
 * The worker decodes the WAL itself, in its own process, through the
 * database's logical slot (strata_<database oid>) and the strata output
 * plugin, the way a walsender does, but with no connection in between:
 * the plugin hands each committed event to this file (decoder_capture).
 * One decoding stream serves every subscription of the database.  The
 * worker never calls a handler: a handler that sleeps holds one handler
 * process, and the other subscriptions go on in the others.
 *
 * A round of the worker:
 *	1. takes the results of the jobs its handler processes finished;
 *	2. restarts decoding from the slot if a subscription is behind the
 *	   stream (resumed, due for a retry, busy for long), creating the slot
 *	   if needed;
 *	3. decodes the WAL flushed since the last round (never waiting for
 *	   more; at most a round's worth of events, whole transactions),
 *	   keeping of each event only its position, category and type;
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

#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogutils.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/walwriter.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "strata.h"
#include "decoder.h"
#include "define.h"
#include "privilege.h"
#include "registry.h"
#include "subscription.h"
#include "usercall.h"
#include "worker_internal.h"
#include "worker_subs.h"

/* Most events buffered by one round, in units of strata.worker_batch_size */
#define WORKER_ROUND_BATCHES 10

/* worker_run_batch: the handler cannot be called at all */
#define WORKER_BAD_HANDLER (-3)

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

/* Shortest time between two confirmations to the slot */
#define WORKER_CONFIRM_MS 1000

/* Most events waiting for a handler process, per subscription */
#define WORKER_PENDING_MAX (HANDLER_JOB_MAX * 16)

/* Delay before a handler process that stopped is started again */
#define HANDLER_RESTART_DELAY_MS 1000

/* A decoded event: where it is in the round's transactions */
typedef struct DecodedEvent
{
	int64 position;
	char *category;
	char *type;
	int	  txn;	 /* index in the round's transactions */
	int	  index; /* index within its transaction */
} DecodedEvent;

/* A decoded transaction with events */
typedef struct WorkerTxn
{
	TransactionId xid;
	XLogRecPtr	  end_lsn;
	int			  first; /* its first event in the round's events */
	int			  nevents;
} WorkerTxn;

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
	int						nentries;
} HandlerProc;

/* The worker's state */
static int			 worker_index;
static WorkerSlot	*worker_me;
static MemoryContext subs_cxt = NULL; /* the subscriptions, renewed per load */
static MemoryContext round_cxt;		  /* the round's events */
static MemoryContext pending_cxt;	  /* the subscriptions' pending events */
static LogicalDecodingContext *worker_ctx = NULL;
static XLogRecPtr			   stream_lsn = InvalidXLogRecPtr;
static char					   slot_name[NAMEDATALEN];

static WorkerSub **subs = NULL;
static int		   nsubs = 0;

static DecodedEvent *events = NULL;
static int			 nevents = 0;
static int			 events_cap = 0;
static WorkerTxn	*txns = NULL;
static int			 ntxns = 0;
static int			 txns_cap = 0;
static int			 txn_first = 0;

static HandlerProc *handlers = NULL;
static int			dispatch_from = 0; /* where the next dispatch starts */

static Oid		   worker_extoid = InvalidOid;
static bool		   worker_rewind = false;	/* restart decoding next round */
static char		  *worker_stream_id = NULL; /* identity of the slot's stream */
static TimestampTz worker_loaded_at = 0;	/* when subscriptions were read */

static void worker_reset_caches(XLogRecPtr from);

/* ---------- decoding ---------- */

static void
worker_capture_event(void *arg, ReorderBufferTXN *txn, HeapTuple tuple,
					 TupleDesc desc, int64 position, Datum category,
					 Datum type)
{
	MemoryContext old = MemoryContextSwitchTo(round_cxt);
	DecodedEvent *ev;

	if (nevents == events_cap)
	{
		events_cap = events_cap == 0 ? 1024 : events_cap * 2;
		events = events == NULL
					 ? palloc(sizeof(DecodedEvent) * events_cap)
					 : repalloc(events, sizeof(DecodedEvent) * events_cap);
	}
	/* the row itself is read by the handler process, from strata.events */
	ev = &events[nevents++];
	ev->position = position;
	ev->category = TextDatumGetCString(category);
	ev->type = TextDatumGetCString(type);
	ev->txn = ntxns;
	ev->index = nevents - 1 - txn_first;
	MemoryContextSwitchTo(old);
}

static void
worker_capture_commit(void *arg, ReorderBufferTXN *txn)
{
	MemoryContext old = MemoryContextSwitchTo(round_cxt);

	if (ntxns == txns_cap)
	{
		txns_cap = txns_cap == 0 ? 64 : txns_cap * 2;
		txns = txns == NULL ? palloc(sizeof(WorkerTxn) * txns_cap)
							: repalloc(txns, sizeof(WorkerTxn) * txns_cap);
	}
	txns[ntxns].xid = txn->xid;
	txns[ntxns].end_lsn = txn->end_lsn;
	txns[ntxns].first = txn_first;
	txns[ntxns].nevents = nevents - txn_first;
	ntxns++;
	txn_first = nevents;
	MemoryContextSwitchTo(old);
}

static DecoderCapture worker_capture = {worker_capture_event,
										worker_capture_commit, NULL};

/*
 * Read WAL pages as pg_logical_slot_get_changes does, but never wait: a
 * record that goes past the flush position is read in a later round
 * (read_local_xlog_page would sleep in 1 ms steps until it is flushed).
 */
static int
worker_page_read(XLogReaderState *state, XLogRecPtr targetPagePtr, int reqLen,
				 XLogRecPtr targetRecPtr, char *cur_page)
{
	if (targetPagePtr + reqLen > GetFlushRecPtr(NULL))
		return XLREAD_WOULDBLOCK;
	return read_local_xlog_page(state, targetPagePtr, reqLen, targetRecPtr,
								cur_page);
}

/* The plugin never writes while capturing; these only satisfy the API. */
static void
worker_prepare_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
					 TransactionId xid, bool last_write)
{
	resetStringInfo(ctx->out);
}

static void
worker_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid,
			 bool last_write)
{
}

static bool
worker_slot_invalidated(ReplicationSlot *slot)
{
#if PG_VERSION_NUM >= 160000
	return slot->data.invalidated != RS_INVAL_NONE;
#else
	return slot->data.invalidated_at != InvalidXLogRecPtr &&
		   XLogRecPtrIsInvalid(slot->data.restart_lsn);
#endif
}

/* Create the database's slot (in a transaction of its own). */
static void
worker_create_slot(void)
{
	LogicalDecodingContext *ctx;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
#if PG_VERSION_NUM >= 170000
	ReplicationSlotCreate(slot_name, true, RS_EPHEMERAL, false, false, false);
#else
	ReplicationSlotCreate(slot_name, true, RS_EPHEMERAL, false);
#endif
	ctx = CreateInitDecodingContext(
		"strata", NIL, false, InvalidXLogRecPtr,
		XL_ROUTINE(.page_read = read_local_xlog_page,
				   .segment_open = wal_segment_open,
				   .segment_close = wal_segment_close),
		worker_prepare_write, worker_write, NULL);
	DecodingContextFindStartpoint(ctx);
	FreeDecodingContext(ctx);
	ReplicationSlotPersist();
	ReplicationSlotRelease();
	worker_commit();
	ereport(LOG, (errmsg("strata worker created replication slot \"%s\"",
						 slot_name)));
}

/*
 * A new stream is about to start (a new slot): give it a new identity,
 * and send every live subscription back to catching up from
 * strata.events: their checkpoints refer to WAL this slot never saw, but
 * their processed positions are exact.  Committed and flushed before the
 * slot exists, so that no crash can leave a new slot with old
 * checkpoints; a checkpoint saved under another identity (as a restored
 * database brings) is ignored the same way (worker_load_subs).
 */
static void
worker_new_stream(void)
{
	char *id;

	id = psprintf(UINT64_FORMAT "/%X/%X/" INT64_FORMAT, GetSystemIdentifier(),
				  LSN_FORMAT_ARGS(GetXLogInsertRecPtr()),
				  (int64) GetCurrentTimestamp());
	worker_begin();
	SPI_connect();
	if (SPI_execute("DELETE FROM strata._stream", false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args("INSERT INTO strata._stream (id) VALUES ($1)", 1,
							  (Oid[]){TEXTOID},
							  (Datum[]){CStringGetTextDatum(id)}, NULL, false,
							  0) != SPI_OK_INSERT ||
		SPI_execute("UPDATE strata.subscriptions SET phase = 'catchup', "
					"generation = generation OPERATOR(pg_catalog.+) 1 "
					"WHERE phase OPERATOR(pg_catalog.=) 'live'",
					false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not start a new stream");
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	XLogFlush(XactLastCommitEnd);

	if (worker_stream_id != NULL)
		pfree(worker_stream_id);
	worker_stream_id = MemoryContextStrdup(TopMemoryContext, id);
	for (int i = 0; i < nsubs; i++)
		subs[i]->stale = true;
}

/* Read the identity of the current stream; false if there is none */
static bool
worker_read_stream_id(void)
{
	bool found = false;

	worker_begin();
	SPI_connect();
	if (SPI_execute("SELECT id FROM strata._stream", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata._stream");
	if (SPI_processed == 1)
	{
		if (worker_stream_id != NULL)
			pfree(worker_stream_id);
		worker_stream_id = MemoryContextStrdup(
			TopMemoryContext,
			SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		found = true;
	}
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	return found;
}

/*
 * (Re)start decoding from the slot: create the slot if missing, replace
 * it if it was invalidated, and set the stream back to its confirmed
 * position.  Subscriptions skip what they already processed.
 */
static void
worker_start_stream(void)
{
	ReplicationSlot *slot;
	MemoryContext	 old;

	if (worker_ctx != NULL)
	{
		FreeDecodingContext(worker_ctx);
		worker_ctx = NULL;
	}

	if (MyReplicationSlot == NULL)
	{
		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		slot = SearchNamedReplicationSlot(slot_name, false);
		LWLockRelease(ReplicationSlotControlLock);
		if (slot == NULL)
		{
			/* first start, a promoted standby, a slot dropped by hand */
			worker_new_stream();
			worker_create_slot();
		}
		else if (!worker_read_stream_id())
			worker_new_stream();
		ReplicationSlotAcquire(slot_name, true);
	}

	if (worker_slot_invalidated(MyReplicationSlot))
	{
		ereport(WARNING,
				(errmsg("replication slot \"%s\" was invalidated; strata "
						"subscriptions catch up from strata.events",
						slot_name),
				 errdetail("The WAL the slot retained exceeded "
						   "max_slot_wal_keep_size.")));
		ReplicationSlotRelease();
		ReplicationSlotDrop(slot_name, true);
		worker_new_stream();
		worker_create_slot();
		ReplicationSlotAcquire(slot_name, true);
	}

	decoder_capture = &worker_capture;
	old = MemoryContextSwitchTo(TopMemoryContext);
	worker_ctx =
		CreateDecodingContext(InvalidXLogRecPtr, NIL, false,
							  XL_ROUTINE(.page_read = worker_page_read,
										 .segment_open = wal_segment_open,
										 .segment_close = wal_segment_close),
							  worker_prepare_write, worker_write, NULL);
	MemoryContextSwitchTo(old);
	XLogBeginRead(worker_ctx->reader, MyReplicationSlot->data.restart_lsn);
	stream_lsn = MyReplicationSlot->data.confirmed_flush;

	/* what was dispatched stays dispatched; the others skip what they did */
	for (int i = 0; i < nsubs; i++)
		if (subs[i]->live)
			subs[i]->stream_lsn = Max(subs[i]->stream_lsn, stream_lsn);
}

/*
 * Decode the WAL flushed since the last round, stopping after a
 * transaction once a round's worth of events is buffered.  Runs outside
 * any transaction, like a walsender; the catalog caches are flushed on
 * the way in and out, as in pg_logical_slot_get_changes, because this
 * process also runs ordinary transactions between rounds.
 */
static void
worker_decode(void)
{
	XLogRecPtr	  end;
	XLogRecPtr	  from;
	int			  limit = worker_batch_size * WORKER_ROUND_BATCHES;
	MemoryContext old;

	/*
	 * Events appended by handlers were committed asynchronously (see
	 * strata_worker_main): flush them, so that they are decoded now rather
	 * than after the WAL writer's next flush and some other wake-up.
	 */
	end = GetFlushRecPtr(NULL);
	if (worker_ctx->reader->EndRecPtr >= end && stream_lsn >= end)
		return;

	pgstat_report_activity(STATE_RUNNING, "decoding");
	from = worker_ctx->reader->EndRecPtr;
	if (XLogRecPtrIsInvalid(from))
		from = MyReplicationSlot->data.restart_lsn;
	worker_reset_caches(from);
	/* the WAL reader allocates as it goes: not in round_cxt */
	old = MemoryContextSwitchTo(worker_ctx->context);
	while (worker_ctx->reader->EndRecPtr < end && nevents < limit)
	{
		XLogRecord *record;
		char	   *errm = NULL;

		record = XLogReadRecord(worker_ctx->reader, &errm);
		if (errm)
			elog(ERROR, "could not read WAL for decoding: %s", errm);
		if (record == NULL)
			break; /* the rest of the record is not flushed yet */
		LogicalDecodingProcessRecord(worker_ctx, worker_ctx->reader);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	worker_reset_caches(from);
	if (worker_ctx->reader->EndRecPtr > stream_lsn)
		stream_lsn = worker_ctx->reader->EndRecPtr;
}

/*
 * The WAL insert position when this process last saw a catalog change.
 * Decoding runs under historic snapshots and the rounds' transactions
 * under current ones, in one process.  A cache entry built under one must
 * not be used under the other when the catalog changed between the two
 * points in time: the decoded WAL and now.  Every invalidation (a catalog
 * change committed anywhere, seen when a transaction starts, or one
 * replayed by decoding) moves this position to the current end of the
 * WAL, and any decoding that starts below it resets the caches before
 * and after, as pg_logical_slot_get_changes always does.  Once the
 * decoding has passed it, the catalog of the decoded WAL is the current
 * one, and the caches are left alone.
 */
static XLogRecPtr worker_catalog_lsn = InvalidXLogRecPtr;

static void
worker_catalog_changed(void)
{
	worker_catalog_lsn = GetXLogInsertRecPtr();
}

static void
worker_relcache_callback(Datum arg, Oid relid)
{
	worker_catalog_changed();
}

static void
worker_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	worker_catalog_changed();
}

/* Reset the caches if decoding from 'from' may meet another catalog */
static void
worker_reset_caches(XLogRecPtr from)
{
	if (from < worker_catalog_lsn || XLogRecPtrIsInvalid(worker_catalog_lsn))
	{
		XLogRecPtr known = worker_catalog_lsn;

		InvalidateSystemCaches();
		/* our own reset calls the callbacks too: it is no catalog change */
		worker_catalog_lsn = known;
		if (XLogRecPtrIsInvalid(worker_catalog_lsn))
			worker_catalog_changed();
	}
}

/* ---------- subscriptions ---------- */

static WorkerSub *
worker_find_sub(const char *name)
{
	for (int i = 0; i < nsubs; i++)
		if (strcmp(subs[i]->name, name) == 0)
			return subs[i];
	return NULL;
}

/* Forget the events waiting for 'sub' */
static void
worker_drop_pending(WorkerSub *sub)
{
	if (sub->pending != NULL)
		pfree(sub->pending);
	sub->pending = NULL;
	sub->npending = sub->pending_cap = 0;
}

/*
 * Read the subscriptions table into a new subs_cxt.  A subscription whose
 * generation did not change keeps what the worker knows beyond the table
 * (how far the stream was dispatched to it and processed, the events
 * waiting for a handler process).  Must run in a transaction, connected
 * to SPI.
 */
static void
worker_load_subs(void)
{
	MemoryContext new_cxt;
	WorkerSub	**list;
	int			  n;
	bool		  failed_found = false;

	new_cxt = AllocSetContextCreate(TopMemoryContext, "strata subscriptions",
									ALLOCSET_DEFAULT_SIZES);
	n = worker_read_subs(NULL, worker_stream_id, new_cxt, &list);
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
			sub->pending_cap = prev->pending_cap;
			prev->pending = NULL;
		}
		else
		{
			sub->stream_lsn =
				Max(sub->progress.checkpoint_lsn,
					worker_ctx ? MyReplicationSlot->data.confirmed_flush
							   : InvalidXLogRecPtr);
			sub->done_lsn = sub->stream_lsn;
		}
		if (strcmp(worker_me->failed_sub, sub->name) == 0 && sub->state == 'a')
			failed_found = true;
	}
	for (int i = 0; i < nsubs; i++)
		worker_drop_pending(subs[i]);

	if (subs_cxt != NULL)
		MemoryContextDelete(subs_cxt);
	subs_cxt = new_cxt;
	subs = list;
	nsubs = n;
	worker_loaded_at = GetCurrentTimestamp();

	/* a failing job's subscription was paused or dropped: not failing now */
	if (!failed_found && worker_me->failed_sub[0] != '\0')
		worker_clear_failure(worker_me, worker_me->failed_sub, false);
}

/* Is the subscription due to run now (active, not waiting to retry)? */
static bool
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
	ReplicationSlot *rs;

	ereport(was_running ? LOG : DEBUG1,
			(errmsg("strata worker: extension strata is not installed "
					"(at version 0.3.0 or later) in this database; "
					"exiting")));
	worker_mark_absent(worker_me);
	if (worker_ctx != NULL)
		FreeDecodingContext(worker_ctx);
	worker_ctx = NULL;
	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	rs = SearchNamedReplicationSlot(slot_name, false);
	LWLockRelease(ReplicationSlotControlLock);
	if (rs != NULL)
		ReplicationSlotDrop(slot_name, true);
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

	for (int i = 0; i < ntxns; i++)
		if (XidInMVCCSnapshot(txns[i].xid, snapshot))
			XactLockTableWait(txns[i].xid, NULL, NULL, XLTW_None);
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

	for (int i = 0; i < nsubs; i++)
		if (subs[i]->stale)
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
	if (ntxns == 0 && !reload && subs != NULL && OidIsValid(worker_extoid))
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

	if (reload || subs == NULL)
	{
		SPI_connect();
		worker_load_subs();
		SPI_finish();
	}

	worker_wait_visible();
	PopActiveSnapshot();
	worker_commit();

	/* a new extension has a new (empty) strata._stream: label the stream */
	if (new_extension)
		worker_new_stream();
	return true;
}

/* ---------- handler processes and their jobs ---------- */

/* Is a job of 'sub' out (to a handler process)? */
static HandlerProc *
worker_job_of(WorkerSub *sub)
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
static void
worker_start_handlers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		failed = false;

	if (nsubs == 0)
		return;
	for (int i = 0; i < worker_handler_workers; i++)
	{
		HandlerProc		*h = &handlers[i];
		HandlerSlot		*hs = worker_handler_slot(worker_me, i);
		BackgroundWorker bgw;
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
		bgw.bgw_main_arg =
			Int32GetDatum(worker_index * HANDLER_ARG_BASE + i);
		memcpy(bgw.bgw_extra, &MyProcPid, sizeof(pid_t));
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
	WorkerSub *sub = worker_find_sub(h->sub);

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
			worker_drop_pending(sub);
		}
		return;
	}
	if (h->nentries > sub->npending)
	{
		/* can't happen: its pending events changed under the job */
		sub->stale = true;
		return;
	}
	sub->npending -= h->nentries;
	memmove(sub->pending, sub->pending + h->nentries,
			sizeof(HandlerEntry) * sub->npending);
	sub->done_lsn = sub->npending == 0 ? sub->stream_lsn : h->through_lsn;
	sub->attempts = 0;
}

/* Take the results of the jobs that came back. */
static void
worker_collect_jobs(void)
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

/*
 * Add the round's events of 'sub' that are past where its stream was
 * dispatched to what waits for a handler process, whole transactions at
 * a time, at most WORKER_PENDING_MAX (unless one transaction is larger):
 * a subscription that is busy for long falls behind and gets the rest by
 * a rewind once its handler is free again.
 */
static void
worker_feed(WorkerSub *sub)
{
	MemoryContext old = MemoryContextSwitchTo(pending_cxt);
	int			  t = 0;

	while (t < ntxns && txns[t].end_lsn <= sub->stream_lsn)
		t++;
	for (; t < ntxns; t++)
	{
		WorkerTxn *txn = &txns[t];
		int		   need = sub->npending + txn->nevents;

		if (need > WORKER_PENDING_MAX && sub->npending > 0)
			break;
		if (need > sub->pending_cap)
		{
			sub->pending_cap = Max(need, Max(64, sub->pending_cap * 2));
			sub->pending =
				sub->pending == NULL
					? palloc(sizeof(HandlerEntry) * sub->pending_cap)
					: repalloc(sub->pending,
							   sizeof(HandlerEntry) * sub->pending_cap);
		}
		for (int k = 0; k < txn->nevents; k++)
		{
			DecodedEvent *ev = &events[txn->first + k];
			HandlerEntry *e = &sub->pending[sub->npending++];

			e->position = ev->position;
			e->end_lsn = txn->end_lsn;
			e->index = k;
			e->nevents = txn->nevents;
			e->matches =
				define_in_list(sub->categories, sub->ncategories,
							   ev->category) &&
				define_in_list(sub->types, sub->ntypes, ev->type);
		}
		sub->stream_lsn = txn->end_lsn;
	}
	/* after a rewind the round may end below what was dispatched already */
	if (t == ntxns)
		sub->stream_lsn = Max(sub->stream_lsn, stream_lsn);
	if (sub->npending == 0 && worker_job_of(sub) == NULL)
		sub->done_lsn = sub->stream_lsn;
	MemoryContextSwitchTo(old);
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
			hs->state == JOB_NONE)
		{
			*index = i;
			return &handlers[i];
		}
	}
	return NULL;
}

/*
 * Give 'sub' to the idle handler process 'index': its pending events (as
 * many as a job holds), or, catching up, a step from the table that may
 * hand it over at the current end of the stream (decoded and visible).
 */
static void
worker_give_job(WorkerSub *sub, HandlerProc *h, int index)
{
	HandlerSlot *hs = worker_handler_slot(worker_me, index);
	int			 n = 0;
	Latch		*latch;

	h->busy = true;
	strlcpy(h->sub, sub->name, sizeof(h->sub));
	h->generation = sub->generation;
	h->kind = sub->live ? JOB_STREAM : JOB_CATCHUP;
	h->live_lsn = stream_lsn;
	if (sub->live)
	{
		n = Min(sub->npending, HANDLER_JOB_MAX);
		memcpy(hs->entries, sub->pending, sizeof(HandlerEntry) * n);
		/* where it stands when these ran: at the last whole transaction */
		h->through_lsn = sub->done_lsn;
		if (n == sub->npending)
			h->through_lsn = sub->stream_lsn;
		else
			for (int k = n - 1; k >= 0; k--)
				if (sub->pending[k].index == sub->pending[k].nevents - 1)
				{
					h->through_lsn = sub->pending[k].end_lsn;
					break;
				}
	}
	h->nentries = n;

	SpinLockAcquire(&hs->mutex);
	strlcpy(hs->sub, sub->name, sizeof(hs->sub));
	hs->generation = sub->generation;
	hs->kind = h->kind;
	hs->live_lsn = h->live_lsn;
	strlcpy(hs->stream_id, worker_stream_id ? worker_stream_id : "",
			sizeof(hs->stream_id));
	hs->first_failed_at = sub->attempts > 0 ? sub->first_failed_at : 0;
	hs->nentries = n;
	hs->state = JOB_ASSIGNED;
	latch = hs->latch;
	SpinLockRelease(&hs->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Hand out jobs to the idle handler processes: to every active
 * subscription that is due (not waiting to retry), has no job out, and
 * has pending events or is catching up.  Starts where the last dispatch
 * stopped, so that no subscription waits behind the others for a handler
 * process.  Returns true when some subscription still waits for one.
 */
static bool
worker_dispatch(long *wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		waiting = false;

	for (int k = 0; k < nsubs; k++)
	{
		int			 i = (dispatch_from + k) % nsubs;
		WorkerSub	*sub = subs[i];
		HandlerProc *h;
		int			 index;

		/* a live one with nothing waiting may be behind: see the rewind */
		if (sub->stale || (sub->live && sub->npending == 0) ||
			worker_job_of(sub) != NULL || !worker_sub_ready(sub, now, wait_ms))
			continue;
		h = worker_idle_handler(&index);
		if (h == NULL)
		{
			waiting = true;
			continue;
		}
		worker_give_job(sub, h, index);
		dispatch_from = (i + 1) % nsubs;
	}
	return waiting;
}

/*
 * Confirm to the slot what every live subscription has processed, at most
 * every WORKER_CONFIRM_MS; a catch-up out to a handler process may hand
 * its subscription over at the stream end it was given, so that holds the
 * slot too.  The handler processes commit asynchronously, so the WAL
 * is flushed first: a slot saved past a transaction whose commit a crash
 * then lost would skip that transaction's events.
 */
static void
worker_confirm(void)
{
	static TimestampTz last_confirm = 0;
	XLogRecPtr		   confirm = stream_lsn;
	TimestampTz		   now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(last_confirm, now, WORKER_CONFIRM_MS))
		return;
	for (int i = 0; i < nsubs; i++)
		if (subs[i]->live)
			confirm = Min(confirm, subs[i]->done_lsn);
	for (int i = 0; i < worker_handler_workers; i++)
		if (handlers[i].busy && handlers[i].kind == JOB_CATCHUP)
			confirm = Min(confirm, handlers[i].live_lsn);
	if (confirm > MyReplicationSlot->data.confirmed_flush)
	{
		XLogFlush(GetXLogInsertRecPtr());
		LogicalConfirmReceivedLocation(confirm);
		ReplicationSlotMarkDirty();
	}
	last_confirm = now;
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
	events = NULL;
	nevents = events_cap = 0;
	txns = NULL;
	ntxns = txns_cap = 0;
	txn_first = 0;

	async_wake = worker_me->async_wake;
	if (async_wake)
	{
		worker_me->async_wake = false;
		pg_memory_barrier();
	}

	worker_collect_jobs();
	if (worker_rewind || worker_ctx == NULL)
		worker_start_stream();
	worker_rewind = false;
	round_start = stream_lsn;

	worker_decode();
	if (!worker_prepare_round(reload))
		worker_exit_absent(true);
	worker_start_handlers();

	/* the round's events to every live subscription that follows */
	for (int i = 0; i < nsubs; i++)
	{
		WorkerSub *sub = subs[i];

		if (!sub->stale && sub->live && sub->state == 'a' &&
			sub->stream_lsn >= round_start)
			worker_feed(sub);
	}
	if (worker_dispatch(&wait_ms))
		wait_ms = Min(wait_ms, HANDLER_NAPTIME_MS);

	worker_confirm();

	now = GetCurrentTimestamp();
	for (int i = 0; i < nsubs; i++)
	{
		WorkerSub *sub = subs[i];

		if (sub->stale)
			wait_ms = 0;
		else if (sub->live && sub->stream_lsn < stream_lsn &&
				 sub->npending == 0 && worker_job_of(sub) == NULL)
		{
			/* behind: rewind for it now, or when its retry is due */
			if (worker_sub_ready(sub, now, &wait_ms))
			{
				worker_rewind = true;
				wait_ms = 0;
			}
		}
	}
	if (nevents >= limit)
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
	decoder_capture = NULL;
	/* its handler processes go with it (they also see it gone) */
	for (int i = 0; handlers != NULL && i < worker_handler_workers; i++)
	{
		pid_t pid = worker_handler_slot(worker_me, i)->pid;

		if (pid != 0)
			(void) kill(pid, SIGTERM);
	}
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
	pending_cxt = AllocSetContextCreate(
		TopMemoryContext, "strata worker pending", ALLOCSET_DEFAULT_SIZES);
	worker_xact_cxt = round_cxt;
	handlers = MemoryContextAllocZero(
		TopMemoryContext, sizeof(HandlerProc) * worker_handler_workers);

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
	 * confirmed only past flushed commits (worker_confirm).
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * The worker's own queries name their schemas; with this path no object
	 * another role planted can be found by an unqualified name either.
	 * Handlers get the same path (usercall.c).
	 */
	SetConfigOption("search_path", STRATA_SAFE_SEARCH_PATH, PGC_SUSET,
					PGC_S_OVERRIDE);

	snprintf(slot_name, sizeof(slot_name), "strata_%u", MyDatabaseId);

	/* nothing to do (and no slot to create) without the extension */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!worker_extension_present())
	{
		worker_commit();
		worker_exit_absent(false);
	}
	worker_commit();
	CacheRegisterRelcacheCallback(worker_relcache_callback, (Datum) 0);
	/* relations come through the relcache callback; these are the rest */
	CacheRegisterSyscacheCallback(TYPEOID, worker_syscache_callback,
								  (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, worker_syscache_callback,
								  (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, worker_syscache_callback,
								  (Datum) 0);

	for (;;)
	{
		long		wait_ms;
		TimestampTz now;
		long		pause_ms = 0;
		bool		reload;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* pace the rounds (see WORKER_MIN_ROUND_MS, WORKER_IDLE_ROUND_MS) */
		now = GetCurrentTimestamp();
		if (last_round != 0)
		{
			long since;
			int	 usecs;

			TimestampDifference(last_round, now, &since, &usecs);
			since = since * 1000 + usecs / 1000;
			if (nsubs == 0 && !worker_me->changed &&
				since < WORKER_IDLE_ROUND_MS)
				pause_ms = WORKER_IDLE_ROUND_MS - since;
			else if (since < WORKER_MIN_ROUND_MS)
				pause_ms = WORKER_MIN_ROUND_MS - since;
		}
		if (pause_ms > 0 && nsubs == 0 && !worker_me->changed)
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

		/* clear before reading: a change after this sets it again */
		reload = worker_me->changed;
		if (reload)
		{
			worker_me->changed = false;
			pg_memory_barrier();
		}
		last_round = GetCurrentTimestamp();
		wait_ms = worker_round_recorded(reload);
		if (wait_ms > 0)
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
