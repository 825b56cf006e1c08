#!/bin/bash
# bench/status.sh: the cost of one query of strata.subscription_status
# with a large backlog (issue #11: it must stay cheap), 0.4.0's view
# (which counted the events behind) against 0.5.0's (an estimate from
# positions), on the same data in the same cluster.  Run by `make bench`
# after the subscription benchmarks; BENCH_ONLY=status bench/run.sh runs
# it alone.
#
# Starts one throwaway cluster (pg_virtualenv with the options of
# scripts/cluster.sh), creates the extension at version 0.4.0, appends
# BENCH_STATUS_EVENTS events (1,000 per strata.append), subscribes from
# the beginning and pauses the subscription at once, so that every event
# stays behind; times BENCH_STATUS_RUNS queries of the view (median, in
# psql's \timing), updates the extension to 0.5.0 and times the same
# queries again.  Prints both medians, their ratio, and events_behind as
# each version reports it (0.4.0's count against 0.5.0's estimate).
#
# Settings (environment):
#   BENCH_STATUS_EVENTS  events behind          (default 1000000)
#   BENCH_STATUS_RUNS    queries per version    (default 7)
#   BENCH_PGV_OPTS       more pg_virtualenv options (default none)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

if [ -z "${BENCH_STATUS_IN_CLUSTER:-}" ]; then
	# shellcheck disable=SC1091
	. scripts/cluster.sh
	export BENCH_STATUS_IN_CLUSTER=1
	# shellcheck disable=SC2086
	exec pg_virtualenv $PGV_OPTS ${BENCH_PGV_OPTS:-} "$0" "$@"
fi

EVENTS=${BENCH_STATUS_EVENTS:-1000000}
RUNS=${BENCH_STATUS_RUNS:-7}
OUT=bench/out
mkdir -p "$OUT"
createdb strata_status
psql() { command psql -X -q -v ON_ERROR_STOP=1 -d strata_status "$@"; }

psql -c "CREATE EXTENSION strata VERSION '0.4.0'"
psql -c "CREATE FUNCTION noop(e strata.events) RETURNS void LANGUAGE sql AS 'SELECT'"
psql -c "SELECT strata.append('s-' || b, (SELECT jsonb_agg(jsonb_build_object('type', 'E'))
	FROM generate_series(1, 1000))) FROM generate_series(1, $EVENTS / 1000) b"
psql -c "BEGIN; SELECT strata.subscribe('behind', 'noop(strata.events)', start_from => 'beginning');
	SELECT strata.pause_subscription('behind'); COMMIT;"
psql -c "VACUUM ANALYZE strata.events"

# median of RUNS timings (ms) of one query of the view
time_status() {
	for _ in $(seq "$RUNS"); do
		psql -c '\timing on' -c 'SELECT * FROM strata.subscription_status' |
			sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
	done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
behind() { psql -At -c "SELECT events_behind FROM strata.subscription_status WHERE name = 'behind'"; }

old_ms=$(time_status)
old_behind=$(behind)
psql -c "ALTER EXTENSION strata UPDATE TO '0.5.0'"
new_ms=$(time_status)
new_behind=$(behind)
ratio=$(awk -v a="$old_ms" -v b="$new_ms" 'BEGIN {printf "%.1f", a / b}')
{
	echo "## subscription_status with $EVENTS events behind (median of $RUNS queries)"
	echo
	echo "| version | one query (ms) | events_behind |"
	echo "|---|---:|---:|"
	echo "| 0.4.0 (counts) | $old_ms | $old_behind |"
	echo "| 0.5.0 (estimates) | $new_ms | $new_behind |"
	echo
	echo "0.4.0 / 0.5.0: $ratio x"
} | tee "$OUT/status.md"
