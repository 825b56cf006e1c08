/*-------------------------------------------------------------------------
 *
 * subscription.c
 *	  Subscriptions: strata.subscribe and the functions that manage a
 *	  subscription (pause, resume, unsubscribe, retry_parked, wait_for),
 *	  and the progress record shared with the worker (workers/worker.c),
 *	  which runs them.
 *
 * Every change made here bumps the subscription's generation, so that
 * the worker, which may be running the subscription at that moment,
 * rolls back its batch instead of overwriting the change, and wakes the
 * worker when the transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/multirangetypes.h"
#include "utils/rangetypes.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "strata.h"
#include "compat.h"
#include "epoch.h"
#include "health.h"
#include "define.h"
#include "privilege.h"
#include "registry.h"
#include "subscription.h"
#include "subscription_catalog.h"
#include "usercall.h"
#include "workers.h"

PG_FUNCTION_INFO_V1(strata_subscribe);
PG_FUNCTION_INFO_V1(strata_unsubscribe);
PG_FUNCTION_INFO_V1(strata_pause_subscription);
PG_FUNCTION_INFO_V1(strata_resume_subscription);
PG_FUNCTION_INFO_V1(strata_retry_parked);
PG_FUNCTION_INFO_V1(strata_wait_for);
PG_FUNCTION_INFO_V1(strata_wait_for_0_5);
PG_FUNCTION_INFO_V1(strata_wait_for_0_6);
PG_FUNCTION_INFO_V1(strata_alter_subscription_owner);

/* ---------- progress ---------- */

static void
subscription_grow(SubProgress *p, int need)
{
	if (need <= p->cap)
		return;
	if (p->cap == 0)
	{
		p->cap = Max(need, 8);
		p->lo = palloc(sizeof(int64) * p->cap);
		p->hi = palloc(sizeof(int64) * p->cap);
		return;
	}
	p->cap = Max(need, p->cap * 2);
	p->lo = repalloc(p->lo, sizeof(int64) * p->cap);
	p->hi = repalloc(p->hi, sizeof(int64) * p->cap);
}

/*
 * The positions processed above the watermark, as kept in
 * strata.subscriptions.delivered (an int8multirange), into p's ranges,
 * allocated in the current memory context.  Through the multirange API,
 * not its text.
 */
void
subscription_delivered_from_datum(Datum delivered, SubProgress *p)
{
	MultirangeType *mr = DatumGetMultirangeTypeP(delivered);
	TypeCacheEntry *typcache =
		lookup_type_cache(MultirangeTypeGetOid(mr), TYPECACHE_MULTIRANGE_INFO);
	int32		count;
	RangeType **ranges;

	p->nranges = 0;
	p->cap = 0;
	p->lo = p->hi = NULL;
	multirange_deserialize(typcache->rngtype, mr, &count, &ranges);
	subscription_grow(p, Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		RangeBound lower;
		RangeBound upper;
		bool	   empty;

		range_deserialize(typcache->rngtype, ranges[i], &lower, &upper,
						  &empty);
		/* int8range is canonical: [lo, hi), never empty in a multirange */
		if (empty || lower.infinite || upper.infinite)
			elog(ERROR, "invalid delivered positions of a subscription");
		p->lo[p->nranges] = DatumGetInt64(lower.val);
		p->hi[p->nranges] = DatumGetInt64(upper.val);
		p->nranges++;
	}
}

/* p's ranges as an int8multirange datum, for strata.subscriptions */
Datum
subscription_delivered_datum(SubProgress *p)
{
	TypeCacheEntry *typcache =
		lookup_type_cache(INT8MULTIRANGEOID, TYPECACHE_MULTIRANGE_INFO);
	RangeType **ranges = palloc(sizeof(RangeType *) * Max(p->nranges, 1));

	for (int i = 0; i < p->nranges; i++)
	{
		RangeBound lower = {Int64GetDatum(p->lo[i]), false, true, true};
		RangeBound upper = {Int64GetDatum(p->hi[i]), false, false, false};

		ranges[i] =
			compat_make_range(typcache->rngtype, &lower, &upper, false);
	}
	return MultirangeTypePGetDatum(make_multirange(
		INT8MULTIRANGEOID, typcache->rngtype, p->nranges, ranges));
}

