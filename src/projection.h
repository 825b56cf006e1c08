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

extern bool projection_inline_wanted(const char *category);
extern void projection_apply_inline(Datum *row, const char *category,
									const char *type);

#endif /* STRATA_PROJECTION_H */
