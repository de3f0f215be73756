#!/bin/sh
# pg_harness.sh CMD ARGS...
#
# Runs CMD against a throwaway PostgreSQL server, so the PostgreSQL store
# tests never depend on (or touch) a server someone already runs. It makes a
# temporary directory, initdb's a cluster in it, starts the server listening
# only on a unix socket in that directory (no TCP at all), creates a database,
# exports SKED_TEST_PG_URL for it, runs CMD, and on any exit stops the server
# and removes the directory. The exit status is CMD's (or 99 when the server
# could not be set up, which ctest reports as a failure, never as a skip).
#
# PostgreSQL refuses to run as root; when run as root the cluster belongs to
# the "postgres" user (override with SKED_PG_USER) while CMD still runs as
# the caller. Binaries come from PGBIN (default: Debian's PostgreSQL 15).
# SKED_PG_OPTS adds server options (e.g. "-c log_statement=all" to see what
# a bench sends); the server's log is $SKED_TEST_PG_HOST/server.log, which CMD
# can copy before it ends.
set -u

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_USER=${SKED_PG_USER:-postgres}
START_TIMEOUT=${SKED_PG_START_TIMEOUT:-30}

if [ $# -lt 1 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi
for b in initdb pg_ctl createdb; do
    if [ ! -x "$PGBIN/$b" ]; then
        echo "pg_harness: $PGBIN/$b not found (set PGBIN)" >&2
        exit 99
    fi
done

# Short path: the socket path (DIR/.s.PGSQL.5432) must fit in sun_path.
dir=$(mktemp -d /tmp/skedpg.XXXXXX) || exit 99
started=0

# as_pg CMD...: runs a PostgreSQL tool as the cluster's owner.
if [ "$(id -u)" = 0 ]; then
    chown "$PG_USER" "$dir" || exit 99
    as_pg() { runuser -u "$PG_USER" -- "$@"; }
else
    as_pg() { "$@"; }
fi

cleanup() {
    if [ "$started" = 1 ]; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -t "$START_TIMEOUT" -w stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "pg_harness: $*" >&2
    [ -f "$dir/server.log" ] && tail -n 30 "$dir/server.log" >&2
    exit 99
}

# --no-sync only skips syncing the freshly made template files; the server
# itself runs with fsync=on so commits are as durable as in production.
as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    fail "initdb failed"
}

as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$START_TIMEOUT" \
    -o "-k $dir -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200 ${SKED_PG_OPTS:-}" \
    start >/dev/null || fail "server did not start within ${START_TIMEOUT}s"
started=1

as_pg "$PGBIN/createdb" -h "$dir" -U postgres sked_test || fail "createdb failed"

SKED_TEST_PG_URL="postgresql://postgres@/sked_test?host=$dir"
export SKED_TEST_PG_URL
# The socket directory, for tools that want to make more databases.
SKED_TEST_PG_HOST=$dir
export SKED_TEST_PG_HOST

"$@"
exit $?
