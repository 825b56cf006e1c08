# scripts/cluster.sh: sourced by the scripts that start a throwaway cluster.
# PGV_OPTS holds the pg_virtualenv options every such cluster gets: the
# settings of test/strata.conf, one "-o name=value" each.
# (bash names the sourced file in BASH_SOURCE; scripts/pgv, a sh script,
# lives beside this one)
STRATA_TEST_CONF="$(dirname "${BASH_SOURCE:-$0}")/../test/strata.conf"
PGV_OPTS=$(sed -n 's/^[[:space:]]*\([a-z_.]*\)[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/-o \1=\2/p' \
	"$STRATA_TEST_CONF" | paste -sd' ')
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
