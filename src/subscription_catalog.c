/*-------------------------------------------------------------------------
 *
 * subscription_catalog.c
 *	  strata.subscriptions and strata.parked_events: loading
 *	  subscriptions, and the writes the workers make (progress, errors,
 *	  parking, stopping, the restart of every live subscription on a new
 *	  stream).  See subscription_catalog.h.
 *
 * The workers write only under the generation they loaded: a change made
 * by SQL meanwhile (a pause, a resume, a drop) bumps it, the write finds
 * no row, and the caller rolls its transaction back and loads again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlogdefs.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "define.h"
#include "subscription.h"
#include "subscription_catalog.h"

/* ---------- loading ---------- */

/* The columns read, in the order of the query below */
enum
{
	SUB_NAME = 1,
	SUB_GENERATION,
	SUB_HANDLER,
	SUB_OWNER,
	SUB_CATEGORIES,
	SUB_TYPES,
	SUB_ON_ERROR,
	SUB_STATE,
	SUB_PHASE,
	SUB_CHECKPOINT_LSN,
	SUB_CHECKPOINT_INDEX,
	SUB_WATERMARK,
	SUB_DELIVERED,
	SUB_ATTEMPTS,
	SUB_LAST_ERROR_AT,
	SUB_STREAM_ID
};

#define SUB_COLUMNS                                                           \
	"name, generation, handler::pg_catalog.oid, owner::pg_catalog.oid, "      \
	"categories, types, on_error, state, phase, checkpoint_lsn, "             \
	"checkpoint_index, watermark, delivered, attempts, "                      \
	"last_error_at, stream_id FROM strata.subscriptions "

/* One row of the query into a new Subscription, in the current context */
static Subscription *
subcat_from_row(HeapTuple tup, TupleDesc desc, const char *stream_id)
{
	Subscription *sub = palloc0(sizeof(Subscription));
	bool		  isnull;
	Datum		  d;
	char		 *str;

	sub->name =
		TextDatumGetCString(SPI_getbinval(tup, desc, SUB_NAME, &isnull));
	sub->what = psprintf("handler of subscription \"%s\"", sub->name);
	sub->generation =
		DatumGetInt64(SPI_getbinval(tup, desc, SUB_GENERATION, &isnull));
	sub->handler =
		DatumGetObjectId(SPI_getbinval(tup, desc, SUB_HANDLER, &isnull));
	sub->owner =
		DatumGetObjectId(SPI_getbinval(tup, desc, SUB_OWNER, &isnull));
	if (isnull)
		sub->owner = InvalidOid; /* its role was dropped */
	d = SPI_getbinval(tup, desc, SUB_CATEGORIES, &isnull);
	if (!isnull)
		sub->ncategories = define_strings(d, &sub->categories);
	d = SPI_getbinval(tup, desc, SUB_TYPES, &isnull);
	if (!isnull)
		sub->ntypes = define_strings(d, &sub->types);
	str = TextDatumGetCString(SPI_getbinval(tup, desc, SUB_ON_ERROR, &isnull));
	sub->on_error_stop = strcmp(str, "stop") == 0;
	str = TextDatumGetCString(SPI_getbinval(tup, desc, SUB_STATE, &isnull));
	sub->state = str[0];
	str = TextDatumGetCString(SPI_getbinval(tup, desc, SUB_PHASE, &isnull));
	/* a checkpoint is only valid for the stream it was taken from */
	d = SPI_getbinval(tup, desc, SUB_STREAM_ID, &isnull);
	sub->live = strcmp(str, "live") == 0 && !isnull && stream_id != NULL &&
				strcmp(TextDatumGetCString(d), stream_id) == 0;
	d = SPI_getbinval(tup, desc, SUB_CHECKPOINT_LSN, &isnull);
	sub->progress.checkpoint_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
	sub->progress.checkpoint_index =
		DatumGetInt32(SPI_getbinval(tup, desc, SUB_CHECKPOINT_INDEX, &isnull));
	sub->progress.watermark =
		DatumGetInt64(SPI_getbinval(tup, desc, SUB_WATERMARK, &isnull));
	subscription_delivered_from_datum(
		SPI_getbinval(tup, desc, SUB_DELIVERED, &isnull), &sub->progress);
	sub->attempts =
		DatumGetInt32(SPI_getbinval(tup, desc, SUB_ATTEMPTS, &isnull));
	d = SPI_getbinval(tup, desc, SUB_LAST_ERROR_AT, &isnull);
	sub->last_error_at = isnull ? 0 : DatumGetTimestampTz(d);
	return sub;
}

