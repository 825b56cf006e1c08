/*-------------------------------------------------------------------------
 *
 * worker_decode.h
 *	  The strata worker's decoding stream (worker_decode.c): its slot and
 *	  stream identity, what a round decoded, and the confirmations.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_DECODE_H
#define STRATA_WORKER_DECODE_H

#include "postgres.h"

#include "access/xlogdefs.h"

/* Most events buffered by one round, in units of strata.worker_batch_size */
#define WORKER_ROUND_BATCHES 10

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
typedef struct DecodedTxn
{
	TransactionId xid;
	XLogRecPtr	  end_lsn;
	int			  first; /* its first event in the round's events */
	int			  nevents;
} DecodedTxn;

/* What the current round decoded, in commit order (in its context) */
typedef struct DecodedRound
{
	MemoryContext cxt;
	DecodedEvent *events;
	int			  nevents;
	int			  events_cap;
	DecodedTxn	 *txns;
	int			  ntxns;
	int			  txns_cap;
	int			  txn_first; /* first event of the transaction decoding */
} DecodedRound;

extern DecodedRound decoded;

/* Where the stream stands: decoded (and flushed) up to here */
extern XLogRecPtr decode_lsn;

/* The identity of the slot's stream (strata._stream), or NULL */
extern char *decode_stream_id;

extern void		  decode_init(void);
extern bool		  decode_started(void);
extern XLogRecPtr decode_confirmed_lsn(void);
extern void		  decode_start(void);
extern void		  decode_new_round(MemoryContext cxt);
extern void		  decode_round(void);
extern void		  decode_new_stream(void);
extern void		  decode_confirm(void);
extern void		  decode_drop_slot(void);

#endif /* STRATA_WORKER_DECODE_H */
