/*-------------------------------------------------------------------------
 *
 * projection.h
 *	  Inline projections: handlers that keep read models in step with the
 *	  events, run inside the appending transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_PROJECTION_H
#define STRATA_PROJECTION_H

#include "postgres.h"

#include "version.h"

extern bool projection_inline_wanted(StrataApi api, const char *category);
extern void projection_apply_inline(StrataApi api, Datum *row,
									const char *category, const char *type);

#endif /* STRATA_PROJECTION_H */