/* Has the event at 'position' been processed? */
bool
subscription_processed(SubProgress *p, int64 position)
{
	int lo = 0;
	int hi = p->nranges;

	if (position < p->watermark)
		return true;
	while (lo < hi)
	{
		int mid = (lo + hi) / 2;

		if (position < p->lo[mid])
			hi = mid;
		else if (position >= p->hi[mid])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Remove range i */
static void
subscription_remove(SubProgress *p, int i)
{
	memmove(p->lo + i, p->lo + i + 1, sizeof(int64) * (p->nranges - i - 1));
	memmove(p->hi + i, p->hi + i + 1, sizeof(int64) * (p->nranges - i - 1));
	p->nranges--;
}

/*
 * Raise the watermark to at least 'watermark', dropping the ranges below
 * it and absorbing the ranges that then start at it.
 */
void
subscription_settle(SubProgress *p, int64 watermark)
{
	if (watermark > p->watermark)
		p->watermark = watermark;
	while (p->nranges > 0 && p->lo[0] <= p->watermark)
	{
		if (p->hi[0] > p->watermark)
			p->watermark = p->hi[0];
		subscription_remove(p, 0);
	}
}

/*
 * Record the event at 'position' as processed.  Events mostly arrive in
 * increasing order, so the search starts from the last range.  Memory
 * comes from the context of the ranges.
 */
void
subscription_mark_processed(SubProgress *p, int64 position)
{
	int i;

	/*
	 * Ranges are half-open: position + 1 must exist.  The position sequence
	 * stops below PG_INT64_MAX, so only a row written around the extension
	 * can be out of range; refuse it rather than wrap.
	 */
	if (unlikely(position < 1 || position >= PG_INT64_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("event position " INT64_FORMAT " is out of range",
						position),
				 errdetail("Positions run from 1 to " INT64_FORMAT ".",
						   PG_INT64_MAX - 1),
				 errhint("Only strata.append writes events: look for a row "
						 "written around it.")));
	if (subscription_processed(p, position))
		return;
	if (position == p->watermark)
	{
		subscription_settle(p, position + 1);
		return;
	}

	/* i: the first range that starts after 'position' */
	i = p->nranges;
	while (i > 0 && p->lo[i - 1] > position)
		i--;

	if (i > 0 && p->hi[i - 1] == position)
	{
		p->hi[i - 1]++;
		if (i < p->nranges && p->hi[i - 1] == p->lo[i])
		{
			p->hi[i - 1] = p->hi[i];
			subscription_remove(p, i);
		}
		return;
	}
	if (i < p->nranges && p->lo[i] == position + 1)
	{
		p->lo[i] = position;
		return;
	}

	if (p->nranges == p->cap)
	{
		/* the ranges stay in the context they were made in */
		MemoryContext old =
			MemoryContextSwitchTo(p->lo != NULL ? GetMemoryChunkContext(p->lo)
												: CurrentMemoryContext);

		subscription_grow(p, p->nranges + 1);
		MemoryContextSwitchTo(old);
	}
	memmove(p->lo + i + 1, p->lo + i, sizeof(int64) * (p->nranges - i));
	memmove(p->hi + i + 1, p->hi + i, sizeof(int64) * (p->nranges - i));
	p->lo[i] = position;
	p->hi[i] = position + 1;
	p->nranges++;
}

/* Free the ranges of 'p' */
void
subscription_progress_free(SubProgress *p)
{
	if (p->lo != NULL)
		pfree(p->lo);
	if (p->hi != NULL)
		pfree(p->hi);
	p->lo = p->hi = NULL;
	p->nranges = p->cap = 0;
}

/*
 * Copy 'src' into 'dst', with the ranges allocated in 'cxt' (where later
 * growth stays too); 'dst' must not own ranges.
 */
void
subscription_progress_copy(SubProgress *dst, SubProgress *src,
						   MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SubProgress	  copy = *src;

	copy.cap = 0;
	copy.lo = copy.hi = NULL;
	subscription_grow(&copy, Max(src->nranges, 1));
	if (src->nranges > 0)
	{
		memcpy(copy.lo, src->lo, sizeof(int64) * src->nranges);
		memcpy(copy.hi, src->hi, sizeof(int64) * src->nranges);
	}
	MemoryContextSwitchTo(old);
	*dst = copy;
}

/*
 * Every position below the result is settled: taken by a transaction that
 * has ended (see registry.c).  The sequence is read before the registry's
 * horizon, so that a position taken in between is either still in flight
 * (and holds the horizon down) or at or above the sequence's value.  With
 * 'snapshot', also a registered snapshot taken with the horizon (the
 * caller unregisters it).  Connected to SPI.
 */
int64
subscription_settled(Snapshot *snapshot)
{
	static SPIPlanPtr plan = NULL;
	int64			  next;
	int64			  horizon;
	bool			  isnull;

	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT CASE WHEN is_called THEN last_value "
						   "OPERATOR(pg_catalog.+) 1 ELSE last_value END "
						   "FROM strata._position_seq",
						   0, NULL),
			NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read strata._position_seq");
	next = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	horizon = registry_read_horizon(snapshot);
	return Min(next, horizon);
}

/* ---------- SQL functions ---------- */

/* The text argument 'argno', which must not be null, as a C string */
static char *
subscription_text_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s must not be null", what)));
	return TextDatumGetCString(PG_GETARG_DATUM(argno));
}

