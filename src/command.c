/*-------------------------------------------------------------------------
 *
 * command.c
 *	  Command handlers: strata.define_command(), drop_command() and
 *	  execute().
 *
 * execute() loads the aggregate, calls the handler of the command's type
 * with (state, command), and appends the one event it returns with the
 * loaded version as expected version.  Each attempt runs in a
 * subtransaction: when another writer got there first (ST001), the
 * attempt is rolled back and the command is reloaded and retried, up to
 * strata.command_retries times.  The first attempt is optimistic; a retry
 * first takes the stream's row lock (command_lock_stream), so that it
 * cannot lose again: under contention a command conflicts at most once.
 * An error raised by the handler denies the command: it propagates, or,
 * for commands defined with record_rejections, a CommandRejected event is
 * appended instead.
 *
 * A command may carry an id; the event it produces takes that id, so the
 * idempotency of strata.append makes a repeated command append once.  The
 * command id names the command: a repeat returns the version of the event
 * stored with it, without comparing that event with what the handler
 * returns now (append_events without check_content), nor the commands
 * (they are not stored).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/uuid.h"

#include "strata.h"
#include "settings.h"
#include "aggregate.h"
#include "append.h"
#include "command.h"
#include "define.h"
#include "privilege.h"
#include "stream.h"
#include "usercall.h"
#include "version.h"

PG_FUNCTION_INFO_V1(strata_define_command);
PG_FUNCTION_INFO_V1(strata_define_command_0_4);
PG_FUNCTION_INFO_V1(strata_drop_command);
PG_FUNCTION_INFO_V1(strata_drop_command_0_4);
PG_FUNCTION_INFO_V1(strata_execute);
PG_FUNCTION_INFO_V1(strata_execute_0_4);
PG_FUNCTION_INFO_V1(strata_execute_0_6);

/* A command definition */
typedef struct CommandDef
{
	char *category;
	Oid	  handler;
	Oid	  owner; /* the handler runs as this role */
	bool  record_rejections;
} CommandDef;

/* What an attempt was doing when it failed */
typedef enum CommandPhase
{
	COMMAND_PHASE_OTHER,
	COMMAND_PHASE_HANDLER
} CommandPhase;

/* The columns of the query of command_lookup() */
enum
{
	CMD_CATEGORY = 1,
	CMD_HANDLER,
	CMD_RECORD_REJECTIONS,
	CMD_OWNER
};

/*
 * Read the definition of command type 'type'; 42704 if none.  Refused
 * under the SQL of a version before 0.4.0 ('api'), which records no
 * owners.
 */
static void
command_lookup(const char *type, CommandDef *def, StrataApi api)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[1] = {TEXTOID};
	Datum			  arg = CStringGetTextDatum(type);
	bool			  isnull;
	MemoryContext	  caller = CurrentMemoryContext;

	define_require_owners(api);
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT category, handler::pg_catalog.oid, "
						   "record_rejections, owner::pg_catalog.oid "
						   "FROM strata.commands "
						   "WHERE command_type OPERATOR(pg_catalog.=) $1",
						   1, argtypes),
			&arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the command definition");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("command type \"%s\" is not defined", type),
						errhint("Define it with strata.define_command.")));
	def->category = MemoryContextStrdup(
		caller, TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc,
												  CMD_CATEGORY, &isnull)));
	def->handler = DatumGetObjectId(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, CMD_HANDLER, &isnull));
	def->record_rejections = DatumGetBool(
		SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
					  CMD_RECORD_REJECTIONS, &isnull));
	def->owner = DatumGetObjectId(SPI_getbinval(
		SPI_tuptable->vals[0], SPI_tuptable->tupdesc, CMD_OWNER, &isnull));
	SPI_finish();
}

/* The command's type and id (*has_id false when it has none). */
static char *
command_parse(Jsonb *command, pg_uuid_t *id, bool *has_id)
{
	JsonbValue	k;
	JsonbValue *v;
	char	   *type;

	if (!JB_ROOT_IS_OBJECT(command))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a command must be a JSON object"),
						errhint("Pass {\"type\": \"...\", ...}.")));
	k.type = jbvString;
	k.val.string.val = "type";
	k.val.string.len = 4;
	v = findJsonbValueFromContainer(&command->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a command must have a \"type\" string"),
						errhint("Pass {\"type\": \"...\", ...}.")));
	type = stream_validate_name(v->val.string.val, v->val.string.len,
								"command type", EVENT_TYPE_MAX_BYTES);

	k.val.string.val = "id";
	k.val.string.len = 2;
	v = findJsonbValueFromContainer(&command->root, JB_FOBJECT, &k);
	*has_id = false;
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvString ||
			!append_parse_uuid(v->val.string.val, v->val.string.len, id))
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid command id"),
							errdetail("The \"id\" of a command must be a UUID "
									  "string.")));
		*has_id = true;
	}
	return type;
}

