#!/bin/bash
# bench/load.sh: the aggregate-load benchmarks of pg_strata (part of
# `make bench`; bench/run.sh calls it at its end, in run.sh's cluster).
#
# Run alone (`bench/load.sh`), it starts its own throwaway cluster with
# scripts/pgv; with BENCH_IN_CLUSTER=1 and PGHOST/PGPORT set (as inside
# bench/run.sh) it uses the running one.  Either way it creates the
# database strata_load, loads bench/load_setup.sql (one PL/pgSQL bank-
# account reducer, streams of 10,000, 100,000 and 1,000 events), then:
#   1. fold: strata.load of the 10,000-event stream acct-1, snapshots off
#      for its aggregate (snapshot_every 0: every call folds all 10,000
#      events), against public.load_loop(), a PL/pgSQL FOR loop over
#      strata.read_stream calling the same reducer; the two results are
#      checked equal once.  Target: strata.load at least 1.5 times as fast.
#   2. flat: with snapshots on (snapshot_every 100), strata.load of a
#      100,000-event stream (big-1) against a 1,000-event one (small-1),
#      each warmed by one load (which saves a snapshot) and then given 50
#      more events, so that every measured load reads the snapshot and
#      folds 50 events (the steady state; 50 < 100, so no new snapshot).
#      Target: big at most 2 times as slow as small.
#   With BENCH_DIAG=1, between the two: fold_noop, comparison 1 with a
#   reducer that returns the state unchanged (aggregate noop, stream
#   noop-1, public.load_loop_noop), to split the fold's cost from the
#   reducer's work.  No target.
# Each comparison: one unmeasured warm-up run of each side, then
# BENCH_ROUNDS rounds of one pgbench run (-n -M prepared, 1 client,
# BENCH_LOAD_SECONDS) per side, order AB, BA, AB, ...; the medians of the
# rounds give the ms per load and the ratio.  Prints a summary with the
# targets (PASS/MISS) and appends it to bench/out/summary.md; pgbench logs
# go to bench/out/load-*.log.  A missed target is reported, not an error:
# the exit status is 0 unless something failed.
# Every pgbench script and check compiles the reducers before its first
# strata.load in a session: a work-around for a bug of strata 0.2.0 (see
# bench/load_fold.sql and docs/benchmarks.md).
#
# Settings (environment):
#   BENCH_LOAD_SECONDS  seconds per pgbench run              (default 5)
#   BENCH_ROUNDS        rounds per comparison                (default 5)
#   BENCH_DIAG          1: run the diagnostic fold_noop; 0: skip it
#                                                            (default 1)
#   BENCH_PGV_OPTS      more pg_virtualenv options, when the script
#                       starts its own cluster               (default none)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

# Re-run this script inside a throwaway cluster, unless already in one.
if [ -z "${BENCH_IN_CLUSTER:-}" ]; then
	LOAD_STARTED_AT=$(date +%s)
	export BENCH_IN_CLUSTER=1 LOAD_STARTED_AT
	# shellcheck disable=SC2086
	exec scripts/pgv ${BENCH_PGV_OPTS:-} "$PWD/bench/load.sh" "$@"
fi
: "${LOAD_STARTED_AT:=$(date +%s)}"

SECS=${BENCH_LOAD_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-5}
DIAG=${BENCH_DIAG:-1}
WARMUP=2
TARGET_FOLD=1.5		# strata.load / loop, in loads per second: at least
TARGET_FLAT=2.0		# big / small, in ms per load: at most
EXTRA=50			# events appended after the warm load (< snapshot_every)

OUT=bench/out
mkdir -p "$OUT"
rm -f "$OUT"/load-*
export PGDATABASE=strata_load
RESULTS="$OUT/load-results.tsv"		# comparison round side tps
SUMMARY="$OUT/load-summary.md"

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
# sqlr SQL: the same, in a session where the reducers are compiled first
# (the first strata.load of a session where they are not may fail: see
# bench/load_fold.sql).
sqlr() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 \
		-c "DO \$\$ BEGIN PERFORM public.account_reducer('{}', NULL), public.noop_reducer('{}', NULL); END \$\$" -c "$1"
}

