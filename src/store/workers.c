/*
 * Store verbs of the worker registry, written once over the SQL driver
 * (db.h): register (reusing the row of a worker of the same name and owner
 * that is no longer active, and upserting the plugin types it advertises
 * into the registry, plugins.c), read, list, drain and deregister.
 */
#include "store/db.h"
#include "store/rows.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

static db_sql_t Q_WORKER_REUSE =
    DB_SQL("SELECT id FROM workers WHERE name = ?1 AND owner = ?2 AND state != 0"
           " ORDER BY heartbeat_ms DESC LIMIT 1",
           "SELECT id FROM workers WHERE name = $1 AND owner = $2 AND state <> 0"
           " ORDER BY heartbeat_ms DESC LIMIT 1 FOR NO KEY UPDATE");
static db_sql_t Q_WORKER_INSERT =
    DB_SAME("INSERT INTO workers (id, name, host, labels, queues, slots, state, registered_ms,"
            " heartbeat_ms, owner, ns, types)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7, ?8, ?9, ?10)");
static db_sql_t Q_WORKER_REPLACE =
    DB_SAME("UPDATE workers SET name = ?2, host = ?3, labels = ?4, queues = ?5, slots = ?6,"
            " state = 0, registered_ms = ?7, heartbeat_ms = ?7, owner = ?8, ns = ?9, types = ?10"
            " WHERE id = ?1");
static db_sql_t Q_WORKER_GET = DB_SAME("SELECT " WORKER_COLS " FROM workers w WHERE w.id = ?1");
/* Pages in (name, id) order after the cursor worker's (name, id). Names
 * compare byte by byte in both dialects (SQLite's BINARY, PostgreSQL's
 * "C"), so both list in one order whatever the database's locale. */
#define WORKER_LIST(after, order)                                                                  \
    "SELECT " WORKER_COLS " FROM workers w" after " ORDER BY w.name" order ", w.id LIMIT ?1"
#define WORKER_AFTER(c)                                                                            \
    ", workers c WHERE c.id = ?2 AND w.state != 3 AND w.name" c " >= c.name AND (w.name" c         \
    " > c.name OR w.id > c.id)"
static db_sql_t Q_WORKER_LIST = DB_SQL(WORKER_LIST(" WHERE w.state != 3", ""),
                                       WORKER_LIST(" WHERE w.state != 3", " COLLATE \"C\""));
static db_sql_t Q_WORKER_LIST_AFTER =
    DB_SQL(WORKER_LIST(WORKER_AFTER(""), ""),
           WORKER_LIST(WORKER_AFTER(" COLLATE \"C\""), " COLLATE \"C\""));
/* RETURNING owner: a change for the wrong owner is rolled back. */
static db_sql_t Q_WORKER_SET_STATE =
    DB_SAME("UPDATE workers SET state = ?2 WHERE id = ?1 AND state != 3 RETURNING owner");

struct worker_reg_args {
    store_worker_t *w;
    const store_audit_t *audit;
    int64_t now_ms;
};

static int worker_register_fn(db_t *db, void *arg)
{
    struct worker_reg_args *a = arg;
    store_worker_t *w = a->w;
    db_q_t *q = db_q(db, &Q_WORKER_REUSE);
    if (!q) return SKED_ESTORE;
    db_bt(q, w->name);
    db_bt(q, w->owner ? w->owner : "");
    int rc = db_one(q);
    if (rc < 0 && rc != SKED_ENOTFOUND) return rc;
    bool reuse = rc == 0;
    if (reuse)
        db_cid(q, 0, w->id);
    else
        id_new("wrk", a->now_ms, w->id);
    if (!(q = db_q(db, reuse ? &Q_WORKER_REPLACE : &Q_WORKER_INSERT))) return SKED_ESTORE;
    db_bt(q, w->id);
    db_bt(q, w->name);
    db_bt(q, w->host ? w->host : "");
    db_bt(q, w->labels ? w->labels : "");
    db_bt(q, w->queues && *w->queues ? w->queues : "default");
    db_bi(q, w->slots);
    db_bi(q, a->now_ms);
    db_bt(q, w->owner ? w->owner : "");
    db_bt(q, w->ns ? w->ns : "");
    db_bt(q, w->types ? w->types : "");
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    /* The registry learns of its types in the same unit: a job of a type
     * is accepted only once a worker that runs it is known. */
    if ((rc = store__plugin_upsert(db, w->plugins, w->nplugins, a->now_ms)) < 0) return rc;
    w->state = WORKER_ACTIVE;
    w->registered_ms = w->heartbeat_ms = a->now_ms;
    w->running = 0;
    return store__put_audit(db, a->audit, w->id);
}

