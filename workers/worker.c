/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The "strata worker": runs one database's subscriptions from the WAL.
 *
 * The worker decodes the WAL itself, in its own process, through the
 * database's logical slot (strata_<database oid>) and the strata output
 * plugin, the way a walsender does, but with no connection in between:
 * the plugin hands each committed event to this file (decoder_capture).
 * One decoding stream serves every subscription of the database.
 *
 * A round of the worker:
 *	1. restarts decoding from the slot if a subscription is behind the
 *	   stream (resumed, due for a retry), creating the slot if needed;
 *	2. decodes the WAL flushed since the last round (never waiting for
 *	   more; at most a round's worth of events, whole transactions);
 *	3. in one transaction: checks the extension, reads the subscriptions
 *	   again when SQL changed them, samples the registry's horizon with
 *	   the WAL insert position, and waits until the decoded transactions
 *	   are visible to new snapshots;
 *	4. for each live subscription, calls its handler on its events in
 *	   commit order, in transactions that also move its checkpoint;
 *	5. moves catching-up subscriptions forward through strata.events,
 *	   and hands them over to the stream when they reach its end;
 *	6. confirms to the slot (at most once a second) what every live
 *	   subscription has durably done.
 * Then it sleeps on its latch, which every commit that appended sets;
 * rounds start at least WORKER_MIN_ROUND_MS apart.
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
#include "worker.h"

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

/* Watermark samples kept (older ones are dropped, which is safe) */
#define WORKER_MAX_SAMPLES 256

/* An event of the stream or of the table, as handed to a handler */
typedef struct WorkerEvent
{
	int64	  position;
	char	 *category;
	char	 *type;
	HeapTuple tuple;
	int		  txn;	 /* index in the round's transactions, -1: table */
	int		  index; /* index within its transaction */
} WorkerEvent;

/* A decoded transaction with events */
typedef struct WorkerTxn
{
	TransactionId xid;
	XLogRecPtr	  end_lsn;
	int			  first; /* its first event in the round's events */
	int			  nevents;
} WorkerTxn;

/* "every position below 'watermark' settles at or before 'lsn'" */
typedef struct WorkerSample
{
	int64	   watermark;
	XLogRecPtr lsn;
} WorkerSample;

/* A subscription, as the worker keeps it between rounds */
typedef struct WorkerSub
{
	char	   *name;
	int64		generation;
	Oid			handler;
	Oid			owner;
	int			ncategories;
	char	  **categories;
	int			ntypes;
	char	  **types;
	bool		on_error_stop;
	char		state; /* 'a'ctive, 'p'aused, 's'topped */
	bool		live;
	SubProgress progress;
	int			attempts;
	TimestampTz last_error_at;
	TimestampTz first_failed_at; /* first failed attempt at the event */
	XLogRecPtr	stream_lsn; /* the stream has been dispatched up to here */
	bool		stale;		/* SQL changed it under us: reload */
	char	   *what;		/* "handler of subscription \"name\"" */
} WorkerSub;

/* The worker's state */
static int			 worker_index;
static WorkerSlot	*worker_me;
static MemoryContext worker_cxt;	  /* the events' tuple descriptor */
static MemoryContext subs_cxt = NULL; /* the subscriptions, renewed per load */
static MemoryContext round_cxt;		  /* the round's events */
static MemoryContext event_cxt;		  /* one handler call */
static LogicalDecodingContext *worker_ctx = NULL;
static XLogRecPtr			   stream_lsn = InvalidXLogRecPtr;
static char					   slot_name[NAMEDATALEN];

static WorkerSub **subs = NULL;
static int		   nsubs = 0;

static WorkerSample samples[WORKER_MAX_SAMPLES];
static int			nsamples = 0;

static WorkerEvent *events = NULL;
static int			nevents = 0;
static int			events_cap = 0;
static WorkerTxn   *txns = NULL;
static int			ntxns = 0;
static int			txns_cap = 0;
static int			txn_first = 0;

static TupleDesc   events_desc = NULL;
static Oid		   worker_extoid = InvalidOid;
static bool		   worker_rewind = false;	/* restart decoding next round */
static char		  *worker_stream_id = NULL; /* identity of the slot's stream */
static TimestampTz worker_loaded_at = 0;	/* when subscriptions were read */

static void worker_reset_caches(XLogRecPtr from);

/*
 * Start a transaction with an active snapshot (worker_begin); commit
 * (abort) it and make round_cxt current, since what the worker allocates
 * between transactions lives for the round.
 */
static void
worker_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
worker_commit(void)
{
	CommitTransactionCommand();
	MemoryContextSwitchTo(round_cxt);
}

static void
worker_abort(void)
{
	AbortCurrentTransaction();
	MemoryContextSwitchTo(round_cxt);
}

/* ---------- decoding ---------- */

static void
worker_capture_event(void *arg, ReorderBufferTXN *txn, HeapTuple tuple,
					 TupleDesc desc, int64 position, Datum category,
					 Datum type)
{
	MemoryContext old = MemoryContextSwitchTo(round_cxt);
	WorkerEvent	 *ev;

	if (nevents == events_cap)
	{
		events_cap = events_cap == 0 ? 1024 : events_cap * 2;
		events = events == NULL
					 ? palloc(sizeof(WorkerEvent) * events_cap)
					 : repalloc(events, sizeof(WorkerEvent) * events_cap);
	}
	ev = &events[nevents++];
	ev->position = position;
	ev->category = TextDatumGetCString(category);
	ev->type = TextDatumGetCString(type);
	/* values kept in TOAST come as pointers into the reorder buffer */
	ev->tuple = HeapTupleHasExternal(tuple) ? toast_flatten_tuple(tuple, desc)
											: heap_copytuple(tuple);
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

	for (int i = 0; i < nsubs; i++)
		if (subs[i]->live)
			subs[i]->stream_lsn =
				Max(subs[i]->progress.checkpoint_lsn, stream_lsn);
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
	if (worker_self_appended)
	{
		worker_self_appended = false;
		XLogFlush(XactLastCommitEnd);
	}
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

/*
 * Read the subscriptions table into a new subs_cxt.  A subscription whose
 * generation did not change keeps what the worker knows beyond the table
 * (how far the stream was dispatched to it).  Must run in a transaction,
 * connected to SPI.
 */
static void
worker_load_subs(void)
{
	MemoryContext old;
	MemoryContext new_cxt;
	WorkerSub	**list;
	int			  n;

	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"SELECT name, generation, handler::pg_catalog.oid, "
				"owner::pg_catalog.oid, "
				"categories, types, on_error, state, phase, "
				"checkpoint_lsn, checkpoint_index, watermark, "
				"delivered::pg_catalog.text, attempts, last_error_at, "
				"stream_id "
				"FROM strata.subscriptions ORDER BY created_at, name",
				0, NULL),
			NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.subscriptions");

	new_cxt = AllocSetContextCreate(TopMemoryContext, "strata subscriptions",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(new_cxt);
	n = (int) SPI_processed;
	list = palloc0(sizeof(WorkerSub *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool	  isnull;
		char *name = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		int64 generation = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		WorkerSub *prev = worker_find_sub(name);
		WorkerSub *sub = palloc0(sizeof(WorkerSub));
		Datum	   d;
		char	  *str;

		sub->name = name;
		sub->what = psprintf("handler of subscription \"%s\"", name);
		sub->generation = generation;
		sub->handler = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		sub->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		if (isnull)
			sub->owner = InvalidOid; /* its role was dropped */
		d = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull)
			sub->ncategories = define_strings(d, &sub->categories);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		if (!isnull)
			sub->ntypes = define_strings(d, &sub->types);
		str = TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull));
		sub->on_error_stop = strcmp(str, "stop") == 0;
		str = TextDatumGetCString(SPI_getbinval(tup, desc, 8, &isnull));
		sub->state = str[0];
		str = TextDatumGetCString(SPI_getbinval(tup, desc, 9, &isnull));
		/* a checkpoint is only valid for the stream it was taken from */
		d = SPI_getbinval(tup, desc, 16, &isnull);
		sub->live = strcmp(str, "live") == 0 && !isnull &&
					worker_stream_id != NULL &&
					strcmp(TextDatumGetCString(d), worker_stream_id) == 0;
		d = SPI_getbinval(tup, desc, 10, &isnull);
		sub->progress.checkpoint_lsn =
			isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		sub->progress.checkpoint_index =
			DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull));
		sub->progress.watermark =
			DatumGetInt64(SPI_getbinval(tup, desc, 12, &isnull));
		subscription_parse_delivered(
			TextDatumGetCString(SPI_getbinval(tup, desc, 13, &isnull)),
			&sub->progress);
		sub->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 14, &isnull));
		d = SPI_getbinval(tup, desc, 15, &isnull);
		sub->last_error_at = isnull ? 0 : DatumGetTimestampTz(d);

		if (prev != NULL && prev->attempts > 0 && sub->attempts > 0)
			sub->first_failed_at = prev->first_failed_at;
		if (prev != NULL && prev->generation == generation && !prev->stale &&
			prev->live == sub->live)
			sub->stream_lsn =
				Max(prev->stream_lsn, sub->progress.checkpoint_lsn);
		else
			sub->stream_lsn =
				Max(sub->progress.checkpoint_lsn,
					worker_ctx ? MyReplicationSlot->data.confirmed_flush
							   : InvalidXLogRecPtr);
		list[i] = sub;
	}
	MemoryContextSwitchTo(old);

	if (subs_cxt != NULL)
		MemoryContextDelete(subs_cxt);
	subs_cxt = new_cxt;
	subs = list;
	nsubs = n;
	worker_loaded_at = GetCurrentTimestamp();
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
	if (ev->txn >= 0)
	{
		WorkerTxn *t = &txns[ev->txn];

		if (ev->index == t->nevents - 1)
		{
			p->checkpoint_lsn = t->end_lsn;
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
	args[8] = CStringGetTextDatum(worker_stream_id ? worker_stream_id : "");

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

	if (get_timeout_indicator(LOCK_TIMEOUT, false) ||
		get_timeout_indicator(STATEMENT_TIMEOUT, false))
	{
		InterruptPending = true;
		QueryCancelPending = true;
		SetLatch(MyLatch);
	}
	else
		worker_cancel_handler(worker_me->cancel_running);
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
	worker_me->killed = true;
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
	return worker_in_handler && worker_me != NULL &&
		   strcmp(worker_me->running, subscription) == 0;
}

/* Publish the subscription whose handler is about to run ("" after). */
static void
worker_set_running(const char *name)
{
	SpinLockAcquire(&worker_me->mutex);
	strlcpy(worker_me->running, name, sizeof(worker_me->running));
	if (name[0] == '\0')
		worker_call_cancelled = worker_me->cancel_running;
	worker_me->cancel_running = false;
	SpinLockRelease(&worker_me->mutex);
}

/*
 * Call the handler of 'sub' on one event, as its owner (usercall.c), under
 * strata.handler_timeout, cancellable by a pause or an unsubscribe.
 */
static void
worker_call_handler(WorkerSub *sub, UserFunc *uf, Datum event, int64 position)
{
	worker_set_running(sub->name);
	strlcpy(worker_me->killed_sub, sub->name, sizeof(worker_me->killed_sub));
	worker_me->killed_generation = sub->generation;
	worker_me->killed_position = position;
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
		killed_sub = NULL; /* paused, dropped or changed since */
		return;
	}
	if (killed_position != position)
		return;
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

/* Take over what the previous worker of the slot left (worker_tick). */
static void
worker_take_killed(void)
{
	if (!worker_me->killed)
		return;
	killed_sub = MemoryContextStrdup(worker_cxt, worker_me->killed_sub);
	killed_position = worker_me->killed_position;
	killed_generation = worker_me->killed_generation;
	worker_me->killed = false;
	ereport(LOG, (errmsg("strata subscription \"%s\": the previous worker was "
						 "stopped while its handler ignored a cancellation",
						 killed_sub)));
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

	subscription_progress_copy(&work, &sub->progress, round_cxt);

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
			if (!subscription_processed(&work, ev->position) &&
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
		subscription_progress_copy(&sub->progress, &work, subs_cxt);
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

	subscription_progress_copy(&work, &sub->progress, round_cxt);
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
	subscription_progress_copy(&sub->progress, &work, subs_cxt);
	if (go_live)
	{
		sub->live = true;
		sub->stream_lsn = live_lsn;
	}
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

	subscription_progress_copy(&work, &sub->progress, round_cxt);

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
	subscription_progress_copy(&sub->progress, &work, subs_cxt);
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
	MemoryContext old = MemoryContextSwitchTo(round_cxt);

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
		ev->txn = -1;
		ev->index = 0;
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
 * the positions already processed are skipped.  Returns true when more
 * remains to catch up.
 */
static bool
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
		return false;
	if (!final)
		return worker_commit_progress(sub, last + 1, false, InvalidXLogRecPtr);
	if (!go_live)
		return worker_commit_progress(sub, settled, false, InvalidXLogRecPtr);
	(void) worker_commit_progress(sub, settled, true, stream_lsn);
	return false;
}

/* ---------- the round ---------- */

/* Is the extension installed here, at 0.3.0 or later?  In a transaction. */
static bool
worker_extension_present(void)
{
	Oid nspid;

	if (!OidIsValid(get_extension_oid("strata", true)))
		return false;
	nspid = get_namespace_oid(STRATA_SCHEMA, true);
	return OidIsValid(nspid) &&
		   OidIsValid(get_relname_relid("subscriptions", nspid));
}

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
 * there, read the subscriptions again if SQL changed them, take a
 * watermark sample, and wait until the decoded transactions are visible
 * to the snapshots the handlers will take.  Returns false when the
 * extension is gone.
 */
static bool
worker_prepare_round(bool reload)
{
	Oid	 extoid;
	bool present;
	bool new_extension = false;

	worker_begin();
	extoid = get_extension_oid("strata", true);
	present = worker_extension_present();

	/*
	 * A new extension (DROP and CREATE EXTENSION) starts positions again
	 * from 1: what the samples say is about the old log.
	 */
	if (extoid != worker_extoid)
	{
		new_extension = OidIsValid(worker_extoid);
		nsamples = 0;
		worker_extoid = extoid;
		reload = true;
	}
	if (!present)
	{
		PopActiveSnapshot();
		worker_commit();
		return false;
	}

	for (int i = 0; i < nsubs; i++)
		if (subs[i]->stale)
			reload = true;
	/* rows can also come without a notification (a restore's COPY) */
	if (TimestampDifferenceExceeds(worker_loaded_at, GetCurrentTimestamp(),
								   WORKER_NAPTIME_MS))
		reload = true;

	SPI_connect();
	if (reload || subs == NULL)
	{
		MemoryContext old;

		worker_load_subs();
		/* SPI calls leave the SPI procedure context current: switch now */
		old = MemoryContextSwitchTo(worker_cxt);
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
	SPI_finish();

	worker_wait_visible();
	PopActiveSnapshot();
	worker_commit();

	/* a new extension has a new (empty) strata._stream: label the stream */
	if (new_extension)
		worker_new_stream();
	return true;
}

/*
 * Confirm to the slot what every live subscription has processed, at most
 * every WORKER_CONFIRM_MS.  The worker commits asynchronously, so its
 * commits are flushed first: a slot saved past a transaction whose
 * commit a crash then lost would skip that transaction's events.
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
			confirm = Min(confirm, subs[i]->stream_lsn);
	if (confirm > MyReplicationSlot->data.confirmed_flush)
	{
		XLogFlush(XactLastCommitEnd);
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

	if (worker_rewind || worker_ctx == NULL)
		worker_start_stream();
	worker_rewind = false;
	round_start = stream_lsn;

	worker_decode();
	if (!worker_prepare_round(reload))
		worker_exit_absent(true);

	now = GetCurrentTimestamp();
	for (int i = 0; i < nsubs; i++)
	{
		WorkerSub *sub = subs[i];
		int		   k = 0;

		/* one behind the stream waits for the rewind of the next round */
		if (sub->stale || !sub->live || sub->stream_lsn < round_start ||
			!worker_sub_ready(sub, now, &wait_ms))
			continue;
		while (k < nevents && txns[events[k].txn].end_lsn <= sub->stream_lsn)
			k++;
		if (worker_run_list(sub, events + k, nevents - k))
			sub->stream_lsn = stream_lsn;
		else if (sub->state == 'a' && !sub->stale)
			(void) worker_sub_ready(sub, GetCurrentTimestamp(), &wait_ms);
	}

	for (int i = 0; i < nsubs; i++)
	{
		WorkerSub *sub = subs[i];

		if (sub->stale || sub->live || !worker_sub_ready(sub, now, &wait_ms))
			continue;
		if (worker_catchup(sub))
			wait_ms = 0;
		else if (!sub->live && sub->state == 'a' && !sub->stale)
			(void) worker_sub_ready(sub, GetCurrentTimestamp(), &wait_ms);
	}

	worker_confirm();

	now = GetCurrentTimestamp();
	for (int i = 0; i < nsubs; i++)
	{
		WorkerSub *sub = subs[i];

		if (sub->stale)
			wait_ms = 0;
		else if (sub->live && sub->stream_lsn < stream_lsn)
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
	worker_release(worker_me);
}

/*
 * A round failed and the worker is about to exit (the launcher starts it
 * again): keep the error where strata.subscription_status shows it, so
 * that a worker that fails at every start is not taken for a live one.
 */
static void
worker_record_failure(void)
{
	MemoryContext old = MemoryContextSwitchTo(worker_cxt);
	ErrorData	 *edata = CopyErrorData();

	MemoryContextSwitchTo(old);
	SpinLockAcquire(&worker_me->mutex);
	worker_me->failures++;
	strlcpy(worker_me->last_error, edata->message ? edata->message : "",
			sizeof(worker_me->last_error));
	worker_me->last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&worker_me->mutex);
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
		worker_record_failure();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (worker_me->failures > 0)
	{
		SpinLockAcquire(&worker_me->mutex);
		worker_me->failures = 0;
		SpinLockRelease(&worker_me->mutex);
	}
	return wait_ms;
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

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "strata worker",
									   ALLOCSET_DEFAULT_SIZES);
	round_cxt = AllocSetContextCreate(TopMemoryContext, "strata worker round",
									  ALLOCSET_DEFAULT_SIZES);
	event_cxt = AllocSetContextCreate(TopMemoryContext, "strata worker event",
									  ALLOCSET_DEFAULT_SIZES);

	/* not while the database is being dropped, nor twice */
	if (worker_me->dropper != 0)
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(worker_me->dbid, InvalidOid, 0);
	if (!worker_claim(worker_me))
		proc_exit(0);
	worker_take_killed();
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
	worker_tick_id = RegisterTimeout(USER_TIMEOUT, worker_tick);

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
