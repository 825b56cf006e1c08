#!/bin/bash
# bench/run.sh: the benchmarks of pg_strata (`make bench`): the append
# benchmarks below, then the decoding benchmark of bench/decode.sh, then
# the subscription benchmarks of bench/subscribe.sh, the status view's
# cost with a large backlog (bench/status.sh), what the epochs cost an
# append and a read (bench/epochs.sh), then the worker's memory for large
# transactions (bench/memory.sh).
#
# Starts one throwaway cluster (pg_virtualenv with the options of
# scripts/cluster.sh, so pg_virtualenv's own defaults apply: fsync=off),
# loads bench/setup.sql, then:
#   1. WAL bytes per event: pg_current_wal_insert_lsn() (exact, unlike the
#      write position pg_current_wal_lsn()) before and after a fixed number
#      of events written by one client, strata.append against the raw
#      INSERT, single events and 100-event batches, two passes after a
#      CHECKPOINT (autovacuum off during this phase so that only the
#      measured writes make WAL; pg_waldump --stats splits the bytes by
#      record type; the row counts are checked);
#   2. throughput: BENCH_ROUNDS rounds, each running the raw INSERT (A) and
#      strata.append (B) for BENCH_SECONDS with pgbench, alternating the
#      order (AB, BA, AB, ...), a CHECKPOINT before every run; medians of
#      the rounds and the ratio B/A of the medians.
# Prints a summary with the targets (PASS/MISS) and writes it to
# bench/out/summary.md; raw figures go to bench/out/.  A missed target is
# reported, not an error: the exit status is 0 unless something failed.
#
# Settings (environment):
#   BENCH_SECONDS     seconds per pgbench run            (default 10)
#   BENCH_ROUNDS      rounds per comparison              (default 5)
#   BENCH_CLIENTS     pgbench clients (-c, -j)           (default 4)
#   BENCH_WARMUP      seconds of unmeasured warm-up runs (default 5)
#   BENCH_WAL_EVENTS  events per WAL measurement         (default 20000)
#   BENCH_PGV_OPTS    more pg_virtualenv options, for example
#                     "-o fsync=on"                       (default none)
#   BENCH_ONLY        append, load, decode, subscribe, status, epochs, memory or all
#                                                        (default all)
#   BENCH_DIAG        1: also run bench/raw_single_stream.sql (the raw
#                     INSERT plus the UPDATE of a stream row that
#                     strata.append does) in the single-event rounds, to
#                     split the gap; 0: skip it           (default 1)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

# BENCH_ONLY=load: only the aggregate-load benchmarks (bench/load.sh).
if [ "${BENCH_ONLY:-}" = load ]; then exec bench/load.sh; fi

# Re-run this script inside a throwaway cluster.
if [ -z "${BENCH_IN_CLUSTER:-}" ]; then
	# shellcheck disable=SC1091
	. scripts/cluster.sh
	BENCH_STARTED_AT=$(date +%s)
	export BENCH_IN_CLUSTER=1 BENCH_STARTED_AT
	case "${BENCH_ONLY:-all}" in
		decode) exec bench/decode.sh ;;
		subscribe) exec bench/subscribe.sh ;;
		memory) exec bench/memory.sh ;;
		status) exec bench/status.sh ;;
		epochs) exec bench/epochs.sh ;;
		append | all) ;;
		*) echo "bench: BENCH_ONLY must be append, load, decode, subscribe, status, epochs, memory or all" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086
	pg_virtualenv $PGV_OPTS ${BENCH_PGV_OPTS:-} "$0" "$@"
	[ "${BENCH_ONLY:-all}" = append ] && exit 0
	# then the decoding and the subscription benchmarks, each in a cluster
	# of its own
	bench/decode.sh
	bench/subscribe.sh
	bench/status.sh
	bench/epochs.sh
	# ten million events in one transaction: in make bench only
	BENCH_MEM_SIZES=${BENCH_MEM_SIZES:-1000 100000 1000000 10000000} exec bench/memory.sh
fi

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CLIENTS=${BENCH_CLIENTS:-4}
WARMUP=${BENCH_WARMUP:-5}
WAL_EVENTS=${BENCH_WAL_EVENTS:-20000}
DIAG=${BENCH_DIAG:-1}
BATCH=100
TARGET_SINGLE=0.85
TARGET_BATCH=0.70

