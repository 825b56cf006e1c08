/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  Aggregates: strata.define_aggregate(), drop_aggregate() and load().
 *
 * An aggregate's state is the fold of its stream with a reducer
 * (state jsonb, event strata.events) RETURNS jsonb, from an initial state.
 * The fold runs here, in C: the reducer is called through the function
 * manager once per event, with the events read by one index range scan.
 *
 * Snapshots are written by load(), when it folded at least snapshot_every
 * events past the snapshot it started from.  Writing them at load costs
 * the writers nothing (append never runs a reducer), needs no background
 * process, and happens exactly where the state is already in hand; a
 * stream that is never loaded never gets snapshots it does not need.  In
 * a read-only transaction or on a hot standby, load just does not write
 * them.
 *
 * The reducer runs as the aggregate's owner (usercall.c), one scope for
 * the whole fold; the caller of load needs SELECT on strata.events, since
 * the state is made of events.
 *
 * A snapshot records the definition that produced it (definition_id, new
 * at every define_aggregate) and a fingerprint of the reducer's source; a
 * redefined aggregate or a reducer replaced with CREATE OR REPLACE never
 * resumes from an old snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "strata.h"
#include "compat.h"
#include "aggregate.h"
#include "define.h"
#include "events.h"
#include "privilege.h"
#include "stream.h"
#include "usercall.h"
#include "version.h"

PG_FUNCTION_INFO_V1(strata_define_aggregate);
PG_FUNCTION_INFO_V1(strata_define_aggregate_0_4);
PG_FUNCTION_INFO_V1(strata_drop_aggregate);
PG_FUNCTION_INFO_V1(strata_drop_aggregate_0_4);
PG_FUNCTION_INFO_V1(strata_load);
PG_FUNCTION_INFO_V1(strata_load_0_4);

/* An aggregate definition, as read for one load */
typedef struct AggregateDef
{
	Oid	   reducer;
	Oid	   owner; /* the reducer runs as this role */
	Jsonb *initial_state;
	int32  snapshot_every;
	int64  definition_id;
	int64  fingerprint;
	char  *what; /* "reducer of the aggregate ...", for messages */
} AggregateDef;

/*
 * A fingerprint of a function's definition (its source, its binary, its
 * language), so that CREATE OR REPLACE of a reducer is noticed.
 */
static int64
aggregate_fingerprint(Oid funcid)
{
	HeapTuple	 tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Datum		 d;
	bool		 isnull;
	uint64		 h;
	Form_pg_proc proc;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
						errmsg("reducer function with OID %u does not exist",
							   funcid)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	h = hash_bytes_uint32_extended(proc->prolang, 0);
	d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
	if (!isnull)
	{
		text *t = DatumGetTextPP(d);

		h = hash_bytes_extended((unsigned char *) VARDATA_ANY(t),
								VARSIZE_ANY_EXHDR(t), h);
	}
	d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_probin, &isnull);
	if (!isnull)
	{
		text *t = DatumGetTextPP(d);

		h = hash_bytes_extended((unsigned char *) VARDATA_ANY(t),
								VARSIZE_ANY_EXHDR(t), h);
	}
	ReleaseSysCache(tup);
	return (int64) h;
}

/* The columns of the query of aggregate_lookup() */
enum
{
	AGG_REDUCER = 1,
	AGG_INITIAL_STATE,
	AGG_SNAPSHOT_EVERY,
	AGG_DEFINITION_ID,
	AGG_FINGERPRINT,
	AGG_OWNER
};

/*
 * Read the definition of the aggregate of 'category', as the schema of
 * 'api' records it; 42704 if none.
 */
