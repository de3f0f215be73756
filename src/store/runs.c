/*
 * Store verbs of runs as people see them, written once over the SQL driver
 * (db.h): read a run with its attempts, list runs, cancel one. The lease
 * verbs (claim, heartbeat, complete, reap) are in lease.c.
 */
#include "store/db.h"
#include "store/rows.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

static db_sql_t Q_RUN_GET = DB_SAME("SELECT " RUN_COLS " FROM runs WHERE id = ?1");
static db_sql_t Q_ATTEMPTS =
    DB_SAME("SELECT n, worker_id, fence, started_ms, finished_ms, outcome, exit_code, signal,"
            " reason, result FROM attempts WHERE run_id = ?1 ORDER BY n");

int store__read_run(db_t *db, const char *id, store_run_t *out)
{
    db_q_t *q = db_q(db, &Q_RUN_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, id);
    int rc = db_one(q);
    if (rc == 0) store__row_run(q, out);
    return rc;
}

static void row_attempt(db_q_t *q, void *elem)
{
    store_attempt_t *t = elem;
    t->n = (int)db_ci(q, 0);
    db_cid(q, 1, t->worker_id);
    t->fence = db_ci(q, 2);
    t->started_ms = db_ci(q, 3);
    t->finished_ms = db_ci(q, 4);
    int64_t o = db_ci(q, 5);
    t->outcome = o < 0 ? ATTEMPT_SUCCEEDED : (attempt_outcome_t)o;
    t->exit_code = (int)db_ci(q, 6);
    t->signal = (int)db_ci(q, 7);
    t->reason = db_ct(q, 8);
    t->result = db_ct(q, 9);
}

static void clear_attempt(void *elem)
{
    store_attempt_clear(elem);
}

static const db_rows_t attempt_rows = {sizeof(store_attempt_t), row_attempt, clear_attempt, NULL};

struct run_get_args {
    const char *id;
    store_run_t *out;
    store_attempt_t **att;
    size_t *natt;
    store_checkpoint_t *cp; /* NULL = not wanted */
};

/* Drops what a run_get unit has read. */
static void run_get_reset(struct run_get_args *a)
{
    store_run_clear(a->out);
    if (a->att) {
        for (size_t i = 0; i < *a->natt; i++)
            store_attempt_clear(&(*a->att)[i]);
        FREE_NULL(*a->att);
        *a->natt = 0;
    }
    store_checkpoint_clear(a->cp);
}

static int run_get_fn(db_t *db, void *arg)
{
    struct run_get_args *a = arg;
    /* A read whose commit failed runs again: drop what the last try read. */
    run_get_reset(a);
    int rc = store__read_run(db, a->id, a->out);
    if (rc < 0 || (!a->att && !a->cp)) return rc;
    if (a->att) {
        db_q_t *q = db_q(db, &Q_ATTEMPTS);
        rc = q ? 0 : SKED_ESTORE;
        if (q) {
            db_bt(q, a->id);
            rc = db_page(q, &attempt_rows, -1, (void **)a->att, a->natt, NULL);
        }
    }
    if (rc == 0 && a->cp) rc = store__checkpoint_read(db, a->id, a->cp);
    if (rc < 0) run_get_reset(a);
    return rc;
}

int v_run_get(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
              size_t *nattempts, store_checkpoint_t *cp)
{
    memset(out, 0, sizeof *out);
    if (attempts) {
        *attempts = NULL;
        *nattempts = 0;
    }
    if (cp) memset(cp, 0, sizeof *cp);
    struct run_get_args a = {id, out, attempts, nattempts, cp};
    return store__tx(st, attempts || cp ? DB_READ : DB_READ1, run_get_fn, &a, NULL);
}

/* Newest first, in (fire_ms, id) order, over runs_job(job_id, fire_ms, id)
 * or runs_fire(fire_ms, id). The upper bound is always one row-value key,
 * (fire_ms, id) < (?4, ?5): the cursor, or (until, '') on a first page,
 * which means fire_ms < until since every id is non-empty. One bound lets
 * the database seek to the page instead of walking the pages before it. */