OUT=bench/out
rm -rf "$OUT"
mkdir -p "$OUT"
export PGDATABASE=strata_bench
RESULTS="$OUT/results.tsv"		# comparison round method tps
WAL="$OUT/wal.tsv"				# method pass events bytes

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# The JSON array of the 100 events of a batch, the same for A and B.
EVENTS="["
for i in $(seq 1 $BATCH); do
	[ "$i" -gt 1 ] && EVENTS="$EVENTS, "
	EVENTS="$EVENTS{\"type\": \"Deposited\", \"data\": {\"amount\": $i}}"
done
EVENTS="$EVENTS]"

# pgbench SCRIPT LOGNAME ARGS...: run a script, print its tps.
bench() {
	local script=$1 log="$OUT/$2.log"
	shift 2
	if ! pgbench -n -M prepared -D "events=$EVENTS" -f "bench/$script.sql" \
		"$@" > "$log" 2>&1; then
		echo "bench: pgbench $script failed:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	awk '/^tps = / { print $3; exit }' "$log"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== set-up"
createdb "$PGDATABASE"
psql -X -q -f bench/setup.sql > "$OUT/setup.log"
PGVERSION=$(sql "SELECT version()")
DATADIR=$(sql "SHOW data_directory")
SETTINGS=$(sql "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit',
	'full_page_writes', 'wal_level', 'shared_buffers', 'max_wal_size',
	'autovacuum', 'wal_compression', 'checkpoint_timeout')")
echo "$PGVERSION"
echo "$SETTINGS"

# ---- 1. WAL bytes per event --------------------------------------------
# For each method: CHECKPOINT, then two passes of WAL_EVENTS events by one
# client.  Pass 1 pays the full-page images of every page touched first
# after the checkpoint; pass 2 touches mostly pages already imaged, so it
# shows the bytes of the WAL records themselves.
echo "== WAL bytes per event ($WAL_EVENTS events per pass, 1 client)"
sql "ALTER SYSTEM SET autovacuum = off"
sql "SELECT pg_reload_conf()" > /dev/null
for m in raw_single append_single raw_batch append_batch; do
	case $m in
		*_batch) tx=$((WAL_EVENTS / BATCH)) events=$(( (WAL_EVENTS / BATCH) * BATCH )) ;;
		*) tx=$WAL_EVENTS events=$WAL_EVENTS ;;
	esac
	case $m in
		raw_*) table=public.raw_events ;;
		*) table=strata.events ;;
	esac
	sql "VACUUM strata.events, strata.streams, public.raw_events"
	sql "CHECKPOINT"
	for pass in 1 2; do
		rows0=$(sql "SELECT count(*) FROM $table")
		lsn0=$(sql "SELECT pg_current_wal_insert_lsn()")
		bench "$m" "wal-$m-$pass" -c 1 -j 1 -t "$tx" > /dev/null
		lsn1=$(sql "SELECT pg_current_wal_insert_lsn()")
		rows1=$(sql "SELECT count(*) FROM $table")
		if [ $((rows1 - rows0)) -ne "$events" ]; then
			echo "bench: $m wrote $((rows1 - rows0)) rows into $table, not $events" >&2
			exit 1
		fi
		bytes=$(sql "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
		printf '%s\t%s\t%s\t%s\n' "$m" "$pass" "$events" "$bytes" >> "$WAL"
		# where the bytes go, by record type (diagnostic only)
		pg_waldump --stats=record -p "$DATADIR/pg_wal" -s "$lsn0" -e "$lsn1" \
			> "$OUT/waldump-$m-$pass.txt" 2>&1 || true
		printf '  %-14s pass %s: %7.1f bytes/event\n' "$m" "$pass" \
			"$(echo "$bytes $events" | awk '{ print $1 / $2 }')"
	done
done
sql "ALTER SYSTEM RESET autovacuum"
sql "SELECT pg_reload_conf()" > /dev/null
sql "VACUUM ANALYZE strata.events, strata.streams, public.raw_events"

# ---- 2. throughput ------------------------------------------------------
# compare NAME METHOD...: ROUNDS rounds running each method once, in the
# given order in odd rounds and in reverse order in even rounds.
compare() {
	local name=$1 r m order tps
	shift
	echo "== $name: warm-up ${WARMUP}s each"
	for m in "$@"; do
		bench "$m" "warmup-$m" -c "$CLIENTS" -j "$CLIENTS" -T "$WARMUP" > /dev/null
	done
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) -eq 1 ]; then order="$*"; else order=$(printf '%s\n' "$@" | tac); fi
		for m in $order; do
			sql "CHECKPOINT"
			tps=$(bench "$m" "$name-$r-$m" -c "$CLIENTS" -j "$CLIENTS" -T "$SECS")
			printf '%s\t%s\t%s\t%s\n' "$name" "$r" "$m" "$tps" >> "$RESULTS"
			printf '  round %s %-18s %10.1f tps\n' "$r" "$m" "$tps"
		done
	done
}
if [ "$DIAG" = 1 ]; then
	compare single raw_single append_single raw_single_stream