# pgbench SCRIPT STREAM LOGNAME ARGS...: run a script, print its tps.
bench() {
	local script=$1 stream=$2 log="$OUT/load-$3.log"
	shift 3
	if ! pgbench -n -M prepared -c 1 -j 1 -D "stream=$stream" -D warm=0 \
		-f "bench/$script.sql" "$@" > "$log" 2>&1; then
		echo "load: pgbench $script $stream failed:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	awk '/^tps = / { print $3; exit }' "$log"
}

# compare NAME SCRIPT-A STREAM-A SCRIPT-B STREAM-B: WARMUP seconds of
# each, then ROUNDS rounds of A and B, order AB in odd rounds, BA in even.
compare() {
	local name=$1 r side order tps
	local -A script stream
	script[A]=$2 stream[A]=$3 script[B]=$4 stream[B]=$5
	echo "== $name: ${ROUNDS} rounds of ${SECS}s per side, 1 client"
	for side in A B; do
		bench "${script[$side]}" "${stream[$side]}" "$name-warmup-$side" \
			-T "$WARMUP" > /dev/null
	done
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
		for side in $order; do
			tps=$(bench "${script[$side]}" "${stream[$side]}" "$name-$r-$side" -T "$SECS")
			printf '%s\t%s\t%s\t%s\n' "$name" "$r" "$side" "$tps" >> "$RESULTS"
			printf '  round %s %s %-12s %-8s %8.2f ms/load\n' "$r" "$side" \
				"${script[$side]}" "${stream[$side]}" \
				"$(awk -v t="$tps" 'BEGIN { print 1000 / t }')"
		done
	done
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== aggregate loads: set-up"
PGOPTIONS="-c client_min_messages=warning" dropdb --if-exists "$PGDATABASE"
createdb "$PGDATABASE"
t0=$(date +%s)
psql -X -q -f bench/load_setup.sql > "$OUT/load-setup.log"
SETUP_SECS=$(( $(date +%s) - t0 ))
PGVERSION=$(sql "SELECT version()")
SETTINGS=$(sql "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('fsync', 'shared_buffers', 'work_mem',
	'jit', 'autovacuum')")
COUNTS=$(sql "SELECT string_agg(stream || '=' || n, ' ' ORDER BY stream)
	FROM (SELECT stream, count(*) AS n FROM strata.events GROUP BY stream) AS x")
echo "$PGVERSION"
echo "$SETTINGS"
echo "events: $COUNTS (set-up ${SETUP_SECS}s)"
[ "$COUNTS" = "acct-1=10000 big-1=100000 noop-1=10000 small-1=1000" ] || {
	echo "load: unexpected event counts: $COUNTS" >&2
	exit 1
}

# ---- 1. fold: strata.load against the PL/pgSQL loop, snapshots off ------
# The same state and version, and the balance that SQL computes.
check=$(sqlr "SELECT (SELECT row(state, version) FROM strata.load('acct-1'))
		IS NOT DISTINCT FROM (SELECT row(state, version) FROM public.load_loop('acct-1')),
	(SELECT (state->>'balance')::numeric FROM strata.load('acct-1')) = (SELECT
		sum(CASE type WHEN 'Deposited' THEN 1 WHEN 'Withdrawn' THEN -1 ELSE 0 END
			* coalesce((data->>'amount')::numeric, 0))
		FROM strata.events WHERE stream = 'acct-1'),
	(SELECT version FROM strata.load('acct-1')) = 9999,
	(SELECT count(*) FROM strata.snapshots WHERE category = 'acct') = 0")
if [ "$check" != "t|t|t|t" ]; then
	echo "load: strata.load and public.load_loop disagree ($check):" >&2
	sqlr "SELECT 'strata.load', * FROM strata.load('acct-1')
		UNION ALL SELECT 'load_loop', * FROM public.load_loop('acct-1')" >&2
	exit 1
fi
STATE=$(sqlr "SELECT state FROM strata.load('acct-1')")
echo "fold result checked: strata.load = load_loop = $STATE, version 9999"
compare fold load_loop acct-1 load_fold acct-1

if [ "$DIAG" = 1 ]; then
	check=$(sqlr "SELECT (SELECT row(state, version) FROM strata.load('noop-1'))
		IS NOT DISTINCT FROM (SELECT row(state, version) FROM public.load_loop_noop('noop-1'))")
	[ "$check" = t ] || {
		echo "load: strata.load and public.load_loop_noop disagree" >&2
		exit 1
	}
	compare fold_noop load_loop_noop noop-1 load_fold noop-1
fi

# ---- 2. flat: 100,000 against 1,000 events, snapshots on -----------------
# Warm load: folds the whole stream, saves a snapshot at its last version.
FULL_BIG=$(sqlr "SELECT round(public.timed_load('big-1')::numeric, 1)")
FULL_SMALL=$(sqlr "SELECT round(public.timed_load('small-1')::numeric, 1)")
snaps=$(sql "SELECT string_agg(stream || '@' || version, ' ' ORDER BY stream)
	FROM strata.snapshots")
[ "$snaps" = "big-1@99999 small-1@999" ] || {
	echo "load: unexpected snapshots after the warm loads: $snaps" >&2
	exit 1
}
sql "SELECT strata.append('big-1', public.account_events(100000, $EXTRA)),
	strata.append('small-1', public.account_events(1000, $EXTRA))" > /dev/null
sql "VACUUM ANALYZE strata.events, strata.streams, strata.snapshots"
check=$(sqlr "SELECT (SELECT version FROM strata.load('big-1')) = 100000 + $EXTRA - 1,
	(SELECT version FROM strata.load('small-1')) = 1000 + $EXTRA - 1,
	(SELECT state FROM strata.load('big-1')) = (SELECT state FROM public.load_loop('big-1')),
	(SELECT state FROM strata.load('small-1')) = (SELECT state FROM public.load_loop('small-1'))")
if [ "$check" != "t|t|t|t" ]; then
	echo "load: snapshot loads disagree with the full fold ($check)" >&2
	exit 1
fi
echo "snapshots: $snaps; warm (full) loads: big ${FULL_BIG} ms, small ${FULL_SMALL} ms;" \
	"$EXTRA events appended to each, results checked"
compare flat load_snap small-1 load_snap big-1
snaps_after=$(sql "SELECT count(*) FROM strata.snapshots")
[ "$snaps_after" = 2 ] || {
	echo "load: the measured loads saved snapshots ($snaps_after in all)" >&2
	exit 1
}

# ---- summary -------------------------------------------------------------
median() {	# median tps of comparison $1, side $2
	awk -F'\t' -v c="$1" -v s="$2" '$1 == c && $3 == s { print $4 }' "$RESULTS" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR % 2) print v[(NR + 1) / 2];
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
msper() { awk -v t="$1" 'BEGIN { printf "%.3f", 1000 / t }'; }
rounds() {	# ms per load of comparison $1, side $2, by round
	awk -F'\t' -v c="$1" -v s="$2" '$1 == c && $3 == s {
		printf "%s%.3f", (n++ ? ", " : ""), 1000 / $4 }' "$RESULTS"
}
roundratios() {	# per round tps(B)/tps(A) of comparison $1 (inverted if $2 = ms)
	awk -F'\t' -v c="$1" -v u="$2" '$1 == c { t[$2, $3] = $4; if ($2 > n) n = $2 }
		END { for (r = 1; r <= n; r++) { x = t[r, "B"] / t[r, "A"]; if (u == "ms") x = 1 / x
			printf "%s%.2f", (r > 1 ? ", " : ""), x } }' "$RESULTS"
}

ms() { msper "$(median "$1" "$2")"; }
loop_tps=$(median fold A)
strata_tps=$(median fold B)
small_tps=$(median flat A)
big_tps=$(median flat B)
ratio_fold=$(awk -v a="$loop_tps" -v b="$strata_tps" 'BEGIN { printf "%.2f", b / a }')
ratio_flat=$(awk -v a="$small_tps" -v b="$big_tps" 'BEGIN { printf "%.2f", a / b }')
verdict_fold=$(awk -v r="$ratio_fold" -v t="$TARGET_FOLD" 'BEGIN { print (r >= t ? "PASS" : "MISS") }')
verdict_flat=$(awk -v r="$ratio_flat" -v t="$TARGET_FLAT" 'BEGIN { print (r <= t ? "PASS" : "MISS") }')
elapsed=$(( $(date +%s) - LOAD_STARTED_AT ))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
	echo
	echo "# pg_strata aggregate loads"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, strata $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- $PGVERSION"
	echo "- $SETTINGS"
	echo "- pgbench -n -M prepared -c 1 -T $SECS, $ROUNDS rounds (order AB, BA, ...)," \
		"${WARMUP}s warm-up per side; reducer public.account_reducer (PL/pgSQL)"
	echo "- run time of bench/load.sh: ${elapsed}s (set-up ${SETUP_SECS}s);" \
		"load average at start $LOAD_START, at end $LOAD_END"
	echo
	echo "| comparison | A, ms/load (median) | B, ms/load (median) | ratio | target | result |"
	echo "|---|---:|---:|---:|---:|---|"
	echo "| fold 10,000 events, snapshots off: A = PL/pgSQL loop over read_stream," \
		"B = strata.load; speed-up A/B | $(msper "$loop_tps") | $(msper "$strata_tps")" \
		"| $ratio_fold | >= $TARGET_FOLD | $verdict_fold |"
	if [ "$DIAG" = 1 ]; then
		noop_ratio=$(awk -v a="$(median fold_noop A)" -v b="$(median fold_noop B)" \
			'BEGIN { printf "%.2f", b / a }')
		echo "| diagnostic: the same with a reducer that returns the state" \
			"unchanged; speed-up A/B | $(ms fold_noop A) | $(ms fold_noop B)" \
			"| $noop_ratio | - | - |"
	fi
	echo "| snapshots on, $EXTRA events past the snapshot: A = 1,000-event stream," \
		"B = 100,000-event stream; slow-down B/A | $(msper "$small_tps") | $(msper "$big_tps")" \
		"| $ratio_flat | <= $TARGET_FLAT | $verdict_flat |"
	echo
	if [ "$DIAG" = 1 ]; then
		awk -v la="$(ms fold A)" -v lb="$(ms fold B)" -v na="$(ms fold_noop A)" \
			-v nb="$(ms fold_noop B)" 'BEGIN {
			printf "The account reducer'"'"'s own work (account minus noop): %.3f ms" \
				" per load in the loop, %.3f ms in strata.load, %.0f %% and %.0f %% of" \
				" the load; the fold without it: %.3f and %.3f ms (the noop row).  Were" \
				" strata.load'"'"'s fold free, the speed-up would be at most %.2f.\n",
				la - na, lb - nb, 100 * (la - na) / la, 100 * (lb - nb) / lb, na, nb,
				la / (lb - nb) }'
		echo
	fi
	echo "| run | ms per load, by round |"
	echo "|---|---|"
	echo "| fold: load_loop (A) | $(rounds fold A) |"
	echo "| fold: strata.load (B) | $(rounds fold B) |"
	echo "| fold: A/B per round | $(roundratios fold tps) |"
	if [ "$DIAG" = 1 ]; then
		echo "| fold_noop: load_loop_noop (A) | $(rounds fold_noop A) |"
		echo "| fold_noop: strata.load (B) | $(rounds fold_noop B) |"
		echo "| fold_noop: A/B per round | $(roundratios fold_noop tps) |"
	fi
	echo "| flat: small-1 (A) | $(rounds flat A) |"
	echo "| flat: big-1 (B) | $(rounds flat B) |"
	echo "| flat: B/A per round | $(roundratios flat ms) |"
	echo
	echo "Warm loads (full fold from the initial state, then a snapshot saved," \
		"one call each): big-1, 100,000 events, $FULL_BIG ms; small-1," \
		"1,000 events, $FULL_SMALL ms."
} > "$SUMMARY"

cat "$SUMMARY" >> "$OUT/summary.md"
echo
cat "$SUMMARY"
