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

/* Columns of strata.events, in table order (0-based) */
#define EVENTS_POSITION	   0
#define EVENTS_STREAM	   1
#define EVENTS_VERSION	   2
#define EVENTS_ID		   3
#define EVENTS_TYPE		   4
#define EVENTS_DATA		   5
#define EVENTS_METADATA	   6
#define EVENTS_RECORDED_AT 7
#define EVENTS_CATEGORY	   8
#define EVENTS_NATTS	   9

extern bool	 append_parse_uuid(const char *s, int len, pg_uuid_t *out);
extern int64 append_events(const char *stream, const char *category,
						   Jsonb *events, int64 expected, StrataApi api);

#endif /* STRATA_APPEND_H */
