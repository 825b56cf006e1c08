/*-------------------------------------------------------------------------
 *
 * worker_decode.c
 *	  The strata worker's decoding: its logical slot (strata_<database
 *	  oid>) and the identity of the stream it carries, the decoding loop
 *	  of a round, the catalog cache resets that decoding needs, and the
 *	  confirmations to the slot.
 *
 * The worker decodes the WAL itself, in its own process, the way a
 * walsender does but with no connection in between: the strata output
 * plugin hands each committed event to decode_capture (through
 * ctx->output_writer_private, see decoder.h), which keeps of it only its
 * position, in its transaction's runs (worker_txns.c); the round's
 * transactions are in 'decoded'.  One decoding stream serves every
 * subscription of the database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogutils.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "version.h"
#include "compat.h"
#include "decoder.h"
#include "settings.h"
#include "subscription_catalog.h"
#include "worker.h"
#include "worker_decode.h"
#include "worker_dispatch.h"
#include "worker_subs.h"

/* Shortest time between two confirmations to the slot */
#define WORKER_CONFIRM_MS 1000

DecodedRound decoded;
XLogRecPtr	 decode_lsn = InvalidXLogRecPtr;
char		*decode_stream_id = NULL;

/* The timeline the stream's slot was last taken on (0: unknown) */
static TimeLineID decode_stream_timeline = 0;

static LogicalDecodingContext *worker_ctx = NULL;
static char					   slot_name[NAMEDATALEN];

/* A confirmation waiting for the standbys (decode_confirm), and its WAL */
static XLogRecPtr confirm_pending = InvalidXLogRecPtr;
static XLogRecPtr confirm_pending_flush = InvalidXLogRecPtr;

static void worker_reset_caches(XLogRecPtr from);
static bool worker_read_stream_id(void);
static void worker_save_timeline(void);
static bool worker_slot_belongs(ReplicationSlot *slot);
static void worker_relcache_callback(Datum arg, Oid relid);
static void worker_syscache_callback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * Name the slot and watch the catalog (see worker_catalog_lsn).  Once, in
 * the worker, connected to its database.
 */
