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

/* Expected-version modes, as EventStoreDB's */
#define APPEND_EXPECT_ANY			(-2)
#define APPEND_EXPECT_NO_STREAM		(-1)
#define APPEND_EXPECT_STREAM_EXISTS (-4)

#endif /* STRATA_APPEND_H */