/*
 * If an event with the command's id exists, the command was executed:
 * return true and its version.  An id stored in another stream is ST002.
 */
static bool
command_done(const char *stream, pg_uuid_t *id, int64 *version)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[1] = {UUIDOID};
	Datum			  arg = UUIDPGetDatum(id);
	bool			  found = false;

	/* the columns of the query */
	enum
	{
		DONE_STREAM = 1,
		DONE_VERSION
	};

	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT stream, version FROM strata.events "
						   "WHERE id OPERATOR(pg_catalog.=) $1",
						   1, argtypes),
			&arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the command id");
	if (SPI_processed == 1)
	{
		bool  isnull;
		char *s = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc,
													DONE_STREAM, &isnull));

		if (strcmp(s, stream) != 0)
			ereport(
				ERROR,
				(errcode(ERRCODE_STRATA_DUPLICATE_EVENT_ID),
				 errmsg("command id %s was already used on stream \"%s\"",
						DatumGetCString(DirectFunctionCall1(uuid_out, arg)),
						s),
				 errhint("Give each command a new id; reuse an id only "
						 "to retry the very same command.")));
		*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc,
											   DONE_VERSION, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}

/*
 * Turn the handler's result into the event to append: check that it is
 * one event object, give it the command's id, and add command_type (and
 * command_id) to its metadata unless the handler set them.
 */
static Jsonb *
command_event(Jsonb *result, const char *type, Datum command_id, bool has_id,
			  Oid handler)
{
	MemoryContext	  caller = CurrentMemoryContext;
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[3] = {JSONBOID, TEXTOID, UUIDOID};
	Datum			  args[3];
	char			  nulls[3] = {' ', ' ', has_id ? ' ' : 'n'};
	JsonbValue		  k;
	JsonbValue		 *v;
	Jsonb			 *event;

	if (!JB_ROOT_IS_OBJECT(result))
		ereport(ERROR,
				(errcode(ERRCODE_STRATA_INVALID_RESULT),
				 errmsg("command handler %s must return one event object",
						format_procedure(handler)),
				 errdetail("It returned a JSON %s.",
						   JB_ROOT_IS_SCALAR(result) ? "scalar" : "array"),
				 errhint("Return {\"type\": \"...\", \"data\": ...}, or "
						 "raise an error to deny the command.")));
	k.type = jbvString;
	k.val.string.val = "type";
	k.val.string.len = 4;
	v = findJsonbValueFromContainer(&result->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_STRATA_INVALID_RESULT),
				 errmsg("command handler %s returned an event without a type",
						format_procedure(handler)),
				 errhint("Return {\"type\": \"...\", \"data\": ...}.")));

	args[0] = JsonbPGetDatum(result);
	args[1] = CStringGetTextDatum(type);
	args[2] = command_id;
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"SELECT $1 OPERATOR(pg_catalog.||) "
				"pg_catalog.jsonb_strip_nulls("
				"pg_catalog.jsonb_build_object('id', $3::pg_catalog.text)) "
				"OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object("
				"'metadata', pg_catalog.jsonb_strip_nulls("
				"pg_catalog.jsonb_build_object('command_type', $2, "
				"'command_id', $3::pg_catalog.text)) OPERATOR(pg_catalog.||) "
				"COALESCE($1 OPERATOR(pg_catalog.->) 'metadata', "
				"'{}'::pg_catalog.jsonb))",
				3, argtypes),
			args, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not build the event");
	event = strata_spi_jsonb(0, 1, caller);
	SPI_finish();
	return event;
}

/* The CommandRejected event recording a denied command. */
static Jsonb *
command_rejection(Jsonb *command, const char *type, Datum command_id,
				  bool has_id, ErrorData *edata)
{
	MemoryContext	  caller = CurrentMemoryContext;
	static SPIPlanPtr plan = NULL;
	Oid	   argtypes[5] = {JSONBOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID};
	Datum  args[5];
	char   nulls[5] = {' ', ' ', ' ', ' ', has_id ? ' ' : 'n'};
	Jsonb *event;

	args[0] = JsonbPGetDatum(command);
	args[1] = CStringGetTextDatum(edata->message ? edata->message : "");
	args[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[3] = CStringGetTextDatum(type);
	args[4] = command_id;
	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"SELECT "
				"pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
				"'type', '" COMMAND_REJECTED_TYPE
				"', 'id', $5::pg_catalog.text, "
				"'metadata', pg_catalog.jsonb_build_object('command_type', "
				"$4, "
				"'command_id', $5::pg_catalog.text))) OPERATOR(pg_catalog.||) "
				"pg_catalog.jsonb_build_object('data', "
				"pg_catalog.jsonb_build_object("
				"'command', $1, 'error', $2, 'sqlstate', $3))",
				5, argtypes),
			args, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not build the rejection event");
	event = strata_spi_jsonb(0, 1, caller);
	SPI_finish();
	return event;
}

