#!/bin/sh
# scripts/deps.sh: install the Debian 12 packages pg_strata needs, if any is
# missing.  Runs apt-get as root, or through sudo.
#   scripts/deps.sh           build, test and demo packages
#   scripts/deps.sh --bench   the same, plus the benchmark peers
#   scripts/deps.sh --valgrind   the same, plus valgrind (make test-valgrind)
set -eu

# What each package is for (README.md, "Build dependencies"):
#   strata.so: make, gcc, postgresql-server-dev-15 (PGXS and the server's
#     headers; it brings clang-14 and llvm-14-dev, which PGXS uses for the
#     JIT bitcode, and libpq-dev).  strata.so links nothing but libc:
#     `make check-linkage` checks it.
#   the server: postgresql-15 (pg_virtualenv, pg_buildext and pg_regress
#     come with it and postgresql-common).
#   examples/strata_consumer (and TAP 010, which runs it): libpq-dev.
#   federation, the next capability (nothing links them yet; they come
#     here first so that a machine is ready for it): libjansson-dev (JSON),
#     libcurl4-openssl-dev (HTTP delivery), libssl-dev (signatures), found
#     through pkg-config.  Its tests will also want libmicrohttpd-dev (an
#     inbox to deliver to), not installed until a test uses it.
#   the tests: postgresql-15-pgtap (pgTAP), libtap-parser-sourcehandler-
#     pgtap-perl (pg_prove), libipc-run-perl (PostgreSQL::Test::Cluster);
#     make test's clang build uses the clang-14 of postgresql-server-dev-15.
BUILD_PKGS="make gcc postgresql-15 postgresql-server-dev-15 libpq-dev"
FEDERATION_PKGS="pkg-config libjansson-dev libcurl4-openssl-dev libssl-dev"
TEST_PKGS="postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl"
PKGS="$BUILD_PKGS $FEDERATION_PKGS $TEST_PKGS"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS postgresql-15-wal2json"
# libc6-dbg: glibc's symbols, for valgrind's stacks through libc (valgrind
# only recommends it, and recommends are not installed)
[ "${1:-}" = "--valgrind" ] && PKGS="$PKGS valgrind libc6-dbg"

missing=""
for p in $PKGS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
		"install ok installed") ;;
		*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps: need root or sudo to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
