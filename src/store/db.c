/*
 * The driver-neutral half of db.h: binders and column readers over the
 * engine's few primitives, and statement slots.
 */
#include "store/db.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

int db__slot(db_sql_t *q)
{
    static atomic_int next;
    int s = atomic_load_explicit(&q->slot, memory_order_acquire);
    if (s) return s;
    int want = atomic_fetch_add(&next, 1) + 1, expect = 0;
    /* Two threads may number it at once: the first one wins, and the
     * loser's number is simply never used. */
    if (atomic_compare_exchange_strong(&q->slot, &expect, want)) return want;
    return expect;
}

db_q_t **db__slot_entry(db_slots_t *t, db_sql_t *sql, size_t *slot)
{
    size_t s = (size_t)db__slot(sql);
    if (s >= t->n) {
        size_t n = s * 2;
        t->q = xrealloc(t->q, n * sizeof *t->q);
        memset(t->q + t->n, 0, (n - t->n) * sizeof *t->q);
        t->n = n;
    }
    *slot = s;
    return &t->q[s];
}

int store__tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms)
{
    return st->db->tx(st, kind, fn, arg, now_ms);
}

db_q_t *db_q(db_t *db, db_sql_t *sql)
{
    return db->drv->q(db, sql);
}

static void bind(db_q_t *q, db_val_t v)
{
    if (!q->noop) q->drv->bind(q, &v);
}

void db_bt(db_q_t *q, const char *s)
{
    bind(q, (db_val_t){.type = DB_TEXT, .null = !s, .s = s, .len = s ? strlen(s) : 0});
}

void db_bi(db_q_t *q, int64_t v)
{
    bind(q, (db_val_t){.type = DB_INT, .i = v});
}

void db_bin(db_q_t *q, int64_t v)
{
    bind(q, (db_val_t){.type = DB_INT, .null = v < 0, .i = v});
}

void db_bb(db_q_t *q, bool v)
{
    bind(q, (db_val_t){.type = DB_BOOL, .i = v});
}

void db_bd(db_q_t *q, double v)
{
    bind(q, (db_val_t){.type = DB_REAL, .d = v});
}

void db_bblob(db_q_t *q, const void *p, size_t len)
{
    bind(q, (db_val_t){.type = DB_BLOB, .s = len ? p : "", .len = len});
}

int db_step(db_q_t *q)
{
    return q->noop ? 0 : q->drv->step(q);
}

int db_exec(db_q_t *q, int64_t *changed)
{
    int rc;
    while ((rc = db_step(q)) == 1)
        ;
    if (changed) *changed = rc == 0 ? db_changes(q) : 0;
    return rc;
}

int64_t db_changes(db_q_t *q)
{
    return q->noop ? 0 : q->drv->changes(q);
}

int db_step_written(db_t *db, db_q_t **q, db_sql_t *read, const char *key)
{
    int rc = db_step(*q);
    if (rc != 0 || db_changes(*q) == 0) return rc;
    if (!(*q = db_q(db, read))) return SKED_ESTORE;
    db_bt(*q, key);
    return db_step(*q);
}

bool db_cnull(db_q_t *q, int col)
{
    return q->drv->col_null(q, col);
}

int64_t db_ci(db_q_t *q, int col)
{
    return q->drv->col_int(q, col);
}

int64_t db_cin(db_q_t *q, int col)
{
    return q->drv->col_null(q, col) ? -1 : q->drv->col_int(q, col);
}

bool db_cb(db_q_t *q, int col)
{
    return q->drv->col_int(q, col) != 0;
}

double db_cd(db_q_t *q, int col)
{
    return q->drv->col_real(q, col);
}

const char *db_cs(db_q_t *q, int col)
{
    const char *s = q->drv->col_text(q, col);
    return s ? s : "";
}

char *db_ct(db_q_t *q, int col)
{
    const char *s = q->drv->col_text(q, col);
    return s ? xstrdup(s) : NULL;
}

char *db_ct0(db_q_t *q, int col)
{
    return xstrdup(db_cs(q, col));
}

void db_cid(db_q_t *q, int col, char out[SKED_ID_LEN])
{
    snprintf(out, SKED_ID_LEN, "%s", db_cs(q, col));
}

const void *db_cblob(db_q_t *q, int col, size_t *len)
{
    return q->drv->col_blob(q, col, len);
}

void db_notify(db_t *db)
{
    db->drv->notify(db);
}

int db_page(db_q_t *q, const db_rows_t *r, int limit, void **out, size_t *n, char **next)
{
    char *v = NULL;
    size_t k = 0, cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    while ((rc = db_step(q)) == 1) {
        if (k == cap) {
            cap = cap ? cap * 2 : limit >= 0 && limit < 64 ? (size_t)limit + 1 : 64;
            v = xrealloc(v, cap * r->size);
        }
        void *e = v + k++ * r->size;
        memset(e, 0, r->size);
        r->row(q, e);
    }
    if (rc < 0) {
        for (size_t i = 0; i < k; i++)
            r->clear(v + i * r->size);
        free(v);
        return rc;
    }
    if (limit >= 0 && k > (size_t)limit) {
        r->clear(v + --k * r->size);
        int64_t ms = 0;
        const char *id = "";
        if (k) r->key(v + (k - 1) * r->size, &ms, &id);
        if (next && k) *next = store__cursor_encode(ms, id);
    }
    /* Never NULL, even empty: callers copy from it and free it. */
    *out = v ? v : xcalloc(1, r->size);
    *n = k;
    return 0;
}

int db_one(db_q_t *q)
{
    int rc = db_step(q);
    return rc == 1 ? 0 : rc == 0 ? SKED_ENOTFOUND : rc;
}
