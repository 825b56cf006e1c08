#!/bin/bash
# bench/subscribe.sh: the subscription benchmarks of pg_strata (run by
# `make bench` after the decoding benchmark; BENCH_ONLY=subscribe
# bench/run.sh runs it alone).
#
# Starts one throwaway cluster (pg_virtualenv with the options of
# scripts/cluster.sh: strata preloaded, wal_level=logical, pg_virtualenv's
# defaults otherwise, fsync=off), creates the database strata_subscribe,
# loads bench/subscribe_setup.sql, builds the libpq driver
# bench/subscribe_lat.c, then measures in the same run:
#
#   1. Commit-to-handler latency at a moderate append rate.
#      bench/subscribe_lat appends single events, one per transaction
#      (autocommit), from BENCH_SUB_CLIENTS connections at BENCH_SUB_RATE
#      events/s in all (Poisson arrivals, as pgbench --rate), for
#      BENCH_SUB_LAT_SECONDS, each writer to a new stream of its own, and
#      records per event the client clock just before sending the append
#      and just after its result came back.  In autocommit the server
#      commits before it answers, so the time the result came back is the
#      client's "COMMIT returned" (no later than the commit plus the reply's
#      trip on the local socket).  When was the event handled:
#        sub     a subscription (category lat) whose handler,
#                public.bench_record, inserts (stream, version,
#                clock_timestamp()) into public.bench_seen when the worker
#                calls it; read back after the run and joined on
#                (stream, version) (strata.append returns the new version).
#        listen  the baseline: the writers append with `SELECT
#                strata.append(...), pg_notify('strata_bench', '')`, and a
#                reader LISTENs on its own connection and, on each
#                notification, reads strata.read_all(after its last
#                position, 1000) until it gets fewer than 1000 rows (read_all
#                stops before events that may still commit with a lower
#                position: commit-safe, as the worker's commit order); the
#                time is the reader's clock when the rows arrived.
#      Server and clients share the machine, hence the clock
#      (clock_timestamp() and CLOCK_REALTIME).  Latency = handled - COMMIT
#      returned: it can be under the true commit-to-handler time, never over
#      it: by the reply's trip to the client, and by however long the
#      writer thread waits for a CPU before it reads the reply (on 2 busy
#      CPUs single events come out a few ms negative); handled - sent (over
#      it by the append's own execution) is reported alongside.  Every
#      appended event must be handled exactly once (checked: missing and
#      duplicate counts).  BENCH_SUB_ROUNDS rounds, order (listen, sub), (sub,
#      listen), ...; the subscription is created (start_from 'now') before,
#      and dropped after, each sub run; an unmeasured 1-second run of each
#      first.  Reported: the medians of the rounds' p50, p90, p99, and the
#      percentiles of all rounds' events pooled.
#
#   2. Sustained throughput of a no-op subscription.  BENCH_SUB_ROUNDS
#      rounds of three runs, order (off, idle, sub), (sub, idle, off), ...,
#      a CHECKPOINT before each; every run is pgbench -n -M prepared -c/-j
#      BENCH_SUB_TP_CLIENTS, no --rate, -T BENCH_SUB_SECONDS,
#      bench/subscribe_append.sql (one strata.append of one event to a
#      random stream among 10,000, as bench/append_single.sql):
#        idle    the worker running, no subscription: the maximum append
#                rate A0, as a user without subscriptions has it;
#        sub     the same with a subscription of every event whose handler,
#                public.bench_noop, does nothing (PL/pgSQL RETURN); the
#                worker competes for the same CPUs;
#        off     no strata worker for the database (strata.databases set to
#                'postgres', which has no extension, and reloaded; reset
#                and the worker back before the next run): A_off, what the
#                appends do without any worker.
#      events_behind of strata.subscription_status is sampled every second
#      during every run (the sampler's connections cost the same in all
#      three; only sub has a row); at the end of a sub run, the lag left
#      (L), then the drain time: from pgbench's end until
#      strata.wait_for(the last position) returns (one psql session, which
#      also reads L; its connection, about 0.02 s, is included), checked
#      against events_behind = 0.
#      With n events appended at rate A1 in the sub run, the subscription
#      processed n - L of them during the run: P = A1 * (n - L) / n events/s.
#      When the lag stays bounded, P ~ A1; when it grows, P is the rate it
#      keeps up with.  Keep-up ratio = median P / median A0 (target >= 0.95);
#      A1/A0 (the appends slowed by the worker sharing the CPUs) and P/A1
#      (the lag growing) split it; P/A_off is the same against no worker.
#
# Prints a summary with the targets (PASS/MISS) and writes it to
# bench/out/subscribe/summary.md; raw figures go to bench/out/subscribe/
# (lat.tsv, tp.tsv, per-event latencies lat-*.tsv, lag samples lag-*.tsv,
# pgbench logs).  Diagnostics of the throughput runs: the CPU time of the
# database's strata worker (from /proc) and how busy the machine's CPUs
# were, during each pgbench run.  A missed target is reported, not an
# error: the exit status is 0 unless something failed.  About 2 minutes
# with the defaults.
#
# Settings (environment):
#   BENCH_SUB_RATE         events/s of the latency runs       (default 500)
#   BENCH_SUB_CLIENTS      writers of the latency runs        (default 4)
#   BENCH_SUB_LAT_SECONDS  seconds per latency run            (default 5)
#   BENCH_SUB_TP_CLIENTS   pgbench clients, throughput runs   (default 4)
#   BENCH_SUB_SECONDS      seconds per throughput run         (default 6)
#   BENCH_SUB_ROUNDS       rounds of each comparison          (default 3)
#   BENCH_SUB_DRAIN        seconds to wait for a drain        (default 20)
#   BENCH_PGV_OPTS         more pg_virtualenv options         (default none)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

