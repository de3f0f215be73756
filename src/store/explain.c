/*
 * The store verb behind "why isn't it running?" (GET /v1/jobs/{id}/explain,
 * GET /v1/runs/{id}/explain), written once over the SQL driver (db.h): it
 * reads, in one snapshot, the job in any state, its schedules, the run
 * asked about, the job's unfinished runs with their current or last
 * attempt, how many of its runs are running, and the workers whose queues
 * include the job's queue. The decision is core/explain.c's.
 *
 * Read only, and bounded whatever the history: unfinished runs are looked
 * for among the job's latest STORE_EXPLAIN_WINDOW runs (runs_job, newest
 * first: unfinished runs are the newest but for a long backlog), running
 * ones are counted over the runs_running_job index, and workers are read
 * at most STORE_EXPLAIN_WORKERS. No index was added for it: the hot paths
 * write runs and workers, and pay for every index on them.
 */
#include "store/db.h"
#include "store/rows.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

static db_sql_t Q_XJOB = DB_SAME("SELECT " JOB_COLS " FROM jobs WHERE id = ?1");
static db_sql_t Q_XSCHEDS =
    DB_SAME("SELECT " SCHED_COLS " FROM schedules WHERE job_id = ?1 ORDER BY pos");

/* A run's columns, then whether its lease is unconfirmed, then its attempt
 * number `attempt` (the current or last one; NULL when it has none). The
 * attempt columns are renamed so that RUN_COLS stay unambiguous. */
#define XRUN_COLS                                                                                  \
    RUN_COLS ", unconfirmed, a_n, a_worker, a_started, a_finished, a_outcome, a_exit, a_signal,"   \
             " a_reason"
#define XRUN_ATTEMPT                                                                               \
    " LEFT JOIN (SELECT run_id AS a_run, n AS a_n, worker_id AS a_worker, started_ms AS "          \
    "a_started,"                                                                                   \
    " finished_ms AS a_finished, outcome AS a_outcome, exit_code AS a_exit, signal AS a_signal,"   \
    " reason AS a_reason FROM attempts) a ON a.a_run = r.id AND a.a_n = r.attempt"
/* The job's latest runs, newest first: where unfinished runs are. */
#define XWINDOW(cols)                                                                              \
    "(SELECT " cols " FROM runs WHERE job_id = ?1 ORDER BY fire_ms DESC, id DESC LIMIT ?2)"

static db_sql_t Q_XRUN =
    DB_SAME("SELECT " XRUN_COLS " FROM runs r" XRUN_ATTEMPT " WHERE r.id = ?1");
static db_sql_t Q_XOPEN = DB_SAME(
    "SELECT " XRUN_COLS " FROM " XWINDOW("*") " r" XRUN_ATTEMPT " WHERE r.state < 4"
                                              " ORDER BY CASE WHEN r.state = 3 THEN 0 ELSE 1 END,"
                                              " r.not_before_ms, r.id LIMIT ?3");
static db_sql_t Q_XCOUNTS =
    DB_SAME("SELECT coalesce(sum(CASE WHEN state IN (0, 1, 2) THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN state IN (0, 2) AND not_before_ms <= ?3 THEN 1 ELSE 0 END), 0)"
            " FROM " XWINDOW("state, not_before_ms") " w");
static db_sql_t Q_XRUNNING = DB_SAME("SELECT count(*) FROM runs WHERE job_id = ?1 AND state = 3");
/* Workers of a queue: queues is "a,b". */
#define XWORKERS(queue_listed)                                                                     \
    "SELECT " WORKER_COLS ", w.ns FROM workers w WHERE w.state != 3 AND " queue_listed             \
    " ORDER BY w.heartbeat_ms DESC, w.id LIMIT ?2"
static db_sql_t Q_XWORKERS = DB_SQL(XWORKERS("instr(',' || w.queues || ',', ',' || ?1 || ',') > 0"),
                                    XWORKERS("$1 = ANY (string_to_array(w.queues, ','))"));
static db_sql_t Q_XLIVE =
    DB_SAME("SELECT count(*) FROM workers WHERE state IN (0, 1) AND heartbeat_ms >= ?1");

static void row_xrun(db_q_t *q, void *elem)
{
    store_explain_run_t *x = elem;
    store__row_run(q, &x->run);
    x->unconfirmed = db_cb(q, RUN_NCOLS + 0);
    if (db_cnull(q, RUN_NCOLS + 1)) return;
    store_attempt_t *a = &x->last;
    a->n = (int)db_ci(q, RUN_NCOLS + 1);
    db_cid(q, RUN_NCOLS + 2, a->worker_id);
    a->started_ms = db_ci(q, RUN_NCOLS + 3);
    a->finished_ms = db_ci(q, RUN_NCOLS + 4);
    int64_t o = db_ci(q, RUN_NCOLS + 5);
    a->outcome = o < 0 ? ATTEMPT_SUCCEEDED : (attempt_outcome_t)o; /* not finished: unset */
    a->exit_code = (int)db_ci(q, RUN_NCOLS + 6);
    a->signal = (int)db_ci(q, RUN_NCOLS + 7);
    a->reason = db_ct(q, RUN_NCOLS + 8);
}

