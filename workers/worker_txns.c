/*-------------------------------------------------------------------------
 *
 * worker_txns.c
 *	  The transactions the strata worker decoded, as its subscriptions
 *	  wait for them: which positions each one wrote, nothing more.
 *
 * The worker needs from the WAL only the commit order and the positions
 * each transaction wrote: the events themselves are committed, and the
 * handler processes read their rows from strata.events by position.  A
 * transaction's positions come as runs of consecutive positions: they
 * come from one sequence, so a bulk load of millions of events that no
 * other session's appends interleave with is a single run.  A run is all
 * the worker keeps of its events: 16 bytes, however many events it holds
 * (and the transaction's own entry, DecodedTxn).
 *
 * What the transactions held take (their entries, their runs in memory,
 * the buffers of their files) is counted against strata.worker_memory
 * (kB).  A transaction whose runs would take the budget, because another
 * session's appends interleaved with its own at every event, say, writes
 * them to a temporary file of its own as they are decoded (a BufFile in
 * the pgsql_tmp of the database's default tablespace, counted by
 * temp_file_limit and pg_stat_database), and jobs read them back from
 * there, a job's worth at a time.  A transaction of at most
 * TXNS_SMALL_RUNS runs always stays in memory, so that many small
 * transactions never make files.  Those are bounded another way: while
 * what subscriptions wait for beyond the current round exceeds the
 * budget, a subscription that already has transactions waiting is given
 * no more (worker_dispatch.c, txns_over_budget); it falls behind and
 * catches up by a rewind.  The round itself is bounded by its number of
 * events (worker_decode.c).
 *
 * A transaction is held by the round that decoded it (until
 * txns_round_release) and by every subscription that waits for it
 * (txns_hold, txns_release); it is freed, and its file deleted, with the
 * last.  The memory logical decoding itself uses (the reorder buffer) is
 * bounded apart, by logical_decoding_work_mem: see docs/architecture.md,
 * "Worker memory".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/buffile.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "settings.h"
#include "worker_txns.h"

/* Runs a transaction may always keep in memory, whatever the budget */
#define TXNS_SMALL_RUNS 1024

/* Runs of one block: the write buffer of a transaction that spills */
#define TXNS_BLOCK_RUNS (BLCKSZ / sizeof(DecodedRun))

static MemoryContext txns_cxt = NULL;

/*
 * The owner of the temporary files: they outlive the transaction the
 * reorder buffer replays a transaction in, during which they are made
 */
static ResourceOwner txns_owner = NULL;

/*
 * Bytes taken by all the transactions held or open (see the header), and
 * by those a subscription holds: what outlives the round
 */
static Size txns_bytes = 0;
static Size txns_waiting_bytes = 0;

/* The transaction being decoded, and how many of its runs are buffered */
static DecodedTxn *open_txn = NULL;
static int64	   open_buffered = 0;

/* The transactions' memory; once, at the worker's start */
void
txns_init(void)
{
	txns_cxt =
		AllocSetContextCreate(TopMemoryContext, "strata worker transactions",
							  ALLOCSET_DEFAULT_SIZES);
	txns_owner = ResourceOwnerCreate(NULL, "strata worker transactions");
}

/*
 * Do the transactions that subscriptions wait for take more than
 * strata.worker_memory?  Those of the current round alone do not count:
 * they go with it, and the round's size is bounded apart.
 */
bool
txns_over_budget(void)
{
	return txns_waiting_bytes > (Size) worker_memory * 1024;
}

/* What a complete transaction takes */
static Size
txns_size(DecodedTxn *txn)
{
	return sizeof(DecodedTxn) + txn->runs_cap * sizeof(DecodedRun) +
		   (txn->file != NULL ? BLCKSZ : 0);
}

/* Write 'n' runs to the end of the file of 'txn' */
static void
txns_write(DecodedTxn *txn, DecodedRun *runs, int64 n)
{
	if (n > 0)
		BufFileWrite(txn->file, runs, sizeof(DecodedRun) * n);
}

/*
 * Room for one more run in the open transaction's buffer: grow it while
 * the transaction is small or the budget allows, else move its runs to a
 * file of its own and keep one block of them in memory as a write buffer.
 * Called only when a new run starts, so every run buffered is complete.
 */
