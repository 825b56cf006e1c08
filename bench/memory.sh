#!/bin/bash
# bench/memory.sh: the memory of the strata worker and its handler
# processes for one large transaction (run by `make bench` after the
# subscription benchmarks; BENCH_ONLY=memory bench/run.sh runs it alone).
# Issue #15 bounds that memory; this measures it, before and after.
#
# Starts one throwaway cluster (pg_virtualenv with the options of
# scripts/cluster.sh), creates the database strata_memory with a
# subscription of every event of category "mem" whose handler does
# nothing, then, for each size N of BENCH_MEM_SIZES, in this order:
#   1. resets the peak resident set size (VmHWM) of the database's strata
#      worker and handler processes (writing 5 to /proc/PID/clear_refs,
#      which needs root or the processes' user);
#   2. appends N events in ONE transaction: N/1000 calls of strata.append
#      of 1,000 events each, to N/1000 streams, in one statement;
#   3. waits until the subscription has processed the last position
#      (strata.wait_for), and times it from the commit;
#   4. reads VmHWM of the worker and of each handler process, and the
#      largest RssAnon (private memory: no shared buffers) that a sampler
#      read every 100 ms from the append's start;
#   5. decodes the WAL of that transaction with pg_recvlogical through a
#      slot of the strata plugin (the output plugin's consumers: the
#      walsender decodes), and reads the walsender's VmHWM and sampled
#      RssAnon the same way.
# Reported per size: the append's time, the time from commit to the last
# event handled, events handled per second, the peak RSS and RssAnon of
# the worker and of the busiest handler process (MB), with their RSS
# before, and the walsender's peaks and decoding time.
# The processes must be the same for every size (a restart would reset
# the peaks): the script says so when they are not.
#
# Settings (environment):
#   BENCH_MEM_SIZES    events per transaction    (default "1000 100000 1000000";
#                      make bench adds 10000000)
#   BENCH_MEM_TIMEOUT  seconds to wait for one   (default 1800)
#   BENCH_PGV_OPTS     more pg_virtualenv options (default none)
set -eu

cd "$(dirname "$0")/.."
export PATH="/usr/lib/postgresql/15/bin:$PATH"

if [ -z "${BENCH_MEM_IN_CLUSTER:-}" ]; then
	# shellcheck disable=SC1091
	. scripts/cluster.sh
	export BENCH_MEM_IN_CLUSTER=1
	# shellcheck disable=SC2086
	exec pg_virtualenv $PGV_OPTS ${BENCH_PGV_OPTS:-} "$0" "$@"
fi

SIZES=${BENCH_MEM_SIZES:-1000 100000 1000000}
TIMEOUT=${BENCH_MEM_TIMEOUT:-1800}
OUT=bench/out/memory
rm -rf "$OUT"
mkdir -p "$OUT"
export PGDATABASE=strata_memory
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

echo "== worker memory: set-up"
createdb "$PGDATABASE"
psql -X -q -v ON_ERROR_STOP=1 > "$OUT/setup.log" <<'EOF'
CREATE EXTENSION strata;
CREATE FUNCTION public.bench_noop(e strata.events) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN RETURN; END $$;
SELECT strata.subscribe('bench_mem', 'public.bench_noop(strata.events)',
						categories => ARRAY['mem']);
SELECT pg_create_logical_replication_slot('bench_mem_feed', 'strata');
EOF
for _ in $(seq 1 200); do
	[ "$(sql "SELECT state FROM strata.subscription_status WHERE name = 'bench_mem'")" = live ] && break
	sleep 0.1
done
# the handler processes start once the database has a subscription
for _ in $(seq 1 100); do
	[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'strata handler'
		AND datname = current_database()")" -gt 0 ] && break
	sleep 0.1
