/*-------------------------------------------------------------------------
 *
 * subscription_catalog.h
 *	  The subscriptions table (strata.subscriptions) and the parked
 *	  events, in one module (subscription_catalog.c) used by the SQL
 *	  functions (subscription.c, projection.c) and by the workers: load,
 *	  save progress, record an error, park, stop, restart.  As core's
 *	  catalog/pg_subscription.c is shared by its commands and the apply
 *	  worker.
 *
 * Every function runs in a transaction, connected to SPI, as the
 * extension's owner (an owner section, or a worker).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_SUBSCRIPTION_CATALOG_H
#define STRATA_SUBSCRIPTION_CATALOG_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "utils/elog.h"
#include "utils/timestamp.h"

#include "subscription.h"

struct WorkerPending;

/* A subscription, as loaded from strata.subscriptions */
typedef struct Subscription
{
	char	   *name;
	int64		generation; /* bumped by every change made by SQL */
	Oid			handler;
	Oid			owner; /* InvalidOid: its role was dropped */
	int			ncategories;
	char	  **categories;
	int			ntypes;
	char	  **types;
	bool		on_error_stop;
	char		state; /* 'a'ctive, 'p'aused, 's'topped */
	bool		live;  /* follows the stream whose identity was given */
	SubProgress progress;
	int			attempts;
	TimestampTz last_error_at;
	char	   *what; /* "handler of subscription \"name\"" */

	/* not in the table: kept by the workers between loads */
	TimestampTz			  first_failed_at; /* first failed attempt */
	bool				  stale;		   /* SQL changed it: load again */
	XLogRecPtr			  stream_lsn;	   /* events dispatched up to here */
	XLogRecPtr			  done_lsn;		   /* and processed up to here */
	struct WorkerPending *pending;	/* dispatched, waiting for a handler */
	int64				  npending; /* events of those */
} Subscription;

/* A change of one subscription made by SQL (a new generation but a drop) */
typedef enum SubChange
{
	SUBCAT_DROP,  /* with its parked events */
	SUBCAT_PAUSE, /* state paused */
	SUBCAT_RESUME /* state active, attempts 0 (also restarts a stopped one) */
} SubChange;

/* Load */
extern int subcat_load(const char *name, const char *stream_id,
					   MemoryContext cxt, Subscription ***list);

/* What strata.wait_for learns of a subscription and a position */
typedef struct SubcatWait
{
	bool  reached;		/* the event at the position is processed */
	char *parked_error; /* ... and was parked, with this error (or NULL) */
	char *state;		/* active, paused or stopped */
	char *last_error;	/* the subscription's last error, or NULL */
} SubcatWait;

extern void subcat_reached(Datum name, int64 position, SubcatWait *out);

/* What the SQL functions write */
extern bool subcat_insert(Datum *args, const char *nulls);
extern bool subcat_lock(const char *name, Oid *owner, bool *is_projection);
extern void subcat_change(const char *name, SubChange change);
extern bool subcat_lock_projection(const char *name, bool *exists);
extern void subcat_redefine(const char *name, Datum *args, const char *nulls);
extern void subcat_restart_projection(Datum projection);
extern int	subcat_parked_events(Datum name, MemoryContext cxt, Oid *handler,
								 Datum **rows, int64 **positions);
extern void subcat_unpark(Datum name, int64 position);
extern Oid	subcat_set_owner(const char *name, Oid owner);
extern void subcat_park_again(Datum name, int64 position, ErrorData *edata);

/* What the workers write, under the generation they loaded */
extern bool subcat_save_progress(Subscription *sub, SubProgress *p,
								 bool go_live, XLogRecPtr live_lsn,
								 int64 last_position, const char *stream_id);
extern bool subcat_record_error(Subscription *sub, int64 position,
								ErrorData *edata, bool last);
extern void subcat_park(Subscription *sub, int64 position, ErrorData *edata);
extern void subcat_stop(Subscription *sub, const char *message);
extern void subcat_restart_live(void);

#endif /* STRATA_SUBSCRIPTION_CATALOG_H */
