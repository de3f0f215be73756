/*
 * The SQLite backend of the store (store.h), for `sked dev` and single-server
 * deployments.
 *
 * Concurrency model. One writer thread owns the only read-write connection.
 * A caller of a write verb packs its arguments into a closure (struct wop),
 * queues it and sleeps on a condition variable. The writer takes every
 * queued op at once, opens BEGIN IMMEDIATE, runs each op inside its own
 * SAVEPOINT (a failing op rolls back only itself), COMMITs once, calls the
 * notify hook once if any op asked for it, and wakes all the callers. So N
 * concurrent writes share one WAL fsync (group commit) while every caller
 * still returns only after its change is durable (synchronous=FULL).
 * Reads go to a small pool of read-only connections that WAL lets run
 * beside the writer; each read runs in one transaction, so it sees one
 * consistent snapshot.
 *
 * Statements are prepared once per connection and cached by the address of
 * their SQL text (every SQL string here is a static constant). After each
 * op or read, every still-busy statement is reset, so no connection keeps a
 * read transaction (and an old snapshot) open by accident.
 *
 * Several processes (or several store_open calls) may use the same file:
 * BEGIN IMMEDIATE plus the busy timeout serialise their writers, and every
 * race (fire CAS, claim, fencing) is decided inside a write transaction.
 *
 * Schema: the versioned migrations of schema.c, recorded in
 * schema_version; a store written by a newer sked is refused (SKED_ESCHEMA).
 * Enums are stored as their integer values (run_state_t, job_state_t, ...),
 * which are part of the on-disk format from now on: only append to them.
 */
#include "store/store.h"
#include "store/store_int.h"
#include "store/db.h"

#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"

#define NREADERS         4
#define BUSY_TIMEOUT_MS  15000
#define REAP_BATCH       256
#define CLAIM_WINDOW_MAX 4096

/* ---- connections and statements ---------------------------------------- */

struct stc {
    const char *sql; /* static text; the cache key is its address */
    sqlite3_stmt *st;
};

struct lq;

struct conn {
    sqlite3 *db;
    struct stc *cache;
    size_t n, cap;
    struct lq **lq; /* the driver's statements (db.h), by slot */
    size_t nlq;
};

/* A driver statement (db.h) on one connection. */
struct lq {
    struct db_q base;
    struct conn *c;
    sqlite3_stmt *st;
    int n; /* parameters bound so far */
};

struct wop;
struct sq;
typedef int (*wfn_t)(struct sq *s, void *arg);

/* A queued write: the closure, and where its result goes. */
struct wop {
    wfn_t fn;
    void *arg;
    int rc;
    bool done;
    struct wop *next;
};

struct sq {
    store_t base; /* first: a store_t * is a struct sq * */
    char *path;

    struct conn w; /* the writer's connection; touched only by the writer thread */
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t wmu;
    pthread_cond_t work_cv; /* ops queued, or stop */
    pthread_cond_t done_cv; /* a batch finished */
    struct wop *head, *tail;
    bool stop;
    bool op_notify; /* writer thread only: the running op asked for a notify */

    struct conn r[NREADERS];
    bool rbusy[NREADERS];
    pthread_mutex_t rmu;
    pthread_cond_t rcv;
};

/* Maps an SQLite result to a SKED_E* code, logging unexpected ones once. */
static int dberr(struct conn *c, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return SKED_ECONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        log_warn("store", "sqlite busy: %s", sqlite3_errmsg(c->db));
        return SKED_EBUSY;
    case SQLITE_FULL:
        log_warn("store", "sqlite: the disk is full: %s", sqlite3_errmsg(c->db));
        return SKED_ENOSPC;
    default:
        log_error("store", "sqlite error %d: %s", rc, sqlite3_errmsg(c->db));
        return SKED_ESTORE;
    }
}

/* The cached, reset statement for sql (a static string), or NULL (logged). */
static sqlite3_stmt *prep(struct conn *c, const char *sql)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->cache[i].sql == sql) {
            sqlite3_reset(c->cache[i].st);
            sqlite3_clear_bindings(c->cache[i].st);
            return c->cache[i].st;
        }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        log_error("store", "prepare failed (%s): %s", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->cache = xrealloc(c->cache, c->cap * sizeof *c->cache);
    }
    c->cache[c->n++] = (struct stc){sql, st};
    return st;
}

/* Resets every statement still in progress on the connection. */
static void reset_all(struct conn *c)
{
    for (sqlite3_stmt *st = sqlite3_next_stmt(c->db, NULL); st; st = sqlite3_next_stmt(c->db, st))
        if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
}

static void conn_close(struct conn *c)
{
    for (size_t i = 0; i < c->n; i++)
        sqlite3_finalize(c->cache[i].st);
    FREE_NULL(c->cache);
    for (size_t i = 0; i < c->nlq; i++)
        if (c->lq[i]) {
            sqlite3_finalize(c->lq[i]->st);
            free(c->lq[i]);
        }
    FREE_NULL(c->lq);
    c->nlq = 0;
    c->n = c->cap = 0;
    if (c->db) sqlite3_close_v2(c->db);
    c->db = NULL;
}

/* Runs a statement that returns no rows we need. */
static int run(struct conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* RETURNING rows we do not read */
    int err = rc == SQLITE_DONE ? 0 : dberr(c, rc);
    sqlite3_reset(st);
    return err;
}

/* Runs a fixed statement by its SQL text. */
static int exec_sql(struct conn *c, const char *sql)
{
    sqlite3_stmt *st = prep(c, sql);
    return st ? run(c, st) : SKED_ESTORE;
}

static void bt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bi(sqlite3_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(st, i, v);
}

static char *ct(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

static char *ct0(sqlite3_stmt *st, int i) /* never NULL */
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return xstrdup(t ? (const char *)t : "");
}

static void cid(sqlite3_stmt *st, int i, char out[SKED_ID_LEN])
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, SKED_ID_LEN, "%s", t ? (const char *)t : "");
}

static int64_t ci(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i);
}

/* ---- the writer ---------------------------------------------------------- */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT op";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO op";
static const char SQL_RELEASE[] = "RELEASE op";

static void want_notify(struct sq *s)
{
    s->op_notify = true;
}

