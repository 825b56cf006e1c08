#!/bin/bash
# scripts/doctest.sh: run the SQL examples of the documentation
# (test/doctest.pl) in a throwaway cluster with the installed extension
# preloaded (scripts/cluster.sh's options), one fresh database per file.
#   scripts/doctest.sh [FILE.md...]    default: every file with examples
# Prints "doctest NAME ... ok|FAILED" per file (the cluster's output is in
# test/out_doc/cluster.log); exits non-zero when one failed.
set -u
cd "$(dirname "$0")/.."
. scripts/cluster.sh
[ $# -eq 0 ] && set -- README.md docs/guide.md docs/api.md docs/errors.md docs/consumers.md
rm -rf test/out_doc
mkdir -p test/out_doc
# shellcheck disable=SC2086
pg_virtualenv -t $PGV_OPTS bash -c '
	perl test/doctest.pl "$@"
	rc=$?
	# the server log, for a failed Assert (asserts-enabled builds)
	pg_lsclusters -h | awk "{print \$7}" | xargs -r cat > test/out_doc/server.log 2>/dev/null
	exit $rc' doctest "$@" > test/out_doc/cluster.log 2>&1
rc=$?
grep -E '^(doctest |  )' test/out_doc/cluster.log
if grep -q 'TRAP: ' test/out_doc/server.log 2>/dev/null; then
	echo "doctest: an Assert failed (TRAP in test/out_doc/server.log):"
	grep 'TRAP: ' test/out_doc/server.log | head -5
	rc=1
fi
if [ $rc -ne 0 ] && ! grep -q '^doctest .* FAILED' test/out_doc/cluster.log; then
	echo "doctest: the run failed outside any file (see test/out_doc/cluster.log)"
	tail -20 test/out_doc/cluster.log
fi
exit $rc