/*
 * A subscription's handler, run by the worker, may not change its own
 * subscription (pause it, drop it, retry it...): the change would be
 * rolled back with the worker's batch, which found the subscription
 * changed, again and again.  An error instead is a failure of the handler
 * like any other.
 */
void
subscription_check_not_own(const char *name)
{
	if (workers_in_handler_of(name))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("the handler of subscription \"%s\" cannot change "
						"its own subscription",
						name),
				 errhint("Raise an error to have the event retried and "
						 "parked, or change the subscription from another "
						 "session.")));
}

/*
 * Look up subscription 'name' for a change by role 'caller', locking its
 * row: it must exist, and the caller must have the privileges of its
 * owner, or, for what an operator may do ('operator_ok': pause, resume,
 * retry), those of pg_signal_backend, with an owner that is not a
 * superuser: stopping another role's work without gaining its rights, as
 * pg_cancel_backend does.  Returns whether it runs an async projection,
 * and its owner in *owner (if not NULL).  Connected to SPI, in an owner
 * section.
 */
static bool
subscription_lock(const char *name, const char *action, Oid caller, Oid *owner,
				  bool operator_ok)
{
	Oid	 o;
	bool is_projection;

	subscription_check_not_own(name);

	if (!subcat_lock(name, &o, &is_projection))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("subscription \"%s\" does not exist", name)));
	if (!(operator_ok && OidIsValid(o) && !superuser_arg(o) &&
		  has_privs_of_role(caller, ROLE_PG_SIGNAL_BACKEND)))
		priv_check_owner(caller, o, action,
						 psprintf("subscription \"%s\"", name));
	if (owner != NULL)
		*owner = o;
	return is_projection;
}

/*
 * Where a new subscription starts: 'beginning' (position 1) or 'now':
 * every event visible now counts as processed, so that exactly the events
 * of transactions committing later are delivered.  Fills the watermark
 * and the positions delivered above it (an int8multirange).
 */
