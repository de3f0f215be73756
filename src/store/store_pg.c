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
#include <limits.h>
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
#define TX_TRIES          10 /* deadlocks and serialization failures are retried this often */
#define REAP_BATCH        256
#define CLAIM_WINDOW_MAX  4096
#define LISTEN_RETRY_MS   1000 /* between listener reconnects */
#define CONNECT_TIMEOUT_S "10" /* unless the URL says otherwise */
#define WAKE_CHANNEL      "sked_wake"
/* Advisory lock class of sked ('sked' in ASCII); the second key is 0 for
 * migrations and hashtext(job_id) for per-job claim decisions. */
#define LOCK_CLASS "1936417636"

/* ---- statements ------------------------------------------------------------ */

#define RUN_COLS                                                                                   \
    "id, job_id, schedule_id, worker_id, state, fire_ms, not_before_ms, priority, queue,"          \
    " attempt, fence, lease_expires_ms, cancel_requested, created_ms, started_ms, finished_ms,"    \
    " exit_code, signal, reason, log_bytes, log_truncated"
#define WORKER_COLS                                                                                \
    "w.id, w.name, w.host, w.labels, w.queues, w.slots, w.state, w.registered_ms,"                 \
    " w.heartbeat_ms, (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.state = 3)"

#define TOKEN_COLS "id, name, role, ns, created_ms, expires_ms, revoked, user_name, last_used_ms"
#define TOKEN_LIST_WHERE                                                                           \
    " WHERE ($1::text IS NULL OR (CASE WHEN $1 = '' THEN user_name IS NULL"                        \
    " ELSE user_name = $1 END)) AND ($2::text IS NULL OR name = $2)"
#define USER_COLS        "name, pwhash, role, namespaces, created_ms, updated_ms"
#define AUDIT_COLS       "id, at_ms, actor, role, method, route, target, ns, source, status"
#define AUDIT_LIST_WHERE " WHERE at_ms >= $1::bigint AND ($2::text IS NULL OR actor = $2)"

#define RUN_LIST_TAIL                                                                              \
    " AND ($2::integer IS NULL OR state = $2) AND fire_ms >= $3::bigint AND fire_ms < $4::bigint"  \
    " AND ($6::text IS NULL OR job_id IN (SELECT id FROM jobs"                                     \
    " WHERE ns = ANY (string_to_array($6, ','))))"
#define RUN_LIST_AFTER " AND (fire_ms, id) < ($7::bigint, $8::text)"
#define RUN_LIST_ORDER " ORDER BY fire_ms DESC, id DESC LIMIT $5"

enum q {
    Q_WORKER_TOUCH,
    Q_CLAIM_LEVEL,
    Q_CLAIM_ROWS,
    Q_CLAIM_JOB,
    Q_JOB_LOCK,
    Q_JOB_RUNNING,
    Q_RUN_SKIP_OVERLAP,
    Q_RUNS_REPLACE,
    Q_RUN_LEASE,
    Q_RUNS_RENEW,
    Q_RUN_FOR_FINISH,
    Q_RUN_UNCLAIM,
    Q_ATTEMPT_DROP,
    Q_LOG_DROP,
    Q_ATTEMPT_REPORTED,
    Q_ATTEMPT_FINISH,
    Q_RUN_FINISH,
    Q_EXPIRED,
    Q_WORKERS_LOSE,
    Q_NOTIFY,
    Q_COUNT
};

