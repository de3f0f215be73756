#!/bin/sh
# bench/run.sh [sked-bench options...]
#
# What `make bench` runs: the single-server SQLite table, then the cluster
# table (1, 2 and 3 servers on one PostgreSQL) inside
# tests/store/pg_harness.sh, which starts a throwaway PostgreSQL on a unix
# socket and removes it afterwards. Options are passed to both runs (e.g.
# --seconds 2 for a quick look). Both tables are always attempted; the exit
# status is non-zero when either run reported a failure. BUILD names the
# build directory (default: build).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bench="$here/${BUILD:-build}/sked-bench"
case ${BUILD:-build} in /*) bench="$BUILD/sked-bench" ;; esac

if [ ! -x "$bench" ]; then
    echo "bench/run.sh: $bench not found; build first (make build)" >&2
    exit 2
fi

status=0
"$bench" "$@" || status=1
"$here/tests/store/pg_harness.sh" "$bench" --pg "$@" || status=1
exit $status
