/*
 * Store verbs about the store itself, written once over the SQL driver
 * (db.h): the liveness ping, the readiness probe's durable write, and the
 * test seam that overwrites the schema version.
 */
#include "store/db.h"
#include "store/verbs.h"

#include "common/error.h"

static db_sql_t Q_PING = DB_SAME("SELECT 1");
static db_sql_t Q_PROBE = DB_SAME("INSERT INTO health (id, probed_ms) VALUES (1, ?1)"
                                  " ON CONFLICT (id) DO UPDATE SET probed_ms = excluded.probed_ms");
static db_sql_t Q_VERSION_SET = DB_SAME("UPDATE schema_version SET version = ?1");

static int ping_fn(db_t *db, void *arg)
{
    (void)arg;
    db_q_t *q = db_q(db, &Q_PING);
    return q ? db_exec(q, NULL) : SKED_ESTORE;
}

int v_ping(store_t *st)
{
    return store__tx(st, DB_READ1, ping_fn, NULL, NULL);
}

static int probe_fn(db_t *db, void *arg)
{
    db_q_t *q = db_q(db, &Q_PROBE);
    if (!q) return SKED_ESTORE;
    db_bi(q, *(int64_t *)arg);
    return db_exec(q, NULL);
}

int v_probe_write(store_t *st, int64_t now_ms)
{
    return store__tx(st, DB_WRITE1, probe_fn, &now_ms, NULL);
}

static int set_version_fn(db_t *db, void *arg)
{
    db_q_t *q = db_q(db, &Q_VERSION_SET);
    if (!q) return SKED_ESTORE;
    db_bi(q, *(int *)arg);
    return db_exec(q, NULL);
}

int v_set_schema_version(store_t *st, int version)
{
    return store__tx(st, DB_WRITE1, set_version_fn, &version, NULL);
}
