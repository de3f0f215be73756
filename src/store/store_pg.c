/*
 * The PostgreSQL backend of the store (store.h), for clusters: N sked
 * servers share one database and nothing else, so every race between them
 * is settled here, inside PostgreSQL, with row locks, unique keys and
 * compare-and-set updates. store_sqlite.c is the reference for semantics;
 * this file keeps the same schema shape and the same decisions, using the
 * shared helpers of store_int.h (retry decisions, aging, label matching).
 *
 * Connections. A small pool (default 8, `sked_pool=N` in the URL) of libpq
 * connections, opened on demand and guarded by a mutex and a condition
 * variable. Statements are prepared once per connection, on first use, and
 * named after their index in `stmts[]`. Every connection runs with
 * synchronous_commit=on, so a verb that returns 0 has its commit on disk
 * (promise §5.1); PostgreSQL's WAL flush shares one fsync among concurrent
 * commits, which is our group commit.
 *
 * Transactions. Each verb is one transaction (`tx()`), READ COMMITTED for
 * writes: rows a verb decides on are locked first (FOR NO KEY UPDATE, or
 * FOR UPDATE SKIP LOCKED where another server may be working on the same
 * rows: due schedules, claimable runs, expired leases, prunable runs), so
 * the decision holds until commit. A deadlock or serialization failure
 * rolls the verb back and runs it again; a connection found dead before
 * anything was sent is reset and the verb retried.
 *
 * Wake-ups across servers. A write that makes work claimable or changes a
 * run's state calls pg_notify('sked_wake', <this handle's id>) inside its
 * transaction, so the notification is delivered exactly when (and only if)
 * it commits. A dedicated listener connection and thread LISTENs on
 * sked_wake and calls store__notify() for every notification from another
 * handle; our own commits call store__notify() directly.
 *
 * Clock. Verbs take now_ms from the caller, as store.h says, so tests can
 * set time. With `sked_clock=db` in the URL every transaction instead uses
 * the database's now() (one clock for all servers, whatever their drift):
 * the value is read in the same round trip as BEGIN and replaces now_ms.
 *
 * Schema: the versioned migrations of schema.c, recorded in
 * schema_version, applied under a session advisory lock so servers starting
 * together migrate once; a newer schema is refused with SKED_ESCHEMA.
 * Enums are stored as their integer values, as in the SQLite backend.
 */
#include "store/store.h"
#include "store/store_int.h"
#include "store/db.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"

#define POOL_DEFAULT      8
#define POOL_MAX          128
#define TX_TRIES          10   /* deadlocks and serialization failures are retried this often */
#define LISTEN_RETRY_MS   1000 /* between listener reconnects */
#define CONNECT_TIMEOUT_S "10" /* unless the URL says otherwise */
#define WAKE_CHANNEL      "sked_wake"

/* ---- statements ------------------------------------------------------------ */

enum q { Q_NOTIFY, Q_COUNT };

static const char *const stmts[Q_COUNT] = {
    [Q_NOTIFY] = "SELECT pg_notify('" WAKE_CHANNEL "', $1)",
};

/* ---- connections ------------------------------------------------------------ */

struct dq;

struct pconn {
    PGconn *db;
    bool prepared[Q_COUNT];    /* statement i is prepared on this connection */
    db_slots_t dq;             /* the driver's statements (db.h): struct dq, by slot */
    int *used, nused, capused; /* slots with a result to clear after the unit */
    bool want_notify;          /* the running verb changed something worth a wake-up */
    char sqlstate[6];          /* of the last error */
};

struct pg {
    store_t base;   /* first: a store_t * is a struct pg * */
    char *conninfo; /* what libpq gets: the URL without our sked_* parameters */
    char *schema;   /* sked_schema=NAME: search_path of every connection; NULL = default */
    int pool_max;
    bool db_clock;          /* sked_clock=db: now() of the database replaces now_ms */
    char inst[SKED_ID_LEN]; /* this handle's id: the payload of its NOTIFYs */

    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a connection was released */
    struct pconn **idle; /* [pool_max] */
    int nidle, nopen;

    /* The database's clock as an offset from ours (store_now_ms). */
    pthread_mutex_t clock_mu;
    int64_t clock_off_ms; /* database now() minus clock_now_ms() */
    int64_t clock_at_ns;  /* monotonic time of the last measurement; 0 = never */

    pthread_t listener;
    bool listener_started;
    PGconn *ldb;      /* the listener's connection; owned by its thread once started */
    int stop_pipe[2]; /* written to on close: wakes the listener's poll */
};

/* A pointer to one of these is what a failing call gets in errmsg; NULL-safe. */
static void set_errmsg(char **errmsg, char *msg)
{
    if (errmsg && !*errmsg)
        *errmsg = msg;
    else
        free(msg);
}

