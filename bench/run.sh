#!/bin/sh
# bench/run.sh [sked-bench options...]
#
# What `make bench` runs: the single-server SQLite table, then the cluster
# table (1, 2 and 3 servers on one PostgreSQL) inside
# tests/store/pg_harness.sh, which starts a throwaway PostgreSQL on a unix
# socket and removes it afterwards. Options are passed to both runs (e.g.
# --seconds 2 for a quick look). Then the workflows table of each engine
# (sked-graph-load: 1,000 no-op tasks, wide and deep, through the store
# alone; GRAPH_TASKS changes the size). After the SQLite table,
# sked-idle-workers: IDLE_WORKERS (default 5,000) parked claims on one
# server, their threads, memory and wake-ups; sked-overhead: sked's own CPU
# per run of a 1 s CPU job and slot utilisation with a backlog; sked-burst:
# BURST_RUNS (default 100,000) noop runs due in the same second, how soon
# all are claimed; sked-schedules: one server per size in SCHEDULES (default
# 10000,1000000; the million takes a few minutes to create) with ~1,000 cron
# fire times due each second, the fire loop's CPU per run, RSS and database
# size. Every table is always attempted;
# the exit status is non-zero when any run reported a failure. BUILD names
# the build directory (default: build).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bench="$here/${BUILD:-build}/sked-bench"
case ${BUILD:-build} in /*) bench="$BUILD/sked-bench" ;; esac
graph="$(dirname "$bench")/sked-graph-load"
idle="$(dirname "$bench")/sked-idle-workers"
overhead="$(dirname "$bench")/sked-overhead"
burst="$(dirname "$bench")/sked-burst"
schedules="$(dirname "$bench")/sked-schedules"

if [ ! -x "$bench" ]; then
    echo "bench/run.sh: $bench not found; build first (make build)" >&2
    exit 2
fi

status=0
"$bench" "$@" || status=1
"$idle" --workers "${IDLE_WORKERS:-5000}" || status=1
"$overhead" || status=1
"$burst" --runs "${BURST_RUNS:-100000}" || status=1
"$schedules" --sizes "${SCHEDULES:-10000,1000000}" || status=1
"$here/tests/store/pg_harness.sh" "$bench" --pg "$@" || status=1

# Workflows: a fresh SQLite file on disk (durable commits, as the server's),
# then a throwaway PostgreSQL.
echo
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sked-graph.XXXXXX") || exit 1
"$graph" "sqlite:$tmp/graph.db" --tasks "${GRAPH_TASKS:-1000}" --shape wide,deep || status=1
rm -rf "$tmp"
echo
"$here/tests/store/pg_harness.sh" sh -c 'exec "$0" "$SKED_TEST_PG_URL" --tasks "$1" --shape wide,deep' \
    "$graph" "${GRAPH_TASKS:-1000}" || status=1
exit $status