static void
txns_make_room(DecodedTxn *txn)
{
	Size		  budget = (Size) worker_memory * 1024;
	int64		  cap;
	Size		  grow;
	MemoryContext old;
	ResourceOwner old_owner;

	if (txn->file != NULL)
	{
		/* a full block of a spilling transaction: to the file */
		txns_write(txn, txn->runs, open_buffered);
		open_buffered = 0;
		return;
	}

	cap = txn->runs_cap == 0 ? 4 : txn->runs_cap * 2;
	grow = (cap - txn->runs_cap) * sizeof(DecodedRun);
	if (txn->nruns < TXNS_SMALL_RUNS || txns_bytes + grow <= budget)
	{
		txn->runs =
			txn->runs == NULL
				? MemoryContextAllocHuge(txns_cxt, cap * sizeof(DecodedRun))
				: repalloc_huge(txn->runs, cap * sizeof(DecodedRun));
		txn->runs_cap = cap;
		txns_bytes += grow;
		return;
	}

	/* beyond strata.worker_memory: its runs go to a temporary file */
	old = MemoryContextSwitchTo(txns_cxt);
	old_owner = CurrentResourceOwner;
	CurrentResourceOwner = txns_owner;
	txn->file = BufFileCreateTemp(true);
	CurrentResourceOwner = old_owner;
	MemoryContextSwitchTo(old);
	txns_bytes += BLCKSZ; /* the BufFile's own buffer */
	txns_write(txn, txn->runs, open_buffered);
	open_buffered = 0;
	pfree(txn->runs);
	txns_bytes -= txn->runs_cap * sizeof(DecodedRun);
	txn->runs = MemoryContextAlloc(txns_cxt, BLCKSZ);
	txn->runs_cap = TXNS_BLOCK_RUNS;
	txns_bytes += BLCKSZ;
	ereport(DEBUG1,
			(errmsg_internal("strata worker: the runs of a transaction "
							 "beyond strata.worker_memory go to a "
							 "temporary file")));
}

/*
 * The output plugin decoded an event at 'position' of the transaction it
 * is decoding: extend its last run, or start a new one.
 */
void
txns_add_event(int64 position)
{
	DecodedTxn *txn = open_txn;
	DecodedRun *last;

	if (txn == NULL)
	{
		txn = open_txn = MemoryContextAllocZero(txns_cxt, sizeof(DecodedTxn));
		txns_bytes += sizeof(DecodedTxn);
		open_buffered = 0;
	}
	/* a subscription's checkpoint counts the events of a txn in an int */
	if (txn->nevents >= PG_INT32_MAX)
		elog(ERROR,
			 "a transaction of more than %d events cannot be "
			 "handed to subscriptions",
			 PG_INT32_MAX);

	last = open_buffered > 0 ? &txn->runs[open_buffered - 1] : NULL;
	if (last != NULL && last->first + last->count == position)
		last->count++;
	else
	{
		if (open_buffered == txn->runs_cap)
			txns_make_room(txn);
		txn->runs[open_buffered].first = position;
		txn->runs[open_buffered].count = 1;
		open_buffered++;
		txn->nruns++;
	}
	txn->nevents++;
}

/* Free 'txn': its runs, its file */
static void
txns_free(DecodedTxn *txn)
{
	if (txn->file != NULL)
	{
		BufFileClose(txn->file);
		txns_bytes -= BLCKSZ;
	}
	if (txn->runs != NULL)
	{
		txns_bytes -= txn->runs_cap * sizeof(DecodedRun);
		pfree(txn->runs);
	}
	txns_bytes -= sizeof(DecodedTxn);
	pfree(txn);
}

/*
 * The transaction being decoded committed at 'end_lsn': it is complete.
 * Returns it, held by the round (txns_round_release lets go), or NULL if
 * it had no event.
 */
DecodedTxn *
txns_commit(TransactionId xid, XLogRecPtr end_lsn)
{
	DecodedTxn *txn = open_txn;

	open_txn = NULL;
	if (txn == NULL)
		return NULL;
	txn->xid = xid;
	txn->end_lsn = end_lsn;
	txn->refs = 0;
	txn->in_round = true;
	if (txn->file != NULL)
	{
		/* the rest to the file; the write buffer is no longer needed */
		txns_write(txn, txn->runs, open_buffered);
		txns_bytes -= txn->runs_cap * sizeof(DecodedRun);
		pfree(txn->runs);
		txn->runs = NULL;
		txn->runs_cap = 0;
		ereport(DEBUG1,
				(errmsg_internal(
					"strata worker: transaction %u has " INT64_FORMAT
					" events in " INT64_FORMAT " runs, in a temporary file",
					xid, txn->nevents, txn->nruns)));
	}
	else if (txn->runs_cap > txn->nruns)
	{
		/* what it holds from now on is what it needs */
		txns_bytes -= (txn->runs_cap - txn->nruns) * sizeof(DecodedRun);
		txn->runs = repalloc_huge(txn->runs, txn->nruns * sizeof(DecodedRun));
		txn->runs_cap = txn->nruns;
	}
	open_buffered = 0;
	return txn;
}