int v_worker_register(store_t *st, store_worker_t *w, const store_audit_t *audit, int64_t now_ms)
{
    struct worker_reg_args a = {w, audit, now_ms};
    return store__tx(st, DB_WRITE, worker_register_fn, &a, &a.now_ms);
}

struct worker_get_args {
    const char *id;
    store_worker_t *out;
};

static int worker_get_fn(db_t *db, void *arg)
{
    struct worker_get_args *a = arg;
    db_q_t *q = db_q(db, &Q_WORKER_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc == 0) store__row_worker(q, a->out);
    return rc;
}

int v_worker_get(store_t *st, const char *id, store_worker_t *out)
{
    memset(out, 0, sizeof *out);
    struct worker_get_args a = {id, out};
    return store__tx(st, DB_READ1, worker_get_fn, &a, NULL);
}

static void row_worker(db_q_t *q, void *elem)
{
    store__row_worker(q, elem);
}

static void clear_worker(void *elem)
{
    store_worker_clear(elem);
}

static const db_rows_t worker_rows = {sizeof(store_worker_t), row_worker, clear_worker, NULL};

struct worker_list_args {
    const char *cursor;
    int limit;
    store_worker_t **out;
    size_t *n;
    char **next;
};

static int worker_list_fn(db_t *db, void *arg)
{
    struct worker_list_args *a = arg;
    db_q_t *q = db_q(db, a->cursor ? &Q_WORKER_LIST_AFTER : &Q_WORKER_LIST);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->limit + 1); /* one more than asked: is there a next page? */
    if (a->cursor) db_bt(q, a->cursor);
    /* The cursor is the last worker's id: (name, id) is read from its row. */
    int rc = db_page(q, &worker_rows, -1, (void **)a->out, a->n, NULL);
    if (rc == 0 && *a->n > (size_t)a->limit) {
        store_worker_clear(&(*a->out)[--*a->n]);
        if (*a->n) *a->next = xstrdup((*a->out)[*a->n - 1].id);
    }
    return rc;
}

int v_worker_list(store_t *st, const char *cursor, int limit, store_worker_t **out, size_t *n,
                  char **next_cursor)
{
    struct worker_list_args a = {cursor, limit, out, n, next_cursor};
    return store__tx(st, DB_READ1, worker_list_fn, &a, NULL);
}

struct worker_state_args {
    const char *id, *owner;
    worker_state_t state;
    const store_audit_t *audit;
};

static int worker_state_fn(db_t *db, void *arg)
{
    struct worker_state_args *a = arg;
    db_q_t *q = db_q(db, &Q_WORKER_SET_STATE);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    db_bi(q, a->state);
    int rc = db_one(q);
    if (rc < 0) return rc;
    rc = store__owner_ok(a->owner, db_cs(q, 0)) ? 0 : SKED_EFORBID;
    db_exec(q, NULL); /* finish the statement before the verdict rolls it back */
    return rc < 0 ? rc : store__put_audit(db, a->audit, a->id);
}

int v_worker_set_state(store_t *st, const char *id, const char *owner, worker_state_t state,
                       const store_audit_t *audit, int64_t now_ms)
{
    (void)now_ms;
    struct worker_state_args a = {id, owner, state, audit};
    return store__tx(st, DB_WRITE, worker_state_fn, &a, NULL);
}