static void run_batch(struct sq *s, struct wop *batch)
{
    bool notify = false, lost = false;
    int lost_rc = SKED_ESTORE;
    int rc = exec_sql(&s->w, SQL_BEGIN);
    if (rc < 0) {
        for (struct wop *op = batch; op; op = op->next)
            op->rc = rc;
        return;
    }
    for (struct wop *op = batch; op; op = op->next) {
        if (lost) {
            op->rc = lost_rc;
            continue;
        }
        rc = exec_sql(&s->w, SQL_SAVEPOINT);
        if (rc < 0) {
            op->rc = rc;
            continue;
        }
        s->op_notify = false;
        op->rc = op->fn(s, op->arg);
        reset_all(&s->w);
        if (sqlite3_get_autocommit(s->w.db)) {
            /* SQLite rolled the whole transaction back (I/O error, disk
             * full): every op of this batch so far is gone with it, and
             * fails with this op's reason when it gave one. */
            lost = true;
            lost_rc = op->rc == SKED_ENOSPC ? SKED_ENOSPC : SKED_ESTORE;
            for (struct wop *p = batch; p != op->next; p = p->next)
                p->rc = lost_rc;
            continue;
        }
        if (op->rc < 0) exec_sql(&s->w, SQL_ROLLBACK_TO);
        exec_sql(&s->w, SQL_RELEASE);
        if (op->rc >= 0 && s->op_notify) notify = true;
    }
    if (lost) return;
    rc = exec_sql(&s->w, SQL_COMMIT);
    if (rc < 0) {
        exec_sql(&s->w, SQL_ROLLBACK);
        for (struct wop *op = batch; op; op = op->next)
            if (op->rc >= 0) op->rc = rc == SKED_ENOSPC ? SKED_ENOSPC : SKED_ESTORE;
        return;
    }
    /* Before the callers wake: when a write returns, its notify has run. */
    if (notify) store__notify(&s->base);
}

static void *writer_main(void *arg)
{
    struct sq *s = arg;
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->work_cv, &s->wmu);
        if (!s->head) break; /* stop, and nothing left to do */
        struct wop *batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->wmu);

        run_batch(s, batch);

        pthread_mutex_lock(&s->wmu);
        for (struct wop *op = batch, *next; op; op = next) {
            next = op->next; /* op lives on its caller's stack: read next first */
            op->done = true;
        }
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

/* Queues fn(arg) for the writer and waits until it is committed (or failed).
 * Returns fn's result, or a store error if the commit failed. */
static int wsubmit(struct sq *s, wfn_t fn, void *arg)
{
    struct wop op = {fn, arg, 0, false, NULL};
    pthread_mutex_lock(&s->wmu);
    if (s->tail)
        s->tail->next = &op;
    else
        s->head = &op;
    s->tail = &op;
    pthread_cond_signal(&s->work_cv);
    while (!op.done)
        pthread_cond_wait(&s->done_cv, &s->wmu);
    pthread_mutex_unlock(&s->wmu);
    return op.rc;
}

/* ---- readers ------------------------------------------------------------- */

typedef int (*rfn_t)(struct conn *c, void *arg);

static const char SQL_BEGIN_READ[] = "BEGIN";

/* Runs fn on a pooled read-only connection inside one read transaction. */
static int rd(struct sq *s, rfn_t fn, void *arg)
{
    int i = -1;
    pthread_mutex_lock(&s->rmu);
    for (;;) {
        for (int k = 0; k < NREADERS; k++)
            if (!s->rbusy[k]) {
                i = k;
                break;
            }
        if (i >= 0) break;
        pthread_cond_wait(&s->rcv, &s->rmu);
    }
    s->rbusy[i] = true;
    pthread_mutex_unlock(&s->rmu);

    struct conn *c = &s->r[i];
    int rc = exec_sql(c, SQL_BEGIN_READ);
    if (rc == 0) {
        rc = fn(c, arg);
        reset_all(c);
        int rc2 = exec_sql(c, SQL_COMMIT);
        if (rc >= 0 && rc2 < 0) rc = rc2;
    }

    pthread_mutex_lock(&s->rmu);
    s->rbusy[i] = false;
    pthread_cond_signal(&s->rcv);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* ---- the SQL driver (db.h) --------------------------------------------------- */

struct ldb {
    struct db base;
    struct sq *s;
    struct conn *c;
    bool writer;
};

static const struct db_driver lite_driver;

static db_q_t *lite_q(db_t *db, db_sql_t *sql)
{
    struct conn *c = ((struct ldb *)db)->c;
    size_t slot = (size_t)db__slot(sql);
    if (slot >= c->nlq) {
        size_t n = slot * 2;
        c->lq = xrealloc(c->lq, n * sizeof *c->lq);
        memset(c->lq + c->nlq, 0, (n - c->nlq) * sizeof *c->lq);
        c->nlq = n;
    }
    struct lq *q = c->lq[slot];
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->base.drv = &lite_driver;
        q->c = c;
        q->base.noop = !*sql->lite;
        if (!q->base.noop) {
            int rc =
                sqlite3_prepare_v3(c->db, sql->lite, -1, SQLITE_PREPARE_PERSISTENT, &q->st, NULL);
            if (rc != SQLITE_OK) {
                log_error("store", "prepare failed (%s): %s", sqlite3_errmsg(c->db), sql->lite);
                sqlite3_finalize(q->st);
                free(q);
                return NULL;
            }
        }
        c->lq[slot] = q;
    } else if (q->st) {
        sqlite3_reset(q->st);
        sqlite3_clear_bindings(q->st);
    }
    q->n = 0;
    return &q->base;
}

static void lite_bind(db_q_t *dq, const db_val_t *v)
{
    struct lq *q = (struct lq *)dq;
    int i = ++q->n;
    if (v->null) {
        sqlite3_bind_null(q->st, i);
        return;
    }
    switch (v->type) {
    case DB_TEXT:
        sqlite3_bind_text(q->st, i, v->s, (int)v->len, SQLITE_STATIC);
        break;
    case DB_INT:
    case DB_BOOL:
        sqlite3_bind_int64(q->st, i, v->i);
        break;
    case DB_REAL:
        sqlite3_bind_double(q->st, i, v->d);
        break;
    case DB_BLOB:
        sqlite3_bind_blob(q->st, i, v->s, (int)v->len, SQLITE_STATIC);
        break;
    }
}

