/*-------------------------------------------------------------------------
 *
 * subscription.h
 *	  Subscriptions: the SQL functions that manage them, and the progress
 *	  record (checkpoint, watermark, positions delivered) they share with
 *	  the worker that runs them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_SUBSCRIPTION_H
#define STRATA_SUBSCRIPTION_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "utils/snapshot.h"

/*
 * How far a subscription got.  The stream checkpoint: every transaction
 * whose commit record ends at or before checkpoint_lsn is processed, and
 * checkpoint_index events of the next one.  The positions: every event
 * below watermark is processed, and those in the ranges [lo[i], hi[i])
 * (sorted, disjoint, all above the watermark).
 */
typedef struct SubProgress
{
	XLogRecPtr checkpoint_lsn;
	int		   checkpoint_index;
	int64	   watermark;
	int		   nranges;
	int		   cap;
	int64	  *lo;
	int64	  *hi;
} SubProgress;

extern void	 subscription_delivered_from_datum(Datum delivered,
											   SubProgress *p);
extern Datum subscription_delivered_datum(SubProgress *p);
extern bool	 subscription_processed(SubProgress *p, int64 position);
extern void	 subscription_mark_processed(SubProgress *p, int64 position);
extern void	 subscription_settle(SubProgress *p, int64 watermark);
extern int64 subscription_settled(Snapshot *snapshot);
extern void	 subscription_progress_free(SubProgress *p);
extern void	 subscription_progress_copy(SubProgress *dst, SubProgress *src,
										MemoryContext cxt);
extern void	 subscription_check_not_own(const char *name);
extern void	 subscription_insert(const char *name, Oid handler,
								 Datum categories, bool categories_null,
								 Datum types, bool types_null, bool beginning,
								 bool on_error_stop, const char *projection,
								 Oid owner);

#endif /* STRATA_SUBSCRIPTION_H */
