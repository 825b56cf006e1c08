/*-------------------------------------------------------------------------
 *
 * health.c
 *	  The server settings without which no strata worker runs the current
 *	  database's subscriptions: checked by strata.subscribe and
 *	  define_projection(mode => 'async') (a WARNING), strata.wait_for (an
 *	  ERROR) and strata.subscription_status (state "not running", the
 *	  reason in last_error), so that the user sees why where they look,
 *	  not only in the server log.
 *
 * Only settings are checked, never the processes: a worker that should
 * run but does not (it is starting, or failing) has its own state in the
 * status view.  On a standby nothing is checked: no worker runs there by
 * design, the progress arrives from the primary.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "strata.h"
#include "health.h"
#include "settings.h"

/* The output plugin's name, as output_plugin_libraries must list it */
#define HEALTH_PLUGIN_NAME "strata"

/* A new problem */
static HealthProblem *
health_new(const char *setting, char *message, char *hint)
{
	HealthProblem *p = palloc(sizeof(HealthProblem));

	p->setting = setting;
	p->message = message;
	p->hint = hint;
	return p;
}

/*
 * Does output_plugin_libraries allow the strata plugin?  PostgreSQL 15.19
 * and later refuse to decode with a library it does not name (an exact
 * match of one of its comma-separated names); earlier servers do not have
 * the parameter and allow every plugin.
 */
static bool
health_plugin_allowed(void)
{
	const char *value =
		GetConfigOption("output_plugin_libraries", true, false);
	char	 *copy;
	List	 *names;
	ListCell *lc;
	bool	  found = false;

	if (value == NULL)
		return true;
	copy = pstrdup(value);
	if (!SplitIdentifierString(copy, ',', &names))
		return false; /* the server refuses every plugin then */
	foreach (lc, names)
		if (strcmp((char *) lfirst(lc), HEALTH_PLUGIN_NAME) == 0)
			found = true;
	list_free(names);
	pfree(copy);
	return found;
}

/*
 * The first setting, in the order a DBA would fix them, that keeps every
 * strata worker (or this database's) from running: NULL when there is
 * none.  In a transaction (for the database's name).
 */
HealthProblem *
health_problem(void)
{
	char *dbname;

	if (RecoveryInProgress())
		return NULL;
	if (!strata_preloaded)
		return health_new(
			"shared_preload_libraries",
			pstrdup(
				"pg_strata is not loaded through shared_preload_libraries"),
			pstrdup("Add 'strata' to shared_preload_libraries in "
					"postgresql.conf and restart the server."));
	if (wal_level < WAL_LEVEL_LOGICAL)
		return health_new(
			"wal_level",
			psprintf("no strata worker runs while wal_level is \"%s\"",
					 GetConfigOption("wal_level", false, false)),
			pstrdup("Set wal_level = logical and restart the server."));
	if (max_replication_slots == 0)
		return health_new(
			"max_replication_slots",
			pstrdup("no strata worker runs while max_replication_slots is 0"),
			pstrdup("Set max_replication_slots to at least the number of "
					"databases with subscriptions (each worker has one "
					"slot), and restart the server."));
	if (!health_plugin_allowed())
		return health_new(
			"output_plugin_libraries",
			pstrdup("output_plugin_libraries does not list \"strata\", so "
					"the strata worker cannot decode the WAL"),
			psprintf("Add strata to output_plugin_libraries (now '%s') and "
					 "reload the configuration.",
					 GetConfigOption("output_plugin_libraries", true, false)));
	if (worker_max_workers == 0)
		return health_new(
			"strata.max_workers",
			pstrdup("no strata worker runs while strata.max_workers is 0"),
			pstrdup("Set strata.max_workers to the number of databases with "
					"subscriptions, and restart the server."));
	dbname = get_database_name(MyDatabaseId);
	if (dbname != NULL && !settings_database_wanted(dbname))
		return health_new(
			"strata.databases",
			psprintf("strata.databases does not list database \"%s\", so no "
					 "strata worker runs there",
					 dbname),
			pstrdup("Add the database to strata.databases (or set it to '' "
					"for every database) and reload the configuration."));
	return NULL;
}

/*
 * After a call that made work for a worker ('what': "the subscription is
 * stored"): a WARNING with the reason when no worker will run it.
 */
void
health_warn(const char *what)
{
	HealthProblem *p = health_problem();

	if (p == NULL)
		return;
	ereport(WARNING,
			(errmsg("%s", p->message),
			 errdetail("%s; it runs once the setting is changed.", what),
			 errhint("%s", p->hint)));
}
