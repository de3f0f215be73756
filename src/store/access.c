/*
 * Store verbs of access control, written once over the SQL driver (db.h):
 * API tokens, users, the audit log, and a job's scope (its namespace and
 * owner, which authorisation asks of any job, deleted ones included).
 */
#include "store/db.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

/* ---- audit ------------------------------------------------------------------- */

#define AUDIT_COLS "id, at_ms, actor, role, method, route, target, ns, source, status"

static db_sql_t Q_AUDIT_INSERT = DB_SAME("INSERT INTO audit (" AUDIT_COLS ")"
                                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
#define AUDIT_LIST_WHERE " WHERE at_ms >= ?1 AND (?2 IS NULL OR actor = ?2)"
static db_sql_t Q_AUDIT_LIST = DB_SAME("SELECT " AUDIT_COLS " FROM audit" AUDIT_LIST_WHERE
                                       " ORDER BY at_ms DESC, id DESC LIMIT ?3");
static db_sql_t Q_AUDIT_LIST_AFTER =
    DB_SAME("SELECT " AUDIT_COLS " FROM audit" AUDIT_LIST_WHERE " AND (at_ms, id) < (?4, ?5)"
            " ORDER BY at_ms DESC, id DESC LIMIT ?3");

int store__put_audit(db_t *db, const store_audit_t *a, const char *target)
{
    if (!a) return 0;
    if (a->target && *a->target) target = a->target;
    char id[SKED_ID_LEN];
    db_q_t *q = db_q(db, &Q_AUDIT_INSERT);
    if (!q) return SKED_ESTORE;
    id_new("aud", a->at_ms, id);
    db_bt(q, id);
    db_bi(q, a->at_ms);
    db_bt(q, a->actor);
    db_bt(q, a->role ? a->role : "");
    db_bt(q, a->method);
    db_bt(q, a->route);
    db_bt(q, target ? target : "");
    db_bt(q, a->ns ? a->ns : "");
    db_bt(q, a->source ? a->source : "");
    db_bi(q, a->status);
    return db_exec(q, NULL);
}

static int audit_append_fn(db_t *db, void *arg)
{
    return store__put_audit(db, arg, NULL);
}

int v_audit_append(store_t *st, const store_audit_t *a)
{
    return store__tx(st, DB_WRITE1, audit_append_fn, (void *)a, NULL);
}

static void row_audit(db_q_t *q, void *elem)
{
    store_audit_t *e = elem;
    db_cid(q, 0, e->id);
    e->at_ms = db_ci(q, 1);
    e->actor = db_ct0(q, 2);
    e->role = db_ct0(q, 3);
    e->method = db_ct0(q, 4);
    e->route = db_ct0(q, 5);
    e->target = db_ct0(q, 6);
    e->ns = db_ct0(q, 7);
    e->source = db_ct0(q, 8);
    e->status = (int)db_ci(q, 9);
}

static void clear_audit(void *elem)
{
    store_audit_clear(elem);
}

static void key_audit(const void *elem, int64_t *ms, const char **id)
{
    const store_audit_t *e = elem;
    *ms = e->at_ms;
    *id = e->id;
}

static const db_rows_t audit_rows = {sizeof(store_audit_t), row_audit, clear_audit, key_audit};

struct audit_list_args {
    const store_audit_filter_t *f;
    store_audit_t **out;
    size_t *n;
    char **next;
};

static int audit_list_fn(db_t *db, void *arg)
{
    struct audit_list_args *a = arg;
    const store_audit_filter_t *f = a->f;
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cidv); /* checked by store.c */
    db_q_t *q = db_q(db, f->cursor ? &Q_AUDIT_LIST_AFTER : &Q_AUDIT_LIST);
    if (!q) return SKED_ESTORE;
    db_bi(q, f->since_ms);
    db_bt(q, f->actor);
    db_bi(q, f->limit + 1);
    if (f->cursor) {
        db_bi(q, cms);
        db_bt(q, cidv);
    }
    return db_page(q, &audit_rows, f->limit, (void **)a->out, a->n, a->next);
}

