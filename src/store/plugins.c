/*
 * Store verbs of the plugin type registry (issue 11), written once over the
 * SQL driver (db.h): the upsert every worker registration (and a server
 * loading a plugin dir) makes of the types it advertises, and the reads
 * that validate jobs of a plugin type and answer GET /v1/plugins.
 *
 * Several servers may register workers of one type at once: the insert
 * settles who creates the row (ON CONFLICT DO NOTHING), and the row is
 * then read under its lock (PostgreSQL; SQLite has one writer) before the
 * version decision, so an older version never overwrites a newer one.
 */
#include "store/db.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

#define PLUGIN_COLS "type, version, abi, schema_json, first_seen_ms, seen_ms"

static db_sql_t Q_PLUGIN_INSERT =
    DB_SAME("INSERT INTO plugin_types (" PLUGIN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
            " ON CONFLICT (type) DO NOTHING");
static db_sql_t Q_PLUGIN_VERSION =
    DB_SQL("SELECT version FROM plugin_types WHERE type = ?1",
           "SELECT version FROM plugin_types WHERE type = $1 FOR NO KEY UPDATE");
static db_sql_t Q_PLUGIN_REPLACE =
    DB_SAME("UPDATE plugin_types SET version = ?2, abi = ?3, schema_json = ?4, seen_ms = ?5"
            " WHERE type = ?1");
static db_sql_t Q_PLUGIN_SEEN = DB_SAME("UPDATE plugin_types SET seen_ms = ?2 WHERE type = ?1");
static db_sql_t Q_PLUGIN_GET = DB_SAME("SELECT " PLUGIN_COLS " FROM plugin_types WHERE type = ?1");
/* Types are [a-z0-9_-]: byte order is the same in both engines. */
static db_sql_t Q_PLUGIN_LIST =
    DB_SQL("SELECT " PLUGIN_COLS " FROM plugin_types ORDER BY type",
           "SELECT " PLUGIN_COLS " FROM plugin_types ORDER BY type COLLATE \"C\"");

/* Compares two plugin versions: dot-separated parts, numeric ones by
 * value ("1.10.0" > "1.9.3"), others (and a number against text) as
 * text; a version that is a prefix of the other is older ("1.2" <
 * "1.2.1"). */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = la > 0 && strspn(a, "0123456789") >= la;
        bool nb = lb > 0 && strspn(b, "0123456789") >= lb;
        int c;
        if (!*a) return -1;
        if (!*b) return 1;
        if (na && nb) {
            /* Leading zeros aside, the longer number is the larger. */
            while (la > 1 && *a == '0')
                a++, la--;
            while (lb > 1 && *b == '0')
                b++, lb--;
            c = la != lb ? (la < lb ? -1 : 1) : memcmp(a, b, la);
        } else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (!c && la != lb) c = la < lb ? -1 : 1;
        }
        if (c) return c < 0 ? -1 : 1;
        a += la;
        b += lb;
        if (*a == '.') a++;
        if (*b == '.') b++;
    }
    return 0;
}

int store__plugin_upsert(db_t *db, const store_plugin_type_t *p, size_t n, int64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        int64_t inserted = 0;
        db_q_t *q = db_q(db, &Q_PLUGIN_INSERT);
        if (!q) return SKED_ESTORE;
        db_bt(q, p[i].type);
        db_bt(q, p[i].version ? p[i].version : "");
        db_bi(q, p[i].abi);
        db_bt(q, p[i].schema_json ? p[i].schema_json : "true");
        db_bi(q, now_ms);
        int rc = db_exec(q, &inserted);
        if (rc < 0) return rc;
        if (inserted) continue;
        if (!(q = db_q(db, &Q_PLUGIN_VERSION))) return SKED_ESTORE;
        db_bt(q, p[i].type);
        if ((rc = db_one(q)) < 0) return rc;
        bool newer = version_cmp(p[i].version ? p[i].version : "", db_cs(q, 0)) >= 0;
        if ((rc = db_exec(q, NULL)) < 0) return rc; /* done with the row before the next */
        if (!(q = db_q(db, newer ? &Q_PLUGIN_REPLACE : &Q_PLUGIN_SEEN))) return SKED_ESTORE;
        db_bt(q, p[i].type);
        if (newer) {
            db_bt(q, p[i].version ? p[i].version : "");
            db_bi(q, p[i].abi);
            db_bt(q, p[i].schema_json ? p[i].schema_json : "true");
        }
        db_bi(q, now_ms);
        if ((rc = db_exec(q, NULL)) < 0) return rc;
    }
    return 0;
}

struct upsert_args {
    const store_plugin_type_t *p;
    size_t n;
    int64_t now_ms;
};

static int upsert_fn(db_t *db, void *arg)
{
    struct upsert_args *a = arg;
    return store__plugin_upsert(db, a->p, a->n, a->now_ms);
}

int v_plugin_upsert(store_t *st, const store_plugin_type_t *p, size_t n, int64_t now_ms)
{
    struct upsert_args a = {p, n, now_ms};
    return store__tx(st, DB_WRITE, upsert_fn, &a, &a.now_ms);
}

static void row_plugin(db_q_t *q, void *elem)
{
    store_plugin_type_t *p = elem;
    snprintf(p->type, sizeof p->type, "%s", db_cs(q, 0));
    p->version = db_ct0(q, 1);
    p->abi = (int)db_ci(q, 2);
    p->schema_json = db_ct0(q, 3);
    p->first_seen_ms = db_ci(q, 4);
    p->seen_ms = db_ci(q, 5);
}

static void clear_plugin(void *elem)
{
    store_plugin_type_clear(elem);
}

static const db_rows_t plugin_rows = {sizeof(store_plugin_type_t), row_plugin, clear_plugin, NULL};

struct get_args {
    const char *type;
    store_plugin_type_t *out;
};

static int get_fn(db_t *db, void *arg)
{
    struct get_args *a = arg;
    db_q_t *q = db_q(db, &Q_PLUGIN_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->type);
    int rc = db_one(q);
    if (rc == 0) row_plugin(q, a->out);
    return rc;
}

int v_plugin_get(store_t *st, const char *type, store_plugin_type_t *out)
{
    memset(out, 0, sizeof *out);
    struct get_args a = {type, out};
    return store__tx(st, DB_READ1, get_fn, &a, NULL);
}

struct list_args {
    store_plugin_type_t **out;
    size_t *n;
};

static int list_fn(db_t *db, void *arg)
{
    struct list_args *a = arg;
    db_q_t *q = db_q(db, &Q_PLUGIN_LIST);
    if (!q) return SKED_ESTORE;
    return db_page(q, &plugin_rows, -1, (void **)a->out, a->n, NULL);
}

int v_plugin_list(store_t *st, store_plugin_type_t **out, size_t *n)
{
    struct list_args a = {out, n};
    return store__tx(st, DB_READ1, list_fn, &a, NULL);
}