done
PGVERSION=$(sql "SELECT version()")
pids() {	# the worker's pid, then the handler processes'
	sql "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
		AND backend_type IN ('strata worker', 'strata handler')
		ORDER BY backend_type DESC, pid" | tr '\n' ' '
}
PIDS=$(pids)
echo "strata processes (worker first): $PIDS"
kb() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }
# sample PID FILE: every 100 ms until PID exits or FILE.stop appears,
# write to FILE the largest RssAnon and the last VmHWM read (kB)
sample() {
	local peak=0 hwm=0 a h
	while [ -r "/proc/$1/status" ] && [ ! -e "$2.stop" ]; do
		a=$(kb "$1" RssAnon 2> /dev/null || true)
		h=$(kb "$1" VmHWM 2> /dev/null || true)
		[ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a
		[ -n "$h" ] && hwm=$h
		echo "$peak $hwm" > "$2"
		sleep 0.1
	done
}
# feed_pid: the walsender of pg_recvlogical, once it runs
feed_pid() {
	sql "SELECT pid FROM pg_stat_replication WHERE application_name = 'pg_recvlogical'"
}

RESULTS="$OUT/results.tsv"	# size append_s handled_s events_per_s worker_before worker_peak handler_before handler_peak worker_anon handler_anon feed_s feed_peak feed_anon (kB)
: > "$RESULTS"
for n in $SIZES; do
	[ "$(pids)" = "$PIDS" ] || echo "memory: the strata processes changed before size $n ($PIDS, now $(pids))" >&2
	PIDS=$(pids)
	# shellcheck disable=SC2086
	set -- $PIDS
	worker=$1
	shift
	wb=$(kb "$worker" VmRSS)
	hb=0
	for p in "$worker" "$@"; do echo 5 > "/proc/$p/clear_refs"; done
	for p in "$@"; do
		r=$(kb "$p" VmRSS)
		[ "$r" -gt "$hb" ] && hb=$r
	done
	rm -f "$OUT"/sample.*
	for p in "$worker" "$@"; do sample "$p" "$OUT/sample.$p" & done
	calls=$(( (n + 999) / 1000 ))
	per=$(( n < 1000 ? n : 1000 ))
	t0=$(date +%s.%N)
	last=$(sql "SELECT max(v) FROM (SELECT strata.append('mem-$n-' || g,
		(SELECT jsonb_agg(jsonb_build_object('type', 'M', 'data', jsonb_build_object('i', i)))
		 FROM generate_series(1, $per) i)) AS v FROM generate_series(1, $calls) g) s" > /dev/null
		sql "SELECT max(position) FROM strata.events")
	t1=$(date +%s.%N)
	ok=$(sql "SELECT strata.wait_for('bench_mem', $last, '${TIMEOUT}s')")
	t2=$(date +%s.%N)
	[ "$ok" = t ] || echo "memory: size $n not handled within ${TIMEOUT}s" >&2
	for p in "$worker" "$@"; do touch "$OUT/sample.$p.stop"; done
	wait
	wp=$(kb "$worker" VmHWM)
	wa=$(cut -d' ' -f1 "$OUT/sample.$worker")
	hp=0
	ha=0
	for p in "$@"; do
		r=$(kb "$p" VmHWM)
		[ "$r" -gt "$hp" ] && hp=$r
		r=$(cut -d' ' -f1 "$OUT/sample.$p")
		[ "$r" -gt "$ha" ] && ha=$r
	done

	# the output plugin's consumers: pg_recvlogical decodes the same WAL
	end=$(sql "SELECT pg_current_wal_lsn()")
	t3=$(date +%s.%N)
	pg_recvlogical -d "$PGDATABASE" -S bench_mem_feed --start -E "$end" -f /dev/null &
	recv=$!
	fp=""
	while [ -z "$fp" ] && kill -0 "$recv" 2> /dev/null; do
		fp=$(feed_pid)
		[ -n "$fp" ] || sleep 0.05
	done
	[ -n "$fp" ] && sample "$fp" "$OUT/feed" &
	wait "$recv"
	t4=$(date +%s.%N)
	wait
	if [ -n "$fp" ] && [ -s "$OUT/feed" ]; then
		fa=$(cut -d' ' -f1 "$OUT/feed")
		fh=$(cut -d' ' -f2 "$OUT/feed")
	else
		fa=0
		fh=0
		echo "memory: pg_recvlogical ended before its walsender could be sampled" >&2
	fi
	rm -f "$OUT/feed" "$OUT"/sample.*

	awk -v n="$n" -v a="$(echo "$t1 - $t0" | bc)" -v h="$(echo "$t2 - $t1" | bc)" \
		-v wb="$wb" -v wp="$wp" -v hb="$hb" -v hp="$hp" -v wa="$wa" -v ha="$ha" \
		-v f="$(echo "$t4 - $t3" | bc)" -v fh="$fh" -v fa="$fa" \
		'BEGIN { printf "%d\t%.2f\t%.2f\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%d\t%d\n", n, a, h, n / (h > 0 ? h : 0.001), wb, wp, hb, hp, wa, ha, f, fh, fa }' >> "$RESULTS"
	tail -1 "$RESULTS" | awk -F'\t' '{ printf "  %9d events: append %6.2f s, handled %7.2f s after the commit (%.0f/s); worker RSS %d -> peak %d MB (anon %d), handler %d -> peak %d MB (anon %d); feed %.2f s, walsender peak %d MB (anon %d)\n",
		$1, $2, $3, $4, $5 / 1024, $6 / 1024, $9 / 1024, $7 / 1024, $8 / 1024, $10 / 1024, $11, $12 / 1024, $13 / 1024 }'
done

{
	echo "# pg_strata worker memory"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, strata $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- $PGVERSION"
	echo "- one transaction of N events (N/1000 strata.append calls of 1,000 events), a no-op subscription of them; peak RSS (VmHWM, reset before each size) and the largest RssAnon sampled every 100 ms; then pg_recvlogical decodes the same WAL through a slot of the strata plugin (its walsender's peaks)"
	echo
	echo "| events in the transaction | append, s | commit to last handled, s | events/s handled | worker RSS before, MB | worker peak, MB | worker anon peak, MB | handler RSS before, MB | handler peak, MB | handler anon peak, MB | pg_recvlogical, s | walsender peak, MB | walsender anon peak, MB |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' '{ printf "| %d | %.2f | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f |\n",
		$1, $2, $3, $4, $5 / 1024, $6 / 1024, $9 / 1024, $7 / 1024, $8 / 1024, $10 / 1024, $11, $12 / 1024, $13 / 1024 }' "$RESULTS"
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