/*
 * Load the subscriptions (all, or the one named 'name') into 'cxt': a
 * subscription is live if its phase says so under 'stream_id', the
 * identity of the worker's stream.  Returns how many; *list has them.
 */
int
subcat_load(const char *name, const char *stream_id, MemoryContext cxt,
			Subscription ***list)
{
	static SPIPlanPtr plan_all = NULL;
	static SPIPlanPtr plan_one = NULL;
	MemoryContext	  old;
	int				  ret;
	int				  n;

	if (name == NULL)
		ret = SPI_execute_plan(strata_prepare(&plan_all,
											  "SELECT " SUB_COLUMNS
											  "ORDER BY created_at, name",
											  0, NULL),
							   NULL, NULL, true, 0);
	else
		ret = SPI_execute_plan(
			strata_prepare(&plan_one,
						   "SELECT " SUB_COLUMNS
						   "WHERE name OPERATOR(pg_catalog.=) $1",
						   1, (Oid[]){TEXTOID}),
			(Datum[]){CStringGetTextDatum(name)}, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.subscriptions");

	old = MemoryContextSwitchTo(cxt);
	n = (int) SPI_processed;
	*list = palloc0(sizeof(Subscription *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		(*list)[i] = subcat_from_row(SPI_tuptable->vals[i],
									 SPI_tuptable->tupdesc, stream_id);
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * How far the subscription 'name' is, for strata.wait_for: whether the
 * event at 'position' is processed, and if so whether it was parked
 * (processed without its handler succeeding), with the subscription's
 * state and last error.  One query, under the latest snapshot, so that
 * every round of the wait sees the worker's last commit.  The strings
 * are palloc'd in the caller's context.
 */
void
subcat_reached(Datum name, int64 position, SubcatWait *out)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[2] = {TEXTOID, INT8OID};
	Datum			  args[2];
	Snapshot		  snapshot;
	bool			  isnull;
	int				  ret;
	HeapTuple		  tup;
	TupleDesc		  desc;
	MemoryContext	  cxt = CurrentMemoryContext;
	Datum			  d;

	args[0] = name;
	args[1] = Int64GetDatum(position);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	ret = SPI_execute_snapshot(
		strata_prepare(
			&plan,
			"SELECT s.reached, CASE WHEN s.reached THEN "
			"(SELECT p.error FROM strata.parked_events p WHERE "
			"p.subscription OPERATOR(pg_catalog.=) $1 AND "
			"p.position OPERATOR(pg_catalog.=) $2) END, "
			"s.state, s.last_error FROM (SELECT $2 "
			"OPERATOR(pg_catalog.<) watermark OR delivered "
			"OPERATOR(pg_catalog.@>) $2 AS reached, state, last_error "
			"FROM strata.subscriptions WHERE name "
			"OPERATOR(pg_catalog.=) $1) s",
			2, argtypes),
		args, NULL, snapshot, InvalidSnapshot, true, false, 1);
	UnregisterSnapshot(snapshot);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.subscriptions");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("subscription \"%s\" does not exist",
							   TextDatumGetCString(name))));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	out->reached = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	out->parked_error =
		isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	out->state = MemoryContextStrdup(cxt, TextDatumGetCString(d));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	out->last_error =
		isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));
	SPI_freetuptable(SPI_tuptable);
}

/* ---------- what the SQL functions write ---------- */

/*
 * A new subscription (subscription_insert): args/nulls are its name,
 * handler, categories, types, owner, on_error, watermark, delivered
 * (int8multirange) and projection.  False if the name is taken.
 */