static int lite_step(db_q_t *dq)
{
    struct lq *q = (struct lq *)dq;
    int rc = sqlite3_step(q->st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return dberr(q->c, rc);
}

static int64_t lite_changes(db_q_t *dq)
{
    return sqlite3_changes64(((struct lq *)dq)->c->db);
}

static bool lite_col_null(db_q_t *dq, int col)
{
    return sqlite3_column_type(((struct lq *)dq)->st, col) == SQLITE_NULL;
}

static int64_t lite_col_int(db_q_t *dq, int col)
{
    return sqlite3_column_int64(((struct lq *)dq)->st, col);
}

static double lite_col_real(db_q_t *dq, int col)
{
    return sqlite3_column_double(((struct lq *)dq)->st, col);
}

static const char *lite_col_text(db_q_t *dq, int col)
{
    return (const char *)sqlite3_column_text(((struct lq *)dq)->st, col);
}

static const void *lite_col_blob(db_q_t *dq, int col, size_t *len)
{
    sqlite3_stmt *st = ((struct lq *)dq)->st;
    const void *p = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return p;
}

static void lite_notify(db_t *db)
{
    struct ldb *l = (struct ldb *)db;
    if (l->writer) want_notify(l->s);
}

struct lite_call {
    struct sq *s;
    db_fn fn;
    void *arg;
};

static int lite_write(struct sq *s, void *arg)
{
    struct lite_call *k = arg;
    struct ldb db = {{&lite_driver, &s->base}, s, &s->w, true};
    return k->fn(&db.base, k->arg);
}

static int lite_read(struct conn *c, void *arg)
{
    struct lite_call *k = arg;
    struct ldb db = {{&lite_driver, &k->s->base}, k->s, c, false};
    return k->fn(&db.base, k->arg);
}

static int lite_tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms)
{
    struct lite_call k = {(struct sq *)st, fn, arg};
    (void)now_ms; /* the caller's clock is the authority here */
    return kind == DB_WRITE || kind == DB_WRITE1 ? wsubmit(k.s, lite_write, &k)
                                                 : rd(k.s, lite_read, &k);
}

static const struct db_driver lite_driver = {
    .name = "sqlite",
    .tx = lite_tx,
    .q = lite_q,
    .bind = lite_bind,
    .step = lite_step,
    .changes = lite_changes,
    .col_null = lite_col_null,
    .col_int = lite_col_int,
    .col_real = lite_col_real,
    .col_text = lite_col_text,
    .col_blob = lite_col_blob,
    .notify = lite_notify,
};

/* ---- row readers --------------------------------------------------------- */

#define RUN_COLS                                                                                   \
    "id, job_id, schedule_id, worker_id, state, fire_ms, not_before_ms, priority, queue,"          \
    " attempt, fence, lease_expires_ms, cancel_requested, created_ms, started_ms, finished_ms,"    \
    " exit_code, signal, reason, log_bytes, log_truncated"

static void row_run(sqlite3_stmt *q, store_run_t *r)
{
    cid(q, 0, r->id);
    cid(q, 1, r->job_id);
    cid(q, 2, r->schedule_id);
    cid(q, 3, r->worker_id);
    r->state = (run_state_t)ci(q, 4);
    r->fire_ms = ci(q, 5);
    r->not_before_ms = ci(q, 6);
    r->priority = (int)ci(q, 7);
    r->queue = ct0(q, 8);
    r->attempt = (int)ci(q, 9);
    r->fence = ci(q, 10);
    r->lease_expires_ms = ci(q, 11);
    r->cancel_requested = ci(q, 12) != 0;
    r->created_ms = ci(q, 13);
    r->started_ms = ci(q, 14);
    r->finished_ms = ci(q, 15);
    r->exit_code = (int)ci(q, 16);
    r->signal = (int)ci(q, 17);
    r->reason = ct(q, 18);
    r->log_bytes = ci(q, 19);
    r->log_truncated = ci(q, 20) != 0;
}

#define WORKER_COLS                                                                                \
    "w.id, w.name, w.host, w.labels, w.queues, w.slots, w.state, w.registered_ms,"                 \
    " w.heartbeat_ms, (SELECT COUNT(*) FROM runs r WHERE r.worker_id = w.id AND r.state = 3)"

/* ---- lifecycle ops ------------------------------------------------------- */

static void sq_close(store_t *st)
{
    struct sq *s = (struct sq *)st;
    if (s->writer_started) {
        pthread_mutex_lock(&s->wmu);
        s->stop = true;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->writer, NULL);
    }
    for (int i = 0; i < NREADERS; i++)
        conn_close(&s->r[i]);
    conn_close(&s->w);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->rcv);
    store__fini(&s->base);
    free(s->path);
    free(s);
}

/* ---- runs ------------------------------------------------------------------ */

static const char SQL_RUN_GET[] = "SELECT " RUN_COLS " FROM runs WHERE id = ?1";

/* Reads one run by id on any connection; SKED_ENOTFOUND. */
static int read_run(struct conn *c, const char *id, store_run_t *out)
{
    sqlite3_stmt *q = prep(c, SQL_RUN_GET);
    if (!q) return SKED_ESTORE;
    bt(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) return SKED_ENOTFOUND;
    if (rc != SQLITE_ROW) return dberr(c, rc);
    row_run(q, out);
    sqlite3_reset(q);
    return 0;
}

/* Two variants (by job, or all) so that each walks an index in order:
 * runs_job(job_id, fire_ms, id) or runs_fire(fire_ms, id). The upper bound
 * is always one row-value key, (fire_ms, id) < (?5, ?6): the cursor, or
 * (until, '') on a first page, which means fire_ms < until since every id
 * is non-empty. One bound lets SQLite seek to the page instead of walking
 * over the pages before it. */
#define RUN_LIST_TAIL                                                                              \
    " AND (?2 IS NULL OR state = ?2) AND fire_ms >= ?3 AND (fire_ms, id) < (?5, ?6)"               \
    " AND (?8 IS NULL OR job_id IN (SELECT id FROM jobs"                                           \
    " WHERE instr(',' || ?8 || ',', ',' || ns || ',') > 0))"                                       \
    " ORDER BY fire_ms DESC, id DESC LIMIT ?7"
/* ---- claim ----------------------------------------------------------------- */

/* Also adopts a worker registered before workers had owners (owner ''):
 * the first worker token to speak for it binds it. */
static const char SQL_WORKER_TOUCH[] =
    "UPDATE workers SET heartbeat_ms = ?2, state = CASE WHEN state = 2 THEN 0 ELSE state END,"
    " owner = CASE WHEN owner = '' AND ?3 IS NOT NULL THEN ?3 ELSE owner END"
    " WHERE id = ?1 AND state != 3 RETURNING state, queues, labels, owner, ns";
/* The next lower priority level present among claimable runs of a queue. */
static const char SQL_CLAIM_LEVEL[] =
    "SELECT priority FROM runs INDEXED BY runs_claim"
    " WHERE state IN (0, 2) AND held = 0 AND queue = ?1 AND priority < ?2"
    " ORDER BY priority DESC LIMIT 1";
