/*-------------------------------------------------------------------------
 *
 * projection.c
 *	  Inline projections: strata.define_projection(), drop_projection(),
 *	  rebuild_projection(), and the hook strata.append() calls after it
 *	  wrote its events.
 *
 * An inline projection's handler runs inside the appending transaction,
 * right after the events are written, once per matching event in version
 * order: a rolled-back append leaves no trace in the read model, and an
 * error in a handler aborts the append.
 *
 * The definitions are cached per backend and the cache is dropped on a
 * relcache invalidation of strata.projections, which define and drop
 * send, so an append costs no query when nothing changed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "strata.h"
#include "define.h"
#include "events.h"
#include "privilege.h"
#include "progress.h"
#include "projection.h"
#include "stream.h"
#include "subscription.h"
#include "subscription_catalog.h"
#include "usercall.h"
#include "version.h"
#include "workers.h"

PG_FUNCTION_INFO_V1(strata_define_projection);
PG_FUNCTION_INFO_V1(strata_define_projection_0_3);
PG_FUNCTION_INFO_V1(strata_define_projection_0_4);
PG_FUNCTION_INFO_V1(strata_drop_projection);
PG_FUNCTION_INFO_V1(strata_drop_projection_0_4);
PG_FUNCTION_INFO_V1(strata_rebuild_projection);
PG_FUNCTION_INFO_V1(strata_rebuild_projection_0_4);

/* Seconds between two progress notices of rebuild_projection */
#define PROJECTION_PROGRESS_SECS 5

/* One cached projection definition */
typedef struct ProjectionDef
{
	char	*name;
	char	*what; /* "handler of projection \"name\"", for messages */
	char	*via;  /* "the handler of projection \"name\"" */
	Oid		 handler;
	Oid		 owner; /* the handler runs as this role */
	UserFunc uf;
	bool	 uf_ready;	  /* uf looked up (lazily, at first call) */
	int		 calls;		  /* calls of the handler under way */
	int		 ncategories; /* 0: all */
	char   **categories;
	int		 ntypes; /* 0: all */
	char   **types;
} ProjectionDef;

static MemoryContext  projection_cxt = NULL;
static ProjectionDef *projection_defs = NULL;
static int			  projection_ndefs = 0;
static bool			  projection_valid = false;
static StrataApi	  projection_cache_api = STRATA_API_NONE; /* loaded for */
static bool			  projection_callback_set = false;

/*
 * Calls of projection_apply_inline() under way in this backend.  While
 * one iterates over the cached definitions, a handler that appends must
 * not reload (and free) them: nested appends use the list as it is.
 */
static int projection_busy = 0;

static Oid projection_relid = InvalidOid;

static void
projection_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == projection_relid)
		projection_valid = false;
}

/* The columns of the query of projection_load_cache() */
enum
{
	PROJ_NAME = 1,
	PROJ_HANDLER,
	PROJ_CATEGORIES,
	PROJ_TYPES,
	PROJ_OWNER
};

/*
 * (Re)load the cached definitions, as the schema of 'api' (0.2.0 or later)
 * records them, if an invalidation dropped them or they were loaded for
 * another version.
 */