bool
subcat_insert(Datum *args, const char *nulls)
{
	static SPIPlanPtr plan = NULL;
	Oid argtypes[9] = {TEXTOID,	   OIDOID,	TEXTARRAYOID, TEXTARRAYOID,
					   REGROLEOID, TEXTOID, INT8OID,	  INT8MULTIRANGEOID,
					   TEXTOID};

	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "INSERT INTO strata.subscriptions (name, handler, "
						   "categories, types, owner, on_error, watermark, "
						   "delivered, projection) VALUES ($1, $2, $3, $4, "
						   "$5, $6, $7, $8, $9) "
						   "ON CONFLICT (name) DO NOTHING",
						   9, argtypes),
			args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the subscription");
	return SPI_processed == 1;
}

/*
 * Lock the row of subscription 'name' (FOR UPDATE) and tell its owner
 * and whether it runs an async projection; false if there is none.
 */
bool
subcat_lock(const char *name, Oid *owner, bool *is_projection)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtype = TEXTOID;
	Datum			  arg = CStringGetTextDatum(name);
	bool			  isnull;

	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT owner::pg_catalog.oid, projection IS NOT "
						   "NULL FROM strata.subscriptions WHERE name "
						   "OPERATOR(pg_catalog.=) $1 FOR UPDATE",
						   1, &argtype),
			&arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.subscriptions");
	if (SPI_processed == 0)
		return false;
	*owner = DatumGetObjectId(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*is_projection = DatumGetBool(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

/* Drop, pause or resume subscription 'name' (locked by subcat_lock) */
void
subcat_change(const char *name, SubChange change)
{
	static SPIPlanPtr		 plans[3] = {NULL, NULL, NULL};
	static const char *const sql[3] = {
		[SUBCAT_DROP] = "DELETE FROM strata.subscriptions WHERE name "
						"OPERATOR(pg_catalog.=) $1",
		[SUBCAT_PAUSE] = "UPDATE strata.subscriptions SET state = 'paused', "
						 "generation = generation OPERATOR(pg_catalog.+) 1 "
						 "WHERE name OPERATOR(pg_catalog.=) $1",
		[SUBCAT_RESUME] = "UPDATE strata.subscriptions SET state = 'active', "
						  "attempts = 0, "
						  "generation = generation OPERATOR(pg_catalog.+) 1 "
						  "WHERE name OPERATOR(pg_catalog.=) $1"};
	Oid	  argtype = TEXTOID;
	Datum arg = CStringGetTextDatum(name);

	if (SPI_execute_plan(
			strata_prepare(&plans[change], sql[change], 1, &argtype), &arg,
			NULL, false, 0) < 0)
		elog(ERROR, "could not change the subscription");
}

/*
 * Lock the subscription of async projection 'name' (FOR UPDATE): true if
 * it exists and is that projection's; *exists tells whether a
 * subscription of that name exists at all.
 */
bool
subcat_lock_projection(const char *name, bool *exists)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtype = TEXTOID;
	Datum			  arg = CStringGetTextDatum(name);
	bool			  isnull;

	if (SPI_execute_plan(strata_prepare(&plan,
										"SELECT coalesce(projection "
										"OPERATOR(pg_catalog.=) name, false) "
										"FROM strata.subscriptions WHERE name "
										"OPERATOR(pg_catalog.=) $1 FOR UPDATE",
										1, &argtype),
						 &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.subscriptions");
	*exists = SPI_processed > 0;
	return *exists &&
		   DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * A redefined async projection: its subscription gets the new handler,
 * filters and owner under a new generation.  args/nulls: name, handler,
 * categories, types, (mode, unused), owner.
 */
void
subcat_redefine(const char *name, Datum *args, const char *nulls)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[6] = {TEXTOID,	   OIDOID,	TEXTARRAYOID,
									 TEXTARRAYOID, TEXTOID, REGROLEOID};

	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"UPDATE strata.subscriptions SET handler = $2, "
				"categories = $3, types = $4, owner = $6, generation = "
				"generation OPERATOR(pg_catalog.+) 1 WHERE name "
				"OPERATOR(pg_catalog.=) $1",
				6, argtypes),
			args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the projection's subscription");
}

/*
 * A rebuild of async projection 'projection': its subscription goes back
 * to the beginning (catching up, nothing processed, active, a new
 * generation) and its parked events are dropped.
 */
void
subcat_restart_projection(Datum projection)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtype = TEXTOID;

	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"WITH s AS (UPDATE strata.subscriptions SET "
				"phase = 'catchup', watermark = 1, delivered = "
				"'{}', checkpoint_lsn = NULL, checkpoint_index = 0, "
				"attempts = 0, state = 'active', generation = "
				"generation OPERATOR(pg_catalog.+) 1 WHERE "
				"projection OPERATOR(pg_catalog.=) $1 RETURNING "
				"name) DELETE FROM strata.parked_events p USING s "
				"WHERE p.subscription OPERATOR(pg_catalog.=) s.name",
				1, &argtype),
			&projection, NULL, false, 0) < 0)
		elog(ERROR, "could not restart the projection's subscription");
}