# Re-run this script inside a throwaway cluster.
if [ -z "${BENCH_SUB_IN_CLUSTER:-}" ]; then
	# shellcheck disable=SC1091
	. scripts/cluster.sh
	SUB_STARTED_AT=$(date +%s)
	export BENCH_SUB_IN_CLUSTER=1 SUB_STARTED_AT
	# shellcheck disable=SC2086
	exec pg_virtualenv $PGV_OPTS ${BENCH_PGV_OPTS:-} "$0" "$@"
fi
: "${SUB_STARTED_AT:=$(date +%s)}"

RATE=${BENCH_SUB_RATE:-500}
CLIENTS=${BENCH_SUB_CLIENTS:-4}
LATSECS=${BENCH_SUB_LAT_SECONDS:-5}
TPCLIENTS=${BENCH_SUB_TP_CLIENTS:-4}
SECS=${BENCH_SUB_SECONDS:-6}
ROUNDS=${BENCH_SUB_ROUNDS:-3}
DRAIN=${BENCH_SUB_DRAIN:-20}
TARGET_P50=5
TARGET_P99=50
TARGET_RATIO=0.95

OUT=bench/out/subscribe
rm -rf "$OUT"
mkdir -p "$OUT"
export PGDATABASE=strata_subscribe
LAT="$OUT/lat.tsv"		# round method appended seen missing dups rate p50 p90 p99 max min p50send p99send rtt
TP="$OUT/tp.tsv"		# round method tps n lag_end lag_max drain worker_cpu_s busy% max_s_behind
NOTES="$OUT/notes.txt"	# anomalies, printed with the summary
: > "$NOTES"

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
note() { echo "$*" | tee -a "$NOTES" >&2; }

# The latency driver, built like examples/strata_consumer (Makefile).
DRIVER="$OUT/subscribe_lat"
cc -std=c99 -D_XOPEN_SOURCE=700 -O2 -Wall -Wextra -Werror -pthread \
	-I"$(pg_config --includedir)" -o "$DRIVER" bench/subscribe_lat.c \
	-L"$(pg_config --libdir)" -lpq -lm

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== subscriptions: set-up"
createdb "$PGDATABASE"
psql -X -q -f bench/subscribe_setup.sql > "$OUT/setup.log"
PGVERSION=$(sql "SELECT version()")
STRATA_VERSION=$(sql "SELECT extversion FROM pg_extension WHERE extname = 'strata'")
SETTINGS=$(sql "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit',
	'shared_buffers', 'wal_level', 'max_worker_processes')
	OR name LIKE 'strata.%'")
echo "$PGVERSION; strata $STRATA_VERSION"
echo "$SETTINGS"