static void
subscription_start(bool beginning, int64 *watermark, Datum *delivered)
{
	static SPIPlanPtr plan_visible = NULL;
	Oid				  argtype = INT8OID;
	Datum			  arg;
	Snapshot		  snapshot;
	bool			  isnull;
	SubProgress		  p;

	memset(&p, 0, sizeof(p));
	p.watermark = 1;
	if (!beginning)
	{
		p.watermark = subscription_settled(&snapshot);
		arg = Int64GetDatum(p.watermark);
		if (SPI_execute_snapshot(
				strata_prepare(&plan_visible,
							   "SELECT position FROM strata.events WHERE "
							   "position OPERATOR(pg_catalog.>=) $1 "
							   "ORDER BY position",
							   1, &argtype),
				&arg, NULL, snapshot, InvalidSnapshot, true, false,
				0) != SPI_OK_SELECT)
			elog(ERROR, "could not read strata.events");
		UnregisterSnapshot(snapshot);
		for (uint64 i = 0; i < SPI_processed; i++)
			subscription_mark_processed(
				&p, DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1,
												&isnull)));
	}
	*watermark = p.watermark;
	*delivered = subscription_delivered_datum(&p);
}

/*
 * Insert a subscription (also used for async projections, 'projection'
 * not NULL).  Connected to SPI.
 */
void
subscription_insert(const char *name, Oid handler, Datum categories,
					bool categories_null, Datum types, bool types_null,
					bool beginning, bool on_error_stop, const char *projection,
					Oid owner)
{
	Datum args[9];
	char  nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int64 watermark;
	Datum delivered;

	subscription_start(beginning, &watermark, &delivered);
	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(handler);
	args[2] = categories;
	nulls[2] = categories_null ? 'n' : ' ';
	args[3] = types;
	nulls[3] = types_null ? 'n' : ' ';
	args[4] = ObjectIdGetDatum(owner);
	args[5] = CStringGetTextDatum(on_error_stop ? "stop" : "park");
	args[6] = Int64GetDatum(watermark);
	args[7] = delivered;
	if (projection != NULL)
		args[8] = CStringGetTextDatum(projection);
	else
		nulls[8] = 'n';

	if (!subcat_insert(args, nulls))
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("subscription \"%s\" already exists", name),
						errhint("Choose another name, or drop it first with "
								"strata.unsubscribe.")));
	workers_wake_at_commit();
	health_warn(projection != NULL ? "The async projection is stored"
								   : "The subscription is stored");
}

/*
 * strata.subscribe(name, handler, categories, types, start_from,
 * on_error): create a subscription.
 */
Datum
strata_subscribe(PG_FUNCTION_ARGS)
{
	char	 *name;
	Oid		  handler;
	Oid		  evtype;
	char	 *start_from;
	char	 *on_error;
	Oid		  caller = GetUserId();
	PrivScope scope;

	strata_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("name must not be null")));
	name = define_name_arg(PG_GETARG_TEXT_PP(0), "subscription name");
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("handler must not be null")));
	handler = PG_GETARG_OID(1);
	evtype = define_events_type();
	define_check_function(handler, "subscription handler", 1, &evtype, VOIDOID,
						  "(event strata.events) RETURNS void");
	if (!PG_ARGISNULL(2))
		define_check_list(PG_GETARG_ARRAYTYPE_P(2), "categories", true);
	if (!PG_ARGISNULL(3))
		define_check_list(PG_GETARG_ARRAYTYPE_P(3), "types", false);
	start_from = subscription_text_arg(fcinfo, 4, "start_from");
	if (strcmp(start_from, "now") != 0 && strcmp(start_from, "beginning") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid start_from \"%s\"", start_from),
						errhint("Use 'now' or 'beginning'.")));
	on_error = subscription_text_arg(fcinfo, 5, "on_error");
	if (strcmp(on_error, "park") != 0 && strcmp(on_error, "stop") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid on_error \"%s\"", on_error),
						errhint("Use 'park' or 'stop'.")));
	PreventCommandIfReadOnly("strata.subscribe()");

	/* the handler will see every event it takes, history included */
	priv_check_read_events(caller, "strata.subscribe");

	priv_enter(&scope);
	SPI_connect();
	subscription_insert(name, handler, PG_GETARG_DATUM(2), PG_ARGISNULL(2),
						PG_GETARG_DATUM(3), PG_ARGISNULL(3),
						strcmp(start_from, "beginning") == 0,
						strcmp(on_error, "stop") == 0, NULL, caller);
	SPI_finish();
	priv_exit(&scope);
	PG_RETURN_VOID();
}