static const char *const stmts[Q_COUNT] = {

    /* runs */

    /* workers */
    /* Pages in (name, id) order after the cursor worker's (name, id), as
     * in store_sqlite.c. */
    /* RETURNING owner: a change for the wrong owner is rolled back. */

    /* claim. The worker row lock serialises one worker's claims and
     * heartbeats; a lost worker that speaks again is active again. */
    [Q_WORKER_TOUCH] =
        "UPDATE workers SET heartbeat_ms = $2, state = CASE WHEN state = 2 THEN 0 ELSE state END,"
        " owner = CASE WHEN owner = '' AND $3::text IS NOT NULL THEN $3 ELSE owner END"
        " WHERE id = $1 AND state <> 3 RETURNING state, queues, labels, owner, ns",
    /* The next lower priority level present among claimable runs of a
     * queue (an index probe: max() over runs_claim). */
    [Q_CLAIM_LEVEL] = "SELECT max(priority) FROM runs WHERE state IN (0, 2) AND NOT held"
                      " AND queue = $1 AND priority < $2::bigint",
    /* The oldest due runs of one level whose job is active and whose
     * constraints the worker's labels satisfy, walking runs_claim in order.
     * SKIP LOCKED: runs another server is claiming right now are left to
     * it, and only the rows returned are locked. */
    [Q_CLAIM_ROWS] = "SELECT r.id, r.job_id, r.not_before_ms, r.fire_ms FROM runs r"
                     " JOIN jobs j ON j.id = r.job_id"
                     " WHERE r.state IN (0, 2) AND NOT r.held AND r.queue = $1 AND r.priority = $2"
                     " AND r.not_before_ms <= $3 AND j.state NOT IN (1, 3)"
                     " AND ($6 = '' OR j.ns = ANY (string_to_array($6, ',')))"
                     " AND string_to_array(j.constraints, ',') <@ string_to_array($5, ',')"
                     " ORDER BY r.not_before_ms LIMIT $4 FOR NO KEY UPDATE OF r SKIP LOCKED",
    [Q_CLAIM_JOB] = "SELECT state, constraints, max_concurrency, overlap, spec_json, timeout_ms,"
                    " name FROM jobs WHERE id = $1",
    /* Per-job decisions (concurrency, overlap) of concurrent claims on
     * several servers are serialised by a transaction-scoped advisory lock
     * on the job, which does not block anything else that touches it. */
    [Q_JOB_LOCK] = "SELECT pg_advisory_xact_lock(" LOCK_CLASS ", hashtext($1))",
    [Q_JOB_RUNNING] = "SELECT count(*) FROM runs WHERE job_id = $1 AND state = 3",
    [Q_RUN_SKIP_OVERLAP] = "UPDATE runs SET state = 7, finished_ms = $2, reason = 'overlap'"
                           " WHERE id = $1 AND state IN (0, 2)",
    [Q_RUNS_REPLACE] = "UPDATE runs SET cancel_requested = true,"
                       " reason = coalesce(reason, 'replaced by a newer run')"
                       " WHERE job_id = $1 AND state = 3 AND NOT cancel_requested",
    /* The lease and the attempt row in one round trip. */
    [Q_RUN_LEASE] = "WITH r AS (UPDATE runs SET state = 3, worker_id = $2, attempt = attempt + 1,"
                    " fence = $5, lease_expires_ms = $3, unconfirmed = true,"
                    " started_ms = CASE WHEN started_ms < 0 THEN $4 ELSE started_ms END"
                    " WHERE id = $1 AND state IN (0, 2) RETURNING " RUN_COLS "),"
                    " a AS (INSERT INTO attempts (run_id, n, worker_id, fence, started_ms)"
                    " SELECT id, attempt, $2::text, fence, $4::bigint FROM r)"
                    " SELECT " RUN_COLS " FROM r",

    /* heartbeat, complete, reap. Renewal of all held runs in one statement:
     * only those still held by this worker with this fence and not asked
     * to cancel come back, and those are the ones to keep. An unconfirmed
     * lease keeps its short term until the attempt is reported started. */
    [Q_RUNS_RENEW] =
        "UPDATE runs r SET lease_expires_ms = CASE WHEN r.unconfirmed AND NOT h.started"
        " THEN r.lease_expires_ms ELSE $2 END, unconfirmed = r.unconfirmed AND NOT h.started"
        " FROM unnest($3::text[], $4::bigint[], $5::boolean[]) AS h (id, fence, started)"
        " WHERE r.id = h.id AND r.fence = h.fence AND r.worker_id = $1"
        " AND r.state = 3 AND NOT r.cancel_requested RETURNING r.id, r.fence",
    [Q_RUN_FOR_FINISH] =
        "SELECT r.state, r.fence, r.attempt, r.cancel_requested, r.reason,"
        " j.retry_max_attempts, j.retry_initial_ms, j.retry_max_ms, j.retry_multiplier,"
        " j.retry_jitter, j.state, r.unconfirmed, w.owner FROM runs r"
        " JOIN jobs j ON j.id = r.job_id LEFT JOIN workers w ON w.id = r.worker_id"
        " WHERE r.id = $1 FOR NO KEY UPDATE OF r",
    /* Undoes an attempt that never started (see the SQLite backend). */
    [Q_RUN_UNCLAIM] =
        "UPDATE runs SET state = $2, not_before_ms = $3, lease_expires_ms = -1, finished_ms = $4,"
        " reason = $5, held = $6, attempt = attempt - 1, worker_id = '', unconfirmed = false,"
        " started_ms = CASE WHEN attempt = 1 THEN -1 ELSE started_ms END,"
        " log_bytes = log_bytes - (SELECT coalesce(sum(length(data)), 0) FROM log_chunks l"
        " WHERE l.run_id = runs.id AND l.attempt = runs.attempt AND l.stream <> 0),"
        " log_truncated = EXISTS (SELECT 1 FROM log_chunks l WHERE l.run_id = runs.id"
        " AND l.attempt <> runs.attempt AND l.stream = 0)"
        " WHERE id = $1",
    [Q_ATTEMPT_DROP] = "DELETE FROM attempts WHERE run_id = $1 AND n = $2",
    [Q_LOG_DROP] = "DELETE FROM log_chunks WHERE run_id = $1 AND attempt = $2",
    [Q_ATTEMPT_REPORTED] = "SELECT reported FROM attempts WHERE run_id = $1 AND n = $2"
                           " AND fence = $3",
    [Q_ATTEMPT_FINISH] = "UPDATE attempts SET finished_ms = $3, outcome = $4, exit_code = $5,"
                         " signal = $6, reason = $7, reported = $8 WHERE run_id = $1 AND n = $2",
    [Q_RUN_FINISH] = "UPDATE runs SET state = $2,"
                     " not_before_ms = CASE WHEN $2 = 0 THEN $3 ELSE not_before_ms END,"
                     " lease_expires_ms = -1, finished_ms = $4, exit_code = $5, signal = $6,"
                     " reason = $7, held = $8 WHERE id = $1",
    /* SKIP LOCKED: reapers on several servers share the expired runs. */
    [Q_EXPIRED] = "SELECT id FROM runs WHERE state = 3 AND lease_expires_ms < $1"
                  " ORDER BY lease_expires_ms LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED",
    [Q_WORKERS_LOSE] = "UPDATE workers SET state = 2 WHERE state IN (0, 1) AND heartbeat_ms < $1",

    /* tokens */
    /* A user's token acts with the user's current role and namespaces,
     * and stops working the moment the user is deleted. */

    /* users */

    /* audit */
    [Q_NOTIFY] = "SELECT pg_notify('" WAKE_CHANNEL "', $1)",
};