/* libpq's messages span lines (and end in a newline); a log line or an
 * API message must not. New string, whitespace runs folded to one space. */
static char *pq_message(const char *m)
{
    char *s = xstrdup(m ? m : ""), *o = s;
    for (const char *i = s; *i; i++) {
        bool ws = *i == '\n' || *i == '\t' || *i == ' ';
        if (ws && (o == s || o[-1] == ' ')) continue;
        *o++ = ws ? ' ' : *i;
    }
    while (o > s && o[-1] == ' ')
        o--;
    *o = '\0';
    return s;
}

/* CREATE ... IF NOT EXISTS and friends talk through notices; they are not
 * errors and would only clutter stderr. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Maps a failed result to a SKED_E* code, logging the unexpected, and keeps
 * the SQLSTATE for the retry decision. */
static int dberr(struct pconn *c, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
    if (PQstatus(c->db) != CONNECTION_OK) {
        char *m = pq_message(PQerrorMessage(c->db));
        log_warn("store", "postgres connection lost: %s", m);
        free(m);
        return SKED_ESTORE;
    }
    if (state && strcmp(state, "23505") == 0) return SKED_ECONFLICT; /* unique_violation */
    if (state && strcmp(state, "53100") == 0) {                      /* disk_full */
        log_warn("store", "postgres: the disk is full");
        return SKED_ENOSPC;
    }
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        /* serialization_failure, deadlock_detected: tx() runs the verb again */
        log_debug("store", "postgres %s, retrying", state);
        return SKED_EBUSY;
    }
    char *m = pq_message(r ? PQresultErrorMessage(r) : PQerrorMessage(c->db));
    log_error("store", "postgres error %s: %s", state ? state : "?", m);
    free(m);
    return SKED_ESTORE;
}

static bool retryable(const struct pconn *c)
{
    return strcmp(c->sqlstate, "40001") == 0 || strcmp(c->sqlstate, "40P01") == 0;
}

/* Runs a parameterless command outside the statement cache. */
static int simple(struct pconn *c, const char *sql)
{
    PGresult *r = PQexec(c->db, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : dberr(c, r);
    PQclear(r);
    return rc;
}

static void dq_unprepare(struct pconn *c);

/* Settings every connection needs: durable commits (promise §5.1) whatever
 * the server's default, and our schema when one was asked for. */
static int session_setup(struct pg *p, struct pconn *c)
{
    PQsetNoticeProcessor(c->db, quiet_notice, NULL);
    memset(c->prepared, 0, sizeof c->prepared);
    dq_unprepare(c);
    int rc = simple(c, "SET synchronous_commit = on");
    if (rc == 0 && p->schema) {
        char *id = PQescapeIdentifier(c->db, p->schema, strlen(p->schema));
        if (!id) return SKED_ESTORE;
        char *sql = xasprintf("SET search_path = %s", id);
        PQfreemem(id);
        rc = simple(c, sql);
        free(sql);
    }
    return rc;
}

/* Connects with our defaults, which anything in the URL overrides: a
 * connect timeout, an application name, and TCP keepalives tight enough
 * that a listener whose database host vanished (no FIN ever comes) notices
 * within a minute or so instead of the kernel's two hours. New; caller
 * PQfinish()es. */
static PGconn *pg_connect(const struct pg *p)
{
    const char *const keys[] = {"connect_timeout",
                                "fallback_application_name",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "dbname",
                                NULL};
    const char *const vals[] = {CONNECT_TIMEOUT_S, "sked", "30", "10", "3", p->conninfo, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

static void dq_free(struct dq *q);

static void pconn_free(struct pconn *c)
{
    if (!c) return;
    if (c->db) PQfinish(c->db);
    for (size_t i = 0; i < c->dq.n; i++)
        dq_free((struct dq *)c->dq.q[i]);
    free(c->dq.q);
    free(c->used);
    free(c);
}

static int pconn_new(struct pg *p, struct pconn **out, char **errmsg)
{
    struct pconn *c = xcalloc(1, sizeof *c);
    int rc = 0;
    c->db = pg_connect(p);
    if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
        char *m = pq_message(c->db ? PQerrorMessage(c->db) : "out of memory");
        /* At open the caller reports errmsg; later, nobody else will. */
        if (errmsg)
            set_errmsg(errmsg, xasprintf("cannot connect to postgres: %s", m));
        else
            log_error("store", "cannot connect to postgres: %s", m);
        free(m);
        rc = SKED_ESTORE;
        goto out;
    }
    if ((rc = session_setup(p, c)) < 0) {
        set_errmsg(errmsg, xstrdup("cannot set up the postgres session"));
        goto out;
    }
out:
    if (rc < 0) {
        pconn_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* Takes a connection from the pool, opening one if the pool is not full,
 * else waiting for one. A connection that died while idle (the database
 * restarted) is reset here before anyone uses it. */
static int acquire(struct pg *p, struct pconn **out)
{
    struct pconn *c = NULL;
    bool create = false;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->nopen >= p->pool_max)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle > 0) {
        c = p->idle[--p->nidle];
    } else {
        p->nopen++;
        create = true;
    }
    pthread_mutex_unlock(&p->mu);

    if (create) {
        if ((rc = pconn_new(p, &c, NULL)) < 0) {
            pthread_mutex_lock(&p->mu);
            p->nopen--;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
    } else if (PQstatus(c->db) != CONNECTION_OK) {
        PQreset(c->db);
        if (PQstatus(c->db) != CONNECTION_OK || session_setup(p, c) < 0) {
            char *m = pq_message(PQerrorMessage(c->db));
            log_warn("store", "postgres reconnect failed: %s", m);
            free(m);
            pthread_mutex_lock(&p->mu);
            p->idle[p->nidle++] = c;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return SKED_ESTORE;
        }
    }
    *out = c;
    return 0;
}

static void release(struct pg *p, struct pconn *c)
{
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- parameters and results ---------------------------------------------------- */

#define MAXP 32

/* Parameters of one statement, in text format except binary blobs. Values
 * are borrowed (strings) or formatted into num[]. */
struct prm {
    int n;
    const char *v[MAXP];
    int len[MAXP];
    int fmt[MAXP];
    char num[MAXP][24];
};

static void pt(struct prm *p, const char *s) /* text; NULL = SQL NULL */
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void pi(struct prm *p, int64_t x)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, x);
    pt(p, p->num[p->n]);
}

static void pb(struct prm *p, bool x)
{
    pt(p, x ? "true" : "false");
}

static void pd(struct prm *p, double x)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%.17g", x);
    pt(p, p->num[p->n]);
}

static void pblob(struct prm *p, const void *data, size_t len)
{
    p->v[p->n] = len ? data : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n++] = 1;
}

