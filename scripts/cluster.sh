# scripts/cluster.sh: sourced by the scripts that start a throwaway cluster.
# PGV_OPTS holds the pg_virtualenv options every such cluster gets.
PGV_OPTS="-o shared_preload_libraries=strata -o wal_level=logical \
-o max_prepared_transactions=4 -o max_replication_slots=8 \
-o max_wal_senders=8 -o max_worker_processes=16"
# PostgreSQL 15.19 and later allow only the output plugins named in
# output_plugin_libraries; older servers do not know the parameter and
# would refuse to start with it, so it is set only where it exists.  No
# blanks in the value: PGV_OPTS is split on them (pg_createcluster quotes
# the value in postgresql.conf).  wal2json is the benchmark's peer.
STRATA_OUTPUT_PLUGINS="pgoutput,test_decoding,strata,wal2json"
if "$(${PG_CONFIG:-pg_config} --bindir)/postgres" --describe-config 2>/dev/null |
	grep -q '^output_plugin_libraries[[:space:]]'; then
	PGV_OPTS="$PGV_OPTS -o output_plugin_libraries=$STRATA_OUTPUT_PLUGINS"
fi
