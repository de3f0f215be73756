/*
 * Row mappers of the store's main tables (rows.h), once for both dialects,
 * and the one write several files share: inserting a run.
 */
#include "store/rows.h"

#include "store/store.h"
#include "store/verbs.h"

#include "common/error.h"

void store__row_job(db_q_t *q, store_job_t *j)
{
    db_cid(q, 0, j->id);
    j->ns = db_ct0(q, 1);
    j->owner = db_ct0(q, 2);
    j->name = db_ct0(q, 3);
    j->queue = db_ct0(q, 4);
    j->spec_json = db_ct0(q, 5);
    j->constraints = db_ct0(q, 6);
    j->tags = db_ct0(q, 7);
    j->priority = (int)db_ci(q, 8);
    j->state = (job_state_t)db_ci(q, 9);
    j->overlap = (overlap_policy_t)db_ci(q, 10);
    j->misfire = (misfire_policy_t)db_ci(q, 11);
    j->catch_up_window_ms = db_ci(q, 12);
    j->max_concurrency = (int)db_ci(q, 13);
    j->timeout_ms = db_ci(q, 14);
    store__row_retry(q, 15, &j->retry);
    j->version = db_ci(q, 20);
    j->created_ms = db_ci(q, 21);
    j->updated_ms = db_ci(q, 22);
    j->kind = (job_kind_t)db_ci(q, 23);
    db_cid(q, 24, j->parent_id);
    j->graph = (int)db_ci(q, 25);
    j->deps_rule = (trigger_rule_t)db_ci(q, 26);
    j->max_active = (int)db_ci(q, 27);
    j->array_count = (int)db_ci(q, 28);
    j->array_parallel = (int)db_ci(q, 29);
    j->type = db_ct0(q, 30);
    j->bad_dep = -1;
}

void store__row_retry(db_q_t *q, int o, retry_policy_t *p)
{
    p->max_attempts = (int)db_ci(q, o + 0);
    p->initial_ms = db_ci(q, o + 1);
    p->max_ms = db_ci(q, o + 2);
    p->multiplier = db_cd(q, o + 3);
    p->jitter = db_cb(q, o + 4);
}

void store__row_sched(db_q_t *q, int o, store_schedule_t *s)
{
    db_cid(q, o + 0, s->id);
    db_cid(q, o + 1, s->job_id);
    s->kind = (schedule_kind_t)db_ci(q, o + 2);
    s->expr = db_ct0(q, o + 3);
    s->timezone = db_ct0(q, o + 4);
    s->start_ms = db_ci(q, o + 5);
    s->end_ms = db_ci(q, o + 6);
    s->jitter_ms = db_ci(q, o + 7);
    s->anchor_ms = db_ci(q, o + 8);
    s->next_fire_ms = db_cin(q, o + 9);
    s->last_fire_ms = db_ci(q, o + 10);
}

void store__row_run(db_q_t *q, store_run_t *r)
{
    db_cid(q, 0, r->id);
    db_cid(q, 1, r->job_id);
    db_cid(q, 2, r->schedule_id);
    db_cid(q, 3, r->worker_id);
    r->state = (run_state_t)db_ci(q, 4);
    r->fire_ms = db_ci(q, 5);
    r->not_before_ms = db_ci(q, 6);
    r->priority = (int)db_ci(q, 7);
    r->queue = db_ct0(q, 8);
    r->attempt = (int)db_ci(q, 9);
    r->fence = db_ci(q, 10);
    r->lease_expires_ms = db_ci(q, 11);
    r->cancel_requested = db_cb(q, 12);
    r->created_ms = db_ci(q, 13);
    r->started_ms = db_ci(q, 14);
    r->finished_ms = db_ci(q, 15);
    r->exit_code = (int)db_ci(q, 16);
    r->signal = (int)db_ci(q, 17);
    r->reason = db_ct(q, 18);
    r->log_bytes = db_ci(q, 19);
    r->log_truncated = db_cb(q, 20);
    db_cid(q, 21, r->parent_id);
    r->array_index = (int)db_ci(q, 22);
    r->deps_rule = (trigger_rule_t)db_ci(q, 23);
    r->deps_n = (int)db_ci(q, 24);
    r->deps_ok = (int)db_ci(q, 25);
    r->deps_fail = (int)db_ci(q, 26);
    r->deps_skip = (int)db_ci(q, 27);
}

