#!/bin/bash
# scripts/test.sh: run every suite against the installed extension and end
# with one line "N passed, N failed" (N counts test files).
#   1. pg_regress and isolation specs (make installcheck) and pgTAP
#      (pg_prove) in a throwaway pg_virtualenv cluster;
#   2. packaging: META.json against the PGXN spec, what strata.so links,
#      a build with clang, and a packager's `pg_buildext installcheck`;
#   3. the SQL blocks of the docs (scripts/doctest.sh) in another cluster,
#      and the check that docs/errors.md has every SQLSTATE (scripts/errcodes.pl);
#   4. TAP tests (PostgreSQL::Test::Cluster), which run initdb themselves,
#      as the postgres user on a copy of the tree when run as root;
#   5. a two-node Patroni cluster killed under load (test/ha/patroni.sh),
#      where scripts/deps.sh --ha can install Patroni and etcd.
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
	# 15: "test name ... ok"; 16 and later: "ok 1 - name" (TAP)
	p=$(grep -cE '^(test +)?[ ]*[[:alnum:]_-]+ +\.\.\. ok|^ok [0-9]+ ' "$1")
	f=$(grep -cE '\.\.\. (FAILED|failed)|^not ok [0-9]+ ' "$1")
	passed=$((passed + p))
	failed=$((failed + f))
	echo "$2: $p passed, $f failed"
}

