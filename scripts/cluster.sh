# scripts/cluster.sh: sourced by the scripts that start a throwaway cluster.
# PGV_OPTS holds the pg_virtualenv options every such cluster gets.
PGV_OPTS="-o shared_preload_libraries=strata -o wal_level=logical \
-o max_prepared_transactions=4 -o max_replication_slots=8 \
-o max_wal_senders=8"