/*
 * Run 'attempt' (one load-handle-append, or one rejection append) in a
 * subtransaction.  Returns true with *version set when it succeeded;
 * false with *edata set when it failed (the subtransaction rolled back),
 * *phase telling whether the handler raised the error.
 */
typedef struct CommandAttempt
{
	const char *stream;
	const char *category;
	const char *type;
	Jsonb	   *command;
	Datum		command_id;
	bool		has_id;
	CommandDef *def;
	StrataApi	api;	   /* of the entry point */
	Jsonb	   *rejection; /* non-NULL: append this, no handler */
	int64		rejection_expected;
	bool		retry; /* after a conflict, with the stream's lock held */
	/* set by the attempt */
	int64				  loaded_version;
	volatile CommandPhase phase;
} CommandAttempt;

static int64
command_attempt_body(CommandAttempt *a)
{
	Jsonb		 *state;
	Jsonb		 *result;
	Datum		  d;
	Datum		  args[2];
	bool		  isnull;
	UserFunc	  uf;
	PrivScope	  scope;
	UserCallEvent ev = {.kind = USERCALL_COMMAND};

	/*
	 * With a command id, the event takes it and that id names the command:
	 * an event stored with it is the command's outcome, whatever this
	 * attempt's handler returned (a repeat that raced the first execution
	 * returns it, as one that came after, in command_execute).  An id the
	 * handler gave its event itself is checked as strata.append checks.
	 */
	if (a->rejection != NULL)
		return append_events(a->stream, a->category, a->rejection,
							 a->rejection_expected, a->api, !a->has_id);

	state = aggregate_load(a->stream, a->category, AGGREGATE_HEAD,
						   &a->loaded_version, a->api, !a->retry);

	usercall_prepare(&uf, a->def->handler, a->def->owner,
					 psprintf("handler of command type \"%s\"", a->type),
					 CurrentMemoryContext);
	priv_check_read_events(a->def->owner, psprintf("the %s", uf.what));
	args[0] = JsonbPGetDatum(state);
	args[1] = JsonbPGetDatum(a->command);
	a->phase = COMMAND_PHASE_HANDLER;
	ev.subject = a->type;
	ev.stream_cstr = a->stream;
	ev.version = a->loaded_version;
	usercall_context_push(&ev);
	usercall_begin(&scope, a->def->owner);
	d = usercall_invoke(&uf, &scope, 2, args, &isnull);
	usercall_end(&scope);
	usercall_context_pop(&ev);
	a->phase = COMMAND_PHASE_OTHER;
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_STRATA_INVALID_RESULT),
				 errmsg("command handler %s returned NULL",
						format_procedure(a->def->handler)),
				 errhint("Return one event object, or raise an error to deny "
						 "the command.")));
	result = DatumGetJsonbP(d);

	return append_events(a->stream, a->category,
						 command_event(result, a->type, a->command_id,
									   a->has_id, a->def->handler),
						 a->loaded_version, a->api, !a->has_id);
}

static bool
command_attempt(CommandAttempt *a, int64 *version, ErrorData **edata)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = false;

	a->phase = COMMAND_PHASE_OTHER;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		*version = command_attempt_body(a);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		ok = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return ok;
}

/*
 * After a conflict: take the stream's row lock, the one strata.append
 * takes, in the calling transaction (not the attempt's subtransaction,
 * whose rollback would release it), waiting for the writer that got
 * there first.  The next attempt then loads the state that writer left,
 * under a new snapshot, and no other append of the stream can come in
 * between: a command conflicts at most once.  A stream that does not
 * exist yet has no row to lock; its first appends race at its creation.
 */