else
	compare single raw_single append_single
fi
compare batch raw_batch append_batch

# ---- summary -------------------------------------------------------------
median() {	# median of the tps of comparison $1, method $2
	awk -F'\t' -v c="$1" -v m="$2" '$1 == c && $3 == m { print $4 }' "$RESULTS" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR % 2) print v[(NR + 1) / 2];
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
rounds() {	# the tps of comparison $1, method $2, times $3, by round
	awk -F'\t' -v c="$1" -v m="$2" -v k="$3" '$1 == c && $3 == m {
		printf "%s%.0f", (n++ ? ", " : ""), $4 * k }' "$RESULTS"
}
walper() {	# bytes per event of method $1, pass $2
	awk -F'\t' -v m="$1" -v p="$2" '$1 == m && $2 == p { printf "%.1f", $4 / $3 }' "$WAL"
}
walfpi() {	# full-page-image bytes per event of method $1, pass $2 (pg_waldump)
	local events
	events=$(awk -F'\t' -v m="$1" -v p="$2" '$1 == m && $2 == p { print $3 }' "$WAL")
	awk -v n="$events" '/^Total / { gsub(/\[[^]]*\]/, ""); printf "%.1f", $4 / n }' \
		"$OUT/waldump-$1-$2.txt"
}
roundratios() {	# B/A of comparison $1 per round (A = $2, B = $3), then their median
	awk -F'\t' -v c="$1" -v a="$2" -v b="$3" '$1 == c && $3 == a { ta[$2] = $4 }
		$1 == c && $3 == b { tb[$2] = $4 }
		END { for (r = 1; r in ta; r++) { x[r] = tb[r] / ta[r]; printf "%s%.3f", (r > 1 ? ", " : ""), x[r] }
			n = r - 1
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
			printf " (median %.3f)", (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) }' "$RESULTS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "PASS" : "MISS") }'; }

rs=$(median single raw_single)
as=$(median single append_single)
rb=$(awk -v t="$(median batch raw_batch)" -v k=$BATCH 'BEGIN { print t * k }')
ab=$(awk -v t="$(median batch append_batch)" -v k=$BATCH 'BEGIN { print t * k }')
ratio_s=$(ratio "$rs" "$as")
ratio_b=$(ratio "$rb" "$ab")
elapsed=$(( $(date +%s) - BENCH_STARTED_AT ))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# walrec METHOD: "type bytes-per-event" of pass 2, from pg_waldump --stats
walrec() {
	local events
	events=$(awk -F'\t' -v m="$1" '$1 == m && $2 == 2 { print $3 }' "$WAL")
	awk -v n="$events" '/^[A-Za-z0-9]+\/[A-Za-z0-9_+]+ / {
		gsub(/\([^)]*\)/, ""); printf "%s %.1f\n", $1, $5 / n }' \
		"$OUT/waldump-$1-2.txt"
}

