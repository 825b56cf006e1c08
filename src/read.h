/*-------------------------------------------------------------------------
 *
 * read.h
 *	  The read path: strata.read_stream(), strata.read_all() and
 *	  strata.read_category().  All three return rows of strata.events.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_READ_H
#define STRATA_READ_H

#include "postgres.h"

/* Largest max_count a read accepts */
#define READ_MAX_COUNT 1000000

#endif /* STRATA_READ_H */