static void
aggregate_lookup(const char *category, AggregateDef *def, StrataApi api)
{
	MemoryContext	  caller = CurrentMemoryContext;
	static SPIPlanPtr plans[2] = {NULL, NULL};
	Oid				  argtypes[1] = {TEXTOID};
	Datum			  arg = CStringGetTextDatum(category);
	HeapTuple		  tup;
	TupleDesc		  desc;
	bool			  isnull;

	/*
	 * before 0.4.0 no owner was recorded: the reducer's owner stands in,
	 * unless it is a superuser (as the upgrade to 0.4.0 decides)
	 */
	int has_owner = api >= STRATA_API_0_4;

	SPI_connect();
	if (plans[has_owner] == NULL)
		(void) strata_prepare(
			&plans[has_owner],
			psprintf("SELECT a.reducer::pg_catalog.oid, a.initial_state, "
					 "a.snapshot_every, a.definition_id, "
					 "a.reducer_fingerprint, %s FROM strata.aggregates a "
					 "WHERE a.category OPERATOR(pg_catalog.=) $1",
					 has_owner ? "a.owner::pg_catalog.oid"
							   : "(SELECT f.proowner FROM pg_catalog.pg_proc "
								 "f JOIN pg_catalog.pg_roles r ON r.oid "
								 "OPERATOR(pg_catalog.=) f.proowner WHERE "
								 "f.oid OPERATOR(pg_catalog.=) a.reducer AND "
								 "NOT r.rolsuper)"),
			1, argtypes);
	if (SPI_execute_plan(plans[has_owner], &arg, NULL, true, 1) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not read the aggregate definition");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("no aggregate is defined for category \"%s\"",
							   category),
						errhint("Define one with strata.define_aggregate.")));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	def->reducer =
		DatumGetObjectId(SPI_getbinval(tup, desc, AGG_REDUCER, &isnull));
	def->initial_state = strata_spi_jsonb(0, AGG_INITIAL_STATE, caller);
	def->snapshot_every =
		DatumGetInt32(SPI_getbinval(tup, desc, AGG_SNAPSHOT_EVERY, &isnull));
	def->definition_id =
		DatumGetInt64(SPI_getbinval(tup, desc, AGG_DEFINITION_ID, &isnull));
	def->fingerprint =
		DatumGetInt64(SPI_getbinval(tup, desc, AGG_FINGERPRINT, &isnull));
	def->owner =
		DatumGetObjectId(SPI_getbinval(tup, desc, AGG_OWNER, &isnull));
	if (isnull)
		def->owner = InvalidOid; /* the reducer was dropped */
	SPI_finish();
}

/*
 * Find the newest usable snapshot of 'stream' at or below 'at_version':
 * returns its state (NULL when there is none) and sets *version.
 */
static Jsonb *
aggregate_find_snapshot(const char *stream, AggregateDef *def,
						int64 at_version, int64 *version)
{
	MemoryContext	  caller = CurrentMemoryContext;
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[3] = {TEXTOID, INT8OID, INT8OID};
	Datum			  args[3];
	Jsonb			 *state = NULL;

	args[0] = CStringGetTextDatum(stream);
	args[1] = Int64GetDatum(def->definition_id);
	args[2] = Int64GetDatum(at_version);
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT version, state FROM strata.snapshots "
						   "WHERE stream OPERATOR(pg_catalog.=) $1 "
						   "AND definition_id OPERATOR(pg_catalog.=) $2 "
						   "AND version OPERATOR(pg_catalog.<=) $3 "
						   "ORDER BY version DESC LIMIT 1",
						   3, argtypes),
			args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read snapshots");
	if (SPI_processed == 1)
	{
		bool isnull;

		*version = DatumGetInt64(SPI_getbinval(
			SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		state = strata_spi_jsonb(0, 2, caller);
	}
	SPI_finish();
	return state;
}

/*
 * Save a snapshot, unless this transaction cannot write, or the session
 * has temporary objects: a reducer that reads a table by an unqualified
 * name could have found one of the caller's (pg_temp is on its path), and
 * a snapshot is shared with every later load.
 */
static void
aggregate_save_snapshot(const char *stream, const char *category,
						AggregateDef *def, int64 version, Jsonb *state)
{
	static SPIPlanPtr plan = NULL;
	Oid	  argtypes[5] = {TEXTOID, TEXTOID, INT8OID, INT8OID, JSONBOID};
	Datum args[5];

	Oid temp_nsp;
	Oid temp_toast_nsp;

	GetTempNamespaceState(&temp_nsp, &temp_toast_nsp);
	if (RecoveryInProgress() || XactReadOnly || IsInParallelMode() ||
		OidIsValid(temp_nsp))
		return;

	args[0] = CStringGetTextDatum(stream);
	args[1] = CStringGetTextDatum(category);
	args[2] = Int64GetDatum(def->definition_id);
	args[3] = Int64GetDatum(version);
	args[4] = JsonbPGetDatum(state);
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"INSERT INTO strata.snapshots (stream, category, "
				"definition_id, version, state) VALUES ($1, $2, $3, "
				"$4, $5) ON CONFLICT DO NOTHING",
				5, argtypes),
			args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not save a snapshot");
	SPI_finish();
}