/*
 * Run an UPDATE or DELETE of subscription 'name' (its $1) after the
 * owner check; a change to a projection's subscription other than pause
 * and resume is refused.  Pause and resume ('projection_ok') are also
 * what an operator may do (subscription_lock).
 */
static void
subscription_change(FunctionCallInfo fcinfo, SubChange change,
					const char *action, bool projection_ok)
{
	char	 *name = subscription_text_arg(fcinfo, 0, "name");
	Oid		  caller = GetUserId();
	PrivScope scope;

	strata_require_preload();
	PreventCommandIfReadOnly(
		strcmp(action, "drop") == 0
			? "strata.unsubscribe()"
			: psprintf("strata.%s_subscription()", action));
	priv_enter(&scope);
	SPI_connect();
	if (subscription_lock(name, action, caller, NULL, projection_ok) &&
		!projection_ok)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("subscription \"%s\" runs an async projection", name),
				 errhint("Use strata.drop_projection instead.")));
	subcat_change(name, change);
	SPI_finish();
	priv_exit(&scope);
	workers_wake_at_commit();
	/* a pause or a drop interrupts the handler the worker is running */
	workers_cancel_at_commit(name);
}

/* strata.unsubscribe(name): drop a subscription and its parked events. */
Datum
strata_unsubscribe(PG_FUNCTION_ARGS)
{
	subscription_change(fcinfo, SUBCAT_DROP, "drop", false);
	PG_RETURN_VOID();
}

/* strata.pause_subscription(name) */
Datum
strata_pause_subscription(PG_FUNCTION_ARGS)
{
	subscription_change(fcinfo, SUBCAT_PAUSE, "pause", true);
	PG_RETURN_VOID();
}

/* strata.resume_subscription(name): also restarts a stopped one. */
Datum
strata_resume_subscription(PG_FUNCTION_ARGS)
{
	subscription_change(fcinfo, SUBCAT_RESUME, "resume", true);
	PG_RETURN_VOID();
}

/*
 * strata.retry_parked(name): call the handler again on each parked event,
 * in position order, each in a subtransaction; an event that succeeds is
 * unparked, one that fails again stays parked with the new error.
 * Returns how many succeeded.
 */
