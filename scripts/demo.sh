#!/bin/sh
# scripts/demo.sh: start a throwaway cluster with strata preloaded, run the
# showcase of scripts/demo.sql (statements echoed, then their results) and
# drop the cluster.
set -eu
cd "$(dirname "$0")/.."
# the SQL blocks of docs/guide.md, in order, so the guide is what runs
awk '/^```sql$/ {on=1; next} /^```$/ {on=0} on' docs/guide.md > /tmp/strata-demo-guide.sql
chmod 644 /tmp/strata-demo-guide.sql
exec scripts/pgv sh -c 'psql -X -a -f scripts/demo.sql 2>&1' 2>&1 | grep -vE '^[0-9-]+ [0-9:.]+ UTC \[[0-9]+\] LOG:|^\*\*\* .*log \(last|^$'
