/*-------------------------------------------------------------------------
 *
 * aggregate.h
 *	  Aggregates: reducers that fold a stream into state, and snapshots.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_AGGREGATE_H
#define STRATA_AGGREGATE_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "version.h"

/* at_version meaning "the head of the stream" */
#define AGGREGATE_HEAD PG_INT64_MAX

extern Jsonb *aggregate_load(const char *stream, const char *category,
							 int64 at_version, int64 *version, StrataApi api,
							 bool may_save);

#endif /* STRATA_AGGREGATE_H */
