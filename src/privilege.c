/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  The privilege model of pg_strata: nobody but the extension's owner
 *	  writes the extension's tables, the SQL functions write them in an
 *	  "owner section" after checking the caller's right themselves, and
 *	  the roles that own definitions and subscriptions are kept in step
 *	  with DROP ROLE and REASSIGN OWNED.
 *
 * An owner section is what SECURITY DEFINER does for a SQL function, done
 * in C because the function must know its caller to check the caller's
 * right (a SECURITY DEFINER C function would only see the definer): the
 * current user becomes the owner of the extension's tables until the
 * section ends (or the transaction aborts on an error).  Only the
 * extension's own queries run there, and each names every relation,
 * function, operator and type with its schema, so that the caller's
 * search_path resolves nothing in them (test/sql/security.sql runs every
 * function under a search_path of decoys to show it); pinning the path
 * too would cost a GUC nest level per append.  User code called inside a
 * section runs through usercall.c, as its own owner, under the safe
 * search_path.
 *
 * The caller's rights:
 *	- EXECUTE on the SQL function (none is granted to PUBLIC but reads);
 *	- SELECT on strata.events, with no row-level security applying to the
 *	  role, for every function that hands event data to the caller or to
 *	  the caller's code (priv_check_read_events);
 *	- membership of a definition's or subscription's owner role to change
 *	  it (priv_check_owner), as for ALTER on PostgreSQL's own objects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "strata.h"
#include "events.h"
#include "privilege.h"
#include "version.h"

/*
 * The OID and owner of strata.events, cached: every append asks, and
 * every call of an inline projection checks its owner's SELECT on it.  A relcache
 * invalidation of the table (ALTER ... OWNER through REASSIGN OWNED,
 * DROP EXTENSION) or of every relation clears it.
 */
static Oid	priv_owner_relid = InvalidOid;
static Oid	priv_owner = InvalidOid;
static bool priv_callback_set = false;

static void
priv_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == priv_owner_relid)
		priv_owner_relid = priv_owner = InvalidOid;
}

/*
 * Load strata.events' OID and owner into the cache, if they are not in it.
 */
static void
priv_load_owner(void)
{
	Oid		  relid;
	HeapTuple tup;

	if (OidIsValid(priv_owner))
		return;
	if (!priv_callback_set)
	{
		CacheRegisterRelcacheCallback(priv_relcache_callback, (Datum) 0);
		priv_callback_set = true;
	}
	relid = strata_relid(EVENTS_RELNAME);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	priv_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	priv_owner_relid = relid;
	ReleaseSysCache(tup);
}

/*
 * The owner of the extension's tables: the role that created the
 * extension (REASSIGN OWNED moves them all together).
 */
Oid
priv_extension_owner(void)
{
	priv_load_owner();
	return priv_owner;
}

/*
 * Begin an owner section: become the extension's owner.  The caller's
 * identity is GetUserId() before this call; check its rights before, and
 * pass it on explicitly where it is needed inside.
 */
void
priv_enter(PrivScope *scope)
{
	Oid owner = priv_extension_owner();

	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec);
	SetUserIdAndSecContext(owner,
						   scope->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	scope->nestlevel = 0;
	scope->active = true;
}

/* End an owner section: the caller's identity again. */
void
priv_exit(PrivScope *scope)
{
	Assert(scope->active && scope->nestlevel == 0);
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec);
	scope->active = false;
}

/*
 * Role 'roleid' is about to see event data through 'func' (a caller of a
 * read, or the owner of code that will be handed events): it needs SELECT
 * on strata.events, and no row-level security may apply to it there,
 * since the extension reads the table with index scans that cannot apply
 * policies.
 */
void
priv_check_read_events(Oid roleid, const char *func)
{
	Oid		  relid;
	AclResult aclresult;

	priv_load_owner();
	relid = priv_owner_relid;
	aclresult = pg_class_aclcheck(relid, roleid, ACL_SELECT);

	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table events"),
				 errdetail("Role \"%s\" would receive events through %s, "
						   "but may not SELECT strata.events.",
						   GetUserNameFromId(roleid, false), func),
				 errhint("GRANT SELECT ON strata.events to the role.")));
	if (check_enable_rls(relid, roleid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s cannot apply the row-level security of "
						"strata.events",
						func),
				 errdetail("Row-level security on strata.events applies to "
						   "role \"%s\".",
						   GetUserNameFromId(roleid, false)),
				 errhint("Read strata.events with SELECT, where the policies "
						 "apply, or give the role BYPASSRLS.")));
}

/*
 * Role 'caller' must have the privileges of 'owner' to 'action' 'object'
 * ("drop", "subscription \"s\""), as for ALTER on PostgreSQL's objects.
 * The caller is passed in: inside an owner section the current user is
 * the extension's owner.
 */
void
priv_check_owner(Oid caller, Oid owner, const char *action, const char *object)
{
	const char *name;

	if (has_privs_of_role(caller, owner))
		return;
	name = GetUserNameFromId(owner, true);
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("permission denied to %s %s", action, object),
					errdetail("Only members of its owner role \"%s\" may.",
							  name ? name : "(dropped)"),
					errhint("Ask a member of that role, or a superuser.")));
}

/*
 * Role 'caller' may make 'roleid' the owner of 'object': it must be a
 * member of it, as ALTER ... OWNER TO requires.
 */
