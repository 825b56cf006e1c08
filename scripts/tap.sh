#!/bin/sh
# scripts/tap.sh [TEST...]: the TAP tests (PostgreSQL::Test::Cluster) of
# test/t, or the ones named, against the installed extension.  initdb
# refuses root, so as root they run as the postgres user on a copy of the
# tree.  Their logs end up in test/log/tap-logs.
#   scripts/tap.sh                          every test (scripts/test.sh)
#   scripts/tap.sh test/t/027_visibility.pl one of them
set -u
cd "$(dirname "$0")/.."
mkdir -p test/log
tests=${*:-test/t/*.pl}
rm -rf test/log/tap-logs
if [ "$(id -u)" -eq 0 ]; then
	tmp=$(mktemp -d /tmp/strata-tap.XXXXXX)
	mkdir "$tmp/src"
	tar -c --exclude=./.git --exclude=./.cache --exclude=./test/log-versions . | tar -x -C "$tmp/src"
	chown -R postgres: "$tmp"
	su postgres -c "cd '$tmp/src' && make -s tap PROVE_FLAGS=--timer PROVE_TESTS='$tests'"
	rc=$?
	cp -r "$tmp/src/tmp_check/log" test/log/tap-logs 2>/dev/null
	rm -rf "$tmp"
else
	make -s tap PROVE_FLAGS=--timer PROVE_TESTS="$tests"
	rc=$?
	cp -r tmp_check/log test/log/tap-logs 2>/dev/null
fi
exit $rc
