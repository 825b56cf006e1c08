#!/bin/sh
# scripts/build.sh: build strata.so with the warnings as errors and install it
# into the PostgreSQL 15 found by pg_config (or $PG_CONFIG).
#   STRATA_ASSERTS=1 scripts/build.sh   with the extension's Asserts (CI)
# Both are passed to make on its command line, since sudo drops the
# environment, and make install with other flags than make would rebuild
# (the Makefile's .build-flags).
set -eu
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
ASSERTS=${STRATA_ASSERTS:-0}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" STRATA_ASSERTS="$ASSERTS"
$SUDO make -s install PG_CONFIG="$PG_CONFIG" STRATA_ASSERTS="$ASSERTS"
asserts=off
[ "$ASSERTS" = 1 ] && asserts=on
echo "build: strata.so built (asserts $asserts) and installed into $("$PG_CONFIG" --pkglibdir)"
