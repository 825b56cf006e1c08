#!/bin/bash
# test/ha/patroni.sh: pg_strata in a two-node Patroni cluster (issue 16,
# docs/ha.md).  For each mode, synchronous (Patroni's synchronous_mode)
# then asynchronous (its default):
#   1. a fresh two-node cluster of PostgreSQL on loopback with the profile
#      of docs/ha.md, its DCS a single etcd member (one for both modes);
#   2. on the leader: the extension, a table public.handled and a
#      subscription 'rec' whose handler inserts the position of each event
#      it handles there;
#   3. test/ha/load.py appends under load (4 connections), recording each
#      acknowledged event (id, position, node, time);
#   4. the leader's postmaster is killed (SIGKILL); in asynchronous mode
#      the leader's walsender is stopped (SIGSTOP) 2 s before, so that the
#      replica really misses what the leader acknowledged meanwhile;
#   5. Patroni promotes the replica (primary_start_timeout 0); the failover
#      time is from the kill to the first append acknowledged by the new
#      leader; the load goes on there for a few seconds;
#   6. test/ha/check.py checks (see there): no position issued twice,
#      the subscription handled every event exactly once, and in
#      synchronous mode that nothing acknowledged was lost, in
#      asynchronous mode that the loss is reported (strata.epochs, ST006).
# Ends with "patroni: passed" or "patroni: FAILED ..." and exit 0 or 1.
#
# It installs nothing: scripts/deps.sh --ha installs patroni, etcd-server
# and etcd-client (scripts/test.sh runs it, and skips this test when they
# cannot be installed).  It uses the strata.so installed in the system's
# PostgreSQL: run it under the lock that build+install take
# (flock /tmp/strata-install.lock test/ha/patroni.sh).  As root: the
# servers, Patroni and etcd run as the postgres user (initdb refuses
# root).  Everything lives under one temporary directory; every process it
# starts is stopped by its pid on every exit path, and the directory is
# removed with rm -rf --one-file-system.  The logs are kept in
# test/log/patroni/ (HA_LOG).  HA_MODES=async runs one mode.  Wall time:
# about a minute.
set -eu
cd "$(dirname "$0")/../.."
SRC=$(pwd)
PY=/usr/bin/python3      # Debian's: it has psycopg2 (python3-psycopg2)
PG_CONFIG=${PG_CONFIG:-pg_config}
PGBIN=$("$PG_CONFIG" --bindir)
HA_LOG=${HA_LOG:-$SRC/test/log/patroni}
MODES=${HA_MODES:-sync async}

die() { echo "patroni: FAILED: $*"; exit 1; }

for cmd in patroni etcd curl "$PGBIN/postgres" "$PGBIN/psql"; do
	command -v "$cmd" >/dev/null || die "$cmd not found (scripts/deps.sh --ha installs Patroni and etcd)"
done
"$PY" -c 'import psycopg2' 2>/dev/null || die "$PY cannot import psycopg2 (python3-psycopg2)"
[ "$(id -u)" -eq 0 ] || die "run as root (the cluster runs as the postgres user)"
[ -f "$("$PG_CONFIG" --pkglibdir)/strata.so" ] || die "strata.so is not installed (scripts/build.sh)"

