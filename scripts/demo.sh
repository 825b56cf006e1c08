#!/bin/sh
# scripts/demo.sh: start a throwaway cluster with strata preloaded, run the
# showcase of scripts/demo.sql (statements echoed, then their results) and
# drop the cluster.
set -eu
cd "$(dirname "$0")/.."
exec scripts/pgv sh -c 'psql -X -a -f scripts/demo.sql 2>&1' 2>&1 | grep -vE '^[0-9-]+ [0-9:.]+ UTC \[[0-9]+\] LOG:|^\*\*\* .*log \(last|^$'