static void
projection_load_cache(StrataApi api)
{
	static SPIPlanPtr plans[STRATA_API_LATEST + 1];
	MemoryContext	  old;
	int				  ret;
	PrivScope		  scope;

	Assert(api >= STRATA_API_0_2 && api <= STRATA_API_LATEST);
	if ((projection_valid && projection_cache_api == api) ||
		(projection_busy > 0 && projection_defs != NULL))
		return;

	if (!projection_callback_set)
	{
		CacheRegisterRelcacheCallback(projection_relcache_callback, (Datum) 0);
		projection_callback_set = true;
	}
	if (projection_cxt == NULL)
		projection_cxt = AllocSetContextCreate(
			TopMemoryContext, "strata projections", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(projection_cxt);
	projection_defs = NULL;
	projection_ndefs = 0;

	projection_relid = strata_relid("projections");

	/*
	 * Set valid first: an invalidation arriving during the query clears it
	 * again.  An error clears it too, so that the next append retries
	 * instead of running with no projections.  The query reads the latest
	 * committed definitions, not the caller's snapshot (which may predate
	 * the change that sent the invalidation, e.g. in REPEATABLE READ).
	 */
	projection_valid = true;
	projection_cache_api = api;

	priv_enter(&scope);
	SPI_connect();
	PG_TRY();
	{
		/*
		 * 0.2.0 had inline projections only, and no mode column; before
		 * 0.4.0 no owner was recorded: the function's owner stands in for
		 * it unless it is a superuser, as the upgrade to 0.4.0 decides.
		 */
		bool has_mode = api >= STRATA_API_0_3;
		bool has_owner = api >= STRATA_API_0_4;

		if (plans[api] == NULL)
			(void) strata_prepare(
				&plans[api],
				psprintf("SELECT p.name, p.handler::pg_catalog.oid, "
						 "p.categories, p.types, %s FROM "
						 "strata.projections p %s ORDER BY p.name",
						 has_owner ? "p.owner::pg_catalog.oid"
								   : "(SELECT f.proowner FROM "
									 "pg_catalog.pg_proc f JOIN "
									 "pg_catalog.pg_roles r ON r.oid "
									 "OPERATOR(pg_catalog.=) f.proowner "
									 "WHERE f.oid OPERATOR(pg_catalog.=) "
									 "p.handler AND NOT r.rolsuper)",
						 has_mode ? "WHERE p.mode OPERATOR(pg_catalog.=) "
									"'inline'"
								  : ""),
				0, NULL);
		ret = SPI_execute_snapshot(plans[api], NULL, NULL, GetLatestSnapshot(),
								   InvalidSnapshot, true, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read projections: %s",
				 SPI_result_code_string(ret));
	}
	PG_CATCH();
	{
		projection_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();

	old = MemoryContextSwitchTo(projection_cxt);
	projection_defs = palloc0(sizeof(ProjectionDef) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	   tup = SPI_tuptable->vals[i];
		TupleDesc	   desc = SPI_tuptable->tupdesc;
		ProjectionDef *def = &projection_defs[i];
		bool		   isnull;
		Datum		   d;

		def->name =
			TextDatumGetCString(SPI_getbinval(tup, desc, PROJ_NAME, &isnull));
		def->what = psprintf("handler of projection \"%s\"", def->name);
		def->via = psprintf("the %s", def->what);
		def->handler =
			DatumGetObjectId(SPI_getbinval(tup, desc, PROJ_HANDLER, &isnull));
		def->owner =
			DatumGetObjectId(SPI_getbinval(tup, desc, PROJ_OWNER, &isnull));
		d = SPI_getbinval(tup, desc, PROJ_CATEGORIES, &isnull);
		if (!isnull)
			def->ncategories = define_strings(d, &def->categories);
		d = SPI_getbinval(tup, desc, PROJ_TYPES, &isnull);
		if (!isnull)
			def->ntypes = define_strings(d, &def->types);
	}
	projection_ndefs = (int) SPI_processed;
	MemoryContextSwitchTo(old);
	SPI_finish();
	priv_exit(&scope);
}

/*
 * Does any inline projection take events of 'category', under the SQL
 * API version 'api' of the append?  Called by every append; costs no
 * query while the cached definitions are valid.  The schema of 0.1.0 has
 * no projections: the library serves it until ALTER EXTENSION strata
 * UPDATE, and projects nothing.
 */
bool
projection_inline_wanted(StrataApi api, const char *category)
{
	if (api < STRATA_API_0_2)
		return false;
	projection_load_cache(api);
	for (int i = 0; i < projection_ndefs; i++)
		if (define_in_list(projection_defs[i].categories,
						   projection_defs[i].ncategories, category))
			return true;
	return false;
}

/*
 * Call the handler of 'def' with the event row 'event', as the
 * projection's owner (usercall.c).
 */
static void
projection_call(ProjectionDef *def, Datum event, Datum *row)
{
	UserCallEvent cbarg = {.kind = USERCALL_PROJECTION, .subject = def->name};
	UserFunc	  nested;
	UserFunc *volatile uf = &def->uf;

	if (!def->uf_ready)
	{
		usercall_prepare(&def->uf, def->handler, def->owner, def->what,
						 projection_cxt ? projection_cxt
										: CurrentMemoryContext);
		def->uf_ready = true;
	}
	else
		usercall_check(def->handler, def->owner, def->what);
	/* the owner must still be allowed to see the events it is handed */
	priv_check_read_events(def->owner, def->via);

	/*
	 * A handler that appends to a stream it projects calls itself again
	 * before it returns.  The cached FmgrInfo keeps per-call state (for SQL
	 * functions, their running executor), so a nested call gets its own.
	 */
	if (def->calls > 0)
	{
		usercall_prepare(&nested, def->handler, def->owner, def->what,
						 CurrentMemoryContext);
		uf = &nested;
	}

	cbarg.stream = row[Anum_events_stream - 1];
	cbarg.version = DatumGetInt64(row[Anum_events_version - 1]);
	usercall_context_push(&cbarg);

	def->calls++;
	PG_TRY();
	{
		usercall_void(uf, 1, &event);
	}
	PG_FINALLY();
	{
		def->calls--;
	}
	PG_END_TRY();

	usercall_context_pop(&cbarg);
}

/*
 * Run every inline projection that matches the event 'row' (the columns
 * of strata.events, in table order) of 'category' and 'type', under the
 * SQL API version 'api' (0.2.0 or later) of the append, after
 * projection_inline_wanted() said some may.
 */
void
projection_apply_inline(StrataApi api, Datum *row, const char *category,
						const char *type)
{
	TupleDesc volatile desc = NULL;
	volatile Datum event = (Datum) 0;

	projection_load_cache(api);
	projection_busy++;
	PG_TRY();
	{
		for (int i = 0; i < projection_ndefs; i++)
		{
			ProjectionDef *def = &projection_defs[i];

			if (!define_in_list(def->categories, def->ncategories, category) ||
				!define_in_list(def->types, def->ntypes, type))
				continue;

			if (desc == NULL)
			{
				bool nulls[Natts_events] = {false};

				desc = lookup_rowtype_tupdesc(define_events_type(), -1);
				events_check_desc(desc);
				event = HeapTupleGetDatum(heap_form_tuple(desc, row, nulls));
			}
			projection_call(def, event, row);
		}
	}
	PG_FINALLY();
	{
		projection_busy--;
	}
	PG_END_TRY();
	if (desc != NULL)
		ReleaseTupleDesc(desc);
}

/*
 * Keep the subscription of projection 'name' in step with its mode: an
 * async projection runs as the subscription of the same name (created
 * from the beginning, or from now when an inline projection becomes
 * async: its read model is up to date), an inline one has none.
 * Connected to SPI.
 */
static void
projection_sync_subscription(const char *name, bool async, bool was_inline,
							 Datum *args, const char *nulls, Oid owner)
{
	bool exists;

	if (!subcat_lock_projection(name, &exists) && exists)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("subscription \"%s\" already exists", name),
				 errdetail("An async projection runs as the subscription of "
						   "its name."),
				 errhint("Choose another name for the projection.")));

	if (!async)
	{
		if (exists)
			subcat_change(name, SUBCAT_DROP);
	}
	else if (exists)
		subcat_redefine(name, args, nulls);
	else
		subscription_insert(name, DatumGetObjectId(args[1]), args[2],
							nulls[2] == 'n', args[3], nulls[3] == 'n',
							!was_inline, false, name, owner);
	workers_wake_at_commit();
}