# --- cleanup, set before anything starts --------------------------------
WORK=""
PIDS=""          # Patroni and etcd, as started (each execs in place)
LOAD_PID=""      # the load generator, while it runs
# procs_under DIR: the pids of the processes whose working directory is
# under DIR: postgres runs in its data directory (a postmaster and all its
# children, orphans of a killed postmaster included), Patroni and etcd
# are started in theirs.  Found through /proc, by pid, nothing by name.
procs_under() {
	local p dir
	for p in /proc/[0-9]*; do
		dir=$(readlink "$p/cwd" 2>/dev/null) || continue
		case "$dir" in "$1"/*) echo "${p#/proc/}" ;; esac
	done
}
# stop_under DIR: SIGTERM to the Patroni and etcd under DIR (Patroni stops
# its PostgreSQL), up to 30 s for every process under DIR to exit, then
# SIGKILL (after SIGCONT: a stopped process) to what is left
stop_under() {
	local pid left
	for pid in $PIDS; do
		case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in
			"$1"/*) kill -TERM "$pid" 2>/dev/null || true ;;
		esac
	done
	for _ in $(seq 1 150); do
		[ -z "$(procs_under "$1")" ] && return 0
		sleep 0.2
	done
	for _ in 1 2 3; do
		left=$(procs_under "$1")
		[ -z "$left" ] && return 0
		echo "patroni: killing what did not stop under $1: $left"
		# shellcheck disable=SC2086
		kill -CONT $left 2>/dev/null
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		sleep 0.5
	done
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ -n "$WORK" ] || exit $rc
	[ -n "$LOAD_PID" ] && kill -KILL "$LOAD_PID" 2>/dev/null
	# the clusters first (their Patroni stop PostgreSQL), etcd last
	for d in "$WORK"/sync "$WORK"/async; do
		[ -d "$d" ] && stop_under "$d"
	done
	stop_under "$WORK"
	# the logs, then the directory
	mkdir -p "$HA_LOG"
	(cd "$WORK" && find . -path '*/data' -prune -o -type f \( -name '*.log' -o -name '*.yml' -o -name acks \
		-o -name load.err -o -name strata.conf \) -print | tar -c -T - 2>/dev/null) |
		tar -x -C "$HA_LOG" 2>/dev/null || true
	if [ -n "$(procs_under "$WORK")" ]; then
		echo "patroni: processes left under $WORK, not deleting it: $(procs_under "$WORK")"
		exit 1
	fi
	rm -rf --one-file-system "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
rm -rf "$HA_LOG"
WORK=$(mktemp -d /tmp/strata-ha.XXXXXX)
chmod 755 "$WORK"
chown postgres: "$WORK"

# as_postgres DIR CMD... &: CMD as the postgres user, in DIR, in a session
# of its own.  Always run in the background (&): the function's subshell
# then execs setsid, setpriv, env and CMD in place, so $! is CMD's pid.
as_postgres() {
	cd "$1" || exit 1
	shift
	exec setsid setpriv --reuid=postgres --regid=postgres --init-groups \
		env -i PATH="$PGBIN:/usr/bin:/bin" HOME="$WORK" LANG=C.UTF-8 "$@"
}

# free ports on loopback: bound at once, then released (the servers bind
# them a moment later)
free_ports() {
	"$PY" -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

# wait_until SECONDS WHAT CMD...: run CMD every 0.2 s until it succeeds
wait_until() {
	local secs=$1 what=$2 deadline=$(($(date +%s) + $1))
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out ($secs s) waiting for $what"
		sleep 0.2
	done
}
psql_at() {      # psql_at PORT SQL: one value, no alignment
	"$PGBIN/psql" -X -qAt -h 127.0.0.1 -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$2"
}
# streaming PORT NAME: the server on PORT has a walsender streaming to NAME
streaming() {
	[ "$(psql_at "$1" "SELECT count(*) FROM pg_stat_replication
		WHERE application_name = '$2' AND state = 'streaming'")" = 1 ]
}
http_ok() { curl -sf -o /dev/null "http://127.0.0.1:$1$2"; }
now() { date +%s.%N; }

# output_plugin_libraries (15.19 and later) exists only where the server
# lists it; an unknown parameter would stop the server from starting
if "$PGBIN/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries[[:space:]]'; then
	OUTPUT_PLUGINS="output_plugin_libraries = 'pgoutput, test_decoding, strata'"
else
	OUTPUT_PLUGINS="# output_plugin_libraries: not a parameter of this server ($("$PGBIN/postgres" --version))"
fi

# --- etcd: one member, loopback, for both modes -------------------------
read -r ETCD_CLIENT ETCD_PEER < <(free_ports 2)
mkdir -p "$WORK/etcd"
chown postgres: "$WORK/etcd"
as_postgres "$WORK/etcd" etcd --name strata-ha --data-dir "$WORK/etcd/data" \
	--listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-cluster "strata-ha=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new \
	--logger zap --log-outputs stderr > "$WORK/etcd/etcd.log" 2>&1 &
PIDS="$PIDS $!"
wait_until 30 "etcd" curl -sf "http://127.0.0.1:$ETCD_CLIENT/health"
echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p') on 127.0.0.1:$ETCD_CLIENT; $(patroni --version); $("$PGBIN/postgres" --version)"

# node_yml MODE N PGPORT APIPORT: the Patroni configuration of node N, the
# profile of docs/ha.md (keep the two alike)
node_yml() {
	local mode=$1 n=$2 pgport=$3 api=$4 dir=$WORK/$1/node$2 sync lag
	if [ "$mode" = sync ]; then
		sync=true
		lag=1048576           # Patroni's default
	else
		sync=false
		lag=1073741824        # 1GB: promote the replica whatever it lacks
	fi
	cat <<EOF
scope: strata-$mode
namespace: /strata-ha/
name: node$n
restapi:
  listen: 127.0.0.1:$api
  connect_address: 127.0.0.1:$api
etcd3:
  hosts: 127.0.0.1:$ETCD_CLIENT
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    primary_start_timeout: 0
    synchronous_mode: $sync
    maximum_lag_on_failover: $lag
    ignore_slots:
      - type: logical
        plugin: strata
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters:
        shared_preload_libraries: strata
        wal_level: logical
        max_worker_processes: 16
        max_replication_slots: 10
        max_wal_senders: 10
        max_slot_wal_keep_size: 1GB
        hot_standby: "on"
  initdb:
    - encoding: UTF8
    - locale: C
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$pgport
  connect_address: 127.0.0.1:$pgport
  data_dir: $dir/data
  bin_dir: $PGBIN
  pgpass: $dir/pgpass
  custom_conf: $dir/strata.conf
  authentication:
    superuser:
      username: postgres
    replication:
      username: replicator
      password: replicator
  parameters:
    unix_socket_directories: $dir
EOF
}

# --- one mode -----------------------------------------------------------
results=""
run_mode() {
	local mode=$1 base=$WORK/$1 n pg1 pg2 api1 api2 leader_pid walsender="" kill_time
	local dsn t0 rc
	echo "== $mode: a two-node Patroni cluster"
	read -r pg1 pg2 api1 api2 < <(free_ports 4)
	for n in 1 2; do
		mkdir -p "$base/node$n"
		eval "node_yml $mode $n \$pg$n \$api$n" > "$base/node$n/patroni.yml"
		# where output_plugin_libraries lives: Patroni 3.0.2 drops it from
		# its parameters (it does not know it on 15), so in custom_conf,
		# the file Patroni's postgresql.conf includes
		echo "$OUTPUT_PLUGINS" > "$base/node$n/strata.conf"
	done
	chown -R postgres: "$base"
	t0=$(date +%s)
	as_postgres "$base/node1" patroni "$base/node1/patroni.yml" > "$base/node1/patroni.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_until 60 "node1 to lead" http_ok "$api1" /primary
	as_postgres "$base/node2" patroni "$base/node2/patroni.yml" > "$base/node2/patroni.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_until 60 "node2 to stream" http_ok "$api2" /replica
	if [ "$mode" = sync ]; then
		wait_until 30 "node2 to be the synchronous standby" http_ok "$api2" /sync
	fi
	# Patroni's /replica answers once PostgreSQL runs; the walsender (which
	# the asynchronous mode stops) a moment later
	wait_until 30 "node2 to stream from node1" streaming "$pg1" node2
	echo "node1 leads on port $pg1, node2 replicates on port $pg2 ($(($(date +%s) - t0)) s)"

	# the extension, the table of handled positions, the subscription
	psql_at "$pg1" "
		CREATE EXTENSION strata;
		CREATE TABLE public.handled (position bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
		CREATE FUNCTION public.rec(e strata.events) RETURNS void LANGUAGE sql
			AS \$\$ INSERT INTO public.handled (position) VALUES (e.position) \$\$;
		SELECT strata.subscribe('rec', 'public.rec(strata.events)');" > /dev/null ||
		die "the extension, table and subscription on node1"
	# one event, handled: the worker decodes (output_plugin_libraries) and
	# the handler runs
	psql_at "$pg1" "SELECT strata.append('warm-up', '{\"type\": \"W\"}')" > /dev/null
	[ "$(psql_at "$pg1" "SELECT strata.wait_for('rec', (SELECT max(position) FROM strata.events), '30s')")" = t ] ||
		die "the subscription did not handle the first event in 30 s: $(psql_at "$pg1" \
			"SELECT state || ' ' || coalesce(last_error, '') FROM strata.subscription_status WHERE name = 'rec'")"
	echo "subscription 'rec' $(psql_at "$pg1" "SELECT state FROM strata.subscription_status WHERE name = 'rec'"); slots on the leader: $(psql_at "$pg1" "SELECT string_agg(slot_name || ' (' || slot_type || ')', ', ' ORDER BY slot_name) FROM pg_replication_slots")"

	# the load, against whichever node is the read-write one
	dsn="host=127.0.0.1,127.0.0.1 port=$pg1,$pg2 user=postgres dbname=postgres target_session_attrs=read-write"
	"$PY" test/ha/load.py "$dsn" 4 "$base/acks" "$base/stop" 2> "$base/load.err" &
	LOAD_PID=$!
	sleep 3
	leader_pid=$(head -1 "$base/node1/data/postmaster.pid")
	if [ "$mode" = async ]; then
		# the replica stops receiving: the walsender is stopped, the leader
		# goes on acknowledging commits (asynchronous), the replica lacks them
		walsender=$(psql_at "$pg1" "SELECT pid FROM pg_stat_replication WHERE application_name = 'node2'")
		[ -n "$walsender" ] || die "no walsender for node2: $(psql_at "$pg1" "SELECT pid, application_name, state FROM pg_stat_replication")"
		kill -STOP "$walsender"
		sleep 2
	fi
	echo "acknowledged before the kill: $(wc -l < "$base/acks") events"
	kill_time=$(now)
	kill -KILL "$leader_pid"
	echo "killed node1's postmaster (pid $leader_pid) with SIGKILL at $kill_time"
	if [ -n "$walsender" ]; then
		# the stopped walsender, an orphan now, must not send what it holds
		kill -KILL "$walsender" 2>/dev/null || true
	fi
	wait_until 60 "node2 to be promoted" http_ok "$api2" /primary
	wait_until 60 "an append acknowledged by node2" grep -q " $pg2 " "$base/acks"
	echo "node2 leads ($(awk -v t="$kill_time" '{print $4 - t}' <(grep " $pg2 " "$base/acks" | head -1)) s after the kill); load for 4 s more"
	sleep 4
	touch "$base/stop"
	wait "$LOAD_PID" || true
	LOAD_PID=""
	echo "load: $(wc -l < "$base/acks") events acknowledged, $(wc -l < "$base/load.err") errors (test/log/patroni/$mode/load.err)"

	rc=0
	"$PY" test/ha/check.py "$mode" "$base/acks" "$kill_time" "$pg1" "$pg2" > "$base/check.log" 2>&1 || rc=1
	cat "$base/check.log"
	results="$results$(grep '^counts ' "$base/check.log")"$'\n'
	[ "$rc" -eq 0 ] || failed_modes="$failed_modes $mode"

	# stop this cluster (Patroni stops its PostgreSQL) before the next
	stop_under "$base"
}

failed_modes=""
for mode in $MODES; do
	run_mode "$mode"
done
# a failed Assert (STRATA_ASSERTS=1 builds) aborts a process of a server
if grep -l 'TRAP: ' "$WORK"/*/node*/patroni.log 2>/dev/null; then
	echo "an Assert failed:"
	grep -h 'TRAP: ' "$WORK"/*/node*/patroni.log | head
	failed_modes="$failed_modes assert"
fi
echo "$results" | sed '/^$/d'
if [ -n "$failed_modes" ]; then
	echo "patroni: FAILED ($failed_modes )"
	exit 1
fi
echo "patroni: passed ($MODES)"
