/*-------------------------------------------------------------------------
 *
 * strata.c
 *	  Entry point of pg_strata: _PG_init, with the library's one pair of
 *	  shared-memory hooks and its one utility hook, and the check that
 *	  the library was preloaded.
 *
 * The extension keeps a registry of in-flight appends in shared memory
 * (see registry.c), so it must be loaded through shared_preload_libraries.
 * Loaded any other way, every SQL function refuses to run with a hint
 * that says what to set.  The GUCs are all defined in settings.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "strata.h"
#include "privilege.h"
#include "progress.h"
#include "registry.h"
#include "settings.h"
#include "workers.h"

PG_MODULE_MAGIC;

bool strata_preloaded = false;

void _PG_init(void);

PG_FUNCTION_INFO_V1(strata_check_preload);

static shmem_request_hook_type	prev_shmem_request_hook = NULL;
static shmem_startup_hook_type	prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* The shared memory of the registry and of the workers */
static void
strata_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	registry_shmem_request();
	progress_shmem_request();
	workers_shmem_request();
}

static void
strata_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	registry_shmem_init();
	progress_shmem_init();
	workers_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The library's utility hook: DROP ROLE and REASSIGN OWNED keep the
 * owners of definitions and subscriptions right (privilege.c); DROP
 * DATABASE first stops that database's worker (workers.c).
 */
static void
strata_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node *parsetree = pstmt->utilityStmt;

	privilege_before_utility(parsetree);
	if (strata_preloaded && IsA(parsetree, DropdbStmt))
		workers_before_drop_database(((DropdbStmt *) parsetree)->dbname);

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	privilege_after_utility(parsetree);
}

/*
 * Define the GUCs and the utility hook and, when preloaded, the shared
 * memory, the transaction callback of the registry and the launcher.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	settings_define();

	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = strata_process_utility;

	if (!process_shared_preload_libraries_in_progress)
		return;

	strata_preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = strata_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = strata_shmem_startup;
	registry_init();
	workers_register();
}

/*
 * Raise a clear error when the library was not preloaded: without the
 * shared registry, reads could not keep their ordering promise.
 */
void
strata_require_preload(void)
{
	if (likely(strata_preloaded))
		return;

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pg_strata must be loaded via shared_preload_libraries"),
			 errdetail("The extension keeps its registry of in-flight appends "
					   "in shared memory, which is only set up at server "
					   "start."),
			 errhint("Add 'strata' to shared_preload_libraries in "
					 "postgresql.conf and restart the server.")));
}

/*
 * strata._check_preload(): called by the install script so that CREATE
 * EXTENSION fails early with the same hint.
 */
Datum
strata_check_preload(PG_FUNCTION_ARGS)
{
	strata_require_preload();
	PG_RETURN_VOID();
}

/*
 * Return the saved SPI plan in *cache, preparing and keeping it on first
 * use.  Queries name every object with its schema and every operator with
 * OPERATOR(pg_catalog.x), so a caller's search_path cannot change them.
 * Must be called between SPI_connect and SPI_finish.
 */
SPIPlanPtr
strata_prepare(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr plan;

	if (*cache != NULL)
		return *cache;

	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*cache = plan;
	return plan;
}

/*
 * OID of a relation of the extension's schema.  Looked up on each call
 * (two syscache probes) so that DROP and CREATE EXTENSION in the same
 * session never leave a stale OID behind.
 */
Oid
strata_relid(const char *relname)
{
	Oid nspid = get_namespace_oid(STRATA_SCHEMA, false);
	Oid relid = get_relname_relid(relname, nspid);

	if (!OidIsValid(relid))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("relation \"%s.%s\" does not exist",
							   STRATA_SCHEMA, relname),
						errhint("Reinstall the extension with DROP EXTENSION "
								"strata and CREATE EXTENSION strata.")));
	return relid;
}

/*
 * Copy jsonb column 'col' of row 'row' of the last SPI result into
 * 'cxt', detoasted, so that it outlives SPI_finish (which frees the SPI
 * procedure context, where a plain DatumGetJsonbP may have put it).
 * Returns NULL for a NULL value.
 */
Jsonb *
strata_spi_jsonb(uint64 row, int col, MemoryContext cxt)
{
	bool  isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
							col, &isnull);
	MemoryContext old;
	Jsonb		 *copy;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	copy = DatumGetJsonbPCopy(d);
	MemoryContextSwitchTo(old);
	return copy;
}
