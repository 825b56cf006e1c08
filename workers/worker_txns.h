/*-------------------------------------------------------------------------
 *
 * worker_txns.h
 *	  The transactions the strata worker decoded (worker_txns.c): which
 *	  positions each one wrote, as runs of consecutive positions, kept in
 *	  memory within strata.worker_memory and in a temporary file beyond
 *	  it, for as long as the round that decoded them or a subscription
 *	  waiting for them holds them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_WORKER_TXNS_H
#define STRATA_WORKER_TXNS_H

#include "postgres.h"

#include "access/xlogdefs.h"

/* 'count' consecutive positions from 'first', all written by one txn */
typedef struct DecodedRun
{
	int64 first;
	int64 count;
} DecodedRun;

/*
 * A decoded transaction that wrote events: its commit, and its runs in
 * the order it wrote them (the order handlers see its events in).
 */
typedef struct DecodedTxn
{
	TransactionId xid;
	XLogRecPtr	  end_lsn; /* of its commit record */
	int64		  nevents;
	int64		  nruns;
	int			  refs;		/* subscriptions waiting for it */
	bool		  in_round; /* and the round that decoded it */

	/* its runs, in memory ('runs') or in its own temporary file */
	DecodedRun	   *runs;
	int64			runs_cap;
	struct BufFile *file;
} DecodedTxn;

/* A place in a transaction's events: the next one, and its run */
typedef struct TxnCursor
{
	int64 event;  /* index in the transaction of the next event */
	int64 run;	  /* the run it is in */
	int64 in_run; /* and its index in that run */
} TxnCursor;

extern void		   txns_init(void);
extern bool		   txns_over_budget(void);
extern void		   txns_add_event(int64 position);
extern DecodedTxn *txns_commit(TransactionId xid, XLogRecPtr end_lsn);
extern void		   txns_forget_open(void);
extern void		   txns_hold(DecodedTxn *txn);
extern void		   txns_release(DecodedTxn *txn);
extern void		   txns_round_release(DecodedTxn *txn);
extern void		   txns_seek(DecodedTxn *txn, TxnCursor *cur, int64 event);
extern int		   txns_take(DecodedTxn *txn, TxnCursor *cur, int64 max_events,
							 DecodedRun *out);

#endif /* STRATA_WORKER_TXNS_H */
