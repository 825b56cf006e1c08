#!/bin/sh
# scripts/instance.sh DIR [MODE]: decide where `make installcheck` runs its
# suites, print it (server, temp or virtualenv), and write in DIR what the
# other two need: strata.conf (pg_regress --temp-config) and pgv_opts
# (pg_virtualenv options).  The Makefile's installcheck calls it.
#   server      the server that PGHOST/PGPORT name (libpq's defaults
#               otherwise), when it preloads strata and has wal_level
#               logical: scripts/test.sh's cluster, a developer's own;
#   temp        otherwise, an instance pg_regress starts for itself with
#               the settings of test/strata.conf (--temp-instance and
#               --temp-config, as pg_cron does): how `pg_buildext
#               installcheck` and `pg_virtualenv make installcheck` run
#               as a user other than root;
#   virtualenv  the same settings in a throwaway cluster of `pg_virtualenv
#               -t`, as root, since initdb (and so --temp-instance)
#               refuses root.
# MODE (STRATA_INSTANCE=... of make) forces one.  When the server that was
# asked for reads the extension's files from elsewhere (pg_virtualenv -p,
# as `pg_buildext installcheck` with a package name gives it:
# extension_destdir and dynamic_library_path), temp and virtualenv do too.
set -eu
dir=$1
mode=${2:-}
PG_CONFIG=${PG_CONFIG:-pg_config}
psql="$("$PG_CONFIG" --bindir)/psql -X -A -t -q -d postgres"
# shellcheck source=scripts/cluster.sh
. "$(dirname "$0")/cluster.sh"
mkdir -p "$dir"

ready=$($psql -c "SELECT pg_catalog.current_setting('shared_preload_libraries')
	~ '(^|[ ,])\"?strata\"?([ ,]|$)'
	AND pg_catalog.current_setting('wal_level') = 'logical'" 2>/dev/null || true)
if [ -z "$mode" ]; then
	if [ "$ready" = t ]; then
		mode=server
	elif [ "$(id -u)" -ne 0 ]; then
		mode=temp
	elif command -v pg_virtualenv >/dev/null; then
		mode=virtualenv
	else
		echo "installcheck: the server is not set up for strata (test/strata.conf), and as root pg_regress cannot start one (initdb refuses root): run it as another user, or against a server with these settings" >&2
		exit 1
	fi
fi
case $mode in
	server | temp | virtualenv) ;;
	*) echo "installcheck: STRATA_INSTANCE must be server, temp or virtualenv, not '$mode'" >&2; exit 1 ;;
esac

# where the server asked for finds the extension's files, if not at home
moved=""
if [ -n "$ready" ]; then
	moved=$($psql -F = -c "SELECT name, setting FROM pg_catalog.pg_settings
		WHERE name IN ('extension_destdir', 'dynamic_library_path')
		AND setting <> boot_val ORDER BY name" 2>/dev/null || true)
fi

[ -n "$moved" ] && [ "$mode" != server ] &&
	echo "installcheck: the extension's files as the server has them:" $moved >&2

# PGV_OPTS is "-o name=value -o name=value ...": one setting a line
{
	for opt in $PGV_OPTS; do
		[ "$opt" = "-o" ] && continue
		echo "${opt%%=*} = '${opt#*=}'"
	done
	for s in $moved; do
		echo "${s%%=*} = '${s#*=}'"
	done
} > "$dir/strata.conf"
{
	printf '%s' "$PGV_OPTS"
	for s in $moved; do
		printf ' -o %s' "$s"
	done
	echo
} > "$dir/pgv_opts"
echo "$mode"
