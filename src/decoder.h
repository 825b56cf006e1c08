/*-------------------------------------------------------------------------
 *
 * decoder.h
 *	  The logical decoding output plugin "strata": the committed inserts
 *	  into strata.events as a commit-ordered JSON feed.
 *
 * The plugin has no cross-file functions: PostgreSQL finds it through
 * _PG_output_plugin_init, which every output plugin exports.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_DECODER_H
#define STRATA_DECODER_H

#include "postgres.h"

#include "replication/output_plugin.h"

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

#endif /* STRATA_DECODER_H */
