#!/bin/bash
# scripts/valgrind.sh: run the pg_regress and isolation suites (make
# installcheck: the Makefile's REGRESS and ISOLATION) against a throwaway
# cluster whose postmaster and every child process (backends, walsenders,
# the strata launcher, workers and handler processes) run under valgrind
# memcheck, then scan valgrind's per-process logs.  Ends with one line
# "valgrind: N errors in M processes" and exits non-zero if there was any
# error outside test/valgrind.supp, if a suite failed or if a process
# died of a signal (a crash, a failed Assert).  `make
# test-valgrind` installs valgrind (scripts/deps.sh --valgrind), builds
# and installs the extension, then runs this.
#
# What it can find: Debian's PostgreSQL is not built with USE_VALGRIND,
# so memcheck knows nothing of palloc: a memory context is a few big
# malloc'd blocks to it, and a read of a pfree'd chunk, a write past the
# end of a palloc'd one or a palloc'd value read before it is set go
# unseen as long as they stay inside a live block.  It does see reads of
# uninitialised stack and malloc'd memory (including the bytes palloc
# hands out fresh from malloc), invalid reads and writes outside any
# malloc'd block, uninitialised bytes passed to system calls, and malloc'd
# memory that is definitely lost (libcurl, jansson and OpenSSL objects
# never freed); leaks of palloc'd memory are invisible.
#
# The server gets the settings of every test cluster (PGV_OPTS of
# scripts/cluster.sh) plus fsync=off, as pg_virtualenv gives.  It is not
# pg_virtualenv's cluster: that one runs the system's postgres, and this
# one must run the postgres of PG_CONFIG under valgrind.  Run as root (the
# server then runs as the postgres user, since initdb refuses root) or as
# any other user (the server runs as that user).
#
# Settings (environment):
#   PG_CONFIG          the PostgreSQL to use             (default pg_config)
#   VALGRIND_PORT      the server's port; it listens on a Unix socket
#                      only, in VALGRIND_SOCKDIR         (default 5499)
#   VALGRIND_DIR       the work directory (data, logs)   (default a new
#                      /tmp/strata-valgrind.XXXXXX, removed at the end;
#                      a given one is kept, its data/ and vg/ replaced)
#   VALGRIND_SOCKDIR   the socket directory              (default VALGRIND_DIR)
#   VALGRIND_OPTS      more valgrind options              (default none)
# Arguments are passed to make installcheck, to run a part of the suites:
#   scripts/valgrind.sh REGRESS="setup decoder" ISOLATION=
# The logs stay in test/log/valgrind/: server.log, installcheck.log, and
# the valgrind log of every process that had an error, as <pid>.log.
set -u
cd "$(dirname "$0")/.."
export PG_CONFIG="${PG_CONFIG:-pg_config}"
. scripts/cluster.sh
LOG=test/log/valgrind
rm -rf "$LOG"
mkdir -p "$LOG"