# count "file .. ok" / "file .. <anything else>" lines of prove output; a
# test that skips itself ("file .. skipped: why", as one that needs a later
# PostgreSQL does) is neither, and is listed
count_prove() {
	local p f k
	p=$(grep -cE '^(\[[0-9:]+\] )?[^ ]+\.(pl|sql) \.+ ok' "$1")
	f=$(grep -E '^(\[[0-9:]+\] )?[^ ]+\.(pl|sql) \.+ ' "$1" | grep -cvE '\.+ (ok|skipped:)')
	k=$(grep -cE '^(\[[0-9:]+\] )?[^ ]+\.(pl|sql) \.+ skipped:' "$1")
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$k" -gt 0 ]; then
		echo "$2: $p passed, $f failed ($k skipped on this version)"
	else
		echo "$2: $p passed, $f failed"
	fi
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
	make -s installcheck STRATA_INSTANCE=server > test/log/installcheck.log 2>&1
	echo "installcheck exit $?" >> test/log/installcheck.log
	createdb strata_pgtap &&
	psql -X -q -d strata_pgtap -c "CREATE EXTENSION pgtap; CREATE EXTENSION strata;" &&
	pg_prove -d strata_pgtap test/pgtap/*.sql > test/log/pgtap.log 2>&1
	echo "pg_prove exit $?" >> test/log/pgtap.log
	# the server log, for the Assert check at the end
	pg_lsclusters -h | awk "{print \$7}" | xargs -r cat > test/log/server.log 2>/dev/null
' > "$LOG/cluster.log" 2>&1
cat "$LOG/installcheck.log" 2>/dev/null | grep -E '\.\.\. |^(not )?ok [0-9]+ |tests|exit' || true
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

echo "== packaging: META.json, linkage, clang, the packagers' installcheck"
# Each check counts as one test: "name ... ok" or "name ... FAILED", with
# its output in test/log/<name>.log.
pkg_step() {
	local name=$1 start
	shift
	start=$(date +%s)
	if "$@" > "$LOG/$name.log" 2>&1; then
		echo "$name ... ok ($(($(date +%s) - start)) s)"
		passed=$((passed + 1))
	else
		echo "$name ... FAILED ($(($(date +%s) - start)) s; test/log/$name.log):"
		tail -20 "$LOG/$name.log"
		failed=$((failed + 1))
	fi
	failed_before=$failed
}
# a copy of the tree without the build's products, for the builds below;
# owned by postgres when run as root (initdb refuses root)
pkg_copy() {
	local dir
	dir=$(mktemp -d /tmp/strata-pkg.XXXXXX)
	tar -c --exclude=./.git --exclude=./.cache --exclude=./test/log-versions --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
		--exclude=./test/log --exclude=./test/out --exclude=./test/out_iso --exclude=./test/out_doc \
		--exclude=./test/tmp_check --exclude=./tmp_check --exclude=./.build-flags \
		--exclude=./examples/strata_consumer . | tar -x -C "$dir"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
	echo "$dir"
}
as_builder() {
	if [ "$(id -u)" -eq 0 ]; then su postgres -c "$1"; else sh -c "$1"; fi
}
# the PGXN metadata, against the spec and strata.control
pkg_step meta scripts/check-meta.pl --self-test
# strata.so and the example consumer link what they use, nothing more
pkg_step linkage make -s check-linkage
# make CC=clang in a copy, every warning an error: our code is clean
# under clang too (the bitcode, compiled with clang anyway, is skipped).
# clang is Debian's clang package, or the clang-NN that
# postgresql-server-dev-NN depends on (PGXS's CLANG, for the bitcode).
clang_build() {
	local dir rc cc
	cc=$(command -v clang ||
		sed -n 's/^CLANG = *//p' "$(dirname "$("${PG_CONFIG:-pg_config}" --pgxs)")/../Makefile.global") ||
		true
	[ -n "$cc" ] && [ -x "$(command -v "$cc")" ] || { echo "no clang"; return 1; }
	echo "CC=$cc: $("$cc" --version | head -1)"
	dir=$(pkg_copy)
	(cd "$dir" && make -s -j2 CC="$cc" with_llvm=no STRATA_WERROR=1 \
		STRATA_ASSERTS="${STRATA_ASSERTS:-0}" && make -s check-linkage)
	rc=$?
	rm -rf "$dir"
	return $rc
}
pkg_step clang clang_build
# A packager's test, word for word: `pg_buildext installcheck` in the
# source tree of a package (debian/pgversions names the versions), twice:
# as a package build runs it, as a user who is not root (make installcheck
# starts its own instance with test/strata.conf), and as autopkgtest does,
# as root (make installcheck starts a pg_virtualenv cluster with those
# settings); see docs/testing.md, "Packaging".  The extension is the one
# installed above.
packager_installcheck() {
	local dir rc=0
	dir=$(pkg_copy)
	mkdir -p "$dir/debian" &&
		"${PG_CONFIG:-pg_config}" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/' > "$dir/debian/pgversions"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir/debian"
	echo "-- as the build user"
	as_builder "cd '$dir' && pg_buildext installcheck" || rc=1
	if [ "$(id -u)" -eq 0 ]; then
		echo "-- as root"
		(cd "$dir" && pg_buildext installcheck) || rc=1
	else
		echo "-- not as root: this run is not root"
	fi
	# pg_buildext cleans the tree after a success (so the Assert check
	# below sees only the suites' first run); the outputs of a failure
	cp -r "$dir/test/out" "$LOG/packager-out" 2>/dev/null
	cp -r "$dir/test/out_iso" "$LOG/packager-out_iso" 2>/dev/null
	rm -rf "$dir"
	return $rc
}
pkg_step packager-installcheck packager_installcheck

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
scripts/tap.sh > "$LOG/tap.log" 2>&1
cat "$LOG/tap.log"
count_prove "$LOG/tap.log" "TAP"
guard "$LOG/tap.log" "Result: PASS" "TAP"

# A two-node Patroni cluster with etcd, its leader killed under load, in
# synchronous then asynchronous mode (test/ha/patroni.sh, docs/ha.md): one
# test, "patroni".  Patroni and etcd-server are packages of Debian 12;
# where scripts/deps.sh --ha cannot install them (a release without them,
# no archive) the step is skipped and counts nothing.  Its logs are in
# test/log/patroni/.
# The profile and the test are verified with Debian 12's Patroni (3.0.2)
# and PostgreSQL 15 only: the chroots of the other versions skip it.
echo "== high availability: Patroni (test/ha/patroni.sh)"
if [ "$(scripts/deps.sh --major)" != 15 ]; then
	echo "patroni ... skipped: verified with Debian 12's Patroni and PostgreSQL 15 only"
elif scripts/deps.sh --ha > "$LOG/deps-ha.log" 2>&1; then
	pkg_step patroni test/ha/patroni.sh
else
	echo "patroni ... skipped: scripts/deps.sh --ha could not install patroni and etcd (test/log/deps-ha.log)"
fi

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