/*
 * The parked events of subscription 'name', in position order, for
 * retry_parked: their rows of strata.events (copied into 'cxt') and
 * positions, and the subscription's handler.  Returns how many.
 */
int
subcat_parked_events(Datum name, MemoryContext cxt, Oid *handler, Datum **rows,
					 int64 **positions)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtype = TEXTOID;
	MemoryContext	  old;
	int				  n;

	/* the columns of the query */
	enum
	{
		PARKED_HANDLER = 1,
		PARKED_EVENT,
		PARKED_POSITION
	};

	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT s.handler::pg_catalog.oid, e, e.position "
						   "FROM strata.parked_events p "
						   "JOIN strata.subscriptions s ON s.name "
						   "OPERATOR(pg_catalog.=) p.subscription "
						   "JOIN strata.events e ON e.position "
						   "OPERATOR(pg_catalog.=) p.position "
						   "WHERE p.subscription OPERATOR(pg_catalog.=) $1 "
						   "ORDER BY p.position",
						   1, &argtype),
			&name, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read strata.parked_events");
	n = (int) SPI_processed;
	if (n == 0)
		return 0;

	old = MemoryContextSwitchTo(cxt);
	*rows = palloc(sizeof(Datum) * n);
	*positions = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool	  isnull;

		if (i == 0)
			*handler = DatumGetObjectId(
				SPI_getbinval(tup, desc, PARKED_HANDLER, &isnull));
		(*rows)[i] = PointerGetDatum(DatumGetHeapTupleHeader(datumCopy(
			SPI_getbinval(tup, desc, PARKED_EVENT, &isnull), false, -1)));
		(*positions)[i] =
			DatumGetInt64(SPI_getbinval(tup, desc, PARKED_POSITION, &isnull));
	}
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * Give subscription 'name' (locked by subcat_lock) the owner 'owner',
 * under a new generation; returns its handler.
 */
Oid
subcat_set_owner(const char *name, Oid owner)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[2] = {TEXTOID, REGROLEOID};
	Datum			  args[2];
	bool			  isnull;

	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(owner);
	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "UPDATE strata.subscriptions SET owner = $2, "
						   "generation = generation OPERATOR(pg_catalog.+) 1 "
						   "WHERE name OPERATOR(pg_catalog.=) $1 "
						   "RETURNING handler::pg_catalog.oid",
						   2, argtypes),
			args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not change the owner of a subscription");
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
}

/* A parked event's handler succeeded on retry: unpark it */
void
subcat_unpark(Datum name, int64 position)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[2] = {TEXTOID, INT8OID};
	Datum			  args[2] = {name, Int64GetDatum(position)};

	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "DELETE FROM strata.parked_events WHERE "
						   "subscription OPERATOR(pg_catalog.=) $1 "
						   "AND position OPERATOR(pg_catalog.=) $2",
						   2, argtypes),
			args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not unpark an event");
}

/* It failed again: one more attempt, with the new error */
void
subcat_park_again(Datum name, int64 position, ErrorData *edata)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[4] = {TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum			  args[4];

	args[0] = name;
	args[1] = Int64GetDatum(position);
	args[2] = CStringGetTextDatum(edata->message);
	args[3] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "UPDATE strata.parked_events SET "
						   "attempts = attempts OPERATOR(pg_catalog.+) 1, "
						   "error = $3, sqlstate = $4, "
						   "parked_at = pg_catalog.now() WHERE "
						   "subscription OPERATOR(pg_catalog.=) $1 "
						   "AND position OPERATOR(pg_catalog.=) $2",
						   4, argtypes),
			args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record a parked event's error");
}