void
priv_check_can_own(Oid caller, Oid roleid, const char *object)
{
	if (superuser_arg(caller) || is_member_of_role(caller, roleid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to give %s to role \"%s\"", object,
					GetUserNameFromId(roleid, false)),
			 errdetail("Only a member of the new owner role may."),
			 errhint("Run it as a member of that role, or as a superuser.")));
}

/* ---------- owners and DROP ROLE, REASSIGN OWNED ---------- */

/*
 * The tables with an owner column, for the DROP ROLE check and REASSIGN
 * OWNED, with what a row is called and the column naming it.
 */
static const struct
{
	const char *table;
	const char *kind;
	const char *name;
} owned_tables[] = {
	{"subscriptions", "subscription", "name"},
	{"projections", "projection", "name"},
	{"aggregates", "aggregate of category", "category"},
	{"commands", "command type", "command_type"},
};

/*
 * Does the current database have the extension at the 0.4.0 SQL or later,
 * whose tables record owners?  No SQL function enters here: the installed
 * version tells.
 */
static bool
priv_extension_here(void)
{
	return strata_installed_api() >= STRATA_API_0_4;
}

/*
 * Refuse DROP ROLE of a role that owns definitions or subscriptions in
 * this database, naming them, as PostgreSQL does for its own objects.
 */
static void
priv_check_drop_roles(List *roles)
{
	StringInfoData detail;
	int			   found = 0;
	ListCell	  *lc;
	PrivScope	   scope;
	char		  *first_role = NULL;

	if (!priv_extension_here())
		return;
	initStringInfo(&detail);
	priv_enter(&scope);
	SPI_connect();
	foreach (lc, roles)
	{
		RoleSpec *rs = lfirst(lc);
		Oid		  roleid = get_rolespec_oid(rs, true);
		Oid		  argtype = OIDOID;
		Datum	  arg = ObjectIdGetDatum(roleid);

		if (!OidIsValid(roleid))
			continue;
		for (size_t t = 0; t < lengthof(owned_tables); t++)
		{
			char *sql =
				psprintf("SELECT %s FROM strata.%s WHERE owner "
						 "OPERATOR(pg_catalog.=) $1::pg_catalog.regrole "
						 "ORDER BY 1",
						 owned_tables[t].name, owned_tables[t].table);

			if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 0) !=
				SPI_OK_SELECT)
				elog(ERROR, "could not read strata.%s", owned_tables[t].table);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				if (found == 0)
					first_role = pstrdup(GetUserNameFromId(roleid, false));
				if (found < 10)
					appendStringInfo(&detail, "%sowner of %s \"%s\"",
									 found > 0 ? "\n" : "",
									 owned_tables[t].kind,
									 SPI_getvalue(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 1));
				found++;
			}
		}
	}
	SPI_finish();
	priv_exit(&scope);
	if (found > 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("role \"%s\" cannot be dropped because some pg_strata "
					"objects depend on it",
					first_role),
			 errdetail("%s%s", detail.data, found > 10 ? "\nand more" : ""),
			 errhint("Run REASSIGN OWNED BY the role TO another role, or "
					 "drop them (strata.unsubscribe, strata.drop_*).")));
}

/*
 * REASSIGN OWNED BY old TO new: give the definitions and subscriptions of
 * the old roles in this database to the new one.  PostgreSQL has checked
 * that the user has the privileges of all of them.
 */
static void
priv_reassign(ReassignOwnedStmt *stmt)
{
	Oid		  newrole = get_rolespec_oid(stmt->newrole, false);
	ListCell *lc;
	PrivScope scope;

	if (!priv_extension_here())
		return;
	priv_enter(&scope);
	SPI_connect();
	foreach (lc, stmt->roles)
	{
		Oid	  oldrole = get_rolespec_oid(lfirst(lc), false);
		Oid	  argtypes[2] = {OIDOID, OIDOID};
		Datum args[2] = {ObjectIdGetDatum(oldrole), ObjectIdGetDatum(newrole)};

		for (size_t t = 0; t < lengthof(owned_tables); t++)
		{
			char *sql = psprintf(
				"UPDATE strata.%s SET owner = $2::pg_catalog.regrole%s "
				"WHERE owner OPERATOR(pg_catalog.=) $1::pg_catalog.regrole",
				owned_tables[t].table,
				t == 0 ? ", generation = generation OPERATOR(pg_catalog.+) 1"
					   : "");

			if (SPI_execute_with_args(sql, 2, argtypes, args, NULL, false,
									  0) != SPI_OK_UPDATE)
				elog(ERROR, "could not update strata.%s",
					 owned_tables[t].table);
		}
	}
	SPI_finish();
	priv_exit(&scope);
	/* the cached definitions of every backend */
	CacheInvalidateRelcacheByRelid(strata_relid("projections"));
	CacheInvalidateRelcacheByRelid(strata_relid("aggregates"));
	CacheInvalidateRelcacheByRelid(strata_relid("commands"));
}

/*
 * Before a utility statement (from the library's ProcessUtility hook):
 * DROP ROLE of a role that owns definitions or subscriptions is refused.
 */
void
privilege_before_utility(Node *parsetree)
{
	if (IsA(parsetree, DropRoleStmt) && IsTransactionState())
		priv_check_drop_roles(((DropRoleStmt *) parsetree)->roles);
}

/* After a utility statement: REASSIGN OWNED moves our owners too */
void
privilege_after_utility(Node *parsetree)
{
	if (IsA(parsetree, ReassignOwnedStmt))
		priv_reassign((ReassignOwnedStmt *) parsetree);
}