int v_audit_list(store_t *st, const store_audit_filter_t *f, store_audit_t **out, size_t *n,
                 char **next_cursor)
{
    struct audit_list_args a = {f, out, n, next_cursor};
    return store__tx(st, DB_READ1, audit_list_fn, &a, NULL);
}

/* ---- tokens ------------------------------------------------------------------ */

#define TOKEN_COLS "id, name, role, ns, created_ms, expires_ms, revoked, user_name, last_used_ms"

static db_sql_t Q_TOKEN_INSERT = DB_SAME(
    "INSERT INTO tokens (id, hash, name, role, ns, created_ms, expires_ms, revoked, user_name)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
/* A user's token acts with the user's current role and namespaces, and
 * stops working the moment the user is deleted. */
static db_sql_t Q_TOKEN_LOOKUP = DB_SAME(
    "SELECT t.id, t.name, coalesce(u.role, t.role), coalesce(u.namespaces, t.ns), t.created_ms,"
    " t.expires_ms, t.revoked, t.user_name, t.last_used_ms FROM tokens t"
    " LEFT JOIN users u ON u.name = t.user_name"
    " WHERE t.hash = ?1 AND NOT t.revoked AND (t.expires_ms < 0 OR t.expires_ms > ?2)"
    " AND (t.user_name IS NULL OR u.name IS NOT NULL)");
static db_sql_t Q_TOKEN_COUNT = DB_SAME("SELECT count(*) FROM tokens");
static db_sql_t Q_TOKEN_GET = DB_SAME("SELECT " TOKEN_COLS " FROM tokens WHERE id = ?1");
#define TOKEN_LIST_WHERE                                                                           \
    " WHERE (?1 IS NULL OR (CASE WHEN ?1 = '' THEN user_name IS NULL ELSE user_name = ?1 END))"    \
    " AND (?2 IS NULL OR name = ?2)"
static db_sql_t Q_TOKEN_LIST = DB_SAME("SELECT " TOKEN_COLS " FROM tokens" TOKEN_LIST_WHERE
                                       " ORDER BY created_ms DESC, id DESC LIMIT ?3");
static db_sql_t Q_TOKEN_LIST_AFTER =
    DB_SAME("SELECT " TOKEN_COLS " FROM tokens" TOKEN_LIST_WHERE " AND (created_ms, id) < (?4, ?5)"
            " ORDER BY created_ms DESC, id DESC LIMIT ?3");
static db_sql_t Q_TOKEN_REVOKE = DB_SAME("UPDATE tokens SET revoked = TRUE WHERE id = ?1");
static db_sql_t Q_TOKEN_TOUCH = DB_SAME("UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1"
                                        " AND (last_used_ms IS NULL OR last_used_ms <= ?2 - ?3)");

struct token_create_args {
    store_token_t *t;
    const char *hash;
    const store_audit_t *audit;
    int64_t now_ms;
};

static int token_create_fn(db_t *db, void *arg)
{
    struct token_create_args *a = arg;
    store_token_t *t = a->t;
    db_q_t *q = db_q(db, &Q_TOKEN_INSERT);
    if (!q) return SKED_ESTORE;
    id_new("tok", a->now_ms, t->id);
    t->created_ms = a->now_ms;
    t->last_used_ms = -1;
    db_bt(q, t->id);
    db_bt(q, a->hash);
    db_bt(q, t->name);
    db_bi(q, t->role);
    db_bt(q, t->ns ? t->ns : "");
    db_bi(q, t->created_ms);
    db_bi(q, t->expires_ms < 0 ? -1 : t->expires_ms);
    db_bb(q, t->revoked);
    db_bt(q, t->user && *t->user ? t->user : NULL);
    int rc = db_exec(q, NULL); /* ECONFLICT: the same secret twice */
    if (rc == 0) rc = store__put_audit(db, a->audit, NULL);
    return rc;
}

int v_token_create(store_t *st, store_token_t *t, const char *hash_hex, const store_audit_t *audit,
                   int64_t now_ms)
{
    struct token_create_args a = {t, hash_hex, audit, now_ms};
    return store__tx(st, audit ? DB_WRITE : DB_WRITE1, token_create_fn, &a, &a.now_ms);
}

static void row_token(db_q_t *q, void *elem)
{
    store_token_t *t = elem;
    db_cid(q, 0, t->id);
    t->name = db_ct0(q, 1);
    t->role = (token_role_t)db_ci(q, 2);
    t->ns = db_ct0(q, 3);
    t->created_ms = db_ci(q, 4);
    t->expires_ms = db_ci(q, 5);
    t->revoked = db_cb(q, 6);
    t->user = db_ct(q, 7);
    t->last_used_ms = db_cin(q, 8);
}

static void clear_token(void *elem)
{
    store_token_clear(elem);
}

static void key_token(const void *elem, int64_t *ms, const char **id)
{
    const store_token_t *t = elem;
    *ms = t->created_ms;
    *id = t->id;
}

static const db_rows_t token_rows = {sizeof(store_token_t), row_token, clear_token, key_token};

/* Reads the one row of a lookup by key into a token. */
struct token_one_args {
    db_sql_t *sql;
    const char *key;
    int64_t now_ms; /* < 0: the statement takes no time */
    store_token_t *out;
};

static int token_one_fn(db_t *db, void *arg)
{
    struct token_one_args *a = arg;
    db_q_t *q = db_q(db, a->sql);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->key);
    if (a->now_ms >= 0) db_bi(q, a->now_ms);
    int rc = db_one(q);
    if (rc == 0) row_token(q, a->out);
    return rc;
}