/*
 * strata.define_projection(name text, handler regprocedure, categories
 * text[], types text[], mode text): create or replace a projection.
 * The body of the 0.4.0 entry point below.
 */
static Datum
projection_define(FunctionCallInfo fcinfo)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[6] = {TEXTOID,	   OIDOID,	TEXTARRAYOID,
									 TEXTARRAYOID, TEXTOID, REGROLEOID};
	Datum			  args[6];
	char			  nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Oid				  evtype;
	char			 *name;
	bool			  async = false;
	bool			  was_inline = false;
	Oid				  caller = GetUserId();
	Oid				  owner;
	PrivScope		  scope;

	strata_require_preload();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("name and handler must not be null")));

	name = define_name_arg(PG_GETARG_TEXT_PP(0), "projection name");
	args[0] = CStringGetTextDatum(name);
	args[1] = PG_GETARG_DATUM(1);
	evtype = define_events_type();
	define_check_function(DatumGetObjectId(args[1]), "projection handler", 1,
						  &evtype, VOIDOID,
						  "(event strata.events) RETURNS void");
	for (int i = 2; i < 4; i++)
	{
		if (PG_ARGISNULL(i))
		{
			nulls[i] = 'n';
			args[i] = (Datum) 0;
			continue;
		}
		define_check_list(PG_GETARG_ARRAYTYPE_P(i),
						  i == 2 ? "categories" : "types", i == 2);
		args[i] = PG_GETARG_DATUM(i);
	}
	{
		char *mode;

		if (PG_ARGISNULL(4))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("mode must not be null")));
		mode = TextDatumGetCString(PG_GETARG_DATUM(4));
		if (strcmp(mode, "async") == 0)
			async = true;
		else if (strcmp(mode, "inline") != 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid projection mode \"%s\"", mode),
							errhint("Use 'inline' or 'async'.")));
		args[4] = CStringGetTextDatum(mode);
	}

	/* the handler will see every event it takes, history included */
	priv_check_read_events(caller, "strata.define_projection");
	subscription_check_not_own(name);
	PreventCommandIfReadOnly("strata.define_projection()");
	priv_enter(&scope);
	SPI_connect();
	owner = define_lock_owner("projections", "name", args[0], caller,
							  psprintf("projection \"%s\"", name));
	if (owner != caller)
		usercall_check(DatumGetObjectId(args[1]), owner,
					   psprintf("handler of projection \"%s\"", name));
	args[5] = ObjectIdGetDatum(owner);
	{
		static SPIPlanPtr plan_old = NULL;

		if (SPI_execute_plan(
				strata_prepare(&plan_old,
							   "SELECT mode FROM strata.projections WHERE "
							   "name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							   1, argtypes),
				args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read strata.projections");
		if (SPI_processed > 0)
		{
			bool isnull;

			was_inline = strcmp(TextDatumGetCString(SPI_getbinval(
									SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)),
								"inline") == 0;
		}
	}
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"INSERT INTO strata.projections (name, handler, "
				"categories, types, mode, owner) VALUES ($1, $2, $3, "
				"$4, $5, $6) ON CONFLICT (name) DO UPDATE SET handler = "
				"EXCLUDED.handler, categories = EXCLUDED.categories, "
				"types = EXCLUDED.types, mode = EXCLUDED.mode, "
				"owner = coalesce(strata.projections.owner, "
				"EXCLUDED.owner), defined_at = pg_catalog.now() "
				"WHERE strata.projections.owner IS NULL OR "
				"strata.projections.owner::"
				"pg_catalog.oid OPERATOR(pg_catalog.=) "
				"$6::pg_catalog.oid",
				6, argtypes),
			args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the projection");
	define_check_upserted("projections", "name", args[0], caller,
						  psprintf("projection \"%s\"", name));
	projection_sync_subscription(name, async, was_inline, args, nulls, owner);
	SPI_finish();
	priv_exit(&scope);
	define_invalidate("projections");
	PG_RETURN_VOID();
}

/*
 * strata.define_projection under 0.2.0 (four arguments) and 0.3.0 (with
 * a mode): refused, those versions record no owners
 */
Datum
strata_define_projection(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

Datum
strata_define_projection_0_3(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_3);
	PG_RETURN_VOID(); /* not reached */
}

/* under 0.4.0 */
Datum
strata_define_projection_0_4(PG_FUNCTION_ARGS)
{
	return projection_define(fcinfo);
}

/* strata.drop_projection under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_drop_projection(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

/* strata.drop_projection(name text) under 0.4.0: forget a projection */
Datum
strata_drop_projection_0_4(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_sub = NULL;
	char			 *object =
		psprintf("projection \"%s\"", TextDatumGetCString(PG_GETARG_DATUM(0)));

	strata_require_preload();
	subscription_check_not_own(TextDatumGetCString(PG_GETARG_DATUM(0)));
	/* the projection first: its owner check covers its subscription */
	if (define_delete(&plan,
					  "DELETE FROM strata.projections "
					  "WHERE name OPERATOR(pg_catalog.=) $1 "
					  "RETURNING owner::pg_catalog.oid",
					  PG_GETARG_DATUM(0), "strata.drop_projection()",
					  GetUserId(), object) == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("projection \"%s\" does not exist",
							   TextDatumGetCString(PG_GETARG_DATUM(0)))));
	(void) define_delete(&plan_sub,
						 "DELETE FROM strata.subscriptions WHERE "
						 "projection OPERATOR(pg_catalog.=) $1",
						 PG_GETARG_DATUM(0), "strata.drop_projection()",
						 GetUserId(), NULL);
	workers_wake_at_commit();
	workers_cancel_at_commit(TextDatumGetCString(PG_GETARG_DATUM(0)));
	define_invalidate("projections");
	PG_RETURN_VOID();
}