# A worker of this database must be running once the extension exists.
workers() {
	sql "SELECT coalesce(string_agg(backend_type || ' (pid ' || pid || ', ' ||
		coalesce(datname, '-') || ')', ', '), 'none')
		FROM pg_stat_activity WHERE backend_type LIKE 'strata%'"
}
for _ in $(seq 1 100); do
	[ "$(sql "SELECT count(*) FROM pg_stat_activity
		WHERE backend_type LIKE 'strata%' AND datname = current_database()")" -gt 0 ] && break
	sleep 0.1
done
WORKERS=$(workers)
echo "strata processes: $WORKERS"

# subscribe NAME HANDLER CATEGORIES: create a subscription from now on and
# wait (up to 20 s) until the status view says it is live.
subscribe() {
	local state=""
	sql "SELECT strata.subscribe('$1', '$2'::regprocedure, $3)" > /dev/null
	for _ in $(seq 1 200); do
		state=$(sql "SELECT state FROM strata.subscription_status WHERE name = '$1'")
		[ "$state" = live ] && return 0
		sleep 0.1
	done
	note "subscription $1 still '$state' 20 s after strata.subscribe; measured anyway"
	sql "SELECT * FROM strata.subscription_status" >&2
	echo "strata processes: $(workers)" >&2
}
unsubscribe() { sql "SELECT strata.unsubscribe('$1')" > /dev/null; }

# ---- 1. commit-to-handler latency -------------------------------------
# lat ROUND METHOD SECONDS: one run of the driver; round 0 is the warm-up.
lat() {
	local r=$1 m=$2 secs=$3 line
	[ "$m" = sub ] && subscribe bench_lat 'public.bench_record(strata.events)' "ARRAY['lat']"
	if ! line=$("$DRIVER" -m "$m" -r "$RATE" -c "$CLIENTS" -T "$secs" -p "lat-r$r$m" \
		-w 10 -o "$OUT/lat-$r-$m.tsv" 2> "$OUT/lat-$r-$m.err"); then
		echo "subscribe: the latency driver failed ($m, round $r):" >&2
		cat "$OUT/lat-$r-$m.err" >&2
		exit 1
	fi
	[ "$m" = sub ] && unsubscribe bench_lat
	# shellcheck disable=SC2086
	set -- $line
	[ "$3" = 0 ] || note "latency $m round $r: $3 of $1 events never handled (within 10 s)"
	[ "$4" = 0 ] || note "latency $m round $r: $4 events handled more than once"
	if [ "$r" -gt 0 ]; then
		printf '%s\t%s\t%s\n' "$r" "$m" "$(echo "$line" | tr ' ' '\t')" >> "$LAT"
		printf '  round %s %-6s %6s events, %6.1f/s: p50 %7.2f ms  p90 %7.2f  p99 %7.2f  max %7.2f\n' \
			"$r" "$m" "$1" "$5" "$6" "$7" "$8" "$9"
	fi
}
echo "== commit-to-handler latency: $RATE events/s, $CLIENTS writers, ${LATSECS}s per run, $ROUNDS rounds"
lat 0 listen 1
lat 0 sub 1
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then order="listen sub"; else order="sub listen"; fi
	for m in $order; do lat "$r" "$m" "$LATSECS"; done
done