int v_token_lookup(store_t *st, const char *hash_hex, int64_t now_ms, store_token_t *out)
{
    memset(out, 0, sizeof *out);
    struct token_one_args a = {&Q_TOKEN_LOOKUP, hash_hex, now_ms < 0 ? 0 : now_ms, out};
    /* sked_clock=db: expiry is judged by the database's clock. */
    return store__tx(st, DB_READ1, token_one_fn, &a, &a.now_ms);
}

int v_token_get(store_t *st, const char *id, store_token_t *out)
{
    struct token_one_args a = {&Q_TOKEN_GET, id, -1, out};
    return store__tx(st, DB_READ1, token_one_fn, &a, NULL);
}

static int token_count_fn(db_t *db, void *arg)
{
    db_q_t *q = db_q(db, &Q_TOKEN_COUNT);
    if (!q) return SKED_ESTORE;
    int rc = db_one(q);
    if (rc == 0) *(int64_t *)arg = db_ci(q, 0);
    return rc;
}

int v_token_count(store_t *st, int64_t *count)
{
    *count = 0;
    int rc = store__tx(st, DB_READ1, token_count_fn, count, NULL);
    if (rc < 0) *count = 0;
    return rc;
}

struct token_list_args {
    const store_token_filter_t *f;
    store_token_t **out;
    size_t *n;
    char **next;
};

static int token_list_fn(db_t *db, void *arg)
{
    struct token_list_args *a = arg;
    const store_token_filter_t *f = a->f;
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cidv); /* checked by store.c */
    db_q_t *q = db_q(db, f->cursor ? &Q_TOKEN_LIST_AFTER : &Q_TOKEN_LIST);
    if (!q) return SKED_ESTORE;
    db_bt(q, f->user);
    db_bt(q, f->name);
    db_bi(q, f->limit + 1);
    if (f->cursor) {
        db_bi(q, cms);
        db_bt(q, cidv);
    }
    return db_page(q, &token_rows, f->limit, (void **)a->out, a->n, a->next);
}

