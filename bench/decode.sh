#!/bin/bash
# bench/decode.sh: the decoding benchmark of pg_strata (run by `make bench`
# after the append benchmarks of bench/run.sh; BENCH_ONLY=decode runs it
# alone).
#
# Starts one throwaway cluster (pg_virtualenv with the options of
# scripts/cluster.sh, which lists strata and wal2json in
# output_plugin_libraries where the server has that parameter), creates
# three logical slots (plugins strata, wal2json, test_decoding), then
# appends BENCH_DECODE_EVENTS events in BENCH_DECODE_TXNS transactions (one
# strata.append of events/txns events each, bench/decode_append.sql) and
# measures how long pg_logical_slot_peek_changes takes to decode all of
# them through each plugin: BENCH_DECODE_ROUNDS rounds, the order of the
# plugins rotated every round, a warm-up pass first; medians.  peek does
# not move the slots, so every pass decodes the same WAL.
#
# Compared (rows returned are checked):
#   strata         the plugin, data and metadata included (json)
#   strata thin    include-data=false
#   wal2json       format-version 2, add-tables=strata.events (only the
#                  events table, as strata; B and C rows per transaction)
#   test_decoding  skip-empty-xacts (it also prints the UPDATE of
#                  strata.streams of each append, and BEGIN/COMMIT rows)
#
# Settings (environment):
#   BENCH_DECODE_EVENTS  events appended           (default 200000)
#   BENCH_DECODE_TXNS    transactions              (default 1000)
#   BENCH_DECODE_ROUNDS  measured rounds           (default 5)
#   BENCH_PGV_OPTS       more pg_virtualenv options (default none)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

if [ -z "${BENCH_DECODE_IN_CLUSTER:-}" ]; then
	# shellcheck disable=SC1091
	. scripts/cluster.sh
	BENCH_STARTED_AT=$(date +%s)
	export BENCH_DECODE_IN_CLUSTER=1 BENCH_STARTED_AT
	# shellcheck disable=SC2086
	exec pg_virtualenv $PGV_OPTS ${BENCH_PGV_OPTS:-} "$0" "$@"
fi

EVENTS=${BENCH_DECODE_EVENTS:-200000}
TXNS=${BENCH_DECODE_TXNS:-1000}
ROUNDS=${BENCH_DECODE_ROUNDS:-5}
PER=$((EVENTS / TXNS))
EVENTS=$((PER * TXNS))
TARGET_W2J=1.5
TARGET_TD=1.0

OUT=bench/out/decode
rm -rf "$OUT"
mkdir -p "$OUT"
export PGDATABASE=strata_decode
RESULTS="$OUT/results.tsv"		# round method ms rows bytes

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

have_wal2json=0
[ -f "$(pg_config --pkglibdir)/wal2json.so" ] && have_wal2json=1

echo "== decoding set-up: $EVENTS events in $TXNS transactions"
createdb "$PGDATABASE"
sql "CREATE EXTENSION strata"
sql "CREATE FUNCTION bench_decode(slot name, opts text[],
		OUT n bigint, OUT bytes bigint, OUT ms float8) LANGUAGE plpgsql AS \$\$
	DECLARE t0 timestamptz := clock_timestamp();
	BEGIN
		SELECT count(*), coalesce(sum(octet_length(data)), 0) INTO n, bytes
			FROM pg_logical_slot_peek_changes(slot, NULL, NULL, VARIADIC opts);
		ms := 1000 * extract(epoch FROM clock_timestamp() - t0);
	END \$\$"
sql "SELECT pg_create_logical_replication_slot('bench_strata', 'strata')" > /dev/null
sql "SELECT pg_create_logical_replication_slot('bench_td', 'test_decoding')" > /dev/null
[ $have_wal2json = 1 ] &&
	sql "SELECT pg_create_logical_replication_slot('bench_w2j', 'wal2json')" > /dev/null
lsn0=$(sql "SELECT pg_current_wal_insert_lsn()")
pgbench -n -c 1 -t "$TXNS" -D per="$PER" -f bench/decode_append.sql > "$OUT/append.log" 2>&1 ||
	{ echo "bench: appending failed" >&2; tail "$OUT/append.log" >&2; exit 1; }
lsn1=$(sql "SELECT pg_current_wal_insert_lsn()")
stored=$(sql "SELECT count(*) FROM strata.events")
[ "$stored" -eq "$EVENTS" ] || { echo "bench: $stored events stored, not $EVENTS" >&2; exit 1; }
WALMB=$(sql "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / 1048576.0, 1)")
PGVERSION=$(sql "SELECT version()")
W2JVERSION=$(dpkg-query -W -f='${Version}' postgresql-15-wal2json 2>/dev/null || echo '?')
echo "$PGVERSION; $WALMB MB of WAL"