static void clear_xrun(void *elem)
{
    store_explain_run_t *x = elem;
    store_run_clear(&x->run);
    store_attempt_clear(&x->last);
}

static const db_rows_t xrun_rows = {sizeof(store_explain_run_t), row_xrun, clear_xrun, NULL};

static void row_xworker(db_q_t *q, void *elem)
{
    store_worker_t *w = elem;
    store__row_worker(q, w);
    w->ns = db_ct0(q, WORKER_NCOLS);
}

static void clear_xworker(void *elem)
{
    store_worker_clear(elem);
}

static const db_rows_t xworker_rows = {sizeof(store_worker_t), row_xworker, clear_xworker, NULL};

static void row_sched(db_q_t *q, void *elem)
{
    store__row_sched(q, 0, elem);
}

static void clear_sched(void *elem)
{
    store_schedule_clear(elem);
}

static const db_rows_t sched_rows = {sizeof(store_schedule_t), row_sched, clear_sched, NULL};

struct explain_args {
    const char *job_id, *run_id;
    int64_t live_since_ms, now_ms;
    store_explain_t *out;
};

/* A count read by a one-row statement. */
static int count(db_q_t *q, int col, int64_t *out)
{
    int rc = db_one(q);
    if (rc == 0) *out = db_ci(q, col);
    return rc;
}

static int explain_fn(db_t *db, void *arg)
{
    struct explain_args *a = arg;
    store_explain_t *e = a->out;
    char job_id[SKED_ID_LEN];
    db_q_t *q = NULL;
    int rc;
    store_explain_clear(e); /* a snapshot that ran before this try may have filled it */

    if (a->run_id) {
        if (!(q = db_q(db, &Q_XRUN))) return SKED_ESTORE;
        db_bt(q, a->run_id);
        if ((rc = db_one(q)) < 0) return rc;
        row_xrun(q, &e->target);
        memcpy(job_id, e->target.run.job_id, SKED_ID_LEN);
    } else {
        snprintf(job_id, sizeof job_id, "%s", a->job_id);
    }
    if (!(q = db_q(db, &Q_XJOB))) return SKED_ESTORE;
    db_bt(q, job_id);
    if ((rc = db_one(q)) < 0) return rc;
    store__row_job(q, &e->job);

    if (!(q = db_q(db, &Q_XSCHEDS))) return SKED_ESTORE;
    db_bt(q, job_id);
    if ((rc = db_page(q, &sched_rows, -1, (void **)&e->scheds, &e->nscheds, NULL)) < 0) return rc;

    if (!(q = db_q(db, &Q_XOPEN))) return SKED_ESTORE;
    db_bt(q, job_id);
    db_bi(q, STORE_EXPLAIN_WINDOW);
    db_bi(q, STORE_EXPLAIN_RUNS);
    if ((rc = db_page(q, &xrun_rows, -1, (void **)&e->runs, &e->nruns, NULL)) < 0) return rc;

    if (!(q = db_q(db, &Q_XCOUNTS))) return SKED_ESTORE;
    db_bt(q, job_id);
    db_bi(q, STORE_EXPLAIN_WINDOW);
    db_bi(q, a->now_ms);
    if ((rc = count(q, 0, &e->nwaiting)) < 0) return rc;
    e->ndue = db_ci(q, 1);

    if (!(q = db_q(db, &Q_XRUNNING))) return SKED_ESTORE;
    db_bt(q, job_id);
    if ((rc = count(q, 0, &e->running)) < 0) return rc;

    if (!(q = db_q(db, &Q_XWORKERS))) return SKED_ESTORE;
    db_bt(q, e->job.queue);
    db_bi(q, STORE_EXPLAIN_WORKERS);
    if ((rc = db_page(q, &xworker_rows, -1, (void **)&e->workers, &e->nworkers, NULL)) < 0)
        return rc;

    if (!(q = db_q(db, &Q_XLIVE))) return SKED_ESTORE;
    db_bi(q, a->live_since_ms);
    return count(q, 0, &e->live_workers);
}

int v_explain(store_t *st, const char *job_id, const char *run_id, int64_t live_since_ms,
              int64_t now_ms, store_explain_t *out)
{
    struct explain_args a = {job_id, run_id, live_since_ms, now_ms, out};
    int rc = store__tx(st, DB_READ, explain_fn, &a, NULL);
    if (rc < 0) store_explain_clear(out);
    return rc;
}