/* ---- connections ------------------------------------------------------------ */

struct dq;

struct pconn {
    PGconn *db;
    bool prepared[Q_COUNT]; /* statement i is prepared on this connection */
    struct dq **dq;         /* the driver's statements (db.h), by slot */
    size_t ndq;
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
    for (size_t i = 0; i < c->ndq; i++)
        dq_free(c->dq[i]);
    free(c->dq);
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

#define MAXP 24

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

static bool gb(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

static char *gt(const PGresult *r, int row, int col) /* NULL stays NULL */
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static char *gt0(const PGresult *r, int row, int col) /* never NULL */
{
    return xstrdup(PQgetvalue(r, row, col));
}

static void gid(const PGresult *r, int row, int col, char out[SKED_ID_LEN])
{
    snprintf(out, SKED_ID_LEN, "%s", PQgetvalue(r, row, col));
}

/* ---- transactions ----------------------------------------------------------- */

typedef int (*txfn_t)(struct pg *p, struct pconn *c, void *arg);

enum tx_kind {
    TX_NONE,  /* one read statement: no BEGIN/COMMIT round trips */
    TX_READ,  /* several reads that must agree: one snapshot */
    TX_WRITE, /* a verb that writes */
};

/* The database's clock, in the same round trip as BEGIN. */
static const char SQL_BEGIN_CLOCK[] = "BEGIN; SELECT (extract(epoch FROM now()) * 1000)::bigint";

static int begin(struct pg *p, struct pconn *c, enum tx_kind kind, int64_t *now_ms)
{
    if (p->db_clock && now_ms) {
        /* With TX_NONE the BEGIN is harmless: tx() commits it. */
        PGresult *r = PQexec(c->db, SQL_BEGIN_CLOCK);
        int rc = 0;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            *now_ms = gi(r, 0, 0);
        else
            rc = dberr(c, r);
        PQclear(r);
        return rc;
    }
    if (kind == TX_NONE) return 0;
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
        bool open = kind != TX_NONE || (p->db_clock && now_ms);
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
                    int crc = commit(c);
                    if (crc < 0) rc = crc;
                } else if (PQstatus(c->db) == CONNECTION_OK) {
                    PGresult *r = PQexec(c->db, "ROLLBACK");
                    PQclear(r);
                }
            }
        }
        /* A connection that died under a read, or before a write sent
         * anything, is safe to try once more on a fresh one. */
        bool dead = PQstatus(c->db) != CONNECTION_OK;
        bool again = try < TX_TRIES &&
                     (retryable(c) || (dead && try == 1 && (dead_at_begin || kind != TX_WRITE)));
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
    for (size_t i = 0; i < c->ndq; i++)
        if (c->dq[i]) c->dq[i]->prepared = false;
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
    size_t slot = (size_t)db__slot(sql);
    if (slot >= c->ndq) {
        size_t n = slot * 2;
        c->dq = xrealloc(c->dq, n * sizeof *c->dq);
        memset(c->dq + c->ndq, 0, (n - c->ndq) * sizeof *c->dq);
        c->ndq = n;
    }
    struct dq *q = c->dq[slot];
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->base.drv = &pg_driver;
        q->c = c;
        q->slot = (int)slot;
        q->typed = !sql->pg;
        q->text = dollar_params(sql->pg ? sql->pg : sql->lite);
        q->base.noop = !*q->text;
        q->row = -1;
        c->dq[slot] = q;
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
        if (c->dq[c->used[i]]) dq_reset(c->dq[c->used[i]]);
    c->nused = 0;
    return rc;
}

