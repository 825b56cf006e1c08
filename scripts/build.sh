#!/bin/sh
# scripts/build.sh: build strata.so with the warnings as errors and install it
# into the PostgreSQL 15 found by pg_config (or $PG_CONFIG).
#   STRATA_ASSERTS=1 scripts/build.sh   with the extension's Asserts (CI)
#   STRATA_WERROR=0 scripts/build.sh    warnings stay warnings (a plain
#                                       `make`, as packagers build, has
#                                       them off)
# They are passed to make on its command line, since sudo drops the
# environment, and make install with other flags than make would rebuild
# (the Makefile's .build-flags).
set -eu
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
ASSERTS=${STRATA_ASSERTS:-0}
WERROR=${STRATA_WERROR:-1}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" STRATA_ASSERTS="$ASSERTS" STRATA_WERROR="$WERROR"
$SUDO make -s install PG_CONFIG="$PG_CONFIG" STRATA_ASSERTS="$ASSERTS" STRATA_WERROR="$WERROR"
asserts=off
[ "$ASSERTS" = 1 ] && asserts=on
werror=off
[ "$WERROR" = 1 ] && werror=on
echo "build: strata.so built (asserts $asserts, -Werror $werror) and installed into $("$PG_CONFIG" --pkglibdir)"