/*
 * Fold the events of 'stream' with versions in [from, to] into 'state'
 * with the reducer of 'def'.  Returns the new state, allocated in the
 * caller's memory context, and sets *last to the last version folded
 * (unchanged when there was none).
 */
static Jsonb *
aggregate_fold(const char *stream, AggregateDef *def, Jsonb *state, int64 from,
			   int64 to, int64 *last)
{
	MemoryContext	caller = CurrentMemoryContext;
	MemoryContext	statecxt[2];
	MemoryContext	eventcxt;
	int				cur = 0;
	Relation		rel;
	Relation		index;
	IndexScanDesc	scan;
	TupleTableSlot *slot;
	ScanKeyData		keys[3];
	UserFunc		uf;
	PrivScope		scope;
	UserCallEvent	cbarg = {.kind = USERCALL_REDUCER};
	Datum			st;

	usercall_prepare(&uf, def->reducer, def->owner, def->what, caller);

	statecxt[0] = AllocSetContextCreate(caller, "strata fold state A",
										ALLOCSET_DEFAULT_SIZES);
	statecxt[1] = AllocSetContextCreate(caller, "strata fold state B",
										ALLOCSET_DEFAULT_SIZES);
	eventcxt = AllocSetContextCreate(caller, "strata fold event",
									 ALLOCSET_DEFAULT_SIZES);
	st = PointerGetDatum(state);

	rel = table_open(strata_relid(EVENTS_RELNAME), AccessShareLock);
	events_check_desc(RelationGetDescr(rel));
	index =
		index_open(strata_relid("events_stream_version_key"), AccessShareLock);
	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ,
						   CStringGetTextDatum(stream));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTGreaterEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8GE,
						   Int64GetDatum(from));
	ScanKeyEntryInitialize(&keys[2], 0, 2, BTLessEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT8LE,
						   Int64GetDatum(to));
	slot = table_slot_create(rel, NULL);
	scan = compat_index_beginscan(rel, index, GetActiveSnapshot(), 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);

	cbarg.stream_cstr = stream;
	cbarg.reducer = def->reducer;
	cbarg.version = from;
	usercall_context_push(&cbarg);

	/* one scope for the fold: one owner, its settings rolled back after */
	usercall_begin(&scope, def->owner);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool  isnull;
		Datum result;
		Datum args[2];

		CHECK_FOR_INTERRUPTS();
		cbarg.version =
			DatumGetInt64(slot_getattr(slot, Anum_events_version, &isnull));

		MemoryContextSwitchTo(eventcxt);
		args[0] = st;
		args[1] = ExecFetchSlotHeapTupleDatum(slot);
		result = usercall_invoke(&uf, &scope, 2, args, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_STRATA_INVALID_RESULT),
					 errmsg("reducer %s returned NULL",
							format_procedure(def->reducer)),
					 errhint("A reducer returns the new state, a jsonb value; "
							 "return the state unchanged to ignore an "
							 "event.")));

		/* keep the new state, free the old one and the call's garbage */
		MemoryContextSwitchTo(statecxt[1 - cur]);
		st = PointerGetDatum(PG_DETOAST_DATUM_COPY(result));
		MemoryContextReset(statecxt[cur]);
		cur = 1 - cur;
		MemoryContextReset(eventcxt);
		*last = cbarg.version;
	}
	usercall_end(&scope);
	usercall_context_pop(&cbarg);
	MemoryContextSwitchTo(caller);

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);

	state = DatumGetJsonbPCopy(st);
	MemoryContextDelete(statecxt[0]);
	MemoryContextDelete(statecxt[1]);
	MemoryContextDelete(eventcxt);
	return state;
}

/*
 * Load the state of 'stream' (of 'category') as of 'at_version'
 * (AGGREGATE_HEAD for the latest): start from the newest usable
 * snapshot, fold the events after it, save a snapshot when due.  Returns
 * the state and sets *version to the version it reflects (-1: no event).
 * Reads under a fresh snapshot, so that a retry sees what committed.
 * 'api' is the SQL API version of the caller's entry point.  With
 * 'may_save' false no snapshot is written (a command's retry, which holds
 * the stream's lock, must not wait for another session's snapshot: that
 * session may be waiting for the lock).
 */