#define RUN_LIST_TAIL(ns_in)                                                                       \
    " AND (?2 IS NULL OR state = ?2) AND fire_ms >= ?3 AND (fire_ms, id) < (?4, ?5)"               \
    " AND (?7 IS NULL OR job_id IN (SELECT id FROM jobs WHERE " ns_in "))"                         \
    " ORDER BY fire_ms DESC, id DESC LIMIT ?6"
/* A job's namespace is one of the comma-separated list in parameter n. */
#define LITE_NS_IN_AT(n) "instr(',' || ?" n " || ',', ',' || ns || ',') > 0"
#define PG_NS_IN_AT(n)   "ns = ANY (string_to_array($" n ", ','))"
#define LITE_NS_IN       LITE_NS_IN_AT("7")
#define PG_NS_IN         PG_NS_IN_AT("7")

static db_sql_t Q_RUN_LIST_JOB =
    DB_SQL("SELECT " RUN_COLS " FROM runs WHERE job_id = ?1" RUN_LIST_TAIL(LITE_NS_IN),
           "SELECT " RUN_COLS " FROM runs WHERE job_id = $1"
           " AND ($2::integer IS NULL OR state = $2) AND fire_ms >= $3"
           " AND (fire_ms, id) < ($4::bigint, $5::text)"
           " AND ($7::text IS NULL OR job_id IN (SELECT id FROM jobs WHERE " PG_NS_IN "))"
           " ORDER BY fire_ms DESC, id DESC LIMIT $6");
static db_sql_t Q_RUN_LIST_ALL = DB_SQL(
    "SELECT " RUN_COLS " FROM runs INDEXED BY runs_fire WHERE ?1 IS NULL" RUN_LIST_TAIL(LITE_NS_IN),
    "SELECT " RUN_COLS " FROM runs WHERE $1::text IS NULL"
    " AND ($2::integer IS NULL OR state = $2) AND fire_ms >= $3"
    " AND (fire_ms, id) < ($4::bigint, $5::text)"
    " AND ($7::text IS NULL OR job_id IN (SELECT id FROM jobs WHERE " PG_NS_IN "))"
    " ORDER BY fire_ms DESC, id DESC LIMIT $6");

struct run_list_args {
    const store_run_filter_t *f;
    const char *ns_in;
    store_run_t **out;
    size_t *n;
    char **next;
};

static int run_list_fn(db_t *db, void *arg)
{
    struct run_list_args *a = arg;
    const store_run_filter_t *f = a->f;
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    run_state_t rs = RUN_SCHEDULED;
    if (f->state) run_state_parse(f->state, &rs);
    /* The tighter of the cursor and the until bound. */
    if (!f->cursor || store__cursor_decode(f->cursor, &cms, cidv) < 0 || cms >= f->until_ms) {
        cms = f->until_ms;
        cidv[0] = '\0';
    }
    db_q_t *q = db_q(db, f->job_id ? &Q_RUN_LIST_JOB : &Q_RUN_LIST_ALL);
    if (!q) return SKED_ESTORE;
    db_bt(q, f->job_id);
    if (f->state)
        db_bi(q, rs);
    else
        db_bin(q, -1);
    db_bi(q, f->since_ms);
    db_bi(q, cms);
    db_bt(q, cidv);
    db_bi(q, f->limit + 1); /* one more tells whether a next page exists */
    db_bt(q, a->ns_in);
    return db_page(q, &store__run_rows, f->limit, (void **)a->out, a->n, a->next);
}

int v_run_list(store_t *st, const store_run_filter_t *f, const char *ns_in, store_run_t **out,
               size_t *n, char **next_cursor)
{
    struct run_list_args a = {f, ns_in, out, n, next_cursor};
    return store__tx(st, DB_READ1, run_list_fn, &a, NULL);
}

/* Finished runs per minute and outcome, over runs_finished (its predicate,
 * state >= 4, spelled as the index has it). A minute with none has no row.
 * The namespace test looks up each run's job by its key rather than
 * listing the namespaces' jobs first (as the run list does): the window
 * holds far fewer runs than the store holds jobs, and listing 100,000 jobs
 * cost 50 ms where the lookups cost under one. */