static int pg_tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms)
{
    struct pg_call k = {fn, arg};
    enum tx_kind tk = kind == DB_WRITE ? TX_WRITE : kind == DB_READ ? TX_READ : TX_NONE;
    /* DB_WRITE1 and DB_READ1: one statement, PostgreSQL's own transaction. */
    return tx((struct pg *)st, tk, pg_call_fn, &k, now_ms);
}

static const struct db_driver pg_driver = {
    .name = "postgres",
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

/* ---- row readers ------------------------------------------------------------- */

static void row_run(const PGresult *q, int i, store_run_t *r)
{
    gid(q, i, 0, r->id);
    gid(q, i, 1, r->job_id);
    gid(q, i, 2, r->schedule_id);
    gid(q, i, 3, r->worker_id);
    r->state = (run_state_t)gi(q, i, 4);
    r->fire_ms = gi(q, i, 5);
    r->not_before_ms = gi(q, i, 6);
    r->priority = (int)gi(q, i, 7);
    r->queue = gt0(q, i, 8);
    r->attempt = (int)gi(q, i, 9);
    r->fence = gi(q, i, 10);
    r->lease_expires_ms = gi(q, i, 11);
    r->cancel_requested = gb(q, i, 12);
    r->created_ms = gi(q, i, 13);
    r->started_ms = gi(q, i, 14);
    r->finished_ms = gi(q, i, 15);
    r->exit_code = (int)gi(q, i, 16);
    r->signal = (int)gi(q, i, 17);
    r->reason = gt(q, i, 18);
    r->log_bytes = gi(q, i, 19);
    r->log_truncated = gb(q, i, 20);
}

/* ---- lifecycle ops ------------------------------------------------------------- */

#define CLOCK_REFRESH_NS 1000000000LL

static int clock_fn(struct pg *p, struct pconn *c, void *arg)
{
    int64_t *db_ms = arg;
    PGresult *r = PQexec(c->db, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
    int rc = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *db_ms = gi(r, 0, 0);
    else
        rc = dberr(c, r);
    PQclear(r);
    return rc;
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

/* ---- runs -------------------------------------------------------------------------- */

/* ---- workers ------------------------------------------------------------------------ */

/* ---- claim ---------------------------------------------------------------------------- */

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

/* Collects (and locks) the best `window` due runs of the worker's queues by
 * effective priority, as the SQLite backend does. Aging adds at most
 * STORE__AGING_CAP, so a level more than that below the window's worst
 * candidate cannot enter it: the walk visits O(levels near the top) index
 * ranges of O(window) rows each, whatever the backlog. Within a level the
 * oldest due run has aged most, so index order is effective-priority
 * order. *more OUT: candidates beyond the window may exist. */
static int gather(struct pconn *c, const char *queues, const char *labels, const char *ns,
                  int window, int64_t now_ms, struct cand **out, size_t *nout, bool *more)
{
    struct cand *v = NULL;
    size_t n = 0, cap = 0;
    PGresult *r = NULL;
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
            struct prm p = {0};
            pt(&p, queue);
            pi(&p, level);
            if (!(r = ex(c, Q_CLAIM_LEVEL, &p, &rc))) goto out;
            bool none = PQgetisnull(r, 0, 0);
            level = none ? 0 : gi(r, 0, 0);
            PQclear(r);
            r = NULL;
            if (none) break;

            memset(&p, 0, sizeof p);
            pt(&p, queue);
            pi(&p, level);
            pi(&p, now_ms);
            pi(&p, window);
            pt(&p, labels);
            pt(&p, ns);
            if (!(r = ex(c, Q_CLAIM_ROWS, &p, &rc))) goto out;
            int rows = PQntuples(r);
            for (int i = 0; i < rows; i++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = xrealloc(v, cap * sizeof *v);
                }
                struct cand *k = &v[n++];
                gid(r, i, 0, k->id);
                gid(r, i, 1, k->job_id);
                k->eff = store__effective_priority((int)level, gi(r, i, 2), now_ms);
                k->fire_ms = gi(r, i, 3);
            }
            PQclear(r);
            r = NULL;
            if (rows == window) *more = true;
        }
    }
    if (n > 1) qsort(v, n, sizeof *v, cand_cmp);
out:
    PQclear(r);
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
static int claim_one(struct pconn *c, struct claim_args *a, const char *labels,
                     const struct cand *k, store_claimed_t *cl)
{
    struct prm p = {0};
    char *spec = NULL;
    PGresult *r = NULL;
    int rc = 0;

    pt(&p, k->job_id);
    if (!(r = ex(c, Q_CLAIM_JOB, &p, &rc))) goto out;
    if (PQntuples(r) == 0) goto out;
    job_state_t js = (job_state_t)gi(r, 0, 0);
    int max_conc = (int)gi(r, 0, 2);
    overlap_policy_t overlap = (overlap_policy_t)gi(r, 0, 3);
    /* A done job's runs still run; a paused or deleted job's do not (as
     * the claim scan says). */
    if (js == JOB_PAUSED || js == JOB_DELETED ||
        !store__labels_satisfy(labels, PQgetvalue(r, 0, 1)))
        goto out;
    spec = gt0(r, 0, 4);
    int64_t timeout_ms = gi(r, 0, 5);
    char job_name[256];
    snprintf(job_name, sizeof job_name, "%s", PQgetvalue(r, 0, 6));
    PQclear(r);
    r = NULL;

    if (overlap != OVERLAP_ALLOW || max_conc > 0) {
        /* Count the job's running runs under its lock, so two servers
         * claiming runs of one job at once cannot both see room for one. */
        if (!(r = ex(c, Q_JOB_LOCK, &p, &rc))) goto out;
        PQclear(r);
        if (!(r = ex(c, Q_JOB_RUNNING, &p, &rc))) goto out;
        int64_t running = gi(r, 0, 0);
        PQclear(r);
        r = NULL;

        if (running > 0 && overlap == OVERLAP_FORBID) {
            memset(&p, 0, sizeof p);
            pt(&p, k->id);
            pi(&p, a->now_ms);
            if ((rc = exn(c, Q_RUN_SKIP_OVERLAP, &p, NULL)) < 0) goto out;
            want_notify(c);
            goto out;
        }
        if (running > 0 && overlap == OVERLAP_REPLACE) {
            /* The new run waits for the old one to die; its worker learns
             * of the cancel at its next heartbeat. */
            int64_t n = 0;
            if ((rc = exn(c, Q_RUNS_REPLACE, &p, &n)) < 0) goto out;
            if (n) want_notify(c);
            goto out;
        }
        if (max_conc > 0 && running >= max_conc) goto out;
    }

    memset(&p, 0, sizeof p);
    pt(&p, k->id);
    pt(&p, a->worker_id);
    pi(&p, a->now_ms + a->lease_ms);
    pi(&p, a->now_ms);
    pi(&p, store__fence_new()); /* random: no worker can guess another lease's fence */
    if (!(r = ex(c, Q_RUN_LEASE, &p, &rc))) goto out;
    if (PQntuples(r) == 0) goto out; /* claimed or canceled since we looked */
    row_run(r, 0, &cl->run);
    cl->spec_json = spec;
    spec = NULL;
    cl->timeout_ms = timeout_ms;
    memcpy(cl->job_name, job_name, sizeof cl->job_name);
    rc = 1;
out:
    PQclear(r);
    free(spec);
    return rc;
}

static int claim_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct claim_args *a = arg;
    struct cand *cands = NULL;
    char *queues = NULL, *labels = NULL;
    struct prm p = {0};
    int rc = 0;

    pt(&p, a->worker_id);
    pi(&p, a->now_ms);
    pt(&p, a->owner);
    PGresult *r = ex(c, Q_WORKER_TOUCH, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    worker_state_t ws = (worker_state_t)gi(r, 0, 0);
    queues = gt0(r, 0, 1);
    labels = gt0(r, 0, 2);
    bool owner_ok = store__owner_ok(a->owner, PQgetvalue(r, 0, 3));
    free(a->ns); /* tx() may run us again */
    a->ns = gt0(r, 0, 4);
    PQclear(r);
    if (!owner_ok) {
        rc = SKED_EFORBID; /* rolls the touch back */
        goto out;
    }
    if (ws == WORKER_DRAINING || a->max == 0) goto out;

    a->out = xcalloc((size_t)a->max, sizeof *a->out);
    /* Queue, labels and job state are filtered in SQL, so only concurrency
     * and overlap can pass a candidate over: lock just `max` rows first (so
     * concurrent claimers lock disjoint sets) and widen only when runs were
     * passed over and more may lie beyond the window. */
    for (int window = a->max;; window *= 4) {
        size_t n = 0;
        bool more = false;
        FREE_NULL(cands);
        if ((rc = gather(c, queues, labels, a->ns, window, a->now_ms, &cands, &n, &more)) < 0)
            goto out;
        for (size_t i = 0; i < n && a->n < (size_t)a->max; i++) {
            rc = claim_one(c, a, labels, &cands[i], &a->out[a->n]);
            if (rc < 0) goto out;
            if (rc == 1) a->n++;
        }
        rc = 0;
        if (a->n == (size_t)a->max || !more || window >= CLAIM_WINDOW_MAX) break;
    }
    if (a->n) want_notify(c);
out:
    if (rc < 0) { /* tx() may run us again: leave nothing behind */
        for (size_t i = 0; i < a->n; i++)
            store_claimed_clear(&a->out[i]);
        FREE_NULL(a->out);
        a->n = 0;
    }
    free(cands);
    free(queues);
    free(labels);
    return rc;
}

static int pg_claim(store_t *st, const char *worker_id, const char *owner, int max,
                    int64_t confirm_ms, int64_t now_ms, store_claimed_t **out, size_t *n)
{
    struct claim_args a = {worker_id, owner, max, confirm_ms, now_ms, NULL, NULL, 0};
    int rc = tx((struct pg *)st, TX_WRITE, claim_fn, &a, &a.now_ms);
    free(a.ns);
    if (rc < 0) { /* the commit failed after claim_fn succeeded */
        for (size_t i = 0; i < a.n; i++)
            store_claimed_clear(&a.out[i]);
        FREE_NULL(a.out);
        a.n = 0;
    }
    *out = a.out;
    *n = a.n;
    return rc;
}

/* ---- heartbeat, complete, reap ------------------------------------------------------ */

/* Appends s to b as an element of a PostgreSQL array literal. */
static void array_elem(buf_t *b, const char *s)
{
    buf_puts(b, b->len > 1 ? ",\"" : "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') buf_append(b, "\\", 1);
        buf_append(b, s, 1);
    }
    buf_puts(b, "\"");
}

struct heartbeat_args {
    const char *worker_id, *owner;
    store_held_t *held;
    size_t nheld;
    int64_t lease_ms, now_ms;
    bool *draining;
};

static int heartbeat_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct heartbeat_args *a = arg;
    struct prm p = {0};
    buf_t ids = BUF_INIT, fences = BUF_INIT, started = BUF_INIT;
    PGresult *r = NULL;
    int rc = 0;

    pt(&p, a->worker_id);
    pi(&p, a->now_ms);
    pt(&p, a->owner);
    if (!(r = ex(c, Q_WORKER_TOUCH, &p, &rc))) goto out;
    if (PQntuples(r) == 0) {
        rc = SKED_ENOTFOUND;
        goto out;
    }
    *a->draining = gi(r, 0, 0) == WORKER_DRAINING;
    if (!store__owner_ok(a->owner, PQgetvalue(r, 0, 3))) {
        rc = SKED_EFORBID; /* rolls the touch back */
        goto out;
    }
    PQclear(r);
    r = NULL;
    for (size_t i = 0; i < a->nheld; i++)
        a->held[i].keep = false;
    if (a->nheld == 0) goto out;

    buf_puts(&ids, "{");
    buf_puts(&fences, "{");
    buf_puts(&started, "{");
    for (size_t i = 0; i < a->nheld; i++) {
        array_elem(&ids, a->held[i].run_id);
        buf_printf(&fences, "%s%" PRId64, i ? "," : "", a->held[i].fence);
        buf_printf(&started, "%s%s", i ? "," : "", a->held[i].started ? "t" : "f");
    }
    buf_puts(&ids, "}");
    buf_puts(&fences, "}");
    buf_puts(&started, "}");
    memset(&p, 0, sizeof p);
    pt(&p, a->worker_id);
    pi(&p, a->now_ms + a->lease_ms);
    pt(&p, ids.data);
    pt(&p, fences.data);
    pt(&p, started.data);
    if (!(r = ex(c, Q_RUNS_RENEW, &p, &rc))) goto out;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *id = PQgetvalue(r, k, 0);
        int64_t fence = gi(r, k, 1);
        for (size_t i = 0; i < a->nheld; i++)
            if (a->held[i].fence == fence && strcmp(a->held[i].run_id, id) == 0)
                a->held[i].keep = true;
    }
