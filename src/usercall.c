/*-------------------------------------------------------------------------
 *
 * usercall.c
 *	  Running user code as its owner: the trust boundary between
 *	  pg_strata and the functions other roles give it.
 *
 * PostgreSQL runs another role's code in maintenance (index expressions
 * in VACUUM, REFRESH MATERIALIZED VIEW) and in logical replication (the
 * apply worker, as the subscription's owner) the same way, and so does
 * this file:
 *	- the current user becomes the definition's owner, never the caller,
 *	  never the role of the previous call;
 *	- the call is a security-restricted operation: no SET ROLE, no
 *	  temporary tables, nothing that outlives it in the session;
 *	- a new GUC nest level, rolled back at the end whatever the function
 *	  set (even with set_config(..., false)), and search_path
 *	  "pg_catalog, pg_temp" during the call, so that no object planted in
 *	  a schema of the caller's path is found by unqualified names.  A
 *	  function that needs another path says so with SET search_path in
 *	  its definition, which the function manager applies.
 * An error ends the call through the transaction (or subtransaction)
 * abort, which restores the user and the settings, as it does for
 * SECURITY DEFINER functions.
 *
 * A fold of one stream by one reducer may run as one scope (begin, many
 * invokes, end): one owner, one nest level, the cost paid once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "strata.h"
#include "compat.h"
#include "privilege.h"
#include "usercall.h"

/* Most arguments of a user function (reducers and command handlers: 2) */
#define USERCALL_MAX_ARGS 2

/* May role 'roleid' execute function 'funcid'? */
bool
usercall_can_execute(Oid funcid, Oid roleid)
{
	return compat_proc_executable(funcid, roleid);
}

/*
 * The user function 'funcid' must exist, its owner role 'owner' too, and
 * the owner must be allowed to execute it.  'what' names the function in
 * messages.
 */
void
usercall_check(Oid funcid, Oid owner, const char *what)
{
	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(funcid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the %s no longer exists", what),
				 errhint("Define it again with an existing function.")));
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the %s has no owner", what),
				 errdetail("Its owner role was dropped, or it was defined "
						   "before version 0.4.0 with a function owned by a "
						   "superuser."),
				 errhint("A superuser drops it, then the role it should run "
						 "as defines it again (a subscription: a superuser "
						 "gives it an owner with "
						 "strata.alter_subscription_owner).")));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of the %s no longer exists", what),
				 errdetail("The role that owned it was dropped while it "
						   "owned it (DROP ROLE checks only the database "
						   "it runs in)."),
				 errhint("Give a subscription a new owner with "
						 "strata.alter_subscription_owner; drop a definition "
						 "and define it again.")));
	if (!usercall_can_execute(funcid, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s",
						get_func_name(funcid)),
				 errdetail("The %s runs as role \"%s\", which may not "
						   "execute it.",
						   what, GetUserNameFromId(owner, false)),
				 errhint("GRANT EXECUTE on the function to that role.")));
}

/*
 * Check 'funcid' for 'owner' and look it up into 'uf', allocated in
 * 'cxt' (which must outlive the calls; 'what' too).
 */
void
usercall_prepare(UserFunc *uf, Oid funcid, Oid owner, const char *what,
				 MemoryContext cxt)
{
	usercall_check(funcid, owner, what);
	uf->owner = owner;
	uf->what = what;
	fmgr_info_cxt(funcid, &uf->flinfo, cxt);
}

/*
 * Become 'owner' in a security-restricted operation with a new GUC nest
 * level and the safe search_path, until usercall_end.
 */
void
usercall_begin(PrivScope *scope, Oid owner)
{
	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec);
	SetUserIdAndSecContext(owner, scope->save_sec |
									  SECURITY_LOCAL_USERID_CHANGE |
									  SECURITY_RESTRICTED_OPERATION);
	scope->nestlevel = NewGUCNestLevel();
	/* the worker's path, or a nested call's, is the safe one already */
	if (namespace_search_path == NULL ||
		strcmp(namespace_search_path, STRATA_SAFE_SEARCH_PATH) != 0)
	{
		compat_restrict_search_path();
	}
	scope->active = true;
}

/*
 * Roll back every setting made since usercall_begin (SET, SET LOCAL and
 * set_config alike) and return to the previous user and security context.
 */
void
usercall_end(PrivScope *scope)
{
	Assert(scope->active && scope->nestlevel > 0);
	AtEOXact_GUC(false, scope->nestlevel);
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec);
	scope->active = false;
}

/*
 * Call 'uf' with 'nargs' non-null arguments inside 'scope', which must
 * have been begun for uf's owner.  Returns the result; *isnull tells
 * whether it was NULL.
 */
Datum
usercall_invoke(UserFunc *uf, PrivScope *scope, int nargs, Datum *args,
				bool *isnull)
{
	LOCAL_FCINFO(fcinfo, USERCALL_MAX_ARGS);
	Datum result;

	if (!scope->active || GetUserId() != uf->owner)
		elog(ERROR, "user function called outside its owner's scope");
	Assert(nargs <= USERCALL_MAX_ARGS);
	InitFunctionCallInfoData(*fcinfo, &uf->flinfo, nargs, InvalidOid, NULL,
							 NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * One call of 'uf' in a scope of its own, for functions returning void
 * (whose SQL versions return NULL).
 */
void
usercall_void(UserFunc *uf, int nargs, Datum *args)
{
	PrivScope scope;
	bool	  isnull;

	usercall_begin(&scope, uf->owner);
	(void) usercall_invoke(uf, &scope, nargs, args, &isnull);
	usercall_end(&scope);
}

/* The error context of a user call (see UserCallEvent) */
static void
usercall_error_context(void *arg)
{
	UserCallEvent *ev = (UserCallEvent *) arg;
	const char	  *stream = ev->stream_cstr;

	if (stream == NULL && ev->kind != USERCALL_SUBSCRIPTION &&
		ev->stream != (Datum) 0)
		stream = TextDatumGetCString(ev->stream);
	switch (ev->kind)
	{
		case USERCALL_REDUCER:
			errcontext("reducer %s folding event version " INT64_FORMAT
					   " of stream \"%s\"",
					   format_procedure(ev->reducer), ev->version, stream);
			break;
		case USERCALL_PROJECTION:
			errcontext("projection \"%s\" on event version " INT64_FORMAT
					   " of stream \"%s\"",
					   ev->subject, ev->version, stream);
			break;
		case USERCALL_SUBSCRIPTION:
			errcontext("subscription \"%s\", event at position " INT64_FORMAT,
					   ev->subject, ev->position);
			break;
		case USERCALL_COMMAND:
			errcontext(
				"command \"%s\" on stream \"%s\" at version " INT64_FORMAT,
				ev->subject, stream, ev->version);
			break;
	}
}

/*
 * Name the definition or subscription and the event in every error until
 * usercall_context_pop; 'ev' must live that long.
 */
void
usercall_context_push(UserCallEvent *ev)
{
	ev->callback.callback = usercall_error_context;
	ev->callback.arg = ev;
	ev->callback.previous = error_context_stack;
	error_context_stack = &ev->callback;
}

void
usercall_context_pop(UserCallEvent *ev)
{
	Assert(error_context_stack == &ev->callback);
	error_context_stack = ev->callback.previous;
}