/*
 * Call the reset function of a rebuild, as the projection's owner, and
 * make what it did visible.
 */
static void
projection_call_reset(Oid reset, Oid owner, const char *name)
{
	UserFunc uf;

	define_check_function(reset, "reset function", 0, NULL, VOIDOID,
						  "() RETURNS void");
	usercall_prepare(&uf, reset, owner,
					 psprintf("reset function of projection \"%s\"", name),
					 CurrentMemoryContext);
	usercall_void(&uf, 0, NULL);
	CommandCounterIncrement();
}

/*
 * Rebuild of an async projection: send the projection's subscription back
 * to the beginning, then call the reset function; the worker replays the
 * events once this commits.  Connected to SPI.
 */
static void
projection_rebuild_async(FunctionCallInfo fcinfo, Datum name_d,
						 const char *name, Oid owner)
{
	/*
	 * The subscription first: its row lock makes a batch of the worker that
	 * has not updated it yet wait and then fail on the new generation (its
	 * writes roll back), and a batch that already holds it commit before
	 * this goes on, so that the reset below sees (and resets) its writes.
	 */
	subcat_restart_projection(name_d);
	if (!PG_ARGISNULL(1))
		projection_call_reset(PG_GETARG_OID(1), owner, name);
	workers_wake_at_commit();
	workers_cancel_at_commit(name);
	ereport(NOTICE,
			(errmsg("async projection \"%s\" is being rebuilt by the strata "
					"worker",
					name),
			 errhint("Follow it in strata.subscription_status, or wait for "
					 "it with strata.wait_for.")));
}