void store__row_worker(db_q_t *q, store_worker_t *w)
{
    db_cid(q, 0, w->id);
    w->name = db_ct0(q, 1);
    w->host = db_ct0(q, 2);
    w->labels = db_ct0(q, 3);
    w->queues = db_ct0(q, 4);
    w->slots = (int)db_ci(q, 5);
    w->state = (worker_state_t)db_ci(q, 6);
    w->registered_ms = db_ci(q, 7);
    w->heartbeat_ms = db_ci(q, 8);
    w->running = (int)db_ci(q, 9);
    w->types = db_ct0(q, 10);
}

static void job_row(db_q_t *q, void *e)
{
    store__row_job(q, e);
}

static void job_clear(void *e)
{
    store_job_clear(e);
}

static void job_key(const void *e, int64_t *ms, const char **id)
{
    const store_job_t *j = e;
    *ms = j->created_ms;
    *id = j->id;
}

static void run_row(db_q_t *q, void *e)
{
    store__row_run(q, e);
}

static void run_clear(void *e)
{
    store_run_clear(e);
}

static void run_key(const void *e, int64_t *ms, const char **id)
{
    const store_run_t *r = e;
    *ms = r->fire_ms;
    *id = r->id;
}

const db_rows_t store__job_rows = {sizeof(store_job_t), job_row, job_clear, job_key};
const db_rows_t store__run_rows = {sizeof(store_run_t), run_row, run_clear, run_key};

/* Priority, queue and held come from the job in the same statement, so a
 * run never disagrees with the job it was made from. The WHERE clause also
 * keeps SQLite from reading ON CONFLICT as a join's ON. The run as
 * inserted: db_step_written. */
#define RUN_INSERT                                                                                 \
    "INSERT INTO runs (id, job_id, schedule_id, state, fire_ms, not_before_ms, priority, queue,"   \
    " held, created_ms, finished_ms, reason, graph)"                                               \
    " SELECT ?1, j.id, ?3, CASE WHEN (j.graph & 7) != 0 AND ?4 < 4 THEN 1 ELSE ?4 END, ?5, ?6,"    \
    " j.priority, j.queue, j.state = 1, ?7, ?8, ?9, j.graph"                                       \
    " FROM jobs j WHERE j.id = ?2 ON CONFLICT (schedule_id, fire_ms) DO NOTHING"
static db_sql_t Q_RUN_INSERT = DB_SQL(RUN_INSERT, RUN_INSERT " RETURNING state, graph");
static db_sql_t Q_RUN_INSERTED = DB_ONLY_LITE("SELECT state, graph FROM runs WHERE id = ?1");

int store__insert_run(db_t *db, char id[SKED_ID_LEN], const char *job_id, const char *sched_id,
                      run_state_t state, int64_t fire_ms, int64_t not_before_ms, const char *reason,
                      int64_t now_ms, bool *inserted)
{
    db_q_t *q = db_q(db, &Q_RUN_INSERT);
    if (!q) return SKED_ESTORE;
    id_new("run", now_ms, id);
    db_bt(q, id);
    db_bt(q, job_id);
    db_bt(q, sched_id);
    db_bi(q, state);
    db_bi(q, fire_ms);
    db_bi(q, not_before_ms);
    db_bi(q, now_ms);
    db_bi(q, run_state_terminal(state) ? now_ms : -1);
    db_bt(q, reason);
    int rc = db_step_written(db, &q, &Q_RUN_INSERTED, id);
    if (rc < 0) return rc;
    if (inserted) *inserted = rc == 1;
    if (rc == 0) return 0;
    run_state_t rs = (run_state_t)db_ci(q, 0);
    int graph = (int)db_ci(q, 1);
    if ((rc = db_step(q)) < 0) return rc;
    return graph ? store__graph_inserted(db, id, job_id, graph, rs, fire_ms, now_ms) : 0;
}
