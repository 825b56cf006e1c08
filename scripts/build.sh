#!/bin/sh
# scripts/build.sh: build strata.so with the warnings as errors and install it
# into the PostgreSQL 15 found by pg_config.
set -eu
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
make -s -j"$(nproc)"
$SUDO make -s install
echo "build: strata.so built and installed into $(pg_config --pkglibdir)"