Datum
strata_retry_parked(PG_FUNCTION_ARGS)
{
	char		 *name = subscription_text_arg(fcinfo, 0, "name");
	Datum		  arg = PG_GETARG_DATUM(0);
	Oid			  handler;
	Oid			  owner;
	UserFunc	  uf;
	UserCallEvent ev = {.kind = USERCALL_SUBSCRIPTION};
	int64		  done = 0;
	uint64		  n;
	Datum		 *rows;
	int64		 *positions;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner_res = CurrentResourceOwner;
	Oid			  caller = GetUserId();
	PrivScope	  scope;

	strata_require_preload();
	PreventCommandIfReadOnly("strata.retry_parked()");
	priv_enter(&scope);
	SPI_connect();
	(void) subscription_lock(name, "retry the parked events of", caller,
							 &owner, true);
	n = subcat_parked_events(arg, cxt, &handler, &rows, &positions);
	if (n == 0)
	{
		SPI_finish();
		priv_exit(&scope);
		PG_RETURN_INT64(0);
	}
	priv_check_read_events(owner, "strata.retry_parked");
	usercall_prepare(&uf, handler, owner,
					 psprintf("handler of subscription \"%s\"", name), cxt);
	ev.subject = name;

	for (uint64 i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			ev.position = positions[i];
			usercall_context_push(&ev);
			usercall_void(&uf, 1, &rows[i]);
			usercall_context_pop(&ev);
			subcat_unpark(arg, positions[i]);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner_res;
			done++;
		}
		PG_CATCH();
		{
			ErrorData *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			/* restores the user and settings of the owner section */
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner_res;
			/* session and server errors end the call, as in execute() */
			if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
					ERRCODE_T_R_SERIALIZATION_FAILURE ||
				edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
				edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
				ReThrowError(edata);
			subcat_park_again(arg, positions[i], edata);
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
	SPI_finish();
	priv_exit(&scope);
	workers_wake_at_commit();
	PG_RETURN_INT64(done);
}

/*
 * strata.alter_subscription_owner(name, new_owner): the handler runs as
 * 'new_owner' from now on.  As ALTER ... OWNER TO: the caller has the
 * privileges of the current owner and is a member of the new one (or is
 * a superuser); the new owner must be able to run the subscription.
 */
Datum
strata_alter_subscription_owner(PG_FUNCTION_ARGS)
{
	char	 *name = subscription_text_arg(fcinfo, 0, "name");
	Oid		  new_owner = PG_GETARG_OID(1);
	Oid		  caller = GetUserId();
	char	 *object = psprintf("subscription \"%s\"", name);
	Oid		  handler;
	bool	  is_projection;
	PrivScope scope;

	strata_require_preload();
	PreventCommandIfReadOnly("strata.alter_subscription_owner()");
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(new_owner)))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("role with OID %u does not exist", new_owner)));
	priv_check_can_own(caller, new_owner, object);
	priv_check_read_events(new_owner, "strata.alter_subscription_owner");

	priv_enter(&scope);
	SPI_connect();
	is_projection =
		subscription_lock(name, "alter the owner of", caller, NULL, false);
	if (is_projection)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("subscription \"%s\" runs an async projection", name),
				 errdetail("It runs as the projection's owner."),
				 errhint("Drop the projection and define it again as the "
						 "new owner, or use REASSIGN OWNED.")));
	handler = subcat_set_owner(name, new_owner);
	usercall_check(handler, new_owner,
				   psprintf("handler of subscription \"%s\"", name));
	SPI_finish();
	priv_exit(&scope);
	workers_wake_at_commit();
	workers_cancel_at_commit(name);
	PG_RETURN_VOID();
}

/* What strata.wait_for waits for, and what it last learnt */
typedef struct WaitTarget
{
	Datum		  name;
	int64		  position;
	MemoryContext cxt; /* of 'seen', reset before each look */
	SubcatWait	  seen;
} WaitTarget;

static bool
subscription_wait_reached(void *arg)
{
	WaitTarget	 *target = (WaitTarget *) arg;
	MemoryContext old;

	MemoryContextReset(target->cxt);
	old = MemoryContextSwitchTo(target->cxt);
	subcat_reached(target->name, target->position, &target->seen);
	MemoryContextSwitchTo(old);
	return target->seen.reached;
}

/*
 * Why a wait for 'name' ran into its timeout, as a NOTICE, when the
 * subscription or the worker says so: paused, stopped (with its error),
 * no worker running or the worker failing.
 */
static void
subscription_wait_notice(const char *name, SubcatWait *seen)
{
	char *trouble;

	if (strcmp(seen->state, "paused") == 0)
		ereport(NOTICE,
				(errmsg("subscription \"%s\" is paused", name),
				 errhint("Resume it with strata.resume_subscription.")));
	else if (strcmp(seen->state, "stopped") == 0)
		ereport(NOTICE, (errmsg("subscription \"%s\" is stopped", name),
						 seen->last_error ? errdetail("Its last error: %s",
													  seen->last_error)
										  : 0,
						 errhint("Fix the cause, then call "
								 "strata.resume_subscription.")));
	else if ((trouble = workers_trouble()) != NULL)
		ereport(NOTICE, (errmsg("%s", trouble),
						 errdetail("The event was not processed within the "
								   "timeout.")));
}

