#!/bin/sh
# scripts/deps.sh: install the Debian 12 packages pg_strata needs, if any is
# missing.  Runs apt-get as root, or through sudo.
#   scripts/deps.sh           build, test and demo packages
#   scripts/deps.sh --bench   the same, plus the benchmark peers
#   scripts/deps.sh --valgrind   the same, plus valgrind (make test-valgrind)
set -eu

PKGS="make gcc postgresql-15 postgresql-server-dev-15 libjansson-dev \
libcurl4-openssl-dev libssl-dev pkg-config postgresql-15-pgtap \
libtap-parser-sourcehandler-pgtap-perl libipc-run-perl libpq-dev"
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