/* Drop a transaction whose decoding did not reach its commit */
void
txns_forget_open(void)
{
	if (open_txn != NULL)
		txns_free(open_txn);
	open_txn = NULL;
	open_buffered = 0;
}

/* A subscription waits for 'txn' */
void
txns_hold(DecodedTxn *txn)
{
	if (txn->refs++ == 0)
		txns_waiting_bytes += txns_size(txn);
}

/* A subscription no longer waits for 'txn': the last holder frees it */
void
txns_release(DecodedTxn *txn)
{
	Assert(txn->refs > 0);
	if (--txn->refs == 0)
	{
		txns_waiting_bytes -= txns_size(txn);
		if (!txn->in_round)
			txns_free(txn);
	}
}

/* The round that decoded 'txn' ends: the last holder frees it */
void
txns_round_release(DecodedTxn *txn)
{
	Assert(txn->in_round);
	txn->in_round = false;
	if (txn->refs == 0)
		txns_free(txn);
}

/*
 * Read 'size' bytes of 'file' at its position.  BufFile reports I/O
 * errors itself: a short read is a file shorter than what was written.
 */
static void
txns_read_exact(BufFile *file, void *ptr, Size size)
{
	Size got;

	if (size > 0 && (got = BufFileRead(file, ptr, size)) != size)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not read the temporary file of a transaction "
						"decoded by the strata worker: read only %zu of %zu "
						"bytes",
						got, size)));
}

/*
 * Read 'n' runs of 'txn' from run 'from' into 'out': from memory, or
 * from its file.
 */
static void
txns_read_runs(DecodedTxn *txn, int64 from, int64 n, DecodedRun *out)
{
	int64 offset = from * (int64) sizeof(DecodedRun);
	char  skip[BLCKSZ];

	Assert(from + n <= txn->nruns);
	if (txn->file == NULL)
	{
		memcpy(out, txn->runs + from, sizeof(DecodedRun) * n);
		return;
	}
	if (BufFileSeekBlock(txn->file, offset / BLCKSZ) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not seek to block %lld of the temporary file "
						"of a transaction decoded by the strata worker",
						(long long) (offset / BLCKSZ))));
	txns_read_exact(txn->file, skip, offset % BLCKSZ);
	txns_read_exact(txn->file, out, sizeof(DecodedRun) * n);
}

/* Set 'cur' at the event of index 'event' of 'txn' */
void
txns_seek(DecodedTxn *txn, TxnCursor *cur, int64 event)
{
	DecodedRun chunk[TXNS_BLOCK_RUNS];
	int64	   before = 0; /* events in the runs before 'run' */

	Assert(event >= 0 && event <= txn->nevents);
	cur->event = event;
	cur->run = 0;
	cur->in_run = 0;
	if (event == 0)
		return; /* the usual case: no need to read the runs */
	for (int64 run = 0; run < txn->nruns; run += TXNS_BLOCK_RUNS)
	{
		int64 n = Min((int64) TXNS_BLOCK_RUNS, txn->nruns - run);

		txns_read_runs(txn, run, n, chunk);
		for (int64 k = 0; k < n; k++)
		{
			if (event < before + chunk[k].count)
			{
				cur->run = run + k;
				cur->in_run = event - before;
				return;
			}
			before += chunk[k].count;
		}
	}
	/* past the last event */
	cur->run = txn->nruns;
	cur->in_run = 0;
}

/*
 * Copy into 'out' (room for 'max_events' runs) the runs of 'txn' from
 * 'cur' that make at most 'max_events' events, the first and last ones
 * cut to what is in range, and move 'cur' past them.  Returns the number
 * of runs copied; their events are cur->event's increase.
 */
int
txns_take(DecodedTxn *txn, TxnCursor *cur, int64 max_events, DecodedRun *out)
{
	int64 nread = Min(txn->nruns - cur->run, max_events);
	int64 taken = 0;
	int	  n = 0;

	if (nread <= 0 || max_events <= 0)
		return 0;
	txns_read_runs(txn, cur->run, nread, out);
	out[0].first += cur->in_run;
	out[0].count -= cur->in_run;
	while (n < nread && taken < max_events)
	{
		DecodedRun *r = &out[n];
		int64		room = max_events - taken;

		if (r->count > room)
		{
			/* cut short: the cursor stays in this run */
			cur->in_run = (n == 0 ? cur->in_run : 0) + room;
			cur->run += n;
			cur->event += max_events;
			r->count = room;
			return n + 1;
		}
		taken += r->count;
		n++;
	}
	cur->run += n;
	cur->in_run = 0;
	cur->event += taken;
	return n;
}
