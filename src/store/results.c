/*
 * Store verbs of results and checkpoints (docs/results.md), written once
 * over the SQL driver (db.h). An attempt's result is a column of its row,
 * written by the statement that finishes the attempt (lease.c); a run's
 * checkpoint is one row of `checkpoints`, replaced by each newer one that
 * a heartbeat or a completion carries, read by the claim of the run's next
 * attempt and by the run's detail, and deleted with the run (ON DELETE
 * CASCADE, so retention needs nothing more).
 *
 * The helpers here run inside the caller's unit of work: lease.c's claim,
 * heartbeat and completion, runs.c's detail read, and the claim of a run
 * with upstreams, which hands it their results.
 */
#include "store/db.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"

/* The result of the run's latest attempt: a row whenever the run exists,
 * NULL when it has no attempt or its attempt reported no result. */
static db_sql_t Q_RUN_RESULT =
    DB_SAME("SELECT a.result FROM runs r LEFT JOIN attempts a ON a.run_id = r.id"
            " AND a.n = r.attempt WHERE r.id = ?1");
/* A run's upstreams, by name (a task's, or an upstream job's), with the
 * result of each one's latest attempt (NULL: none). */
static db_sql_t Q_UPSTREAM_RESULTS =
    DB_SAME("SELECT j.name, a.result FROM run_edges e JOIN runs u ON u.id = e.up_id"
            " JOIN jobs j ON j.id = u.job_id LEFT JOIN attempts a ON a.run_id = u.id"
            " AND a.n = u.attempt WHERE e.run_id = ?1 ORDER BY j.name");
static db_sql_t Q_CHECKPOINT_GET =
    DB_SAME("SELECT attempt, at_ms, data FROM checkpoints WHERE run_id = ?1");
/* Fenced like every report of an attempt: written only while the run is
 * running on the lease `fence` names, and stamped with the run's current
 * attempt (the server's count, not the reporter's). Callers have checked
 * the worker already (a heartbeat: the renewal that kept the run; a
 * completion: its owner check). SQLite needs the WHERE to read the upsert
 * after INSERT ... SELECT unambiguously; it has one. */
static db_sql_t Q_CHECKPOINT_PUT =
    DB_SAME("INSERT INTO checkpoints (run_id, attempt, at_ms, data)"
            " SELECT id, attempt, ?3, ?4 FROM runs WHERE id = ?1 AND fence = ?2 AND state = 3"
            " ON CONFLICT (run_id) DO UPDATE SET attempt = excluded.attempt,"
            " at_ms = excluded.at_ms, data = excluded.data");

int store__run_result(db_t *db, const char *run_id, char **json_out)
{
    *json_out = NULL;
    db_q_t *q = db_q(db, &Q_RUN_RESULT);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    *json_out = db_ct(q, 0);
    return 0;
}

int store__checkpoint_read(db_t *db, const char *run_id, store_checkpoint_t *out)
{
    memset(out, 0, sizeof *out);
    db_q_t *q = db_q(db, &Q_CHECKPOINT_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    int rc = db_one(q);
    if (rc == SKED_ENOTFOUND) return 0;
    if (rc < 0) return rc;
    out->attempt = (int)db_ci(q, 0);
    out->at_ms = db_ci(q, 1);
    out->data = db_ct0(q, 2);
    out->len = strlen(out->data);
    return 0;
}

int store__checkpoint_put(db_t *db, const char *run_id, int64_t fence, const char *data,
                          int64_t now_ms, bool *stored)
{
    int64_t changed = 0;
    db_q_t *q = db_q(db, &Q_CHECKPOINT_PUT);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, fence);
    db_bi(q, now_ms);
    db_bt(q, data);
    int rc = db_exec(q, &changed);
    if (stored) *stored = rc == 0 && changed > 0;
    return rc;
}

struct run_result_args {
    const char *id;
    char **json;
};

static int run_result_fn(db_t *db, void *arg)
{
    struct run_result_args *a = arg;
    FREE_NULL(*a->json); /* a read whose commit failed runs again */
    return store__run_result(db, a->id, a->json);
}

int v_run_result(store_t *st, const char *id, char **json)
{
    struct run_result_args a = {id, json};
    *json = NULL;
    int rc = store__tx(st, DB_READ1, run_result_fn, &a, NULL);
    if (rc < 0) FREE_NULL(*json);
    return rc;
}

/* Appends s as a JSON string. */
static void put_json_string(buf_t *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            buf_printf(b, "\\u%04x", *p);
        else
            buf_append(b, (const char *)p, 1);
    }
    buf_puts(b, "\"");
}

int store__upstream_results(db_t *db, const char *run_id, char **json_out)
{
    *json_out = NULL;
    db_q_t *q = db_q(db, &Q_UPSTREAM_RESULTS);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    buf_t b = BUF_INIT;
    int rc, n = 0;
    buf_puts(&b, "{");
    while ((rc = db_step(q)) == 1) {
        const char *result = db_cnull(q, 1) ? NULL : db_cs(q, 1);
        if (n++) buf_puts(&b, ",");
        put_json_string(&b, db_cs(q, 0));
        buf_puts(&b, ":");
        /* Stored as checked JSON text (one value): spliced as it is. */
        buf_puts(&b, result && *result ? result : "null");
    }
    buf_puts(&b, "}");
    if (rc < 0 || n == 0) {
        buf_free(&b);
        return rc < 0 ? rc : 0;
    }
    *json_out = buf_steal(&b);
    return 0;
}
