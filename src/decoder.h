/*-------------------------------------------------------------------------
 *
 * decoder.h
 *	  The logical decoding output plugin "strata": the committed inserts
 *	  into strata.events as a commit-ordered JSON feed.
 *
 * PostgreSQL finds the plugin through _PG_output_plugin_init, which every
 * output plugin exports.  The strata worker (workers/worker.c) decodes in
 * its own process with the same plugin and sets decoder_capture: the
 * events then go to its callbacks instead of being written as text.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_DECODER_H
#define STRATA_DECODER_H

#include "postgres.h"

#include "access/htup.h"
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

/* Set by the worker while it decodes; NULL in every other process */
extern DecoderCapture *decoder_capture;

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

#endif /* STRATA_DECODER_H */
