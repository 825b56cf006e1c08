/*-------------------------------------------------------------------------
 *
 * health.h
 *	  Whether this server is configured so that a strata worker can run
 *	  the current database's subscriptions, and if not, which setting to
 *	  change (health.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_HEALTH_H
#define STRATA_HEALTH_H

#include "postgres.h"

/* What keeps the workers from running here: the setting and what to do */
typedef struct HealthProblem
{
	const char *setting; /* the parameter to change */
	char	   *message; /* errmsg style: lower case, no period */
	char	   *hint;	 /* errhint style: a full sentence */
} HealthProblem;

/* The first problem found, palloc'd, or NULL when none is */
extern HealthProblem *health_problem(void);

/* WARNING about it, for a call that made work for a worker */
extern void health_warn(const char *what);

#endif /* STRATA_HEALTH_H */
