/*-------------------------------------------------------------------------
 *
 * version.c
 *	  Which SQL API version of pg_strata the current database has
 *	  installed, for the code that no SQL function enters (see version.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "version.h"

/* The versions sql/ installs, as pg_extension.extversion spells them */
static const struct
{
	const char *name;
	StrataApi	api;
} strata_versions[] = {
	/* clang-format off */
	{"0.1.0", STRATA_API_0_1},
	{"0.2.0", STRATA_API_0_2},
	{"0.3.0", STRATA_API_0_3},
	{"0.4.0", STRATA_API_0_4},
	{"0.5.0", STRATA_API_0_5},
	{"0.6.0", STRATA_API_0_6},
	/* clang-format on */
};

/*
 * The SQL API version of the extension installed in the current database
 * (STRATA_API_NONE when it is not installed), from pg_extension.extversion.
 * PostgreSQL 15 has no syscache of pg_extension by name: this is one probe
 * of its name index, the lookup get_extension_oid() makes.  A version this
 * library does not know is STRATA_API_NEWER (the SQL of a later release
 * under a downgraded library), which callers take for at least the newest
 * they know: raising an error here would make DROP ROLE fail in that
 * database and the worker restart for ever.  In a transaction.  During ALTER EXTENSION UPDATE, extversion is already the
 * version the running script is creating.
 */
StrataApi
strata_installed_api(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("strata"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool  isnull;
		Datum d = heap_getattr(tup, Anum_pg_extension_extversion,
							   RelationGetDescr(rel), &isnull);

		version = isnull ? pstrdup("") : TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (version == NULL)
		return STRATA_API_NONE;
	for (size_t i = 0; i < lengthof(strata_versions); i++)
		if (strcmp(strata_versions[i].name, version) == 0)
			return strata_versions[i].api;
	/* a newer release's SQL under this (older) library */
	return STRATA_API_NEWER;
}
