#!/bin/bash
# bench/epochs.sh: what the epochs of 0.6.0 (issue #16) cost an append and
# a read.  0.6.0's strata.append checks the epoch before the first
# position of each transaction, and read_all checks its cursor against
# the lost ranges; 0.5.0's SQL, served by the same library, does neither.
# Two databases in one throwaway cluster, one at 0.5.0 and one at 0.6.0,
# each with BENCH_EPOCH_EVENTS events; BENCH_ROUNDS rounds alternate
# between them (AB, BA, ...): pgbench of bench/append_single.sql (one
# event per transaction, the case where the check weighs most), then of
# a read_all of 10 events after a random position; medians and the ratio
# 0.6.0 / 0.5.0 (1.00: the same).  Run by `make bench`; BENCH_ONLY=epochs
# bench/run.sh runs it alone.
#
# Settings (environment):
#   BENCH_SECONDS       seconds per pgbench run        (default 10)
#   BENCH_ROUNDS        rounds                          (default 5)
#   BENCH_CLIENTS       pgbench clients                 (default 4)
#   BENCH_EPOCH_EVENTS  events in each database first   (default 100000)
#   BENCH_PGV_OPTS      more pg_virtualenv options      (default none)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

if [ -z "${BENCH_EPOCHS_IN_CLUSTER:-}" ]; then
	# shellcheck disable=SC1091
	. scripts/cluster.sh
	export BENCH_EPOCHS_IN_CLUSTER=1
	# shellcheck disable=SC2086
	exec pg_virtualenv $PGV_OPTS ${BENCH_PGV_OPTS:-} "$0" "$@"
fi

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CLIENTS=${BENCH_CLIENTS:-4}
EVENTS=${BENCH_EPOCH_EVENTS:-100000}
OUT=bench/out
mkdir -p "$OUT"
READ_SQL=$OUT/epochs_read.sql
cat > "$READ_SQL" <<EOF
\\set p random(1, $EVENTS)
SELECT count(*) FROM strata.read_all(:p, 10);
EOF

for v in 0.5.0 0.6.0; do
	db=strata_${v//./_}
	createdb "$db"
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION strata VERSION '$v'" \
		-c "SELECT strata.append('s-' || b, (SELECT jsonb_agg(jsonb_build_object('type', 'E'))
			FROM generate_series(1, 1000))) FROM generate_series(1, $EVENTS / 1000) b" \
		-c "VACUUM ANALYZE strata.events"
done
psql -X -q -d strata_0_6_0 -At -c "SELECT 'epochs at 0.6.0: ' || count(*) FROM strata.epochs"

# tps of one pgbench run of script $2 in database $1
tps() {
	psql -X -q -d "$1" -c CHECKPOINT
	pgbench -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$2" "$1" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for what in append read; do
	script=bench/append_single.sql
	[ $what = read ] && script=$READ_SQL
	: > "$OUT/epochs_$what.0_5_0"
	: > "$OUT/epochs_$what.0_6_0"
	for r in $(seq "$ROUNDS"); do
		order="0_5_0 0_6_0"
		[ $((r % 2)) = 0 ] && order="0_6_0 0_5_0"
		for v in $order; do
			tps "strata_$v" "$script" >> "$OUT/epochs_$what.$v"
		done
	done
done

{
	echo "## Epochs (0.6.0) against 0.5.0: medians of $ROUNDS rounds of ${SECONDS_PER_RUN} s, $CLIENTS clients"
	echo
	echo "| workload | 0.5.0 (tps) | 0.6.0 (tps) | 0.6.0 / 0.5.0 |"
	echo "|---|---:|---:|---:|"
	for what in append read; do
		a=$(median < "$OUT/epochs_$what.0_5_0")
		b=$(median < "$OUT/epochs_$what.0_6_0")
		label="strata.append, one event per transaction"
		[ $what = read ] && label="strata.read_all, 10 events after a random position"
		echo "| $label | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}') |"
	done
} | tee "$OUT/epochs.md"