/* Runs statement id on c. Returns the result (caller PQclear()s) or NULL
 * with *rc set. Prepares the statement on first use on this connection. */
static PGresult *ex(struct pconn *c, enum q id, const struct prm *p, int *rc)
{
    char name[16];
    snprintf(name, sizeof name, "q%d", (int)id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->db, name, stmts[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            *rc = dberr(c, r);
            if (PQstatus(c->db) == CONNECTION_OK)
                log_error("store", "could not prepare: %s", stmts[id]);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        c->prepared[id] = true;
    }
    PGresult *r = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) return r;
    *rc = dberr(c, r);
    PQclear(r);
    return NULL;
}

/* Runs a statement whose rows we do not need; *changed OUT (may be NULL):
 * rows affected. */
static int exn(struct pconn *c, enum q id, const struct prm *p, int64_t *changed)
{
    int rc = 0;
    PGresult *r = ex(c, id, p, &rc);
    if (!r) return rc;
    if (changed) *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

static int64_t gi(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* ---- transactions ----------------------------------------------------------- */

typedef int (*txfn_t)(struct pg *p, struct pconn *c, void *arg);

enum tx_kind {
    TX_NONE,   /* one read statement: no BEGIN/COMMIT round trips */
    TX_WRITE1, /* one write statement, likewise; never run twice */
    TX_READ,   /* several reads that must agree: one snapshot */
    TX_WRITE,  /* a verb that writes */
};

/* The database's clock, in the same round trip as BEGIN. */
static const char SQL_BEGIN_CLOCK[] = "BEGIN; SELECT (extract(epoch FROM now()) * 1000)::bigint";

/* Runs sql, whose last result is one integer, into *out. */
static int exec_int(struct pconn *c, const char *sql, int64_t *out)
{
    PGresult *r = PQexec(c->db, sql);
    int rc = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *out = gi(r, 0, 0);
    else
        rc = dberr(c, r);
    PQclear(r);
    return rc;
}

static int begin(struct pg *p, struct pconn *c, enum tx_kind kind, int64_t *now_ms)
{
    /* With TX_NONE the BEGIN is harmless: tx() commits it. */
    if (p->db_clock && now_ms) return exec_int(c, SQL_BEGIN_CLOCK, now_ms);
    if (kind == TX_NONE || kind == TX_WRITE1) return 0;
    return simple(c, kind == TX_READ ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
}

static int commit(struct pconn *c)
{
    PGresult *r = PQexec(c->db, "COMMIT");
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = dberr(c, r);
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = SKED_ESTORE; /* the transaction had failed: COMMIT answered ROLLBACK */
    PQclear(r);
    return rc;
}

/* Runs fn(p, c, arg) as one transaction on a pooled connection, commits it
 * when fn returns >= 0 and rolls it back otherwise; calls the notify hook
 * after a commit that asked for it. Deadlocks and serialization failures
 * run fn again (fn must start from scratch each time: it may not keep
 * state from a failed try). now_ms, if non-NULL, is replaced with the
 * database's clock in sked_clock=db mode. Returns fn's result or an error. */
static int tx(struct pg *p, enum tx_kind kind, txfn_t fn, void *arg, int64_t *now_ms)
{
    int rc = 0;
    for (int try = 1;; try++) {
        struct pconn *c = NULL;
        if ((rc = acquire(p, &c)) < 0) return rc;
        c->want_notify = false;
        c->sqlstate[0] = '\0';
        bool open = (kind != TX_NONE && kind != TX_WRITE1) || (p->db_clock && now_ms);
        rc = begin(p, c, kind, now_ms);
        bool dead_at_begin = rc < 0 && PQstatus(c->db) != CONNECTION_OK;
        if (rc == 0) {
            rc = fn(p, c, arg);
            if (rc >= 0 && c->want_notify && open) {
                struct prm pr = {0};
                pt(&pr, p->inst);
                int nrc = exn(c, Q_NOTIFY, &pr, NULL);
                if (nrc < 0) rc = nrc;
            }
            if (open) {
                if (rc >= 0) {
                    int64_t t0 = clock_mono_ns();
                    int crc = commit(c);
                    if (crc < 0) rc = crc;
                    /* GET /metrics: a write's COMMIT (one write each; the
                     * server's own WAL group commit is not visible here). */
                    if (crc == 0 && kind == TX_WRITE) {
                        prom_observe(&store_stats()->commit_ns, clock_mono_ns() - t0);
                        prom_observe(&store_stats()->commit_writes, 1);
                    }
                } else if (PQstatus(c->db) == CONNECTION_OK) {
                    PGresult *r = PQexec(c->db, "ROLLBACK");
                    PQclear(r);
                }
            }
        }
        /* A connection that died under a read, or before a write sent
         * anything, is safe to try once more on a fresh one. */
        bool dead = PQstatus(c->db) != CONNECTION_OK;
        bool again = try < TX_TRIES && rc < 0 &&
                     (retryable(c) || (dead && try == 1 &&
                                       (dead_at_begin || (kind != TX_WRITE && kind != TX_WRITE1))));
        bool notify = rc >= 0 && c->want_notify;
        release(p, c);
        if (notify) store__notify(&p->base);
        if (!again) return rc;
        if (!dead) {
            /* Two verbs that deadlocked would likely collide again at
             * once: wait a little, randomly, before the next try. */
            struct timespec ts = {0, (long)(randombytes_uniform(2000) + 200) * 1000L * try};
            nanosleep(&ts, NULL);
        }
    }
}

/* fn asks for a wake-up: pg_notify before commit, store__notify after. */
static void want_notify(struct pconn *c)
{
    c->want_notify = true;
}

/* ---- the SQL driver (db.h) --------------------------------------------------- */

/* A driver statement on one connection: its parameters (text format but
 * blobs), their declared types, and the result being walked. */
struct dq {
    struct db_q base;
    struct pconn *c;
    int slot;
    bool prepared, typed; /* typed: prepared with the bound values' types */
    char *text;           /* the PostgreSQL text (owned when rewritten from ?N) */
    struct prm p;
    Oid types[MAXP];
    PGresult *r;
    int row, rows;
    unsigned char *blob; /* the last column read as bytea, unescaped */
};

struct pdb {
    struct db base;
    struct pconn *c;
};

static const struct db_driver pg_driver;

static void dq_reset(struct dq *q)
{
    PQclear(q->r);
    q->r = NULL;
    PQfreemem(q->blob);
    q->blob = NULL;
    q->p.n = 0;
    q->row = -1;
    q->rows = 0;
}

static void dq_free(struct dq *q)
{
    if (!q) return;
    dq_reset(q);
    free(q->text);
    free(q);
}

/* After a reconnect nothing is prepared any more. */
static void dq_unprepare(struct pconn *c)
{
    for (size_t i = 0; i < c->dq.n; i++)
        if (c->dq.q[i]) ((struct dq *)c->dq.q[i])->prepared = false;
}

/* SQLite's ?N placeholders as PostgreSQL's $N (outside quoted text). New. */
static char *dollar_params(const char *sql)
{
    char *out = xstrdup(sql);
    bool quoted = false;
    for (char *o = out; *o; o++) {
        if (*o == '\'') quoted = !quoted;
        if (!quoted && *o == '?' && o[1] >= '0' && o[1] <= '9') *o = '$';
    }
    return out;
}

static db_q_t *pg_q(db_t *db, db_sql_t *sql)
{
    struct pconn *c = ((struct pdb *)db)->c;
    size_t slot;
    db_q_t **e = db__slot_entry(&c->dq, sql, &slot);
    struct dq *q = (struct dq *)*e;
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->base.drv = &pg_driver;
        q->c = c;
        q->slot = (int)slot;
        q->typed = !sql->pg;
        q->text = dollar_params(sql->pg ? sql->pg : sql->lite);
        q->base.noop = !*q->text;
        q->row = -1;
        *e = &q->base;
    } else {
        dq_reset(q);
    }
    return &q->base;
}

static void pg_bind(db_q_t *dq, const db_val_t *v)
{
    static const Oid oid[] = {
        [DB_TEXT] = 25, [DB_INT] = 20, [DB_BOOL] = 16, [DB_REAL] = 701, [DB_BLOB] = 17};
    struct dq *q = (struct dq *)dq;
    struct prm *p = &q->p;
    if (p->n >= MAXP) {
        log_error("store", "statement has more than %d parameters: %s", MAXP, q->text);
        return;
    }
    q->types[p->n] = oid[v->type];
    if (v->null) {
        pt(p, NULL);
        return;
    }
    switch (v->type) {
    case DB_TEXT:
        pt(p, v->s);
        break;
    case DB_INT:
        pi(p, v->i);
        break;
    case DB_BOOL:
        pb(p, v->i != 0);
        break;
    case DB_REAL:
        pd(p, v->d);
        break;
    case DB_BLOB:
        pblob(p, v->s, v->len);
        break;
    }
}

/* Runs the statement (preparing it on first use): the whole result arrives
 * at once, and step then walks it. */
static int dq_run(struct dq *q)
{
    struct pconn *c = q->c;
    char name[16];
    snprintf(name, sizeof name, "d%d", q->slot);
    if (!q->prepared) {
        PGresult *r =
            PQprepare(c->db, name, q->text, q->typed ? q->p.n : 0, q->typed ? q->types : NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            int rc = dberr(c, r);
            if (PQstatus(c->db) == CONNECTION_OK)
                log_error("store", "could not prepare: %s", q->text);
            PQclear(r);
            return rc;
        }
        PQclear(r);
        q->prepared = true;
    }
    q->r = PQexecPrepared(c->db, name, q->p.n, q->p.v, q->p.len, q->p.fmt, 0);
    ExecStatusType s = PQresultStatus(q->r);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        int rc = dberr(c, q->r);
        PQclear(q->r);
        q->r = NULL;
        return rc;
    }
    q->rows = PQntuples(q->r);
    if (c->nused == c->capused) {
        c->capused = c->capused ? c->capused * 2 : 16;
        c->used = xrealloc(c->used, (size_t)c->capused * sizeof *c->used);
    }
    c->used[c->nused++] = q->slot;
    return 0;
}

static int pg_step(db_q_t *dq)
{
    struct dq *q = (struct dq *)dq;
    if (!q->r) {
        int rc = dq_run(q);
        if (rc < 0) return rc;
    }
    PQfreemem(q->blob);
    q->blob = NULL;
    if (q->row < q->rows) q->row++;
    return q->row < q->rows ? 1 : 0;
}

static int64_t pg_changes(db_q_t *dq)
{
    struct dq *q = (struct dq *)dq;
    return q->r ? strtoll(PQcmdTuples(q->r), NULL, 10) : 0;
}

static bool pg_col_null(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    return PQgetisnull(q->r, q->row, col);
}

static int64_t pg_col_int(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    const char *v = PQgetvalue(q->r, q->row, col);
    if (*v == 't') return 1; /* boolean */
    return strtoll(v, NULL, 10);
}

static double pg_col_real(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    return strtod(PQgetvalue(q->r, q->row, col), NULL);
}

static const char *pg_col_text(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    return PQgetisnull(q->r, q->row, col) ? NULL : PQgetvalue(q->r, q->row, col);
}

static const void *pg_col_blob(db_q_t *dq, int col, size_t *len)
{
    struct dq *q = (struct dq *)dq;
    PQfreemem(q->blob);
    q->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(q->r, q->row, col), len);
    if (!q->blob) {
        /* Only on out of memory, which xalloc treats as fatal too. */
        log_error("store", "out of memory decoding a bytea value");
        abort();
    }
    return q->blob;
}

