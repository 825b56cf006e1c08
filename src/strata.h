/*-------------------------------------------------------------------------
 *
 * strata.h
 *	  Module-wide declarations of pg_strata: load state, helpers and the
 *	  SQLSTATEs the extension raises (catalogued in docs/errors.md).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_H
#define STRATA_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/jsonb.h"

#if PG_VERSION_NUM < 150000
#error "pg_strata requires PostgreSQL 15 or later"
#endif
/* what differs between the versions it supports: compat.h */

/* SQLSTATEs of our own, class "ST" (implementation-defined classes) */
#define ERRCODE_STRATA_WRONG_EXPECTED_VERSION                                 \
	MAKE_SQLSTATE('S', 'T', '0', '0', '1')
#define ERRCODE_STRATA_DUPLICATE_EVENT_ID                                     \
	MAKE_SQLSTATE('S', 'T', '0', '0', '2')
#define ERRCODE_STRATA_IMMUTABLE_EVENTS MAKE_SQLSTATE('S', 'T', '0', '0', '3')
#define ERRCODE_STRATA_INVALID_RESULT	MAKE_SQLSTATE('S', 'T', '0', '0', '4')
#define ERRCODE_STRATA_EVENT_PARKED		MAKE_SQLSTATE('S', 'T', '0', '0', '5')
#define ERRCODE_STRATA_POSITION_LOST	MAKE_SQLSTATE('S', 'T', '0', '0', '6')

/* Schema every SQL object of the extension lives in */
#define STRATA_SCHEMA "strata"

/*
 * The search_path of the extension's own queries and of user code it runs
 * (PostgreSQL 17's GUC_SAFE_SEARCH_PATH): no schema a role could plant an
 * object in comes before pg_catalog, and pg_temp is never searched for
 * functions or operators.
 */
#define STRATA_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* true when the library was loaded through shared_preload_libraries */
extern bool strata_preloaded;

extern void		  strata_require_preload(void);
extern SPIPlanPtr strata_prepare(SPIPlanPtr *cache, const char *sql, int nargs,
								 Oid *argtypes);
extern Oid		  strata_relid(const char *relname);
extern Jsonb	 *strata_spi_jsonb(uint64 row, int col, MemoryContext cxt);

#endif /* STRATA_H */