static void
command_lock_stream(const char *stream)
{
	static SPIPlanPtr plan = NULL;

	SPI_connect();
	if (SPI_execute_plan(
			strata_prepare(&plan,
						   "SELECT 1 FROM strata.streams "
						   "WHERE stream OPERATOR(pg_catalog.=) $1 "
						   "FOR NO KEY UPDATE",
						   1, (Oid[]){TEXTOID}),
			(Datum[]){CStringGetTextDatum(stream)}, NULL, false,
			0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock stream \"%s\"", stream);
	SPI_finish();
}

/*
 * Is an error raised while the handler ran a denial of the command, to be
 * recorded as a rejection?  Not when it says something about the session
 * or the server rather than about the command: a cancel or timeout (57),
 * a serialization failure or deadlock (40), a lack of resources (53, 54),
 * a lock not available (55), a system or internal error (58, XX), or a
 * version conflict (ST001, retried instead).
 */
static bool
command_is_denial(int sqlerrcode)
{
	static const char *const classes[] = {"40", "53", "54", "55",
										  "57", "58", "XX"};
	const char				*state = unpack_sql_state(sqlerrcode);

	if (sqlerrcode == ERRCODE_STRATA_WRONG_EXPECTED_VERSION)
		return false;
	for (size_t i = 0; i < lengthof(classes); i++)
		if (strncmp(state, classes[i], 2) == 0)
			return false;
	return true;
}

/*
 * The body of strata.execute(), in an owner section: the definition, the
 * attempts, and the retries after conflicts, under the SQL API version
 * 'api' of the entry point.
 */
static int64
command_execute(FunctionCallInfo fcinfo, StrataApi api)
{
	CommandAttempt a;
	CommandDef	   def;
	pg_uuid_t	   id;
	char		  *category;
	int64		   version;
	ErrorData	  *edata = NULL;

	memset(&a, 0, sizeof(a));
	a.api = api;
	a.stream = stream_name_arg(PG_GETARG_TEXT_PP(0), &category);
	a.category = category;
	a.command = PG_GETARG_JSONB_P(1);
	a.type = command_parse(a.command, &id, &a.has_id);
	a.command_id = a.has_id ? UUIDPGetDatum(&id) : (Datum) 0;

	command_lookup(a.type, &def, api);
	a.def = &def;
	if (strcmp(def.category, category) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("command type \"%s\" applies to category \"%s\", not "
						"to stream \"%s\"",
						a.type, def.category, a.stream)));

	/* A command executed before: its event is there, nothing to do */
	if (a.has_id && command_done(a.stream, &id, &version))
		return version;

	for (int attempt = 0;; attempt++)
	{
		if (command_attempt(&a, &version, &edata))
			return version;

		if (a.phase == COMMAND_PHASE_HANDLER && def.record_rejections &&
			a.rejection == NULL && command_is_denial(edata->sqlerrcode))
		{
			/* Denied: record the rejection where the state was loaded */
			a.rejection = command_rejection(a.command, a.type, a.command_id,
											a.has_id, edata);
			a.rejection_expected = a.loaded_version;
			if (command_attempt(&a, &version, &edata))
				return version;
			a.rejection = NULL;
		}

		if (edata->sqlerrcode != ERRCODE_STRATA_WRONG_EXPECTED_VERSION)
			ReThrowError(edata);
		if (attempt >= strata_command_retries)
			ereport(
				ERROR,
				(errcode(ERRCODE_STRATA_WRONG_EXPECTED_VERSION),
				 errmsg("command \"%s\" on stream \"%s\" still conflicted "
						"after %d retries",
						a.type, a.stream, attempt),
				 errdetail("%s", edata->detail ? edata->detail : ""),
				 errhint("Retry later, or raise strata.command_retries.")));
		FreeErrorData(edata);
		edata = NULL;
		CHECK_FOR_INTERRUPTS();

		/* the next attempt goes after the writer that won (see above) */
		command_lock_stream(a.stream);
		a.retry = true;

		/* The same command, executed concurrently, may have won the race */
		if (a.has_id && command_done(a.stream, &id, &version))
			return version;
	}
}

/*
 * strata.execute(stream text, command jsonb) RETURNS bigint: execute a
 * command against the aggregate of the stream and return the stream's
 * new version.  The body of the entry points of the SQL API versions
 * below.
 */
static Datum
command_execute_entry(FunctionCallInfo fcinfo, StrataApi api)
{
	PrivScope scope;
	int64	  version;

	strata_require_preload();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("stream and command must not be null")));
	PreventCommandIfReadOnly("strata.execute()");
	/* the handler decides on the state, made of the stream's events */
	priv_check_read_events(GetUserId(), "strata.execute");

	priv_enter(&scope);
	version = command_execute(fcinfo, api);
	priv_exit(&scope);
	PG_RETURN_INT64(version);
}

