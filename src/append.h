/*-------------------------------------------------------------------------
 *
 * append.h
 *	  The write path: strata.append() and the rules that keep the events
 *	  table immutable.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_APPEND_H
#define STRATA_APPEND_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "version.h"

/* Expected-version modes, as EventStoreDB's */
#define APPEND_EXPECT_ANY			(-2)
#define APPEND_EXPECT_NO_STREAM		(-1)
#define APPEND_EXPECT_STREAM_EXISTS (-4)

extern bool	 append_parse_uuid(const char *s, int len, pg_uuid_t *out);
extern int64 append_events(const char *stream, const char *category,
						   Jsonb *events, int64 expected, StrataApi api,
						   bool check_content);

#endif /* STRATA_APPEND_H */