# method name -> "slot|options|expected rows"
declare -A SLOT OPTS ROWS
METHODS="strata strata_thin test_decoding"
SLOT[strata]=bench_strata OPTS[strata]='{}' ROWS[strata]=$EVENTS
SLOT[strata_thin]=bench_strata OPTS[strata_thin]='{include-data,false}' ROWS[strata_thin]=$EVENTS
SLOT[test_decoding]=bench_td OPTS[test_decoding]='{skip-empty-xacts,1}'
ROWS[test_decoding]=$((EVENTS + 3 * TXNS))
if [ $have_wal2json = 1 ]; then
	METHODS="$METHODS wal2json"
	SLOT[wal2json]=bench_w2j OPTS[wal2json]='{format-version,2,add-tables,strata.events}'
	ROWS[wal2json]=$((EVENTS + 2 * TXNS))
fi

run() {	# run ROUND METHOD: one pass, checked, appended to RESULTS
	local r
	r=$(sql "SELECT n || ' ' || bytes || ' ' || ms FROM bench_decode('${SLOT[$2]}', '${OPTS[$2]}')")
	set -- "$1" "$2" $r
	if [ "$3" -ne "${ROWS[$2]}" ]; then
		echo "bench: $2 returned $3 rows, not ${ROWS[$2]}" >&2
		exit 1
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$5" "$3" "$4" >> "$RESULTS"
	printf '  round %s %-14s %9.0f ms %10.0f events/s\n' "$1" "$2" "$5" \
		"$(awk -v e="$EVENTS" -v ms="$5" 'BEGIN { print e / ms * 1000 }')"
}

echo "== warm-up"
for m in $METHODS; do run 0 "$m"; done
echo "== $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
	# rotate the order by one method each round
	set -- $METHODS
	k=$(( (r - 1) % $# ))
	order="$(echo "$METHODS" | tr ' ' '\n' | tail -n +$((k + 1)) | tr '\n' ' ')$(echo "$METHODS" | tr ' ' '\n' | head -n "$k" | tr '\n' ' ')"
	for m in $order; do run "$r" "$m"; done
done

median_ms() {
	awk -F'\t' -v m="$1" '$1 > 0 && $2 == m { print $3 }' "$RESULTS" | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
rate() { awk -v e="$EVENTS" -v ms="$(median_ms "$1")" 'BEGIN { printf "%.0f", e / ms * 1000 }'; }
bytes_per_event() {
	awk -F'\t' -v m="$1" -v e="$EVENTS" '$2 == m { b = $5 } END { printf "%.0f", b / e }' "$RESULTS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "PASS" : "MISS") }'; }
perround() {
	awk -F'\t' -v m="$1" -v e="$EVENTS" '$1 > 0 && $2 == m {
		printf "%s%.0f", (n++ ? ", " : ""), e / $3 * 1000 }' "$RESULTS"
}

s=$(rate strata)
td=$(rate test_decoding)
elapsed=$(( $(date +%s) - BENCH_STARTED_AT ))
{
	echo "# pg_strata decoding benchmark"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, strata $(git rev-parse --short HEAD 2>/dev/null || echo '?'), wal2json $W2JVERSION"
	echo "- $PGVERSION"
	echo "- $EVENTS events in $TXNS transactions ($PER per strata.append), $WALMB MB of WAL;" \
		"pg_logical_slot_peek_changes, $ROUNDS rounds after a warm-up, order rotated; run time ${elapsed}s"
	echo
	echo "| plugin | median ms | events/s | output bytes per event | per round, events/s |"
	echo "|---|---:|---:|---:|---|"
	for m in $METHODS; do
		printf '| %s | %.0f | %s | %s | %s |\n' "$m" "$(median_ms "$m")" "$(rate "$m")" \
			"$(bytes_per_event "$m")" "$(perround "$m")"
	done
	echo
	echo "| comparison | ratio | target | result |"
	echo "|---|---:|---:|---|"
	if [ $have_wal2json = 1 ]; then
		w=$(rate wal2json)
		printf '| strata / wal2json (data included) | %s | >= %s | %s |\n' "$(ratio "$s" "$w")" \
			"$TARGET_W2J" "$(verdict "$(ratio "$s" "$w")" "$TARGET_W2J")"
		printf '| strata thin / wal2json | %s | | |\n' "$(ratio "$(rate strata_thin)" "$w")"
	else
		echo "| strata / wal2json | wal2json not installed (scripts/deps.sh --bench) | | |"
	fi
	printf '| strata / test_decoding | %s | > %s | %s |\n' "$(ratio "$s" "$td")" \
		"$TARGET_TD" "$(awk -v a="$s" -v b="$td" 'BEGIN { print (a > b ? "PASS" : "MISS") }')"
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