/* The oldest due runs of one level that this worker may take: of a job
 * neither paused nor deleted, in the worker's namespaces (?5; '' = all),
 * whose constraints its labels (?6) satisfy. Filtered here, as PostgreSQL
 * does, so a backlog the worker cannot take never fills the candidate
 * window and hides the runs behind it. */
static const char SQL_CLAIM_ROWS[] =
    "SELECT id, job_id, not_before_ms, fire_ms FROM runs INDEXED BY runs_claim"
    " WHERE state IN (0, 2) AND held = 0 AND queue = ?1 AND priority = ?2"
    " AND not_before_ms <= ?3 AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = runs.job_id"
    " AND j.state NOT IN (1, 3) AND (?5 = '' OR instr(',' || ?5 || ',', ',' || j.ns || ',') > 0)"
    " AND sked_labels_ok(?6, j.constraints)) ORDER BY not_before_ms LIMIT ?4";
static const char SQL_CLAIM_JOB[] =
    "SELECT state, constraints, max_concurrency, overlap, spec_json, timeout_ms, name, ns"
    " FROM jobs WHERE id = ?1";
static const char SQL_JOB_RUNNING[] =
    "SELECT COUNT(*) FROM runs INDEXED BY runs_running_job WHERE job_id = ?1 AND state = 3";
static const char SQL_RUN_SKIP_OVERLAP[] =
    "UPDATE runs SET state = 7, finished_ms = ?2, reason = 'overlap'"
    " WHERE id = ?1 AND state IN (0, 2)";
static const char SQL_RUNS_REPLACE[] =
    "UPDATE runs SET cancel_requested = 1, reason = coalesce(reason, 'replaced by a newer run')"
    " WHERE job_id = ?1 AND state = 3 AND cancel_requested = 0";
static const char SQL_RUN_LEASE[] =
    "UPDATE runs SET state = 3, worker_id = ?2, attempt = attempt + 1, fence = ?3,"
    " lease_expires_ms = ?4, started_ms = CASE WHEN started_ms < 0 THEN ?5 ELSE started_ms END,"
    " unconfirmed = 1 WHERE id = ?1 AND state IN (0, 2) RETURNING attempt";
static const char SQL_ATTEMPT_INSERT[] =
    "INSERT INTO attempts (run_id, n, worker_id, fence, started_ms) VALUES (?1, ?2, ?3, ?4, ?5)";

struct cand {
    char id[SKED_ID_LEN];
    char job_id[SKED_ID_LEN];
    int64_t eff; /* priority with aging */
    int64_t fire_ms;
};

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->eff != b->eff) return a->eff > b->eff ? -1 : 1;
    if (a->fire_ms != b->fire_ms) return a->fire_ms < b->fire_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

struct claim_args {
    const char *worker_id, *owner;
    int max;
    int64_t lease_ms, now_ms; /* lease_ms: the unconfirmed lease, the confirm window */
    char *ns;                 /* the worker's namespace; "" = all */
    store_claimed_t *out;
    size_t n;
};

/* Collects the best `window` due runs of the worker's queues by effective
 * priority. Aging adds at most STORE__AGING_CAP, so a level more than that
 * below the window's worst candidate cannot enter it: the scan visits
 * O(levels near the top) index ranges of O(window) rows each, whatever the
 * backlog. *more OUT: candidates beyond the window may exist. */
static int gather(struct conn *c, const char *queues, const char *ns, const char *labels,
                  int window, int64_t now_ms, struct cand **out, size_t *nout, bool *more)
{
    struct cand *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    *more = false;
    char *qs = xstrdup(queues), *save = NULL;
    for (char *queue = strtok_r(qs, ",", &save); queue; queue = strtok_r(NULL, ",", &save)) {
        int64_t level = (int64_t)INT_MAX + 1;
        for (;;) {
            if (n >= (size_t)window) {
                /* The window's worst candidate so far decides whether lower
                 * levels can still matter. */
                qsort(v, n, sizeof *v, cand_cmp);
                if (level + STORE__AGING_CAP < v[window - 1].eff) {
                    *more = true;
                    break;
                }
            }
            sqlite3_stmt *q = prep(c, SQL_CLAIM_LEVEL);
            if (!q) {
                rc = SKED_ESTORE;
                goto out;
            }
            bt(q, 1, queue);
            bi(q, 2, level);
            rc = sqlite3_step(q);
            if (rc == SQLITE_DONE) {
                rc = 0;
                break;
            }
            if (rc != SQLITE_ROW) {
                rc = dberr(c, rc);
                goto out;
            }
            level = ci(q, 0);
            sqlite3_reset(q);

            if (!(q = prep(c, SQL_CLAIM_ROWS))) {
                rc = SKED_ESTORE;
                goto out;
            }
            bt(q, 1, queue);
            bi(q, 2, level);
            bi(q, 3, now_ms);
            bi(q, 4, window);
            bt(q, 5, ns);
            bt(q, 6, labels);
            int got = 0;
            while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = xrealloc(v, cap * sizeof *v);
                }
                struct cand *k = &v[n++];
                cid(q, 0, k->id);
                cid(q, 1, k->job_id);
                k->eff = store__effective_priority((int)level, ci(q, 2), now_ms);
                k->fire_ms = ci(q, 3);
                got++;
            }
            if (rc != SQLITE_DONE) {
                rc = dberr(c, rc);
                goto out;
            }
            rc = 0;
            if (got == window) *more = true;
        }
    }
    if (n) qsort(v, n, sizeof *v, cand_cmp);
out:
    free(qs);
    if (rc < 0) {
        FREE_NULL(v);
        n = 0;
    }
    *out = v;
    *nout = n;
    return rc;
}

/* Tries to claim one candidate. Returns 1 if claimed (into *cl), 0 if it
 * was passed over, or an error. */