# ---- 2. sustained throughput --------------------------------------------
# pgb LOGNAME: one unthrottled pgbench run; prints "tps transactions".
pgb() {
	local log="$OUT/$1.log"
	if ! pgbench -n -M prepared -c "$TPCLIENTS" -j "$TPCLIENTS" -T "$SECS" \
		-f bench/subscribe_append.sql > "$log" 2>&1; then
		echo "subscribe: pgbench failed:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	awk '/^tps = / { t = $3 } /^number of transactions actually processed:/ { n = $NF }
		END { print t, n }' "$log"
}
behind() {
	sql "SELECT events_behind FROM strata.subscription_status WHERE name = 'bench_noop'"
}
# sampler FILE: every second, "unix-time events_behind seconds_behind".
sampler() {
	while :; do
		psql -X -q -A -t -F ' ' -c "SELECT extract(epoch FROM clock_timestamp()),
			events_behind, round(seconds_behind::numeric, 3)
			FROM strata.subscription_status WHERE name = 'bench_noop'" >> "$1" || true
		sleep 1
	done
}
# The CPU time (user + system, clock ticks) of the processes $1 (a
# comma-separated list of pids), empty if none is left.
ticks() {
	local p t=""
	for p in ${1//,/ }; do
		t=$(awk -v t="${t:-0}" '{ print t + $14 + $15 }' "/proc/$p/stat" 2> /dev/null || echo "$t")
	done
	echo "$t"
}
# The machine's busy and total clock ticks, all CPUs.
cpustat() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }
HZ=$(getconf CLK_TCK)
# The database's worker and its handler processes (which run the handlers)
worker_pid() {
	sql "SELECT string_agg(pid::text, ',') FROM pg_stat_activity
		WHERE backend_type IN ('strata worker', 'strata handler')
		AND datname = current_database()"
}
# worker_wait N: wait (up to 15 s) until N workers serve this database.
worker_wait() {
	local k=""
	for _ in $(seq 1 150); do
		k=$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'strata worker'
			AND datname = current_database()")
		[ "$k" = "$1" ] && return 0
		sleep 0.1
	done
	note "strata.databases reloaded: $k workers in the database after 15 s, not $1"
}
worker_off() {
	sql "ALTER SYSTEM SET strata.databases = 'postgres'"
	sql "SELECT pg_reload_conf()" > /dev/null
	worker_wait 0
}
worker_on() {
	sql "ALTER SYSTEM RESET strata.databases"
	sql "SELECT pg_reload_conf()" > /dev/null
	worker_wait 1
}
# tp ROUND METHOD: one run; the lag sampler runs in both methods, so that
# its connections cost the same on both sides (no row without the
# subscription).
tp() {
	local r=$1 m=$2 res res2 tps n lag=0 maxlag=0 maxsecs=0 drain=0 t_end t_done pos ok
	local spid left wpid w0 w1 c0 c1 wcpu busy lagfile="$OUT/lag-$r-$m.tsv"
	if [ "$m" = sub ]; then
		subscribe bench_noop 'public.bench_noop(strata.events)' NULL
	elif [ "$m" = off ]; then
		worker_off
	fi
	wpid=$(worker_pid)
	sql "CHECKPOINT"
	: > "$lagfile"
	sampler "$lagfile" &
	spid=$!
	w0=$(ticks "$wpid") c0=$(cpustat)
	res=$(pgb "tp-$r-$m")
	t_end=$(date +%s.%N)
	w1=$(ticks "$wpid") c1=$(cpustat)
	if [ "$m" = sub ]; then
		# one session: the lag left, then wait for the last event, and the
		# (server, same clock) time when the wait returned
		res2=$(psql -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 \
			-c "SELECT events_behind FROM strata.subscription_status WHERE name = 'bench_noop'" \
			-c "SELECT max(position) FROM strata.events" \
			-c "SELECT strata.wait_for('bench_noop', (SELECT max(position) FROM strata.events),
				'${DRAIN}s'), extract(epoch FROM clock_timestamp())")
	fi
	kill "$spid"
	wait "$spid" 2> /dev/null || true
	if [ "$m" = sub ]; then
		# shellcheck disable=SC2086
		set -- $res2
		lag=$1 pos=$2 ok=$3 t_done=$4
		echo "$t_end $lag end" >> "$lagfile"
		maxlag=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$lagfile")
		maxsecs=$(awk '$3 != "end" && $3 > m { m = $3 } END { print m + 0 }' "$lagfile")
		drain=$(awk -v a="$t_end" -v b="$t_done" 'BEGIN { printf "%.2f", b - a }')
		left=$(behind)
		if [ "$ok" != t ]; then
			note "throughput round $r: not drained ${DRAIN}s after the run (wait_for false, $left events behind)"
			drain=">$DRAIN"
		elif [ "$left" != 0 ]; then
			note "throughput round $r: wait_for($pos) returned true but events_behind is $left"
		fi
		unsubscribe bench_noop
	elif [ "$m" = off ]; then
		worker_on
	fi
	# shellcheck disable=SC2086
	set -- $res
	tps=$1 n=$2
	# worker CPU seconds during the run ("" if no worker), machine busy %
	wcpu=$(awk -v a="$w0" -v b="$w1" -v hz="$HZ" 'BEGIN { if (a != "" && b != "") printf "%.2f", (b - a) / hz }')
	# shellcheck disable=SC2086
	busy=$(echo $c0 $c1 | awk '{ printf "%.0f", 100 * ($3 - $1) / ($4 - $2) }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$m" "$tps" "$n" "$lag" \
		"$maxlag" "$drain" "${wcpu:-?}" "$busy" "$maxsecs" >> "$TP"
	if [ "$m" != sub ]; then
		printf '  round %s %-4s %8.1f appends/s; worker CPU %s s, machine busy %s %%\n' \
			"$r" "$m" "$tps" "${wcpu:--}" "$busy"
	else
		printf '  round %s sub  %8.1f appends/s; worker CPU %s s, machine busy %s %%;' \
			"$r" "$tps" "${wcpu:-?}" "$busy"
		printf ' lag: max %s (%s s), at the end %s, drained in %s s\n' \
			"$maxlag" "$maxsecs" "$lag" "$drain"
	fi
}
echo "== sustained throughput: $TPCLIENTS clients, ${SECS}s per run, $ROUNDS rounds"
pgbench -n -M prepared -c "$TPCLIENTS" -j "$TPCLIENTS" -T 2 \
	-f bench/subscribe_append.sql > "$OUT/tp-warmup.log" 2>&1
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then order="off idle sub"; else order="sub idle off"; fi
	for m in $order; do tp "$r" "$m"; done
done

# ---- summary -------------------------------------------------------------
med() { sort -g | awk '{ v[NR] = $1 } END {
	if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
latcol() {	# column $2 (1-based over the driver's fields) of method $1, by round
	awk -F'\t' -v m="$1" -v c="$2" '$2 == m { print $(c + 2) }' "$LAT"
}
latmed() { latcol "$1" "$2" | med; }
latrounds() { latcol "$1" "$2" | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 }'; }
pooled() {	# pooled nearest-rank percentile $2 of method $1, ms from COMMIT returned
	cat "$OUT"/lat-[1-9]*-"$1".tsv | awk -F'\t' '$5 > 0 { printf "%.3f\n", ($5 - $4) / 1000 }' |
		sort -g | awk -v p="$2" '{ v[NR] = $1 } END {
			k = int(p / 100 * NR); if (k < p / 100 * NR) k++; if (k < 1) k = 1; print v[k] }'
}
tpcol() { awk -F'\t' -v m="$1" -v c="$2" '$2 == m { print $c }' "$TP"; }
# P of each sub round: tps * (n - lag_end) / n
keep() { awk -F'\t' '$2 == "sub" { printf "%.1f\n", $3 * ($4 - $5) / $4 }' "$TP"; }
verdict_le() { awk -v x="$1" -v t="$2" 'BEGIN { print (x != "" && x < t ? "PASS" : "MISS") }'; }

lp50=$(latmed listen 6) lp99=$(latmed listen 8)
sp50=$(latmed sub 6) sp99=$(latmed sub 8)
aoff=$(tpcol off 3 | med)
a0=$(tpcol idle 3 | med)
a1=$(tpcol sub 3 | med)
p=$(keep | med)
ratio=$(awk -v a="$a0" -v p="$p" 'BEGIN { printf "%.3f", p / a }')
elapsed=$(( $(date +%s) - SUB_STARTED_AT ))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "# pg_strata subscription benchmarks"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, strata $STRATA_VERSION" \
		"at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src sql 2>/dev/null || echo ' + uncommitted changes')"
	echo "- $PGVERSION"
	echo "- $SETTINGS"
	echo "- strata processes at the start: $WORKERS"
	echo "- latency: $CLIENTS writers, $RATE single-event appends/s in all (Poisson), ${LATSECS}s per run," \
		"$ROUNDS rounds (order LS, SL, ...) after 1 s of each; throughput: pgbench -n -M prepared" \
		"-c $TPCLIENTS -j $TPCLIENTS -T $SECS, $ROUNDS rounds (order off idle sub, sub idle off, ...), CHECKPOINT before each run"
	echo "- run time of bench/subscribe.sh: ${elapsed}s; load average at start $LOAD_START, at end $LOAD_END"
	echo
	echo "Commit-to-handler latency, ms from COMMIT returned to the client until the handler ran" \
		"(medians of the rounds' percentiles; pooled: all rounds' events together):"
	echo
	echo "| reader | events | p50 | p90 | p99 | max | pooled p50 | pooled p99 | p99 from send | append round trip p50 |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for m in listen sub; do
		label="LISTEN/NOTIFY + read_all (baseline)"
		[ $m = sub ] && label="subscription (strata worker)"
		printf '| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n' "$label" \
			"$(latcol $m 1 | awk '{ s += $1 } END { print s }')" \
			"$(latmed $m 6)" "$(latmed $m 7)" "$(latmed $m 8)" "$(latcol $m 9 | sort -g | tail -1)" \
			"$(pooled $m 50)" "$(pooled $m 99)" "$(latmed $m 12)" "$(latmed $m 13)"
	done
	echo
	echo "| target | subscription | baseline | result |"
	echo "|---|---:|---:|---|"
	printf '| p50 < %s ms | %.2f | %.2f | %s |\n' "$TARGET_P50" "$sp50" "$lp50" "$(verdict_le "$sp50" "$TARGET_P50")"
	printf '| p99 < %s ms | %.2f | %.2f | %s |\n' "$TARGET_P99" "$sp99" "$lp99" "$(verdict_le "$sp99" "$TARGET_P99")"
	echo
	echo "| run | per round (p50 / p99, ms) |"
	echo "|---|---|"
	echo "| baseline p50 | $(latrounds listen 6) |"
	echo "| baseline p99 | $(latrounds listen 8) |"
	echo "| subscription p50 | $(latrounds sub 6) |"
	echo "| subscription p99 | $(latrounds sub 8) |"
	echo
	echo "Sustained throughput, single-event appends/s (medians of the rounds):"
	echo
	echo "| no subscription (A0) | with a no-op subscription (A1) | kept up with (P)" \
		"| P/A0 | A1/A0 | P/A1 | target | result | no worker (A_off) | P/A_off |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
	printf '| %.0f | %.0f | %.0f | %s | %.3f | %.3f | >= %s | %s | %.0f | %.3f |\n' "$a0" "$a1" "$p" "$ratio" \
		"$(awk -v a="$a0" -v b="$a1" 'BEGIN { print b / a }')" \
		"$(awk -v a="$a1" -v b="$p" 'BEGIN { print b / a }')" \
		"$TARGET_RATIO" "$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t ? "PASS" : "MISS") }')" \
		"$aoff" "$(awk -v a="$aoff" -v b="$p" 'BEGIN { print b / a }')"
	echo
	echo "Per round: appends/s, lag of the sub run (events_behind sampled every second)," \
		"CPU seconds of the database's strata worker during each run and its CPU time" \
		"per event appended, how busy the 2 CPUs were:"
	echo
	echo "| round | A_off | A0 | A1 | P | P/A0 | lag max | s behind max | lag at end | drain s |" \
		"worker CPU s, idle / sub | worker µs per event, idle / sub | CPUs busy %, off / idle / sub | lag every second |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for r in $(seq 1 "$ROUNDS"); do
		awk -F'\t' -v r="$r" -v lags="$(awk '$3 != "end" { printf "%s%s", (n++ ? " " : ""), $2 }' "$OUT/lag-$r-sub.tsv")" '
			function us(w, n) { return (w == "?" ? "?" : sprintf("%.1f", w * 1e6 / n)) }
			$1 == r && $2 == "off" { ao = $3; bo = $9 }
			$1 == r && $2 == "idle" { a0 = $3; n0 = $4; wi = $8; bi = $9 }
			$1 == r && $2 == "sub" { a1 = $3; n = $4; le = $5; lm = $6; d = $7; ws = $8; bs = $9; sm = $10 }
			END { pp = a1 * (n - le) / n
				printf "| %s | %.0f | %.0f | %.0f | %.0f | %.3f | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s / %s | %s |\n",
					r, ao, a0, a1, pp, pp / a0, lm, sm, le, d, wi, ws, us(wi, n0), us(ws, n),
					bo, bi, bs, lags }' "$TP"
	done
	echo
	echo "Median of the per-round P/A0: $(awk -F'\t' '$2 == "idle" { a[$1] = $3 }
		$2 == "sub" { p[$1] = $3 * ($4 - $5) / $4 } END { for (r in p) print p[r] / a[r] }' "$TP" |
		med | awk '{ printf "%.3f", $1 }')"
	if [ -s "$NOTES" ]; then
		echo
		echo "Anomalies:"
		echo
		sed 's/^/- /' "$NOTES"
	fi
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
