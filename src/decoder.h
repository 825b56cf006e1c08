/*-------------------------------------------------------------------------
 *
 * decoder.h
 *	  The logical decoding output plugin "strata": the committed inserts
 *	  into strata.events as a commit-ordered JSON feed.
 *
 * PostgreSQL finds the plugin through _PG_output_plugin_init, which every
 * output plugin exports.  A process may also decode in itself with the
 * same plugin and receive the events as calls instead of text, as the
 * strata worker does (workers/worker_decode.c): it creates its decoding
 * context with decoder_capture_prepare_write and decoder_capture_write
 * as the writer, and points ctx->output_writer_private at a
 * DecoderCapture (pg_squeeze's way of decoding in process).  The writer
 * functions are what tells the plugin it is captured: a client of the
 * SQL functions or of a walsender cannot pass them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_DECODER_H
#define STRATA_DECODER_H

#include "postgres.h"

#include "access/htup.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"

/*
 * Receiver of decoded events inside this process.  event() is called for
 * each insert into strata.events of a committed transaction, in commit
 * order, with the tuple as logged (valid only during the call); commit()
 * after the last change of a transaction that had events.
 */
typedef struct DecoderCapture
{
	void (*event)(void *arg, ReorderBufferTXN *txn, HeapTuple tuple,
				  TupleDesc desc, int64 position, Datum category, Datum type);
	void (*commit)(void *arg, ReorderBufferTXN *txn);
	void *arg;
} DecoderCapture;

/* The writer of a captured decoding (they write nothing) */
extern void decoder_capture_prepare_write(LogicalDecodingContext *ctx,
										  XLogRecPtr lsn, TransactionId xid,
										  bool last_write);
extern void decoder_capture_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
								  TransactionId xid, bool last_write);

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

#endif /* STRATA_DECODER_H */
