/*-------------------------------------------------------------------------
 *
 * define.c
 *	  Checks shared by the define_* functions: the signature and the
 *	  EXECUTE privilege of user functions (reducers, command handlers,
 *	  projection handlers), definition names and category lists.
 *
 * User functions are called through usercall.c, not through the
 * executor, so the EXECUTE privilege the executor would check is checked
 * here for the role that defines (and will own) the definition, and
 * again for the owner at each use (usercall_check).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "strata.h"
#include "define.h"
#include "events.h"
#include "privilege.h"
#include "stream.h"
#include "usercall.h"
#include "version.h"

/* Longest name of a projection */
#define DEFINE_NAME_MAX_BYTES 128

/* The row type of strata.events, the type of every event argument */
Oid
define_events_type(void)
{
	return get_rel_type_id(strata_relid(EVENTS_RELNAME));
}

/*
 * Check that 'funcid' is a plain function with the given argument and
 * result types; 'role' names it in messages ("reducer") and 'signature'
 * spells the expected signature.
 */
void
define_check_function(Oid funcid, const char *role, int nargs,
					  const Oid *argtypes, Oid rettype, const char *signature)
{
	HeapTuple	 tup;
	Form_pg_proc proc;
	bool		 ok;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
						errmsg("%s function with OID %u does not exist", role,
							   funcid)));
	proc = (Form_pg_proc) GETSTRUCT(tup);

	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		 proc->pronargs == nargs && proc->prorettype == rettype;
	for (int i = 0; ok && i < nargs; i++)
		ok = proc->proargtypes.values[i] == argtypes[i];
	ReleaseSysCache(tup);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s %s has the wrong signature", role,
						format_procedure(funcid)),
				 errdetail("A %s must be a function %s.", role, signature),
				 errhint("Create a function with that signature and pass it "
						 "as 'name(argument types)'::regprocedure.")));

	/* the caller becomes the definition's owner: it must be able to run it */
	if (!usercall_can_execute(funcid, GetUserId()))
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION,
					   get_func_name(funcid));
}

/* Validate a definition name (projection name, command type). */
char *
define_name_arg(text *arg, const char *what)
{
	return stream_validate_name(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg), what,
								DEFINE_NAME_MAX_BYTES);
}

/*
 * Validate a list of categories (is_category) or of event types, named
 * 'what' in messages: NULL means all; an empty list or a NULL element is
 * refused; each must be a valid category or event type.
 */
void
define_check_list(ArrayType *arr, const char *what, bool is_category)
{
	Datum *elems;
	bool  *nulls;
	int	   n;

	if (arr == NULL)
		return;
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
					  &n);
	if (n == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must not be an empty array", what),
						errhint("Pass NULL for all %s.", what)));
	for (int i = 0; i < n; i++)
	{
		text *t;

		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("%s must not contain NULL", what)));
		t = DatumGetTextPP(elems[i]);
		if (is_category)
			(void) stream_validate_category(VARDATA_ANY(t),
											VARSIZE_ANY_EXHDR(t));
		else
			(void) stream_validate_name(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
										"event type", EVENT_TYPE_MAX_BYTES);
	}
}

/*
 * Tell every backend (at commit) that the definitions kept in relation
 * 'relname' changed, through a relcache invalidation of that relation.
 */
void
define_invalidate(const char *relname)
{
	CacheInvalidateRelcacheByRelid(strata_relid(relname));
}

/*
 * Run the saved DELETE 'sql' (prepared into *plan on first use) with the
 * text key 'key' as $1, in a read-write transaction, in an owner section;
 * return the number of rows deleted.  With 'object' (the definition, for
 * messages), the DELETE returns the owner of each row it deletes, which
 * 'caller' must have the privileges of.  The body of the drop_* functions.
 */