/* strata.rebuild_projection under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_rebuild_projection(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

/*
 * strata.rebuild_projection(name text, reset regprocedure) RETURNS bigint,
 * under 0.4.0: call the reset function, then replay every matching event
 * in position order through the projection's handler; returns the number
 * replayed.
 */
Datum
strata_rebuild_projection_0_4(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_def = NULL;
	static SPIPlanPtr plan_count = NULL;
	static SPIPlanPtr plan_scan = NULL;
	Oid				  argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum			  name_d;
	char			 *name;
	Oid				  texttype = TEXTOID;
	Datum			  args[2];
	char			  nulls[2];
	ProjectionDef	  def;
	int64			  total;
	int64			  last = 0;
	volatile int64	  done = 0;
	Portal			  portal;
	TimestampTz		  last_notice;
	MemoryContext	  eventcxt;
	MemoryContext	  old;
	Oid				  caller = GetUserId();
	PrivScope		  scope;

	/* the columns of the query of the definition */
	enum
	{
		REBUILD_HANDLER = 1,
		REBUILD_CATEGORIES,
		REBUILD_TYPES,
		REBUILD_MODE,
		REBUILD_OWNER
	};

	strata_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("name must not be null")));
	name_d = PG_GETARG_DATUM(0);
	name = TextDatumGetCString(name_d);
	PreventCommandIfReadOnly("strata.rebuild_projection()");
	subscription_check_not_own(name);

	priv_enter(&scope);
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan_def,
				"SELECT handler::pg_catalog.oid, categories, types, "
				"mode, owner::pg_catalog.oid FROM "
				"strata.projections WHERE name "
				"OPERATOR(pg_catalog.=) $1 FOR UPDATE",
				1, &texttype),
			&name_d, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the projection");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("projection \"%s\" does not exist", name)));
	{
		bool  isnull;
		Datum mode =
			SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						  REBUILD_MODE, &isnull);

		memset(&def, 0, sizeof(def));
		def.name = name;
		def.what = psprintf("handler of projection \"%s\"", name);
		def.via = psprintf("the %s", def.what);
		def.handler = DatumGetObjectId(
			SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						  REBUILD_HANDLER, &isnull));
		def.owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc,
												   REBUILD_OWNER, &isnull));
		priv_check_owner(caller, def.owner, "rebuild",
						 psprintf("projection \"%s\"", name));
		priv_check_read_events(def.owner, "strata.rebuild_projection");
		if (strcmp(TextDatumGetCString(mode), "async") == 0)
		{
			projection_rebuild_async(fcinfo, name_d, name, def.owner);
			SPI_finish();
			priv_exit(&scope);
			PG_RETURN_INT64(0);
		}
		/* args: the categories, then the types */
		for (int i = 0; i < 2; i++)
		{
			args[i] =
				SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							  REBUILD_CATEGORIES + i, &isnull);
			nulls[i] = isnull ? 'n' : ' ';
			if (!isnull)
				args[i] = PointerGetDatum(DatumGetArrayTypePCopy(args[i]));
		}
	}
	usercall_prepare(&def.uf, def.handler, def.owner, def.what,
					 CurrentMemoryContext);
	def.uf_ready = true;

	/* The reset function, then a snapshot that sees what it did */
	if (!PG_ARGISNULL(1))
		projection_call_reset(PG_GETARG_OID(1), def.owner, name);

	if (SPI_execute_plan(
			strata_prepare(
				&plan_count,
				"SELECT pg_catalog.count(*), "
				"COALESCE(pg_catalog.max(position), 0) "
				"FROM strata.events WHERE "
				"($1 IS NULL OR category OPERATOR(pg_catalog.=) ANY ($1)) AND "
				"($2 IS NULL OR type OPERATOR(pg_catalog.=) ANY ($2))",
				2, argtypes),
			args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the events");
	{
		bool isnull;

		total = DatumGetInt64(SPI_getbinval(
			SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		last = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 2, &isnull));
	}

	portal = SPI_cursor_open(
		NULL,
		strata_prepare(
			&plan_scan,
			"SELECT e FROM strata.events e WHERE "
			"($1 IS NULL OR category OPERATOR(pg_catalog.=) ANY ($1)) AND "
			"($2 IS NULL OR type OPERATOR(pg_catalog.=) ANY ($2)) "
			"ORDER BY position",
			2, argtypes),
		args, nulls, false);

	eventcxt = AllocSetContextCreate(
		CurrentMemoryContext, "strata rebuild event", ALLOCSET_DEFAULT_SIZES);
	last_notice = GetCurrentTimestamp();

	/* every session sees how far it is in strata.progress */
	(void) progress_begin(PROGRESS_REBUILD, name, def.owner, 0, last, total);
	PG_TRY();
	{
		for (;;)
		{
			SPI_cursor_fetch(portal, true, 1000);
			if (SPI_processed == 0)
				break;
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				bool		  isnull;
				Datum		  event = SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1, &isnull);
				Datum		  row[Natts_events];
				bool		  rownulls[Natts_events];
				HeapTupleData tmp;
				TupleDesc	  desc;

				CHECK_FOR_INTERRUPTS();
				old = MemoryContextSwitchTo(eventcxt);

				/* the columns, for the error context */
				desc = lookup_rowtype_tupdesc(define_events_type(), -1);
				events_check_desc(desc);
				tmp.t_len = HeapTupleHeaderGetDatumLength(
					DatumGetHeapTupleHeader(event));
				tmp.t_data = DatumGetHeapTupleHeader(event);
				heap_deform_tuple(&tmp, desc, row, rownulls);
				ReleaseTupleDesc(desc);

				projection_call(&def, event, row);
				progress_advance(DatumGetInt64(row[Anum_events_position - 1]),
								 1);
				MemoryContextSwitchTo(old);
				MemoryContextReset(eventcxt);
				done++;

				if (TimestampDifferenceExceeds(
						last_notice, GetCurrentTimestamp(),
						PROJECTION_PROGRESS_SECS * 1000))
				{
					ereport(
						NOTICE,
						(errmsg("rebuilding projection \"%s\": " INT64_FORMAT
								" of " INT64_FORMAT " events",
								name, done, total)));
					last_notice = GetCurrentTimestamp();
				}
			}
			SPI_freetuptable(SPI_tuptable);
		}
	}
	PG_FINALLY();
	{
		progress_end();
	}
	PG_END_TRY();
	SPI_cursor_close(portal);
	MemoryContextDelete(eventcxt);
	SPI_finish();
	priv_exit(&scope);

	ereport(NOTICE,
			(errmsg("projection \"%s\" rebuilt from " INT64_FORMAT " events",
					name, done)));
	PG_RETURN_INT64(done);
}