Jsonb *
aggregate_load(const char *stream, const char *category, int64 at_version,
			   int64 *version, StrataApi api, bool may_save)
{
	AggregateDef def;
	Jsonb		*state = NULL;
	int64		 start = -1;
	int64		 last;
	bool		 snapshots;
	PrivScope	 scope;

	/* The definition, the snapshots and the events, all under one snapshot */
	PushActiveSnapshot(GetTransactionSnapshot());

	/* the caller's right to the events was checked by its entry point */
	priv_enter(&scope);
	aggregate_lookup(category, &def, api);
	def.what =
		psprintf("reducer of the aggregate of category \"%s\"", category);
	usercall_check(def.reducer, def.owner, def.what);
	priv_check_read_events(def.owner, psprintf("the %s", def.what));

	snapshots = def.snapshot_every > 0;
	if (snapshots && aggregate_fingerprint(def.reducer) != def.fingerprint)
	{
		ereport(WARNING,
				(errmsg("reducer %s changed since the aggregate of category "
						"\"%s\" was defined",
						format_procedure(def.reducer), category),
				 errdetail("Snapshots are neither used nor written."),
				 errhint("Call strata.define_aggregate again to start new "
						 "snapshots with the new reducer.")));
		snapshots = false;
	}

	if (snapshots)
		state = aggregate_find_snapshot(stream, &def, at_version, &start);
	if (state == NULL)
	{
		state = def.initial_state;
		start = -1;
	}

	last = start;
	if (at_version > start)
		state =
			aggregate_fold(stream, &def, state, start + 1, at_version, &last);

	if (may_save && snapshots && last - start >= def.snapshot_every &&
		last >= 0)
		aggregate_save_snapshot(stream, category, &def, last, state);

	priv_exit(&scope);
	PopActiveSnapshot();
	*version = last;
	return state;
}

/*
 * strata.load(stream text, at_version bigint, OUT state jsonb, OUT version
 * bigint): the aggregate's state and the version it reflects.  The body of
 * the entry points of the SQL API versions below.
 */
static Datum
aggregate_load_entry(FunctionCallInfo fcinfo, StrataApi api)
{
	char	 *category;
	char	 *stream;
	int64	  at_version = AGGREGATE_HEAD;
	int64	  version;
	Jsonb	 *state;
	TupleDesc desc;
	Datum	  values[2];
	bool	  nulls[2] = {false, false};

	strata_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("stream must not be null")));
	stream = stream_name_arg(PG_GETARG_TEXT_PP(0), &category);
	if (!PG_ARGISNULL(1))
	{
		at_version = PG_GETARG_INT64(1);
		if (at_version < -1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("at_version must be -1 or more"),
					 errdetail("at_version is " INT64_FORMAT ".", at_version),
					 errhint("Pass NULL for the latest state.")));
	}

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "strata.load must return a composite type");
	desc = BlessTupleDesc(desc);

	/* the state is made of the events: the caller must be able to read them */
	priv_check_read_events(GetUserId(), "strata.load");

	state = aggregate_load(stream, category, at_version, &version, api, true);
	values[0] = JsonbPGetDatum(state);
	values[1] = Int64GetDatum(version);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* strata.load under 0.2.0 and 0.3.0: no owners */
Datum
strata_load(PG_FUNCTION_ARGS)
{
	return aggregate_load_entry(fcinfo, STRATA_API_0_2);
}

/* under 0.4.0: the reducer runs as the aggregate's owner */
Datum
strata_load_0_4(PG_FUNCTION_ARGS)
{
	return aggregate_load_entry(fcinfo, STRATA_API_0_4);
}

/*
 * strata.define_aggregate(category text, reducer regprocedure,
 * initial_state jsonb, snapshot_every int): create or replace the
 * aggregate of a category.  Every call starts a new definition, whose
 * snapshots start afresh.  The body of the 0.4.0 entry point below.
 */