int v_token_list(store_t *st, const store_token_filter_t *f, store_token_t **out, size_t *n,
                 char **next_cursor)
{
    struct token_list_args a = {f, out, n, next_cursor};
    return store__tx(st, DB_READ1, token_list_fn, &a, NULL);
}

struct token_revoke_args {
    const char *id;
    const store_audit_t *audit;
};

static int token_revoke_fn(db_t *db, void *arg)
{
    struct token_revoke_args *a = arg;
    db_q_t *q = db_q(db, &Q_TOKEN_REVOKE);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int64_t changed = 0;
    int rc = db_exec(q, &changed);
    if (rc == 0 && changed == 0) rc = SKED_ENOTFOUND;
    if (rc == 0) rc = store__put_audit(db, a->audit, NULL);
    return rc;
}

int v_token_revoke(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms)
{
    (void)now_ms;
    struct token_revoke_args a = {id, audit};
    return store__tx(st, DB_WRITE, token_revoke_fn, &a, NULL);
}

struct token_touch_args {
    const char *id;
    int64_t now_ms;
};

static int token_touch_fn(db_t *db, void *arg)
{
    struct token_touch_args *a = arg;
    db_q_t *q = db_q(db, &Q_TOKEN_TOUCH);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    db_bi(q, a->now_ms);
    db_bi(q, STORE_TOKEN_TOUCH_MS);
    return db_exec(q, NULL);
}

int v_token_touch(store_t *st, const char *id, int64_t now_ms)
{
    struct token_touch_args a = {id, now_ms};
    return store__tx(st, DB_WRITE1, token_touch_fn, &a, &a.now_ms);
}

/* ---- users ------------------------------------------------------------------- */

#define USER_COLS "name, pwhash, role, namespaces, created_ms, updated_ms"

static db_sql_t Q_USER_INSERT =
    DB_SAME("INSERT INTO users (" USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?5)");
static db_sql_t Q_USER_GET = DB_SAME("SELECT " USER_COLS " FROM users WHERE name = ?1");
/* By name, byte by byte in both dialects, whatever the database's locale. */
static db_sql_t Q_USER_LIST = DB_SQL("SELECT " USER_COLS " FROM users ORDER BY name",
                                     "SELECT " USER_COLS " FROM users ORDER BY name COLLATE \"C\"");
static db_sql_t Q_USER_UPDATE = DB_SAME("UPDATE users SET pwhash = ?2, role = ?3, namespaces = ?4,"
                                        " updated_ms = ?5 WHERE name = ?1");
static db_sql_t Q_USER_DELETE = DB_SAME("DELETE FROM users WHERE name = ?1");
static db_sql_t Q_USER_TOKENS_REVOKE =
    DB_SAME("UPDATE tokens SET revoked = TRUE WHERE user_name = ?1 AND NOT revoked");

static void row_user(db_q_t *q, void *elem)
{
    store_user_t *u = elem;
    u->name = db_ct0(q, 0);
    u->pwhash = db_ct0(q, 1);
    u->role = (token_role_t)db_ci(q, 2);
    u->namespaces = db_ct0(q, 3);
    u->created_ms = db_ci(q, 4);
    u->updated_ms = db_ci(q, 5);
}

static void clear_user(void *elem)
{
    store_user_clear(elem);
}

static const db_rows_t user_rows = {sizeof(store_user_t), row_user, clear_user, NULL};

struct user_write_args {
    db_sql_t *sql;
    const store_user_t *u;
    const store_audit_t *audit;
    int64_t now_ms;
};