void
decode_init(void)
{
	snprintf(slot_name, sizeof(slot_name), "strata_%u", MyDatabaseId);
	txns_init();
	CacheRegisterRelcacheCallback(worker_relcache_callback, (Datum) 0);
	/* relations come through the relcache callback; these are the rest */
	CacheRegisterSyscacheCallback(TYPEOID, worker_syscache_callback,
								  (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, worker_syscache_callback,
								  (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, worker_syscache_callback,
								  (Datum) 0);
}

/* Is the stream open (a decoding context on the slot)? */
bool
decode_started(void)
{
	return worker_ctx != NULL;
}

/* What the slot confirmed, or invalid before the stream opened */
XLogRecPtr
decode_confirmed_lsn(void)
{
	return worker_ctx != NULL ? MyReplicationSlot->data.confirmed_flush
							  : InvalidXLogRecPtr;
}

/*
 * A new round: nothing decoded yet.  The last round's transactions are
 * let go (the subscriptions waiting for them hold them).
 */
void
decode_new_round(void)
{
	for (int i = 0; i < decoded.ntxns; i++)
		txns_round_release(decoded.txns[i]);
	decoded.ntxns = 0;
	decoded.nevents = 0;
	txns_forget_open();
}

/* ---------- the plugin's receiver ---------- */

/* An event: only its position is kept (the row is in strata.events) */
static void
decode_capture_event(void *arg, ReorderBufferTXN *txn, HeapTuple tuple,
					 TupleDesc desc, int64 position, Datum category,
					 Datum type)
{
	txns_add_event(position);
}

/* A commit: the transaction joins the round's, which holds it */
static void
decode_capture_commit(void *arg, ReorderBufferTXN *txn)
{
	DecodedTxn *t = txns_commit(txn->xid, txn->end_lsn);

	if (t == NULL)
		return;
	if (decoded.ntxns == decoded.txns_cap)
	{
		decoded.txns_cap = decoded.txns_cap == 0 ? 64 : decoded.txns_cap * 2;
		decoded.txns =
			decoded.txns == NULL
				? MemoryContextAlloc(TopMemoryContext,
									 sizeof(DecodedTxn *) * decoded.txns_cap)
				: repalloc(decoded.txns,
						   sizeof(DecodedTxn *) * decoded.txns_cap);
	}
	decoded.txns[decoded.ntxns++] = t;
	decoded.nevents += t->nevents;
}

/* Receives what slot creation might decode: nothing is kept */
static void
decode_ignore_event(void *arg, ReorderBufferTXN *txn, HeapTuple tuple,
					TupleDesc desc, int64 position, Datum category, Datum type)
{
}

static void
decode_ignore_commit(void *arg, ReorderBufferTXN *txn)
{
}

static DecoderCapture decode_ignore = {decode_ignore_event,
									   decode_ignore_commit, NULL};

static DecoderCapture decode_capture = {decode_capture_event,
										decode_capture_commit, NULL};

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

/* ---------- the slot and the stream ---------- */

static bool
worker_slot_invalidated(ReplicationSlot *slot)
{
	return compat_slot_invalidated(slot);
}

/* Create the database's slot (in a transaction of its own). */
static void
worker_create_slot(void)
{
	LogicalDecodingContext *ctx;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* on 17 and later, a slot standbys may keep for a failover */
	compat_slot_create(slot_name, RS_EPHEMERAL, true);
	ctx = CreateInitDecodingContext(
		"strata", NIL, false, InvalidXLogRecPtr,
		XL_ROUTINE(.page_read = read_local_xlog_page,
				   .segment_open = wal_segment_open,
				   .segment_close = wal_segment_close),
		decoder_capture_prepare_write, decoder_capture_write, NULL);
	/* nothing is decoded before the start point; were it, it is dropped */
	ctx->output_writer_private = &decode_ignore;
	DecodingContextFindStartpoint(ctx);
	FreeDecodingContext(ctx);
	ReplicationSlotPersist();
	ReplicationSlotRelease();
	worker_commit();
	ereport(LOG, (errmsg("strata worker created replication slot \"%s\"",
						 slot_name)));
}

/*
 * Write the current timeline beside the stream (0.6.0's strata._stream;
 * nothing under an older SQL version).  In a transaction, connected to
 * SPI.
 */
static void
worker_save_timeline(void)
{
	TimeLineID tli = GetWALInsertionTimeLine();

	if (strata_installed_api() >= STRATA_API_0_6 &&
		SPI_execute_with_args("UPDATE strata._stream SET timeline = $1", 1,
							  (Oid[]){INT4OID},
							  (Datum[]){Int32GetDatum((int32) tli)}, NULL,
							  false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the stream's timeline");
	decode_stream_timeline = tli;
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
void
decode_new_stream(void)
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
							  0) != SPI_OK_INSERT)
		elog(ERROR, "could not start a new stream");
	/* 0.6.0: the timeline the stream's slot is made on */
	worker_save_timeline();
	subcat_restart_live();
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	XLogFlush(XactLastCommitEnd);

	if (decode_stream_id != NULL)
		pfree(decode_stream_id);
	decode_stream_id = MemoryContextStrdup(TopMemoryContext, id);
	for (int i = 0; i < worker_nsubs; i++)
		worker_subs[i]->stale = true;
}

/*
 * Read the identity of the current stream, and the timeline its slot was
 * last taken on (0.6.0; 0 when unknown); false if there is none.
 */
static bool
worker_read_stream_id(void)
{
	bool found = false;
	bool has_timeline;

	worker_begin();
	SPI_connect();
	has_timeline = strata_installed_api() >= STRATA_API_0_6;
	if (SPI_execute(has_timeline
						? "SELECT id, timeline FROM strata._stream"
						: "SELECT id, NULL::integer FROM strata._stream",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata._stream");
	if (decode_stream_id != NULL)
		pfree(decode_stream_id);
	decode_stream_id = NULL;
	decode_stream_timeline = 0;
	if (SPI_processed == 1)
	{
		bool  isnull;
		Datum tli = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								  2, &isnull);

		decode_stream_id = MemoryContextStrdup(
			TopMemoryContext,
			SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		if (!isnull)
			decode_stream_timeline = (TimeLineID) DatumGetInt32(tli);
		found = true;
	}
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
	return found;
}

/* Record that the stream's slot is taken on the current timeline */
static void
worker_record_timeline(void)
{
	worker_begin();
	SPI_connect();
	worker_save_timeline();
	SPI_finish();
	PopActiveSnapshot();
	worker_commit();
}

/*
 * Is the existing slot the one of the current stream, on this node?  The
 * stream's identity begins with the system identifier it was made on, and
 * strata._stream records the timeline its slot was last taken on.  A slot
 * of another system (pg_upgrade carries slots over from 17 on), or one
 * found on another timeline that is not a synchronized copy of the
 * primary's (17 and later) came with a copied data directory or an old
 * primary that rejoined: its position belongs to other WAL, and decoding
 * from it could skip events.  A stream of before 0.6.0, whose timeline
 * is unknown, keeps its slot.  The slot is taken: the timeline recorded.
 */
static bool
worker_slot_belongs(ReplicationSlot *slot)
{
	uint64		sysid = strtou64(decode_stream_id, NULL, 10);
	TimeLineID	tli = GetWALInsertionTimeLine();
	const char *why = NULL;

	if (sysid != GetSystemIdentifier())
		why = "its stream was made on another system";
	else if (decode_stream_timeline != 0 && decode_stream_timeline != tli &&
			 !compat_slot_synced(slot))
		why = "it was taken on another timeline and is no synchronized copy";
	if (why != NULL)
	{
		ereport(
			LOG,
			(errmsg("strata worker replaces replication slot \"%s\": %s",
					slot_name, why),
			 errdetail("Stream %s, timeline %u; this is system " UINT64_FORMAT
					   " on timeline %u.  Subscriptions catch up from "
					   "strata.events.",
					   decode_stream_id, decode_stream_timeline,
					   GetSystemIdentifier(), tli)));
		return false;
	}
	if (decode_stream_timeline != tli)
		worker_record_timeline();
	return true;
}

/*
 * (Re)start decoding from the slot: create the slot if missing, replace
 * it if it was invalidated, and set the stream back to its confirmed
 * position.  Subscriptions skip what they already processed.
 */
void
decode_start(void)
{
	ReplicationSlot *slot;
	MemoryContext	 old;

	if (worker_ctx != NULL)
	{
		FreeDecodingContext(worker_ctx);
		worker_ctx = NULL;
	}
	confirm_pending = InvalidXLogRecPtr;

	if (MyReplicationSlot == NULL)
	{
		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		slot = SearchNamedReplicationSlot(slot_name, false);
		LWLockRelease(ReplicationSlotControlLock);
		if (slot == NULL)
		{
			/* first start, a promoted standby, a slot dropped by hand */
			decode_new_stream();
			worker_create_slot();
		}
		else if (worker_read_stream_id() && !worker_slot_belongs(slot))
		{
			/* inherited from another node, or another system's */
			ReplicationSlotDrop(slot_name, true);
			decode_new_stream();
			worker_create_slot();
		}
		else
		{
			if (decode_stream_id == NULL)
				decode_new_stream();
			/* a slot made before failover slots existed (17) becomes one */
			if (COMPAT_HAS_FAILOVER_SLOTS && !compat_slot_failover(slot))
			{
				compat_slot_set_failover(slot_name);
				ereport(LOG,
						(errmsg("strata worker made replication slot \"%s\" "
								"a failover slot",
								slot_name)));
			}
		}
		compat_slot_acquire(slot_name, true);
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
		decode_new_stream();
		worker_create_slot();
		compat_slot_acquire(slot_name, true);
	}

	old = MemoryContextSwitchTo(TopMemoryContext);
	worker_ctx = CreateDecodingContext(
		InvalidXLogRecPtr, NIL, false,
		XL_ROUTINE(.page_read = worker_page_read,
				   .segment_open = wal_segment_open,
				   .segment_close = wal_segment_close),
		decoder_capture_prepare_write, decoder_capture_write, NULL);
	MemoryContextSwitchTo(old);
	/* the plugin hands this process its events (see decoder.h) */
	worker_ctx->output_writer_private = &decode_capture;
	XLogBeginRead(worker_ctx->reader, MyReplicationSlot->data.restart_lsn);
	decode_lsn = MyReplicationSlot->data.confirmed_flush;

	/* what was dispatched stays dispatched; the others skip what they did */
	for (int i = 0; i < worker_nsubs; i++)
		if (worker_subs[i]->live)
			worker_subs[i]->stream_lsn =
				Max(worker_subs[i]->stream_lsn, decode_lsn);
}

/* ---------- decoding ---------- */

/*
 * Decode the WAL flushed since the last round, stopping after a
 * transaction once a round's worth of events is buffered.  Runs outside
 * any transaction, like a walsender; the catalog caches are flushed on
 * the way in and out, as in pg_logical_slot_get_changes, because this
 * process also runs ordinary transactions between rounds.
 */
void
decode_round(void)
{
	XLogRecPtr end;
	XLogRecPtr from;
	int		   limit = worker_batch_size * WORKER_ROUND_BATCHES;

	MemoryContext old;

	/*
	 * Events appended by handlers were committed asynchronously (see
	 * strata_worker_main): flush them, so that they are decoded now rather
	 * than after the WAL writer's next flush and some other wake-up.
	 */
	end = GetFlushRecPtr(NULL);
	if (worker_ctx->reader->EndRecPtr >= end && decode_lsn >= end)
		return;

	pgstat_report_activity(STATE_RUNNING, "decoding");
	from = worker_ctx->reader->EndRecPtr;
	if (XLogRecPtrIsInvalid(from))
		from = MyReplicationSlot->data.restart_lsn;
	worker_reset_caches(from);
	/* the WAL reader allocates as it goes: not in the round's context */
	old = MemoryContextSwitchTo(worker_ctx->context);
	while (worker_ctx->reader->EndRecPtr < end && decoded.nevents < limit)
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
	if (worker_ctx->reader->EndRecPtr > decode_lsn)
		decode_lsn = worker_ctx->reader->EndRecPtr;
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

/*
 * The end of the WAL inserted so far, as XLogFlush takes it.  When the
 * insert position is at the start of a page, GetXLogInsertRecPtr points
 * past that page's header, which is not written until a record goes on
 * the page: flushing to it fails ("xlog flush request ... is not
 * satisfied").  The end of what was inserted is then the page boundary
 * (PostgreSQL 17 has GetXLogInsertEndRecPtr for this).
 */
static XLogRecPtr
wal_insert_end(void)
{
	XLogRecPtr ptr = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(ptr, wal_segment_size) == SizeOfXLogLongPHD)
		ptr -= SizeOfXLogLongPHD;
	else if (ptr % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		ptr -= SizeOfXLogShortPHD;
	return ptr;
}

/*
 * Have the standbys of synchronized_standby_slots flushed the WAL up to
 * 'lsn'?  One of them missing or inactive is logged once a minute.
 */
static bool
decode_standbys_have(XLogRecPtr lsn, TimestampTz now)
{
	static TimestampTz logged = 0;
	bool			   caught_up;
	int				   elevel = DEBUG1;

	/* a missing or inactive standby slot: logged once a minute */
	if (TimestampDifferenceExceeds(logged, now, 60 * 1000))
		elevel = LOG;
	caught_up = compat_standbys_have(lsn, elevel);
	if (!caught_up && elevel == LOG)
		logged = now;
	return caught_up;
}

/*
 * Confirm to the slot what every live subscription has processed, at most
 * every WORKER_CONFIRM_MS; a catch-up out to a handler process may hand
 * its subscription over at the stream end it was given, so that holds the
 * slot too.  The handler processes commit asynchronously, so the WAL
 * is flushed first: a slot saved past a transaction whose commit a crash
 * then lost would skip that transaction's events.
 *
 * A failover slot (17 and later) confirms a position only once the
 * standbys of synchronized_standby_slots have flushed that same WAL, the
 * progress of what it confirms included: their synchronized copy of the
 * slot is then never ahead of their copy of the progress.  The position
 * waits (pending) while they are behind, and the next ones wait for it,
 * so that a busy primary whose WAL end always runs ahead still confirms.
 */
void
decode_confirm(void)
{
	static TimestampTz last_confirm = 0;
	XLogRecPtr		   confirm = decode_lsn;
	TimestampTz		   now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(last_confirm, now, WORKER_CONFIRM_MS))
		return;
	last_confirm = now;
	if (confirm_pending != InvalidXLogRecPtr)
	{
		if (!decode_standbys_have(confirm_pending_flush, now))
			return;
		if (confirm_pending > MyReplicationSlot->data.confirmed_flush)
		{
			LogicalConfirmReceivedLocation(confirm_pending);
			ReplicationSlotMarkDirty();
		}
		confirm_pending = InvalidXLogRecPtr;
	}
	for (int i = 0; i < worker_nsubs; i++)
		if (worker_subs[i]->live)
			confirm = Min(confirm, worker_subs[i]->done_lsn);
	confirm = dispatch_catchup_floor(confirm);
	if (confirm > MyReplicationSlot->data.confirmed_flush)
	{
		XLogRecPtr flush = wal_insert_end();

		XLogFlush(flush);
		if (compat_slot_failover(MyReplicationSlot) &&
			!decode_standbys_have(flush, now))
		{
			confirm_pending = confirm;
			confirm_pending_flush = flush;
			return;
		}
		LogicalConfirmReceivedLocation(confirm);
		ReplicationSlotMarkDirty();
	}
}

/*
 * No extension here any more: close the stream and drop the slot if
 * there is one, so that it keeps no WAL.
 */
void
decode_drop_slot(void)
{
	ReplicationSlot *rs;

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
}