static int claim_one(struct sq *s, struct claim_args *a, const char *labels, const struct cand *k,
                     store_claimed_t *cl)
{
    struct conn *c = &s->w;
    char *spec = NULL;
    int rc;
    sqlite3_stmt *q = prep(c, SQL_CLAIM_JOB);
    if (!q) return SKED_ESTORE;
    bt(q, 1, k->job_id);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW) return rc == SQLITE_DONE ? 0 : dberr(c, rc);
    job_state_t js = (job_state_t)ci(q, 0);
    const char *constraints = (const char *)sqlite3_column_text(q, 1);
    int max_conc = (int)ci(q, 2);
    overlap_policy_t overlap = (overlap_policy_t)ci(q, 3);
    const char *job_ns = (const char *)sqlite3_column_text(q, 7);
    if (js == JOB_PAUSED || js == JOB_DELETED || !store__labels_satisfy(labels, constraints) ||
        (*a->ns && !store__listed(a->ns, job_ns ? job_ns : ""))) {
        sqlite3_reset(q);
        return 0;
    }
    /* Keep what a claim hands out before the job statement is reused. */
    spec = ct0(q, 4);
    int64_t timeout_ms = ci(q, 5);
    char job_name[256];
    snprintf(job_name, sizeof job_name, "%s", (const char *)sqlite3_column_text(q, 6));
    sqlite3_reset(q);

    rc = SKED_ESTORE;
    if (!(q = prep(c, SQL_JOB_RUNNING))) goto out;
    bt(q, 1, k->job_id);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
        rc = dberr(c, rc);
        goto out;
    }
    int64_t running = ci(q, 0);
    sqlite3_reset(q);

    rc = SKED_ESTORE;
    if (running > 0 && overlap == OVERLAP_FORBID) {
        if (!(q = prep(c, SQL_RUN_SKIP_OVERLAP))) goto out;
        bt(q, 1, k->id);
        bi(q, 2, a->now_ms);
        if ((rc = run(c, q)) == 0) want_notify(s);
        goto out;
    }
    if (running > 0 && overlap == OVERLAP_REPLACE) {
        /* The new run waits for the old one to die; its worker learns of
         * the cancel at its next heartbeat. */
        if (!(q = prep(c, SQL_RUNS_REPLACE))) goto out;
        bt(q, 1, k->job_id);
        if ((rc = run(c, q)) == 0 && sqlite3_changes(c->db)) want_notify(s);
        goto out;
    }
    if (max_conc > 0 && running >= max_conc) {
        rc = 0;
        goto out;
    }

    /* Random, not a counter: no worker can guess another lease's fence,
     * and one cut off long ago never matches a later lease. */
    int64_t fence = store__fence_new();
    if (!(q = prep(c, SQL_RUN_LEASE))) goto out;
    bt(q, 1, k->id);
    bt(q, 2, a->worker_id);
    bi(q, 3, fence);
    bi(q, 4, a->now_ms + a->lease_ms);
    bi(q, 5, a->now_ms);
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        /* DONE: not claimable any more (cannot happen under one writer). */
        rc = rc == SQLITE_DONE ? 0 : dberr(c, rc);
        goto out;
    }
    int64_t attempt = ci(q, 0);
    sqlite3_reset(q);

    rc = SKED_ESTORE;
    if (!(q = prep(c, SQL_ATTEMPT_INSERT))) goto out;
    bt(q, 1, k->id);
    bi(q, 2, attempt);
    bt(q, 3, a->worker_id);
    bi(q, 4, fence);
    bi(q, 5, a->now_ms);
    if ((rc = run(c, q)) < 0) goto out;
    if ((rc = read_run(c, k->id, &cl->run)) < 0) goto out;
    cl->spec_json = spec;
    spec = NULL;
    cl->timeout_ms = timeout_ms;
    memcpy(cl->job_name, job_name, sizeof cl->job_name);
    rc = 1;
out:
    free(spec);
    return rc;
}

static int claim_fn(struct sq *s, void *arg)
{
    struct claim_args *a = arg;
    struct conn *c = &s->w;
    struct cand *cands = NULL;
    char *queues = NULL, *labels = NULL;
    int rc = 0;

    sqlite3_stmt *q = prep(c, SQL_WORKER_TOUCH);
    if (!q) return SKED_ESTORE;
    bt(q, 1, a->worker_id);
    bi(q, 2, a->now_ms);
    bt(q, 3, a->owner);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) return SKED_ENOTFOUND;
    if (rc != SQLITE_ROW) return dberr(c, rc);
    worker_state_t ws = (worker_state_t)ci(q, 0);
    queues = ct0(q, 1);
    labels = ct0(q, 2);
    bool owner_ok = store__owner_ok(a->owner, (const char *)sqlite3_column_text(q, 3));
    a->ns = ct0(q, 4);
    sqlite3_reset(q);
    rc = 0;
    if (!owner_ok) {
        rc = SKED_EFORBID; /* rolls the touch back */
        goto out;
    }
    if (ws == WORKER_DRAINING || a->max == 0) goto out;

    a->out = xcalloc((size_t)a->max, sizeof *a->out);
    /* Widen the window only when candidates were passed over (constraints,
     * concurrency) and more may lie beyond it. */
    for (int window = a->max * 2 + 8;; window *= 4) {
        size_t n = 0;
        bool more = false;
        FREE_NULL(cands);
        if ((rc = gather(c, queues, a->ns, labels, window, a->now_ms, &cands, &n, &more)) < 0)
            goto out;
        for (size_t i = 0; i < n && a->n < (size_t)a->max; i++) {
            rc = claim_one(s, a, labels, &cands[i], &a->out[a->n]);
            if (rc < 0) goto out;
            if (rc == 1) a->n++;
        }
        rc = 0;
        if (a->n == (size_t)a->max || !more || window >= CLAIM_WINDOW_MAX) break;
    }
    if (a->n) want_notify(s);
out:
    free(cands);
    free(queues);
    free(labels);
    return rc;
}

static int sq_claim(store_t *st, const char *worker_id, const char *owner, int max,
                    int64_t confirm_ms, int64_t now_ms, store_claimed_t **out, size_t *n)
{
    struct claim_args a = {worker_id, owner, max, confirm_ms, now_ms, NULL, NULL, 0};
    int rc = wsubmit((struct sq *)st, claim_fn, &a);
    free(a.ns);
    if (rc < 0) {
        for (size_t i = 0; i < a.n; i++)
            store_claimed_clear(&a.out[i]);
        FREE_NULL(a.out);
        a.n = 0;
    }
    *out = a.out;
    *n = a.n;
    return rc;
}

/* ---- heartbeat, complete, reap -------------------------------------------- */

static const char SQL_RUN_HELD[] =
    "SELECT worker_id, fence, state, cancel_requested, unconfirmed FROM runs WHERE id = ?1";
static const char SQL_RUN_RENEW[] =
    "UPDATE runs SET lease_expires_ms = ?2, unconfirmed = 0 WHERE id = ?1";

struct heartbeat_args {
    const char *worker_id, *owner;
    store_held_t *held;
    size_t nheld;
    int64_t lease_ms, now_ms;
    bool *draining;
};

