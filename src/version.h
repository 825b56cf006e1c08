/*-------------------------------------------------------------------------
 *
 * version.h
 *	  The SQL API versions of pg_strata: which release's install and
 *	  upgrade scripts made the objects of a database.
 *
 * The library serves every SQL version that sql/ can install: a database
 * keeps the SQL of its version until ALTER EXTENSION strata UPDATE, under
 * the newest library.  Where a function's C behaviour depends on the
 * schema of its version, each version's script binds an entry point of
 * its own (strata_append for 0.1.0, strata_append_0_2 for 0.2.0, ...),
 * a thin wrapper that passes its StrataApi down to the shared code, which
 * switches on it: the C code never looks at the installed schema.  Code
 * that no SQL function enters (utility hooks, background workers) asks
 * strata_installed_api() instead.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_VERSION_H
#define STRATA_VERSION_H

#include "postgres.h"

/*
 * The versions, in release order, so that "api >= STRATA_API_0_4" reads
 * "the schema of 0.4.0 or later".  Add one with every release that
 * changes the schema or a function's signature.
 */
typedef enum StrataApi
{
	STRATA_API_NONE = 0, /* the extension is not installed here */
	STRATA_API_0_1,		 /* the event log */
	STRATA_API_0_2,		 /* aggregates, commands, inline projections */
	STRATA_API_0_3,		 /* subscriptions, async projections (mode) */
	STRATA_API_0_4,		 /* owners of definitions and subscriptions */
	STRATA_API_0_5,		 /* wait_for raises on parked events */
	STRATA_API_0_6,		 /* epochs: positions never go back at a failover */
	STRATA_API_NEWER	 /* a version this library does not know */
} StrataApi;

/* The version of the newest scripts, default_version of strata.control */
#define STRATA_API_LATEST STRATA_API_0_6

extern StrataApi strata_installed_api(void);

#endif /* STRATA_VERSION_H */