uint64
define_delete(SPIPlanPtr *plan, const char *sql, Datum key, const char *func,
			  Oid caller, const char *object)
{
	Oid		  argtypes[1] = {TEXTOID};
	uint64	  deleted;
	PrivScope scope;

	PreventCommandIfReadOnly(func);
	priv_enter(&scope);
	SPI_connect();
	if (SPI_execute_plan(strata_prepare(plan, sql, 1, argtypes), &key, NULL,
						 false, 0) !=
		(object != NULL ? SPI_OK_DELETE_RETURNING : SPI_OK_DELETE))
		elog(ERROR, "could not run %s", sql);
	deleted = SPI_processed;
	for (uint64 i = 0; object != NULL && i < deleted; i++)
	{
		bool isnull;

		priv_check_owner(
			caller,
			DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
										   SPI_tuptable->tupdesc, 1, &isnull)),
			"drop", object);
	}
	SPI_finish();
	priv_exit(&scope);
	return deleted;
}

/*
 * After the upsert of a definition guarded by its owner (ON CONFLICT DO
 * UPDATE ... WHERE owner is the one define_lock_owner returned): no row
 * means that another transaction inserted the definition after
 * define_lock_owner looked (its FOR UPDATE cannot see a row not yet
 * committed) and committed since, under an owner of its own.  Refuse, as
 * define_lock_owner would have: 42501 when 'caller' has not the
 * privileges of that owner, else a serialization failure to retry.
 * Connected to SPI, right after the upsert.
 */
void
define_check_upserted(const char *relname, const char *keycol, Datum key,
					  Oid caller, const char *object)
{
	if (SPI_processed > 0)
		return;
	(void) define_lock_owner(relname, keycol, key, caller, object);
	ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					errmsg("%s was defined concurrently", object),
					errhint("Retry the definition.")));
}

/*
 * Refuse to go on under the SQL of a version before 0.4.0 ('api' of the
 * entry point), whose definition tables record no owners (before ALTER
 * EXTENSION UPDATE).
 */
void
define_require_owners(StrataApi api)
{
	if (api < STRATA_API_0_4)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the strata extension must be updated first"),
				 errdetail("The installed SQL of the extension records no "
						   "owners; this library needs version 0.4.0."),
				 errhint("Run ALTER EXTENSION strata UPDATE.")));
}

/*
 * Before a define_* function writes definition 'key' of strata.'relname'
 * (key column 'keycol'): lock it, and if it exists, check that 'caller'
 * has the privileges of its owner.  Returns that owner, which a
 * redefinition keeps (as CREATE OR REPLACE does), or 'caller' for a new
 * definition (or one whose owner role was dropped: its owner is NULL, and
 * the upsert of the caller sets it).  Only under the SQL of 0.4.0 or
 * later (the entry points of earlier versions refuse).  Connected to SPI,
 * in an owner section.
 */
Oid
define_lock_owner(const char *relname, const char *keycol, Datum key,
				  Oid caller, const char *object)
{
	Oid	  argtype = TEXTOID;
	bool  isnull;
	Oid	  owner;
	char *sql;

	sql = psprintf("SELECT owner::pg_catalog.oid FROM strata.%s WHERE %s "
				   "OPERATOR(pg_catalog.=) $1 FOR UPDATE",
				   relname, keycol);
	if (SPI_execute_with_args(sql, 1, &argtype, &key, NULL, false, 1) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not read strata.%s", relname);
	if (SPI_processed == 0)
		return caller;
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	/* an owner dropped elsewhere left NULL: only a superuser takes it over */
	priv_check_owner(caller, isnull ? InvalidOid : owner, "redefine", object);
	return isnull ? caller : owner;
}

/*
 * Refuse a NULL among the first 'nargs' arguments of the SQL function
 * 'func' (the define_* functions are not STRICT, so that a NULL is an
 * error rather than a silent no-op).
 */
void
define_check_not_null(FunctionCallInfo fcinfo, int nargs, const char *func)
{
	for (int i = 0; i < nargs; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the arguments of %s must not be null", func)));
}

/*
 * Copy a text[] datum (a list of categories or types, validated when it
 * was defined) into a palloc'd array of C strings; returns the count.
 */
int
define_strings(Datum d, char ***out)
{
	ArrayType *arr = DatumGetArrayTypeP(d);
	Datum	  *elems;
	bool	  *nulls;
	int		   n;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
					  &n);
	*out = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		(*out)[i] = TextDatumGetCString(elems[i]);
	return n;
}

/* Is 's' one of the n names of 'list'?  An empty list (n = 0) takes all. */
bool
define_in_list(char **list, int n, const char *s)
{
	if (n == 0)
		return true;
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}