bindir=$("$PG_CONFIG" --bindir) || { echo "valgrind: no $PG_CONFIG" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind: valgrind is not installed (scripts/deps.sh --valgrind)" >&2; exit 1; }
port=${VALGRIND_PORT:-5499}
if [ -n "${VALGRIND_DIR:-}" ]; then
	dir=$VALGRIND_DIR
	mkdir -p "$dir"
else
	dir=$(mktemp -d /tmp/strata-valgrind.XXXXXX)
fi
sockdir=${VALGRIND_SOCKDIR:-$dir}
mkdir -p "$sockdir"
data=$dir/data
vglog=$dir/vg
rm -rf "$data" "$vglog"
mkdir -p "$vglog"
# the server's user must read the suppressions and write the logs; a
# clone under /root is not readable by postgres, so they live in $dir
cp test/valgrind.supp "$dir/valgrind.supp"

if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres: "$dir"
	chown postgres: "$sockdir"
	as_server() { su postgres -s /bin/sh -c "$1"; }
	export PGUSER=postgres
else
	as_server() { sh -c "$1"; }
	PGUSER=$(id -un)
	export PGUSER
fi
export PGHOST=$sockdir PGPORT=$port PGDATABASE=postgres
unset PGSERVICE PGSERVICEFILE

stopped=0
stop_server() {
	[ "$stopped" -eq 1 ] && return
	stopped=1
	[ -f "$data/postmaster.pid" ] || return
	local pid _
	pid=$(head -1 "$data/postmaster.pid")
	# each process checks its memory for leaks as it exits, under
	# valgrind: a fast shutdown can take a minute
	as_server "'$bindir/pg_ctl' stop -D '$data' -m fast -w -t 600" >/dev/null 2>&1 ||
		as_server "'$bindir/pg_ctl' stop -D '$data' -m immediate -w -t 60" >/dev/null 2>&1
	# the postmaster removes postmaster.pid, then valgrind checks it for
	# leaks and writes its summary: wait for the process to be gone
	for _ in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
}
cleanup() {
	stop_server
	[ -z "${VALGRIND_DIR:-}" ] && rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cluster --------------------------------------------------------------
# initdb itself runs natively: the bootstrap is PostgreSQL's, not ours, and
# under valgrind it would take minutes
as_server "'$bindir/initdb' -D '$data' -A trust -E UTF8 --locale=C --no-sync" \
	> "$LOG/initdb.log" 2>&1 || { echo "valgrind: initdb failed:"; cat "$LOG/initdb.log"; exit 1; }
{
	# PGV_OPTS is "-o name=value -o name=value ...": one setting a line
	for opt in $PGV_OPTS; do
		[ "$opt" = "-o" ] && continue
		echo "${opt%%=*} = '${opt#*=}'"
	done
	echo "fsync = off"
	echo "port = $port"
	echo "listen_addresses = ''"
	echo "unix_socket_directories = '$sockdir'"
	# the pid of each line names the valgrind log <pid>.log; %b says
	# which kind of process it was, and every client backend logs its
	# connection
	echo "log_line_prefix = '%m [%p] %b '"
	echo "log_connections = on"
} >> "$data/postgresql.conf"

# The postmaster is started through this wrapper (pg_ctl -p): valgrind
# runs postgres in the same process, so postmaster.pid holds the pid
# pg_ctl stop signals.  Every backend and background worker is a fork of
# the postmaster, which valgrind follows by itself; --trace-children also
# follows anything a process executes (archive or restore commands).
# %p gives every process its own log, which is what is scanned below.
# No --error-exitcode: the postmaster takes any child exiting with a code
# other than 0 or 1 for a crash and restarts every process, which would
# turn one report into failures all over the suites.
# Leaks: only "definitely lost" blocks count; a process exits with its
# memory contexts still allocated and reachable, which is not a leak.
# --show-error-list: at exit, each log lists its errors again and the
# suppressions used (used_suppression lines), to keep test/valgrind.supp
# down to what is needed.
cat > "$dir/postgres-valgrind" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --trace-children=yes \\
	--track-origins=yes --read-var-info=yes --num-callers=40 \\
	--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
	--suppressions='$dir/valgrind.supp' --gen-suppressions=all --show-error-list=yes \\
	--log-file='$vglog/%p.log' ${VALGRIND_OPTS:-} \\
	'$bindir/postgres' "\$@"
EOF
chmod 755 "$dir/postgres-valgrind"

echo "== pg_regress and isolation under valgrind ($("$bindir/postgres" --version), $(valgrind --version))"
start=$(date +%s)
# -t: pg_ctl's default of 60 s is short for a start under valgrind on a
# busy machine
if ! as_server "'$bindir/pg_ctl' start -D '$data' -l '$dir/server.log' -p '$dir/postgres-valgrind' -w -t 600" \
	> "$LOG/pg_ctl.log" 2>&1; then
	echo "valgrind: the server did not start:"
	cat "$LOG/pg_ctl.log" "$dir/server.log" 2>/dev/null | tail -30
	cp "$dir/server.log" "$LOG/" 2>/dev/null
	exit 1
fi

# Timeouts: isolationtester cancels a step after PGISOLATIONTIMEOUT
# seconds (300) and gives up after twice that; under valgrind a step is
# 20 to 50 times slower, so allow an hour.
export PGISOLATIONTIMEOUT=3600
# against this server, never an instance of installcheck's own
make -s installcheck STRATA_INSTANCE=server "$@" > "$LOG/installcheck.log" 2>&1
rc=$?
echo "installcheck exit $rc" >> "$LOG/installcheck.log"
stop_server
end=$(date +%s)
cp "$dir/server.log" "$LOG/server.log"

grep -E '\.\.\. |tests|exit' "$LOG/installcheck.log"
if [ "$rc" -ne 0 ]; then
	[ -f test/out/regression.diffs ] && head -100 test/out/regression.diffs
	[ -f test/out_iso/regression.diffs ] && head -100 test/out_iso/regression.diffs
fi
# a process that died of a signal (a crash, or valgrind giving up on one)
# makes the postmaster restart all of them; the suites may still pass
crashes=$(grep -cE 'terminated by signal|was terminated by exception' "$LOG/server.log")
# a failed Assert (STRATA_ASSERTS=1) is one of them: show which
grep 'TRAP:' "$LOG/server.log"

# --- the valgrind logs ----------------------------------------------------------
# With --gen-suppressions=all every error valgrind reports (each distinct
# stack once per process; leaks at exit) is followed by a suppression
# block, so counting the blocks counts the reports; only those before the
# first ERROR SUMMARY, since --show-error-list prints them again after it.
# A forked process does not report again what its parent had reported
# before the fork.
errors=0
procs=0
nosummary=0
suppressed=0
: > "$LOG/suppressions.txt"
for f in "$vglog"/*.log; do
	[ -e "$f" ] || continue
	grep -q 'ERROR SUMMARY' "$f" || nosummary=$((nosummary + 1))
	sed '/ERROR SUMMARY/q' "$f" > "$dir/reports"
	s=$(sed -n 's/.*ERROR SUMMARY: .*(suppressed: \([0-9]*\) from.*/\1/p' "$dir/reports")
	suppressed=$((suppressed + ${s:-0}))
	n=$(grep -c '<insert_a_suppression_name_here>' "$dir/reports")
	[ "$n" -eq 0 ] && continue
	pid=$(basename "$f" .log)
	errors=$((errors + n))
	procs=$((procs + 1))
	cp "$f" "$LOG/"
	kind=$(grep -oE "\[$pid\] [^ ]+( [a-z]+)*" "$LOG/server.log" | grep -v 'not initialized' |
		head -1 | cut -d' ' -f2-)
	echo "-- process $pid (${kind:-kind unknown}): $n errors"
	# each report: its first line and innermost frames (the lines before
	# its suppression block, at most 12)
	awk '/^==[0-9]+== [^ ]/ {buf = ""; k = 0}
		/^==[0-9]+== / && k < 12 {buf = buf $0 "\n"; k++}
		/^\{/ {printf "%s", buf; buf = ""; k = 99}' "$dir/reports"
	# the suppression blocks, to dedupe across processes
	awk '/^\{/ {b = ""; on = 1} on {b = b $0 "\n"} /^\}/ && on {print b; on = 0}' "$dir/reports" \
		>> "$LOG/suppressions.txt"
done
# one line a block (blocks are paragraphs), without the placeholder name
distinct=$(awk 'BEGIN {RS = ""} {gsub(/\n/, " "); sub(/<insert_a_suppression_name_here>/, ""); print}' \
	"$LOG/suppressions.txt" | sort -u | grep -c .)
# which entries of test/valgrind.supp were used, in how many processes (a
# fork inherits its parent's counts, so only names and process counts)
echo "suppressions used:"
cat "$vglog"/*.log 2>/dev/null | awk '/used_suppression:/ {print $4}' | sort | uniq -c |
	awk '{printf "  %s (%d processes)\n", $2, $1}'
total=$(ls "$vglog" | wc -l)

echo "installcheck exit $rc; $crashes processes ended by a signal; $nosummary of $total processes without a valgrind summary; $((end - start)) s"
[ "$errors" -gt 0 ] && echo "suppression blocks of the $distinct distinct reports: $LOG/suppressions.txt"
echo "valgrind: $errors errors in $procs processes ($suppressed suppressed)"
[ "$errors" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]