/* ---------- what the workers write ---------- */

/*
 * Write the subscription's progress and clear its error, in the current
 * transaction, unless SQL changed the subscription meanwhile (then the
 * caller's transaction must be rolled back).  'go_live' hands it over to
 * the stream at 'live_lsn' ('stream_id' is the stream's identity).
 * 'last_position' > 0: an event was handled, the error is cleared.
 */
bool
subcat_save_progress(Subscription *sub, SubProgress *p, bool go_live,
					 XLogRecPtr live_lsn, int64 last_position,
					 const char *stream_id)
{
	static SPIPlanPtr plan = NULL;
	Oid	  argtypes[9] = {TEXTOID,			INT8OID, LSNOID,  INT4OID, INT8OID,
						 INT8MULTIRANGEOID, INT8OID, BOOLOID, TEXTOID};
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
	args[5] = subscription_delivered_datum(p);
	args[6] = Int64GetDatum(last_position);
	if (last_position <= 0)
		nulls[6] = 'n';
	args[7] = BoolGetDatum(go_live);
	args[8] = CStringGetTextDatum(stream_id);

	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"UPDATE strata.subscriptions SET checkpoint_lsn = $3, "
				"checkpoint_index = $4, watermark = $5, "
				"delivered = $6, "
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

/*
 * Record a failed attempt of 'sub' at 'position' (sub->attempts counts
 * it); 'last' when it was the last allowed, which stops a subscription
 * whose on_error is 'stop'.  False when SQL changed the subscription.
 */
bool
subcat_record_error(Subscription *sub, int64 position, ErrorData *edata,
					bool last)
{
	static SPIPlanPtr plan = NULL;
	Oid	  argtypes[5] = {TEXTOID, INT8OID, INT4OID, TEXTOID, TEXTOID};
	Datum args[5];

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int64GetDatum(sub->generation);
	args[2] = Int32GetDatum(sub->attempts);
	args[3] = CStringGetTextDatum(edata->message ? edata->message : "");
	args[4] =
		CStringGetTextDatum(last && sub->on_error_stop ? "stopped" : "active");
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"UPDATE strata.subscriptions SET attempts = $3, "
				"last_error = $4, last_error_at = pg_catalog.now(), "
				"state = $5 WHERE name OPERATOR(pg_catalog.=) $1 "
				"AND generation OPERATOR(pg_catalog.=) $2",
				5, argtypes),
			args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record a handler error");
	return SPI_processed == 1;
}

/* Park the event at 'position' for 'sub', with its last error. */
void
subcat_park(Subscription *sub, int64 position, ErrorData *edata)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[6] = {TEXTOID, INT8OID, INT4OID,
									 TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum			  args[6];

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int64GetDatum(position);
	args[2] = Int32GetDatum(sub->attempts);
	args[3] = CStringGetTextDatum(edata->message ? edata->message : "");
	args[4] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[5] = TimestampTzGetDatum(sub->first_failed_at);
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"INSERT INTO strata.parked_events (subscription, "
				"position, attempts, error, sqlstate, first_failed_at) "
				"VALUES ($1, $2, $3, $4, $5, $6) "
				"ON CONFLICT (subscription, position) DO UPDATE SET "
				"attempts = EXCLUDED.attempts, error = EXCLUDED.error, "
				"sqlstate = EXCLUDED.sqlstate, parked_at = "
				"pg_catalog.now()",
				6, argtypes),
			args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not park an event");
}

/*
 * Stop 'sub' (its handler cannot be called) with 'message' as its last
 * error; a no-op if SQL changed it meanwhile.
 */
void
subcat_stop(Subscription *sub, const char *message)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum			  args[3];

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int64GetDatum(sub->generation);
	args[2] = CStringGetTextDatum(message);
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
}

/*
 * A new stream (a new slot): every live subscription goes back to
 * catching up from strata.events, under a new generation.
 */
void
subcat_restart_live(void)
{
	if (SPI_execute("UPDATE strata.subscriptions SET phase = 'catchup', "
					"generation = generation OPERATOR(pg_catalog.+) 1 "
					"WHERE phase OPERATOR(pg_catalog.=) 'live'",
					false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not restart the live subscriptions");
}
