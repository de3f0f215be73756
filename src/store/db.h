/*
 * The SQL driver: the little a store verb needs of a database engine, in the
 * spirit of sqlite3_vfs. Every verb of store.h is written once, over this;
 * an engine (db_sqlite in store_sqlite.c, db_pg in store_pg.c) supplies:
 *
 *   - units of work: store__tx(st, kind, fn, arg, &now_ms) runs fn in one
 *     transaction of the given kind. SQLite queues writes for its group-
 *     commit writer thread and runs reads on a pool of read connections;
 *     PostgreSQL takes a pooled connection and runs fn again after a
 *     deadlock or serialization failure, so fn must start from scratch on
 *     every call and leave nothing behind when it fails;
 *   - statements, prepared once per connection on first use: db_q() gives
 *     the statement reset, ready to bind in parameter order (db_bt, db_bi,
 *     ...: the first call binds ?1 / $1, the next ?2 / $2, ...), then
 *     db_step() walks its rows and db_ct() ... read the current row;
 *   - a wake-up after commit (db_notify), and the database's clock.
 *
 * A statement is one db_sql_t holding both dialects' text side by side, so
 * a reader sees at once where they differ:
 *
 *     static db_sql_t Q_JOB_GET = DB_SQL("SELECT ... WHERE id = ?1 AND state != 3",
 *                                        "SELECT ... WHERE id = $1 AND state <> 3");
 *     static db_sql_t Q_PING = DB_SAME("SELECT 1");
 *
 * DB_SAME text is written with SQLite's ?N placeholders; the PostgreSQL
 * driver rewrites them to $N (in its own text too, which may use either)
 * and prepares DB_SAME text with the types of the values bound. What only one engine needs (a row
 * lock, an advisory lock, NOTIFY) is text in that dialect and DB_NOOP in the other: stepping a
 * no-op statement yields no row and changes nothing.
 *
 * Nothing outside src/store/ includes this.
 */
#ifndef SKED_STORE_DB_H
#define SKED_STORE_DB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "store/store.h"

/* A statement's text in both dialects. slot is the driver's cache index,
 * numbered on first use (0 = not yet). */
typedef struct db_sql {
    const char *lite; /* SQLite; DB_NOOP = nothing to do there */
    const char *pg;   /* PostgreSQL; NULL = lite with ?N rewritten to $N */
    atomic_int slot;
} db_sql_t;

#define DB_NOOP ""
#define DB_SQL(lite, pg)                                                                           \
    {                                                                                              \
        (lite), (pg), 0                                                                            \
    }
#define DB_SAME(text)                                                                              \
    {                                                                                              \
        (text), NULL, 0                                                                            \
    }
#define DB_ONLY_PG(pg)                                                                             \
    {                                                                                              \
        DB_NOOP, (pg), 0                                                                           \
    }
#define DB_ONLY_LITE(lit)                                                                          \
    {                                                                                              \
        (lit), DB_NOOP, 0                                                                          \
    }

/* The advisory lock class of sked on PostgreSQL ('sked' in ASCII): the
 * first key of every pg_advisory_*lock sked takes. The second key is 0 for
 * migrations and hashtext(job_id) for per-job claim decisions. */
#define DB_PG_LOCK_CLASS "1936417636"

/* The slot of q (1-based), numbering it on first use. */
int db__slot(db_sql_t *q);

typedef struct db_q db_q_t;

/* A connection's statements by slot, grown on demand (a driver keeps one
 * per connection; its statement handles start with struct db_q). */
typedef struct db_slots {
    db_q_t **q;
    size_t n;
} db_slots_t;

/* The entry of sql in t: NULL until the driver fills it. *slot OUT. */
db_q_t **db__slot_entry(db_slots_t *t, db_sql_t *sql, size_t *slot);

typedef struct db db_t; /* the connection of one unit of work */
/* db_q_t (above): a statement being bound and stepped */

/* Kinds of unit of work. */
typedef enum db_tx {
    DB_READ1, /* one read statement: no snapshot needed beyond it */
    DB_READ,  /* several reads that must agree: one snapshot */
    DB_WRITE, /* a unit that writes: serialised, durable at return */
    DB_WRITE1 /* one write statement (PostgreSQL: no BEGIN/COMMIT round trips) */
} db_tx_t;

typedef int (*db_fn)(db_t *db, void *arg);

/* Types of bound values, as the PostgreSQL driver declares them. */
typedef enum db_type { DB_TEXT, DB_INT, DB_BOOL, DB_REAL, DB_BLOB } db_type_t;

/* A value to bind: s (text, or blob with len), i (int, bool), d (real).
 * null: SQL NULL of that type. Text and blobs are borrowed until the
 * statement is stepped. */
typedef struct db_val {
    db_type_t type;
    bool null;
    int64_t i;
    double d;
    const void *s;
    size_t len;
} db_val_t;