/* Insert or update: the same five values. */
static int user_write_fn(db_t *db, void *arg)
{
    struct user_write_args *a = arg;
    db_q_t *q = db_q(db, a->sql);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->u->name);
    db_bt(q, a->u->pwhash);
    db_bi(q, a->u->role);
    db_bt(q, a->u->namespaces);
    db_bi(q, a->now_ms);
    int64_t changed = 0;
    int rc = db_exec(q, &changed); /* ECONFLICT on insert: the name is taken */
    if (rc == 0 && changed == 0) rc = SKED_ENOTFOUND;
    if (rc == 0) rc = store__put_audit(db, a->audit, NULL);
    return rc;
}

int v_user_create(store_t *st, const store_user_t *u, const store_audit_t *audit, int64_t now_ms)
{
    struct user_write_args a = {&Q_USER_INSERT, u, audit, now_ms};
    return store__tx(st, DB_WRITE, user_write_fn, &a, &a.now_ms);
}

int v_user_update(store_t *st, const store_user_t *u, const store_audit_t *audit, int64_t now_ms)
{
    struct user_write_args a = {&Q_USER_UPDATE, u, audit, now_ms};
    return store__tx(st, DB_WRITE, user_write_fn, &a, &a.now_ms);
}

struct user_delete_args {
    const char *name;
    const store_audit_t *audit;
};

static int user_delete_fn(db_t *db, void *arg)
{
    struct user_delete_args *a = arg;
    db_q_t *q = db_q(db, &Q_USER_DELETE);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->name);
    int64_t changed = 0;
    int rc = db_exec(q, &changed);
    if (rc == 0 && changed == 0) rc = SKED_ENOTFOUND;
    if (rc < 0) return rc;
    /* Revoked, not only orphaned: a user later created under the same name
     * must not inherit the old user's tokens. */
    if (!(q = db_q(db, &Q_USER_TOKENS_REVOKE))) return SKED_ESTORE;
    db_bt(q, a->name);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    return store__put_audit(db, a->audit, NULL);
}

int v_user_delete(store_t *st, const char *name, const store_audit_t *audit, int64_t now_ms)
{
    (void)now_ms;
    struct user_delete_args a = {name, audit};
    return store__tx(st, DB_WRITE, user_delete_fn, &a, NULL);
}

struct user_get_args {
    const char *name;
    store_user_t *out;
};

static int user_get_fn(db_t *db, void *arg)
{
    struct user_get_args *a = arg;
    db_q_t *q = db_q(db, &Q_USER_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->name);
    int rc = db_one(q);
    if (rc == 0) row_user(q, a->out);
    return rc;
}

int v_user_get(store_t *st, const char *name, store_user_t *out)
{
    struct user_get_args a = {name, out};
    return store__tx(st, DB_READ1, user_get_fn, &a, NULL);
}

struct user_list_args {
    store_user_t **out;
    size_t *n;
};

static int user_list_fn(db_t *db, void *arg)
{
    struct user_list_args *a = arg;
    db_q_t *q = db_q(db, &Q_USER_LIST);
    if (!q) return SKED_ESTORE;
    return db_page(q, &user_rows, -1, (void **)a->out, a->n, NULL);
}

int v_user_list(store_t *st, store_user_t **out, size_t *n)
{
    struct user_list_args a = {out, n};
    return store__tx(st, DB_READ1, user_list_fn, &a, NULL);
}

/* ---- a job's scope ------------------------------------------------------------ */

static db_sql_t Q_JOB_SCOPE = DB_SAME("SELECT ns, owner FROM jobs WHERE id = ?1");

struct job_scope_args {
    const char *id;
    char **ns, **owner;
};

static int job_scope_fn(db_t *db, void *arg)
{
    struct job_scope_args *a = arg;
    db_q_t *q = db_q(db, &Q_JOB_SCOPE);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    *a->ns = db_ct0(q, 0);
    if (a->owner) *a->owner = db_ct0(q, 1);
    return 0;
}

int v_job_scope(store_t *st, const char *id, char **ns, char **owner)
{
    struct job_scope_args a = {id, ns, owner};
    return store__tx(st, DB_READ1, job_scope_fn, &a, NULL);
}