static Datum
aggregate_define(FunctionCallInfo fcinfo)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_clean = NULL;
	Oid				  argtypes[6] = {TEXTOID, OIDOID,  JSONBOID,
									 INT4OID, INT8OID, REGROLEOID};
	Datum			  args[6];
	Oid				  reducer_args[2];
	text			 *cat;
	char			 *category;
	Oid				  caller = GetUserId();
	Oid				  owner;
	PrivScope		  scope;

	strata_require_preload();
	define_check_not_null(fcinfo, 4, "strata.define_aggregate");
	cat = PG_GETARG_TEXT_PP(0);
	category =
		stream_validate_category(VARDATA_ANY(cat), VARSIZE_ANY_EXHDR(cat));

	reducer_args[0] = JSONBOID;
	reducer_args[1] = define_events_type();
	define_check_function(PG_GETARG_OID(1), "reducer", 2, reducer_args,
						  JSONBOID,
						  "(state jsonb, event strata.events) RETURNS jsonb");
	if (PG_GETARG_INT32(3) < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("snapshot_every must not be negative"),
						errhint("Pass 0 to turn snapshots off.")));

	args[0] = CStringGetTextDatum(category);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = PG_GETARG_DATUM(2);
	args[3] = PG_GETARG_DATUM(3);
	args[4] = Int64GetDatum(aggregate_fingerprint(PG_GETARG_OID(1)));

	PreventCommandIfReadOnly("strata.define_aggregate()");
	/* the reducer will fold the category's events */
	priv_check_read_events(caller, "strata.define_aggregate");
	priv_enter(&scope);
	SPI_connect();
	owner = define_lock_owner(
		"aggregates", "category", args[0], caller,
		psprintf("the aggregate of category \"%s\"", category));
	if (owner != caller)
		usercall_check(
			PG_GETARG_OID(1), owner,
			psprintf("reducer of the aggregate of category \"%s\"", category));
	args[5] = ObjectIdGetDatum(owner);
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"INSERT INTO strata.aggregates (category, reducer, "
				"initial_state, snapshot_every, reducer_fingerprint, owner) "
				"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (category) DO "
				"UPDATE "
				"SET reducer = EXCLUDED.reducer, initial_state = "
				"EXCLUDED.initial_state, snapshot_every = "
				"EXCLUDED.snapshot_every, reducer_fingerprint = "
				"EXCLUDED.reducer_fingerprint, owner = "
				"coalesce(strata.aggregates.owner, EXCLUDED.owner), "
				"definition_id = "
				"pg_catalog.nextval('strata._definition_seq'), defined_at = "
				"pg_catalog.now() "
				"WHERE strata.aggregates.owner IS NULL OR "
				"strata.aggregates.owner::"
				"pg_catalog.oid OPERATOR(pg_catalog.=) $6::pg_catalog.oid",
				6, argtypes),
			args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the aggregate");
	define_check_upserted(
		"aggregates", "category", args[0], caller,
		psprintf("the aggregate of category \"%s\"", category));
	/* The old definition's snapshots can never be used again */
	if (SPI_execute_plan(
			strata_prepare(
				&plan_clean,
				"DELETE FROM strata.snapshots s USING strata.aggregates a "
				"WHERE s.category OPERATOR(pg_catalog.=) $1 "
				"AND a.category OPERATOR(pg_catalog.=) $1 "
				"AND s.definition_id OPERATOR(pg_catalog.<>) a.definition_id",
				1, argtypes),
			args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete old snapshots");
	SPI_finish();
	priv_exit(&scope);
	PG_RETURN_VOID();
}

/* strata.define_aggregate under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_define_aggregate(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

/* under 0.4.0 */
Datum
strata_define_aggregate_0_4(PG_FUNCTION_ARGS)
{
	return aggregate_define(fcinfo);
}

/* strata.drop_aggregate under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_drop_aggregate(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

/* strata.drop_aggregate(category text) under 0.4.0: forget an aggregate */
Datum
strata_drop_aggregate_0_4(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_clean = NULL;

	strata_require_preload();
	if (define_delete(&plan,
					  "DELETE FROM strata.aggregates "
					  "WHERE category OPERATOR(pg_catalog.=) $1 "
					  "RETURNING owner::pg_catalog.oid",
					  PG_GETARG_DATUM(0), "strata.drop_aggregate()",
					  GetUserId(),
					  psprintf("the aggregate of category \"%s\"",
							   TextDatumGetCString(PG_GETARG_DATUM(0)))) == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("no aggregate is defined for category \"%s\"",
							   TextDatumGetCString(PG_GETARG_DATUM(0)))));
	(void) define_delete(&plan_clean,
						 "DELETE FROM strata.snapshots "
						 "WHERE category OPERATOR(pg_catalog.=) $1",
						 PG_GETARG_DATUM(0), "strata.drop_aggregate()",
						 GetUserId(), NULL);
	PG_RETURN_VOID();
}
