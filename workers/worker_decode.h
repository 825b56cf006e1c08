/*-------------------------------------------------------------------------
 *
 * worker_decode.h
 *	  The strata worker's decoding stream (worker_decode.c): its slot and
 *	  stream identity, the transactions a round decoded, and the
 *	  confirmations.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_DECODE_H
#define STRATA_WORKER_DECODE_H

#include "postgres.h"

#include "access/xlogdefs.h"

#include "worker_txns.h"

/* Most events buffered by one round, in units of strata.worker_batch_size */
#define WORKER_ROUND_BATCHES 10

/* What the current round decoded: its transactions, in commit order */
typedef struct DecodedRound
{
	DecodedTxn **txns; /* each held by the round (worker_txns.h) */
	int			 ntxns;
	int			 txns_cap;
	int64		 nevents;
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
extern void		  decode_new_round(void);
extern void		  decode_round(void);
extern void		  decode_new_stream(void);
extern void		  decode_confirm(void);
extern void		  decode_drop_slot(void);

#endif /* STRATA_WORKER_DECODE_H */