static int heartbeat_fn(struct sq *s, void *arg)
{
    struct heartbeat_args *a = arg;
    struct conn *c = &s->w;
    sqlite3_stmt *q = prep(c, SQL_WORKER_TOUCH);
    if (!q) return SKED_ESTORE;
    bt(q, 1, a->worker_id);
    bi(q, 2, a->now_ms);
    bt(q, 3, a->owner);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) return SKED_ENOTFOUND;
    if (rc != SQLITE_ROW) return dberr(c, rc);
    *a->draining = ci(q, 0) == WORKER_DRAINING;
    bool owner_ok = store__owner_ok(a->owner, (const char *)sqlite3_column_text(q, 3));
    sqlite3_reset(q);
    if (!owner_ok) return SKED_EFORBID;

    for (size_t i = 0; i < a->nheld; i++) {
        store_held_t *h = &a->held[i];
        if (!(q = prep(c, SQL_RUN_HELD))) return SKED_ESTORE;
        bt(q, 1, h->run_id);
        rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            h->keep = false;
            continue;
        }
        if (rc != SQLITE_ROW) return dberr(c, rc);
        h->keep = strcmp((const char *)sqlite3_column_text(q, 0), a->worker_id) == 0 &&
                  ci(q, 1) == h->fence && ci(q, 2) == RUN_RUNNING && ci(q, 3) == 0;
        bool unconfirmed = ci(q, 4) != 0;
        sqlite3_reset(q);
        /* An unconfirmed lease keeps its short term until the attempt is
         * reported started: a run handed out and never begun comes back
         * soon, however often its worker heartbeats. */
        if (!h->keep || (unconfirmed && !h->started)) continue;
        if (!(q = prep(c, SQL_RUN_RENEW))) return SKED_ESTORE;
        bt(q, 1, h->run_id);
        bi(q, 2, a->now_ms + a->lease_ms);
        if ((rc = run(c, q)) < 0) return rc;
    }
    return 0;
}

static int sq_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                        size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining)
{
    struct heartbeat_args a = {worker_id, owner, held, nheld, lease_ms, now_ms, draining};
    int rc = wsubmit((struct sq *)st, heartbeat_fn, &a);
    if (rc < 0)
        for (size_t i = 0; i < nheld; i++)
            held[i].keep = false;
    return rc;
}

static const char SQL_RUN_FOR_FINISH[] =
    "SELECT r.state, r.fence, r.attempt, r.cancel_requested, r.reason, j.retry_max_attempts,"
    " j.retry_initial_ms, j.retry_max_ms, j.retry_multiplier, j.retry_jitter, j.state,"
    " r.unconfirmed, w.owner FROM runs r JOIN jobs j ON j.id = r.job_id"
    " LEFT JOIN workers w ON w.id = r.worker_id WHERE r.id = ?1";
/* Undoes an attempt that never started: the run is due again with the
 * attempt count as before (its log bytes given back); the attempt's row and
 * log go (SQL_ATTEMPT_DROP, SQL_LOG_DROP). */
static const char SQL_RUN_UNCLAIM[] =
    "UPDATE runs SET state = ?2, not_before_ms = ?3, lease_expires_ms = -1, finished_ms = ?4,"
    " reason = ?5, held = ?6, attempt = attempt - 1, worker_id = '', unconfirmed = 0,"
    " started_ms = CASE WHEN attempt = 1 THEN -1 ELSE started_ms END,"
    " log_bytes = log_bytes - (SELECT coalesce(sum(length(data)), 0) FROM log_chunks l"
    " WHERE l.run_id = runs.id AND l.attempt = runs.attempt AND l.stream != 0),"
    " log_truncated = EXISTS (SELECT 1 FROM log_chunks l WHERE l.run_id = runs.id"
    " AND l.attempt != runs.attempt AND l.stream = 0)"
    " WHERE id = ?1";
static const char SQL_ATTEMPT_DROP[] = "DELETE FROM attempts WHERE run_id = ?1 AND n = ?2";
static const char SQL_LOG_DROP[] = "DELETE FROM log_chunks WHERE run_id = ?1 AND attempt = ?2";
static const char SQL_ATTEMPT_REPORTED[] =
    "SELECT reported FROM attempts WHERE run_id = ?1 AND n = ?2 AND fence = ?3";
static const char SQL_ATTEMPT_FINISH[] =
    "UPDATE attempts SET finished_ms = ?3, outcome = ?4, exit_code = ?5, signal = ?6,"
    " reason = ?7, reported = ?8 WHERE run_id = ?1 AND n = ?2";
static const char SQL_RUN_FINISH[] =
    "UPDATE runs SET state = ?2, not_before_ms = CASE WHEN ?2 = 0 THEN ?3 ELSE not_before_ms END,"
    " lease_expires_ms = -1, finished_ms = ?4, exit_code = ?5, signal = ?6, reason = ?7,"
    " held = ?8 WHERE id = ?1";

/* The running run's facts that decide what a finished attempt leads to. */
struct finishing {
    run_state_t state;
    int64_t fence;
    int attempt;
    bool cancel_requested;
    char *reason; /* the cancel reason, if any */
    retry_policy_t retry;
    bool held;
    bool unconfirmed;   /* the attempt was never reported started */
    char *worker_owner; /* new; the holding worker's owner, NULL if none */
};

/* Reads the run's facts; SKED_ENOTFOUND. f->reason and f->worker_owner are
 * new. */
static int read_finishing(struct conn *c, const char *run_id, struct finishing *f)
{
    sqlite3_stmt *q = prep(c, SQL_RUN_FOR_FINISH);
    if (!q) return SKED_ESTORE;
    bt(q, 1, run_id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) return SKED_ENOTFOUND;
    if (rc != SQLITE_ROW) return dberr(c, rc);
    f->state = (run_state_t)ci(q, 0);
    f->fence = ci(q, 1);
    f->attempt = (int)ci(q, 2);
    f->cancel_requested = ci(q, 3) != 0;
    f->reason = ct(q, 4);
    f->retry.max_attempts = (int)ci(q, 5);
    f->retry.initial_ms = ci(q, 6);
    f->retry.max_ms = ci(q, 7);
    f->retry.multiplier = sqlite3_column_double(q, 8);
    f->retry.jitter = ci(q, 9) != 0;
    f->held = ci(q, 10) == JOB_PAUSED;
    f->unconfirmed = ci(q, 11) != 0;
    f->worker_owner = ct(q, 12);
    sqlite3_reset(q);
    return 0;
}

static void finishing_clear(struct finishing *f)
{
    free(f->reason);
    free(f->worker_owner);
}

