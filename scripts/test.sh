#!/bin/bash
# scripts/test.sh: run every suite against the installed extension and end
# with one line "N passed, N failed" (N counts test files).
#   1. pg_regress and isolation specs (make installcheck) and pgTAP
#      (pg_prove) in a throwaway pg_virtualenv cluster;
#   2. the SQL blocks of the docs (scripts/doctest.sh) in another one, and
#      the check that docs/errors.md has every SQLSTATE (scripts/errcodes.pl);
#   3. TAP tests (PostgreSQL::Test::Cluster), which run initdb themselves,
#      as the postgres user on a copy of the tree when run as root.
set -u
cd "$(dirname "$0")/.."
. scripts/cluster.sh
LOG=test/log
rm -rf "$LOG"
mkdir -p "$LOG"
passed=0
failed=0

# count "name ... ok" / "name ... FAILED" lines of pg_regress output
count_regress() {
	local p f
	p=$(grep -cE '^(test +)?[ ]*[[:alnum:]_-]+ +\.\.\. ok' "$1")
	f=$(grep -cE '\.\.\. (FAILED|failed)' "$1")
	passed=$((passed + p))
	failed=$((failed + f))
	echo "$2: $p passed, $f failed"
}

# count "file .. ok" / "file .. <anything else>" lines of prove output
count_prove() {
	local p f
	p=$(grep -cE '^(\[[0-9:]+\] )?[^ ]+\.(pl|sql) \.+ ok' "$1")
	f=$(grep -E '^(\[[0-9:]+\] )?[^ ]+\.(pl|sql) \.+ ' "$1" | grep -cvE '\.+ ok')
	passed=$((passed + p))
	failed=$((failed + f))
	echo "$2: $p passed, $f failed"
}

# a runner that failed without a failing test line (it crashed, or could
# not start) counts as one failure
guard() {
	if ! grep -q "$2" "$1" && [ "$failed" -eq "$failed_before" ]; then
		echo "$3: the runner failed outside any test (see $1)"
		failed=$((failed + 1))
	fi
	failed_before=$failed
}
failed_before=0

echo "== pg_regress, isolation and pgTAP in a throwaway cluster"
# shellcheck disable=SC2086
pg_virtualenv $PGV_OPTS bash -c '
	make -s installcheck > test/log/installcheck.log 2>&1
	echo "installcheck exit $?" >> test/log/installcheck.log
	createdb strata_pgtap &&
	psql -X -q -d strata_pgtap -c "CREATE EXTENSION pgtap; CREATE EXTENSION strata;" &&
	pg_prove -d strata_pgtap test/pgtap/*.sql > test/log/pgtap.log 2>&1
	echo "pg_prove exit $?" >> test/log/pgtap.log
	# the server log, for the Assert check at the end
	pg_lsclusters -h | awk "{print \$7}" | xargs -r cat > test/log/server.log 2>/dev/null
' > "$LOG/cluster.log" 2>&1
cat "$LOG/installcheck.log" 2>/dev/null | grep -E '\.\.\. |tests|exit' || true
if [ -f "$LOG/installcheck.log" ]; then
	count_regress "$LOG/installcheck.log" "pg_regress+isolation"
	guard "$LOG/installcheck.log" "installcheck exit 0" "pg_regress+isolation"
	grep -q "installcheck exit 0" "$LOG/installcheck.log" ||
		{ [ -f test/out/regression.diffs ] && head -100 test/out/regression.diffs; \
		  [ -f test/out_iso/regression.diffs ] && head -100 test/out_iso/regression.diffs; }
else
	echo "installcheck did not run:"; cat "$LOG/cluster.log"; failed=$((failed + 1))
fi
if [ -f "$LOG/pgtap.log" ]; then
	cat "$LOG/pgtap.log"
	count_prove "$LOG/pgtap.log" "pgTAP"
	guard "$LOG/pgtap.log" "pg_prove exit 0" "pgTAP"
else
	echo "pgTAP did not run"; failed=$((failed + 1))
fi

# the docs: their SQL blocks as written, one step per file
# (scripts/doctest.sh), and every SQLSTATE the C code raises documented
# (scripts/errcodes.pl), one step
echo "== the SQL examples of the docs, and docs/errors.md"
scripts/doctest.sh > "$LOG/doctest.log" 2>&1
doctest_rc=$?
scripts/errcodes.pl >> "$LOG/doctest.log" 2>&1
cat "$LOG/doctest.log"
p=$(grep -cE '^(doctest [^ ]+|errcodes) \.\.\. ok' "$LOG/doctest.log")
f=$(grep -cE '^(doctest [^ ]+|errcodes) \.\.\. FAILED' "$LOG/doctest.log")
if [ "$doctest_rc" -ne 0 ] && ! grep -q '^doctest .* FAILED' "$LOG/doctest.log"; then
	f=$((f + 1))    # it failed outside any file
fi
passed=$((passed + p))
failed=$((failed + f))
echo "docs: $p passed, $f failed"
failed_before=$failed

echo "== TAP tests (PostgreSQL::Test::Cluster)"
if [ "$(id -u)" -eq 0 ]; then
	tmp=$(mktemp -d /tmp/strata-tap.XXXXXX)
	cp -a . "$tmp/src"
	rm -rf "$tmp/src/.git"
	chown -R postgres: "$tmp"
	su postgres -c "cd '$tmp/src' && make -s tap PROVE_FLAGS=--timer" > "$LOG/tap.log" 2>&1
	cp -r "$tmp/src/tmp_check/log" "$LOG/tap-logs" 2>/dev/null || true
	rm -rf "$tmp"
else
	make -s tap PROVE_FLAGS=--timer > "$LOG/tap.log" 2>&1
fi
cat "$LOG/tap.log"
count_prove "$LOG/tap.log" "TAP"
guard "$LOG/tap.log" "Result: PASS" "TAP"

# A failed Assert (CI builds with them: STRATA_ASSERTS=1) aborts its
# process; one in a background worker that is restarted could leave the
# suites passing, so the server logs are searched for it.
traps=$(grep -l 'TRAP: ' "$LOG/server.log" "$LOG"/tap-logs/*.log 2>/dev/null)
if [ -n "$traps" ]; then
	echo "an Assert failed (TRAP in the server log):"
	grep -h 'TRAP: ' $traps | head -20
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