{
	echo "# pg_strata append benchmarks"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, strata $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- $PGVERSION"
	echo "- $SETTINGS"
	echo "- pgbench -M prepared -c $CLIENTS -j $CLIENTS -T $SECS, $ROUNDS rounds" \
		"(order AB, BA, ...; ABC, CBA, ... with the diagnostic C), CHECKPOINT before each run, ${WARMUP}s warm-up;" \
		"random stream among 10,000; batch = $BATCH events"
	echo "- run time of bench/run.sh: ${elapsed}s; load average at start" \
		"$LOAD_START, at end $LOAD_END"
	echo
	echo "| comparison | raw INSERT (A), median | strata.append (B), median | B/A | target | result |"
	echo "|---|---:|---:|---:|---:|---|"
	printf '| single event, tps | %.0f | %.0f | %s | >= %s | %s |\n' \
		"$rs" "$as" "$ratio_s" "$TARGET_SINGLE" "$(verdict "$ratio_s" "$TARGET_SINGLE")"
	printf '| %s-event batch, rows/s | %.0f | %.0f | %s | >= %s | %s |\n' \
		"$BATCH" "$rb" "$ab" "$ratio_b" "$TARGET_BATCH" "$(verdict "$ratio_b" "$TARGET_BATCH")"
	echo
	echo "Per round (in round order):"
	echo
	echo "| run | per round |"
	echo "|---|---|"
	echo "| raw single, tps | $(rounds single raw_single 1) |"
	echo "| append single, tps | $(rounds single append_single 1) |"
	echo "| raw batch, rows/s | $(rounds batch raw_batch $BATCH) |"
	echo "| append batch, rows/s | $(rounds batch append_batch $BATCH) |"
	echo "| single B/A per round | $(roundratios single raw_single append_single) |"
	echo "| batch B/A per round | $(roundratios batch raw_batch append_batch) |"
	if [ "$DIAG" = 1 ]; then
		rd=$(median single raw_single_stream)
		echo "| raw single + stream UPDATE, tps | $(rounds single raw_single_stream 1) |"
		echo
		printf 'Diagnostic: raw INSERT + UPDATE of a stream row (bench/raw_single_stream.sql),' 
		printf ' median %.0f tps, %s of the raw INSERT; strata.append is %s of it.\n' \
			"$rd" "$(ratio "$rs" "$rd")" "$(ratio "$rd" "$as")"
	fi
	echo
	echo "WAL bytes per event (pg_current_wal_insert_lsn() differences, 1 client," \
		"$WAL_EVENTS events per pass; pass 1 right after a CHECKPOINT," \
		"with its full-page images (FPI); pass 2 right after pass 1):"
	echo
	echo "| writes, pass | raw INSERT (A) | of which FPI | strata.append (B) | of which FPI | B/A |"
	echo "|---|---:|---:|---:|---:|---:|"
	for k in single batch; do
		for pass in 1 2; do
			a=$(walper raw_$k $pass) b=$(walper append_$k $pass)
			label="single events"
			[ $k = batch ] && label="$BATCH-event batches"
			echo "| $label, pass $pass | $a | $(walfpi raw_$k $pass) | $b" \
				"| $(walfpi append_$k $pass) | $(ratio "$a" "$b") |"
		done
	done
	echo
	tps1() {	# tps of method $1 in WAL pass 2, times $2
		awk -v k="$2" '/^tps = / { printf "%.0f", $3 * k; exit }' "$OUT/wal-$1-2.log"
	}
	echo "For scale, one client (WAL pass 2, no concurrency): raw single" \
		"$(tps1 raw_single 1) tps, append single $(tps1 append_single 1) tps;" \
		"raw batch $(tps1 raw_batch $BATCH) rows/s, append batch" \
		"$(tps1 append_batch $BATCH) rows/s."
	echo
	echo "WAL bytes per event by record type, pass 2 (pg_waldump --stats=record;" \
		"all of bench/out/waldump-*.txt):"
	echo
	echo "| record type | raw single | append single | raw batch | append batch |"
	echo "|---|---:|---:|---:|---:|"
	for m in raw_single append_single raw_batch append_batch; do
		walrec $m | sed "s/^/$m /"
	done | awk '{ v[$2, $1] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
		END { for (i = 1; i <= n; i++) { t = order[i]; printf "| %s", t
			split("raw_single append_single raw_batch append_batch", ms, " ")
			for (j = 1; j <= 4; j++) printf " | %s", ((t, ms[j]) in v ? v[t, ms[j]] : "-")
			print " |" } }'
} > "$OUT/summary.md"

echo
cat "$OUT/summary.md"

# The aggregate-load benchmarks, in this cluster (not with BENCH_ONLY=append);
# they append to summary.md.
[ "${BENCH_ONLY:-all}" = append ] || BENCH_IN_CLUSTER=1 bench/load.sh