static void pg_db_notify(db_t *db)
{
    want_notify(((struct pdb *)db)->c);
}

struct pg_call {
    db_fn fn;
    void *arg;
};

static int pg_call_fn(struct pg *p, struct pconn *c, void *arg)
{
    struct pg_call *k = arg;
    struct pdb db = {{&pg_driver, &p->base}, c};
    int rc = k->fn(&db.base, k->arg);
    /* Results live until the unit ends, not until the connection's next use. */
    for (int i = 0; i < c->nused; i++)
        if (c->dq.q[c->used[i]]) dq_reset((struct dq *)c->dq.q[c->used[i]]);
    c->nused = 0;
    return rc;
}

static int pg_tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms)
{
    struct pg_call k = {fn, arg};
    enum tx_kind tk = kind == DB_WRITE    ? TX_WRITE
                      : kind == DB_WRITE1 ? TX_WRITE1
                      : kind == DB_READ   ? TX_READ
                                          : TX_NONE;
    /* DB_WRITE1 and DB_READ1: one statement, PostgreSQL's own transaction. */
    return tx((struct pg *)st, tk, pg_call_fn, &k, now_ms);
}

static void pg_close(store_t *st);
static int64_t pg_now_ms(store_t *st);

static const struct db_driver pg_driver = {
    .name = "postgres",
    .close = pg_close,
    .now_ms = pg_now_ms,
    .tx = pg_tx,
    .q = pg_q,
    .bind = pg_bind,
    .step = pg_step,
    .changes = pg_changes,
    .col_null = pg_col_null,
    .col_int = pg_col_int,
    .col_real = pg_col_real,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .notify = pg_db_notify,
};