static db_sql_t Q_RUN_MINUTES =
    DB_SQL("SELECT (finished_ms - ?1) / 60000, state, count(*) FROM runs r"
           " WHERE state >= 4 AND finished_ms >= ?1 AND finished_ms < ?2"
           " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM jobs WHERE id = r.job_id"
           " AND " LITE_NS_IN_AT("3") ")) GROUP BY 1, 2",
           "SELECT (finished_ms - $1::bigint) / 60000, state, count(*) FROM runs r"
           " WHERE state >= 4 AND finished_ms >= $1::bigint AND finished_ms < $2::bigint"
           " AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM jobs WHERE id = r.job_id"
           " AND " PG_NS_IN_AT("3") ")) GROUP BY 1, 2");

struct run_minutes_args {
    int64_t from_ms;
    int minutes;
    const char *ns_in;
    store_run_minute_t *out;
};

static int run_minutes_fn(db_t *db, void *arg)
{
    struct run_minutes_args *a = arg;
    memset(a->out, 0, (size_t)a->minutes * sizeof *a->out); /* a try before may have counted */
    db_q_t *q = db_q(db, &Q_RUN_MINUTES);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->from_ms);
    db_bi(q, a->from_ms + (int64_t)a->minutes * 60000);
    db_bt(q, a->ns_in);
    int rc;
    while ((rc = db_step(q)) == 1) {
        int64_t m = db_ci(q, 0), state = db_ci(q, 1);
        if (m < 0 || m >= a->minutes || state < RUN_SUCCEEDED || state > RUN_SKIPPED) continue;
        a->out[m].n[state - RUN_SUCCEEDED] += db_ci(q, 2);
    }
    return rc < 0 ? rc : 0;
}

int v_run_minutes(store_t *st, int64_t from_ms, int minutes, const char *ns_in,
                  store_run_minute_t *out)
{
    struct run_minutes_args a = {from_ms, minutes, ns_in, out};
    return store__tx(st, DB_READ1, run_minutes_fn, &a, NULL);
}

static db_sql_t Q_RUN_STATE_LOCK = DB_SQL("SELECT state FROM runs WHERE id = ?1",
                                          "SELECT state FROM runs WHERE id = $1 FOR NO KEY UPDATE");
static db_sql_t Q_RUN_CANCEL_NOW =
    DB_SAME("UPDATE runs SET state = 6, finished_ms = ?2, reason = ?3, lease_expires_ms = -1,"
            " held = FALSE WHERE id = ?1");
static db_sql_t Q_RUN_CANCEL_ASK =
    DB_SAME("UPDATE runs SET cancel_requested = TRUE, reason = ?2 WHERE id = ?1");

struct cancel_args {
    const char *id;
    const char *reason;
    const store_audit_t *audit;
    int64_t now_ms;
};

static int cancel_fn(db_t *db, void *arg)
{
    struct cancel_args *a = arg;
    db_q_t *q = db_q(db, &Q_RUN_STATE_LOCK);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    run_state_t rs = (run_state_t)db_ci(q, 0);
    if (run_state_terminal(rs)) return SKED_ECONFLICT;
    const char *reason = a->reason ? a->reason : "canceled";
    if (rs == RUN_RUNNING) { /* its worker learns at its next heartbeat */
        if (!(q = db_q(db, &Q_RUN_CANCEL_ASK))) return SKED_ESTORE;
        db_bt(q, a->id);
        db_bt(q, reason);
    } else {
        if (!(q = db_q(db, &Q_RUN_CANCEL_NOW))) return SKED_ESTORE;
        db_bt(q, a->id);
        db_bi(q, a->now_ms);
        db_bt(q, reason);
    }
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    db_notify(db);
    /* A run canceled before it ran: what waits on it, or its group, learns
     * now (a workflow run's cancel stops its tasks). */
    if (rs != RUN_RUNNING && (rc = store__graph_ended_id(db, a->id, a->now_ms)) < 0) return rc;
    return store__put_audit(db, a->audit, a->id);
}

int v_run_cancel(store_t *st, const char *id, const char *reason, const store_audit_t *audit,
                 int64_t now_ms)
{
    struct cancel_args a = {id, reason, audit, now_ms};
    return store__tx(st, DB_WRITE, cancel_fn, &a, &a.now_ms);
}