/* finish_attempt for an attempt that never started. */
static int unclaim(struct sq *s, const char *run_id, const struct finishing *f, const char *why,
                   int64_t now_ms)
{
    struct conn *c = &s->w;
    int64_t not_before = now_ms;
    run_state_t next = store__after_attempt(&f->retry, f->attempt, ATTEMPT_NOT_STARTED,
                                            f->cancel_requested, now_ms, &not_before);
    const char *reason = next == RUN_CANCELED ? (f->reason ? f->reason : "canceled") : why;
    sqlite3_stmt *q = prep(c, SQL_RUN_UNCLAIM);
    int rc;
    if (!q) return SKED_ESTORE;
    bt(q, 1, run_id);
    bi(q, 2, next);
    bi(q, 3, not_before);
    bi(q, 4, run_state_terminal(next) ? now_ms : -1);
    bt(q, 5, reason);
    bi(q, 6, next == RUN_SCHEDULED && f->held);
    if ((rc = run(c, q)) < 0) return rc;
    const char *const drops[] = {SQL_ATTEMPT_DROP, SQL_LOG_DROP};
    for (size_t i = 0; i < 2; i++) {
        if (!(q = prep(c, drops[i]))) return SKED_ESTORE;
        bt(q, 1, run_id);
        bi(q, 2, f->attempt);
        if ((rc = run(c, q)) < 0) return rc;
    }
    want_notify(s);
    return 0;
}

/* Ends the current attempt of a running run with res and moves the run on
 * (retry, fail, cancel, succeed). reported: the worker said so (1) or the
 * reaper decided (0). */
static int finish_attempt(struct sq *s, const char *run_id, const struct finishing *f,
                          const store_result_t *res, bool reported, int64_t now_ms)
{
    struct conn *c = &s->w;
    const char *why = res->reason;
    if (res->outcome == ATTEMPT_NOT_STARTED) return unclaim(s, run_id, f, why, now_ms);
    if (!why && res->outcome == ATTEMPT_TIMEOUT) why = "timeout";
    sqlite3_stmt *q = prep(c, SQL_ATTEMPT_FINISH);
    int rc;
    if (!q) return SKED_ESTORE;
    bt(q, 1, run_id);
    bi(q, 2, f->attempt);
    bi(q, 3, now_ms);
    bi(q, 4, res->outcome);
    bi(q, 5, res->exit_code);
    bi(q, 6, res->signal);
    bt(q, 7, why);
    bi(q, 8, reported);
    if ((rc = run(c, q)) < 0) return rc;

    int64_t not_before = now_ms;
    run_state_t next = store__after_attempt(&f->retry, f->attempt, res->outcome,
                                            f->cancel_requested, now_ms, &not_before);
    const char *reason = why;
    if (next == RUN_CANCELED)
        reason = f->reason ? f->reason : why ? why : "canceled";
    else if (next == RUN_SUCCEEDED)
        reason = NULL;
    else if (next == RUN_FAILED && !reason)
        reason = res->outcome == ATTEMPT_LOST ? "lost: lease expired" : "failed";

    if (!(q = prep(c, SQL_RUN_FINISH))) return SKED_ESTORE;
    bt(q, 1, run_id);
    bi(q, 2, next);
    bi(q, 3, not_before);
    bi(q, 4, run_state_terminal(next) ? now_ms : -1);
    bi(q, 5, res->exit_code);
    bi(q, 6, res->signal);
    bt(q, 7, reason);
    bi(q, 8, next == RUN_SCHEDULED && f->held);
    if ((rc = run(c, q)) < 0) return rc;
    want_notify(s);
    return 0;
}

struct complete_args {
    const char *run_id;
    int attempt;
    int64_t fence;
    const char *owner;
    const store_result_t *res;
    int64_t now_ms;
};

static int complete_fn(struct sq *s, void *arg)
{
    struct complete_args *a = arg;
    struct conn *c = &s->w;
    struct finishing f = {0};
    int rc = read_finishing(c, a->run_id, &f);
    if (rc < 0) goto out;
    if (f.state != RUN_RUNNING || f.fence != a->fence || f.attempt != a->attempt) {
        /* Either a repeat of a completion we applied (its answer was lost)
         * or a worker whose lease was taken away. Only the former is 0. */
        sqlite3_stmt *q = prep(c, SQL_ATTEMPT_REPORTED);
        if (!q) {
            rc = SKED_ESTORE;
            goto out;
        }
        bt(q, 1, a->run_id);
        bi(q, 2, a->attempt);
        bi(q, 3, a->fence);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            rc = ci(q, 0) ? 0 : SKED_ESTALE;
        else
            rc = rc == SQLITE_DONE ? SKED_ESTALE : dberr(c, rc);
        goto out;
    }
    /* The lease is current: only now does who reports it matter (a stale
     * report answers 409 whoever holds the run now). */
    if (!store__owner_ok(a->owner, f.worker_owner)) {
        rc = SKED_EFORBID;
        goto out;
    }
    rc = finish_attempt(s, a->run_id, &f, a->res, true, a->now_ms);
out:
    finishing_clear(&f);
    return rc;
}

static int sq_complete(store_t *st, const char *run_id, int attempt, int64_t fence,
                       const char *owner, const store_result_t *res, int64_t now_ms)
{
    struct complete_args a = {run_id, attempt, fence, owner, res, now_ms};
    return wsubmit((struct sq *)st, complete_fn, &a);
}

static const char SQL_EXPIRED[] = "SELECT id FROM runs INDEXED BY runs_lease"
                                  " WHERE state = 3 AND lease_expires_ms < ?1"
                                  " ORDER BY lease_expires_ms LIMIT ?2";
static const char SQL_WORKERS_LOSE[] =
    "UPDATE workers SET state = 2 WHERE state IN (0, 1) AND heartbeat_ms < ?1";

struct reap_args {
    int64_t grace_ms, hb_timeout_ms, now_ms;
    int changed;
};

static int reap_fn(struct sq *s, void *arg)
{
    struct reap_args *a = arg;
    struct conn *c = &s->w;
    char(*ids)[SKED_ID_LEN] = NULL;
    size_t n = 0;
    int rc = 0;
    sqlite3_stmt *q = prep(c, SQL_WORKERS_LOSE);
    if (!q) return SKED_ESTORE;
    bi(q, 1, a->now_ms - a->hb_timeout_ms);
    if ((rc = run(c, q)) < 0) return rc;

    /* Collect first: the runs are updated while we would be iterating. */
    if (!(q = prep(c, SQL_EXPIRED))) return SKED_ESTORE;
    bi(q, 1, a->now_ms - a->grace_ms);
    bi(q, 2, REAP_BATCH);
    ids = xcalloc(REAP_BATCH, sizeof *ids);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        cid(q, 0, ids[n++]);
    if (rc != SQLITE_DONE) {
        rc = dberr(c, rc);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct finishing f = {0};
        if ((rc = read_finishing(c, ids[i], &f)) < 0) goto out;
        store_result_t res = {ATTEMPT_LOST, -1, 0, "lease expired"};
        if (f.unconfirmed)
            res = (store_result_t){ATTEMPT_NOT_STARTED, -1, 0, store__not_started_reason(false)};
        rc = finish_attempt(s, ids[i], &f, &res, false, a->now_ms);
        finishing_clear(&f);
        if (rc < 0) goto out;
        a->changed++;
    }
out:
    free(ids);
    return rc;
}