/* ---- lifecycle ops ------------------------------------------------------------- */

#define CLOCK_REFRESH_NS 1000000000LL

static int clock_fn(struct pg *p, struct pconn *c, void *arg)
{
    (void)p;
    return exec_int(c, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", arg);
}

/* Our clock plus the database's offset from it, measured at most once a
 * second (half the round trip is the error bound, well under a
 * millisecond on a LAN). If the database cannot be asked, the last offset
 * stands: a stale offset drifts only as fast as the two clocks do. */
static int64_t pg_now_ms(store_t *st)
{
    struct pg *p = (struct pg *)st;
    int64_t mono = clock_mono_ns();
    pthread_mutex_lock(&p->clock_mu);
    bool fresh = p->clock_at_ns && mono - p->clock_at_ns < CLOCK_REFRESH_NS;
    int64_t off = p->clock_off_ms;
    pthread_mutex_unlock(&p->clock_mu);
    if (!fresh) {
        int64_t db_ms = 0, t0 = clock_now_ms();
        if (tx(p, TX_NONE, clock_fn, &db_ms, NULL) == 0) {
            int64_t t1 = clock_now_ms();
            off = db_ms - (t0 + t1) / 2;
            pthread_mutex_lock(&p->clock_mu);
            p->clock_off_ms = off;
            p->clock_at_ns = mono;
            pthread_mutex_unlock(&p->clock_mu);
        }
    }
    return clock_now_ms() + off;
}

/* ---- schema version ---------------------------------------------------------------- */

/* Brings the schema up to store__schema_version. Servers starting together take
 * turns on a session advisory lock, so exactly one applies each migration
 * and the others find it done; each run of migrations is one transaction
 * (DDL is transactional in PostgreSQL), so a crash mid-way leaves the old
 * version intact. */
static int migrate(struct pg *p, struct pconn *c, char **errmsg)
{
    PGresult *r = NULL;
    bool locked = false, open = false;
    int version = 0, rc = 0;

    if (p->schema) {
        char *id = PQescapeIdentifier(c->db, p->schema, strlen(p->schema));
        if (!id) {
            rc = SKED_EINVAL;
            goto out;
        }
        char *sql = xasprintf("CREATE SCHEMA IF NOT EXISTS %s", id);
        PQfreemem(id);
        rc = simple(c, sql);
        free(sql);
        /* Two servers creating the schema at once: the loser's unique
         * violation means it exists now, which is all we wanted. */
        if (rc == SKED_ECONFLICT) rc = 0;
        if (rc < 0) goto out;
    }
    if ((rc = simple(c, "SELECT pg_advisory_lock(" DB_PG_LOCK_CLASS ", 0)")) < 0) goto out;
    locked = true;
    if ((rc = simple(c, "BEGIN")) < 0) goto out;
    open = true;
    if ((rc = simple(c, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")) <
        0)
        goto out;
    r = PQexec(c->db, "SELECT version FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = dberr(c, r);
        goto out;
    }
    if (PQntuples(r) > 0) {
        version = (int)gi(r, 0, 0);
    } else if ((rc = simple(c, "INSERT INTO schema_version VALUES (0)")) < 0) {
        goto out;
    }
    if (version > store__schema_version) {
        rc = SKED_ESCHEMA;
        set_errmsg(errmsg, xasprintf("the postgres store has schema version %d, newer than this "
                                     "sked understands (%d): upgrade sked before using this store",
                                     version, store__schema_version));
        goto out;
    }
    for (int v = version; v < store__schema_version; v++) {
        /* Multi-statement scripts: the simple query protocol, no cache. */
        if ((rc = simple(c, store__migrations[v].pg)) < 0) {
            set_errmsg(errmsg, xasprintf("postgres schema migration %d failed", v + 1));
            goto out;
        }
        log_info("store", "migrated postgres schema to version %d", v + 1);
    }
    if (version < store__schema_version) {
        char *sql = xasprintf("UPDATE schema_version SET version = %d", store__schema_version);
        rc = simple(c, sql);
        free(sql);
        if (rc < 0) goto out;
    }
    rc = commit(c);
    open = false;
out:
    PQclear(r);
    if (open) PQclear(PQexec(c->db, "ROLLBACK"));
    if (locked) PQclear(PQexec(c->db, "SELECT pg_advisory_unlock(" DB_PG_LOCK_CLASS ", 0)"));
    if (rc < 0)
        set_errmsg(errmsg, xasprintf("postgres schema check failed: %s", sked_strerror(rc)));
    return rc;
}

/* ---- the listener ---------------------------------------------------------------------- */

/* Opens the listening connection. New; caller PQfinish()es. NULL on
 * failure (logged; *errmsg set if non-NULL). */
static PGconn *listen_open(struct pg *p, char **errmsg)
{
    PGconn *db = pg_connect(p);
    if (!db || PQstatus(db) != CONNECTION_OK) {
        char *m = pq_message(db ? PQerrorMessage(db) : "out of memory");
        log_warn("store", "postgres listener cannot connect: %s", m);
        set_errmsg(errmsg, xasprintf("cannot connect to postgres: %s", m));
        free(m);
        if (db) PQfinish(db);
        return NULL;
    }
    PQsetNoticeProcessor(db, quiet_notice, NULL);
    PGresult *r = PQexec(db, "LISTEN " WAKE_CHANNEL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok || PQsetnonblocking(db, 1) != 0) {
        char *m = pq_message(PQerrorMessage(db));
        log_warn("store", "postgres LISTEN failed: %s", m);
        set_errmsg(errmsg, xasprintf("postgres LISTEN failed: %s", m));
        free(m);
        PQfinish(db);
        return NULL;
    }
    return db;
}

/* Waits up to timeout_ms (-1 = forever) for the stop pipe or fd (-1 =
 * none) to become readable. Returns true when asked to stop. */
static bool wait_io(struct pg *p, int fd, int timeout_ms, bool *readable)
{
    struct pollfd pfd[2] = {{p->stop_pipe[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
    *readable = n > 0 && fd >= 0 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP));
    return n > 0 && (pfd[0].revents & (POLLIN | POLLHUP));
}

static void *listen_main(void *arg)
{
    struct pg *p = arg;
    PGconn *db = p->ldb;
    bool readable = false;
    for (;;) {
        if (!db) {
            if (wait_io(p, -1, LISTEN_RETRY_MS, &readable)) break;
            if (!(db = listen_open(p, NULL))) continue;
            log_info("store", "postgres listener reconnected");
            /* Wake-ups sent while we were away are lost: look again. */
            store__notify(&p->base);
        }
        int fd = PQsocket(db);
        if (fd >= 0 && wait_io(p, fd, -1, &readable)) break;
        if (fd >= 0 && !readable) continue;
        if (fd < 0 || !PQconsumeInput(db)) {
            char *m = pq_message(PQerrorMessage(db));
            log_warn("store", "postgres listener lost its connection: %s", m);
            free(m);
            PQfinish(db);
            db = NULL;
            continue;
        }
        bool wake = false;
        PGnotify *n;
        while ((n = PQnotifies(db))) {
            /* Our own commits have called store__notify already. */
            if (strcmp(n->extra, p->inst) != 0) wake = true;
            PQfreemem(n);
        }
        if (wake) store__notify(&p->base);
    }
    if (db) PQfinish(db);
    p->ldb = NULL;
    return NULL;
}

/* ---- open and close -------------------------------------------------------------------- */

static void pg_close(store_t *st)
{
    struct pg *p = (struct pg *)st;
    if (p->listener_started) {
        ssize_t w;
        do
            w = write(p->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(p->listener, NULL);
    }
    if (p->ldb) PQfinish(p->ldb);
    for (int i = 0; i < 2; i++)
        if (p->stop_pipe[i] >= 0) close(p->stop_pipe[i]);
    /* Every verb has returned by now (closing a store in use is a
     * programmer error), so all open connections are idle. */
    for (int i = 0; i < p->nidle; i++)
        pconn_free(p->idle[i]);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->clock_mu);
    pthread_cond_destroy(&p->cv);
    store__fini(&p->base);
    free(p->conninfo);
    free(p->schema);
    free(p);
}

/* Splits our own sked_* parameters off the query string of a postgres URI
 * (libpq would reject them) and returns what libpq should get. A libpq
 * keyword string ("host=... dbname=...") is passed through as is. */
static int parse_url(struct pg *p, const char *url, char **errmsg)
{
    const char *q = strstr(url, "://") ? strchr(url, '?') : NULL;
    buf_t b = BUF_INIT;
    int rc = 0;
    if (!q) {
        p->conninfo = xstrdup(url);
        return 0;
    }
    buf_append(&b, url, (size_t)(q - url));
    char *params = xstrdup(q + 1), *save = NULL;
    bool first = true;
    for (char *kv = strtok_r(params, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        if (strncmp(kv, "sked_", 5) != 0) {
            buf_puts(&b, first ? "?" : "&");
            buf_puts(&b, kv);
            first = false;
            continue;
        }
        char *val = strchr(kv, '=');
        val = val ? val + 1 : "";
        if (strncmp(kv, "sked_pool=", 10) == 0) {
            char *end = NULL;
            long n = strtol(val, &end, 10);
            if (end == val || *end || n < 1 || n > POOL_MAX) {
                set_errmsg(errmsg, xasprintf("sked_pool must be 1..%d, not '%s'", POOL_MAX, val));
                rc = SKED_EINVAL;
                goto out;
            }
            p->pool_max = (int)n;
        } else if (strncmp(kv, "sked_clock=", 11) == 0) {
            if (strcmp(val, "db") != 0 && strcmp(val, "caller") != 0) {
                set_errmsg(errmsg, xasprintf("sked_clock must be 'db' or 'caller', not '%s'", val));
                rc = SKED_EINVAL;
                goto out;
            }
            p->db_clock = strcmp(val, "db") == 0;
        } else if (strncmp(kv, "sked_schema=", 12) == 0 && *val) {
            free(p->schema);
            p->schema = xstrdup(val);
        } else {
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0';
            set_errmsg(errmsg, xasprintf("unknown store URL parameter '%s' (known: sked_pool, "
                                         "sked_clock, sked_schema)",
                                         kv));
            rc = SKED_EINVAL;
            goto out;
        }
    }
    p->conninfo = buf_steal(&b);
out:
    free(params);
    buf_free(&b);
    return rc;
}

int store__pg_open(const char *url, store_t **out, char **errmsg)
{
    struct pg *p = xcalloc(1, sizeof *p);
    struct pconn *c = NULL;
    char *perr = NULL;
    int rc = 0;

    store__init(&p->base, &pg_driver);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->clock_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->stop_pipe[0] = p->stop_pipe[1] = -1;
    p->pool_max = POOL_DEFAULT;
    id_new("sto", 0, p->inst);
    *out = NULL;

    if ((rc = parse_url(p, url, errmsg)) < 0) goto fail;
    /* Catch a malformed URL here, with libpq's own words. */
    PQconninfoOption *opts = PQconninfoParse(p->conninfo, &perr);
    if (!opts) {
        char *m = pq_message(perr ? perr : "out of memory");
        set_errmsg(errmsg, xasprintf("bad postgres URL: %s", m));
        free(m);
        if (perr) PQfreemem(perr);
        rc = SKED_EINVAL;
        goto fail;
    }
    PQconninfoFree(opts);
    p->idle = xcalloc((size_t)p->pool_max, sizeof *p->idle);

    /* The first pooled connection migrates, then joins the pool. */
    if ((rc = pconn_new(p, &c, errmsg)) < 0) goto fail;
    p->nopen = 1;
    rc = migrate(p, c, errmsg);
    p->idle[p->nidle++] = c;
    if (rc < 0) goto fail;

    /* LISTEN before returning, so a wake-up for work submitted on another
     * server after store_open returns is never missed. */
    if (pipe2(p->stop_pipe, O_CLOEXEC) != 0) {
        set_errmsg(errmsg, xasprintf("pipe: %s", strerror(errno)));
        rc = SKED_ESTORE;
        goto fail;
    }
    if (!(p->ldb = listen_open(p, errmsg))) {
        rc = SKED_ESTORE;
        goto fail;
    }
    if (pthread_create(&p->listener, NULL, listen_main, p) != 0) {
        set_errmsg(errmsg, xstrdup("cannot start the postgres listener thread"));
        rc = SKED_ESTORE;
        goto fail;
    }
    p->listener_started = true;
    *out = &p->base;
    return 0;
fail:
    pg_close(&p->base);
    return rc;
}