/*
 * strata.wait_for(subscription, position, timeout): wait until the
 * subscription has processed the event at 'position' (true) or the
 * timeout passed (false, with a NOTICE saying why when the subscription
 * or its worker does not run).  From 0.5.0 ('strict'), a server where no
 * worker can run raises an error at once, instead of waiting for
 * nothing, and so does an event the subscription parked (it was passed
 * over, its handler never succeeded on it); under the SQL of 0.3.0 and
 * 0.4.0 both are true as they were (a NOTICE says why).  From 0.6.0 a
 * position lost at a failover raises ST006 (epoch.c).  The sleep is the
 * workers' (workers_wait): it ends when this database's worker records
 * progress.
 */
static Datum
subscription_wait_for(FunctionCallInfo fcinfo, StrataApi api)
{
	bool		   strict = api >= STRATA_API_0_5;
	WaitTarget	   target;
	Interval	  *timeout = PG_GETARG_INTERVAL_P(2);
	TimestampTz	   deadline;
	bool		   reached;
	PrivScope	   scope;
	HealthProblem *problem;
	char		  *name;

	strata_require_preload();
	if (timeout->month != 0 || timeout->day != 0 || timeout->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be a non-negative interval of hours, "
						"minutes and seconds"),
				 errhint("Write it as, for example, '5s' or '2 minutes'.")));
	target.name = PG_GETARG_DATUM(0);
	target.position = PG_GETARG_INT64(1);
	name = TextDatumGetCString(target.name);
	/* an event at a position lost at a failover never comes (0.6.0) */
	if (api >= STRATA_API_0_6)
		epoch_check_cursor(target.position, "strata.wait_for");
	problem = health_problem();
	if (problem != NULL)
		ereport(strict ? ERROR : NOTICE,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", problem->message),
				 errdetail("No strata worker can process subscription \"%s\" "
						   "until %s is changed.",
						   name, problem->setting),
				 errhint("%s", problem->hint)));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   timeout->time / 1000);
	target.cxt = AllocSetContextCreate(CurrentMemoryContext, "strata wait_for",
									   ALLOCSET_SMALL_SIZES);

	/* progress is no secret for whom may wait: read it as the owner */
	priv_enter(&scope);
	SPI_connect();
	reached = workers_wait(subscription_wait_reached, &target, deadline);
	SPI_finish();
	priv_exit(&scope);

	if (reached && target.seen.parked_error != NULL)
		ereport(strict ? ERROR : NOTICE,
				(errcode(ERRCODE_STRATA_EVENT_PARKED),
				 errmsg("subscription \"%s\" parked the event at "
						"position " INT64_FORMAT,
						name, target.position),
				 errdetail("Its handler failed on every attempt: %s",
						   target.seen.parked_error),
				 errhint("The event is in strata.parked_events; fix the "
						 "handler and call strata.retry_parked.")));
	if (!reached)
		subscription_wait_notice(name, &target.seen);
	MemoryContextDelete(target.cxt);
	PG_RETURN_BOOL(reached);
}

/* strata.wait_for under 0.3.0 and 0.4.0 */
Datum
strata_wait_for(PG_FUNCTION_ARGS)
{
	return subscription_wait_for(fcinfo, STRATA_API_0_3);
}

/* strata.wait_for under 0.5.0 */
Datum
strata_wait_for_0_5(PG_FUNCTION_ARGS)
{
	return subscription_wait_for(fcinfo, STRATA_API_0_5);
}

/* strata.wait_for from 0.6.0: positions lost at a failover */
Datum
strata_wait_for_0_6(PG_FUNCTION_ARGS)
{
	return subscription_wait_for(fcinfo, STRATA_API_0_6);
}