static int sq_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms)
{
    int total = 0;
    /* Bounded batches, each its own commit, so a huge backlog does not hold
     * the writer (and every other caller) for long. */
    for (;;) {
        struct reap_args a = {grace_ms, heartbeat_timeout_ms, now_ms, 0};
        int rc = wsubmit((struct sq *)st, reap_fn, &a);
        if (rc < 0) return rc;
        total += a.changed;
        if (a.changed < REAP_BATCH) return total;
    }
}

/* ---- schema version ------------------------------------------------------- */

static const char SQL_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
static const char SQL_VERSION_GET[] = "SELECT version FROM schema_version";
static const char SQL_VERSION_INIT[] = "INSERT INTO schema_version VALUES (0)";
static const char SQL_VERSION_SET[] = "UPDATE schema_version SET version = ?1";

/* Brings the schema up to store__schema_version in one transaction, so a crash
 * mid-migration leaves the old version intact. Concurrent openers are
 * serialised by BEGIN IMMEDIATE. */
static int migrate(struct conn *c, char **errmsg)
{
    int rc = exec_sql(c, SQL_BEGIN);
    if (rc < 0) goto fail;
    if ((rc = exec_sql(c, SQL_VERSION_TABLE)) < 0) goto fail;
    sqlite3_stmt *q = prep(c, SQL_VERSION_GET);
    if (!q) {
        rc = SKED_ESTORE;
        goto fail;
    }
    int version = 0;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        version = (int)ci(q, 0);
        sqlite3_reset(q);
    } else if (rc == SQLITE_DONE) {
        if ((rc = exec_sql(c, SQL_VERSION_INIT)) < 0) goto fail;
    } else {
        rc = dberr(c, rc);
        goto fail;
    }
    if (version > store__schema_version) {
        rc = SKED_ESCHEMA;
        if (errmsg)
            *errmsg = xasprintf("store schema version %d is newer than this sked's %d", version,
                                store__schema_version);
        goto fail;
    }
    for (int v = version; v < store__schema_version; v++) {
        char *err = NULL;
        /* Migrations are multi-statement scripts: sqlite3_exec, not the
         * statement cache. */
        if (sqlite3_exec(c->db, store__migrations[v].lite, NULL, NULL, &err) != SQLITE_OK) {
            if (errmsg) *errmsg = xasprintf("migration %d failed: %s", v + 1, err);
            sqlite3_free(err);
            rc = SKED_ESTORE;
            goto fail;
        }
        log_info("store", "migrated schema to version %d", v + 1);
    }
    if (version < store__schema_version) {
        if (!(q = prep(c, SQL_VERSION_SET))) {
            rc = SKED_ESTORE;
            goto fail;
        }
        bi(q, 1, store__schema_version);
        if ((rc = run(c, q)) < 0) goto fail;
    }
    if ((rc = exec_sql(c, SQL_COMMIT)) < 0) goto fail;
    return 0;
fail:
    reset_all(c);
    if (!sqlite3_get_autocommit(c->db)) exec_sql(c, SQL_ROLLBACK);
    if (errmsg && !*errmsg) *errmsg = xasprintf("migration failed: %s", sqlite3_errmsg(c->db));
    return rc;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .claim = sq_claim,
    .heartbeat = sq_heartbeat,
    .complete = sq_complete,
    .reap = sq_reap,
};

/* Opens one connection with the settings every connection needs. */
/* sked_labels_ok(labels, constraints): store__labels_satisfy as an SQL
 * function, so the claim scan filters on constraints as PostgreSQL's does
 * with array containment, instead of passing candidates over afterwards. */
static void sql_labels_ok(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *labels = (const char *)sqlite3_value_text(argv[0]);
    const char *constraints = (const char *)sqlite3_value_text(argv[1]);
    (void)argc;
    sqlite3_result_int(ctx,
                       store__labels_satisfy(labels ? labels : "", constraints ? constraints : ""));
}

static int conn_open(struct conn *c, const char *path, bool writer, char **errmsg)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (errmsg)
            *errmsg = xasprintf("cannot open %s: %s", path,
                                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        return SKED_ESTORE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    /* The claim scan asks it of each candidate, in SQL (SQL_CLAIM_ROWS). */
    sqlite3_create_function(c->db, "sked_labels_ok", 2,
                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                            sql_labels_ok, NULL, NULL);
    if (!writer) return 0;
    /* WAL: readers never block the writer; synchronous=FULL: a commit is on
     * disk before it returns (promise §5.1). */
    static const char *const pragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                          "PRAGMA foreign_keys=ON"};
    for (size_t i = 0; i < sizeof pragmas / sizeof *pragmas; i++) {
        char *err = NULL;
        if (sqlite3_exec(c->db, pragmas[i], NULL, NULL, &err) != SQLITE_OK) {
            if (errmsg) *errmsg = xasprintf("%s: %s", pragmas[i], err ? err : "failed");
            sqlite3_free(err);
            return SKED_ESTORE;
        }
    }
    return 0;
}

int store__sqlite_open(const char *path, store_t **out, char **errmsg)
{
    struct sq *s = xcalloc(1, sizeof *s);
    int rc = 0;
    store__init(&s->base, &sqlite_ops, &lite_driver);
    s->path = xstrdup(path);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_cond_init(&s->rcv, NULL);

    if ((rc = conn_open(&s->w, path, true, errmsg)) < 0) goto fail;
    if ((rc = migrate(&s->w, errmsg)) < 0) goto fail;
    /* Readers open after the writer: the WAL and its index exist by now. */
    for (int i = 0; i < NREADERS; i++)
        if ((rc = conn_open(&s->r[i], path, false, errmsg)) < 0) goto fail;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        if (errmsg) *errmsg = xstrdup("cannot start the store writer thread");
        rc = SKED_ESTORE;
        goto fail;
    }
    s->writer_started = true;
    *out = &s->base;
    return 0;
fail:
    sq_close(&s->base);
    return rc;
}