/* strata.execute under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_execute(PG_FUNCTION_ARGS)
{
	return command_execute_entry(fcinfo, STRATA_API_0_2);
}

/* under 0.4.0 */
Datum
strata_execute_0_4(PG_FUNCTION_ARGS)
{
	return command_execute_entry(fcinfo, STRATA_API_0_4);
}

/* under 0.6.0: its append opens a new epoch after a failover */
Datum
strata_execute_0_6(PG_FUNCTION_ARGS)
{
	return command_execute_entry(fcinfo, STRATA_API_0_6);
}

/*
 * strata.define_command(command_type text, category text, handler
 * regprocedure, record_rejections boolean): create or replace a command.
 * The body of the 0.4.0 entry point below.
 */
static Datum
command_define(FunctionCallInfo fcinfo)
{
	static SPIPlanPtr plan = NULL;
	Oid		  argtypes[5] = {TEXTOID, TEXTOID, OIDOID, BOOLOID, REGROLEOID};
	Datum	  args[5];
	Oid		  handler_args[2] = {JSONBOID, JSONBOID};
	text	 *cat;
	char	 *category;
	Oid		  caller = GetUserId();
	Oid		  owner;
	char	 *object;
	PrivScope scope;

	strata_require_preload();
	define_check_not_null(fcinfo, 4, "strata.define_command");
	args[0] = CStringGetTextDatum(
		define_name_arg(PG_GETARG_TEXT_PP(0), "command type"));
	cat = PG_GETARG_TEXT_PP(1);
	category =
		stream_validate_category(VARDATA_ANY(cat), VARSIZE_ANY_EXHDR(cat));
	args[1] = CStringGetTextDatum(category);
	define_check_function(PG_GETARG_OID(2), "command handler", 2, handler_args,
						  JSONBOID,
						  "(state jsonb, command jsonb) RETURNS jsonb");
	args[2] = PG_GETARG_DATUM(2);
	args[3] = PG_GETARG_DATUM(3);

	PreventCommandIfReadOnly("strata.define_command()");
	/* the handler decides on states folded from the category's events */
	priv_check_read_events(caller, "strata.define_command");
	object = psprintf("command type \"%s\"", TextDatumGetCString(args[0]));
	priv_enter(&scope);
	SPI_connect();
	owner =
		define_lock_owner("commands", "command_type", args[0], caller, object);
	if (owner != caller)
		usercall_check(PG_GETARG_OID(2), owner,
					   psprintf("handler of %s", object));
	args[4] = ObjectIdGetDatum(owner);
	if (SPI_execute_plan(
			strata_prepare(
				&plan,
				"INSERT INTO strata.commands (command_type, category, "
				"handler, record_rejections, owner) "
				"VALUES ($1, $2, $3, $4, $5) "
				"ON CONFLICT (command_type) DO UPDATE SET category = "
				"EXCLUDED.category, handler = EXCLUDED.handler, "
				"record_rejections = EXCLUDED.record_rejections, "
				"owner = coalesce(strata.commands.owner, EXCLUDED.owner), "
				"defined_at = pg_catalog.now() "
				"WHERE strata.commands.owner IS NULL OR "
				"strata.commands.owner::"
				"pg_catalog.oid OPERATOR(pg_catalog.=) $5::pg_catalog.oid",
				5, argtypes),
			args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the command");
	define_check_upserted("commands", "command_type", args[0], caller, object);
	SPI_finish();
	priv_exit(&scope);
	PG_RETURN_VOID();
}

/* strata.define_command under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_define_command(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

/* under 0.4.0 */
Datum
strata_define_command_0_4(PG_FUNCTION_ARGS)
{
	return command_define(fcinfo);
}

/* strata.drop_command under 0.2.0 and 0.3.0: refused, no owners */
Datum
strata_drop_command(PG_FUNCTION_ARGS)
{
	define_require_owners(STRATA_API_0_2);
	PG_RETURN_VOID(); /* not reached */
}

/* strata.drop_command(command_type text) under 0.4.0: forget a command */
Datum
strata_drop_command_0_4(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	strata_require_preload();
	if (define_delete(&plan,
					  "DELETE FROM strata.commands "
					  "WHERE command_type OPERATOR(pg_catalog.=) $1 "
					  "RETURNING owner::pg_catalog.oid",
					  PG_GETARG_DATUM(0), "strata.drop_command()", GetUserId(),
					  psprintf("command type \"%s\"",
							   TextDatumGetCString(PG_GETARG_DATUM(0)))) == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("command type \"%s\" is not defined",
							   TextDatumGetCString(PG_GETARG_DATUM(0)))));
	PG_RETURN_VOID();
}
