#!/bin/sh
# scripts/deps.sh: install the Debian packages pg_strata needs, if any is
# missing.  Runs apt-get as root, or through sudo.
#   scripts/deps.sh           build, test and demo packages
#   scripts/deps.sh --bench   the same, plus the benchmark peers
#   scripts/deps.sh --valgrind   the same, plus valgrind (make test-valgrind)
#   scripts/deps.sh --versions   the same, plus what scripts/versions.sh
#                             needs to make chroots of the other releases
#   scripts/deps.sh --ha      the same, plus Patroni and etcd (the Patroni
#                             test, test/ha/patroni.sh); fails where the
#                             release has no such packages
#   scripts/deps.sh --major   print the PostgreSQL major version of this
#                             machine's Debian release, and nothing else
# The packages are those of the PostgreSQL major version that this Debian
# release ships (scripts/releases: 15 on Debian 12, 17 on trixie, 18 on
# forky), or of $PG when it is set.
set -eu
cd "$(dirname "$0")/.."

# this release's major version, from scripts/releases
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
major=$(awk -v c="$codename" '$2 == c {print $1}' scripts/releases)
if [ "${1:-}" = "--major" ]; then
	[ -n "$major" ] || { echo "deps: Debian release '$codename' is not in scripts/releases" >&2; exit 1; }
	echo "$major"
	exit 0
fi
V=${PG:-$major}
[ -n "$V" ] || { echo "deps: Debian release '$codename' is not in scripts/releases; set PG to a major version" >&2; exit 1; }

# What each package is for (README.md, "Build dependencies"):
#   strata.so: make, gcc, postgresql-server-dev-NN (PGXS and the server's
#     headers; it brings the clang and llvm-dev of its release, which PGXS
#     uses for the JIT bitcode, and libpq-dev).  strata.so links nothing but libc:
#     `make check-linkage` checks it.
#   the server: postgresql-NN (pg_virtualenv, pg_buildext and pg_regress
#     come with it and postgresql-common).
#   examples/strata_consumer (and TAP 010, which runs it): libpq-dev.
#   federation, the next capability (nothing links them yet; they come
#     here first so that a machine is ready for it): libjansson-dev (JSON),
#     libcurl4-openssl-dev (HTTP delivery), libssl-dev (signatures), found
#     through pkg-config.  Its tests will also want libmicrohttpd-dev (an
#     inbox to deliver to), not installed until a test uses it.
#   the tests: postgresql-NN-pgtap (pgTAP), libtap-parser-sourcehandler-
#     pgtap-perl (pg_prove), libipc-run-perl (PostgreSQL::Test::Cluster);
#     make test's clang build uses the clang of postgresql-server-dev-NN.
#   scripts/versions.sh (make test PG=NN, make test-versions): debootstrap
#     and zstd (the chroots and their cached base).
#   test/ha/patroni.sh (a two-node Patroni cluster, docs/ha.md): patroni
#     (it brings python3-psycopg2, which the test's load generator uses
#     too), etcd-server (its DCS) and etcd-client (etcdctl, to look).
BUILD_PKGS="make gcc postgresql-$V postgresql-server-dev-$V libpq-dev"
FEDERATION_PKGS="pkg-config libjansson-dev libcurl4-openssl-dev libssl-dev"
TEST_PKGS="postgresql-$V-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl"
# and what this release needs beyond them (scripts/releases, 4th column)
RELEASE_PKGS=$(awk -v c="$codename" '$2 == c && $4 != "-" {print $4}' scripts/releases | tr ',' ' ')
PKGS="$BUILD_PKGS $FEDERATION_PKGS $TEST_PKGS $RELEASE_PKGS"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS postgresql-$V-wal2json"
[ "${1:-}" = "--versions" ] && PKGS="$PKGS debootstrap zstd"
[ "${1:-}" = "--ha" ] && PKGS="$PKGS patroni etcd-server etcd-client"
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
