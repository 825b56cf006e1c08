/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The GUCs of pg_strata, all of them, defined by _PG_init through
 *	  settings_define(), and the parsed form of strata.databases.
 *
 * The settings that size shared memory (strata.max_workers,
 * strata.handler_workers) can only be defined while the library is
 * preloaded; the others exist in every backend that loads it, so that
 * SET and SHOW work and MarkGUCPrefixReserved can reserve "strata.".
 *
 * strata.databases is parsed once, by its check hook, whenever it is
 * set: a bad list is refused at SET/reload time with the reason, and the
 * launcher's scans only compare names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "compat.h"
#include "settings.h"

int	  strata_max_event_size = 1024 * 1024;
int	  strata_command_retries = 3;
char *worker_databases = NULL;
int	  worker_max_workers = 8;
int	  worker_handler_workers = 2;
int	  worker_retry_base_delay = 100;
int	  worker_max_attempts = 5;
int	  worker_wal_warning_size = 1024;
int	  worker_batch_size = 1000;
int	  worker_memory = 32 * 1024;
int	  worker_handler_timeout = 60 * 1000;

/*
 * strata.databases, parsed: 'count' names, each zero-terminated, one
 * after the other in 'names'.  Kept by the GUC machinery as the setting's
 * "extra" (compat_guc_extra_alloc), so it always matches the value in
 * force.
 */
typedef struct DatabaseList
{
	int	 count;
	char names[FLEXIBLE_ARRAY_MEMBER];
} DatabaseList;

static DatabaseList *databases = NULL;

/* Check hook of strata.databases: a list of identifiers, parsed once. */
static bool
settings_check_databases(char **newval, void **extra, GucSource source)
{
	char		 *raw = pstrdup(*newval);
	List		 *names;
	ListCell	 *lc;
	Size		  size = offsetof(DatabaseList, names);
	DatabaseList *list;
	char		 *p;

	if (!SplitIdentifierString(raw, ',', &names))
	{
		GUC_check_errdetail("List syntax is invalid.");
		GUC_check_errhint("Write database names separated by commas, "
						  "double-quoting names that need it.");
		pfree(raw);
		list_free(names);
		return false;
	}
	foreach (lc, names)
		size += strlen((char *) lfirst(lc)) + 1;

	list = (DatabaseList *) compat_guc_extra_alloc(size);
	if (list == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errdetail("Out of memory.");
		pfree(raw);
		list_free(names);
		return false;
	}
	list->count = list_length(names);
	p = list->names;
	foreach (lc, names)
	{
		strcpy(p, (char *) lfirst(lc));
		p += strlen(p) + 1;
	}
	pfree(raw);
	list_free(names);
	*extra = list;
	return true;
}

static void
settings_assign_databases(const char *newval, void *extra)
{
	databases = (DatabaseList *) extra;
}

/* Is 'dbname' one of strata.databases (or is the list empty)? */
bool
settings_database_wanted(const char *dbname)
{
	const char *p;

	if (databases == NULL || databases->count == 0)
		return true;
	p = databases->names;
	for (int i = 0; i < databases->count; i++)
	{
		if (strcmp(p, dbname) == 0)
			return true;
		p += strlen(p) + 1;
	}
	return false;
}

/*
 * Define every strata.* setting and reserve the prefix.  Called once
 * from _PG_init.
 */
void
settings_define(void)
{
	DefineCustomIntVariable(
		"strata.max_event_size", "Largest event accepted by strata.append.",
		"The size of an event is the size of its type, "
		"data and metadata.",
		&strata_max_event_size, 1024 * 1024, 64, 256 * 1024 * 1024, PGC_SUSET,
		GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.command_retries",
		"How many times strata.execute reloads and retries "
		"a command after a version conflict.",
		"After the last retry it raises ST001.", &strata_command_retries, 3, 0,
		1000, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable(
		"strata.databases", "Databases the strata launcher runs workers in.",
		"A comma-separated list of names; empty means every database "
		"that has the extension.",
		&worker_databases, "", PGC_SIGHUP, GUC_LIST_INPUT,
		settings_check_databases, settings_assign_databases, NULL);
	DefineCustomIntVariable(
		"strata.retry_base_delay",
		"Delay before the first retry of a failed subscription handler.",
		"Each further retry waits twice as long.", &worker_retry_base_delay,
		100, 1, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.max_attempts",
		"Attempts at an event before a subscription parks it (or stops).",
		NULL, &worker_max_attempts, 5, 1, 1000, PGC_SIGHUP, 0, NULL, NULL,
		NULL);
	DefineCustomIntVariable(
		"strata.wal_warning_size",
		"Retained WAL above which strata.subscription_status warns.", NULL,
		&worker_wal_warning_size, 1024, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_MB,
		NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.worker_batch_size",
		"Most events a strata worker hands to a subscription in one "
		"transaction.",
		NULL, &worker_batch_size, 1000, 1, 1000000, PGC_SIGHUP, 0, NULL, NULL,
		NULL);
	DefineCustomIntVariable(
		"strata.worker_memory",
		"Most memory a strata worker keeps for the transactions it decoded.",
		"The positions of the events waiting for handlers, as runs of "
		"consecutive positions; a transaction whose runs would go beyond "
		"this keeps them in a temporary file.  Logical decoding itself "
		"uses up to logical_decoding_work_mem besides.",
		&worker_memory, 32 * 1024, 64, MAX_KILOBYTES, PGC_SIGHUP, GUC_UNIT_KB,
		NULL, NULL, NULL);
	DefineCustomIntVariable(
		"strata.handler_timeout",
		"Longest call of a subscription handler by a strata worker.",
		"A call that takes longer is interrupted and counts as a failed "
		"attempt (retried, then parked or stopped); 0 turns it off.",
		&worker_handler_timeout, 60 * 1000, 0, INT_MAX, PGC_SIGHUP,
		GUC_UNIT_MS, NULL, NULL, NULL);

	/* a server-start setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable(
			"strata.max_workers",
			"Most databases served by strata workers at once.", NULL,
			&worker_max_workers, 8, 0, 1024, PGC_POSTMASTER, 0, NULL, NULL,
			NULL);
		DefineCustomIntVariable(
			"strata.handler_workers",
			"Handler processes of each database's strata worker.",
			"The handlers of one database's subscriptions run in this many "
			"processes at once: a handler that hangs holds one of them.",
			&worker_handler_workers, 2, 1, SETTINGS_MAX_HANDLER_WORKERS,
			PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}

	MarkGUCPrefixReserved("strata");
}
