#!/bin/bash
# bench/instructions.sh: instructions per single-event append, counted by
# valgrind (callgrind), which unlike pgbench's tps does not depend on what
# else the machine is doing.
#
# A single-user backend (postgres --single: no postmaster, no worker) in a
# throwaway data directory runs N statements `SELECT strata.append(...)`,
# one event each over 100 existing streams, then the same with N = 0; the
# difference divided by N is one append, parse and plan of its statement
# included.  The raw INSERT of the same row into a plain table with the
# indexes of strata.events (bench/setup.sql's raw_events) is counted the
# same way, as the baseline.
#
#   bench/instructions.sh                  the installed strata.so
#   STRATA_LIB=/path/strata.so bench/instructions.sh
#                                          another build (copied over the
#                                          installed one for the run, then
#                                          put back)
#   STRATA_VERSION=0.3.0                   CREATE EXTENSION ... VERSION, for
#                                          an older build
#   BENCH_N=2000 (default)                 statements per measurement
#
# Runs as root (the backend runs as the postgres user).  Needs valgrind.
set -eu
cd "$(dirname "$0")/.."
N=${BENCH_N:-2000}
BIN=$(pg_config --bindir)
LIB=$(pg_config --pkglibdir)
WORK=$(mktemp -d /tmp/strata-instr.XXXXXX)
chown postgres: "$WORK"
SAVED=""
cleanup() {
	[ -n "$SAVED" ] && cp "$SAVED" "$LIB/strata.so"
	rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "${STRATA_LIB:-}" ]; then
	SAVED="$WORK/installed-strata.so"
	cp "$LIB/strata.so" "$SAVED"
	cp "$STRATA_LIB" "$LIB/strata.so"
fi
command -v valgrind >/dev/null || { echo "instructions: needs valgrind" >&2; exit 1; }

# count KIND N: instructions of a backend running N statements of KIND
count() {
	local kind=$1 n=$2 d="$WORK/data-$1-$2" i
	su postgres -c "$BIN/initdb -D $d -A trust" >/dev/null
	echo "shared_preload_libraries = 'strata'" >> "$d/postgresql.conf"
	su postgres -c "$BIN/postgres --single -D $d postgres" >/dev/null 2>&1 <<-SQL
		CREATE EXTENSION strata ${STRATA_VERSION:+VERSION '$STRATA_VERSION'};
		CREATE TABLE raw_events (LIKE strata.events INCLUDING ALL);
		SELECT strata.append('s-' || i, '{"type": "Opened"}') FROM generate_series(1, 100) i;
	SQL
	for i in $(seq 1 "$n"); do
		if [ "$kind" = append ]; then
			echo "SELECT strata.append('s-$((i % 100 + 1))', '{\"type\": \"Deposited\", \"data\": {\"amount\": $i}}');"
		else
			echo "INSERT INTO raw_events VALUES ($((i + 1000)), 's-$((i % 100 + 1))', $i, gen_random_uuid(), 'Deposited', '{\"amount\": $i}', '{}', now(), 's');"
		fi
	done > "$WORK/in-$kind-$n.sql"
	chown postgres: "$WORK/in-$kind-$n.sql"
	su postgres -c "valgrind --tool=callgrind --callgrind-out-file=$WORK/cg-$kind-$n.out $BIN/postgres --single -D $d postgres < $WORK/in-$kind-$n.sql" \
		>/dev/null 2>"$WORK/vg-$kind-$n.log"
	grep -o 'Collected : [0-9]*' "$WORK/vg-$kind-$n.log" | awk '{print $3}'
}

for kind in append raw; do
	base=$(count "$kind" 0)
	full=$(count "$kind" "$N")
	per=$(( (full - base) / N ))
	eval "per_$kind=$per"
	echo "$kind: $per instructions per statement ($N statements: $full, none: $base)"
done
# shellcheck disable=SC2154
awk -v a="$per_append" -v r="$per_raw" \
	'BEGIN { printf "append / raw INSERT: %.3f\n", a / r }'
