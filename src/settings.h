/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Every GUC of pg_strata (strata.*), defined in one place
 *	  (settings.c) and read by the modules named beside each.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_SETTINGS_H
#define STRATA_SETTINGS_H

#include "postgres.h"

/* strata.max_event_size (bytes): largest event append accepts */
extern int strata_max_event_size;

/* strata.command_retries: reloads of strata.execute after a conflict */
extern int strata_command_retries;

/* strata.databases: databases to run workers in ("" = all); see below */
extern char *worker_databases;

/* strata.max_workers (server start): most databases served at once */
extern int worker_max_workers;

/* strata.handler_workers (server start): handler processes per database */
extern int worker_handler_workers;

/* strata.retry_base_delay (ms): first delay before a handler retry */
extern int worker_retry_base_delay;

/* strata.max_attempts: attempts at an event before parking it */
extern int worker_max_attempts;

/* strata.wal_warning_size (MB): retained WAL flagged by the status */
extern int worker_wal_warning_size;

/* strata.worker_batch_size: events per handler transaction */
extern int worker_batch_size;

/* strata.worker_memory: kB of decoded transactions' runs (worker_txns.c) */
extern int worker_memory;

/* strata.handler_timeout (ms): longest call of a handler, 0 = none */
extern int worker_handler_timeout;

/* Most handler processes per database (strata.handler_workers' maximum) */
#define SETTINGS_MAX_HANDLER_WORKERS 63

extern void settings_define(void);
extern bool settings_database_wanted(const char *dbname);

#endif /* STRATA_SETTINGS_H */