out:
    PQclear(r);
    buf_free(&ids);
    buf_free(&fences);
    buf_free(&started);
    return rc;
}

static int pg_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                        size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining)
{
    struct heartbeat_args a = {worker_id, owner, held, nheld, lease_ms, now_ms, draining};
    int rc = tx((struct pg *)st, TX_WRITE, heartbeat_fn, &a, &a.now_ms);
    if (rc < 0)
        for (size_t i = 0; i < nheld; i++)
            held[i].keep = false;
    return rc;
}

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

/* Locks the run and reads its facts; SKED_ENOTFOUND. f->reason and
 * f->worker_owner are new. */
static int read_finishing(struct pconn *c, const char *run_id, struct finishing *f)
{
    struct prm p = {0};
    int rc = 0;
    pt(&p, run_id);
    PGresult *r = ex(c, Q_RUN_FOR_FINISH, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    f->state = (run_state_t)gi(r, 0, 0);
    f->fence = gi(r, 0, 1);
    f->attempt = (int)gi(r, 0, 2);
    f->cancel_requested = gb(r, 0, 3);
    f->reason = gt(r, 0, 4);
    f->retry.max_attempts = (int)gi(r, 0, 5);
    f->retry.initial_ms = gi(r, 0, 6);
    f->retry.max_ms = gi(r, 0, 7);
    f->retry.multiplier = strtod(PQgetvalue(r, 0, 8), NULL);
    f->retry.jitter = gb(r, 0, 9);
    f->held = gi(r, 0, 10) == JOB_PAUSED;
    f->unconfirmed = gb(r, 0, 11);
    f->worker_owner = gt(r, 0, 12);
    PQclear(r);
    return 0;
}

static void finishing_clear(struct finishing *f)
{
    free(f->reason);
    free(f->worker_owner);
}

/* finish_attempt for an attempt that never started. */
static int unclaim(struct pconn *c, const char *run_id, const struct finishing *f, const char *why,
                   int64_t now_ms)
{
    int64_t not_before = now_ms;
    run_state_t next = store__after_attempt(&f->retry, f->attempt, ATTEMPT_NOT_STARTED,
                                            f->cancel_requested, now_ms, &not_before);
    const char *reason = next == RUN_CANCELED ? (f->reason ? f->reason : "canceled") : why;
    struct prm p = {0};
    int rc;
    pt(&p, run_id);
    pi(&p, next);
    pi(&p, not_before);
    pi(&p, run_state_terminal(next) ? now_ms : -1);
    pt(&p, reason);
    pb(&p, next == RUN_SCHEDULED && f->held);
    if ((rc = exn(c, Q_RUN_UNCLAIM, &p, NULL)) < 0) return rc;
    const int drops[] = {Q_ATTEMPT_DROP, Q_LOG_DROP};
    for (size_t i = 0; i < 2; i++) {
        memset(&p, 0, sizeof p);
        pt(&p, run_id);
        pi(&p, f->attempt);
        if ((rc = exn(c, drops[i], &p, NULL)) < 0) return rc;
    }
    want_notify(c);
    return 0;
}

/* Ends the current attempt of a running run with res and moves the run on
 * (retry, fail, cancel, succeed). reported: the worker said so (true) or
 * the reaper decided (false). */
static int finish_attempt(struct pconn *c, const char *run_id, const struct finishing *f,
                          const store_result_t *res, bool reported, int64_t now_ms)
{
    const char *why = res->reason;
    struct prm p = {0};
    int rc;
    if (res->outcome == ATTEMPT_NOT_STARTED) return unclaim(c, run_id, f, why, now_ms);
    if (!why && res->outcome == ATTEMPT_TIMEOUT) why = "timeout";
    pt(&p, run_id);
    pi(&p, f->attempt);
    pi(&p, now_ms);
    pi(&p, res->outcome);
    pi(&p, res->exit_code);
    pi(&p, res->signal);
    pt(&p, why);
    pb(&p, reported);
    if ((rc = exn(c, Q_ATTEMPT_FINISH, &p, NULL)) < 0) return rc;

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

    memset(&p, 0, sizeof p);
    pt(&p, run_id);
    pi(&p, next);
    pi(&p, not_before);
    pi(&p, run_state_terminal(next) ? now_ms : -1);
    pi(&p, res->exit_code);
    pi(&p, res->signal);
    pt(&p, reason);
    pb(&p, next == RUN_SCHEDULED && f->held);
    if ((rc = exn(c, Q_RUN_FINISH, &p, NULL)) < 0) return rc;
    want_notify(c);
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

static int complete_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct complete_args *a = arg;
    struct finishing f = {0};
    PGresult *r = NULL;
    int rc = read_finishing(c, a->run_id, &f);
    if (rc < 0) goto out;
    if (f.state != RUN_RUNNING || f.fence != a->fence || f.attempt != a->attempt) {
        /* Either a repeat of a completion we applied (its answer was lost)
         * or a worker whose lease was taken away. Only the former is 0. */
        struct prm p = {0};
        pt(&p, a->run_id);
        pi(&p, a->attempt);
        pi(&p, a->fence);
        if (!(r = ex(c, Q_ATTEMPT_REPORTED, &p, &rc))) goto out;
        rc = PQntuples(r) > 0 && gb(r, 0, 0) ? 0 : SKED_ESTALE;
        goto out;
    }
    /* The lease is current: only now does who reports it matter (a stale
     * report answers 409 whoever holds the run now). */
    if (!store__owner_ok(a->owner, f.worker_owner)) {
        rc = SKED_EFORBID;
        goto out;
    }
    rc = finish_attempt(c, a->run_id, &f, a->res, true, a->now_ms);
out:
    PQclear(r);
    finishing_clear(&f);
    return rc;
}

static int pg_complete(store_t *st, const char *run_id, int attempt, int64_t fence,
                       const char *owner, const store_result_t *res, int64_t now_ms)
{
    struct complete_args a = {run_id, attempt, fence, owner, res, now_ms};
    return tx((struct pg *)st, TX_WRITE, complete_fn, &a, &a.now_ms);
}

struct reap_args {
    int64_t grace_ms, hb_timeout_ms, now_ms;
    int changed;
};

static int reap_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct reap_args *a = arg;
    struct prm p = {0};
    PGresult *r = NULL;
    int rc = 0;
    a->changed = 0;
    pi(&p, a->now_ms - a->hb_timeout_ms);
    if ((rc = exn(c, Q_WORKERS_LOSE, &p, NULL)) < 0) return rc;

    /* Locks the batch; rows another reaper holds are its to handle. */
    memset(&p, 0, sizeof p);
    pi(&p, a->now_ms - a->grace_ms);
    pi(&p, REAP_BATCH);
    if (!(r = ex(c, Q_EXPIRED, &p, &rc))) return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        struct finishing f = {0};
        if ((rc = read_finishing(c, id, &f)) < 0) break;
        store_result_t res = {ATTEMPT_LOST, -1, 0, "lease expired"};
        if (f.unconfirmed)
            res = (store_result_t){ATTEMPT_NOT_STARTED, -1, 0, store__not_started_reason(false)};
        rc = finish_attempt(c, id, &f, &res, false, a->now_ms);
        finishing_clear(&f);
        if (rc < 0) break;
        a->changed++;
    }
    PQclear(r);
    return rc;
}

static int pg_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms)
{
    int total = 0;
    /* Bounded batches, each its own commit, so a huge backlog holds few
     * locks at a time. */
    for (;;) {
        struct reap_args a = {grace_ms, heartbeat_timeout_ms, now_ms, 0};
        int rc = tx((struct pg *)st, TX_WRITE, reap_fn, &a, &a.now_ms);
        if (rc < 0) return rc;
        total += a.changed;
        if (a.changed < REAP_BATCH) return total;
    }
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
    if ((rc = simple(c, "SELECT pg_advisory_lock(" LOCK_CLASS ", 0)")) < 0) goto out;
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
    if (locked) PQclear(PQexec(c->db, "SELECT pg_advisory_unlock(" LOCK_CLASS ", 0)"));
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

static const struct store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .now_ms = pg_now_ms,
    .claim = pg_claim,
    .heartbeat = pg_heartbeat,
    .complete = pg_complete,
    .reap = pg_reap,
};

int store__pg_open(const char *url, store_t **out, char **errmsg)
{
    struct pg *p = xcalloc(1, sizeof *p);
    struct pconn *c = NULL;
    char *perr = NULL;
    int rc = 0;

    store__init(&p->base, &pg_ops, &pg_driver);
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