struct db_driver {
    const char *name; /* "sqlite", "postgres" */
    void (*close)(store_t *st);
    /* The authoritative clock; NULL = the local clock (clock_now_ms). */
    int64_t (*now_ms)(store_t *st);
    int (*tx)(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms);
    db_q_t *(*q)(db_t *db, db_sql_t *sql); /* NULL: could not prepare (logged) */
    void (*bind)(db_q_t *q, const db_val_t *v);
    int (*step)(db_q_t *q); /* 1: a row; 0: done; < 0: SKED_E* */
    int64_t (*changes)(db_q_t *q);
    bool (*col_null)(db_q_t *q, int col);
    int64_t (*col_int)(db_q_t *q, int col);
    double (*col_real)(db_q_t *q, int col);
    const char *(*col_text)(db_q_t *q, int col); /* NULL for SQL NULL */
    const void *(*col_blob)(db_q_t *q, int col, size_t *len);
    void (*notify)(db_t *db);
};

/* The common head of a driver's connection and statement handles. */
struct db {
    const struct db_driver *drv;
    store_t *st;
};
struct db_q {
    const struct db_driver *drv;
    bool noop;
};

/* Runs fn(db, arg) as one unit of work of the given kind (see above). now_ms
 * (may be NULL) is replaced with the database's clock where it is the
 * authority (PostgreSQL with sked_clock=db) before fn runs. */
int store__tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms);

/* The statement sql on db, reset; NULL if it could not be prepared. */
db_q_t *db_q(db_t *db, db_sql_t *sql);

/* Binders, in parameter order. */
void db_bt(db_q_t *q, const char *s); /* text; NULL = NULL */
void db_bi(db_q_t *q, int64_t v);     /* integer */
void db_bin(db_q_t *q, int64_t v);    /* integer; NULL when v < 0 ("none") */
void db_bb(db_q_t *q, bool v);        /* boolean (SQLite: 0/1) */
void db_bd(db_q_t *q, double v);      /* real */
void db_bblob(db_q_t *q, const void *p, size_t len);

/* 1: a row is current; 0: no more rows; < 0: an error (SKED_E*). */
int db_step(db_q_t *q);

/* Steps q to its end; *changed OUT (may be NULL): the rows it changed. */
int db_exec(db_q_t *q, int64_t *changed);

/* The rows q changed, once db_step has returned 0 (its end). */
int64_t db_changes(db_q_t *q);

/* Steps *q, a write of the one row whose key is key, to the row as written:
 * 1 and the row is current in *q, 0 when the write changed nothing, or an
 * error. On PostgreSQL the write returns the row itself (RETURNING: one
 * round trip). On SQLite it returns none: SQLite collects RETURNING rows
 * in an ephemeral table, which made a run's lease cost 107,000
 * instructions against 79,000 without (callgrind), so the row is read
 * back by its key with read (DB_ONLY_LITE, ?1 = key; 11,000), and *q
 * becomes that statement. */
int db_step_written(db_t *db, db_q_t **q, db_sql_t *read, const char *key);

/* Column readers of the current row. */
bool db_cnull(db_q_t *q, int col);
int64_t db_ci(db_q_t *q, int col);
int64_t db_cin(db_q_t *q, int col); /* NULL -> -1 */
bool db_cb(db_q_t *q, int col);
double db_cd(db_q_t *q, int col);
const char *db_cs(db_q_t *q, int col); /* borrowed; "" for NULL */
char *db_ct(db_q_t *q, int col);       /* new string; NULL stays NULL */
char *db_ct0(db_q_t *q, int col);      /* new string; never NULL */
void db_cid(db_q_t *q, int col, char out[SKED_ID_LEN]);
const void *db_cblob(db_q_t *q, int col, size_t *len);

/* How db_page reads and drops one element, and the (ms, id) paging key of
 * one (NULL when the list is not paged). */
typedef struct db_rows {
    size_t size; /* of an element */
    void (*row)(db_q_t *q, void *elem);
    void (*clear)(void *elem);
    void (*key)(const void *elem, int64_t *ms, const char **id);
} db_rows_t;

/* Steps q to its end, reading each row into a new array (*out, *n; never
 * NULL, even when empty) with
 * r->row. When limit >= 0, q was bound with LIMIT limit + 1: a row beyond
 * limit means there is more, so it is dropped and *next (may be NULL when
 * limit < 0) becomes the cursor of the last row kept. On error nothing is
 * left allocated. */
int db_page(db_q_t *q, const db_rows_t *r, int limit, void **out, size_t *n, char **next);

/* Steps q once: 0 and the row is current, SKED_ENOTFOUND when there is
 * none, or an error. */
int db_one(db_q_t *q);

/* Asks for the store's notify hook after this unit commits (and, on
 * PostgreSQL, a NOTIFY to the other servers in the same commit). */
void db_notify(db_t *db);

#endif
